//! NDJSON framing shared by the plugin SDK and the host. The reader never gives up on a bad
//! line: an oversized line becomes [`Frame::TooLong`] and reading goes on with the next line
//! (tokio-util's `LinesCodec` ends the stream after the first error, which would kill a plugin
//! connection over one bad line). The writer is one task that owns the stream, so lines from
//! concurrent tasks never interleave.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// One unit read from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the limit was skipped; `len` is its length in bytes.
    TooLong {
        /// Bytes in the skipped line.
        len: usize,
    },
}

/// Reads `\n`-terminated lines of at most `max` bytes. Cancel-safe: dropping a pending
/// [`LineReader::next_frame`] future loses no data.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    /// Length of an oversized line being skipped, if any.
    skipping: Option<usize>,
    max: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader with a maximum line length in bytes.
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::with_capacity(8192),
            scanned: 0,
            skipping: None,
            max,
            eof: false,
        }
    }

    /// The next frame, or `None` at end of stream. A final line without `\n` is returned as a
    /// line.
    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let rest = self.buf.split_off(end + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.truncate(end);
                self.scanned = 0;
                if let Some(skipped) = self.skipping.take() {
                    return Ok(Some(Frame::TooLong { len: skipped + line.len() }));
                }
                if line.len() > self.max {
                    return Ok(Some(Frame::TooLong { len: line.len() }));
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(Frame::Line(line)));
            }
            if self.buf.len() > self.max {
                // Drop what we have of the oversized line and keep counting until its end.
                *self.skipping.get_or_insert(0) += self.buf.len();
                self.buf.clear();
            }
            self.scanned = self.buf.len();
            if self.eof {
                if let Some(skipped) = self.skipping.take() {
                    return Ok(Some(Frame::TooLong { len: skipped + self.buf.len() }));
                }
                if self.buf.is_empty() {
                    return Ok(None);
                }
                self.scanned = 0;
                return Ok(Some(Frame::Line(std::mem::take(&mut self.buf))));
            }
            self.buf.reserve(8192);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
    }
}

/// A cloneable handle that queues whole lines for the single writer task.
#[derive(Debug, Clone)]
pub struct LineSender {
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl LineSender {
    /// Queues one line (without `\n`). Returns false when the writer has stopped.
    pub fn send(&self, mut line: Vec<u8>) -> bool {
        line.push(b'\n');
        self.tx.send(line).is_ok()
    }

    /// Whether the writer task has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Starts the writer task. It ends when every [`LineSender`] is dropped (after writing what was
/// queued) or on the first write error; the returned handle yields that error.
pub fn spawn_writer<W>(mut inner: W) -> (LineSender, tokio::task::JoinHandle<io::Result<()>>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let task = tokio::spawn(async move {
        let mut batch = Vec::new();
        while let Some(line) = rx.recv().await {
            batch.clear();
            batch.extend_from_slice(&line);
            // Coalesce what is already queued into one write: fewer syscalls under load.
            while batch.len() < 64 * 1024 {
                match rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            inner.write_all(&batch).await?;
            inner.flush().await?;
        }
        inner
            .shutdown()
            .await
            .or_else(|e| if e.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e) })
    });
    (LineSender { tx }, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(f) = reader.next_frame().await.unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_a_final_partial_line() {
        assert_eq!(
            frames(b"a\nbc\r\n\nlast", 100).await,
            vec![line("a"), line("bc"), line(""), line("last")]
        );
    }

    #[tokio::test]
    async fn oversized_line_is_skipped_and_reading_goes_on() {
        let mut input = vec![b'x'; 50_000];
        input.extend_from_slice(b"\nok\n");
        assert_eq!(frames(&input, 1000).await, vec![Frame::TooLong { len: 50_000 }, line("ok")]);
        assert_eq!(frames(b"12345\n", 4).await, vec![Frame::TooLong { len: 5 }]);
        assert_eq!(frames(b"1234\n", 4).await, vec![line("1234")]);
    }

    #[tokio::test]
    async fn invalid_utf8_is_passed_on_as_bytes() {
        assert_eq!(
            frames(b"\xff\xfe\nok\n", 100).await,
            vec![Frame::Line(vec![0xff, 0xfe]), line("ok")]
        );
    }

    #[tokio::test]
    async fn writer_keeps_lines_whole() {
        let (client, mut server) = tokio::io::duplex(64);
        let (tx, task) = spawn_writer(client);
        let mut handles = Vec::new();
        for i in 0..8 {
            let tx = tx.clone();
            handles.push(tokio::spawn(async move {
                for j in 0..50 {
                    tx.send(format!("{i}-{j}-{}", "y".repeat(100)).into_bytes());
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        drop(tx);
        let mut out = Vec::new();
        server.read_to_end(&mut out).await.unwrap();
        task.await.unwrap().unwrap();
        let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
        assert_eq!(lines.len(), 400);
        assert!(lines.iter().all(|l| l.ends_with(&"y".repeat(100)) && l.matches('-').count() == 2));
    }
}
