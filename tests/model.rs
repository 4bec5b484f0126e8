//! Model checking of the localcount(9) protocol with shuttle.
//!
//! # What is modelled
//!
//! The protocol in `src/localcount.rs` runs, unchanged, on the host kernel
//! (`src/backend/host`), whose synchronization is swapped for shuttle's by
//! the `model-shuttle` feature (`src/backend/host/sync.rs`).  Shuttle then
//! owns the scheduling of every simulated thread: LWPs, the per-CPU xcall
//! threads of `xc_broadcast_wait` and "interrupt" threads.  Every operation
//! of the simulation on a shuttle `Mutex`/`Condvar` is a scheduling point,
//! and so is every load and store of a per-CPU counter (the host `Slot` is
//! a shuttle `AtomicI64`).  In particular shuttle chooses between:
//!
//! * a release's read of `lc_totalp` and its per-CPU update (the next
//!   scheduling point after the read is `percpu_getref` taking the CPU's
//!   preemption token);
//! * the two halves (load, store) of the per-CPU read-modify-write;
//! * the dispatch of the drain xcall on each CPU (it must take and drop the
//!   CPU's preemption token, so it cannot run while an LWP there has
//!   preemption disabled), its transfer of the counter under the interlock,
//!   and the drainer's publication of `lc_totalp` and its sleep;
//! * interrupt handlers ([`Machine::interrupt`]), which hold the CPU's IPL
//!   token and can land between the load and the store of a thread running
//!   on that CPU unless it is at `splhigh`.
//!
//! The machine has two CPUs and the scenarios are a handful of operations,
//! so that one execution is short and tens of thousands of executions run
//! in seconds.  The simulated scheduler's random migrations are switched off
//! (`set_migrate_pct(0)`: its generator is deterministic, so it would not
//! add any exploration); migrations are explicit ([`host::migrate_to`]).
//!
//! # Scenarios
//!
//! * **A, release vs drain**: LWP 1 on CPU 0 holds a reference and
//!   releases it (after a preemption point) while LWP 2 on CPU 1 drains.
//! * **B, interrupt reentrancy**: an LWP bound to CPU 0 does
//!   acquire/release pairs while an interrupt handler on CPU 0 does the same
//!   on the same object; then the LWP drains.
//! * **C, migrating reference**: a reference acquired on CPU 0 is released
//!   on CPU 1 (the LWP migrates) while another LWP drains.
//!
//! The acquires happen-before the drain starts (the drainer is spawned
//! after them), as localcount(9) requires.  Every scenario checks that the
//! drain returns (a drain that sleeps forever shows up as shuttle's
//! deadlock report), that it returns only after every release was called,
//! that `lc_totalp` is poisoned, and `fini` runs; the drain itself panics
//! if the total it gathered is negative.
//!
//! # The broken variants, and why they must fail
//!
//! * [`NoPreemptInRelease`] (scenarios A and C): release reads
//!   `lc_totalp == NULL` with preemption enabled.  Shuttle can stop the
//!   releaser right after that read (at `percpu_getref`'s scheduling point)
//!   and run the drainer: it publishes `lc_totalp`, its xcall is dispatched
//!   on the releaser's CPU (nothing holds the preemption token there) and
//!   moves that CPU's counter into the total, which stays positive.  The
//!   releaser then decrements the per-CPU counter that nobody will ever
//!   gather again instead of the drainer's total: the drainer sleeps
//!   forever (shuttle: "deadlock!").  In the correct protocol the releaser
//!   holds the CPU's preemption token from before the read until after the
//!   update, so the xcall on that CPU runs either before the read (then the
//!   read sees the published `lc_totalp`) or after the update.
//! * [`NoSplAroundUpdate`] (scenario B): the per-CPU read-modify-write is
//!   not at `splhigh`, so the interrupt handler's update can land between
//!   the thread's load and store and be overwritten: the per-CPU total ends
//!   at -1 or +1 instead of 0, and the drain panics ("negatively referenced
//!   localcount") or sleeps forever (deadlock).
//!
//! These tests wrap the shuttle run in `catch_unwind` and assert that it
//! failed, with one of the expected messages, and print after how many
//! executions the bug was found.
//!
//! Run with
//! `CARGO_TARGET_DIR=target/model cargo test --release --features model-shuttle --test model -- --nocapture`.
//! `LC_MODEL_SCALE` (default 1) multiplies the iteration counts;
//! `SHUTTLE_RANDOM_SEED` fixes shuttle's seed (replay).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rust_localcount::backend::host::{self, sync::thread, Host, HostCondvar, HostMutex, Machine};
use rust_localcount::kernel::Interlock;
use rust_localcount::localcount::{
    acquire_with, drain_with, fini, init, release_with, Correct, NoPreemptInRelease,
    NoSplAroundUpdate, Variant, POISON,
};
use rust_localcount::LocalCount;

