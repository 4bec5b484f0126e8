//! The autoconf reference layer (`device_lookup_acquire`, `device_acquire`,
//! `device_release`, `device_find_by_driver_unit_acquire`,
//! `device_lookup_private_acquire`, `device_detach_release`) through the C
//! ABI, on the host kernel's simulated device tree (backend::host::autoconf,
//! NetBSD-current's attach/detach protocol): waiting for attach and detach,
//! the EBUSY back-out, lookups failing promptly after the commit, detach
//! waiting for references, storms of lookups against attach/detach cycles,
//! and no access to a detached ("freed") device.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use core::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use std::time::{Duration, Instant};

use common::within;
use rust_localcount::backend::host::autoconf::{
    cfdriver_attach, config_attach_pseudo_acquire, config_cfdriver_detach, config_detach_commit,
    device_is_freed, DeviceOps, EBUSY,
};
use rust_localcount::backend::host::{self, Host, Machine};
use rust_localcount::ffi::exports::*;
use rust_localcount::sys::types::{cfdriver, device};

const LIMIT: Duration = Duration::from_secs(120);
const ALIVE: u32 = 0x4b54_414c;
const DEAD: u32 = 0xdead_beef;

/// A softc that records its device and can be poisoned.
struct Softc {
    dev: AtomicU64,
    magic: AtomicU32,
}

impl Softc {
    fn new() -> &'static Softc {
        Box::leak(Box::new(Softc {
            dev: AtomicU64::new(0),
            magic: AtomicU32::new(ALIVE),
        }))
    }
    fn ptr(&'static self) -> *mut c_void {
        self as *const Softc as *mut c_void
    }
    fn of(p: *mut c_void) -> &'static Softc {
        // SAFETY: every softc the tests attach is a leaked Softc.
        unsafe { &*(p as *const Softc) }
    }
    fn alive(&self) -> bool {
        self.magic.load(Ordering::SeqCst) == ALIVE
    }
}

/// Attach routine records the device in the softc; the detach routine does
/// what the test says.
#[derive(Default)]
struct Ops {
    /// Block in attach until this is sent to.
    attach_gate: Mutex<Option<mpsc::Receiver<()>>>,
    /// Told when attach/detach routines start.
    started: Mutex<Option<mpsc::Sender<&'static str>>>,
    /// Back out with EBUSY (after a pause).
    refuse: AtomicBool,
    /// Call config_detach_commit from the detach routine.
    commit: AtomicBool,
}

impl Ops {
    fn tell(&self, what: &'static str) {
        if let Some(tx) = &*self.started.lock().unwrap() {
            let _ = tx.send(what);
        }
    }
}

impl DeviceOps for Ops {
    fn attach(&self, dv: NonNull<device>) {
        // SAFETY: dv is attaching, alive; exported accessor-free read.
        let sc = Softc::of(unsafe {
            <Host as rust_localcount::kernel::AutoconfKernel>::device_private(dv)
        });
        sc.dev.store(dv.as_ptr() as u64, Ordering::SeqCst);
        self.tell("attach");
        if let Some(rx) = self.attach_gate.lock().unwrap().take() {
            host::sleep_for(|| rx.recv().unwrap());
        }
    }
    fn detach(&self, dv: NonNull<device>, _flags: c_int) -> c_int {
        self.tell("detach");
        if self.refuse.load(Ordering::SeqCst) {
            host::sleep_for(|| std::thread::sleep(Duration::from_millis(100)));
            return EBUSY;
        }
        if self.commit.load(Ordering::SeqCst) {
            config_detach_commit(dv);
        }
        0
    }
}

/// Attach unit 0 of `cd` and return it unreferenced.
fn attach(cd: NonNull<cfdriver>, ops: &Arc<Ops>, sc: &'static Softc) -> NonNull<device> {
    let dv = config_attach_pseudo_acquire(cd, 0, Arc::clone(ops) as Arc<dyn DeviceOps>, sc.ptr());
    // SAFETY: the reference config_attach_pseudo_acquire returned.
    unsafe { device_release(dv.as_ptr()) };
    dv
}

