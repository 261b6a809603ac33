//! The `nostr` source (issue 11, the BigBrotr row): a verified multi-relay archive with provenance.
//!
//! Each relay is archived by its own task ([`archive`]): a live subscription opened first, then per
//! filter the history walked in `created_at` windows from the relay's cursor, split when an answer comes
//! back full ([`window`]), then live events. Every event's id is recomputed and its signature verified
//! before it is stored ([`verify`]); the same event from two relays is one event with two observations
//! (observer = the normalised relay URL).
//!
//! Event: kind `nostr.<kind>`, id = the NIP-01 id, key = the pubkey (hex), occurred_at = `created_at`,
//! data = the event JSON. Checkpoint: one per relay (partition = its normalised URL), a cursor per filter
//! ([`checkpoint`]).
//!
//! - [`config`]: `[[sources]] type = "nostr"` and its validation.
//! - [`relay_url`]: relay URLs in one normal form ([`RelayUrl`]), classified by [`Network`], with local
//!   and malformed ones refused with a reason.
//! - [`event`]: NIP-01 events parsed with bounds, their id recomputed and their BIP-340 signature
//!   verified ([`NostrEvent`], [`EventError`] with the reason of a refusal).
//! - [`filter`]: NIP-01 filters with bounds, rendered for a `REQ` and matched as a relay matches them.
//! - [`message`]: what relays send (`EVENT`, `EOSE`, `CLOSED`, `NOTICE`, `OK`, `AUTH`, `NEG-*`).
//! - [`conn`]: one WebSocket connection (direct with the address checked, or through [`socks`]).
//! - [`window`]: the walk over a relay's history ([`Walk`]); [`bounds`]: how a relay reads `since`
//!   and `until` (some read `until` as exclusive).
//! - [`checkpoint`]: the stored position of a relay.
//! - [`verify`]: verification on every core and the shape of stored events.
//! - [`sign`]: signing events (the monitor's announcements, test and benchmark events).
//! - [`discover`]: relay URLs named by archived events (kind 10002, kind 3, relay hints).
//! - [`archive`]: archiving one relay; [`source`]: the running source.

pub mod archive;
pub mod bounds;
pub mod checkpoint;
pub mod config;
pub mod conn;
pub mod discover;
pub mod event;
pub mod filter;
pub mod message;
pub mod relay_url;
pub mod sign;
pub mod socks;
pub mod source;
pub mod verify;
pub mod window;

/// The first `max` bytes of `s` at most, cut on a character boundary (excerpts of what relays send).
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub use config::NostrSourceConfig;
pub use event::{EventError, NostrEvent};
pub use filter::{FilterError, NostrFilter};
pub use relay_url::{Network, RelayUrl, RelayUrlError};
pub use source::NostrSource;
pub use window::{Answer, Walk};