/// CPUs of the model machine.
const NCPU: usize = 2;

/// A localcount with its (cv, interlock) pair, as a kernel object has.
struct Obj {
    lc: LocalCount,
    mtx: HostMutex,
    cv: HostCondvar,
}

impl Obj {
    fn new() -> Arc<Obj> {
        Arc::new(Obj {
            lc: LocalCount::zeroed(),
            mtx: HostMutex::new(),
            cv: HostCondvar::new(),
        })
    }

    /// The `(cv, interlock)` pair of this object.
    fn il(&self) -> Interlock<Host> {
        // SAFETY: both are initialized host objects that live as long as
        // `self`, and the returned value is only used while `self` lives.
        unsafe { Interlock::new(self.cv.as_nonnull(), self.mtx.as_nonnull()) }
    }
}

/// A machine without the simulation's own (deterministic) migrations.
fn machine() -> Arc<Machine> {
    let m = Machine::new(NCPU);
    m.set_migrate_pct(0);
    m
}

/// Spawn LWP 2 on CPU 1: take the interlock, drain, check that all
/// `expect` releases were called before the drain returned, fini.
fn spawn_drainer<V: Variant + 'static>(
    m: &Arc<Machine>,
    o: &Arc<Obj>,
    released: &Arc<AtomicUsize>,
    expect: usize,
) -> thread::JoinHandle<()> {
    let (o, released) = (Arc::clone(o), Arc::clone(released));
    m.spawn_lwp(1, move || {
        o.mtx.enter();
        drain_with::<Host, V>(&o.lc, o.il());
        assert!(o.mtx.owned(), "drain returns with the interlock held");
        assert_eq!(
            released.load(Ordering::SeqCst),
            expect,
            "drain returned with references outstanding"
        );
        assert_eq!(o.lc.totalp(), POISON, "a drained localcount is poisoned");
        o.mtx.exit();
        fini::<Host>(&o.lc);
    })
}

/// Release one reference, counting it first (the drain must not return
/// before this call has started).
fn release_counted<V: Variant>(o: &Obj, released: &AtomicUsize) {
    released.fetch_add(1, Ordering::SeqCst);
    release_with::<Host, V>(&o.lc, o.il());
}

/// Scenario A: release on the acquiring CPU vs a drain on the other one.
fn release_vs_drain<V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    let released = Arc::new(AtomicUsize::new(0));
    m.lwp(0, || {
        init::<Host>(&o.lc);
        acquire_with::<Host, V>(&o.lc);
        acquire_with::<Host, V>(&o.lc);
        // The acquires happen-before the drain: spawn the drainer now.
        let drainer = spawn_drainer::<V>(&m, &o, &released, 2);
        release_counted::<V>(&o, &released);
        host::preempt_point();
        release_counted::<V>(&o, &released);
        drainer.join().expect("drainer");
    });
}

/// Pairs per context in scenario B.
const PAIRS: usize = 1;