/// Detach unit 0 of `cd` through the public API: lookup-acquire, then
/// device_detach_release.
fn detach(cd: NonNull<cfdriver>) -> c_int {
    // SAFETY: exported functions, valid arguments.
    unsafe {
        let dv = device_lookup_acquire(cd.as_ptr(), 0);
        assert!(!dv.is_null(), "nothing to detach");
        device_detach_release(dv, 0)
    }
}

#[test]
fn lookups_find_private_and_by_name() {
    let m = Machine::new(2);
    m.lwp(0, || {
        let cd = cfdriver_attach("tfind");
        let ops = Arc::new(Ops::default());
        let sc = Softc::new();
        let dv = attach(cd, &ops, sc);
        // SAFETY: (all calls) exported functions, valid arguments.
        unsafe {
            let d = device_lookup_acquire(cd.as_ptr(), 0);
            assert_eq!(d, dv.as_ptr());
            device_acquire(d); // a second reference, as a holder may take
            device_release(d);
            device_release(d);
            assert!(device_lookup_acquire(cd.as_ptr(), 1).is_null());
            assert!(device_lookup_acquire(cd.as_ptr(), -1).is_null());
            assert!(device_lookup_acquire(cd.as_ptr(), 1000).is_null());
            let d = device_find_by_driver_unit_acquire(c"tfind".as_ptr(), 0);
            assert_eq!(d, dv.as_ptr());
            device_release(d);
            assert!(device_find_by_driver_unit_acquire(c"nosuch".as_ptr(), 0).is_null());
            assert!(device_find_by_driver_unit_acquire(c"tfind".as_ptr(), 3).is_null());
            let p = device_lookup_private_acquire(cd.as_ptr(), 0);
            assert_eq!(p, sc.ptr());
            // Released through the device_t the softc records.
            device_release(Softc::of(p).dev.load(Ordering::SeqCst) as *mut device);
            assert!(device_lookup_private_acquire(cd.as_ptr(), 2).is_null());
        }
        assert_eq!(detach(cd), 0);
        // SAFETY: dv came from config_attach_pseudo_acquire.
        assert!(unsafe { device_is_freed(dv) });
        // SAFETY: exported functions.
        unsafe {
            assert!(device_lookup_acquire(cd.as_ptr(), 0).is_null());
            assert!(device_find_by_driver_unit_acquire(c"tfind".as_ptr(), 0).is_null());
            assert!(device_lookup_private_acquire(cd.as_ptr(), 0).is_null());
        }
    });
}

