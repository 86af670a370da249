//! One read of a full blob shared by the downloads of it that run at the same time (a
//! cluster pulling one image at once): a [`Flight`] reads and hashes the blob once and
//! hands each chunk to every [`Member`] downloading it.
//!
//! The integrity rule stays per download: every byte a member receives has gone through
//! a sha256 that started at the blob's first byte, and the flight's reader checks the
//! digest before it hands out the last chunk (a mismatch ends the flight with a failure,
//! and every member's connection is cut). Each chunk carries the hash state after it, so
//! a member that falls behind keeps the state of what it received.
//!
//! Pacing: the reader reads [`AHEAD`] chunk ahead of the fastest member and keeps a
//! window of the last chunks it read; a slower member takes them from the window at its
//! own pace. A member that falls out of the window gets [`Step::Lagged`] (its offset and
//! hash state) and goes on with its own reader from there, so a slow client never holds
//! the others back. A download joins a flight only while the flight's first chunk is
//! still in the window ([`Flights::join`]); a later one reads on its own. Once its first
//! chunk is gone a flight drops every chunk that all its members have taken, so a lone
//! download then holds one or two chunks, as an unshared one does.
//!
//! The window's size is what sharing costs and what it tolerates: clients of one blob
//! that start a few milliseconds apart are megabytes apart on loopback. A flight may
//! always keep [`WINDOW`] chunks (512 KiB), and up to [`MAX_WINDOW`] (4 MiB) while all
//! flights together keep less than [`BUDGET`] (16 MiB): a bound on memory whatever the
//! number of downloads, spent on the flights that start first.
//!
//! This module knows nothing of HTTP or of bundles: the server feeds a flight from any
//! `Read` ([`Flight::lead`], on the blocking pool) and the response body polls its
//! member ([`Member::poll_next`]).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Waker};

use bytes::Bytes;
use tokio::sync::watch;

use crate::digest::{Digest, Hasher};
use crate::sync::lock;

/// Chunks a flight may always keep: the blob's first ones for downloads that join late,
/// later the ones its slowest member has yet to take.
pub(crate) const WINDOW: usize = 4;
/// Chunks a flight may keep while all flights together keep less than [`BUDGET`] bytes.
pub(crate) const MAX_WINDOW: usize = 32;
/// Bytes all flights together may keep before each is held to [`WINDOW`] chunks.
pub(crate) const BUDGET: usize = 16 << 20;
/// Chunks the reader reads ahead of the fastest member.
const AHEAD: u64 = 1;

/// The flights under way that a new download may join, by bundle and digest.
#[derive(Default)]
pub(crate) struct Flights {
    open: Mutex<HashMap<(usize, Digest), Weak<Flight>>>,
    /// Bytes all flights keep in their windows.
    kept: Arc<AtomicUsize>,
}

impl Flights {
    /// A member of the flight reading blob `digest` of bundle `bundle`, if there is one
    /// that still holds the blob's first chunk; else the first member of a new flight,
    /// and that flight, which the caller must [`lead`](Flight::lead) (or end with
    /// [`Flight::opened`] and an error).
    pub fn join(&self, bundle: usize, digest: &Digest) -> (Member, Option<Arc<Flight>>) {
        let mut open = lock(&self.open);
        let key = (bundle, digest.clone());
        if let Some(member) = open
            .get(&key)
            .and_then(Weak::upgrade)
            .and_then(|f| f.member())
        {
            return (member, None);
        }
        open.retain(|_, f| f.strong_count() > 0);
        let (flight, member) = Flight::start(Arc::clone(&self.kept));
        open.insert(key, Arc::downgrade(&flight));
        (member, Some(flight))
    }
}

/// A chunk and the hash state after it (of the blob from its first byte).
struct Piece {
    data: Bytes,
    hashed: Arc<Hasher>,
}

/// How a flight ended.
#[derive(Clone)]
enum End {
    /// Every chunk is in (the digest matched).
    Complete,
    /// No more chunks come: `damaged` (the bytes hash to `why`) or a read failed (`why`).
    Failed { damaged: bool, why: String },
}

