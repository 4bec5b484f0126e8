//! Shared helpers for the host tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_localcount::backend::host::{HostCondvar, HostMutex, Machine};
use rust_localcount::LocalCount;

/// A localcount with its (cv, interlock) pair, as a kernel object has.
pub struct Obj {
    pub lc: LocalCount,
    pub mtx: HostMutex,
    pub cv: HostCondvar,
}

impl Obj {
    pub fn new() -> Arc<Obj> {
        Arc::new(Obj {
            lc: LocalCount::zeroed(),
            mtx: HostMutex::new(),
            cv: HostCondvar::new(),
        })
    }
    pub fn lcp(&self) -> *mut LocalCount {
        &self.lc as *const LocalCount as *mut LocalCount
    }
}

/// Run `f` on its own thread; fail with `diag()` if it takes longer than
/// `limit` (a hang is a failure with a diagnostic, never a stuck test).
pub fn within<R: Send + 'static>(
    limit: Duration,
    m: &Arc<Machine>,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => std::panic::resume_unwind(e),
        Err(_) => panic!(
            "HANG: not finished after {:?}; machine state:\n{}",
            t0.elapsed(),
            m.dump()
        ),
    }
}
