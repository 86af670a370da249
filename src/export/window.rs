//! The prefetch window between the fetch workers and the bundle writer: layers go into
//! the bundle in a fixed order while they are fetched in parallel, every byte reaches
//! the output's disk once, and memory stays bounded whatever the layer sizes.
//!
//! Each layer of the save has a [`Window`] slot, indexed by its place in the bundle.
//! The writer works on one slot at a time, the **head** ([`Window::next`]); workers fetch
//! the head and the slots after it (in order) and hand their bytes over chunk by chunk
//! ([`Window::place`], [`Window::push`], [`Window::spilled`]):
//!
//! - a chunk goes to memory when the window has room: [`WINDOW`] bytes for the slots
//!   behind the head, plus [`HEAD_ALLOWANCE`] bytes for the head itself;
//! - a chunk of a slot behind the head that does not fit is **spilled** to a file in
//!   the scratch directory ([`super::staging`], never the output's file system), and so
//!   is everything after it in that slot, so a slot's bytes are its memory chunks
//!   followed by its spill file;
//! - a chunk of the head that does not fit waits for the writer, which is draining it.
//!
//! A layer of at most [`VERIFY_FIRST`] bytes reaches the writer only once it is whole
//! and its digest checked, so a wrong download is fetched again ([`Window::reset`])
//! as it always was; a larger head **streams** into the writer as it arrives (the
//! writer verifies it as it streams, and the worker too): then a wrong byte fails the
//! save, which keeps the partial bundle up to that layer for the rerun.
//!
//! Workers do not start a slot behind the head while the spill files hold more than
//! [`SPILL_LIMIT`] bytes, so the scratch directory holds at most that plus the layers
//! being fetched. Memory: at most `WINDOW + HEAD_ALLOWANCE` bytes of layer data, plus
//! one [`CHUNK`] per worker and the one chunk the writer holds.
//!
//! Every wait is bounded by a short timeout and checks Ctrl-C ([`crate::interrupt`]) and
//! the cancel flag ([`Window::cancel`], set on the first failure), so nothing waits for a
//! worker or a writer that has stopped.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::interrupt;
use crate::sync::lock;

/// Bytes of layers behind the head that may wait in memory.
pub(crate) const WINDOW: u64 = 32 << 20;
/// Bytes the head may hold in memory beyond the window.
pub(crate) const HEAD_ALLOWANCE: u64 = 16 << 20;
/// Layers up to this size reach the writer whole and verified; larger ones stream.
pub(crate) const VERIFY_FIRST: u64 = HEAD_ALLOWANCE;
/// Bytes a worker reads from its source at a time.
pub(crate) const CHUNK: usize = 256 << 10;
/// No new slot behind the head is started while the spill files hold this much.
pub(crate) const SPILL_LIMIT: u64 = 1 << 30;

/// How often a wait looks at Ctrl-C and the cancel flag.
const TICK: Duration = Duration::from_millis(50);

/// Where a worker puts its next chunk ([`Window::place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// In memory (already counted against the window): [`Window::push`] it.
    Memory,
    /// At the end of the slot's spill file, then [`Window::spilled`].
    Spill,
}

/// What the writer is to do with the head ([`Window::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready<T> {
    /// The slot is complete and verified; `T` says where its bytes are.
    Done(T),
    /// A large layer still arriving: read it with a [`SlotReader`] as it comes.
    Stream,
}

/// Why a wait ended without its answer.
#[derive(Debug)]
pub(crate) struct Stopped;

impl From<Stopped> for io::Error {
    fn from(_: Stopped) -> io::Error {
        if interrupt::requested() {
            interrupt::io_error()
        } else {
            io::Error::other("cancelled because another transfer failed")
        }
    }
}

struct Slot<T> {
    size: u64,
    chunks: VecDeque<Vec<u8>>,
    /// Bytes in `chunks`.
    buffered: u64,
    /// Once set, every further byte of the slot goes to its spill file.
    spilling: bool,
    spill: Option<PathBuf>,
    /// Bytes written to the spill file and flushed.
    spilled: u64,
    done: Option<T>,
    /// The writer has started reading: a failure now fails the save.
    reading: bool,
}

struct State<T> {
    slots: Vec<Slot<T>>,
    head: usize,
    /// Bytes of all slots in memory.
    used: u64,
    /// Bytes in spill files not yet read back.
    spilled: u64,
    cancelled: bool,
}

