//! Compressing a stream in chunks on a bounded thread pool and writing the results in
//! order: the one primitive behind the bundle writer's zstd frames
//! ([`crate::bundle::writer`]) and the layer converter's gzip members
//! ([`crate::source::convert`]). It knows nothing of either format: the per-chunk
//! compress function and what "writing a chunk" records are its users' business.
//!
//! A [`Pool`] is a rayon pool, the compress function (one zstd frame, one gzip member)
//! and a budget of chunks in flight. A [`Stream`] cuts one stream into chunks of at most
//! its chunk size, either pushed ([`Stream::write`], with [`Stream::cut`] ending a chunk
//! early where the caller wants a boundary) or pulled ([`Stream::read_from`]), hands each
//! chunk to the pool and gives the compressed chunks, in stream order, to its
//! [`ChunkOut`]. Why it is shaped this way:
//!
//! - Memory is bounded by the budget whatever the stream's size: a chunk takes a slot
//!   before its first byte is buffered and gives it back only once its compressed form
//!   is written out, or, when its stream failed or was dropped, once the worker holding
//!   it is done with it. Several streams may share one pool and budget (layers converted
//!   at once): a stream waits for a free slot only when it has nothing in flight, and
//!   otherwise writes out its own oldest chunk, so streams never wait on each other.
//!   (A stream fed by `write` keeps the slot of its unfinished chunk between calls, so
//!   streams sharing a budget should be fed by `read_from`.)
//! - The output is deterministic: chunk boundaries depend only on the bytes, the chunk
//!   size and the cuts, never on timing or the number of threads.
//! - Errors (compressing a chunk, writing the output, reading the input) come back from
//!   the call that meets them; what later chunks produced is thrown away.
//! - Shutdown: dropping a stream writes nothing more, and its chunks that no worker has
//!   started are skipped; the pool's threads end once idle after the last handle to the
//!   pool is gone. To keep everything compressed or pending (a bundle kept on Ctrl-C),
//!   call [`Stream::drain`] first. [`Stream::read_from`] fails its next read once Ctrl-C
//!   or SIGTERM has been received ([`crate::interrupt`]), and `write` and `read_from`
//!   stop waiting for a busy pool then (a chunk can take minutes: a coarse zstd frame
//!   at level 19); `drain` does not look at the flag, because a stream must still drain
//!   after one.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, sync_channel};
use std::time::Duration;

use crate::interrupt::InterruptibleReader;
use crate::sync::{Permit, Semaphore};

/// Compresses one chunk into one self-contained unit (a zstd frame, a gzip member).
type CompressFn = dyn Fn(&[u8]) -> io::Result<Vec<u8>> + Send + Sync;

/// Worker threads, the compress function and the budget of chunks in flight, shared by
/// every [`Stream`] started on it (cloning is cheap and shares them).
#[derive(Clone)]
pub(crate) struct Pool(Arc<Shared>);

struct Shared {
    workers: rayon::ThreadPool,
    budget: Arc<Semaphore>,
    compress: Arc<CompressFn>,
    label: &'static str,
}

impl Pool {
    /// A pool of `threads` threads named `airlock-<label>-<i>` (at least one), holding
    /// at most `in_flight` chunks at once (at least one) across all its streams,
    /// compressing each with `compress`.
    pub fn new(
        label: &'static str,
        threads: usize,
        in_flight: usize,
        compress: impl Fn(&[u8]) -> io::Result<Vec<u8>> + Send + Sync + 'static,
    ) -> io::Result<Pool> {
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(move |i| format!("airlock-{label}-{i}"))
            .build()
            .map_err(io::Error::other)?;
        Ok(Pool(Arc::new(Shared {
            workers,
            budget: Arc::new(Semaphore::new(in_flight.max(1))),
            compress: Arc::new(compress),
            label,
        })))
    }
}

/// Where a stream's compressed chunks go, in stream order.
pub(crate) trait ChunkOut {
    /// Takes the compressed form of the next chunk, which held `input_len` bytes.
    fn put(&mut self, compressed: &[u8], input_len: usize) -> io::Result<()>;
}

