//! What the followers of one source share: its config, decoder, store and report, and the logs recently
//! rejected (so a log every provider serves is rejected once).

use super::abi::Decoder;
use super::config::EvmSourceConfig;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tributary_core::{EventId, Log, SourceReport};

/// What the followers of one source share.
pub struct Shared {
    /// The source's name.
    pub source: String,
    /// Its config.
    pub cfg: Arc<EvmSourceConfig>,
    /// The ABI decoder.
    pub decoder: Arc<Decoder>,
    /// Where events, rejects and checkpoints go.
    pub store: Arc<dyn Log>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    /// Each provider's status and problems, for `/v1/sources` and `/health`.
    pub report: SourceReport,
    /// Logs recently rejected (by id), so a log every provider serves is rejected once, not once per
    /// provider.
    pub rejected: Mutex<RecentIds>,
}

/// A bounded set of recent event ids (oldest forgotten first).
#[derive(Default)]
pub struct RecentIds {
    order: VecDeque<EventId>,
    set: HashSet<EventId>,
}

impl RecentIds {
    const CAP: usize = 10_000;

    /// Adds `id`; false when it was there already.
    pub(crate) fn insert(&mut self, id: EventId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}
