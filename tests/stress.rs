//! Stress on the host kernel: many LWPs x objects x migrations x concurrent
//! drains x interrupt-context releases.  After every drain and at the end
//! the counts are exact (no lost or extra reference), drains return only
//! when the last reference is gone, and nothing hangs (every phase runs
//! under a deadline and fails with the machine state if it expires).
//!
//! Size: `LC_STRESS_SCALE` (default 1) multiplies the iteration counts.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{within, Obj};
use rust_localcount::backend::host::{self, HostMutex, Machine};
use rust_localcount::ffi::exports::*;

struct Slot {
    lock: HostMutex,
    obj: Mutex<Option<Arc<Tracked>>>,
}

/// An object plus shadow counts of its references: `outstanding` drops
/// when a release is called, `unfinished` when it has returned.
struct Tracked {
    o: Arc<Obj>,
    outstanding: AtomicI64,
    unfinished: AtomicI64,
}

impl Tracked {
    fn new() -> Arc<Tracked> {
        let t = Arc::new(Tracked {
            o: Obj::new(),
            outstanding: AtomicI64::new(0),
            unfinished: AtomicI64::new(0),
        });
        // SAFETY: fresh zeroed localcount.
        unsafe { localcount_init(t.o.lcp()) };
        t
    }
    fn acquire(&self) {
        // SAFETY: initialized, not draining (callers' protocol).
        unsafe { localcount_acquire(self.o.lcp()) };
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        self.unfinished.fetch_add(1, Ordering::SeqCst);
    }
    fn release(&self) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: we hold a reference.
        unsafe {
            localcount_release(
                self.o.lcp(),
                self.o.cv.as_kcondvar(),
                self.o.mtx.as_kmutex(),
            )
        };
        self.unfinished.fetch_sub(1, Ordering::SeqCst);
    }
    fn drain_fini(&self) {
        self.o.mtx.enter();
        // SAFETY: unpublished, interlock held.
        unsafe {
            localcount_drain(
                self.o.lcp(),
                self.o.cv.as_kcondvar(),
                self.o.mtx.as_kmutex(),
            )
        };
        let left = self.outstanding.load(Ordering::SeqCst);
        self.o.mtx.exit();
        assert_eq!(
            left, 0,
            "localcount_drain returned with {left} references held"
        );
        // SAFETY: drained.
        unsafe { localcount_fini(self.o.lcp()) };
        // Finalized at once: a release that had been called but had not
        // finished with the object when the drain returned now panics (the
        // host poisons freed per-CPU storage; fini poisons lc_totalp).
        // Every release must also return, promptly.
        let t0 = Instant::now();
        while self.unfinished.load(Ordering::SeqCst) != 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "a release had not returned 10 s after the drain"
            );
            host::sleep_for(std::thread::yield_now);
        }
    }
}

