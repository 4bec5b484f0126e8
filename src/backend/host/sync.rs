//! The synchronization facade of the host kernel: std, or shuttle's
//! instrumented replacements when the model checker drives the simulation
//! (feature `model-shuttle`), so that the very same simulated kernel and
//! protocol run under both.

#[cfg(feature = "model-shuttle")]
pub use shuttle::sync::atomic::{AtomicBool, AtomicI64};
#[cfg(feature = "model-shuttle")]
pub use shuttle::sync::{Condvar, Mutex};
#[cfg(feature = "model-shuttle")]
pub use shuttle::thread;

#[cfg(not(feature = "model-shuttle"))]
pub use std::sync::atomic::{AtomicBool, AtomicI64};
#[cfg(not(feature = "model-shuttle"))]
pub use std::sync::{Condvar, Mutex};
#[cfg(not(feature = "model-shuttle"))]
pub use std::thread;

/// `thread_local!` of std or shuttle (shuttle threads share one OS thread).
#[cfg(feature = "model-shuttle")]
macro_rules! host_thread_local {
    ($($t:tt)*) => { shuttle::thread_local!($($t)*); };
}
/// `thread_local!` of std or shuttle (shuttle threads share one OS thread).
#[cfg(not(feature = "model-shuttle"))]
macro_rules! host_thread_local {
    ($($t:tt)*) => { std::thread_local!($($t)*); };
}
pub(crate) use host_thread_local;

#[cfg(feature = "model-shuttle")]
impl crate::kernel::PerCpuSlot for AtomicI64 {
    const ADD_IS_INTERRUPT_ATOMIC: bool = true;
    fn add(&self, delta: i64) {
        AtomicI64::fetch_add(self, delta, std::sync::atomic::Ordering::Relaxed);
    }
    fn load(&self) -> i64 {
        AtomicI64::load(self, std::sync::atomic::Ordering::Relaxed)
    }
    fn store(&self, v: i64) {
        AtomicI64::store(self, v, std::sync::atomic::Ordering::Relaxed)
    }
}

/// A sleepable binary semaphore with an owner: the building block of the
/// simulated CPUs (who runs with preemption disabled, who holds the IPL).
pub struct Token {
    owner: Mutex<Option<u64>>,
    cv: Condvar,
}

impl Default for Token {
    fn default() -> Self {
        Self::new()
    }
}

impl Token {
    /// A free token.
    pub fn new() -> Self {
        Token {
            owner: Mutex::new(None),
            cv: Condvar::new(),
        }
    }
    /// Take the token for `who`, sleeping while someone else has it.
    pub fn acquire(&self, who: u64) {
        let mut g = lock(&self.owner);
        while let Some(o) = *g {
            assert_ne!(o, who, "host kernel: token taken recursively by lwp {who}");
            g = wait(&self.cv, g);
        }
        *g = Some(who);
    }
    /// Give the token back.
    pub fn release(&self, who: u64) {
        let mut g = lock(&self.owner);
        assert_eq!(*g, Some(who), "host kernel: token released by non-owner");
        *g = None;
        drop(g);
        self.cv.notify_all();
    }
    /// Who has it.
    pub fn owner(&self) -> Option<u64> {
        *lock(&self.owner)
    }
}

/// Lock a std/shuttle mutex, ignoring poisoning (a kernel panic in one
/// simulated LWP must not turn every other lock into an error).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Wait on a std/shuttle condvar, ignoring poisoning.
pub fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match cv.wait(g) {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[cfg(feature = "model-shuttle")]
pub use shuttle::sync::MutexGuard;
#[cfg(not(feature = "model-shuttle"))]
pub use std::sync::MutexGuard;
