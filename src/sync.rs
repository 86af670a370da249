//! One rule for poisoned mutexes: take the data back and go on.
//!
//! A mutex is poisoned when a thread panicked while holding it. airlock's mutexes
//! guard work queues, counters, caches, progress bars and lists of errors, and every
//! change to them is a single push, insert or assignment, so a panic never leaves one
//! half-changed. The panic itself still reaches the user: the thread's join (rayon's
//! and `std::thread::scope`'s) raises it again. Failing every other thread with a
//! second panic on the poisoned lock would only bury the first one; so every lock in
//! the crate goes through [`lock`]. The counting [`Semaphore`] built on it bounds what
//! blocking threads hold at once (chunks in flight in [`crate::ordered`], compact layers
//! rebuilt by `serve`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the guard if another thread panicked while holding it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A counting semaphore for blocking threads: [`acquire`](Semaphore::acquire) waits
/// for a free slot, which the [`Permit`] gives back when dropped.
pub(crate) struct Semaphore {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A slot of a [`Semaphore`], given back when dropped.
pub(crate) struct Permit(Arc<Semaphore>);

impl Semaphore {
    pub(crate) fn new(slots: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(slots),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn acquire(self: &Arc<Self>) -> Permit {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit(Arc::clone(self))
    }

    /// A slot if one is free now.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut free = lock(&self.free);
        if *free == 0 {
            return None;
        }
        *free -= 1;
        Some(Permit(Arc::clone(self)))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.freed.notify_one();
    }
}