/// Scenario B: thread and interrupt handler on CPU 0 update the same
/// per-CPU counter; then drain.
fn interrupt_reentrancy<V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    m.bound_lwp(0, || {
        init::<Host>(&o.lc);
        let intr = {
            let (m, o) = (Arc::clone(&m), Arc::clone(&o));
            thread::spawn(move || {
                m.interrupt(0, || {
                    for _ in 0..PAIRS {
                        acquire_with::<Host, V>(&o.lc);
                        release_with::<Host, V>(&o.lc, o.il());
                    }
                })
            })
        };
        for _ in 0..PAIRS {
            acquire_with::<Host, V>(&o.lc);
            release_with::<Host, V>(&o.lc, o.il());
        }
        intr.join().expect("interrupt");
        o.mtx.enter();
        drain_with::<Host, V>(&o.lc, o.il());
        assert_eq!(o.lc.totalp(), POISON, "a drained localcount is poisoned");
        o.mtx.exit();
        fini::<Host>(&o.lc);
    });
}

/// Scenario C: a reference acquired on CPU 0 is released on CPU 1 while
/// the drain runs.
fn migrate_vs_drain<V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    let released = Arc::new(AtomicUsize::new(0));
    m.lwp(0, || {
        init::<Host>(&o.lc);
        host::migrate_to(0);
        acquire_with::<Host, V>(&o.lc);
        acquire_with::<Host, V>(&o.lc);
        let drainer = spawn_drainer::<V>(&m, &o, &released, 2);
        host::migrate_to(1);
        release_counted::<V>(&o, &released);
        host::migrate_to(0);
        release_counted::<V>(&o, &released);
        drainer.join().expect("drainer");
    });
}

/// How many iterations: `base * LC_MODEL_SCALE`.
fn iters(base: usize) -> usize {
    let scale = std::env::var("LC_MODEL_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1usize);
    base * scale.max(1)
}

/// A shuttle scheduler.
#[derive(Clone, Copy, Debug)]
enum Sched {
    /// `shuttle::check_random(f, iterations)`.
    Random(usize),
    /// `shuttle::check_pct(f, iterations, depth)`.
    Pct(usize, usize),
}

/// What one shuttle run did.
struct Outcome {
    /// Executions started (the failing one included).
    executions: usize,
    /// The panic message, if shuttle reported a failure.
    failure: Option<String>,
}

/// Run `f` under `sched`, counting executions; report a failure instead of
/// propagating it.
fn explore(name: &str, sched: Sched, f: fn()) -> Outcome {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    let body = move || {
        n2.fetch_add(1, Ordering::Relaxed);
        f()
    };
    let t0 = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| match sched {
        Sched::Random(i) => shuttle::check_random(body, i),
        Sched::Pct(i, d) => shuttle::check_pct(body, i, d),
    }));
    let out = Outcome {
        executions: n.load(Ordering::Relaxed),
        failure: r.err().map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string panic>".into())
        }),
    };
    println!(
        "model {name} {sched:?}: {} executions in {:.2?}: {}",
        out.executions,
        t0.elapsed(),
        match &out.failure {
            None => "no failure".to_string(),
            Some(msg) => format!(
                "FAILED: {}",
                msg.lines()
                    .find(|l| l.contains("panic") || l.contains("deadlock"))
                    .unwrap_or("?")
            ),
        }
    );
    out
}

/// `f` must pass every execution of `sched`.
fn must_pass(name: &str, sched: Sched, f: fn()) {
    let out = explore(name, sched, f);
    if let Some(msg) = out.failure {
        panic!(
            "{name}: the correct protocol failed after {} executions:\n{msg}",
            out.executions
        );
    }
}

