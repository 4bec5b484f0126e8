//! The devsw reference layer (`bdevsw_lookup_acquire`, `cdevsw_lookup_acquire`,
//! `bdevsw_release`, `cdevsw_release`) through the C ABI, on the host kernel
//! with its simulated devsw tables and the patched `devsw_attach` /
//! `devsw_detach` (backend::host::devsw) and `cdev_open` (tests/common,
//! through the C exports as the kernel calls them): built-in entries,
//! the EINVAL rule for modules, detach waiting for an open in progress,
//! attach/detach against lookup-acquire storms, table growth, concurrent
//! detaches.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use common::{cdev_open, within, ENXIO};
use rust_localcount::backend::host::devsw::{
    cdevsw_majors, devsw_attach, devsw_detach, install_builtin_cdevsw, with_module, ModSource,
    EINVAL, SYS_DEVSWS,
};
use rust_localcount::backend::host::{self, Machine};
use rust_localcount::ffi::exports::*;
use rust_localcount::sys::conf::{bdevsw, cdevsw};
use rust_localcount::sys::types::{major, makedev, NODEV};
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
    // The devsw's d_localcount and its major's count.
    assert_eq!(
        m.live_percpu(),
        before - 2,
        "detach finalized both localcounts"
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
        before - 2,
        "every attach's localcounts finalized"
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

/* ------------------------------------------------------------------ */
/* Issue 8: what real drivers do.                                      */

/// An LWP inside `cdev_open(dev)`, whose `d_open` blocks until `go` is
/// sent; returns (signal "in d_open", the go sender, the join handle).
fn open_held(
    m: &Arc<Machine>,
    cpu: usize,
    dev: u64,
) -> (
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
    std::thread::JoinHandle<i32>,
) {
    let (in_tx, in_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = m.spawn_lwp(cpu, move || {
        cdev_open(
            dev,
            |_| None,
            |d| {
                let me = TestCdevsw::of(d);
                assert!(me.alive(), "d_open of a detached devsw");
                in_tx.send(()).unwrap();
                host::sleep_for(|| go_rx.recv().unwrap());
                assert!(me.alive(), "devsw detached during d_open");
                0
            },
        )
    });
    (in_rx, go_tx, h)
}

/// Run `detach` on an LWP and check that it is still waiting after
/// 200 ms, then release every opener (`open_held`'s go and handle) and
/// check that it returns.
fn detach_must_wait(
    m: &Arc<Machine>,
    what: &str,
    openers: Vec<(mpsc::Sender<()>, std::thread::JoinHandle<i32>)>,
    detach: impl FnOnce() + Send + 'static,
) {
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    let detacher = m.spawn_lwp(2, move || {
        detach();
        d2.store(true, Ordering::SeqCst);
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !done.load(Ordering::SeqCst),
        "{what}: devsw_detach returned with {} d_open running",
        openers.len()
    );
    for (go, _) in &openers {
        go.send(()).unwrap();
    }
    for (_, h) in openers {
        assert_eq!(h.join().unwrap(), 0);
    }
    within(LIMIT, m, move || detacher.join().unwrap());
    assert!(done.load(Ordering::SeqCst));
}

/// Item 1 (dev/pud): one cdevsw at two majors -- the module's own major
/// (MODULE_CMD_INIT) and one chosen by userland together with a bdevsw
/// (pudconf_reg) -- and `devsw_detach(&pud_bdevsw, &pud_cdevsw)` as
/// pud_putter_close calls it.  Detaching one major waits for the opens
/// through it and never breaks the other; the lowest major goes first.
#[test]
fn one_devsw_at_two_majors_as_pud() {
    let m = Machine::new(4);
    let t = TestCdevsw::new(true);
    let b = bdevsw_new(true);
    t.magic.store(ALIVE, Ordering::SeqCst);
    let base = m.live_percpu();
    let (ca, cb) = m.lwp(0, || {
        let (mut bm, mut ca) = (-1, -1);
        devsw_attach(None, &mut bm, &t.sw, &mut ca).expect("module init attach");
        let (mut bb, mut cb) = (ca + 3, ca + 3);
        devsw_attach(Some(b), &mut bb, &t.sw, &mut cb).expect("pudconf_reg attach");
        assert_eq!(bb, cb);
        (ca, cb)
    });
    assert_eq!(
        m.lwp(0, || cdevsw_majors(&t.sw)),
        vec![ca as usize, cb as usize]
    );
    let (da, db) = (makedev(ca, 0), makedev(cb, 0));

    // An open through the first major is running when it is detached.
    let (in_open, go, opener) = open_held(&m, 1, da);
    in_open.recv().unwrap();
    let m2 = Arc::clone(&m);
    let probe = move || {
        m2.lwp(3, || {
            assert_eq!(cdev_open(db, |_| None, |_| 0), 0, "other major broken");
            // SAFETY: exported functions, valid arguments.
            unsafe {
                let d = cdevsw_lookup_acquire(db);
                assert!(ptr::eq(d, &t.sw));
                cdevsw_release(d);
            }
        })
    };
    probe();
    detach_must_wait(&m, "pud, first major", vec![(go, opener)], move || {
        devsw_detach(None, Some(&t.sw))
    });
    assert_eq!(
        m.lwp(0, || cdevsw_majors(&t.sw)),
        vec![cb as usize],
        "devsw_detach removes the lowest major"
    );
    // The other major still works, through cdev_open and the public API.
    let m3 = Arc::clone(&m);
    m3.lwp(3, || {
        assert_eq!(cdev_open(db, |_| None, |_| 0), 0);
        assert_eq!(cdev_open(da, |_| None, |_| 0), ENXIO);
        // SAFETY: exported functions, valid arguments.
        unsafe {
            let d = cdevsw_lookup_acquire(db);
            assert!(ptr::eq(d, &t.sw));
            cdevsw_release(d);
            let bd = bdevsw_lookup_acquire(makedev(cb, 0));
            assert!(ptr::eq(bd, b));
            bdevsw_release(bd);
        }
    });

    // The last major: an open through it and a public reference.
    let (in_open, go, opener) = open_held(&m, 1, db);
    in_open.recv().unwrap();
    // SAFETY: exported function.
    let held = m.lwp(3, || unsafe { cdevsw_lookup_acquire(db) } as usize);
    assert_ne!(held, 0);
    let detacher = {
        let m = Arc::clone(&m);
        m.clone()
            .spawn_lwp(2, move || devsw_detach(Some(b), Some(&t.sw)))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !detacher.is_finished(),
        "last detach did not wait for d_open"
    );
    go.send(()).unwrap();
    assert_eq!(opener.join().unwrap(), 0);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !detacher.is_finished(),
        "last detach did not wait for the public reference"
    );
    // SAFETY: the reference taken above.
    m.lwp(3, || unsafe { cdevsw_release(held as *const cdevsw) });
    within(LIMIT, &m, move || detacher.join().unwrap());
    assert!(m.lwp(0, || cdevsw_majors(&t.sw)).is_empty());

    // Re-attach (the module loaded again) and detach: all fresh.
    m.lwp(0, || {
        let (mut bm, mut cm) = (-1, -1);
        devsw_attach(None, &mut bm, &t.sw, &mut cm).expect("re-attach");
        assert_eq!(cdev_open(makedev(cm, 0), |_| None, |_| 0), 0);
        devsw_detach(None, Some(&t.sw));
    });
    assert_eq!(m.live_percpu(), base, "every count finalized");
}

/// The second attach at a major that is still being detached waits for
/// that detach instead of reusing its count (stock NetBSD's KASSERT).
#[test]
fn attach_at_a_major_being_detached_waits() {
    let m = Machine::new(2);
    let t = TestCdevsw::new(true);
    let u = TestCdevsw::new(true);
    let dev = m.lwp(0, || attach(t));
    let (in_open, go, opener) = open_held(&m, 1, dev);
    in_open.recv().unwrap();
    let detacher = {
        let m = Arc::clone(&m);
        m.clone().spawn_lwp(0, move || detach(t))
    };
    std::thread::sleep(Duration::from_millis(100));
    let attacher = {
        let m = Arc::clone(&m);
        m.clone().spawn_lwp(1, move || {
            let (mut bm, mut cm) = (-1, major(dev));
            u.magic.store(ALIVE, Ordering::SeqCst);
            devsw_attach(None, &mut bm, &u.sw, &mut cm).expect("attach at the same major");
            cm
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !attacher.is_finished(),
        "attach did not wait for the detach"
    );
    go.send(()).unwrap();
    assert_eq!(opener.join().unwrap(), 0);
    within(LIMIT, &m, move || detacher.join().unwrap());
    let cm = within(LIMIT, &m, move || attacher.join().unwrap());
    assert_eq!(cm, major(dev));
    m.lwp(0, || {
        assert_eq!(cdev_open(dev, |_| None, |_| 0), 0);
        devsw_detach(None, Some(&u.sw));
    });
}

/// Item 2: a devsw attached at run time is protected like in stock
/// NetBSD-current whoever attaches it: a built-in driver without
/// d_localcount attaching from a kthread, and a module's devsw (with or
/// without d_localcount) attached outside its MODULE_CMD_INIT.
#[test]
fn run_time_attached_devsws_wait_for_open() {
    for (with_lc, ctx) in [
        (false, None),
        (true, None),
        (false, Some(ModSource::Kernel)),
    ] {
        let what = format!("d_localcount={with_lc} module={ctx:?}");
        let m = Machine::new(4);
        let t = TestCdevsw::new(with_lc);
        let dev = m.lwp(0, || match ctx {
            Some(s) => with_module(s, || attach(t)),
            None => attach(t),
        });
        // One opener per CPU inside d_open.
        let openers: Vec<_> = (0..4)
            .map(|cpu| {
                let (in_open, go, h) = open_held(&m, cpu, dev);
                in_open.recv().unwrap();
                (go, h)
            })
            .collect();
        detach_must_wait(&m, &what, openers, move || detach(t));
    }
}

/// Item 3: devsw_attach must not allocate per-CPU storage under
/// device_lock.  percpu_alloc may grow the arena with a low-priority xcall
/// and wait for it; low-priority xcalls run one at a time, and a
/// concurrent detach's drain xcall takes device_lock: under the lock the
/// two would deadlock.  Attaches that always grow the arena race detaches
/// that drain.
#[test]
fn attach_growing_percpu_during_drains() {
    let m = Machine::new(4);
    let stop = Arc::new(AtomicBool::new(false));
    let drainers: Vec<_> = (0..2)
        .map(|i| {
            let stop = Arc::clone(&stop);
            m.spawn_lwp(i, move || {
                let t = TestCdevsw::new(true);
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let dev = attach(t);
                    // SAFETY: exported functions; a reference released
                    // by the detach's drain slow path, sometimes.
                    unsafe {
                        let d = cdevsw_lookup_acquire(dev);
                        cdevsw_release(d);
                    }
                    detach(t);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let m2 = Arc::clone(&m);
    let grows = within(LIMIT, &m, move || {
        m2.clone().lwp(2, || {
            let t = TestCdevsw::new(true);
            for _ in 0..300 {
                m2.percpu_exhaust();
                let dev = attach(t);
                host::preempt_point();
                let _ = dev;
                detach(t);
            }
        });
        m2.stats().percpu_grows.load(Ordering::SeqCst)
    });
    stop.store(true, Ordering::SeqCst);
    let cycles: u64 = drainers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(grows >= 300, "every attach grew the arena ({grows})");
    eprintln!("percpu growth during drains: {grows} grows, {cycles} attach/drain cycles");
}

/// Item 5: the release paths take pointers, not references, to what may
/// be freed as soon as the reference is dropped (a compile-time check of
/// the signatures), and nothing touches the devsw or its localcount after
/// the last detach returned: the "module" is poisoned at that moment
/// while releases are still on their way out.
#[test]
fn releases_do_not_touch_a_devsw_after_its_detach() {
    use core::ptr::NonNull;
    use rust_localcount::backend::host::Host;
    let _: fn(NonNull<cdevsw>) = rust_localcount::devsw::release::<Host, cdevsw>;
    let _: fn(NonNull<bdevsw>) = rust_localcount::devsw::release::<Host, bdevsw>;
    for round in 0..20 {
        let m = Machine::new(4);
        let t = TestCdevsw::new(true);
        let dev = m.lwp(0, || attach(t));
        let held: Vec<usize> = m.lwp(1, || {
            (0..4)
                // SAFETY: exported function.
                .map(|_| unsafe { cdevsw_lookup_acquire(dev) } as usize)
                .collect()
        });
        let releasers: Vec<_> = held
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                m.spawn_lwp(i % 4, move || {
                    host::sleep_for(|| std::thread::sleep(Duration::from_millis(20)));
                    // SAFETY: the reference taken above.
                    unsafe { cdevsw_release(d as *const cdevsw) };
                })
            })
            .collect();
        m.lwp(2, || {
            devsw_detach(None, Some(&t.sw));
            // "Unload the module": scribble over the devsw's localcount.
            // SAFETY: the test's leaked localcount; nobody may use it now.
            unsafe { ptr::write_bytes(t.sw.d_localcount.cast::<u8>(), 0xa5, 8) };
            t.magic.store(DEAD, Ordering::SeqCst);
        });
        for r in releasers {
            r.join()
                .unwrap_or_else(|_| panic!("round {round}: a release failed"));
        }
    }
}

/// Item 6: with DEBUG+LOCKDEBUG, a static d_localcount re-attached after a
/// detach starts from a zero debug count, as stock's freshly allocated
/// per-attach localcount did (releases during a drain do not update it).
#[cfg(feature = "lc-debug")]
#[test]
fn debug_refcnt_is_fresh_after_reattach() {
    let m = Machine::new(2);
    let t = TestCdevsw::new(true);
    for round in 0..3 {
        let dev = m.lwp(0, || attach(t));
        // SAFETY: exported function.
        let d = m.lwp(1, || unsafe { cdevsw_lookup_acquire(dev) } as usize);
        // SAFETY: an initialized localcount.
        let n = unsafe { localcount_debug_refcnt(t.sw.d_localcount) };
        assert_eq!(n, 1, "round {round}: one reference");
        let detacher = {
            let m = Arc::clone(&m);
            m.clone().spawn_lwp(0, move || detach(t))
        };
        std::thread::sleep(Duration::from_millis(50));
        // Released during the drain: the slow path.
        // SAFETY: the reference taken above.
        m.lwp(1, || unsafe { cdevsw_release(d as *const cdevsw) });
        within(LIMIT, &m, move || detacher.join().unwrap());
    }
    let _dev = m.lwp(0, || attach(t));
    // SAFETY: an initialized localcount.
    let n = unsafe { localcount_debug_refcnt(t.sw.d_localcount) };
    assert_eq!(n, 0, "a re-attached devsw's debug count starts at zero");
    m.lwp(0, || detach(t));
}

/// Beyond stock: a devsw_detach that has waited 5 s says so on the
/// console, naming the major and the number of references.
#[test]
fn detach_that_waits_is_reported() {
    let m = Machine::new(2);
    let t = TestCdevsw::new(true);
    let dev = m.lwp(0, || attach(t));
    let (in_open, go, opener) = open_held(&m, 1, dev);
    in_open.recv().unwrap();
    let detacher = {
        let m = Arc::clone(&m);
        m.clone().spawn_lwp(0, move || detach(t))
    };
    std::thread::sleep(Duration::from_millis(5600));
    go.send(()).unwrap();
    assert_eq!(opener.join().unwrap(), 0);
    within(LIMIT, &m, move || detacher.join().unwrap());
    let want = format!(
        "devsw_detach: cdevsw major {}: 1 references outstanding after 5 s",
        major(dev)
    );
    let console = m.console();
    assert!(console.contains(&want), "no report {want:?} in {console:?}");
    assert_eq!(console.len(), 1, "one report before 10 s: {console:?}");
}

/// An attach that waited for a major's drain must, once woken, also wait
/// for a drain of its own devsw's d_localcount that began meanwhile (it
/// must not install a count into a localcount being drained).
#[test]
fn attach_woken_from_a_major_waits_for_its_devsw_drain() {
    let m = Machine::new(4);
    let u = TestCdevsw::new(true);
    let t = TestCdevsw::new(true);
    let (du, dt) = m.lwp(0, || (attach(u), attach(t)));
    // An open through u's major M, and a public reference to t.
    let (in_open, go, opener) = open_held(&m, 1, du);
    in_open.recv().unwrap();
    // SAFETY: exported function.
    let held = m.lwp(3, || unsafe { cdevsw_lookup_acquire(dt) } as usize);
    assert_ne!(held, 0);
    let det_u = {
        let m = Arc::clone(&m);
        m.clone().spawn_lwp(0, move || detach(u))
    };
    std::thread::sleep(Duration::from_millis(50));
    // t at u's major M, which is still being drained: waits.
    let attacher = {
        let m = Arc::clone(&m);
        m.clone().spawn_lwp(2, move || {
            let (mut bm, mut cm) = (-1, major(du));
            devsw_attach(None, &mut bm, &t.sw, &mut cm).expect("attach at M");
            cm
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    // t's last detach: its d_localcount drain waits for `held`.
    let det_t = {
        let m = Arc::clone(&m);
        m.clone()
            .spawn_lwp(3, move || devsw_detach(None, Some(&t.sw)))
    };
    std::thread::sleep(Duration::from_millis(50));
    // M becomes free; the attacher wakes and must now wait for t's drain.
    // (Everything that may block is under a deadline: a broken attach
    // panics holding device_lock.)
    go.send(()).unwrap();
    within(LIMIT, &m, move || {
        assert_eq!(opener.join().unwrap(), 0);
        det_u.join().unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !attacher.is_finished(),
        "attach installed d_localcount while it was being drained"
    );
    let m2 = Arc::clone(&m);
    let cm = within(LIMIT, &m, move || {
        // SAFETY: the reference taken above.
        m2.lwp(1, || unsafe { cdevsw_release(held as *const cdevsw) });
        det_t.join().unwrap();
        attacher.join().unwrap()
    });
    assert_eq!(cm, major(du));
    t.magic.store(ALIVE, Ordering::SeqCst);
    m.lwp(0, || {
        assert_eq!(cdev_open(makedev(cm, 0), |_| None, |_| 0), 0);
        detach(t);
    });
}
