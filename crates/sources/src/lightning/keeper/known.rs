//! Keeps the verified channels of every source in the store's meta entries as the keeper reads the log
//! (the layout: [`crate::lightning::known`]), so that `lightning` sources and imports start
//! without reading the whole log.

use crate::lightning::events::KIND_CHANNEL_ANNOUNCEMENT;
use crate::lightning::known::{
    CHUNK, KNOWN_CHANNELS_KEY, KnownChannel, chunk_key, encode_chunk, parse_progress, render_progress,
};
use crate::lightning::{Gossip, decode};
use tributary_core::{Log, Seq, StoreError, StoredEvent};

/// What has been written, and the announcements read since.
#[derive(Debug, Default)]
pub struct KnownWriter {
    /// Every announcement at or below this position is in the written chunks.
    seq: Seq,
    /// Chunks written.
    chunks: u64,
    /// Announcements read but not written yet.
    pending: Vec<KnownChannel>,
    /// Writes nothing (a store shared by several nodes: each node's keeper would cut the chunks
    /// differently, and one could overwrite another's; sources then read the whole log at start).
    off: bool,
}

impl KnownWriter {
    /// Continues where the meta entries say (an unreadable entry starts over from the log's start).
    pub async fn load(store: &dyn Log, shared: bool) -> Result<Self, StoreError> {
        if shared {
            return Ok(Self {
                off: true,
                ..Self::default()
            });
        }
        let progress = store.get_meta(KNOWN_CHANNELS_KEY).await?;
        let (seq, chunks) = match progress.as_deref().map(parse_progress) {
            None => (0, 0),
            Some(Some(p)) => p,
            Some(None) => {
                tracing::warn!(
                    key = KNOWN_CHANNELS_KEY,
                    "the known-channels entry cannot be read; writing it again from the log"
                );
                (0, 0)
            }
        };
        Ok(Self {
            seq,
            chunks,
            pending: Vec::new(),
            off: false,
        })
    }

    /// The position covered by what is written.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// Notes a channel announcement (any other event is ignored).
    pub fn observe(&mut self, e: &StoredEvent) {
        if e.event.kind != KIND_CHANNEL_ANNOUNCEMENT {
            return;
        }
        if let Ok(Gossip::ChannelAnnouncement(m)) = decode(&e.event.payload) {
            self.pending.push(KnownChannel {
                chain_hash: m.chain_hash,
                short_channel_id: m.short_channel_id,
                node_ids: [m.node_id_1, m.node_id_2],
            });
        }
    }

    async fn write_chunk(&mut self, store: &dyn Log, n: usize) -> Result<(), StoreError> {
        let rest = self.pending.split_off(n);
        store
            .put_meta(&chunk_key(self.chunks), &encode_chunk(&self.pending))
            .await?;
        self.pending = rest;
        self.chunks += 1;
        Ok(())
    }

    /// Writes full chunks. The position covered stays (channels after it being written early is fine).
    pub async fn flush_full(&mut self, store: &dyn Log) -> Result<(), StoreError> {
        if self.off {
            self.pending.clear();
            return Ok(());
        }
        let before = self.chunks;
        while self.pending.len() >= CHUNK {
            self.write_chunk(store, CHUNK).await?;
        }
        if self.chunks != before {
            store
                .put_meta(KNOWN_CHANNELS_KEY, &render_progress(self.seq, self.chunks))
                .await?;
        }
        Ok(())
    }

    /// Writes everything read so far and records that it covers the log up to `seq`.
    pub async fn checkpoint(&mut self, store: &dyn Log, seq: Seq) -> Result<(), StoreError> {
        if self.off {
            self.pending.clear();
            self.seq = self.seq.max(seq);
            return Ok(());
        }
        let before = self.chunks;
        while !self.pending.is_empty() {
            let n = self.pending.len().min(CHUNK);
            self.write_chunk(store, n).await?;
        }
        if seq > self.seq || self.chunks != before {
            self.seq = self.seq.max(seq);
            store
                .put_meta(KNOWN_CHANNELS_KEY, &render_progress(self.seq, self.chunks))
                .await?;
        }
        Ok(())
    }
}
