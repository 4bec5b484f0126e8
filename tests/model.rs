//! Model checking of the localcount(9) protocol with shuttle.
//!
//! # What is modelled
//!
//! The protocol in `src/localcount.rs` runs, unchanged, on the host kernel
//! (`src/backend/host`), whose synchronization is swapped for shuttle's by
//! the `model-shuttle` feature (`src/backend/host/sync.rs`).  Shuttle then
//! owns the scheduling of every simulated thread: LWPs, the per-CPU xcall
//! threads of `xc_broadcast_wait` and "interrupt" threads.  Every operation
//! of the simulation on a shuttle `Mutex`/`Condvar` (the CPUs' preemption
//! and IPL tokens, `HostMutex`, `HostCondvar`, the xcall serialization),
//! every thread spawn/join/yield, and every access to a per-CPU counter (the
//! host `Slot` is a shuttle `AtomicI64`: `load`, `store` and the one-step
//! `add`) is a scheduling point.  In particular shuttle chooses between:
//!
//! * a release's read of `lc_totalp` and its per-CPU update (in the correct
//!   protocol both happen while the releaser holds its CPU's preemption
//!   token);
//! * the two halves (load, store) of a per-CPU read-modify-write, where the
//!   protocol does one (the `splhigh` path and the broken variants);
//! * the dispatch of the drain xcall on each CPU (it must take and drop the
//!   CPU's preemption token, so it cannot run while an LWP there has
//!   preemption disabled), its transfer of the counter under the interlock
//!   and at `splhigh`, and the drainer's publication of `lc_totalp` and its
//!   sleep;
//! * interrupt handlers ([`Machine::interrupt`]), which hold the CPU's IPL
//!   token for their whole run: a thread (or the xcall) on that CPU at
//!   `splhigh` waits for the handler, anything else on that CPU -- e.g.
//!   between the load and the store of a per-CPU counter -- does not.
//!
//! # Kernels
//!
//! * [`Host`]: the crate's host kernel.  Its per-CPU slot has an
//!   interrupt-atomic `add` (`PerCpuSlot::ADD_IS_INTERRUPT_ATOMIC`, a
//!   single shuttle step, like the x86-64 `inc`/`dec` of the kernel build),
//!   so the correct protocol updates the counter without `splhigh`.  Its
//!   `Kernel::preempt_point` -- called only by the broken
//!   `NoPreemptInRelease`, between its read of `lc_totalp` and its update
//!   -- is a preemption point (a shuttle yield, plus the host's own
//!   migration, which is off here).
//! * [`SplHost`] (defined here, delegating to [`Host`]): the slot's `add` is
//!   not interrupt-atomic, so the correct protocol takes the NetBSD C path
//!   (`splhigh`, load, store, `splx`), as on non-x86-64 kernels.
//! * [`MigratingHost`] (defined here, delegating to [`Host`]): at the
//!   broken release's `preempt_point` shuttle also chooses whether the LWP
//!   migrates to the other CPU, so the late decrement can land on either
//!   CPU's counter.
//!
//! The machine has two CPUs and the scenarios are a handful of operations,
//! so that one execution takes well under a millisecond and tens of
//! thousands of executions per scheduler run in a few seconds.  The
//! simulated scheduler's own migrations are switched off
//! (`set_migrate_pct(0)`: its generator is seeded from the LWP id, so under
//! shuttle it would make the same choice in every execution and add no
//! exploration); migrations are explicit ([`host::migrate_to`]).
//!
//! Limits of the model: shuttle runs one thread at a time and treats every
//! atomic as `SeqCst` (hence its warning about `Relaxed`), so weak-memory
//! reorderings are not explored; the accesses to `lc_totalp` and
//! `lc_percpu` (core atomics) are not scheduling points of their own, but
//! they sit between scheduling points, so every order of them relative to
//! the other threads' steps is reachable.  An "interrupt" runs beside the
//! interrupted thread rather than suspending it, which allows more
//! interleavings than a real CPU (an over-approximation: it can only add
//! failures, and the correct protocol has none).
//!
//! # Scenarios
//!
//! * **A, release vs drain**: LWP 1 on CPU 0 holds two references and
//!   releases them (with a preemption point in between) while LWP 2 on
//!   CPU 1 drains.
//! * **B, interrupt reentrancy**: an LWP bound to CPU 0 does an
//!   acquire/release pair while an interrupt handler on CPU 0 does the same
//!   on the same object; then the LWP drains: the drain must return (the
//!   per-CPU total is exactly zero).
//! * **C, migrating references**: two references acquired on CPU 0 are
//!   released, the first on CPU 1 (the LWP migrates), the second back on
//!   CPU 0, while LWP 2 drains.
//! * **D, interrupt release vs drain**: of two references acquired on
//!   CPU 0, one is released by an interrupt handler on CPU 0 and one by the
//!   thread there, while LWP 2 drains (the handler's update races the
//!   thread's update and the drain xcall's transfer on that CPU).
//!
//! The acquires happen-before the drain starts (the drainer is spawned
//! after them), as localcount(9) requires.  Every scenario checks that the
//! drain returns (a drain that sleeps forever shows up as shuttle's
//! deadlock report), that it returns only after every release was called,
//! that it returns with the interlock held and `lc_totalp` poisoned, and
//! `fini` runs; the drain itself panics if the total it gathered is
//! negative.  The correct protocol runs every scenario on [`Host`], and the
//! interrupt scenarios B and D also on [`SplHost`], each under
//! `shuttle::check_random` and `shuttle::check_pct`.
//!
//! # The broken variants, and why they must fail
//!
//! * [`NoPreemptInRelease`] (scenarios A and C on [`Host`], A on
//!   [`MigratingHost`]): release reads `lc_totalp == NULL` with preemption
//!   enabled.  Shuttle can stop the releaser right after that read (at the
//!   `preempt_point` hook) and run the drainer: it publishes `lc_totalp`,
//!   its xcall is dispatched on the releaser's CPU (nothing holds the
//!   preemption token there) and moves that CPU's counter into the total,
//!   which stays positive.  The releaser then decrements a per-CPU counter
//!   that nobody will ever gather again, instead of the drainer's total:
//!   the drainer sleeps forever (shuttle: "deadlock!").  In the correct
//!   protocol the releaser holds the CPU's preemption token from before the
//!   read until after the update, so the xcall is dispatched on that CPU
//!   either before (then the drainer had published `lc_totalp` before
//!   broadcasting, the read sees it and the release takes the slow path) or
//!   after the update (then the xcall gathers it).
//!
//!   The hook is what makes this bug observable in the model.  Without it
//!   (a kernel whose `preempt_point` is the trait's no-op default) shuttle
//!   finds nothing (measured: 0 failures in 500 000 random and 20 000 PCT
//!   executions of A and of C): the only scheduling point between the read
//!   and the update is inside `percpu_getref`'s `kpreempt_disable`, and a
//!   shuttle `Mutex::lock` that is free takes the lock *first* and yields
//!   only afterwards, so by the time other threads run, the releaser already
//!   owns the inner lock of its CPU's preemption token and the xcall cannot
//!   be dispatched there.  On a real CPU preemption can strike between any
//!   two instructions of that window; the hook models exactly that point.
//! * [`NoSplAroundUpdate`] (scenarios B and D): the per-CPU
//!   read-modify-write is a plain load and store with neither `splhigh` nor
//!   an interrupt-atomic add (and the xcall's transfer is not at `splhigh`
//!   either), so an interrupt handler's update on the same CPU can land
//!   between a thread's (B, D) or the drain xcall's (D) load and store and
//!   be overwritten (or overwrite it): the counts end at -1 or +1 instead
//!   of 0, and the drain panics ("negatively referenced localcount") or
//!   sleeps forever (deadlock).
//!
//! These tests wrap the shuttle run in `catch_unwind`, assert that it
//! failed with one of the expected messages, and print after how many
//! executions the bug was found.
//!
//! Run with
//! `CARGO_TARGET_DIR=target/model cargo test --release --features model-shuttle --test model -- --nocapture`.
//! `LC_MODEL_SCALE` (default 1) multiplies the iteration counts of the
//! correct runs; `SHUTTLE_RANDOM_SEED` fixes shuttle's seed (replay).

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use shuttle::rand::Rng;

