//! Host benchmark: acquire+release pairs on the host kernel against a
//! shared atomic counter, under thread contention.
//!
//! Run: `cargo bench --features host --bench fastpath`
//!
//! The host kernel models preemption and IPL with mutex-backed per-CPU
//! tokens, so its absolute cost is the simulation's, not a kernel's: use
//! these numbers to catch regressions in the algorithm and the simulation
//! (ratios between runs of the same machine), and the in-kernel suite
//! (`bench:*` cases, test-kernel/bench-report.py) for kernel performance.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use rust_localcount::backend::host::{Host, HostCondvar, HostMutex, Machine};
use rust_localcount::kernel::Interlock;
use rust_localcount::localcount as lc;
use rust_localcount::LocalCount;

const PAIRS: u64 = 200_000;

struct Obj {
    lc: LocalCount,
    mtx: HostMutex,
    cv: HostCondvar,
}

fn pairs_localcount(threads: usize, shared: bool) -> f64 {
    let m = Machine::new(threads);
    m.set_migrate_pct(0);
    let objs: Arc<Vec<Obj>> = Arc::new(
        (0..threads)
            .map(|_| Obj {
                lc: LocalCount::zeroed(),
                mtx: HostMutex::new(),
                cv: HostCondvar::new(),
            })
            .collect(),
    );
    m.lwp(0, || objs.iter().for_each(|o| lc::init::<Host>(&o.lc)));
    let start = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|i| {
            let (objs, start) = (objs.clone(), start.clone());
            m.spawn_lwp(i, move || {
                let o = &objs[if shared { 0 } else { i }];
                // SAFETY: host objects that outlive the machine's LWPs.
                let il = unsafe { Interlock::<Host>::new(o.cv.as_nonnull(), o.mtx.as_nonnull()) };
                start.wait();
                let t0 = Instant::now();
                for _ in 0..PAIRS {
                    lc::acquire::<Host>(black_box(&o.lc));
                    lc::release::<Host>(black_box(&o.lc), il);
                }
                t0.elapsed().as_nanos()
            })
        })
        .collect();
    start.wait();
    let ns = slowest(hs.into_iter().map(|h| h.join().unwrap()));
    m.lwp(0, || {
        for o in objs.iter() {
            // SAFETY: host objects.
            let il = unsafe { Interlock::<Host>::new(o.cv.as_nonnull(), o.mtx.as_nonnull()) };
            o.mtx.enter();
            lc::drain::<Host>(&o.lc, il);
            o.mtx.exit();
            lc::fini::<Host>(&o.lc);
        }
    });
    ns
}

fn pairs_atomic(threads: usize, shared: bool) -> f64 {
    let ctrs: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
    let start = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|i| {
            let (ctrs, start) = (ctrs.clone(), start.clone());
            std::thread::spawn(move || {
                let c = &ctrs[if shared { 0 } else { i }];
                start.wait();
                let t0 = Instant::now();
                for _ in 0..PAIRS {
                    black_box(c).fetch_add(1, Ordering::AcqRel);
                    black_box(c).fetch_sub(1, Ordering::AcqRel);
                }
                t0.elapsed().as_nanos()
            })
        })
        .collect();
    start.wait();
    slowest(hs.into_iter().map(|h| h.join().unwrap()))
}

/// ns per pair of the slowest thread.
fn slowest(per_thread_ns: impl Iterator<Item = u128>) -> f64 {
    per_thread_ns.max().unwrap_or(0) as f64 / PAIRS as f64
}

fn main() {
    println!("host kernel: ns per acquire+release pair (slowest thread)");
    println!(
        "{:<8} {:>7} {:>14} {:>12} {:>10}",
        "object", "threads", "localcount", "atomic", "lc/atomic"
    );
    for shared in [false, true] {
        for threads in [1, 2, 4] {
            let l = pairs_localcount(threads, shared);
            let a = pairs_atomic(threads, shared);
            println!(
                "{:<8} {:>7} {:>14.1} {:>12.1} {:>10.2}",
                if shared { "shared" } else { "private" },
                threads,
                l,
                a,
                l / a
            );
        }
    }
}
