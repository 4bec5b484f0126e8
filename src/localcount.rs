//! The localcount(9) protocol.
//!
//! A localcount is a reference count whose acquire and release touch only a
//! per-CPU `int64_t` (no interprocessor atomics); the price is an expensive,
//! one-shot drain that gathers every CPU's count with a cross-call.  The
//! algorithm is NetBSD-current's (`subr_localcount.c` 1.8), written once
//! against [`Kernel`]:
//!
//! * **acquire**: this CPU's counter += 1, with preemption disabled and
//!   interrupts blocked around the read-modify-write.
//! * **release**: with preemption disabled, look at `lc_totalp`.  `NULL`:
//!   this CPU's counter -= 1 as above (fast path).  Otherwise a drain is
//!   running: take the interlock, `--*lc_totalp`, wake the drainer at zero.
//! * **drain** (interlock held): publish `lc_totalp = &total` (a counter on
//!   the drainer's stack), drop the interlock, run a low-priority xcall on
//!   every CPU that moves that CPU's counter into `total` under the
//!   interlock, retake the interlock and sleep until `total == 0`; then
//!   poison `lc_totalp` with `1`.  Returns with the interlock held.
//! * **fini** (after drain): free the per-CPU storage.
//!
//! Why it is correct (NetBSD's argument, which the host simulation and the
//! model checker exercise): the low-priority xcall cannot run on a CPU while
//! a thread there has preemption disabled.  A release that saw
//! `lc_totalp == NULL` with preemption disabled therefore finishes its local
//! decrement before that CPU's xcall sums the counter; a release that starts
//! after the xcall ran on its CPU sees the non-NULL `lc_totalp` (the xcall
//! took the interlock after the drainer published it) and takes the slow
//! path.  Interrupts are blocked around the per-CPU update so that an
//! interrupt handler on the same CPU adjusting the same localcount cannot
//! lose an update (NetBSD 1.8 added `splhigh` for this).
//!
//! The invariants of [`LocalCount`]: `lc_totalp` is `NULL` (idle), the
//! address of a live drainer's `total` (draining; only dereferenced with the
//! interlock held) or [`POISON`] (drained); `lc_percpu` is the percpu(9)
//! allocation made by `init` until `fini`.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::kernel::{
    GetInterlock, Interlock, Kernel, PanicMsg, PerCpuRef, PerCpuSlot, PreemptDisabled, SplHigh,
};
use crate::sys::localcount::LocalCount;
use crate::sys::types::{kmutex, percpu};

/// `lc_totalp` after a drain: `(void *)(uintptr_t)1`.
pub const POISON: *mut i64 = ptr::without_provenance_mut(1);

/// Size of one CPU's counter in the percpu(9) allocation.
pub const SLOT_SIZE: usize = core::mem::size_of::<i64>();

impl LocalCount {
    /// `lc_percpu`, which an initialized localcount has; the kernel's
    /// panic otherwise.
    #[inline(always)]
    fn percpu<K: Kernel>(&self) -> NonNull<percpu> {
        match NonNull::new(self.lc_percpu.0.load(Ordering::Relaxed)) {
            Some(pc) => pc,
            None => not_initialized::<K>(self),
        }
    }
}

#[cold]
#[inline(never)]
fn not_initialized<K: Kernel>(lc: &LocalCount) -> ! {
    K::panic(PanicMsg::NotInitialized(
        lc as *const LocalCount as *const c_void,
    ))
}

/// Which protections the protocol uses.
///
/// Only [`Correct`] is sound.  The others exist to show that the tests can
/// fail: the model checker, the host stress tests and the in-kernel suite
/// must catch them (they are selected for the exported functions by the
/// `broken-*` Cargo features, and used directly by the model tests).
pub trait Variant {
    /// `kpreempt_disable()` around the release fast path.
    const PREEMPT_IN_RELEASE: bool;
    /// `splhigh()` around the per-CPU read-modify-write.
    const SPL_AROUND_UPDATE: bool;
}

/// The NetBSD-current protocol.
pub struct Correct;
impl Variant for Correct {
    const PREEMPT_IN_RELEASE: bool = true;
    const SPL_AROUND_UPDATE: bool = true;
}

