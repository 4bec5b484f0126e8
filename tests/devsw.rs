//! The devsw reference layer (`bdevsw_lookup_acquire`, `cdevsw_lookup_acquire`,
//! `bdevsw_release`, `cdevsw_release`) through the C ABI, on the host kernel
//! with its simulated devsw tables and the patched `devsw_attach` /
//! `devsw_detach` / `cdev_open` (backend::host::devsw): built-in entries,
//! the EINVAL rule for modules, detach waiting for an open in progress,
//! attach/detach against lookup-acquire storms, table growth, concurrent
//! detaches.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use common::within;
use rust_localcount::backend::host::devsw::{
    cdev_open, devsw_attach, devsw_detach, install_builtin_cdevsw, with_module, ModSource, EINVAL,
    ENXIO, SYS_DEVSWS,
};
use rust_localcount::backend::host::{self, Machine};
use rust_localcount::devsw::{bdevsw, cdevsw, major, makedev, NODEV};
use rust_localcount::ffi::exports::*;
use rust_localcount::LocalCount;

const LIMIT: Duration = Duration::from_secs(120);
const ALIVE: u32 = 0x4b54_414c;
const DEAD: u32 = 0xdead_beef;

/// A cdevsw with a poison word after it (the struct is what the kernel
/// sees; `magic` is the test's), leaked like a module's static data.
#[repr(C)]
struct TestCdevsw {
    sw: cdevsw,
    magic: AtomicU32,
}

impl TestCdevsw {
    /// `with_lc`: as `DEVSW_MODULE_INIT` makes it (own zeroed localcount).
    fn new(with_lc: bool) -> &'static TestCdevsw {
        let lc = if with_lc {
            Box::leak(Box::new(LocalCount::zeroed())) as *mut LocalCount
        } else {
            ptr::null_mut()
        };
        Box::leak(Box::new(TestCdevsw {
            sw: cdevsw {
                d_ops: [ptr::null(); 14],
                d_flag: 0,
                d_localcount: lc,
            },
            magic: AtomicU32::new(DEAD),
        }))
    }
    /// The container of a cdevsw returned by a lookup.
    fn of(d: *const cdevsw) -> &'static TestCdevsw {
        // SAFETY: every cdevsw the tests attach is the first field of a
        // leaked repr(C) TestCdevsw.
        unsafe { &*(d as *const TestCdevsw) }
    }
    fn alive(&self) -> bool {
        self.magic.load(Ordering::SeqCst) == ALIVE
    }
}

fn bdevsw_new(with_lc: bool) -> &'static bdevsw {
    let lc = if with_lc {
        Box::leak(Box::new(LocalCount::zeroed())) as *mut LocalCount
    } else {
        ptr::null_mut()
    };
    Box::leak(Box::new(bdevsw {
        d_ops: [ptr::null(); 10],
        d_flag: 0,
        d_localcount: lc,
    }))
}

/// Attach `t` (character only) at a free dynamic major; return its dev_t.
fn attach(t: &'static TestCdevsw) -> u64 {
    let (mut bm, mut cm) = (-1, -1);
    t.magic.store(ALIVE, Ordering::SeqCst);
    devsw_attach(None, &mut bm, &t.sw, &mut cm).expect("devsw_attach");
    makedev(cm, 0)
}

/// Detach `t` and poison it.
fn detach(t: &'static TestCdevsw) {
    devsw_detach(None, Some(&t.sw));
    t.magic.store(DEAD, Ordering::SeqCst);
}

#[test]
fn builtin_entries_are_plain_lookups() {
    let m = Machine::new(2);
    let b = TestCdevsw::new(false);
    b.magic.store(ALIVE, Ordering::SeqCst);
    m.lwp(0, || {
        install_builtin_cdevsw(3, &b.sw);
        // SAFETY: (all calls) the exported C functions with valid
        // arguments, from an LWP of the machine.
        unsafe {
            let d = cdevsw_lookup_acquire(makedev(3, 7));
            assert!(ptr::eq(d, &b.sw));
            cdevsw_release(d); // no d_localcount: a no-op
            cdevsw_release(d); // ... so even an extra one is harmless
            assert!(
                cdevsw_lookup_acquire(makedev(2, 0)).is_null(),
                "empty static slot"
            );
            assert!(cdevsw_lookup_acquire(NODEV).is_null());
            assert!(bdevsw_lookup_acquire(NODEV).is_null());
            assert!(
                cdevsw_lookup_acquire(makedev(SYS_DEVSWS as i32, 0)).is_null(),
                "beyond the static table before it grew"
            );
            assert!(cdevsw_lookup_acquire(makedev(0xfff, 0)).is_null());
            assert!(bdevsw_lookup_acquire(makedev(3, 0)).is_null());
        }
    });
}