use rust_localcount::backend::host::{
    self, sync, sync::thread, Host, HostCondvar, HostMutex, Machine,
};
use rust_localcount::kernel::{Interlock, Kernel, PanicMsg, PerCpuSlot, PreemptDisabled, Spl};
use rust_localcount::localcount::{
    acquire_with, drain_with, fini, init, release_with, Correct, NoPreemptInRelease,
    NoSplAroundUpdate, Variant, POISON,
};
use rust_localcount::sys::types::{kcondvar, kmutex, percpu, XcFunc};
use rust_localcount::LocalCount;

/// CPUs of the model machine.
const NCPU: usize = 2;

/// One CPU's counter as seen by [`Model`]: the host's shuttle `AtomicI64`,
/// with `add` interrupt-atomic (one step) only if `ATOMIC_ADD`.
#[repr(transparent)]
pub struct ModelSlot<const ATOMIC_ADD: bool>(sync::AtomicI64);

impl<const ATOMIC_ADD: bool> PerCpuSlot for ModelSlot<ATOMIC_ADD> {
    const ADD_IS_INTERRUPT_ATOMIC: bool = ATOMIC_ADD;
    fn load(&self) -> i64 {
        PerCpuSlot::load(&self.0)
    }
    fn store(&self, v: i64) {
        PerCpuSlot::store(&self.0, v)
    }
    fn add(&self, delta: i64) {
        if ATOMIC_ADD {
            PerCpuSlot::add(&self.0, delta)
        } else {
            // What a load/store architecture does: two steps.
            self.store(self.load().wrapping_add(delta))
        }
    }
}