/// BROKEN: release reads `lc_totalp` with preemption enabled.
pub struct NoPreemptInRelease;
impl Variant for NoPreemptInRelease {
    const PREEMPT_IN_RELEASE: bool = false;
    const SPL_AROUND_UPDATE: bool = true;
}

/// BROKEN: the per-CPU update can be interrupted on the same CPU.
pub struct NoSplAroundUpdate;
impl Variant for NoSplAroundUpdate {
    const PREEMPT_IN_RELEASE: bool = true;
    const SPL_AROUND_UPDATE: bool = false;
}

/// The variant the exported C functions use (always [`Correct`] unless a
/// `broken-*` feature was selected on purpose).
#[cfg(not(any(
    feature = "broken-release-no-preempt",
    feature = "broken-percpu-no-spl"
)))]
pub type Built = Correct;
/// The variant the exported C functions use (DELIBERATELY BROKEN build).
#[cfg(feature = "broken-release-no-preempt")]
pub type Built = NoPreemptInRelease;
/// The variant the exported C functions use (DELIBERATELY BROKEN build).
#[cfg(all(
    feature = "broken-percpu-no-spl",
    not(feature = "broken-release-no-preempt")
))]
pub type Built = NoSplAroundUpdate;

/// Move a localcount that [`init`] made and that was never used (never
/// visible to anybody: no reference, no drain) into `dst`, which must be
/// zero-filled or finalized; `src` is left zero-filled.  `dst` gets a zero
/// `lc_refcnt`, like a freshly allocated localcount.  A localcount holds
/// no address of its own (only its per-CPU storage's), so this is the
/// same as having initialized `dst`, but the allocation, which may sleep
/// and send an xcall, could happen before the caller took its locks: the
/// devsw layer prepares `d_localcount` this way (`devsw_attach`).
///
/// Any context; never sleeps.
pub fn install_unused<K: Kernel>(dst: &LocalCount, src: &LocalCount) {
    kassert!(
        K,
        dst.lc_percpu.0.load(Ordering::Relaxed).is_null(),
        "lc->lc_percpu == NULL"
    );
    kassert!(K, src.totalp().is_null(), "lc->lc_totalp == NULL");
    let pc = src.percpu::<K>();
    src.lc_percpu.0.store(ptr::null_mut(), Ordering::Relaxed);
    src.lc_refcnt.0.store(0, Ordering::Relaxed);
    dst.lc_totalp.0.store(ptr::null_mut(), Ordering::Relaxed);
    dst.lc_refcnt.0.store(0, Ordering::Relaxed);
    dst.lc_percpu.0.store(pc.as_ptr(), Ordering::Relaxed);
}

/// Free the per-CPU storage of a localcount that [`init`] made and that
/// was never used (see [`install_unused`]) without the drain that
/// [`fini`] requires: nobody can hold a reference to an object nobody
/// could see.  Does nothing to a zero-filled (or moved-from) one.
///
/// Thread context; may sleep (percpu_free).
pub fn discard_unused<K: Kernel>(lc: &LocalCount) {
    let Some(pc) = NonNull::new(lc.lc_percpu.0.load(Ordering::Relaxed)) else {
        return;
    };
    kassert!(K, lc.totalp().is_null(), "lc->lc_totalp == NULL");
    lc.lc_percpu.0.store(ptr::null_mut(), Ordering::Relaxed);
    lc.lc_totalp.0.store(POISON, Ordering::Relaxed);
    // SAFETY: the storage init allocated, which nothing else refers to
    // (never used, per the caller's contract).
    unsafe { K::percpu_free(pc, SLOT_SIZE) };
}

/// `localcount_init(lc)`: `lc_totalp = NULL`, allocate the per-CPU counters.
/// Thread context; may sleep.  Leaves `lc_refcnt` alone.
pub fn init<K: Kernel>(lc: &LocalCount) {
    lc.lc_totalp.0.store(ptr::null_mut(), Ordering::Relaxed);
    let pc = K::percpu_alloc(SLOT_SIZE);
    lc.lc_percpu.0.store(pc.as_ptr(), Ordering::Relaxed);
}

