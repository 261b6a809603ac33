//! Streamed transactions in progress (protocol 2), kept on disk until they commit or abort.
//!
//! Between Stream Start and Stream Stop the server sends changes of a transaction that has not committed
//! yet; their ids need its commit LSN, known only at Stream Commit. Each such transaction gets an
//! anonymous temporary file (deleted when closed) holding its messages as `u32 BE length ‖ message`, so a
//! transaction of any size takes no memory beyond a write buffer. A Stream Abort of the whole transaction
//! drops its file; of a subtransaction, it records the subtransaction so its changes are skipped at commit.

use std::collections::HashSet;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader, BufWriter};

/// The largest message a spool reads back (1 GiB, PostgreSQL's own message limit).
const MAX_RECORD: u32 = 1 << 30;

/// One streamed transaction's messages.
pub struct Spool {
    file: BufWriter<tokio::fs::File>,
    /// Subtransactions aborted while streaming: their changes are skipped at commit.
    pub aborted: HashSet<u32>,
    /// Messages written.
    pub messages: u64,
}

impl Spool {
    /// A new, empty spool in the system's temporary directory.
    pub fn new() -> std::io::Result<Self> {
        let f = tempfile::tempfile()?;
        Ok(Self {
            file: BufWriter::with_capacity(256 << 10, tokio::fs::File::from_std(f)),
            aborted: HashSet::new(),
            messages: 0,
        })
    }

    /// Appends one message.
    pub async fn push(&mut self, message: &[u8]) -> std::io::Result<()> {
        self.file.write_all(&(message.len() as u32).to_be_bytes()).await?;
        self.file.write_all(message).await?;
        self.messages += 1;
        Ok(())
    }

    /// Reads the messages back from the start, in order.
    pub async fn reader(mut self) -> std::io::Result<SpoolReader> {
        self.file.flush().await?;
        let mut f = self.file.into_inner();
        f.seek(std::io::SeekFrom::Start(0)).await?;
        Ok(SpoolReader {
            file: BufReader::with_capacity(256 << 10, f),
            buf: Vec::new(),
            left: self.messages,
        })
    }
}

/// Reads a spool's messages in order.
pub struct SpoolReader {
    file: BufReader<tokio::fs::File>,
    buf: Vec<u8>,
    left: u64,
}

impl SpoolReader {
    /// The next message, or `None` after the last.
    pub async fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let len = self.file.read_u32().await?;
        if len > MAX_RECORD {
            return Err(std::io::Error::other(format!("spool record of {len} bytes")));
        }
        self.buf.resize(len as usize, 0);
        self.file.read_exact(&mut self.buf).await?;
        Ok(Some(&self.buf))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn messages_come_back_in_order() {
        let mut s = super::Spool::new().unwrap();
        let big = vec![7u8; 1 << 20];
        for m in [&b"a"[..], b"", &big, b"last"] {
            s.push(m).await.unwrap();
        }
        let mut r = s.reader().await.unwrap();
        assert_eq!(r.next().await.unwrap(), Some(&b"a"[..]));
        assert_eq!(r.next().await.unwrap(), Some(&b""[..]));
        assert_eq!(r.next().await.unwrap().map(<[u8]>::len), Some(1 << 20));
        assert_eq!(r.next().await.unwrap(), Some(&b"last"[..]));
        assert_eq!(r.next().await.unwrap(), None);
    }
}