/// What the reader and the members share.
struct State {
    /// The chunk number of `window[0]`.
    first: u64,
    window: VecDeque<Piece>,
    end: Option<End>,
    /// Each member's next chunk number; `None` once it left.
    members: Vec<Option<u64>>,
    /// Members waiting for the next chunk.
    wakers: Vec<(usize, Waker)>,
    /// The reader waits for a member to want more.
    reader_waiting: bool,
    /// The reader stopped because every member left: nobody may join.
    abandoned: bool,
}

impl State {
    /// The number of the next chunk the reader reads.
    fn head(&self) -> u64 {
        self.first + self.window.len() as u64
    }

    /// Whether the fastest member is close enough to the head for the reader to read on.
    fn wants_more(&self) -> bool {
        self.members
            .iter()
            .flatten()
            .max()
            .is_some_and(|&next| self.head() < next + AHEAD)
    }
}

/// One shared read of a blob; see the module doc.
pub(crate) struct Flight {
    state: Mutex<State>,
    /// Where the reader waits for room.
    room: Condvar,
    /// Whether the blob could be opened (`None` until the reader tried).
    opened: watch::Sender<Option<Result<(), String>>>,
    /// Bytes all flights keep in their windows (shared with [`Flights`]).
    kept: Arc<AtomicUsize>,
}

/// What a member's next poll gives.
pub(crate) enum Step {
    Data(Bytes),
    /// Wait: the waker is called when a chunk arrives.
    Pending,
    /// The blob is complete and every chunk taken.
    End,
    /// The flight failed (see [`End::Failed`]); the member's answer must be cut.
    Failed {
        damaged: bool,
        why: String,
    },
    /// The member fell out of the window after `offset` bytes: it reads on by itself,
    /// hashing on from `hashed` (the state of the blob's first `offset` bytes).
    Lagged {
        offset: u64,
        hashed: Hasher,
    },
}

impl Flight {
    /// A new flight and its first member.
    fn start(kept: Arc<AtomicUsize>) -> (Arc<Flight>, Member) {
        let flight = Arc::new(Flight {
            state: Mutex::new(State {
                first: 0,
                window: VecDeque::new(),
                end: None,
                members: Vec::new(),
                wakers: Vec::new(),
                reader_waiting: false,
                abandoned: false,
            }),
            room: Condvar::new(),
            opened: watch::Sender::new(None),
            kept,
        });
        let member = flight.member().expect("a new flight takes members");
        (flight, member)
    }

    /// A new member at the blob's start, unless the first chunk is gone or the flight
    /// failed or was abandoned.
    fn member(self: &Arc<Flight>) -> Option<Member> {
        let mut st = lock(&self.state);
        if st.first != 0 || st.abandoned || matches!(st.end, Some(End::Failed { .. })) {
            return None;
        }
        st.members.push(Some(0));
        Some(Member {
            flight: Arc::clone(self),
            id: st.members.len() - 1,
            next: 0,
            offset: 0,
            hashed: None,
        })
    }

    /// Tells the members whether the blob could be opened; after an error the flight
    /// ends and takes no members.
    pub fn opened(&self, result: Result<(), String>) {
        if let Err(why) = &result {
            self.finish(End::Failed {
                damaged: false,
                why: why.clone(),
            });
        }
        self.opened.send_replace(Some(result));
    }

    /// Reads the `len` bytes of blob `digest` from `src` into the flight, `chunk` bytes
    /// at a time, each once a member wants it, hashing as it goes; stops early when
    /// every member has left. Returns what the bytes hash to when that is not `digest`
    /// (the flight then failed before its last chunk).
    pub fn lead(
        &self,
        src: &mut dyn Read,
        len: u64,
        digest: &Digest,
        chunk: usize,
    ) -> Option<Digest> {
        let mut hasher = Hasher::new();
        let mut read = 0u64;
        while read < len {
            if !self.wait_for_room() {
                return None;
            }
            let want = (len - read).min(chunk as u64) as usize;
            let data = match read_chunk(src, want) {
                Ok(d) => d,
                Err(e) => {
                    self.finish(End::Failed {
                        damaged: false,
                        why: e.to_string(),
                    });
                    return None;
                }
            };
            hasher.update(&data);
            read += data.len() as u64;
            if read == len {
                let (got, _) = hasher.clone().finish();
                if got != *digest {
                    self.finish(End::Failed {
                        damaged: true,
                        why: got.to_string(),
                    });
                    return Some(got);
                }
            }
            let piece = Piece {
                data,
                hashed: Arc::new(hasher.clone()),
            };
            self.push(piece, read == len);
        }
        if len == 0 {
            self.finish(End::Complete);
        }
        None
    }

