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
//! Pacing: the reader reads [`AHEAD`] chunk ahead of the fastest member and keeps at
//! most [`WINDOW`] chunks; a slower member takes them from the window at its own pace.
//! A member that falls out of the window gets [`Step::Lagged`] (its offset and hash
//! state) and goes on with its own reader from there, so a slow client never holds the
//! others back and never holds more than the window. A download joins a flight only
//! while the flight's first chunk is still in the window ([`Flights::join`]); a later
//! one reads on its own. Once past its first [`WINDOW`] chunks a flight drops every
//! chunk that all its members have taken, so a lone download holds one or two chunks,
//! as an unshared one does.
//!
//! This module knows nothing of HTTP or of bundles: the server feeds a flight from any
//! `Read` ([`Flight::lead`], on the blocking pool) and the response body polls its
//! member ([`Member::poll_next`]).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Waker};

use bytes::Bytes;
use tokio::sync::watch;

use crate::digest::{Digest, Hasher};
use crate::sync::lock;

/// Chunks a flight keeps: the blob's first ones for downloads that join late, later the
/// ones its slowest member has yet to take.
pub(crate) const WINDOW: usize = 4;
/// Chunks the reader reads ahead of the fastest member.
const AHEAD: u64 = 1;

/// The flights under way that a new download may join, by bundle and digest.
#[derive(Default)]
pub(crate) struct Flights {
    open: Mutex<HashMap<(usize, Digest), Weak<Flight>>>,
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
        let (flight, member) = Flight::start();
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
    fn start() -> (Arc<Flight>, Member) {
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
            st.window.push_back(piece);
            if st.window.len() > WINDOW {
                st.window.pop_front();
                st.first += 1;
            }
            if st.first > 0 {
                // Past the joinable start: keep only what a member has yet to take.
                let slowest = st.members.iter().flatten().min().copied();
                while slowest.is_some_and(|s| s > st.first) && st.window.len() > 1 {
                    st.window.pop_front();
                    st.first += 1;
                }
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
