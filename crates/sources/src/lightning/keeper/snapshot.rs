//! The graph keeper's snapshot: every source's graph and problem counts as of one log position, so that
//! a restart reads only the log after it.
//!
//! File `{data_dir}/lightning/graph.snapshot`, written to `graph.snapshot.tmp`, fsynced, renamed over the
//! old one, directory fsynced: a crash leaves the old snapshot or the new one, never a mix.
//!
//! ```text
//! magic "TRBGRAPH" ‖ version u32 (1) ‖ seq u64 ‖ id of the event at seq [32] (zeros at seq 0)
//! ‖ sources u32 ‖ per source: name (u16 len ‖ bytes) ‖ problems u32 ‖ (reason (u16 len ‖ bytes) ‖ count u64)*
//!                              ‖ graph len u64 ‖ graph (crate::lightning::graph::codec)
//! ‖ sha256 of everything before [32]
//! ```
//! Integers are big-endian. Loading checks the magic, the version, the checksum and every length; the
//! keeper also checks that the store holds the same event at `seq` (a data directory restored from
//! another backup does not match). Whatever fails, the keeper logs why and reads the whole log.

use crate::lightning::Graph;
use crate::lightning::graph::codec;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tributary_core::{EventId, Seq};

const MAGIC: &[u8; 8] = b"TRBGRAPH";
const VERSION: u32 = 1;

/// What a snapshot holds.
#[derive(Debug, Default, PartialEq)]
pub struct GraphSnapshot {
    /// The last log position applied.
    pub seq: Seq,
    /// The id of the event at `seq` (`None` at 0).
    pub id: Option<EventId>,
    /// Per source: its graph and its problem counts by reason.
    pub sources: BTreeMap<String, (Graph, BTreeMap<String, u64>)>,
}

/// Where the snapshot of a data directory lives.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("lightning").join("graph.snapshot")
}

/// Writes `snapshot` atomically at `path` (blocking: call it from a blocking thread).
pub fn write(
    path: &Path,
    sources: &BTreeMap<String, (&Graph, &BTreeMap<String, u64>)>,
    seq: Seq,
    id: Option<EventId>,
) -> std::io::Result<u64> {
    let dir = path.parent().expect("the snapshot path has a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("snapshot.tmp");
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut hash = Sha256::new();
    let mut written = 0u64;
    let mut put = |file: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| -> std::io::Result<()> {
        hash.update(b);
        written += b.len() as u64;
        file.write_all(b)
    };
    put(&mut file, MAGIC)?;
    put(&mut file, &VERSION.to_be_bytes())?;
    put(&mut file, &seq.to_be_bytes())?;
    put(&mut file, &id.map(|i| i.0).unwrap_or([0; 32]))?;
    put(&mut file, &(sources.len() as u32).to_be_bytes())?;
    let mut graph = Vec::new();
    for (name, (g, problems)) in sources {
        put(&mut file, &(name.len() as u16).to_be_bytes())?;
        put(&mut file, name.as_bytes())?;
        put(&mut file, &(problems.len() as u32).to_be_bytes())?;
        for (reason, n) in problems.iter() {
            put(&mut file, &(reason.len() as u16).to_be_bytes())?;
            put(&mut file, reason.as_bytes())?;
            put(&mut file, &n.to_be_bytes())?;
        }
        graph.clear();
        codec::encode(g, &mut graph);
        put(&mut file, &(graph.len() as u64).to_be_bytes())?;
        put(&mut file, &graph)?;
    }
    let digest = hash.finalize();
    file.write_all(&digest)?;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(written + 32)
}

/// Reads the snapshot at `path`: `Ok(None)` when there is none, `Err` with the reason when it cannot be
/// used (blocking: call it from a blocking thread).
pub fn load(path: &Path) -> Result<Option<GraphSnapshot>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    decode(&bytes).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

fn decode(bytes: &[u8]) -> Result<GraphSnapshot, String> {
    if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..8] != MAGIC {
        return Err("not a tributary graph snapshot".into());
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        return Err("checksum mismatch: the file is damaged".into());
    }
    let mut r = Input { buf: body, at: 8 };
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!("version {version}, this tributary reads version {VERSION}"));
    }
    let seq = r.u64()?;
    let id: [u8; 32] = r.take(32)?.try_into().expect("32 bytes");
    let mut snap = GraphSnapshot {
        seq,
        id: (seq > 0).then_some(EventId(id)),
        sources: BTreeMap::new(),
    };
    for _ in 0..r.u32()? {
        let name = r.string()?;
        let mut problems = BTreeMap::new();
        for _ in 0..r.u32()? {
            let reason = r.string()?;
            problems.insert(reason, r.u64()?);
        }
        let len = usize::try_from(r.u64()?).map_err(|_| "graph length does not fit in memory")?;
        let graph = codec::decode(r.take(len)?).map_err(|e| format!("graph of source {name:?}: {e}"))?;
        snap.sources.insert(name, (graph, problems));
    }
    if r.at != body.len() {
        return Err(format!("{} bytes left after the last source", body.len() - r.at));
    }
    Ok(snap)
}

struct Input<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .buf
            .get(self.at..self.at.saturating_add(n))
            .ok_or_else(|| format!("truncated at offset {} (needs {n} more bytes)", self.at))?;
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a name is not UTF-8".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        assert_eq!(load(&path), Ok(None));
        let mut g = Graph::new();
        g.set_capacity(crate::lightning::ShortChannelId(7), 1000);
        let problems = BTreeMap::from([("bad_signature".to_owned(), 5u64)]);
        let empty = (Graph::new(), BTreeMap::new());
        let sources = BTreeMap::from([
            ("a".to_owned(), (&g, &problems)),
            ("b".to_owned(), (&empty.0, &empty.1)),
        ]);
        let id = EventId([9; 32]);
        write(&path, &sources, 42, Some(id)).unwrap();
        let snap = load(&path).unwrap().unwrap();
        assert_eq!((snap.seq, snap.id), (42, Some(id)));
        assert_eq!(snap.sources["a"], (g.clone(), problems.clone()));
        assert_eq!(snap.sources["b"].0, Graph::new());
        // Written again over the old one: still one valid file, no temporary left behind.
        write(&path, &sources, 43, Some(id)).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().seq, 43);
        assert!(!path.with_extension("snapshot.tmp").exists());
        // Every damage is a reason, never a panic.
        let bytes = std::fs::read(&path).unwrap();
        for at in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(load(&path).is_err(), "flipped byte {at}");
        }
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert!(load(&path).unwrap_err().contains("checksum"));
        std::fs::write(&path, b"short").unwrap();
        assert!(load(&path).unwrap_err().contains("not a tributary graph snapshot"));
    }
}