/// What a worker hands back: the compressed chunk, its input size, and its slot.
type Done = (io::Result<Vec<u8>>, usize, Permit);

/// One stream cut into chunks, compressed on a [`Pool`] and written in order to `O`;
/// see the module docs.
pub(crate) struct Stream<O> {
    pool: Pool,
    chunk_size: usize,
    /// The chunk being filled by `write`, with its slot.
    filling: Option<(Vec<u8>, Permit)>,
    /// Chunks handed to the pool, oldest first.
    in_flight: VecDeque<Receiver<Done>>,
    /// Chunks handed to the pool so far.
    chunks: u64,
    out: O,
    /// Tells this stream's queued chunks to skip their work once the stream is gone.
    cancel: CancelOnDrop,
}

impl<O: ChunkOut> Stream<O> {
    /// A stream on `pool` cutting chunks of at most `chunk_size` bytes (at least one).
    pub fn new(pool: &Pool, chunk_size: usize, out: O) -> Stream<O> {
        Stream {
            pool: pool.clone(),
            chunk_size: chunk_size.max(1),
            filling: None,
            in_flight: VecDeque::new(),
            chunks: 0,
            out,
            cancel: CancelOnDrop(Arc::new(AtomicBool::new(false))),
        }
    }

    pub(crate) fn get_ref(&self) -> &O {
        &self.out
    }

    pub(crate) fn get_mut(&mut self) -> &mut O {
        &mut self.out
    }

    /// The output as it is: chunks not yet written are dropped (see [`drain`](Self::drain)).
    pub fn into_inner(self) -> O {
        self.out
    }