/// `localcount_fini(lc)`: free the per-CPU counters of a drained localcount.
/// Thread context; may sleep.
pub fn fini<K: Kernel>(lc: &LocalCount) {
    kassert!(
        K,
        lc.totalp() == POISON,
        "lc->lc_totalp == (void *)(uintptr_t)1"
    );
    let pc = lc.percpu::<K>();
    // SAFETY: `pc` was allocated by init with SLOT_SIZE; the localcount is
    // drained, so no acquire/release may use it any more (their contract).
    unsafe { K::percpu_free(pc, SLOT_SIZE) };
    // Forget the freed storage: a second fini then panics ("not
    // initialized") instead of freeing it twice.  lc_totalp stays poisoned,
    // so acquire, release and drain still refuse a finalized localcount.
    lc.lc_percpu.0.store(ptr::null_mut(), Ordering::Relaxed);
}

/// `localcount_acquire(lc)`: take a reference.  Any context; never sleeps.
/// No drain may have started.
#[inline(always)]
pub fn acquire<K: Kernel>(lc: &LocalCount) {
    acquire_with::<K, Built>(lc)
}

/// [`acquire`] with an explicit protocol [`Variant`].
#[inline(always)]
pub fn acquire_with<K: Kernel, V: Variant>(lc: &LocalCount) {
    kassert!(K, lc.totalp().is_null(), "lc->lc_totalp == NULL");
    let pc = lc.percpu::<K>();
    // SAFETY: an initialized localcount's lc_percpu is a live int64_t
    // percpu allocation until fini, which the callers' contract orders after
    // every acquire/release.
    let r = unsafe { PerCpuRef::<K>::get(pc) };
    update::<K, V>(r.slot(), 1);
    drop(r);
    if crate::diag::LC_DEBUG {
        let n = lc
            .lc_refcnt
            .0
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        if n == 0 {
            K::panic(PanicMsg::Text("counter overflow"));
        }
    }
}

/// `localcount_release(lc, cv, interlock)`: drop a reference.  Fast path in
/// any context; during a drain takes the interlock (which the caller must
/// not hold) and may sleep on it.
///
/// `lc` is taken as a pointer (a `&LocalCount` converts): once this
/// reference is gone the drainer may return and the object be freed
/// (module unload) while this function is still on its way out, so no
/// Rust reference to it may live across that point.  References are made
/// only where the object is pinned: with preemption disabled (the drain's
/// xcall cannot run here) or with the interlock held (the drainer cannot
/// return).
#[inline(always)]
pub fn release<K: Kernel>(lc: impl Into<NonNull<LocalCount>>, il: impl GetInterlock<K>) {
    release_with::<K, Built>(lc, il)
}

/// [`release`] with an explicit protocol [`Variant`].
#[inline(always)]
pub fn release_with<K: Kernel, V: Variant>(
    lc: impl Into<NonNull<LocalCount>>,
    il: impl GetInterlock<K>,
) {
    let lcp: NonNull<LocalCount> = lc.into();
    // Block the low-priority xcall on this CPU: a drain that starts after we
    // saw lc_totalp == NULL cannot count this CPU before our decrement lands.
    let np = V::PREEMPT_IN_RELEASE.then(PreemptDisabled::<K>::new);
    // SAFETY: the caller holds a reference, so the object is alive now;
    // `lc` is not used after the slow path is entered or after `np` ends
    // (it is dropped last, after the final use of `lc`).
    let lc = unsafe { lcp.as_ref() };

    if crate::diag::LC_DEBUG {
        kassert!(K, il.interlock().ownable(), "mutex_ownable(interlock)");
    }
    if !lc.totalp().is_null() {
        release_slow::<K>(lcp, il);
        return;
    }
    if !V::PREEMPT_IN_RELEASE {
        // The broken variant's window: preemptible between seeing NULL
        // and updating a CPU's counter.
        K::preempt_point();
    }
    let pc = lc.percpu::<K>();
    match &np {
        // This CPU's slot in the section we already have: no second
        // preemption-disabled section nested in it.
        // SAFETY: as in acquire; `np` outlives the slot's use.
        Some(np) => update::<K, V>(unsafe { np.percpu_slot(pc) }, -1),
        None => {
            // SAFETY: as in acquire.
            let r = unsafe { PerCpuRef::<K>::get(pc) };
            update::<K, V>(r.slot(), -1);
        }
    }
    if crate::diag::LC_DEBUG {
        let n = lc
            .lc_refcnt
            .0
            .fetch_sub(1, Ordering::Relaxed)
            .wrapping_sub(1);
        if n == u32::MAX {
            K::panic(PanicMsg::Text("counter underflow"));
        }
    }
}

