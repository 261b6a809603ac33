//! Following a newline-delimited JSON file.

use super::FileSourceConfig;
use crate::json_event::parse_item;
use async_trait::async_trait;
use std::io::SeekFrom;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncSeekExt, BufReader};
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

/// How much of a bad line a reject keeps.
const EXCERPT: usize = 1024;

/// One complete line as [`Lines::next_line`] returns it.
pub(crate) struct Line<'a> {
    /// Its bytes on disk, newline included.
    pub len: u64,
    /// Its text without the newline; `None` when it was longer than the cap (and skipped).
    pub text: Option<&'a [u8]>,
    /// The start of an overlong line.
    pub excerpt: Vec<u8>,
}

/// Splits a byte stream into lines of at most `max` bytes without holding more than `max` bytes of one
/// line: a longer line is counted and skipped as it is read, keeping only its first [`EXCERPT`] bytes.
/// A partial last line stays here between calls, so it is never read twice.
pub(crate) struct Lines {
    max: usize,
    buf: Vec<u8>,
    /// Bytes of an overlong line consumed so far (0: not skipping).
    skipped: u64,
    excerpt: Vec<u8>,
}

impl Lines {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            buf: Vec::new(),
            skipped: 0,
            excerpt: Vec::new(),
        }
    }

    /// Forgets a partial line (the file was reopened at the checkpoint).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.skipped = 0;
        self.excerpt.clear();
    }

    /// Bytes of line text held in memory (capacity).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes read past the last complete line.
    pub(crate) fn pending(&self) -> u64 {
        self.buf.len() as u64 + self.skipped
    }

    /// The next complete line, or `None` at the end of the input (a partial line is kept).
    pub(crate) async fn next_line<R: AsyncBufRead + Unpin>(&mut self, r: &mut R) -> std::io::Result<Option<Line<'_>>> {
        if self.skipped == 0 && self.buf.last() == Some(&b'\n') {
            // The line returned last time.
            self.buf.clear();
        }
        loop {
            let chunk = r.fill_buf().await?;
            if chunk.is_empty() {
                return Ok(None);
            }
            let newline = chunk.iter().position(|b| *b == b'\n');
            let take = newline.map_or(chunk.len(), |i| i + 1);
            let content = newline.unwrap_or(chunk.len());
            if self.skipped > 0 {
                self.skipped += take as u64;
            } else if self.buf.len() + content > self.max {
                let room = EXCERPT.saturating_sub(self.buf.len().min(EXCERPT));
                self.excerpt.clear();
                self.excerpt.extend_from_slice(&self.buf[..self.buf.len().min(EXCERPT)]);
                self.excerpt.extend_from_slice(&chunk[..content.min(room)]);
                self.skipped = (self.buf.len() + take) as u64;
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(&chunk[..take]);
            }
            r.consume(take);
            if newline.is_none() {
                continue;
            }
            if self.skipped > 0 {
                let len = std::mem::take(&mut self.skipped);
                return Ok(Some(Line {
                    len,
                    text: None,
                    excerpt: std::mem::take(&mut self.excerpt),
                }));
            }
            let len = self.buf.len() as u64;
            return Ok(Some(Line {
                len,
                text: Some(&self.buf[..self.buf.len() - 1]),
                excerpt: Vec::new(),
            }));
        }
    }
}

/// Refuses an event whose `data` is larger than `max` bytes of compact JSON.
pub(crate) fn check_event_size(ev: tributary_core::NewEvent, max: usize) -> Result<tributary_core::NewEvent, String> {
    if json_len_exceeds(&ev.data, max) {
        return Err(format!(
            "event.data: more than {max} bytes of JSON (max_event_bytes); send smaller events or raise max_event_bytes"
        ));
    }
    Ok(ev)
}

/// Whether the compact JSON of `v` is longer than `max` bytes (stops writing once it is).
pub(crate) fn json_len_exceeds(v: &serde_json::Value, max: usize) -> bool {
    struct Count {
        n: usize,
        max: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.n += b.len();
            if self.n > self.max {
                return Err(std::io::Error::other("too long"));
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count { n: 0, max }, v).is_err()
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
        let mut lines = Lines::new(self.config.max_line_bytes);
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
                        lines.reset();
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
                    let Some(line) = lines
                        .next_line(r)
                        .await
                        .map_err(|e| io_err(&cx, format!("cannot read {}: {e}", path.display())))?
                    else {
                        // End of file, possibly in the middle of a line being written: its bytes so far
                        // are kept (at most `max_line_bytes`) and the rest is read at the next poll.
                        at_eof = true;
                        break;
                    };
                    let offset = next.offset;
                    next.offset += line.len;
                    next.line += 1;
                    let position = format!("line {}", next.line);
                    let text = match line.text {
                        Some(text) => text,
                        None => {
                            let reason = format!(
                                "line of {} bytes at byte offset {offset} is longer than max_line_bytes ({}); skipped without reading it into memory",
                                line.len - 1,
                                self.config.max_line_bytes
                            );
                            tracing::warn!(source = %cx.name, line = next.line, %reason, "overlong line skipped and kept as a reject");
                            batch.rejects.push(Reject {
                                position,
                                reason,
                                excerpt: String::from_utf8_lossy(&line.excerpt).into_owned(),
                                at: Timestamp::now(),
                            });
                            continue;
                        }
                    };
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice(text)
                        .map_err(|e| format!("not valid JSON: {e}"))
                        .and_then(|v| parse_item(v, None).map_err(|e| e.to_string()))
                        .and_then(|ev| check_event_size(ev, self.config.max_event_bytes))
                    {
                        Ok(mut ev) => {
                            ev.position = Some(position);
                            batch.events.push(ev);
                        }
                        Err(reason) => {
                            tracing::warn!(source = %cx.name, line = next.line, %reason, "bad line skipped and kept as a reject");
                            batch.rejects.push(Reject {
                                position,
                                reason,
                                excerpt: String::from_utf8_lossy(&text[..text.len().min(EXCERPT)]).into_owned(),
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
                    } else if meta.len() < pos.offset + lines.pending() {
                        // Shorter than what was read: truncated (or rewritten in place). Reopen.
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
