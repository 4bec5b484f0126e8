//! Shared helpers for the host tests: test scaffolding, not part of the
//! simulated kernel (`rust_localcount::backend::host`, which lies below the
//! library's C exports and never calls them).
#![allow(dead_code)]

use std::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_localcount::backend::host::{HostCondvar, HostMutex, Machine};
use rust_localcount::ffi::exports::{
    cdevsw_lookup_acquire_major, cdevsw_release_major, device_lookup_acquire, device_release,
};
use rust_localcount::sys::conf::cdevsw;
use rust_localcount::sys::types::{cfdriver, dev_t};
use rust_localcount::LocalCount;

/// `ENXIO`.
pub const ENXIO: c_int = 6;

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

/// `cdev_open(dev, ...)` of the patched kernel (`subr_devsw.c`): look the
/// cdevsw up with a reference, for a driver with `d_devtounit` (`unit =
/// Some((cd, unit))`) also the device, call `d_open` (here: `open`),
/// release both -- through the library's C exports, as the kernel calls
/// them.
pub fn cdev_open(
    dev: dev_t,
    unit: impl FnOnce(&cdevsw) -> Option<(NonNull<cfdriver>, c_int)>,
    open: impl FnOnce(&cdevsw) -> c_int,
) -> c_int {
    let mut lc = ptr::null_mut();
    // SAFETY: the exported C functions, called as the kernel does.
    let d = unsafe { cdevsw_lookup_acquire_major(dev, &mut lc) };
    if d.is_null() {
        return ENXIO;
    }
    // SAFETY: we hold a reference: the cdevsw stays attached.
    let dr = unsafe { &*d };
    let rv = match unit(dr) {
        None => open(dr),
        Some((cd, u)) => {
            // SAFETY: cd is a live cfdriver (the caller's).
            let dv = unsafe { device_lookup_acquire(cd.as_ptr(), u) };
            if dv.is_null() {
                ENXIO
            } else {
                let rv = open(dr);
                // SAFETY: the reference taken above.
                unsafe { device_release(dv) };
                rv
            }
        }
    };
    // SAFETY: the reference taken above.
    unsafe { cdevsw_release_major(d, lc) };
    rv
}