/// The host kernel with a different per-CPU slot (`ATOMIC_ADD`) and, if
/// `MIGRATE`, a `preempt_point` hook that lets shuttle choose to migrate
/// the LWP to the other CPU before the host's preemption point; every
/// primitive is [`Host`]'s.
pub struct Model<const ATOMIC_ADD: bool, const MIGRATE: bool>;

/// Correct protocol on the `splhigh`/load/store path (NetBSD's C code).
pub type SplHost = Model<false, false>;
/// The broken release may migrate inside its window.  Only for scenarios
/// whose releases all run in preemptible LWPs (`migrate_to` asserts it).
pub type MigratingHost = Model<true, true>;

// SAFETY: every primitive is the host kernel's, which provides the
// documented semantics; the slot is the host's slot (`repr(transparent)`),
// and `ADD_IS_INTERRUPT_ATOMIC` is true only for the host's one-step add.
unsafe impl<const ATOMIC_ADD: bool, const MIGRATE: bool> Kernel for Model<ATOMIC_ADD, MIGRATE> {
    type Slot = ModelSlot<ATOMIC_ADD>;

    fn percpu_alloc(size: usize) -> NonNull<percpu> {
        Host::percpu_alloc(size)
    }
    unsafe fn percpu_free(pc: NonNull<percpu>, size: usize) {
        // SAFETY: forwarded contract.
        unsafe { Host::percpu_free(pc, size) }
    }
    unsafe fn percpu_getref(pc: NonNull<percpu>) -> NonNull<Self::Slot> {
        // SAFETY: forwarded contract; ModelSlot is repr(transparent) over
        // the host's slot type.
        unsafe { Host::percpu_getref(pc) }.cast()
    }
    unsafe fn percpu_putref(pc: NonNull<percpu>) {
        // SAFETY: forwarded contract.
        unsafe { Host::percpu_putref(pc) }
    }
    unsafe fn percpu_slot(pc: NonNull<percpu>, _np: &PreemptDisabled<Self>) -> NonNull<Self::Slot> {
        // SAFETY: forwarded contract (`_np`: preemption is disabled);
        // ModelSlot is repr(transparent) over the host's slot type.
        unsafe { host::percpu_slot_disabled(pc) }.cast()
    }
    fn kpreempt_disable() {
        Host::kpreempt_disable()
    }
    fn kpreempt_enable() {
        Host::kpreempt_enable()
    }
    fn splhigh() -> Spl {
        Host::splhigh()
    }
    fn splx(s: Spl) {
        Host::splx(s)
    }
    unsafe fn xc_broadcast_wait(f: XcFunc, a: *mut c_void, b: *mut c_void) {
        // SAFETY: forwarded contract.
        unsafe { Host::xc_broadcast_wait(f, a, b) }
    }
    unsafe fn mutex_enter(m: NonNull<kmutex>) {
        // SAFETY: forwarded contract.
        unsafe { Host::mutex_enter(m) }
    }
    unsafe fn mutex_exit(m: NonNull<kmutex>) {
        // SAFETY: forwarded contract.
        unsafe { Host::mutex_exit(m) }
    }
    unsafe fn mutex_owned(m: NonNull<kmutex>) -> bool {
        // SAFETY: forwarded contract.
        unsafe { Host::mutex_owned(m) }
    }
    unsafe fn mutex_ownable(m: NonNull<kmutex>) -> bool {
        // SAFETY: forwarded contract.
        unsafe { Host::mutex_ownable(m) }
    }
    unsafe fn cv_wait(cv: NonNull<kcondvar>, m: NonNull<kmutex>) {
        // SAFETY: forwarded contract.
        unsafe { Host::cv_wait(cv, m) }
    }
    unsafe fn cv_broadcast(cv: NonNull<kcondvar>) {
        // SAFETY: forwarded contract.
        unsafe { Host::cv_broadcast(cv) }
    }
    unsafe fn cv_timedwait_ms(cv: NonNull<kcondvar>, m: NonNull<kmutex>, ms: u32) -> bool {
        // SAFETY: forwarded contract.
        unsafe { Host::cv_timedwait_ms(cv, m, ms) }
    }
    fn uptime_ms() -> u64 {
        Host::uptime_ms()
    }
    unsafe fn report_drain_wait(name: *const core::ffi::c_char, outstanding: i64, secs: u64) {
        // SAFETY: forwarded contract.
        unsafe { Host::report_drain_wait(name, outstanding, secs) }
    }
    fn panic(msg: PanicMsg<'_>) -> ! {
        Host::panic(msg)
    }
    fn preempt_point() {
        if MIGRATE && shuttle::rand::thread_rng().gen::<bool>() {
            host::migrate_to(host::curcpu() + 1);
        }
        Host::preempt_point()
    }
}

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
    fn il<K: Kernel>(&self) -> Interlock<K> {
        // SAFETY: both are initialized host objects (every K here forwards
        // to the host's mutex/condvar) that live as long as `self`, and the
        // returned value is only used while `self` lives.
        unsafe { Interlock::new(self.cv.as_nonnull(), self.mtx.as_nonnull()) }
    }
}