/// The slots of one save; see the module docs. `T` is what a finished slot carries.
pub(crate) struct Window<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T: Copy> Window<T> {
    /// One slot per layer, of the given sizes, in bundle order.
    pub fn new(sizes: impl IntoIterator<Item = u64>) -> Window<T> {
        let slots = sizes
            .into_iter()
            .map(|size| Slot {
                size,
                chunks: VecDeque::new(),
                buffered: 0,
                spilling: false,
                spill: None,
                spilled: 0,
                done: None,
                reading: false,
            })
            .collect();
        Window {
            state: Mutex::new(State {
                slots,
                head: 0,
                used: 0,
                spilled: 0,
                cancelled: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Waits `TICK` at most for a change; fails once cancelled or interrupted.
    fn wait<'a>(&self, st: MutexGuard<'a, State<T>>) -> Result<MutexGuard<'a, State<T>>, Stopped> {
        if st.cancelled || interrupt::requested() {
            return Err(Stopped);
        }
        let (st, _) = self
            .changed
            .wait_timeout(st, TICK)
            .unwrap_or_else(|e| e.into_inner());
        Ok(st)
    }

    /// Stops every wait: a transfer failed (or the save is being abandoned).
    pub fn cancel(&self) {
        lock(&self.state).cancelled = true;
        self.changed.notify_all();
    }

    /// A worker may start slot `i`: waits while it is behind the head and the spill
    /// files are full.
    pub fn may_start(&self, i: usize) -> Result<(), Stopped> {
        let mut st = lock(&self.state);
        while i != st.head && st.spilled >= SPILL_LIMIT {
            st = self.wait(st)?;
        }
        if st.cancelled {
            return Err(Stopped);
        }
        Ok(())
    }

    /// Where the next `n` bytes of slot `i` go; waits only when `i` is the head being
    /// streamed and its memory is full (the writer is draining it).
    pub fn place(&self, i: usize, n: u64) -> Result<Place, Stopped> {
        let mut st = lock(&self.state);
        loop {
            if st.cancelled {
                return Err(Stopped);
            }
            let head = i == st.head;
            let (used, slot) = (st.used, &mut st.slots[i]);
            if slot.spilling {
                return Ok(Place::Spill);
            }
            if used + n <= WINDOW || (head && slot.buffered + n <= HEAD_ALLOWANCE) {
                slot.buffered += n;
                st.used += n;
                return Ok(Place::Memory);
            }
            if !(head && slot.reading) {
                slot.spilling = true;
                return Ok(Place::Spill);
            }
            st = self.wait(st)?;
        }
    }

    /// Appends a chunk [`Window::place`] put in memory.
    pub fn push(&self, i: usize, chunk: Vec<u8>) {
        lock(&self.state).slots[i].chunks.push_back(chunk);
        self.changed.notify_all();
    }

    /// Records `n` more bytes written (and flushed) to slot `i`'s spill file at `path`.
    pub fn spilled(&self, i: usize, path: &std::path::Path, n: u64) {
        let mut st = lock(&self.state);
        st.spilled += n;
        let slot = &mut st.slots[i];
        slot.spill.get_or_insert_with(|| path.to_path_buf());
        slot.spilled += n;
        self.changed.notify_all();
    }

    /// Slot `i` is complete (its digest checked, or its bytes are elsewhere: `what`).
    pub fn done(&self, i: usize, what: T) {
        lock(&self.state).slots[i].done = Some(what);
        self.changed.notify_all();
    }

    /// Empties slot `i` to fetch it again after a wrong download. `false` when the writer
    /// already read from it (nothing can be taken back): the save fails instead.
    pub fn reset(&self, i: usize) -> bool {
        let mut st = lock(&self.state);
        if st.slots[i].reading {
            return false;
        }
        let slot = &mut st.slots[i];
        let (buffered, spilled) = (slot.buffered, slot.spilled);
        slot.chunks.clear();
        slot.buffered = 0;
        slot.spilling = false;
        slot.spilled = 0;
        let spill = slot.spill.take();
        st.used -= buffered;
        st.spilled -= spilled;
        drop(st);
        if let Some(p) = spill {
            let _ = fs::remove_file(p);
        }
        self.changed.notify_all();
        true
    }

    /// Makes slot `i` the head and waits until the writer can take it: complete, or a
    /// large layer that has started arriving.
    pub fn next(&self, i: usize) -> Result<Ready<T>, Stopped> {
        let mut st = lock(&self.state);
        st.head = i;
        self.changed.notify_all();
        loop {
            let slot = &mut st.slots[i];
            if let Some(what) = slot.done {
                slot.reading = true;
                return Ok(Ready::Done(what));
            }
            if slot.size > VERIFY_FIRST && (slot.buffered > 0 || slot.spilled > 0) {
                slot.reading = true;
                return Ok(Ready::Stream);
            }
            st = self.wait(st)?;
        }
    }

    /// Reads slot `i`'s bytes in order, waiting for those still to come; ends when the
    /// slot is done. Dropping it frees what is left of the slot and its spill file.
    pub fn reader(&self, i: usize) -> SlotReader<'_, T> {
        SlotReader {
            window: self,
            i,
            chunk: Vec::new(),
            at: 0,
            file: None,
            file_pos: 0,
        }
    }

    /// Bytes of layers in memory now (for tests and the bound in the docs).
    #[cfg(test)]
    fn used(&self) -> u64 {
        lock(&self.state).used
    }
}

/// The writer's view of one slot; see [`Window::reader`].
pub(crate) struct SlotReader<'w, T> {
    window: &'w Window<T>,
    i: usize,
    chunk: Vec<u8>,
    at: usize,
    file: Option<File>,
    file_pos: u64,
}