#[test]
fn module_devsw_without_localcount_is_einval() {
    let m = Machine::new(2);
    m.lwp(0, || {
        let nolc = TestCdevsw::new(false);
        let lc = TestCdevsw::new(true);
        let b_nolc = bdevsw_new(false);
        let b_lc = bdevsw_new(true);
        for src in [ModSource::Filesys, ModSource::Boot] {
            with_module(src, || {
                let (mut bm, mut cm) = (-1, -1);
                assert_eq!(
                    devsw_attach(None, &mut bm, &nolc.sw, &mut cm),
                    Err(EINVAL),
                    "{src:?}: cdevsw without d_localcount"
                );
                let (mut bm, mut cm) = (-1, -1);
                assert_eq!(
                    devsw_attach(Some(b_nolc), &mut bm, &lc.sw, &mut cm),
                    Err(EINVAL),
                    "{src:?}: bdevsw without d_localcount"
                );
                // With both localcounts the module's devsw attaches.
                let (mut bm, mut cm) = (-1, -1);
                devsw_attach(Some(b_lc), &mut bm, &lc.sw, &mut cm).expect("with d_localcount");
                // SAFETY: exported functions, valid arguments.
                unsafe {
                    let b = bdevsw_lookup_acquire(makedev(bm, 0));
                    assert!(ptr::eq(b, b_lc));
                    bdevsw_release(b);
                    let c = cdevsw_lookup_acquire(makedev(cm, 0));
                    assert!(ptr::eq(c, &lc.sw));
                    cdevsw_release(c);
                }
                devsw_detach(Some(b_lc), Some(&lc.sw));
            });
        }
        // A built-in module, or a built-in driver outside any module's
        // initialisation: no d_localcount is fine, and lookups of it take
        // no reference (detach has nothing to drain).
        for ctx in [Some(ModSource::Kernel), None] {
            let run = || {
                let (mut bm, mut cm) = (-1, -1);
                devsw_attach(Some(b_nolc), &mut bm, &nolc.sw, &mut cm).expect("built-in");
                // SAFETY: exported functions, valid arguments.
                let c = unsafe { cdevsw_lookup_acquire(makedev(cm, 0)) };
                assert!(ptr::eq(c, &nolc.sw));
                // A reference "held" across the detach: there is none.
                devsw_detach(Some(b_nolc), Some(&nolc.sw));
                // SAFETY: as above; release of a built-in devsw is a no-op.
                unsafe {
                    cdevsw_release(c);
                    assert!(cdevsw_lookup_acquire(makedev(cm, 0)).is_null());
                }
            };
            match ctx {
                Some(s) => with_module(s, run),
                None => run(),
            }
        }
    });
}

