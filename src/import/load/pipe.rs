//! A bounded in-process pipe between the thread that writes the `docker load` tar and
//! the engine request that reads it.
//!
//! Unlike an OS pipe, the reading end can tell a finished stream from a failed one: the
//! writer ends with [`PipeWriter::finish`] (the reader then sees end-of-file) or
//! [`PipeWriter::fail`] (the reader gets an error, so the HTTP request is aborted
//! instead of ending cleanly with a truncated tar the engine might accept). A writer
//! dropped without either also makes the reader fail. At most [`DEPTH`] chunks of
//! [`CHUNK`] bytes are in flight, so memory stays flat however large the images are.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes per message.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Messages in flight.
pub(crate) const DEPTH: usize = 8;

enum Msg {
    Data(Vec<u8>),
    Done,
    Failed(String),
}

/// The reading end went away (the engine stopped reading): the engine's own error
/// explains why, so callers report that one instead.
#[derive(Debug, thiserror::Error)]
#[error("the Docker engine stopped reading the image stream")]
pub(crate) struct ReaderGone;

/// A pipe: write the tar into the first, hand the second to the engine request.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        },
    )
}

pub(crate) struct PipeWriter {
    tx: SyncSender<Msg>,
    buf: Vec<u8>,
}

impl PipeWriter {
    fn send(&mut self, msg: Msg) -> io::Result<()> {
        // Not BrokenPipe: the binary treats a broken pipe as a reader that had enough.
        self.tx.send(msg).map_err(|_| io::Error::other(ReaderGone))
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(Msg::Data(full))?;
        }
        Ok(())
    }

    /// Sends what is buffered and marks the stream complete.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffer()?;
        self.send(Msg::Done)
    }

    /// Makes the reader fail with `why` (after the data already sent).
    pub fn fail(mut self, why: String) {
        let _ = self.send(Msg::Failed(why));
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buffer()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

pub(crate) struct PipeReader {
    rx: Receiver<Msg>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Msg::Done) => self.done = true,
                Ok(Msg::Failed(why)) => return Err(io::Error::other(why)),
                Err(_) => {
                    return Err(io::Error::other(
                        "the image stream stopped before it was complete",
                    ));
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_stream_ends_cleanly() {
        let (mut w, mut r) = pipe();
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                w.write_all(&i.to_le_bytes().repeat(300)).unwrap();
            }
            w.finish().unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got.len(), 1000 * 4 * 300);
        assert_eq!(&got[..4], &0u32.to_le_bytes());
    }

    #[test]
    fn failed_or_dropped_writer_is_an_error_not_eof() {
        let (mut w, mut r) = pipe();
        w.write_all(b"partial").unwrap();
        w.flush().unwrap();
        w.fail("blob is damaged".into());
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert!(e.to_string().contains("damaged"));
        assert_eq!(got, b"partial");

        let (w, mut r) = pipe();
        drop(w);
        assert!(r.read(&mut [0u8; 8]).is_err());
    }

    #[test]
    fn writer_notices_a_gone_reader() {
        let (mut w, r) = pipe();
        drop(r);
        let e = w.write_all(&vec![0u8; CHUNK * 2]).unwrap_err();
        assert!(e.get_ref().is_some_and(|i| i.is::<ReaderGone>()));
        assert_ne!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
