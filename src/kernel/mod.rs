//! The kernel primitives that localcount(9) is written against.
//!
//! The protocol in [`crate::localcount`] uses nothing but this trait, so the
//! same code runs in a NetBSD kernel (`crate::backend::netbsd`) and in the
//! host simulation (`crate::backend::host`), the way parking_lot_core
//! separates its portable core from the OS parkers.
//!
//! The trait mirrors the kernel's own interfaces one to one (percpu(9),
//! `kpreempt_disable(9)`, spl(9), xcall(9), mutex(9), condvar(9),
//! panic(9)); the guards ([`PreemptDisabled`], [`SplHigh`], [`PerCpuRef`],
//! [`PszRead`]) give them RAII shape so that a preemption or IPL section
//! cannot be left open by an early return.
//!
//! The reference layer needs a little more: [`DevswKernel`] (pserialize(9),
//! the devsw tables) for [`crate::devsw`], [`AutoconfKernel`] (autoconf's
//! locks, `struct device` accessors) for [`crate::autoconf`].  The C types
//! all of these speak of are in [`crate::sys`].

use core::ffi::c_void;
use core::ptr::NonNull;

use crate::sys::types::{kcondvar, kmutex, percpu, XcFunc};

mod autoconf;
mod devsw;
mod guards;
mod panic;
mod slot;

pub use autoconf::AutoconfKernel;
pub use devsw::{DevswKernel, DevswTables, Psz, PszRead};
pub use guards::{GetInterlock, Interlock, PerCpuRef, PreemptDisabled, SplHigh};
pub use panic::PanicMsg;
pub use slot::{KernelSlot, PerCpuSlot, LOCALCOUNT_SLOT_ALIGN};

/// A saved interrupt priority level, as returned by `splhigh()`.
#[derive(Clone, Copy, Debug)]
pub struct Spl(pub core::ffi::c_int);

/// The kernel services localcount(9) needs.
///
/// # Safety
///
/// Implementations must provide the NetBSD semantics the protocol relies on:
///
/// * `percpu_getref` disables kernel preemption and returns this CPU's slot,
///   valid until the matching `percpu_putref`; slots start at zero.
///   `percpu_slot` returns the same slot inside a section that already has
///   preemption disabled, valid until that section ends.
/// * `kpreempt_disable`/`kpreempt_enable` nest (a per-LWP counter); while
///   the count is non-zero the LWP stays on its CPU; a preemption requested
///   meanwhile happens at the `kpreempt_enable` that brings it to zero.
/// * While a thread has preemption disabled on CPU *c*, the low-priority
///   cross-call of [`Kernel::xc_broadcast_wait`] cannot run on *c*.
/// * `xc_broadcast_wait(f, a, b)` runs `f(a, b)` once on every CPU, in thread
///   context bound to that CPU, and returns when all have finished; what the
///   caller wrote before the call is visible to every `f`, and what every
///   `f` wrote is visible to the caller afterwards.
/// * `splhigh` blocks every interrupt on this CPU until the matching `splx`.
/// * `mutex_*`/`cv_*` are mutex(9)/condvar(9) on the objects passed, which
///   the caller guarantees are initialized kernel mutexes/condvars.
/// * `panic` does not return.
pub unsafe trait Kernel {
    /// The type of one CPU's counter as seen through `percpu_getref`.
    type Slot: PerCpuSlot;

    /// `percpu_alloc(size)`: zero-filled per-CPU storage.  May sleep; never
    /// fails.
    fn percpu_alloc(size: usize) -> NonNull<percpu>;
    /// `percpu_free(pc, size)`.  May sleep.
    ///
    /// # Safety
    /// `pc` came from `percpu_alloc(size)` and is not used afterwards.
    unsafe fn percpu_free(pc: NonNull<percpu>, size: usize);
    /// `percpu_getref(pc)`: disable preemption, return this CPU's slot.
    ///
    /// # Safety
    /// `pc` is a live allocation of `size_of::<i64>()` bytes.
    unsafe fn percpu_getref(pc: NonNull<percpu>) -> NonNull<Self::Slot>;
    /// `percpu_putref(pc)`: end the reference, re-enable preemption.
    ///
    /// # Safety
    /// Pairs with the last `percpu_getref(pc)` of this thread.
    unsafe fn percpu_putref(pc: NonNull<percpu>);

