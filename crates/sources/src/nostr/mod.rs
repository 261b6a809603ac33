//! Nostr (issue 11, being built): the BigBrotr row — relay discovery and monitoring, and a verified
//! multi-relay archive with provenance.
//!
//! Built so far:
//! - [`relay_url`]: relay URLs in one normal form ([`RelayUrl`]), classified by [`Network`], with local
//!   and malformed ones refused with a reason.
//! - [`event`]: NIP-01 events parsed with bounds, their id recomputed and their BIP-340 signature
//!   verified ([`NostrEvent`], [`EventError`] with the reason of a refusal).
//! - [`filter`]: NIP-01 filters with bounds, from the config or a query, rendered for a `REQ` and
//!   matched as a relay matches them ([`NostrFilter`]).
//! - [`window`]: the walk over a relay's history in `created_at` windows, split when an answer comes
//!   back full, moving the cursor only by whole windows ([`Walk`]).

pub mod event;
pub mod filter;
pub mod relay_url;
pub mod window;

pub use event::{EventError, NostrEvent};
pub use filter::{FilterError, NostrFilter};
pub use relay_url::{Network, RelayUrl, RelayUrlError};
pub use window::{Answer, Walk};