/// A machine without the simulation's own (deterministic) migrations.
fn machine() -> Arc<Machine> {
    let m = Machine::new(NCPU);
    m.set_migrate_pct(0);
    m
}

/// Releases of a scenario: `started` counts a release when its call
/// begins, `finished` when it has returned.
#[derive(Default)]
struct Releases {
    started: AtomicUsize,
    finished: AtomicUsize,
}

impl Releases {
    /// Every release has returned (after the scenario joined its LWPs).
    fn check_finished(&self, expect: usize) {
        assert_eq!(
            self.finished.load(Ordering::SeqCst),
            expect,
            "a release did not return"
        );
    }
}

/// Spawn LWP 2 on CPU 1: take the interlock, drain, fini at once.
///
/// A drain must not return while a release still has to touch the
/// localcount.  Counting a release before its call only shows a drain that
/// returned before the last release *started*; so, beyond that check, the
/// drainer finalizes the object the moment the drain returns (the host
/// poisons freed per-CPU storage and fini poisons `lc_totalp`): a release
/// that had started but not finished with the object then panics ("use
/// after free", "released after drain", "not initialized"), and every
/// release is counted again when it has returned ([`Releases::finished`],
/// checked after the joins).
fn spawn_drainer<K: Kernel + 'static, V: Variant + 'static>(
    m: &Arc<Machine>,
    o: &Arc<Obj>,
    released: &Arc<Releases>,
    expect: usize,
) -> thread::JoinHandle<()> {
    let (o, released) = (Arc::clone(o), Arc::clone(released));
    m.spawn_lwp(1, move || {
        o.mtx.enter();
        drain_with::<K, V>(&o.lc, o.il());
        assert!(o.mtx.owned(), "drain returns with the interlock held");
        assert_eq!(
            released.started.load(Ordering::SeqCst),
            expect,
            "drain returned with references outstanding"
        );
        assert_eq!(o.lc.totalp(), POISON, "a drained localcount is poisoned");
        o.mtx.exit();
        fini::<K>(&o.lc);
    })
}