impl<T: Copy> Read for SlotReader<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.at < self.chunk.len() {
                let n = buf.len().min(self.chunk.len() - self.at);
                buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            let w = self.window;
            let mut st = lock(&w.state);
            let i = self.i;
            if let Some(chunk) = st.slots[i].chunks.pop_front() {
                let n = chunk.len() as u64;
                st.slots[i].buffered -= n;
                st.used -= n;
                drop(st);
                w.changed.notify_all();
                self.chunk = chunk;
                self.at = 0;
                continue;
            }
            let slot = &st.slots[i];
            if slot.spilled > self.file_pos {
                let (path, avail) = (slot.spill.clone(), slot.spilled - self.file_pos);
                drop(st);
                if self.file.is_none() {
                    let path = path.expect("a slot with spilled bytes has a spill file");
                    self.file = Some(File::open(path)?);
                }
                let file = self.file.as_mut().expect("opened");
                file.seek(SeekFrom::Start(self.file_pos))?;
                let want = buf.len().min(usize::try_from(avail).unwrap_or(usize::MAX));
                let n = file.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a spill file is shorter than what was written to it",
                    ));
                }
                self.file_pos += n as u64;
                let mut st = lock(&w.state);
                st.spilled -= n as u64;
                drop(st);
                w.changed.notify_all();
                return Ok(n);
            }
            if slot.done.is_some() {
                return Ok(0);
            }
            drop(w.wait(st)?);
        }
    }
}

impl<T> Drop for SlotReader<'_, T> {
    fn drop(&mut self) {
        let w = self.window;
        let mut st = lock(&w.state);
        let slot = &mut st.slots[self.i];
        let (buffered, unread) = (
            slot.buffered,
            slot.spilled - self.file_pos.min(slot.spilled),
        );
        slot.chunks.clear();
        slot.buffered = 0;
        let spill = slot.spill.take();
        st.used -= buffered;
        st.spilled -= unread;
        drop(st);
        w.changed.notify_all();
        if let Some(p) = spill {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_then_spill_in_order_and_freed_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = WINDOW + 2 * CHUNK as u64;
        let w: Window<u8> = Window::new([1, big]);
        // Slot 1 (behind the head) fills the window, then spills the rest.
        let spill = dir.path().join("1.spill");
        let mut file = File::create(&spill).unwrap();
        let mut expected = Vec::new();
        let mut seed = 0u8;
        let mut left = big;
        while left > 0 {
            let n = left.min(CHUNK as u64);
            let chunk: Vec<u8> = (0..n).map(|k| seed.wrapping_add(k as u8)).collect();
            seed = seed.wrapping_add(1);
            expected.extend_from_slice(&chunk);
            match w.place(1, n).unwrap() {
                Place::Memory => w.push(1, chunk),
                Place::Spill => {
                    io::Write::write_all(&mut file, &chunk).unwrap();
                    w.spilled(1, &spill, n);
                }
            }
            left -= n;
        }
        assert_eq!(w.used(), WINDOW);
        w.done(1, 7);
        // Slot 0 is small and done at once.
        assert_eq!(w.place(0, 1).unwrap(), Place::Memory);
        w.push(0, vec![42]);
        w.done(0, 9);
        assert_eq!(w.next(0).unwrap(), Ready::Done(9));
        let mut got = Vec::new();
        w.reader(0).read_to_end(&mut got).unwrap();
        assert_eq!(got, [42]);
        assert_eq!(w.next(1).unwrap(), Ready::Done(7));
        let mut got = Vec::new();
        w.reader(1).read_to_end(&mut got).unwrap();
        assert!(got == expected, "memory chunks first, then the spill file");
        assert_eq!(w.used(), 0);
        assert!(!spill.exists(), "the spill file is deleted once read");
    }

    #[test]
    fn head_streams_and_a_reset_is_refused_once_read() {
        let big = VERIFY_FIRST + 1;
        let w: Window<u8> = Window::new([big]);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut left = big;
                while left > 0 {
                    let n = left.min(CHUNK as u64);
                    assert_eq!(w.place(0, n).unwrap(), Place::Memory);
                    w.push(0, vec![1; n as usize]);
                    left -= n;
                }
                assert!(!w.reset(0), "the writer is reading it");
                w.done(0, 1);
            });
            assert_eq!(w.next(0).unwrap(), Ready::Stream);
            let mut got = Vec::new();
            w.reader(0).read_to_end(&mut got).unwrap();
            assert_eq!(got.len() as u64, big);
        });
    }

    #[test]
    fn cancel_stops_waits() {
        let w: Window<u8> = Window::new([10]);
        w.cancel();
        assert!(w.next(0).is_err());
    }
}