    /// This CPU's slot of `pc` in a section that already has preemption
    /// disabled: `percpu_getptr_remote(pc, curcpu())`, what
    /// `percpu_getref` returns, without disabling preemption a second
    /// time.  Valid while `np` lives.
    ///
    /// # Safety
    /// `pc` is a live allocation of `size_of::<i64>()` bytes.
    unsafe fn percpu_slot(pc: NonNull<percpu>, np: &PreemptDisabled<Self>) -> NonNull<Self::Slot>
    where
        Self: Sized;

    /// `kpreempt_disable()`.
    fn kpreempt_disable();
    /// `kpreempt_enable()`.
    fn kpreempt_enable();

    /// `splhigh()`: block all interrupts on this CPU.
    fn splhigh() -> Spl;
    /// `splx(s)`: restore the priority level `s`.
    fn splx(s: Spl);

    /// `xc_wait(xc_broadcast(0, f, a, b))`: low-priority broadcast cross-call.
    ///
    /// # Safety
    /// `f` may be called with `a` and `b` on every CPU until this returns.
    unsafe fn xc_broadcast_wait(f: XcFunc, a: *mut c_void, b: *mut c_void);

    /// `mutex_enter(m)`.
    ///
    /// # Safety
    /// `m` is an initialized kernel mutex.
    unsafe fn mutex_enter(m: NonNull<kmutex>);
    /// `mutex_exit(m)`.
    ///
    /// # Safety
    /// `m` is an initialized kernel mutex.
    unsafe fn mutex_exit(m: NonNull<kmutex>);
    /// `mutex_owned(m)`.
    ///
    /// # Safety
    /// `m` is an initialized kernel mutex.
    unsafe fn mutex_owned(m: NonNull<kmutex>) -> bool;
    /// `mutex_ownable(m)`: the caller could take `m` without deadlocking on
    /// itself (a real check only under LOCKDEBUG).
    ///
    /// # Safety
    /// `m` is an initialized kernel mutex.
    unsafe fn mutex_ownable(m: NonNull<kmutex>) -> bool;
    /// `cv_wait(cv, m)`.
    ///
    /// # Safety
    /// `cv`/`m` are initialized and `m` is held by the caller.
    unsafe fn cv_wait(cv: NonNull<kcondvar>, m: NonNull<kmutex>);
    /// `cv_broadcast(cv)`.
    ///
    /// # Safety
    /// `cv` is an initialized kernel condvar.
    unsafe fn cv_broadcast(cv: NonNull<kcondvar>);
    /// `cv_timedwait(cv, m, mstohz(ms))`: as `cv_wait`, but also returns
    /// after about `ms` milliseconds; true if it timed out.
    ///
    /// # Safety
    /// As for `cv_wait`.
    unsafe fn cv_timedwait_ms(cv: NonNull<kcondvar>, m: NonNull<kmutex>, ms: u32) -> bool;
    /// Milliseconds since boot (a monotonic clock).
    fn uptime_ms() -> u64;
    /// Print the console line of a drain that has waited long:
    /// `NAME: N references outstanding after S s`.
    ///
    /// # Safety
    /// `name` is a NUL-terminated string.
    unsafe fn report_drain_wait(name: *const core::ffi::c_char, outstanding: i64, secs: u64);

    /// `panic(fmt, ...)` with one of the library's messages.
    fn panic(msg: PanicMsg<'_>) -> !;

    /// A point where the current LWP may be preempted and migrate, as
    /// kernel preemption could do between any two instructions of
    /// preemptible code.  Only the deliberately broken protocol variants
    /// call it, to make their race observable; it does nothing unless the
    /// backend can yield here.
    #[inline(always)]
    fn preempt_point() {}

    /// A point where an interrupt may be taken on this CPU, as on hardware
    /// between any two instructions of code that runs with interrupts
    /// enabled.  Only the deliberately broken protocol variants call it,
    /// inside the window their missing protection opens; it does nothing
    /// unless the backend widens the window there (the NetBSD backend does,
    /// because QEMU's TCG takes interrupts only between translated blocks:
    /// a load, add and store in one block are never interrupted there).
    #[inline(always)]
    fn interrupt_point() {}
}
