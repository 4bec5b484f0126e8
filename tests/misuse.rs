//! Misuse gets the kernel's panic with NetBSD's message.
//!
//! Through the C ABI a panic cannot unwind (it stops the "machine", i.e.
//! aborts the process, as panic(9) stops the kernel), so each scenario runs
//! in a child process -- this test binary re-run with `LC_MISUSE_CHILD` set
//! -- and the parent checks that the child died with the expected message.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::Obj;
use rust_localcount::backend::host::{self, Machine};
use rust_localcount::ffi::exports::*;

const ENV: &str = "LC_MISUSE_CHILD";

fn is_child(name: &str) -> bool {
    std::env::var(ENV).as_deref() == Ok(name)
}

unsafe fn rel(o: &Obj) {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    unsafe { localcount_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex()) }
}
unsafe fn drain(o: &Obj) {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    unsafe { localcount_drain(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex()) }
}

/// The scenarios: name, panic message expected, needs DEBUG && LOCKDEBUG.
const CASES: &[(&str, &str, bool)] = &[
    (
        "acquire_after_drain",
        r#"kernel diagnostic assertion "lc->lc_totalp == NULL" failed"#,
        false,
    ),
    (
        "acquire_during_drain",
        r#"kernel diagnostic assertion "lc->lc_totalp == NULL" failed"#,
        false,
    ),
    (
        "drain_twice",
        r#"kernel diagnostic assertion "lc->lc_totalp == NULL" failed"#,
        false,
    ),
    (
        "drain_without_interlock",
        r#"kernel diagnostic assertion "mutex_owned(interlock)" failed"#,
        false,
    ),
    (
        "fini_before_drain",
        r#"kernel diagnostic assertion "lc->lc_totalp == (void *)(uintptr_t)1" failed"#,
        false,
    ),
    (
        "negative_total",
        "negatively referenced localcount: 0x",
        false,
    ),
    ("release_after_drain", "released after drain", false),
    (
        "null_localcount",
        "panic: localcount_acquire: NULL localcount",
        false,
    ),
    ("uninitialized", "is not initialized", false),
    ("fini_twice", "is not initialized", false),
    ("mutex_exit_not_owner", "mutex_exit: not owner", false),
    ("counter_overflow", "panic: counter overflow", true),
    ("counter_underflow", "panic: counter underflow", true),
    (
        "release_holding_interlock",
        r#"kernel diagnostic assertion "mutex_ownable(interlock)" failed"#,
        true,
    ),
];

fn child(name: &str, f: impl FnOnce(&Arc<Machine>, &Obj)) {
    if !is_child(name) {
        return;
    }
    let m = Machine::new(2);
    let o = Obj::new();
    m.lwp(0, || f(&m, &o));
    // Reaching this point means no panic: say so, the parent fails.
    eprintln!("MISUSE-NOT-DETECTED");
    std::process::exit(0);
}

#[test]
fn misuse_panics_with_netbsd_messages() {
    let exe = std::env::current_exe().unwrap();
    let mut ran = 0;
    for &(name, msg, needs_debug) in CASES {
        if needs_debug && !cfg!(feature = "lc-debug") {
            continue;
        }
        let out = Command::new(&exe)
            .args([
                &format!("child_{name}"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, name)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(msg),
            "{name}: expected a panic containing {msg:?}; status {:?}, stderr:\n{err}",
            out.status
        );
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} misuse scenarios ran");
}

#[test]
fn child_acquire_after_drain() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("acquire_after_drain", |_, o| unsafe {
        localcount_init(o.lcp());
        o.mtx.enter();
        drain(o);
        o.mtx.exit();
        localcount_acquire(o.lcp());
    });
}

#[test]
fn child_acquire_during_drain() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("acquire_during_drain", |m, o| unsafe {
        localcount_init(o.lcp());
        localcount_acquire(o.lcp());
        let op = o as *const Obj as usize;
        // Another LWP drains (and blocks on our reference) ...
        let h = m.spawn_lwp(1, move || {
            let o = &*(op as *const Obj);
            o.mtx.enter();
            drain(o);
            o.mtx.exit();
        });
        while o.lc.totalp().is_null() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // ... while we take a new reference.
        localcount_acquire(o.lcp());
        let _ = h.join();
    });
}