/// The release slow path: a drain is running (or has finished: misuse).
#[cold]
#[inline(never)]
fn release_slow<K: Kernel>(lcp: NonNull<LocalCount>, il: impl GetInterlock<K>) {
    let il = il.interlock();
    il.enter();
    // Re-read under the interlock: the drainer's `total` is only ever
    // dereferenced with the interlock held, and the drainer cannot return
    // (ending `total`'s lifetime, and maybe the object's) without retaking
    // it and poisoning.
    // SAFETY: a drain is running and has not returned (we hold the
    // interlock it must retake), so the object is alive until il.exit().
    let totalp = unsafe { lcp.as_ref() }.totalp();
    if totalp == POISON || totalp.is_null() {
        il.exit();
        K::panic(PanicMsg::ReleasedAfterDrain(lcp.as_ptr() as *const c_void));
    }
    // SAFETY: `totalp` is a live drainer's `total` (invariant above), and we
    // hold the interlock that serializes every access to it.
    let n = unsafe {
        *totalp -= 1;
        *totalp
    };
    if n == 0 {
        il.broadcast();
    }
    il.exit();
}

/// This CPU's counter (`slot`, reached with preemption disabled) +=
/// `delta`, atomically with respect to interrupts on this CPU (a
/// single-instruction add where the architecture has one, else at `splhigh`
/// as NetBSD's C code does) and to the drain xcall (which cannot run here
/// while preemption is disabled).
#[inline(always)]
fn update<K: Kernel, V: Variant>(slot: &K::Slot, delta: i64) {
    if !V::SPL_AROUND_UPDATE {
        // BROKEN variant: an interrupt between the load and the store on
        // this CPU loses its update.
        let v = slot.load();
        K::interrupt_point();
        slot.store(v.wrapping_add(delta));
    } else if K::Slot::ADD_IS_INTERRUPT_ATOMIC {
        // One instruction: interrupts land before or after it.
        slot.add(delta);
    } else {
        let _s = SplHigh::<K>::new();
        slot.store(slot.load().wrapping_add(delta));
    }
}

/// `localcount_drain(lc, cv, interlock)`: wait for every reference to be
/// released.  Thread context, interlock held on entry and on return (dropped
/// while sleeping).  No acquire may start once this is called.
pub fn drain<K: Kernel>(lc: &LocalCount, il: Interlock<K>) {
    drain_with::<K, Built>(lc, il)
}

/// How many "still waiting" lines drains have printed since boot
/// ([`drain_named`]): for tests and debuggers (`print
/// localcount_drain_reports` in ddb).  C declares it as `extern volatile
/// uint32_t localcount_drain_reports;`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static localcount_drain_reports: AtomicU32 = AtomicU32::new(0);

/// When a drain that reports ([`drain_named`]) first says it is still
/// waiting; later reports follow at twice the previous delay.
pub const LOCALCOUNT_DRAIN_REPORT_MS: u64 = 5000;

/// [`drain`] that is never silent: once it has waited
/// [`LOCALCOUNT_DRAIN_REPORT_MS`] it prints `NAME: N references outstanding
/// after S s`, and again each time the wait has doubled (10, 20, 40 s...),
/// so that a stuck detach can be diagnosed from the console.
///
/// # Safety
/// `name` is a NUL-terminated string that lives until this returns.
pub unsafe fn drain_named<K: Kernel>(
    lc: &LocalCount,
    il: Interlock<K>,
    name: *const core::ffi::c_char,
) {
    drain_impl::<K, Built>(lc, il, Some(name))
}

/// [`drain`] with an explicit protocol [`Variant`].
pub fn drain_with<K: Kernel, V: Variant>(lc: &LocalCount, il: Interlock<K>) {
    drain_impl::<K, V>(lc, il, None)
}

