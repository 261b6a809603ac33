//! The stored position of one provider's follower.
//!
//! Position text (JSON): `{"next": N, "recent": [[number, "0xhash", logs_upper], ...]}`: `next` is the
//! first block not processed yet; `recent` lists processed blocks of the last `reorg_depth` numbers,
//! oldest first, the last one being block `next - 1` (the last processed block and its hash), unless it
//! is empty (nothing processed yet, or after a reorganisation deeper than `reorg_depth`). `logs_upper` is
//! one more than the highest log index delivered from that block (0: none), which is all a retraction
//! needs: the ids of the block's logs follow from the chain id, the hash and the index.

use serde_json::{Value, json};
use std::collections::VecDeque;

/// A processed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: [u8; 32],
    /// One more than the highest log index delivered from it (0: none).
    pub logs_upper: u64,
}

/// Where a follower is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// The first block not processed yet.
    pub next: u64,
    /// Recent processed blocks, oldest first.
    pub recent: VecDeque<Entry>,
}

impl State {
    /// The hash of block `next - 1`, when known.
    pub fn tip_hash(&self) -> Option<[u8; 32]> {
        self.recent.back().filter(|e| e.number + 1 == self.next).map(|e| e.hash)
    }

    /// Records block `number` as processed and moves `next` past it, keeping `depth` block numbers.
    pub fn push(&mut self, entry: Entry, depth: u64) {
        while self.recent.back().is_some_and(|e| e.number >= entry.number) {
            self.recent.pop_back();
        }
        self.recent.push_back(entry);
        self.next = entry.number + 1;
        let floor = entry.number.saturating_sub(depth);
        while self.recent.len() > 1 && self.recent.front().is_some_and(|e| e.number <= floor) {
            self.recent.pop_front();
        }
    }

    /// The position text.
    pub fn render(&self) -> String {
        let recent: Vec<Value> = self
            .recent
            .iter()
            .map(|e| json!([e.number, format!("0x{}", hex::encode(e.hash)), e.logs_upper]))
            .collect();
        json!({"next": self.next, "recent": recent}).to_string()
    }

    /// Parses a position text written by [`State::render`].
    pub fn parse(s: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
        let next = v["next"].as_u64().ok_or("next: expected a block number")?;
        let mut recent = VecDeque::new();
        for (i, e) in v["recent"]
            .as_array()
            .ok_or("recent: expected an array")?
            .iter()
            .enumerate()
        {
            let bad = || format!("recent[{i}]: expected [number, \"0xhash\", logs_upper]");
            let number = e[0].as_u64().ok_or_else(bad)?;
            let hash = super::wire::fixed::<32>(&e[1], &format!("recent[{i}]"))?;
            let logs_upper = e[2].as_u64().ok_or_else(bad)?;
            recent.push_back(Entry {
                number,
                hash,
                logs_upper,
            });
        }
        Ok(Self { next, recent })
    }
}