/// `f` must fail under `sched` with a message containing one of `expect`.
fn must_fail(name: &str, sched: Sched, f: fn(), expect: &[&str]) {
    let out = explore(name, sched, f);
    let Some(msg) = out.failure else {
        panic!(
            "{name}: the broken variant was NOT found in {} executions",
            out.executions
        );
    };
    assert!(
        expect.iter().any(|e| msg.contains(e)),
        "{name}: failed after {} executions, but not as expected ({expect:?}):\n{msg}",
        out.executions
    );
    println!(
        "model {name} {sched:?}: broken variant found after {} executions",
        out.executions
    );
}

// Iteration budgets (whole file well under a minute in release mode).
const RANDOM_ITERS: usize = 20_000;
const PCT_ITERS: usize = 20_000;
const PCT_DEPTH: usize = 3;
/// Upper bound for finding a broken variant.
const FIND_ITERS: usize = 1_000_000;

/// What a lost reference or a lost per-CPU update looks like.
const LOST: &[&str] = &[
    "deadlock",
    "negatively referenced localcount",
    "references outstanding",
];

#[test]
fn a_release_vs_drain_random() {
    must_pass(
        "A correct",
        Sched::Random(iters(RANDOM_ITERS)),
        release_vs_drain::<Correct>,
    );
}

#[test]
fn a_release_vs_drain_pct() {
    must_pass(
        "A correct",
        Sched::Pct(iters(PCT_ITERS), PCT_DEPTH),
        release_vs_drain::<Correct>,
    );
}

#[test]
fn b_interrupt_reentrancy_random() {
    must_pass(
        "B correct",
        Sched::Random(iters(RANDOM_ITERS)),
        interrupt_reentrancy::<Correct>,
    );
}

#[test]
fn b_interrupt_reentrancy_pct() {
    must_pass(
        "B correct",
        Sched::Pct(iters(PCT_ITERS), PCT_DEPTH),
        interrupt_reentrancy::<Correct>,
    );
}

#[test]
fn c_migrate_vs_drain_random() {
    must_pass(
        "C correct",
        Sched::Random(iters(RANDOM_ITERS)),
        migrate_vs_drain::<Correct>,
    );
}

#[test]
fn c_migrate_vs_drain_pct() {
    must_pass(
        "C correct",
        Sched::Pct(iters(PCT_ITERS), PCT_DEPTH),
        migrate_vs_drain::<Correct>,
    );
}

#[test]
fn broken_no_preempt_in_release_a_pct() {
    must_fail(
        "A NoPreemptInRelease",
        Sched::Pct(FIND_ITERS, PCT_DEPTH),
        release_vs_drain::<NoPreemptInRelease>,
        LOST,
    );
}

#[test]
fn broken_no_preempt_in_release_a_random() {
    must_fail(
        "A NoPreemptInRelease",
        Sched::Random(FIND_ITERS),
        release_vs_drain::<NoPreemptInRelease>,
        LOST,
    );
}

#[test]
fn broken_no_preempt_in_release_c_pct() {
    must_fail(
        "C NoPreemptInRelease",
        Sched::Pct(FIND_ITERS, PCT_DEPTH),
        migrate_vs_drain::<NoPreemptInRelease>,
        LOST,
    );
}

#[test]
fn broken_no_preempt_in_release_c_random() {
    must_fail(
        "C NoPreemptInRelease",
        Sched::Random(FIND_ITERS),
        migrate_vs_drain::<NoPreemptInRelease>,
        LOST,
    );
}

#[test]
fn broken_no_spl_around_update_b_pct() {
    must_fail(
        "B NoSplAroundUpdate",
        Sched::Pct(FIND_ITERS, PCT_DEPTH),
        interrupt_reentrancy::<NoSplAroundUpdate>,
        LOST,
    );
}

#[test]
fn broken_no_spl_around_update_b_random() {
    must_fail(
        "B NoSplAroundUpdate",
        Sched::Random(FIND_ITERS),
        interrupt_reentrancy::<NoSplAroundUpdate>,
        LOST,
    );
}