    /// Waits until a member wants the next chunk; false when every member has left.
    fn wait_for_room(&self) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.members.iter().all(Option::is_none) {
                st.abandoned = true;
                return false;
            }
            if st.wants_more() {
                return true;
            }
            st.reader_waiting = true;
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
            st.reader_waiting = false;
        }
    }

    /// Adds a chunk (the last one with `last`), trims the window and wakes the waiting members.
    fn push(&self, piece: Piece, last: bool) {
        let wakers = {
            let mut st = lock(&self.state);
            self.kept.fetch_add(piece.data.len(), Ordering::Relaxed);
            st.window.push_back(piece);
            if st.first > 0 {
                // Past the joinable start: keep only what a member has yet to take.
                let slowest = st.members.iter().flatten().min().copied();
                while slowest.is_some_and(|s| s > st.first) && st.window.len() > 1 {
                    self.pop(&mut st);
                }
            }
            while st.window.len() > WINDOW
                && (st.window.len() > MAX_WINDOW || self.kept.load(Ordering::Relaxed) > BUDGET)
            {
                self.pop(&mut st);
            }
            if last {
                st.end = Some(End::Complete);
            }
            std::mem::take(&mut st.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }

    /// Drops the window's first chunk.
    fn pop(&self, st: &mut State) {
        if let Some(p) = st.window.pop_front() {
            self.kept.fetch_sub(p.data.len(), Ordering::Relaxed);
            st.first += 1;
        }
    }

    fn finish(&self, end: End) {
        let wakers = {
            let mut st = lock(&self.state);
            st.end = Some(end);
            std::mem::take(&mut st.wakers)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let st = lock(&self.state);
        let bytes: usize = st.window.iter().map(|p| p.data.len()).sum();
        self.kept.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One download's place in a [`Flight`].
pub(crate) struct Member {
    flight: Arc<Flight>,
    id: usize,
    /// The next chunk number to take.
    next: u64,
    /// Bytes taken.
    offset: u64,
    /// The hash state after the last chunk taken.
    hashed: Option<Arc<Hasher>>,
}

impl Member {
    /// Waits until the flight's reader opened the blob (or could not).
    pub async fn opened(&self) -> Result<(), String> {
        let mut rx = self.flight.opened.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or(Ok(())),
            Err(_) => Err("the blob reader stopped".to_string()),
        }
    }

    /// The next chunk, or why there is none yet (see [`Step`]).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Step {
        let flight = &*self.flight;
        let mut st = lock(&flight.state);
        if self.next < st.first {
            let hashed = self.hashed.as_deref().cloned().unwrap_or_default();
            return Step::Lagged {
                offset: self.offset,
                hashed,
            };
        }
        let at = (self.next - st.first) as usize;
        if let Some(p) = st.window.get(at) {
            let data = p.data.clone();
            self.hashed = Some(Arc::clone(&p.hashed));
            self.next += 1;
            self.offset += data.len() as u64;
            st.members[self.id] = Some(self.next);
            if st.reader_waiting && st.wants_more() {
                flight.room.notify_one();
            }
            return Step::Data(data);
        }
        match &st.end {
            Some(End::Complete) => Step::End,
            Some(End::Failed { damaged, why }) => Step::Failed {
                damaged: *damaged,
                why: why.clone(),
            },
            None => {
                let id = self.id;
                st.wakers.retain(|(i, _)| *i != id);
                st.wakers.push((id, cx.waker().clone()));
                Step::Pending
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut st = lock(&self.flight.state);
        st.members[self.id] = None;
        let id = self.id;
        st.wakers.retain(|(i, _)| *i != id);
        if st.reader_waiting {
            self.flight.room.notify_one();
        }
    }
}

/// Reads exactly `want` bytes of `src` into a new buffer; an error when it ends first.
pub(crate) fn read_chunk(src: &mut dyn Read, want: usize) -> io::Result<Bytes> {
    // read_to_end fills the spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(want);
    let n = src.take(want as u64).read_to_end(&mut buf)?;
    if n != want {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the blob ends early",
        ));
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    const CHUNK: usize = 1024;

    fn data(chunks: usize) -> Vec<u8> {
        crate::testdata::noise(1, chunks * CHUNK + 100)
    }

    /// Polls `m` until it gives something other than `Pending`.
    fn next(m: &mut Member) -> Step {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match m.poll_next(&mut cx) {
                Step::Pending => std::thread::yield_now(),
                s => return s,
            }
        }
    }

    /// Takes every chunk up to the end (or a failure) and returns them.
    fn drain(m: &mut Member) -> (Vec<u8>, Step) {
        let mut got = Vec::new();
        loop {
            match next(m) {
                Step::Data(b) => got.extend_from_slice(&b),
                s => return (got, s),
            }
        }
    }

    #[test]
    fn members_get_every_byte_and_one_that_stops_taking_falls_out_with_its_hash_state() {
        let blob = data(MAX_WINDOW + 20);
        let digest = Digest::of(&blob);
        let flights = Flights::default();
        let (mut fast, lead) = flights.join(0, &digest);
        let flight = lead.expect("the first download leads");
        let (mut slow, none) = flights.join(0, &digest);
        assert!(none.is_none(), "a download at the start joins");
        let reader = {
            let (flight, blob, digest) = (Arc::clone(&flight), blob.clone(), digest.clone());
            std::thread::spawn(move || {
                flight.lead(&mut &blob[..], blob.len() as u64, &digest, CHUNK)
            })
        };
        let Step::Data(first) = next(&mut slow) else {
            panic!("no first chunk")
        };
        let (got, end) = drain(&mut fast);
        assert!(matches!(end, Step::End));
        assert!(got == blob, "the fast member's bytes differ");
        assert!(reader.join().unwrap().is_none());
        // The slow member fell out of the window after its first chunk.
        let Step::Lagged { offset, hashed } = next(&mut slow) else {
            panic!("the slow member did not fall behind")
        };
        assert_eq!(offset, first.len() as u64);
        assert_eq!(hashed.finish().0, Digest::of(&blob[..CHUNK]));
        // Past its first chunk the flight takes no one; a new download leads its own.
        assert!(flights.join(0, &digest).1.is_some());
        drop((fast, slow, flight));
        assert_eq!(
            flights.kept.load(Ordering::Relaxed),
            0,
            "kept bytes are given back"
        );
    }

    #[test]
    fn a_blob_that_does_not_hash_to_its_digest_never_hands_out_its_last_chunk() {
        let blob = data(10);
        let wrong = Digest::of(b"something else");
        let flights = Flights::default();
        let (mut a, lead) = flights.join(0, &wrong);
        let flight = lead.unwrap();
        let (mut b, _) = flights.join(0, &wrong);
        let reader = {
            let (flight, blob, wrong) = (Arc::clone(&flight), blob.clone(), wrong.clone());
            std::thread::spawn(move || {
                flight.lead(&mut &blob[..], blob.len() as u64, &wrong, CHUNK)
            })
        };
        for m in [&mut a, &mut b] {
            let (got, end) = drain(m);
            assert!(
                matches!(end, Step::Failed { damaged: true, ref why } if *why == Digest::of(&blob).to_string())
            );
            assert_eq!(got, blob[..10 * CHUNK], "everything but the last chunk");
        }
        assert_eq!(reader.join().unwrap(), Some(Digest::of(&blob)));
        assert!(
            flights.join(0, &wrong).1.is_some(),
            "a failed flight takes no one"
        );
    }

    #[test]
    fn the_reader_stops_when_every_member_left() {
        let blob = data(40);
        let digest = Digest::of(&blob);
        let flights = Flights::default();
        let (mut m, lead) = flights.join(0, &digest);
        let flight = lead.unwrap();
        let reader = {
            let (flight, blob, digest) = (Arc::clone(&flight), blob.clone(), digest.clone());
            std::thread::spawn(move || {
                flight.lead(&mut &blob[..], blob.len() as u64, &digest, CHUNK)
            })
        };
        assert!(matches!(next(&mut m), Step::Data(_)));
        drop(m);
        assert!(reader.join().unwrap().is_none());
        assert!(lock(&flight.state).abandoned);
    }
}