fn drain_impl<K: Kernel, V: Variant>(
    lc: &LocalCount,
    il: Interlock<K>,
    name: Option<*const core::ffi::c_char>,
) {
    kassert!(K, il.owned(), "mutex_owned(interlock)");
    kassert!(K, lc.totalp().is_null(), "lc->lc_totalp == NULL");
    // Fail here, in the drainer, rather than in every CPU's xcall.
    let _ = lc.percpu::<K>();

    // The drainer's total, on this stack frame.  Releasers and the xcall
    // only touch it with the interlock held, and this function does not
    // return before poisoning lc_totalp with the interlock held.
    let total = UnsafeCell::new(0i64);
    lc.lc_totalp.0.store(total.get(), Ordering::Relaxed);

    // Move every CPU's counter into `total`.  The xcall is also the global
    // memory barrier after which every CPU sees the non-NULL lc_totalp.
    il.exit();
    // SAFETY: `transfer_xc` gets `lc` (alive: we hold a borrow until after
    // the wait) and the interlock mutex (valid by Interlock's invariant).
    unsafe {
        K::xc_broadcast_wait(
            transfer_xc::<K, V>,
            lc as *const LocalCount as *mut c_void,
            il.mutex_ptr() as *mut c_void,
        );
    }
    il.enter();

    let start = if name.is_some() { K::uptime_ms() } else { 0 };
    let mut report_at = LOCALCOUNT_DRAIN_REPORT_MS;
    loop {
        // SAFETY: we hold the interlock, which serializes every access to
        // `total` from releasers and xcalls.
        let t = unsafe { *total.get() };
        if t == 0 {
            break;
        }
        // Transiently negative while the xcall ran (references migrate
        // between CPUs); after it, never.
        let negative = PanicMsg::NegativeTotal(lc as *const LocalCount as *const c_void, t);
        kassertmsg!(K, 0 < t, "0 < total", negative);
        if t < 0 {
            // Without DIAGNOSTIC the C code would sleep forever here.
            K::panic(negative);
        }
        let Some(name) = name else {
            il.wait();
            continue;
        };
        let waited = K::uptime_ms().saturating_sub(start);
        if waited >= report_at {
            // SAFETY: drain_named's contract.
            unsafe { K::report_drain_wait(name, t, waited / 1000) };
            localcount_drain_reports.fetch_add(1, Ordering::Relaxed);
            while report_at <= waited {
                report_at = report_at.saturating_mul(2);
            }
        }
        let left = (report_at - waited).min(u32::MAX as u64) as u32;
        il.timedwait_ms(left.max(1));
    }
    lc.lc_totalp.0.store(POISON, Ordering::Relaxed);
}

/// The drain cross-call: move this CPU's counter into the drainer's total.
///
/// # Safety
/// `cookie0` is the `&LocalCount` being drained and `cookie1` its interlock
/// mutex; called only from [`drain_with`]'s broadcast.
unsafe extern "C" fn transfer_xc<K: Kernel, V: Variant>(
    cookie0: *mut c_void,
    cookie1: *mut c_void,
) {
    // SAFETY: the drainer passed a live localcount and waits for us.
    let lc = unsafe { LocalCount::from_ptr(cookie0 as *const LocalCount) };
    // SAFETY: the interlock mutex of the drain, valid while it waits.
    let mtx = unsafe { NonNull::new_unchecked(cookie1 as *mut kmutex) };
    // SAFETY: as above.
    unsafe { K::mutex_enter(mtx) };
    let pc = lc.percpu::<K>();
    {
        // SAFETY: the localcount is initialized (drain's contract).
        let r = unsafe { PerCpuRef::<K>::get(pc) };
        let slot = r.slot();
        let totalp = lc.totalp();
        let _s = V::SPL_AROUND_UPDATE.then(SplHigh::<K>::new);
        let local = slot.load();
        // SAFETY: lc_totalp is the waiting drainer's total and we hold the
        // interlock.
        unsafe { *totalp += local };
        slot.store(0);
    }
    // SAFETY: taken above.
    unsafe { K::mutex_exit(mtx) };
}

/// 1 if `localcount_debug_refcnt` counts (the library was built for a
/// kernel with DEBUG and LOCKDEBUG), else 0.
#[cfg(feature = "lc-debug")]
pub const LOCALCOUNT_DEBUG_REFCNT: u32 = 1;
/// 1 if `localcount_debug_refcnt` counts (the library was built for a
/// kernel with DEBUG and LOCKDEBUG), else 0.
#[cfg(not(feature = "lc-debug"))]
pub const LOCALCOUNT_DEBUG_REFCNT: u32 = 0;