fn scale() -> u64 {
    std::env::var("LC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

struct Totals {
    ops: AtomicU64,
    drains: AtomicU64,
    irq_releases: AtomicU64,
}

fn run(ncpu: usize, lwps: usize, slots: usize, iters: u64) {
    let m = Machine::new(ncpu);
    m.set_migrate_pct(50);
    let t0 = Instant::now();
    let limit = Duration::from_secs(120);

    let table: Arc<Vec<Slot>> = Arc::new(
        (0..slots)
            .map(|_| Slot {
                lock: HostMutex::new(),
                obj: Mutex::new(None),
            })
            .collect(),
    );
    // Permanent objects: hammered by threads and interrupts, drained at end.
    let perm: Arc<Vec<Arc<Tracked>>> =
        Arc::new(m.lwp(0, || (0..4).map(|_| Tracked::new()).collect()));
    m.lwp(0, || {
        for s in table.iter() {
            *s.obj.lock().unwrap() = Some(Tracked::new());
        }
    });
    // References handed to "interrupt handlers" for release, per CPU.
    let irq_q: Arc<Vec<Mutex<Vec<Arc<Tracked>>>>> =
        Arc::new((0..ncpu).map(|_| Mutex::new(Vec::new())).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals {
        ops: AtomicU64::new(0),
        drains: AtomicU64::new(0),
        irq_releases: AtomicU64::new(0),
    });

    let mut hs = Vec::new();
    // Users: look up + acquire under the slot lock, hold across sleeps and
    // migrations, release here or from an interrupt on some CPU.
    for i in 0..lwps {
        let (table, perm, irq_q, totals) =
            (table.clone(), perm.clone(), irq_q.clone(), totals.clone());
        hs.push(m.spawn_lwp(i, move || {
            let mut seed = 0x1234_5678_9abc_def1u64 ^ ((i as u64 + 1) * 0x9E37_79B9);
            let mut held: Vec<Arc<Tracked>> = Vec::new();
            for _ in 0..iters {
                let r = rng(&mut seed);
                let s = &table[(r % table.len() as u64) as usize];
                s.lock.enter();
                let t = s.obj.lock().unwrap().clone();
                if let Some(t) = &t {
                    t.acquire();
                }
                s.lock.exit();
                if let Some(t) = t {
                    held.push(t);
                }
                let p = &perm[(r >> 8) as usize % perm.len()];
                p.acquire();
                host::preempt_point();
                p.release();
                if r.is_multiple_of(7) {
                    std::thread::yield_now();
                    host::preempt_point();
                }
                while held.len() > (r >> 16) as usize % 4 {
                    let t = held.swap_remove(0);
                    if r.is_multiple_of(3) {
                        let cpu = (r >> 20) as usize % irq_q.len();
                        irq_q[cpu].lock().unwrap().push(t);
                    } else {
                        t.release();
                    }
                }
                totals.ops.fetch_add(1, Ordering::Relaxed);
            }
            for t in held {
                t.release();
            }
        }));
    }
    // Drainers: unpublish, drain, check, fini, publish a new object.
    for i in 0..2 {
        let (table, stop, totals) = (table.clone(), stop.clone(), totals.clone());
        hs.push(m.spawn_lwp(i + 1, move || {
            let mut seed = 0xdead_beef_u64 + i as u64;
            while !stop.load(Ordering::Relaxed) {
                let s = &table[(rng(&mut seed) % table.len() as u64) as usize];
                s.lock.enter();
                let t = s.obj.lock().unwrap().take();
                s.lock.exit();
                if let Some(t) = t {
                    t.drain_fini();
                    totals.drains.fetch_add(1, Ordering::Relaxed);
                }
                let n = Tracked::new();
                s.lock.enter();
                *s.obj.lock().unwrap() = Some(n);
                s.lock.exit();
                std::thread::sleep(Duration::from_micros(200));
            }
        }));
    }
    // Interrupts: release queued references and hammer the permanent
    // objects from "interrupt context" on every CPU.
    let irq = {
        let (m, perm, irq_q, stop, totals) = (
            m.clone(),
            perm.clone(),
            irq_q.clone(),
            stop.clone(),
            totals.clone(),
        );
        std::thread::spawn(move || {
            let mut cpu = 0;
            while !stop.load(Ordering::Relaxed) {
                cpu = (cpu + 1) % m.ncpu();
                let q: Vec<_> = std::mem::take(&mut *irq_q[cpu].lock().unwrap());
                m.interrupt(cpu, || {
                    for t in &q {
                        t.release();
                        totals.irq_releases.fetch_add(1, Ordering::Relaxed);
                    }
                    for p in perm.iter() {
                        p.acquire();
                        p.release();
                    }
                });
                std::thread::yield_now();
            }
        })
    };

    let users: Vec<_> = hs.drain(..lwps).collect();
    let m2 = m.clone();
    within(limit, &m, move || {
        for h in users {
            h.join().unwrap();
        }
        drop(m2);
    });
    stop.store(true, Ordering::SeqCst);
    irq.join().unwrap();
    // References still queued for interrupts: release them in interrupt
    // context (a drainer may be waiting for them).
    for (cpu, q) in irq_q.iter().enumerate() {
        let q: Vec<_> = std::mem::take(&mut *q.lock().unwrap());
        m.interrupt(cpu, || q.iter().for_each(|t| t.release()));
    }
    let m2 = m.clone();
    within(limit, &m, move || {
        for h in hs {
            h.join().unwrap();
        }
        drop(m2);
    });
    // Final drains: every object must come out exactly at zero.
    let (m2, table2, perm2) = (m.clone(), table.clone(), perm.clone());
    within(limit, &m, move || {
        m2.lwp(0, || {
            for s in table2.iter() {
                if let Some(t) = s.obj.lock().unwrap().take() {
                    t.drain_fini();
                }
            }
            for p in perm2.iter() {
                p.drain_fini();
            }
        })
    });
    let st = m.stats();
    eprintln!(
        "stress ncpu={ncpu} lwps={lwps} slots={slots}: {} ops, {} drains, {} irq releases, \
         {} interrupts, {} migrations, {} xcalls, {} sleeps, {} preemption requests \
         ({} honoured at kpreempt_enable) in {:?}",
        totals.ops.load(Ordering::Relaxed),
        totals.drains.load(Ordering::Relaxed),
        totals.irq_releases.load(Ordering::Relaxed),
        st.interrupts.load(Ordering::Relaxed),
        st.migrations.load(Ordering::Relaxed),
        st.xcalls.load(Ordering::Relaxed),
        st.sleeps.load(Ordering::Relaxed),
        st.preempt_requests.load(Ordering::Relaxed),
        st.preempts_honoured.load(Ordering::Relaxed),
        t0.elapsed()
    );
    assert!(
        st.preempts_honoured.load(Ordering::Relaxed) <= st.preempt_requests.load(Ordering::Relaxed),
        "more preemptions honoured than requested"
    );
    assert!(
        totals.drains.load(Ordering::Relaxed) > 0,
        "no concurrent drain happened"
    );
}

#[test]
fn stress_2cpu() {
    run(2, 6, 4, 3_000 * scale());
}

#[test]
fn stress_4cpu() {
    run(4, 10, 8, 3_000 * scale());
}

#[test]
fn stress_8cpu() {
    run(8, 16, 16, 1_500 * scale());
}

/// The xcall function of [`preemption_request_honoured_at_enable`]: count.
unsafe extern "C" fn count_xc(a: *mut core::ffi::c_void, _: *mut core::ffi::c_void) {
    // SAFETY: `a` is the test's AtomicU64, alive until the broadcast returns.
    unsafe { &*(a as *const AtomicU64) }.fetch_add(1, Ordering::SeqCst);
}

/// The fast path's preemption model: while an LWP has preemption disabled
/// (nested, as the release path's section around percpu access), a
/// low-priority xcall for its CPU is a preemption *request*
/// (`l_dopreempt`); nothing runs on that CPU until the `kpreempt_enable`
/// that brings the count to zero, which honours the request there and
/// then (`kpreempt(0)`), and the LWP does not move before it.
#[test]
fn preemption_request_honoured_at_enable() {
    use rust_localcount::backend::host::Host;
    use rust_localcount::kernel::Kernel;
    let m = Machine::new(2);
    m.set_migrate_pct(100);
    let m2 = Arc::clone(&m);
    within(Duration::from_secs(60), &m, move || {
        let m = m2;
        let ran = Arc::new(AtomicU64::new(0));
        m.lwp(0, || {
            Host::kpreempt_disable();
            Host::kpreempt_disable();
            let r2 = Arc::clone(&ran);
            let xc = m.spawn_lwp(1, move || {
                // SAFETY: count_xc gets the AtomicU64 that `r2` keeps
                // alive until the broadcast has returned.
                unsafe {
                    Host::xc_broadcast_wait(
                        count_xc,
                        Arc::as_ptr(&r2) as *mut core::ffi::c_void,
                        core::ptr::null_mut(),
                    )
                }
            });
            // CPU 1 runs its call; CPU 0's is requested and waits.
            while m.stats().preempt_requests.load(Ordering::SeqCst) == 0
                || ran.load(Ordering::SeqCst) < 1
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(
                ran.load(Ordering::SeqCst),
                1,
                "xcall ran under kpreempt_disable"
            );
            assert_eq!(host::curcpu(), 0, "LWP moved with preemption disabled");
            Host::kpreempt_enable();
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(
                ran.load(Ordering::SeqCst),
                1,
                "xcall ran under kpreempt_disable"
            );
            assert_eq!(m.stats().preempts_honoured.load(Ordering::SeqCst), 0);
            Host::kpreempt_enable();
            assert_eq!(
                m.stats().preempts_honoured.load(Ordering::SeqCst),
                1,
                "the request was not honoured at kpreempt_enable"
            );
            xc.join().expect("xcall LWP");
            assert_eq!(ran.load(Ordering::SeqCst), 2);
        });
    });
}