std::thread_local! {
    /// Coverage: releases called while a drain had already published
    /// `lc_totalp` (they take, or race into, the slow path).  All shuttle
    /// threads of a test run on the test's OS thread.
    static LATE_RELEASES: Cell<usize> = const { Cell::new(0) };
}

/// Release one reference, counted when the call starts and when it has
/// returned (see [`spawn_drainer`]).
fn release_counted<K: Kernel, V: Variant>(o: &Obj, released: &Releases) {
    released.started.fetch_add(1, Ordering::SeqCst);
    if !o.lc.totalp().is_null() {
        LATE_RELEASES.with(|c| c.set(c.get() + 1));
    }
    release_with::<K, V>(&o.lc, o.il());
    released.finished.fetch_add(1, Ordering::SeqCst);
}

/// Scenario A: release on the acquiring CPU vs a drain on the other one.
fn release_vs_drain<K: Kernel + 'static, V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    let released = Arc::new(Releases::default());
    m.lwp(0, || {
        init::<K>(&o.lc);
        acquire_with::<K, V>(&o.lc);
        acquire_with::<K, V>(&o.lc);
        // The acquires happen-before the drain: spawn the drainer now.
        let drainer = spawn_drainer::<K, V>(&m, &o, &released, 2);
        release_counted::<K, V>(&o, &released);
        host::preempt_point();
        release_counted::<K, V>(&o, &released);
        drainer.join().expect("drainer");
        released.check_finished(2);
    });
}

/// Scenario B: thread and interrupt handler on CPU 0 update the same
/// per-CPU counter; then drain.
fn interrupt_reentrancy<K: Kernel + 'static, V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    m.bound_lwp(0, || {
        init::<K>(&o.lc);
        let intr = {
            let (m, o) = (Arc::clone(&m), Arc::clone(&o));
            thread::spawn(move || {
                m.interrupt(0, || {
                    acquire_with::<K, V>(&o.lc);
                    release_with::<K, V>(&o.lc, o.il());
                })
            })
        };
        acquire_with::<K, V>(&o.lc);
        release_with::<K, V>(&o.lc, o.il());
        intr.join().expect("interrupt");
        o.mtx.enter();
        drain_with::<K, V>(&o.lc, o.il());
        assert_eq!(o.lc.totalp(), POISON, "a drained localcount is poisoned");
        o.mtx.exit();
        fini::<K>(&o.lc);
    });
}

/// Scenario C: references acquired on CPU 0 are released on CPU 1 and on
/// CPU 0 while the drain runs.
fn migrate_vs_drain<K: Kernel + 'static, V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    let released = Arc::new(Releases::default());
    m.lwp(0, || {
        init::<K>(&o.lc);
        host::migrate_to(0);
        acquire_with::<K, V>(&o.lc);
        acquire_with::<K, V>(&o.lc);
        let drainer = spawn_drainer::<K, V>(&m, &o, &released, 2);
        host::migrate_to(1);
        release_counted::<K, V>(&o, &released);
        host::migrate_to(0);
        release_counted::<K, V>(&o, &released);
        drainer.join().expect("drainer");
        released.check_finished(2);
    });
}

/// Scenario D: a reference is released by an interrupt handler on CPU 0
/// and another one by the thread running there, while the drain runs on
/// CPU 1 (the handler's update races the thread's and the xcall's).
fn interrupt_release_vs_drain<K: Kernel + 'static, V: Variant + 'static>() {
    let m = machine();
    let o = Obj::new();
    let released = Arc::new(Releases::default());
    m.lwp(0, || {
        init::<K>(&o.lc);
        host::migrate_to(0);
        acquire_with::<K, V>(&o.lc);
        acquire_with::<K, V>(&o.lc);
        let drainer = spawn_drainer::<K, V>(&m, &o, &released, 2);
        let intr = {
            let (m, o, released) = (Arc::clone(&m), Arc::clone(&o), Arc::clone(&released));
            thread::spawn(move || m.interrupt(0, || release_counted::<K, V>(&o, &released)))
        };
        release_counted::<K, V>(&o, &released);
        intr.join().expect("interrupt");
        drainer.join().expect("drainer");
        released.check_finished(2);
    });
}

