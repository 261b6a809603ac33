//! Showing a destination's URL without its secret: the one helper lives in `tributary_core::url` (shared
//! with the sources that name providers by URL); re-exported here for the sinks and the API.

pub use tributary_core::url::{LoneUserinfo, redacted_url};
