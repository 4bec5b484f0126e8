//! Every exported C function, called through the C ABI, on the host kernel.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{within, Obj};
use rust_localcount::backend::host::{self, Machine};
use rust_localcount::ffi::exports::*;
use rust_localcount::localcount::POISON;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn init_acquire_release_drain_fini() {
    let m = Machine::new(4);
    let o = Obj::new();
    let before = m.live_percpu();
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(0, || unsafe {
        localcount_init(o.lcp());
        assert!(o.lc.totalp().is_null());
        for _ in 0..10 {
            localcount_acquire(o.lcp());
        }
        for _ in 0..10 {
            localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        }
        o.mtx.enter();
        localcount_drain(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        assert!(o.mtx.owned(), "drain returns with the interlock held");
        o.mtx.exit();
        assert_eq!(o.lc.totalp(), POISON, "drained localcount is poisoned");
        localcount_fini(o.lcp());
    });
    assert_eq!(m.live_percpu(), before, "fini frees the percpu storage");
}

#[test]
fn reinit_after_fini() {
    let m = Machine::new(2);
    let o = Obj::new();
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(0, || unsafe {
        for _ in 0..3 {
            localcount_init(o.lcp());
            localcount_acquire(o.lcp());
            localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
            o.mtx.enter();
            localcount_drain(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
            o.mtx.exit();
            localcount_fini(o.lcp());
        }
    });
}

#[test]
fn references_migrate_between_cpus() {
    // Acquire on CPU 0, release on CPU 3: per-CPU counts go +n / -n and the
    // drain must still see exactly zero.
    let m = Machine::new(4);
    let o = Obj::new();
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(0, || unsafe {
        localcount_init(o.lcp());
        host::migrate_to(0);
        for _ in 0..7 {
            localcount_acquire(o.lcp());
        }
        host::migrate_to(3);
        for _ in 0..7 {
            localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        }
        o.mtx.enter();
        localcount_drain(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        o.mtx.exit();
        localcount_fini(o.lcp());
    });
}

#[test]
fn drain_waits_for_every_reference() {
    // Holders on several CPUs keep references across sleeps and migrations;
    // the drain may only return after the last release.
    let m = Machine::new(4);
    let o = Obj::new();
    let released = Arc::new(AtomicUsize::new(0));
    const HOLDERS: usize = 6;
    const REFS: usize = 5;
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(0, || unsafe { localcount_init(o.lcp()) });
    let acquired = Arc::new(std::sync::Barrier::new(HOLDERS + 1));
    let mut hs = Vec::new();
    for i in 0..HOLDERS {
        let (o, released, acquired) = (o.clone(), released.clone(), acquired.clone());
        // SAFETY: host-kernel objects that outlive the call, used as the
        // localcount(9) contract requires (initialized, references held).
        hs.push(m.spawn_lwp(i, move || unsafe {
            for _ in 0..REFS {
                localcount_acquire(o.lcp());
                host::preempt_point();
            }
            acquired.wait();
            for _ in 0..REFS {
                std::thread::sleep(Duration::from_millis(2));
                host::preempt_point();
                released.fetch_add(1, Ordering::SeqCst);
                localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
            }
        }));
    }
    acquired.wait();
    let (m2, o2, r2) = (m.clone(), o.clone(), released.clone());
    within(LIMIT, &m, move || {
        // SAFETY: host-kernel objects that outlive the call, used as the
        // localcount(9) contract requires (initialized, references held).
        m2.lwp(1, || unsafe {
            o2.mtx.enter();
            localcount_drain(o2.lcp(), o2.cv.as_kcondvar(), o2.mtx.as_kmutex());
            assert_eq!(
                r2.load(Ordering::SeqCst),
                HOLDERS * REFS,
                "drain returned with references outstanding"
            );
            o2.mtx.exit();
            localcount_fini(o2.lcp());
        })
    });
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn release_from_interrupt_on_same_cpu() {
    // References taken in thread context are dropped by "interrupt
    // handlers" on the same CPU, and vice versa.
    let m = Machine::new(2);
    let o = Obj::new();
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(0, || unsafe {
        localcount_init(o.lcp());
        host::migrate_to(1);
        localcount_acquire(o.lcp());
        localcount_acquire(o.lcp());
    });
    let o2 = o.clone();
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.interrupt(1, || unsafe {
        localcount_release(o2.lcp(), o2.cv.as_kcondvar(), o2.mtx.as_kmutex());
        localcount_acquire(o2.lcp());
    });
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(1, || unsafe {
        localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        o.mtx.enter();
        localcount_drain(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        o.mtx.exit();
        localcount_fini(o.lcp());
    });
}

#[test]
fn debug_refcnt() {
    let m = Machine::new(2);
    let o = Obj::new();
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    m.lwp(0, || unsafe {
        localcount_init(o.lcp());
        for _ in 0..5 {
            localcount_acquire(o.lcp());
        }
        localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        let n = localcount_debug_refcnt(o.lcp());
        if cfg!(feature = "lc-debug") {
            assert_eq!(n, 4);
        } else {
            assert_eq!(n, 0, "without DEBUG && LOCKDEBUG it is always 0");
        }
        for _ in 0..4 {
            localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        }
        o.mtx.enter();
        localcount_drain(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex());
        o.mtx.exit();
        localcount_fini(o.lcp());
    });
}