/// Scenario E (issue 8, dev/pud): one cdevsw attached at two majors with
/// the host kernel's devsw_attach/devsw_detach (the patch's protocol).  An
/// LWP on CPU 1 opens through the second major (per-major reference, as
/// cdev_open) and looks it up with the seed's API (the devsw's
/// d_localcount) while LWP 0 detaches the first major, then the second.
/// A reference holder must never see the major's state, or the devsw,
/// torn down under it.
fn devsw_two_majors_vs_lookups() {
    use rust_localcount::backend::host::devsw::{devsw_attach, devsw_detach};
    use rust_localcount::ffi::exports::{
        cdevsw_lookup_acquire, cdevsw_lookup_acquire_major, cdevsw_release, cdevsw_release_major,
    };
    use rust_localcount::sys::conf::cdevsw;
    use rust_localcount::sys::types::makedev;
    struct Sw {
        sw: cdevsw,
        /// Per-major driver state (pud's per-server state) and the devsw.
        major_alive: [AtomicBool; 2],
        devsw_alive: AtomicBool,
    }
    let t: &'static Sw = Box::leak(Box::new(Sw {
        sw: cdevsw {
            d_ops: [std::ptr::null(); 14],
            d_flag: 0,
            d_localcount: Box::leak(Box::new(LocalCount::zeroed())),
        },
        major_alive: [AtomicBool::new(true), AtomicBool::new(true)],
        devsw_alive: AtomicBool::new(true),
    }));
    let m = machine();
    m.lwp(0, || {
        let (mut bm, mut ca, mut cb) = (-1, -1, -1);
        devsw_attach(None, &mut bm, &t.sw, &mut ca).expect("first major");
        devsw_attach(None, &mut bm, &t.sw, &mut cb).expect("second major");
        assert!(ca < cb);
        let db = makedev(cb, 0);
        let user = m.spawn_lwp(1, move || {
            let mut lc = std::ptr::null_mut();
            // SAFETY: exported functions, called as cdev_open does.
            let d = unsafe { cdevsw_lookup_acquire_major(db, &mut lc) };
            if !d.is_null() {
                host::preempt_point();
                assert!(
                    t.major_alive[1].load(Ordering::SeqCst),
                    "major state torn down under a reference"
                );
                // SAFETY: the reference taken above.
                unsafe { cdevsw_release_major(d, lc) };
            }
            // SAFETY: exported functions.
            let d = unsafe { cdevsw_lookup_acquire(db) };
            if !d.is_null() {
                host::preempt_point();
                assert!(
                    t.devsw_alive.load(Ordering::SeqCst),
                    "devsw torn down under a reference"
                );
                // SAFETY: the reference taken above.
                unsafe { cdevsw_release(d) };
            }
        });
        devsw_detach(None, Some(&t.sw));
        t.major_alive[0].store(false, Ordering::SeqCst);
        devsw_detach(None, Some(&t.sw));
        t.major_alive[1].store(false, Ordering::SeqCst);
        t.devsw_alive.store(false, Ordering::SeqCst);
        user.join().expect("user");
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

/// The line of a shuttle failure report that says what went wrong.
fn headline(msg: &str) -> &str {
    msg.lines()
        .find(|l| l.contains("original panic:"))
        .or_else(|| msg.lines().find(|l| l.contains("deadlock")))
        .or_else(|| msg.lines().next())
        .unwrap_or("?")
}

/// Standard error sent to /dev/null while it lives: a broken variant's run
/// panics on purpose, and the default panic hook and shuttle would print
/// the panic, a backtrace and the failing schedule or seed, exactly like a
/// real failure.  `must_fail` prints one line instead, and the whole
/// message when the failure is not the expected one.  (Rust's stderr is
/// unbuffered, so nothing is lost across the switch; the model tests run
/// with `--test-threads=1`.)
struct StderrOff {
    saved: core::ffi::c_int,
}

impl StderrOff {
    fn new() -> Option<StderrOff> {
        // SAFETY: plain file-descriptor calls on descriptors this process
        // owns; every result is checked before it is used.
        unsafe {
            let saved = libc::dup(2);
            if saved < 0 {
                return None;
            }
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null < 0 || libc::dup2(null, 2) < 0 {
                libc::close(saved);
                if null >= 0 {
                    libc::close(null);
                }
                return None;
            }
            libc::close(null);
            Some(StderrOff { saved })
        }
    }
}

impl Drop for StderrOff {
    fn drop(&mut self) {
        // SAFETY: `saved` is the descriptor dup'ed in new(), still open.
        unsafe {
            libc::dup2(self.saved, 2);
            libc::close(self.saved);
        }
    }
}

/// Run `f` under `sched`, counting executions; report a failure instead of
/// propagating it.  With `quiet` nothing is printed while it runs (see
/// [`StderrOff`]): the caller prints the outcome.
fn explore(name: &str, sched: Sched, f: fn(), quiet: bool) -> Outcome {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    let body = move || {
        n2.fetch_add(1, Ordering::Relaxed);
        f()
    };
    LATE_RELEASES.with(|c| c.set(0));
    let mut config = shuttle::Config::new();
    config.silence_warnings = true;
    if quiet {
        config.failure_persistence = shuttle::FailurePersistence::None;
    }
    let off = if quiet { StderrOff::new() } else { None };
    let t0 = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| match sched {
        Sched::Random(i) => {
            shuttle::Runner::new(shuttle::scheduler::RandomScheduler::new(i), config).run(body);
        }
        Sched::Pct(i, d) => {
            shuttle::Runner::new(shuttle::scheduler::PctScheduler::new(d, i), config).run(body);
        }
    }));
    drop(off);
    let out = Outcome {
        executions: n.load(Ordering::Relaxed),
        failure: r.err().map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "<non-string panic>".into())
        }),
    };
    if !quiet {
        println!(
            "model {name} {sched:?}: {} executions in {:.2?} ({} releases during a drain): {}",
            out.executions,
            t0.elapsed(),
            LATE_RELEASES.with(Cell::get),
            match &out.failure {
                None => "no failure".to_string(),
                Some(msg) => format!("bug found: {}", headline(msg)),
            }
        );
    }
    out
}

