//! RAII guards over the [`Kernel`] primitives, so that a preemption, IPL
//! or percpu(9) section cannot be left open by an early return, and
//! [`Interlock`], the `(cv, interlock)` pair of a localcount.

use core::marker::PhantomData;
use core::ptr::NonNull;

use super::{Kernel, Spl};
use crate::sys::types::{kcondvar, kmutex, percpu};

/// A section with kernel preemption disabled (`kpreempt_disable`).
#[must_use]
pub struct PreemptDisabled<K: Kernel> {
    _k: PhantomData<K>,
    _not_send: PhantomData<*mut u8>,
}

impl<K: Kernel> PreemptDisabled<K> {
    /// `kpreempt_disable()` until the guard is dropped.
    #[inline(always)]
    pub fn new() -> Self {
        K::kpreempt_disable();
        PreemptDisabled {
            _k: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<K: Kernel> PreemptDisabled<K> {
    /// This CPU's slot of `pc` (`percpu_getptr_remote(pc, curcpu())`),
    /// valid while preemption stays disabled, i.e. while `self` lives.
    ///
    /// # Safety
    /// `pc` is a live `int64_t` percpu allocation that outlives `self`.
    #[inline(always)]
    pub unsafe fn percpu_slot(&self, pc: NonNull<percpu>) -> &K::Slot {
        // SAFETY: caller's contract; by the Kernel contract the slot is
        // this CPU's until preemption is enabled again, which only our
        // Drop does (the borrow of `self` ends first); the guard is !Send.
        unsafe { K::percpu_slot(pc, self).as_ref() }
    }
}

impl<K: Kernel> Default for PreemptDisabled<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Kernel> Drop for PreemptDisabled<K> {
    #[inline(always)]
    fn drop(&mut self) {
        K::kpreempt_enable();
    }
}

/// A section with all interrupts on this CPU blocked (`splhigh`/`splx`).
#[must_use]
pub struct SplHigh<K: Kernel> {
    s: Spl,
    _k: PhantomData<K>,
    _not_send: PhantomData<*mut u8>,
}

impl<K: Kernel> SplHigh<K> {
    /// `s = splhigh()`; `splx(s)` when the guard is dropped.
    #[inline(always)]
    pub fn new() -> Self {
        SplHigh {
            s: K::splhigh(),
            _k: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<K: Kernel> Default for SplHigh<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Kernel> Drop for SplHigh<K> {
    #[inline(always)]
    fn drop(&mut self) {
        K::splx(self.s);
    }
}

/// This CPU's slot of a percpu(9) counter, between `percpu_getref` and
/// `percpu_putref` (preemption is disabled while it lives).
#[must_use]
pub struct PerCpuRef<'a, K: Kernel> {
    pc: NonNull<percpu>,
    slot: &'a K::Slot,
    _not_send: PhantomData<*mut u8>,
}

impl<'a, K: Kernel> PerCpuRef<'a, K> {
    /// `percpu_getref(pc)`.
    ///
    /// # Safety
    /// `pc` is a live `int64_t` percpu allocation that outlives `'a`.
    #[inline(always)]
    pub unsafe fn get(pc: NonNull<percpu>) -> Self {
        // SAFETY: the caller guarantees `pc` is a live int64_t allocation.
        let p = unsafe { K::percpu_getref(pc) };
        PerCpuRef {
            pc,
            // SAFETY: by the Kernel contract the slot stays valid and owned
            // by this CPU until percpu_putref, which only our Drop calls;
            // the guard is !Send, so it cannot move to another CPU's thread.
            slot: unsafe { p.as_ref() },
            _not_send: PhantomData,
        }
    }

    /// This CPU's counter.
    #[inline(always)]
    pub fn slot(&self) -> &K::Slot {
        self.slot
    }
}

impl<K: Kernel> Drop for PerCpuRef<'_, K> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: pairs with the percpu_getref in `get`.
        unsafe { K::percpu_putref(self.pc) }
    }
}

/// The `(cv, interlock)` pair a localcount is released and drained with.
///
/// Invariant: both pointers designate initialized kernel objects for the
/// lifetime of the value (established by [`Interlock::new`]'s caller).
pub struct Interlock<K: Kernel> {
    cv: NonNull<kcondvar>,
    mtx: NonNull<kmutex>,
    _k: PhantomData<K>,
}

impl<K: Kernel> Clone for Interlock<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: Kernel> Copy for Interlock<K> {}

impl<K: Kernel> Interlock<K> {
    /// Wrap a condvar/mutex pair.
    ///
    /// # Safety
    /// `cv` and `mtx` are initialized kernel objects that stay valid while
    /// the returned value is used.
    #[inline(always)]
    pub unsafe fn new(cv: NonNull<kcondvar>, mtx: NonNull<kmutex>) -> Self {
        Interlock {
            cv,
            mtx,
            _k: PhantomData,
        }
    }

    /// The mutex, for messages.
    pub fn mutex_ptr(&self) -> *const kmutex {
        self.mtx.as_ptr()
    }
    /// `mutex_enter(interlock)`.
    #[inline(always)]
    pub fn enter(&self) {
        // SAFETY: type invariant: `mtx` is an initialized kernel mutex.
        unsafe { K::mutex_enter(self.mtx) }
    }
    /// `mutex_exit(interlock)`.
    #[inline(always)]
    pub fn exit(&self) {
        // SAFETY: type invariant.
        unsafe { K::mutex_exit(self.mtx) }
    }
    /// `mutex_owned(interlock)`.
    #[inline(always)]
    pub fn owned(&self) -> bool {
        // SAFETY: type invariant.
        unsafe { K::mutex_owned(self.mtx) }
    }
    /// `mutex_ownable(interlock)`.
    #[inline(always)]
    pub fn ownable(&self) -> bool {
        // SAFETY: type invariant.
        unsafe { K::mutex_ownable(self.mtx) }
    }
    /// `cv_wait(cv, interlock)`; the caller holds the interlock.
    #[inline(always)]
    pub fn wait(&self) {
        // SAFETY: type invariant; the protocol only waits with the interlock
        // held (asserted by the caller).
        unsafe { K::cv_wait(self.cv, self.mtx) }
    }
    /// `cv_timedwait(cv, interlock, mstohz(ms))`; the caller holds the
    /// interlock.  True if it timed out.
    #[inline]
    pub fn timedwait_ms(&self, ms: u32) -> bool {
        // SAFETY: type invariant; as for `wait`.
        unsafe { K::cv_timedwait_ms(self.cv, self.mtx, ms) }
    }
    /// `cv_broadcast(cv)`.
    #[inline(always)]
    pub fn broadcast(&self) {
        // SAFETY: type invariant.
        unsafe { K::cv_broadcast(self.cv) }
    }
}

/// Where a release gets its `(cv, interlock)` pair from.  Only the release
/// slow path (a drain is running) and the `DEBUG && LOCKDEBUG` check use
/// it, so a C caller's raw pointers need not be checked on the fast path:
/// the exported `localcount_release` checks them here, when they are used.
pub trait GetInterlock<K: Kernel>: Copy {
    /// The pair; the kernel's panic if the caller passed none.
    fn interlock(self) -> Interlock<K>;
}

impl<K: Kernel> GetInterlock<K> for Interlock<K> {
    #[inline(always)]
    fn interlock(self) -> Interlock<K> {
        self
    }
}
