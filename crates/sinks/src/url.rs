//! Showing a destination's URL without its secret: [`redacted_url`] lives in `tributary_core::url` (the
//! `postgres` source needs it too); re-exported here for the sinks.

pub use tributary_core::url::{LoneUserinfo, redacted_url};