/// `f` must pass every execution of `sched`.
fn must_pass(name: &str, sched: Sched, f: fn()) {
    let out = explore(name, sched, f, false);
    if let Some(msg) = out.failure {
        panic!(
            "{name}: the correct protocol failed after {} executions:\n{msg}",
            out.executions
        );
    }
}

/// `f` must fail under `sched` with a message containing one of `expect`.
fn must_fail(name: &str, sched: Sched, f: fn(), expect: &[&str]) {
    let out = explore(name, sched, f, true);
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
        "model {name} {sched:?}: bug found after {} executions, as expected ({})",
        out.executions,
        headline(&msg)
    );
}

// Iteration budgets.  Measured on a 2-CPU host shared with other builds
// (release): 60-250 us per execution depending on load; the whole file
// takes about 30 s of CPU (15-60 s wall).  The broken variants were found in
// every run (40 of 40 per test, 20 of 20 for A migrating; seeds from the
// OS), within: PCT A, C and A migrating 1 execution (shuttle's first PCT
// execution is oldest-task-first and, with the yield at the hook, hits the
// window; with that execution spent on the correct variant, PCT needed
// 2-9), B <= 146, D <= 195; random A <= 64 000 (mean ~10 000), C <= 93 000
// (mean ~15 000), A migrating <= 22 000 (mean ~8 000), B <= 7, D <= 15.
// Hence the generous bounds below: a search stops at its first failure, so
// they only cost time if the bug is missed.
const RANDOM_ITERS: usize = 30_000;
const PCT_ITERS: usize = 30_000;
const PCT_DEPTH: usize = 3;
/// Upper bound for finding a broken variant with PCT.
const FIND_PCT_ITERS: usize = 20_000;
/// Upper bound for finding a broken variant with the random scheduler.
const FIND_RANDOM_ITERS: usize = 500_000;