    /// Buffers up to a chunk's worth of `buf` and returns how much it took (like
    /// `io::Write::write`). A full chunk goes to the pool at once; starting a new one may
    /// first wait for a slot, writing out finished chunks meanwhile.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.filling.is_none() {
            let permit = self.acquire()?;
            self.filling = Some((Vec::with_capacity(self.chunk_size), permit));
        }
        let (chunk, _) = self.filling.as_mut().expect("a chunk is being filled");
        let n = buf.len().min(self.chunk_size - chunk.len());
        chunk.extend_from_slice(&buf[..n]);
        if chunk.len() == self.chunk_size {
            self.cut();
        }
        Ok(n)
    }

    /// Ends the chunk being filled, if it holds anything, and hands it to the pool.
    pub fn cut(&mut self) {
        if let Some((chunk, permit)) = self.filling.take() {
            self.submit(chunk, permit);
        }
    }

    /// Ends the chunk being filled and writes out every chunk, waiting for the pool. The
    /// stream can go on afterwards.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        self.cut();
        while self.write_oldest()? {}
        Ok(())
    }

    /// [`drain`](Self::drain)s and returns the output.
    pub fn finish(mut self) -> io::Result<O> {
        self.drain()?;
        Ok(self.into_inner())
    }

    /// Reads `input` to its end in chunks of the chunk size, showing each to `seen`
    /// before it is compressed (for hashes and progress). A slot is taken before each
    /// chunk is read. A stream that ends up with no chunk at all gets one empty chunk,
    /// as a compressed stream of nothing is still one frame or member. Fails the next
    /// read once Ctrl-C or SIGTERM has been received.
    pub fn read_from(
        &mut self,
        input: &mut dyn Read,
        seen: &mut dyn FnMut(&[u8]),
    ) -> io::Result<()> {
        self.cut();
        let mut input = InterruptibleReader(input);
        loop {
            let permit = self.acquire()?;
            let mut chunk = Vec::with_capacity(self.chunk_size);
            (&mut input)
                .take(self.chunk_size as u64)
                .read_to_end(&mut chunk)?;
            let eof = chunk.len() < self.chunk_size;
            if chunk.is_empty() && self.chunks > 0 {
                return Ok(());
            }
            seen(&chunk);
            self.submit(chunk, permit);
            if eof {
                return Ok(());
            }
        }
    }

    fn submit(&mut self, chunk: Vec<u8>, permit: Permit) {
        let (tx, rx) = sync_channel(1);
        let compress = Arc::clone(&self.pool.0.compress);
        let cancelled = Arc::clone(&self.cancel.0);
        self.pool.0.workers.spawn(move || {
            if cancelled.load(Ordering::Relaxed) {
                return; // The chunk and its slot are dropped here.
            }
            let result = compress(&chunk);
            let input_len = chunk.len();
            drop(chunk);
            let _ = tx.send((result, input_len, permit));
        });
        self.in_flight.push_back(rx);
        self.chunks += 1;
    }

    /// A slot for the next chunk: waits for the budget only with nothing of this stream
    /// in flight, otherwise writes out this stream's own chunks until one is free.
    fn acquire(&mut self) -> io::Result<Permit> {
        self.write_ready()?;
        loop {
            if self.in_flight.is_empty() {
                return Ok(self.pool.0.budget.acquire());
            }
            if let Some(permit) = self.pool.0.budget.try_acquire() {
                return Ok(permit);
            }
            self.write_oldest_unless_interrupted()?;
        }
    }

    /// [`write_oldest`](Self::write_oldest), but giving up once Ctrl-C or SIGTERM has
    /// been received: a writer must not sit behind a chunk that takes minutes (a coarse
    /// frame at a high zstd level) after the user asked to stop. The chunk stays queued,
    /// so a [`drain`](Self::drain) still writes it out.
    fn write_oldest_unless_interrupted(&mut self) -> io::Result<()> {
        while let Some(rx) = self.in_flight.front() {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(done) => {
                    self.in_flight.pop_front();
                    return self.put(done);
                }
                Err(RecvTimeoutError::Timeout) if crate::interrupt::requested() => {
                    return Err(crate::interrupt::io_error());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.in_flight.pop_front();
                    return Err(self.lost());
                }
            }
        }
        Ok(())
    }

    /// Writes out the oldest chunk in flight, waiting for it; false when there is none.
    fn write_oldest(&mut self) -> io::Result<bool> {
        let Some(rx) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        let done = rx.recv().map_err(|_| self.lost())?;
        self.put(done)?;
        Ok(true)
    }

    /// Writes out the chunks at the head of the queue that are compressed already,
    /// without waiting for any other: what a bundle kept on Ctrl-C keeps when its chunks
    /// take too long to wait for (coarse zstd frames). Chunks still in flight and the one
    /// being filled stay where they are.
    pub(crate) fn write_ready(&mut self) -> io::Result<()> {
        while let Some(rx) = self.in_flight.front() {
            let done = match rx.try_recv() {
                Ok(done) => done,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    self.in_flight.pop_front();
                    return Err(self.lost());
                }
            };
            self.in_flight.pop_front();
            self.put(done)?;
        }
        Ok(())
    }

    fn put(&mut self, (result, input_len, permit): Done) -> io::Result<()> {
        self.out.put(&result?, input_len)?;
        drop(permit);
        Ok(())
    }

    fn lost(&self) -> io::Error {
        io::Error::other(format!("a {} compression thread died", self.pool.0.label))
    }
}