#[test]
fn lookup_waits_for_attach() {
    let m = Machine::new(4);
    let cd = m.lwp(0, || cfdriver_attach("tattach"));
    let (gate_tx, gate_rx) = mpsc::channel();
    let (st_tx, st_rx) = mpsc::channel();
    let ops = Arc::new(Ops::default());
    *ops.attach_gate.lock().unwrap() = Some(gate_rx);
    *ops.started.lock().unwrap() = Some(st_tx);
    let sc = Softc::new();
    let cdp = cd.as_ptr() as usize;
    let ops2 = Arc::clone(&ops);
    let attacher = m.spawn_lwp(0, move || {
        attach(NonNull::new(cdp as *mut cfdriver).unwrap(), &ops2, sc).as_ptr() as usize
    });
    assert_eq!(st_rx.recv().unwrap(), "attach");
    // The device is linked but still attaching: lookups wait.
    let looker = m.spawn_lwp(1, move || {
        let t0 = Instant::now();
        // SAFETY: exported function.
        let d = unsafe { device_lookup_acquire(cdp as *mut cfdriver, 0) };
        (d as usize, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!looker.is_finished(), "lookup did not wait for the attach");
    gate_tx.send(()).unwrap();
    let dv = attacher.join().unwrap();
    let (d, waited) = looker.join().unwrap();
    assert_eq!(d, dv);
    assert!(waited >= Duration::from_millis(90));
    m.lwp(2, || {
        // SAFETY: the looker's reference.
        unsafe { device_release(d as *mut device) };
        assert_eq!(detach(cd), 0);
    });
}

#[test]
fn attacher_can_acquire_its_own_device() {
    let m = Machine::new(2);
    m.lwp(0, || {
        let cd = cfdriver_attach("tself");
        let sc = Softc::new();
        struct SelfOps(AtomicBool);
        impl DeviceOps for SelfOps {
            fn attach(&self, dv: NonNull<device>) {
                // dv_attaching == curlwp: no waiting for ourselves.
                // SAFETY: exported functions.
                let d = unsafe { device_find_by_driver_unit_acquire(c"tself".as_ptr(), 0) };
                self.0.store(d == dv.as_ptr(), Ordering::SeqCst);
                if !d.is_null() {
                    // SAFETY: the reference just taken.
                    unsafe { device_release(d) };
                }
            }
        }
        let so = Arc::new(SelfOps(AtomicBool::new(false)));
        let dv = config_attach_pseudo_acquire(cd, 0, so.clone(), sc.ptr());
        // SAFETY: the attach reference.
        unsafe { device_release(dv.as_ptr()) };
        assert!(
            so.0.load(Ordering::SeqCst),
            "attaching LWP could not acquire its device"
        );
        assert_eq!(detach(cd), 0);
    });
}

#[test]
fn detach_waits_for_references_and_lookups_fail_after_commit() {
    for commit_early in [false, true] {
        let m = Machine::new(4);
        let cd = m.lwp(0, || cfdriver_attach("twait"));
        let ops = Arc::new(Ops::default());
        ops.commit.store(commit_early, Ordering::SeqCst);
        let sc = Softc::new();
        let dv = m.lwp(0, || attach(cd, &ops, sc));
        let cdp = cd.as_ptr() as usize;
        // Hold a reference.
        // SAFETY: exported function.
        let held = m.lwp(
            1,
            || unsafe { device_lookup_acquire(cdp as *mut cfdriver, 0) } as usize,
        );
        assert_eq!(held, dv.as_ptr() as usize);
        let done = Arc::new(AtomicBool::new(false));
        let d2 = Arc::clone(&done);
        let detacher = m.spawn_lwp(2, move || {
            let r = detach(NonNull::new(cdp as *mut cfdriver).unwrap());
            d2.store(true, Ordering::SeqCst);
            r
        });
        // Committed (the detach routine returned): lookups fail, promptly,
        // while the detach still waits for our reference.
        let t0 = Instant::now();
        let failed_after = m.lwp(3, || loop {
            // SAFETY: exported function.
            let d = unsafe { device_lookup_acquire(cdp as *mut cfdriver, 0) };
            if d.is_null() {
                break t0.elapsed();
            }
            // SAFETY: the reference just taken.
            unsafe { device_release(d) };
            host::preempt_point();
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !done.load(Ordering::SeqCst),
            "detach returned while a reference was held"
        );
        let t1 = Instant::now();
        m.lwp(3, || {
            // SAFETY: exported function.
            assert!(unsafe { device_lookup_acquire(cdp as *mut cfdriver, 0) }.is_null());
        });
        assert!(
            t1.elapsed() < Duration::from_secs(5),
            "lookup after commit was not prompt"
        );
        assert!(sc.alive(), "softc poisoned early");
        m.lwp(1, || {
            // SAFETY: the reference taken above; the softc is still alive.
            assert!(Softc::of(unsafe { device_private_of(held) }).alive());
            // SAFETY: the reference taken above.
            unsafe { device_release(held as *mut device) };
        });
        let r = within(LIMIT, &m, move || detacher.join().unwrap());
        assert_eq!(r, 0);
        sc.magic.store(DEAD, Ordering::SeqCst);
        // SAFETY: from config_attach_pseudo_acquire.
        assert!(unsafe { device_is_freed(dv) }, "detach frees the device");
        eprintln!("commit_early={commit_early}: lookups failed after {failed_after:?}");
    }
}

/// `device_private` through the accessor, for a device we hold.
unsafe fn device_private_of(dv: usize) -> *mut c_void {
    // SAFETY: caller holds a reference.
    unsafe {
        <Host as rust_localcount::kernel::AutoconfKernel>::device_private(
            NonNull::new(dv as *mut device).unwrap(),
        )
    }
}

#[test]
fn ebusy_backout_lookups_wait_then_succeed() {
    let m = Machine::new(4);
    let cd = m.lwp(0, || cfdriver_attach("tebusy"));
    let (st_tx, st_rx) = mpsc::channel();
    let ops = Arc::new(Ops::default());
    *ops.started.lock().unwrap() = Some(st_tx);
    ops.refuse.store(true, Ordering::SeqCst);
    let sc = Softc::new();
    let dv = m.lwp(0, || attach(cd, &ops, sc));
    assert_eq!(st_rx.recv().unwrap(), "attach");
    let cdp = cd.as_ptr() as usize;
    let detacher = m.spawn_lwp(1, move || {
        detach(NonNull::new(cdp as *mut cfdriver).unwrap())
    });
    assert_eq!(st_rx.recv().unwrap(), "detach");
    // The detach routine is running: a lookup waits for it, and succeeds
    // once it backed out.
    let looker = m.spawn_lwp(2, move || {
        let t0 = Instant::now();
        // SAFETY: exported function.
        let d = unsafe { device_lookup_acquire(cdp as *mut cfdriver, 0) };
        (d as usize, t0.elapsed())
    });
    assert_eq!(within(LIMIT, &m, move || detacher.join().unwrap()), EBUSY);
    let (d, waited) = looker.join().unwrap();
    assert_eq!(d, dv.as_ptr() as usize, "lookup failed after the back-out");
    assert!(
        waited >= Duration::from_millis(50),
        "lookup did not wait ({waited:?})"
    );
    m.lwp(3, || {
        // SAFETY: the looker's reference.
        unsafe { device_release(d as *mut device) };
        // Still attached and usable; then really detach.
        ops.refuse.store(false, Ordering::SeqCst);
        assert_eq!(detach(cd), 0);
        // SAFETY: exported function.
        assert!(unsafe { device_lookup_acquire(cd.as_ptr(), 0) }.is_null());
    });
    // SAFETY: from config_attach_pseudo_acquire.
    assert!(unsafe { device_is_freed(dv) });
}

/// LWPs on every CPU loop on lookup-acquire + hold + release (and the
/// private and by-name variants) while a controller attaches and detaches
/// the device; every reference sees a live softc, and a lookup that runs
/// entirely after a detach returned fails.  Host devices are poisoned on
/// detach and every accessor checks, so a reference that outlived its
/// detach would panic here.
fn storm(ncpu: usize, workers: usize, rounds: usize) {
    let m = Machine::new(ncpu);
    m.set_migrate_pct(30);
    let cd = m.lwp(0, || cfdriver_attach("tstorm"));
    let cdp = cd.as_ptr() as usize;
    let ops = Arc::new(Ops::default());
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Arc::new(AtomicU64::new(0)); // odd: detached
    let hits = Arc::new(AtomicU64::new(0));
    let misses = Arc::new(AtomicU64::new(0));
    let mut sc = Softc::new();
    m.lwp(0, || attach(cd, &ops, sc));
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
                    n += 1;
                    let e0 = epoch.load(Ordering::SeqCst);
                    // SAFETY: exported functions.
                    let (dv, scp) = unsafe {
                        match n % 3 {
                            0 => {
                                let p = device_lookup_private_acquire(cdp as *mut cfdriver, 0);
                                if p.is_null() {
                                    (0, p)
                                } else {
                                    (Softc::of(p).dev.load(Ordering::SeqCst) as usize, p)
                                }
                            }
                            1 => {
                                let d = device_find_by_driver_unit_acquire(c"tstorm".as_ptr(), 0);
                                (
                                    d as usize,
                                    if d.is_null() {
                                        std::ptr::null_mut()
                                    } else {
                                        device_private_of(d as usize)
                                    },
                                )
                            }
                            _ => {
                                let d = device_lookup_acquire(cdp as *mut cfdriver, 0);
                                (
                                    d as usize,
                                    if d.is_null() {
                                        std::ptr::null_mut()
                                    } else {
                                        device_private_of(d as usize)
                                    },
                                )
                            }
                        }
                    };
                    let e1 = epoch.load(Ordering::SeqCst);
                    if dv == 0 {
                        misses.fetch_add(1, Ordering::Relaxed);
                        host::preempt_point();
                        continue;
                    }
                    assert!(
                        !(e0 == e1 && e0 % 2 == 1),
                        "lookup succeeded after the detach returned"
                    );
                    let s = Softc::of(scp);
                    assert!(s.alive(), "referenced softc is poisoned");
                    if n.is_multiple_of(5) {
                        host::sleep_for(|| std::thread::sleep(Duration::from_micros(50)));
                    } else {
                        host::preempt_point();
                    }
                    assert!(s.alive(), "device detached under a reference");
                    // SAFETY: the reference taken above.
                    unsafe { device_release(dv as *mut device) };
                    hits.fetch_add(1, Ordering::Relaxed);
                    host::preempt_point();
                }
            })
        })
        .collect();
    let m2 = Arc::clone(&m);
    let (epoch2, hits2, ops2) = (Arc::clone(&epoch), Arc::clone(&hits), Arc::clone(&ops));
    within(LIMIT, &m, move || {
        let cd = NonNull::new(cdp as *mut cfdriver).unwrap();
        m2.lwp(0, || {
            for _ in 0..rounds {
                let h0 = hits2.load(Ordering::SeqCst);
                while hits2.load(Ordering::SeqCst) < h0 + 10 {
                    host::sleep_for(|| std::thread::sleep(Duration::from_micros(100)));
                }
                assert_eq!(detach(cd), 0);
                sc.magic.store(DEAD, Ordering::SeqCst);
                epoch2.fetch_add(1, Ordering::SeqCst);
                // SAFETY: exported function.
                assert!(unsafe { device_lookup_acquire(cd.as_ptr(), 0) }.is_null());
                host::sleep_for(|| std::thread::sleep(Duration::from_millis(1)));
                epoch2.fetch_add(1, Ordering::SeqCst);
                sc = Softc::new();
                attach(cd, &ops2, sc);
            }
            assert_eq!(detach(cd), 0);
        })
    });
    stop.store(true, Ordering::SeqCst);
    for h in hs {
        h.join().unwrap();
    }
    eprintln!(
        "autoconf storm: {ncpu} CPUs, {workers} LWPs, {rounds} detaches: {} references, {} misses, {:?}",
        hits.load(Ordering::SeqCst),
        misses.load(Ordering::SeqCst),
        m.stats()
    );
}

