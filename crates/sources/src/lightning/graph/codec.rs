//! A [`Graph`] as bytes, for the snapshot the node keeps so that a restart does not read the whole log.
//!
//! ```text
//! graph    channels u32 ‖ channel* ‖ nodes u32 ‖ node* ‖ last_announced (0 | 1 ‖ scid u64)
//! channel  scid u64 ‖ present u8 (1 announcement, 2 first_seen, 4 capacity, 8 closed_at)
//!          ‖ [bytes ‖ node_id_1 [33] ‖ node_id_2 [33]] ‖ [first_seen u32] ‖ [capacity u64] ‖ [closed_at u32]
//!          ‖ versions (direction 0) ‖ versions (direction 1)
//! node     node_id [33] ‖ versions
//! versions count u32 ‖ (timestamp u32 ‖ bytes)*
//! bytes    len u32 ‖ [len]
//! ```
//! Integers are big-endian. The container (version, checksum, the log position covered) is the caller's.
//! Decoding checks every length against the input and fails with what was wrong, never panics.

use super::{Channel, Graph, Raw, Versions};
use crate::lightning::gossip::ShortChannelId;
use crate::lightning::wire::MAX_MESSAGE_LEN;

/// Appends the encoding of `g` to `out`.
pub fn encode(g: &Graph, out: &mut Vec<u8>) {
    let put_u32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_be_bytes());
    let put_bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    };
    let put_versions = |out: &mut Vec<u8>, v: &Versions| {
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        for (t, raw) in v {
            out.extend_from_slice(&t.to_be_bytes());
            put_bytes(out, raw);
        }
    };
    // Sorted, so that equal graphs encode to equal bytes.
    let mut scids: Vec<_> = g.channels.keys().copied().collect();
    scids.sort_unstable();
    put_u32(out, scids.len() as u32);
    for scid in scids {
        let c = &g.channels[&scid];
        out.extend_from_slice(&scid.0.to_be_bytes());
        let present = u8::from(c.announcement.is_some() && c.node_ids.is_some())
            | (u8::from(c.first_seen.is_some()) << 1)
            | (u8::from(c.capacity_sat.is_some()) << 2)
            | (u8::from(c.closed_at.is_some()) << 3);
        out.push(present);
        if let (Some(a), Some([n1, n2])) = (&c.announcement, &c.node_ids) {
            put_bytes(out, a);
            out.extend_from_slice(n1);
            out.extend_from_slice(n2);
        }
        if let Some(t) = c.first_seen {
            put_u32(out, t);
        }
        if let Some(sat) = c.capacity_sat {
            out.extend_from_slice(&sat.to_be_bytes());
        }
        if let Some(t) = c.closed_at {
            put_u32(out, t);
        }
        put_versions(out, &c.updates[0]);
        put_versions(out, &c.updates[1]);
    }
    let mut ids: Vec<_> = g.nodes.keys().copied().collect();
    ids.sort_unstable();
    put_u32(out, ids.len() as u32);
    for id in ids {
        out.extend_from_slice(&id);
        put_versions(out, &g.nodes[&id]);
    }
    match g.last_announced {
        Some(s) => {
            out.push(1);
            out.extend_from_slice(&s.0.to_be_bytes());
        }
        None => out.push(0),
    }
}

struct Input<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let s = self.buf.get(self.at..self.at.saturating_add(n)).ok_or_else(|| {
            format!(
                "{what}: needs {n} bytes at offset {}, only {} left",
                self.at,
                self.buf.len() - self.at
            )
        })?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn id(&mut self, what: &str) -> Result<[u8; 33], String> {
        Ok(self.take(33, what)?.try_into().expect("33 bytes"))
    }
    fn bytes(&mut self, what: &str) -> Result<Raw, String> {
        let n = self.u32(what)? as usize;
        if n > MAX_MESSAGE_LEN {
            return Err(format!("{what}: a {n}-byte message is longer than any gossip message"));
        }
        Ok(Raw::from(self.take(n, what)?))
    }
    fn versions(&mut self, what: &str) -> Result<Versions, String> {
        let n = self.u32(what)?;
        let mut v = Versions::new();
        for _ in 0..n {
            let t = self.u32(what)?;
            v.insert(t, self.bytes(what)?);
        }
        Ok(v)
    }
}

/// Decodes what [`encode`] wrote (exactly all of `buf`).
pub fn decode(buf: &[u8]) -> Result<Graph, String> {
    let mut r = Input { buf, at: 0 };
    let mut g = Graph::default();
    let channels = r.u32("channel count")?;
    for _ in 0..channels {
        let scid = ShortChannelId(r.u64("short_channel_id")?);
        let present = r.u8("channel fields")?;
        let mut c = Channel::default();
        if present & 1 != 0 {
            c.announcement = Some(r.bytes("announcement")?);
            c.node_ids = Some([r.id("node_id_1")?, r.id("node_id_2")?]);
        }
        if present & 2 != 0 {
            c.first_seen = Some(r.u32("first_seen")?);
        }
        if present & 4 != 0 {
            c.capacity_sat = Some(r.u64("capacity")?);
        }
        if present & 8 != 0 {
            c.closed_at = Some(r.u32("closed_at")?);
        }
        c.updates = [r.versions("updates")?, r.versions("updates")?];
        g.channels.insert(scid, c);
    }
    let nodes = r.u32("node count")?;
    for _ in 0..nodes {
        let id = r.id("node_id")?;
        g.nodes.insert(id, r.versions("node announcements")?);
    }
    g.last_announced = match r.u8("last_announced")? {
        0 => None,
        1 => Some(ShortChannelId(r.u64("last_announced")?)),
        other => return Err(format!("last_announced: unknown marker {other}")),
    };
    if r.at != buf.len() {
        return Err(format!("{} bytes left after the graph", buf.len() - r.at));
    }
    Ok(g)
}