/// What a lost reference or a lost per-CPU update looks like.
const LOST: &[&str] = &[
    "deadlock",
    "negatively referenced localcount",
    "references outstanding",
];

/// A correct-protocol test pair: random and PCT.
macro_rules! correct {
    ($random:ident, $pct:ident, $name:literal, $f:expr) => {
        #[test]
        fn $random() {
            must_pass($name, Sched::Random(iters(RANDOM_ITERS)), $f);
        }
        #[test]
        fn $pct() {
            must_pass($name, Sched::Pct(iters(PCT_ITERS), PCT_DEPTH), $f);
        }
    };
}

/// A broken-variant test pair: PCT and random must both find the bug.
macro_rules! broken {
    ($pct:ident, $random:ident, $name:literal, $f:expr) => {
        #[test]
        fn $pct() {
            must_fail($name, Sched::Pct(FIND_PCT_ITERS, PCT_DEPTH), $f, LOST);
        }
        #[test]
        fn $random() {
            must_fail($name, Sched::Random(FIND_RANDOM_ITERS), $f, LOST);
        }
    };
}

/// Iterations of the (larger) devsw scenario.
const DEVSW_ITERS: usize = 20_000;

#[test]
fn e_devsw_two_majors_random() {
    must_pass(
        "E devsw two majors",
        Sched::Random(iters(DEVSW_ITERS)),
        devsw_two_majors_vs_lookups,
    );
}

#[test]
fn e_devsw_two_majors_pct() {
    must_pass(
        "E devsw two majors",
        Sched::Pct(iters(DEVSW_ITERS), PCT_DEPTH),
        devsw_two_majors_vs_lookups,
    );
}

correct!(
    a_release_vs_drain_random,
    a_release_vs_drain_pct,
    "A correct",
    release_vs_drain::<Host, Correct>
);
correct!(
    b_interrupt_reentrancy_random,
    b_interrupt_reentrancy_pct,
    "B correct",
    interrupt_reentrancy::<Host, Correct>
);
correct!(
    b_interrupt_reentrancy_splhigh_random,
    b_interrupt_reentrancy_splhigh_pct,
    "B correct (splhigh path)",
    interrupt_reentrancy::<SplHost, Correct>
);
correct!(
    c_migrate_vs_drain_random,
    c_migrate_vs_drain_pct,
    "C correct",
    migrate_vs_drain::<Host, Correct>
);
correct!(
    d_interrupt_release_vs_drain_random,
    d_interrupt_release_vs_drain_pct,
    "D correct",
    interrupt_release_vs_drain::<Host, Correct>
);
correct!(
    d_interrupt_release_vs_drain_splhigh_random,
    d_interrupt_release_vs_drain_splhigh_pct,
    "D correct (splhigh path)",
    interrupt_release_vs_drain::<SplHost, Correct>
);

broken!(
    broken_no_preempt_in_release_a_pct,
    broken_no_preempt_in_release_a_random,
    "A NoPreemptInRelease",
    release_vs_drain::<Host, NoPreemptInRelease>
);
broken!(
    broken_no_preempt_in_release_c_pct,
    broken_no_preempt_in_release_c_random,
    "C NoPreemptInRelease",
    migrate_vs_drain::<Host, NoPreemptInRelease>
);
broken!(
    broken_no_preempt_in_release_a_migrating_pct,
    broken_no_preempt_in_release_a_migrating_random,
    "A NoPreemptInRelease (migrating)",
    release_vs_drain::<MigratingHost, NoPreemptInRelease>
);
broken!(
    broken_no_spl_around_update_b_pct,
    broken_no_spl_around_update_b_random,
    "B NoSplAroundUpdate",
    interrupt_reentrancy::<Host, NoSplAroundUpdate>
);
broken!(
    broken_no_spl_around_update_d_pct,
    broken_no_spl_around_update_d_random,
    "D NoSplAroundUpdate",
    interrupt_release_vs_drain::<Host, NoSplAroundUpdate>
);