#[test]
fn detach_waits_for_open_in_progress() {
    let m = Machine::new(4);
    let t = TestCdevsw::new(true);
    let dev = m.lwp(0, || attach(t));
    let before = m.live_percpu();
    let (in_open_tx, in_open_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let opener = m.spawn_lwp(1, move || {
        cdev_open(
            dev,
            |_| None,
            |d| {
                let me = TestCdevsw::of(d);
                assert!(me.alive());
                in_open_tx.send(()).unwrap();
                host::sleep_for(|| go_rx.recv().unwrap());
                // The devsw must still be attached: detach waits for us.
                assert!(me.alive(), "devsw detached during d_open");
                0
            },
        )
    });
    in_open_rx.recv().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    let detacher = m.spawn_lwp(2, move || {
        detach(t);
        d2.store(true, Ordering::SeqCst);
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !done.load(Ordering::SeqCst),
        "devsw_detach returned during d_open"
    );
    m.lwp(3, || {
        // Unpublished already: new lookups and opens fail at once.
        // SAFETY: exported function.
        assert!(unsafe { cdevsw_lookup_acquire(dev) }.is_null());
        assert_eq!(cdev_open(dev, |_| None, |_| 0), ENXIO);
    });
    go_tx.send(()).unwrap();
    assert_eq!(opener.join().unwrap(), 0);
    within(LIMIT, &m, move || detacher.join().unwrap());
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(
        m.live_percpu(),
        before - 1,
        "detach finalized the localcount"
    );
}

/// LWPs on every CPU loop on lookup-acquire + hold + release while a
/// controller attaches and detaches the devsw; every reference must see a
/// live devsw, every lookup that starts after a detach returned must fail.
fn storm(ncpu: usize, workers: usize, rounds: usize) {
    let m = Machine::new(ncpu);
    m.set_migrate_pct(30);
    let t = TestCdevsw::new(true);
    let dev = m.lwp(0, || attach(t));
    let stop = Arc::new(AtomicBool::new(false));
    // Even: attached (or attaching); odd: detach returned.  A lookup that
    // started and ended within one odd epoch must fail.
    let epoch = Arc::new(AtomicU64::new(0));
    let hits = Arc::new(AtomicU64::new(0));
    let misses = Arc::new(AtomicU64::new(0));
    let before = m.live_percpu();
    let hs: Vec<_> = (0..workers)
        .map(|i| {
            let (stop, epoch, hits, misses) = (
                Arc::clone(&stop),
                Arc::clone(&epoch),
                Arc::clone(&hits),
                Arc::clone(&misses),
            );
            m.spawn_lwp(i, move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let e0 = epoch.load(Ordering::SeqCst);
                    // SAFETY: exported function.
                    let d = unsafe { cdevsw_lookup_acquire(dev) };
                    let e1 = epoch.load(Ordering::SeqCst);
                    if d.is_null() {
                        misses.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert!(
                            !(e0 == e1 && e0 % 2 == 1),
                            "lookup succeeded after devsw_detach returned"
                        );
                        let me = TestCdevsw::of(d);
                        assert!(me.alive(), "referenced devsw is detached");
                        n += 1;
                        if n.is_multiple_of(3) {
                            host::preempt_point();
                        }
                        if n.is_multiple_of(7) {
                            host::sleep_for(|| std::thread::sleep(Duration::from_micros(50)));
                        }
                        assert!(me.alive(), "devsw detached under a reference");
                        // SAFETY: the reference taken above.
                        unsafe { cdevsw_release(d) };
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    host::preempt_point();
                }
            })
        })
        .collect();
    let m2 = Arc::clone(&m);
    let (epoch2, hits2) = (Arc::clone(&epoch), Arc::clone(&hits));
    within(LIMIT, &m, move || {
        m2.lwp(0, || {
            for r in 0..rounds {
                let h0 = hits2.load(Ordering::SeqCst);
                while hits2.load(Ordering::SeqCst) < h0 + 20 {
                    host::sleep_for(|| std::thread::sleep(Duration::from_micros(100)));
                }
                detach(t);
                epoch2.fetch_add(1, Ordering::SeqCst);
                // SAFETY: exported function.
                assert!(unsafe { cdevsw_lookup_acquire(dev) }.is_null(), "round {r}");
                host::sleep_for(|| std::thread::sleep(Duration::from_millis(1)));
                epoch2.fetch_add(1, Ordering::SeqCst);
                let d = attach(t);
                assert_eq!(major(d), major(dev), "freed major reused");
            }
            detach(t);
        })
    });
    stop.store(true, Ordering::SeqCst);
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(
        m.live_percpu(),
        before - 1,
        "every attach's localcount finalized"
    );
    eprintln!(
        "devsw storm: {ncpu} CPUs, {workers} LWPs, {rounds} detaches: {} references, {} misses, {:?}",
        hits.load(Ordering::SeqCst),
        misses.load(Ordering::SeqCst),
        m.stats()
    );
}

#[test]
fn attach_detach_vs_lookup_acquire_storm_2cpu() {
    storm(2, 4, 30);
}

#[test]
fn attach_detach_vs_lookup_acquire_storm_8cpu() {
    storm(8, 8, 30);
}

#[test]
fn table_growth_keeps_static_entries() {
    // Attaching beyond the static table forks it once; lookups of a
    // built-in major running meanwhile must always find the entry.
    let m = Machine::new(4);
    let b = TestCdevsw::new(false);
    b.magic.store(ALIVE, Ordering::SeqCst);
    m.lwp(0, || install_builtin_cdevsw(1, &b.sw));
    let stop = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let stop = Arc::clone(&stop);
            m.spawn_lwp(i, move || {
                while !stop.load(Ordering::SeqCst) {
                    // SAFETY: exported functions.
                    unsafe {
                        let d = cdevsw_lookup_acquire(makedev(1, 0));
                        assert!(ptr::eq(d, &b.sw), "built-in entry lost");
                        cdevsw_release(d);
                    }
                    host::preempt_point();
                }
            })
        })
        .collect();
    m.lwp(3, || {
        let ts: Vec<_> = (0..SYS_DEVSWS + 4).map(|_| TestCdevsw::new(true)).collect();
        let devs: Vec<_> = ts.iter().map(|t| attach(t)).collect();
        assert!(
            devs.iter().any(|&d| major(d) as usize >= SYS_DEVSWS),
            "table grew"
        );
        for (t, &d) in ts.iter().zip(&devs) {
            // SAFETY: exported functions.
            unsafe {
                let c = cdevsw_lookup_acquire(d);
                assert!(ptr::eq(c, &t.sw));
                cdevsw_release(c);
            }
        }
        for t in ts {
            detach(t);
        }
    });
    stop.store(true, Ordering::SeqCst);
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn concurrent_detaches_do_not_deadlock() {
    // Many detaches at once, each draining (with device_lock as the
    // interlock, whose drain xcall takes device_lock on every CPU) while
    // the others wait out lookups with xc_barrier: devsw_detach must not
    // hold device_lock across the barrier (netbsd-api.md 1.7).
    let m = Machine::new(4);
    const N: usize = 6;
    let ts: Vec<&'static TestCdevsw> = (0..N).map(|_| TestCdevsw::new(true)).collect();
    let devs: Vec<u64> = m.lwp(0, || ts.iter().map(|t| attach(t)).collect());
    // Hold one reference to each, released from another LWP a little later,
    // so that the drains overlap with the other detaches' barriers.
    let held: Vec<usize> = m.lwp(1, || {
        devs.iter()
            // SAFETY: exported function.
            .map(|&d| unsafe { cdevsw_lookup_acquire(d) } as usize)
            .collect()
    });
    let go = Arc::new(Barrier::new(N + 1));
    let hs: Vec<_> = ts
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let go = Arc::clone(&go);
            m.spawn_lwp(i, move || {
                go.wait();
                detach(t);
            })
        })
        .collect();
    go.wait();
    let m2 = Arc::clone(&m);
    within(LIMIT, &m, move || {
        m2.lwp(2, || {
            for d in held {
                host::sleep_for(|| std::thread::sleep(Duration::from_millis(5)));
                // SAFETY: the references taken above.
                unsafe { cdevsw_release(d as *const cdevsw) };
            }
        });
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn lookup_in_interrupt_context() {
    // cdevsw_lookup_acquire never sleeps: it may run in a (simulated)
    // interrupt handler; the release happens later in a thread.
    let m = Machine::new(2);
    let t = TestCdevsw::new(true);
    let dev = m.lwp(0, || attach(t));
    let d = m.interrupt(1, || {
        // SAFETY: exported function.
        unsafe { cdevsw_lookup_acquire(dev) as usize }
    });
    assert_ne!(d, 0);
    let m2 = Arc::clone(&m);
    let detacher = m.spawn_lwp(0, move || detach(t));
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !detacher.is_finished(),
        "detach did not wait for the reference"
    );
    m2.lwp(1, || {
        // SAFETY: the reference taken in the interrupt handler.
        unsafe { cdevsw_release(d as *const cdevsw) }
    });
    within(LIMIT, &m, move || detacher.join().unwrap());
}
