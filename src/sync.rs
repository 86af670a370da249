//! One rule for poisoned mutexes: take the data back and go on.
//!
//! A mutex is poisoned when a thread panicked while holding it. airlock's mutexes
//! guard work queues, counters, caches, progress bars and lists of errors, and every
//! change to them is a single push, insert or assignment, so a panic never leaves one
//! half-changed. The panic itself still reaches the user: the thread's join (rayon's
//! and `std::thread::scope`'s) raises it again. Failing every other thread with a
//! second panic on the poisoned lock would only bury the first one; so every lock in
//! the crate goes through [`lock`].

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the guard if another thread panicked while holding it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
