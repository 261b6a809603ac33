//! Following a Core Lightning `gossip_store` file (layout in [`formats`](crate::lightning::formats)).
//!
//! Core Lightning rewrites its store by writing a new file, renaming it over the path, then appending a
//! `gossip_store_ended` record to the old one. So at the end of the file, another inode at the path (or a
//! file shorter than the offset) means: start on the new file from its start. A restart resumes from the
//! checkpoint when the inode is the same, else from the start of the file now at the path.

use super::task::{Shared, ingest, store_err};
use crate::lightning::events::Origin;
use crate::lightning::formats::{Format, Reader};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tributary_core::store::Checkpoint;
use tributary_core::{Reject, SourceContext, SourceError, Timestamp};

/// Where reading resumes: the byte offset in the file with this inode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub offset: u64,
    pub inode: u64,
}

impl Position {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (o, i) = s.split_once(':')?;
        Some(Self {
            offset: o.parse().ok()?,
            inode: i.parse().ok()?,
        })
    }
    pub(crate) fn render(self) -> String {
        format!("{}:{}", self.offset, self.inode)
    }
}

const CHUNK: usize = 1 << 20;

fn io_err(cx: &SourceContext, message: String) -> SourceError {
    SourceError::Io {
        source_name: cx.name.clone(),
        message,
    }
}

/// Follows `path` until shutdown.
pub(crate) async fn follow(
    cx: SourceContext,
    pipeline: Shared,
    path: PathBuf,
    poll: Duration,
    batch: usize,
) -> Result<(), SourceError> {
    let partition = path.display().to_string();
    let mut pos = cx
        .store
        .checkpoints(&cx.name)
        .await
        .map_err(store_err(&cx))?
        .into_iter()
        .find(|c| c.partition == partition)
        .and_then(|c| Position::parse(&c.position))
        .unwrap_or_default();
    tracing::info!(source = %cx.name, path = %partition, offset = pos.offset, "following gossip_store");
    'open: loop {
        let mut file = loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            match tokio::fs::File::open(&path).await {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!(source = %cx.name, path = %partition, "gossip_store does not exist yet; waiting");
                }
                Err(e) => {
                    return Err(io_err(
                        &cx,
                        format!("cannot open {partition}: {e}; check the path and its permissions"),
                    ));
                }
            }
            tokio::select! {
                _ = cx.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            }
        };
        let meta = file
            .metadata()
            .await
            .map_err(|e| io_err(&cx, format!("cannot stat {partition}: {e}")))?;
        if meta.ino() != pos.inode || meta.len() < pos.offset {
            if pos.offset > 0 {
                tracing::warn!(source = %cx.name, path = %partition, "gossip_store was rewritten; reading the new one from its start");
            }
            pos = Position {
                offset: 0,
                inode: meta.ino(),
            };
        }
        let mut reader = if pos.offset == 0 {
            Reader::new(Format::GossipStore)
        } else {
            Reader::resume(Format::GossipStore, pos.offset, 0)
        };
        file.seek(std::io::SeekFrom::Start(pos.offset))
            .await
            .map_err(|e| io_err(&cx, format!("cannot seek {partition}: {e}")))?;
        // `buf` holds the file from byte `base` on.
        let (mut buf, mut base) = (Vec::<u8>::new(), pos.offset);
        loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            let (mut items, mut rejects, mut need_more) = (Vec::new(), Vec::new(), false);
            while items.len() < batch {
                let at = (reader.offset() - base) as usize;
                match reader.next(&buf[at..], false) {
                    Ok(Some(rec)) if rec.is_store_ended() => {
                        // Core Lightning renamed the rewritten store over the path before writing this:
                        // the end-of-file check below sees the new inode and starts on it.
                        tracing::info!(source = %cx.name, path = %partition, "gossip_store_ended: the store was rewritten");
                    }
                    Ok(Some(rec)) => items.push((
                        rec.msg.to_vec(),
                        Origin {
                            position: rec.position(),
                            timestamp: rec.timestamp,
                        },
                    )),
                    Ok(None) => {
                        need_more = true;
                        break;
                    }
                    Err(e) if e.is_fatal() => return Err(io_err(&cx, format!("{partition}: {e}"))),
                    Err(e) => {
                        tracing::warn!(source = %cx.name, error = %e, "gossip_store record skipped and kept as a reject");
                        rejects.push(Reject {
                            position: format!("offset {}", reader.offset()),
                            reason: format!("malformed: {e}"),
                            excerpt: String::new(),
                            at: Timestamp::now(),
                        });
                    }
                }
            }
            if reader.offset() != pos.offset {
                pos.offset = reader.offset();
                let checkpoint = Checkpoint {
                    partition: partition.clone(),
                    position: pos.render(),
                };
                ingest(&cx, &pipeline, items, cx.name.clone(), rejects, Some(checkpoint)).await?;
            }
            if !need_more {
                continue;
            }
            // Compact only before reading more: draining after every batch would move the whole buffer.
            let consumed = (reader.offset() - base) as usize;
            buf.drain(..consumed);
            base = reader.offset();
            let old = buf.len();
            buf.resize(old + CHUNK, 0);
            let n = file
                .read(&mut buf[old..])
                .await
                .map_err(|e| io_err(&cx, format!("cannot read {partition}: {e}")))?;
            buf.truncate(old + n);
            if n > 0 {
                continue;
            }
            // At the end: a new inode or a shorter file means the store was replaced.
            if let Ok(m) = tokio::fs::metadata(&path).await
                && (m.ino() != pos.inode || m.len() < pos.offset)
            {
                continue 'open;
            }
            tokio::select! {
                _ = cx.shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn position_round_trip() {
        let p = Position {
            offset: 1234,
            inode: 99,
        };
        assert_eq!(Position::parse(&p.render()), Some(p));
        assert_eq!(Position::parse("12"), None);
    }
}