/// Sets the stream's flag when the stream goes, so that its queued chunks skip their work.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Collects what a stream writes: each chunk's output and input size.
    #[derive(Default)]
    struct Collect(Vec<(Vec<u8>, usize)>);

    impl ChunkOut for Collect {
        fn put(&mut self, compressed: &[u8], input_len: usize) -> io::Result<()> {
            self.0.push((compressed.to_vec(), input_len));
            Ok(())
        }
    }

    /// "Compresses" a chunk into its first byte and length; chunks starting with a low
    /// byte take longest, so they finish out of order.
    fn tag_pool(threads: usize, in_flight: usize) -> Pool {
        Pool::new("test", threads, in_flight, |c: &[u8]| {
            let first = c.first().copied().unwrap_or(0);
            std::thread::sleep(Duration::from_micros(200 * u64::from(20 - first % 20)));
            if first == b'!' {
                return Err(io::Error::other("bad chunk"));
            }
            Ok(vec![first, c.len() as u8])
        })
        .unwrap()
    }

    #[test]
    fn chunks_are_written_in_order_at_cuts_and_chunk_size() {
        let pool = tag_pool(3, 4);
        let mut s = Stream::new(&pool, 5, Collect::default());
        fn write_all(s: &mut Stream<Collect>, mut buf: &[u8]) {
            while !buf.is_empty() {
                let n = s.write(buf).unwrap();
                buf = &buf[n..];
            }
        }
        write_all(&mut s, &[1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3]);
        s.cut();
        s.cut(); // nothing to end: no empty chunk
        write_all(&mut s, &[4]);
        s.cut();
        for i in 5..15u8 {
            write_all(&mut s, &[i; 5]);
        }
        let out = s.finish().unwrap().0;
        let mut want = vec![
            (vec![1, 5], 5),
            (vec![2, 5], 5),
            (vec![3, 2], 2),
            (vec![4, 1], 1),
        ];
        want.extend((5..15u8).map(|i| (vec![i, 5], 5)));
        assert_eq!(out, want);
    }

    #[test]
    fn read_from_cuts_at_chunk_size_and_never_leaves_a_stream_empty() {
        let pool = tag_pool(2, 3);
        for (n, chunks) in [(0, 1), (1, 1), (4, 1), (8, 2), (9, 3), (40, 10)] {
            let input: Vec<u8> = (0..n as u8).collect();
            let mut s = Stream::new(&pool, 4, Collect::default());
            let mut seen = Vec::new();
            s.read_from(&mut &input[..], &mut |c| seen.extend_from_slice(c))
                .unwrap();
            let out = s.finish().unwrap().0;
            assert_eq!(seen, input);
            assert_eq!(out.len(), chunks, "{n} bytes");
            let firsts: Vec<u8> = out.iter().map(|(c, _)| c[0]).collect();
            let want: Vec<u8> = (0..chunks).map(|i| (4 * i) as u8).collect();
            assert_eq!(firsts, want, "{n} bytes");
            assert_eq!(out.iter().map(|(_, l)| l).sum::<usize>(), n);
        }
    }

    #[test]
    fn a_failed_chunk_fails_the_stream() {
        let pool = tag_pool(2, 3);
        let mut s = Stream::new(&pool, 2, Collect::default());
        let input = b"aabb!!ccddeeffgg";
        let err = s
            .read_from(&mut &input[..], &mut |_| {})
            .and_then(|()| s.drain())
            .unwrap_err();
        assert_eq!(err.to_string(), "bad chunk");
        assert!(s.get_ref().0.len() <= 2);
    }

    #[test]
    fn streams_sharing_a_small_budget_all_finish() {
        let pool = tag_pool(2, 2);
        std::thread::scope(|scope| {
            for k in 0..4u8 {
                let pool = &pool;
                scope.spawn(move || {
                    let input: Vec<u8> = (0..200).map(|i| b'a' + (k + i) % 26).collect();
                    let mut s = Stream::new(pool, 3, Collect::default());
                    s.read_from(&mut &input[..], &mut |_| {}).unwrap();
                    let out = s.finish().unwrap().0;
                    assert_eq!(out.len(), 67);
                    assert!(
                        out.iter()
                            .enumerate()
                            .all(|(i, (c, _))| c[0] == input[3 * i])
                    );
                });
            }
        });
    }

    #[test]
    fn dropping_a_stream_skips_its_queued_chunks() {
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Mutex::new(()));
        let (started_tx, started) = std::sync::mpsc::channel();
        let started_tx = Mutex::new(started_tx);
        let pool = {
            let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
            Pool::new("test", 1, 8, move |c: &[u8]| {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = started_tx.lock().unwrap().send(());
                drop(gate.lock().unwrap());
                Ok(c.to_vec())
            })
            .unwrap()
        };
        let held = gate.lock().unwrap();
        let mut s = Stream::new(&pool, 1, Collect::default());
        s.write(b"abcd").unwrap();
        s.write(b"bcd").unwrap();
        s.write(b"cd").unwrap();
        started.recv().unwrap(); // the first chunk is being compressed
        drop(s);
        drop(held);
        // The one pool thread runs chunks in order: once a later stream is done, the
        // dropped stream's queued chunks were reached, and skipped.
        let mut later = Stream::new(&pool, 1, Collect::default());
        later.write(b"z").unwrap();
        assert_eq!(later.finish().unwrap().0, vec![(b"z".to_vec(), 1)]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
