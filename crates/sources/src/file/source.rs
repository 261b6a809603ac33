//! Following a newline-delimited JSON file.

use super::FileSourceConfig;
use crate::json_event::parse_item;
use async_trait::async_trait;
use std::io::SeekFrom;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tributary_core::store::{AppendBatch, Checkpoint};
use tributary_core::{Reject, Source, SourceContext, SourceError, Timestamp};

/// A running `file` source.
pub struct FileSource {
    config: FileSourceConfig,
}

impl FileSource {
    /// A source from its config.
    pub fn new(config: FileSourceConfig) -> Self {
        Self { config }
    }

    fn partition(&self) -> String {
        self.config.path.display().to_string()
    }
}

/// Where reading resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub offset: u64,
    pub line: u64,
}

impl Position {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (o, l) = s.split_once(':')?;
        Some(Self {
            offset: o.parse().ok()?,
            line: l.parse().ok()?,
        })
    }
    pub(crate) fn render(self) -> String {
        format!("{}:{}", self.offset, self.line)
    }
}

fn io_err(cx: &SourceContext, what: String) -> SourceError {
    SourceError::Io {
        source_name: cx.name.clone(),
        message: what,
    }
}

#[async_trait]
impl Source for FileSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let path = self.config.path.clone();
        let partition = self.partition();
        let store_err = |error| SourceError::Store {
            source_name: cx.name.clone(),
            error,
        };
        let mut pos = cx
            .store
            .checkpoints(&cx.name)
            .await
            .map_err(store_err)?
            .into_iter()
            .find(|c| c.partition == partition)
            .and_then(|c| Position::parse(&c.position))
            .unwrap_or_default();
        tracing::info!(source = %cx.name, path = %path.display(), offset = pos.offset, line = pos.line, "file source starting");
        let mut reader: Option<BufReader<tokio::fs::File>> = None;
        // The inode of the open file: a different one at the path means the file was rotated by rename.
        let mut inode: Option<u64> = None;
        let mut line_buf = Vec::with_capacity(1024);
        loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            if reader.is_none() {
                match tokio::fs::File::open(&path).await {
                    Ok(mut f) => {
                        let meta = f.metadata().await.ok();
                        let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
                        inode = meta.map(|m| std::os::unix::fs::MetadataExt::ino(&m));
                        if len < pos.offset {
                            tracing::warn!(source = %cx.name, path = %path.display(), len, offset = pos.offset, "file is shorter than its checkpoint: it was truncated or replaced; reading it from the start");
                            pos = Position::default();
                        }
                        f.seek(SeekFrom::Start(pos.offset)).await.map_err(|e| {
                            io_err(&cx, format!("cannot seek {} to {}: {e}", path.display(), pos.offset))
                        })?;
                        reader = Some(BufReader::with_capacity(256 * 1024, f));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        tracing::debug!(source = %cx.name, path = %path.display(), "file does not exist yet; waiting");
                    }
                    Err(e) => {
                        return Err(io_err(
                            &cx,
                            format!(
                                "cannot open {}: {e}; check the path and its permissions",
                                path.display()
                            ),
                        ));
                    }
                }
            }
            let mut batch = AppendBatch {
                source: cx.name.clone(),
                observer: cx.name.clone(),
                seen_at: Timestamp::now(),
                ..AppendBatch::default()
            };
            let mut next = pos;
            let mut at_eof = reader.is_none();
            if let Some(r) = reader.as_mut() {
                while batch.events.len() + batch.rejects.len() < self.config.batch_lines {
                    line_buf.clear();
                    let n = r
                        .read_until(b'\n', &mut line_buf)
                        .await
                        .map_err(|e| io_err(&cx, format!("cannot read {}: {e}", path.display())))?;
                    if n == 0 || line_buf.last() != Some(&b'\n') {
                        // End of file, possibly in the middle of a line being written: retry that line later.
                        if n > 0 {
                            r.seek(SeekFrom::Start(next.offset))
                                .await
                                .map_err(|e| io_err(&cx, format!("cannot seek {}: {e}", path.display())))?;
                        }
                        at_eof = true;
                        break;
                    }
                    next.offset += n as u64;
                    next.line += 1;
                    let text = &line_buf[..n - 1];
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice(text)
                        .map_err(|e| format!("not valid JSON: {e}"))
                        .and_then(|v| parse_item(v, None).map_err(|e| e.to_string()))
                    {
                        Ok(mut ev) => {
                            ev.position = Some(format!("line {}", next.line));
                            batch.events.push(ev);
                        }
                        Err(reason) => {
                            tracing::warn!(source = %cx.name, line = next.line, %reason, "bad line skipped and kept as a reject");
                            batch.rejects.push(Reject {
                                position: format!("line {}", next.line),
                                reason,
                                excerpt: String::from_utf8_lossy(&text[..text.len().min(1024)]).into_owned(),
                                at: Timestamp::now(),
                            });
                        }
                    }
                }
            }
            if next != pos {
                batch.checkpoint = Some(Checkpoint {
                    partition: partition.clone(),
                    position: next.render(),
                });
                cx.store.append(batch).await.map_err(store_err)?;
                pos = next;
            }
            if at_eof {
                // Re-open on the next round when the file shrank (rotation or truncation).
                if let Ok(meta) = tokio::fs::metadata(&path).await {
                    let rotated = inode.is_some_and(|i| i != std::os::unix::fs::MetadataExt::ino(&meta));
                    if rotated {
                        // Everything complete in the old file is read: follow the new one from its start.
                        tracing::info!(source = %cx.name, path = %path.display(), "file was rotated; following the new file from its start");
                        pos = Position::default();
                        reader = None;
                        let reset = AppendBatch {
                            source: cx.name.clone(),
                            observer: cx.name.clone(),
                            seen_at: Timestamp::now(),
                            checkpoint: Some(Checkpoint {
                                partition: partition.clone(),
                                position: pos.render(),
                            }),
                            ..AppendBatch::default()
                        };
                        cx.store.append(reset).await.map_err(store_err)?;
                    } else if meta.len() < pos.offset {
                        reader = None;
                    }
                }
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.config.poll_interval()) => {}
                }
            }
        }
    }
}