#[test]
fn attach_detach_vs_lookup_acquire_storm_2cpu() {
    storm(2, 4, 20);
}

#[test]
fn attach_detach_vs_lookup_acquire_storm_8cpu() {
    storm(8, 8, 20);
}

/// Issue 8, item 7: `device_find_by_driver_unit_acquire` finds the
/// cfdriver by name and then reads its `cd_devs`; a concurrent
/// `config_cfdriver_detach` (module unload) may remove the driver and the
/// module free it in between.  The lookup holds the kernel config lock,
/// which module unload holds, for each look; the host poisons a removed
/// cfdriver, so a use after its removal panics.
#[test]
fn find_by_name_vs_cfdriver_detach() {
    let m = Machine::new(4);
    let stop = Arc::new(AtomicBool::new(false));
    let finders: Vec<_> = (0..3)
        .map(|cpu| {
            let stop = Arc::clone(&stop);
            m.spawn_lwp(cpu, move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    // SAFETY: a C string; no such device: NULL.
                    let d = unsafe { device_find_by_driver_unit_acquire(c"tunload".as_ptr(), 0) };
                    assert!(d.is_null());
                    n += 1;
                    host::preempt_point();
                }
                n
            })
        })
        .collect();
    let m2 = Arc::clone(&m);
    within(LIMIT, &m, move || {
        m2.lwp(3, || {
            for _ in 0..2000 {
                let cd = cfdriver_attach("tunload");
                host::preempt_point();
                assert_eq!(config_cfdriver_detach(cd), 0);
            }
        })
    });
    stop.store(true, Ordering::SeqCst);
    let looks: u64 = finders.into_iter().map(|h| h.join().unwrap()).sum();
    eprintln!("find_by_driver_unit_acquire vs cfdriver detach: {looks} lookups, 2000 unloads");
}