#[test]
fn child_drain_twice() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("drain_twice", |_, o| unsafe {
        localcount_init(o.lcp());
        o.mtx.enter();
        drain(o);
        drain(o);
    });
}

#[test]
fn child_drain_without_interlock() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("drain_without_interlock", |_, o| unsafe {
        localcount_init(o.lcp());
        drain(o);
    });
}

#[test]
fn child_fini_before_drain() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("fini_before_drain", |_, o| unsafe {
        localcount_init(o.lcp());
        localcount_fini(o.lcp());
    });
}

#[test]
fn child_negative_total() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("negative_total", |_, o| unsafe {
        localcount_init(o.lcp());
        localcount_acquire(o.lcp());
        // Two releases for one acquire, on different CPUs.
        rel(o);
        host::migrate_to(1);
        if cfg!(feature = "lc-debug") {
            o.lc.set_refcnt(5);
        }
        rel(o);
        o.mtx.enter();
        drain(o);
    });
}

#[test]
fn child_release_after_drain() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("release_after_drain", |_, o| unsafe {
        localcount_init(o.lcp());
        o.mtx.enter();
        drain(o);
        o.mtx.exit();
        rel(o);
    });
}

#[test]
fn child_null_localcount() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("null_localcount", |_, _| unsafe {
        localcount_acquire(std::ptr::null_mut());
    });
}

#[test]
fn child_fini_twice() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("fini_twice", |_, o| unsafe {
        localcount_init(o.lcp());
        o.mtx.enter();
        drain(o);
        o.mtx.exit();
        localcount_fini(o.lcp());
        localcount_fini(o.lcp());
    });
}

#[test]
fn child_uninitialized() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("uninitialized", |_, o| unsafe {
        localcount_acquire(o.lcp());
    });
}

#[test]
fn child_mutex_exit_not_owner() {
    // The host kernel's mutex(9) checks its owner, as LOCKDEBUG does.
    child("mutex_exit_not_owner", |m, o| {
        let op = o as *const Obj as usize;
        let h = m.spawn_lwp(1, move || {
            // SAFETY: `o` outlives the child process's run.
            let o = unsafe { &*(op as *const Obj) };
            o.mtx.enter();
            std::thread::sleep(Duration::from_secs(5));
        });
        while !o.mtx.owned() {
            std::thread::sleep(Duration::from_millis(50));
            o.mtx.exit();
        }
        let _ = h.join();
    });
}

#[test]
fn child_counter_overflow() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("counter_overflow", |_, o| unsafe {
        localcount_init(o.lcp());
        o.lc.set_refcnt(u32::MAX);
        localcount_acquire(o.lcp());
    });
}

#[test]
fn child_counter_underflow() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("counter_underflow", |_, o| unsafe {
        localcount_init(o.lcp());
        rel(o);
    });
}

#[test]
fn child_release_holding_interlock() {
    // SAFETY: host-kernel objects that outlive the call, used as the
    // localcount(9) contract requires (initialized, references held).
    child("release_holding_interlock", |_, o| unsafe {
        localcount_init(o.lcp());
        localcount_acquire(o.lcp());
        o.mtx.enter();
        rel(o);
    });
}

/// The Rust API panics (unwinds) with the same messages, so property tests
/// can compare against a model without a process per case.
#[test]
fn rust_api_panics_unwind() {
    use rust_localcount::backend::host::Host;
    use rust_localcount::kernel::Interlock;
    use rust_localcount::localcount as lc;
    let m = Machine::new(2);
    let o = Obj::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.lwp(0, || {
            lc::init::<Host>(&o.lc);
            lc::fini::<Host>(&o.lc);
        })
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("lc->lc_totalp == (void *)(uintptr_t)1"),
        "{msg}"
    );
    // The machine is still usable after the panic.
    m.lwp(0, || {
        // SAFETY: host objects.
        let il = unsafe { Interlock::<Host>::new(o.cv.as_nonnull(), o.mtx.as_nonnull()) };
        lc::acquire::<Host>(&o.lc);
        lc::release::<Host>(&o.lc, il);
        o.mtx.enter();
        lc::drain::<Host>(&o.lc, il);
        o.mtx.exit();
        lc::fini::<Host>(&o.lc);
    });
}
