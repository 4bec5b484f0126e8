//! The kernel primitives that localcount(9) is written against.
//!
//! The protocol in [`crate::localcount`] uses nothing but this trait, so the
//! same code runs in a NetBSD kernel (`crate::backend::netbsd`) and in the
//! host simulation (`crate::backend::host`), the way parking_lot_core
//! separates its portable core from the OS parkers.
//!
//! The trait mirrors the kernel's own interfaces one to one (percpu(9),
//! `kpreempt_disable(9)`, spl(9), xcall(9), mutex(9), condvar(9),
//! panic(9)); the guards below give them RAII shape so that a preemption or
//! IPL section cannot be left open by an early return.

use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// `struct kmutex`: the kernel's mutex, opaque to Rust (its layout is MD).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct kmutex {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// `struct kcondvar`: the kernel's condition variable, opaque to Rust.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct kcondvar {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// `struct percpu`: a percpu(9) allocation handle, opaque to Rust.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct percpu {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// `xcfunc_t`: a cross-call function, `void (*)(void *, void *)`.
pub type XcFunc = unsafe extern "C" fn(*mut c_void, *mut c_void);

/// A saved interrupt priority level, as returned by `splhigh()`.
#[derive(Clone, Copy, Debug)]
pub struct Spl(pub core::ffi::c_int);

/// One CPU's `int64_t` counter in a percpu(9) allocation.
///
/// The per-CPU update is a read-modify-write that is not atomic between CPUs
/// (that is the point of localcount): only its own CPU touches a slot, with
/// preemption disabled.  What it must be atomic against is an interrupt
/// handler on the same CPU that adjusts the same counter.  NetBSD's C code
/// gets that by raising to `splhigh` around `load`/`store`; where one
/// instruction can do the whole update ([`PerCpuSlot::ADD_IS_INTERRUPT_ATOMIC`]),
/// [`PerCpuSlot::add`] needs no IPL change, because interrupts are only taken
/// between instructions.
pub trait PerCpuSlot {
    /// Whether [`PerCpuSlot::add`] is atomic with respect to interrupts on
    /// this CPU (a single instruction).  If false, callers raise the IPL.
    const ADD_IS_INTERRUPT_ATOMIC: bool;
    /// Read this CPU's counter (one untorn access).
    fn load(&self) -> i64;
    /// Write this CPU's counter (one untorn access).
    fn store(&self, v: i64);
    /// Add `delta` to this CPU's counter; interrupt-atomic if
    /// `ADD_IS_INTERRUPT_ATOMIC`.
    fn add(&self, delta: i64);
}

/// A NetBSD percpu(9) `int64_t`, updated only by its own CPU.
#[repr(transparent)]
pub struct KernelSlot(core::sync::atomic::AtomicI64);

impl PerCpuSlot for KernelSlot {
    /// On x86-64 a non-locked `add` to memory is one instruction: an
    /// interrupt on this CPU sees the counter before or after it, never in
    /// between (no `lock` prefix: no other CPU writes this slot).
    const ADD_IS_INTERRUPT_ATOMIC: bool = cfg!(target_arch = "x86_64");

    #[inline(always)]
    fn load(&self) -> i64 {
        self.0.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn store(&self, v: i64) {
        self.0.store(v, core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn add(&self, delta: i64) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self.0.as_ptr()` is a valid, aligned int64_t that only
        // this CPU writes while the caller holds it (preemption disabled);
        // the instruction reads and writes nothing else and uses no stack.
        unsafe {
            // `delta` is a constant at every call site, so this folds to
            // one `inc`, `dec` or `add` instruction.
            let p = self.0.as_ptr();
            if delta == 1 {
                core::arch::asm!("inc qword ptr [{p}]", p = in(reg) p, options(nostack));
            } else if delta == -1 {
                core::arch::asm!("dec qword ptr [{p}]", p = in(reg) p, options(nostack));
            } else {
                core::arch::asm!(
                    "add qword ptr [{p}], {d}",
                    p = in(reg) p,
                    d = in(reg) delta,
                    options(nostack),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.store(self.load().wrapping_add(delta));
    }
}

/// The host's per-CPU counters (std or shuttle atomics): `fetch_add` is one
/// indivisible step, like x86's `add` to memory.
impl PerCpuSlot for core::sync::atomic::AtomicI64 {
    const ADD_IS_INTERRUPT_ATOMIC: bool = true;

    #[inline(always)]
    fn load(&self) -> i64 {
        self.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn store(&self, v: i64) {
        self.store(v, core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn add(&self, delta: i64) {
        self.fetch_add(delta, core::sync::atomic::Ordering::Relaxed);
    }
}

/// The kernel services localcount(9) needs.
///
/// # Safety
///
/// Implementations must provide the NetBSD semantics the protocol relies on:
///
/// * `percpu_getref` disables kernel preemption and returns this CPU's slot,
///   valid until the matching `percpu_putref`; slots start at zero.
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

    /// `panic(fmt, ...)` with one of the library's messages.
    fn panic(msg: PanicMsg<'_>) -> !;

    /// A point where the current LWP may be preempted and migrate, as
    /// kernel preemption could do between any two instructions of
    /// preemptible code.  Only the deliberately broken protocol variants
    /// call it, to make their race observable; it does nothing unless the
    /// backend can yield here.
    #[inline(always)]
    fn preempt_point() {}
}

/// Every message this library panics with, as data: the NetBSD backend
/// hands it to the kernel's `panic()` as a printf format and arguments (so
/// the kernel object carries no Rust formatting machinery), the host
/// backend formats it with [`fmt::Display`].  The texts are NetBSD's.
#[derive(Clone, Copy, Debug)]
pub enum PanicMsg<'a> {
    /// `KASSERT(expr)` / `KASSERTMSG(expr, ...)` failed:
    /// `kernel diagnostic assertion "EXPR" failed: file "FILE", line N DETAIL`.
    Assertion {
        /// The C expression, as NetBSD's source writes it.
        expr: &'static str,
        /// Source file of the check.
        file: &'static str,
        /// Source line of the check.
        line: u32,
        /// The KASSERTMSG message, if any.
        detail: Option<&'a PanicMsg<'a>>,
    },
    /// A fixed text, e.g. `counter overflow`.
    Text(&'static str),
    /// `FUNCTION: NULL ARGUMENT`.
    NullArgument(&'static str, &'static str),
    /// `localcount %p is not initialized`.
    NotInitialized(*const c_void),
    /// `localcount_release: localcount %p released after drain`.
    ReleasedAfterDrain(*const c_void),
    /// `negatively referenced localcount: %p, %lld`.
    NegativeTotal(*const c_void, i64),
    /// A Rust panic (a bug in this library) at FILE:LINE.
    Rust {
        /// Source file.
        file: &'a str,
        /// Source line.
        line: u32,
    },
}

impl fmt::Display for PanicMsg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PanicMsg::Assertion {
                expr,
                file,
                line,
                detail,
            } => {
                write!(
                    f,
                    "kernel diagnostic assertion \"{expr}\" failed: file \"{file}\", line {line} "
                )?;
                match detail {
                    Some(d) => write!(f, "{d}"),
                    None => Ok(()),
                }
            }
            PanicMsg::Text(s) => f.write_str(s),
            PanicMsg::NullArgument(func, arg) => write!(f, "{func}: NULL {arg}"),
            PanicMsg::NotInitialized(p) => write!(f, "localcount {p:p} is not initialized"),
            PanicMsg::ReleasedAfterDrain(p) => {
                write!(
                    f,
                    "localcount_release: localcount {p:p} released after drain"
                )
            }
            PanicMsg::NegativeTotal(p, t) => {
                write!(f, "negatively referenced localcount: {p:p}, {t}")
            }
            PanicMsg::Rust { file, line } => {
                write!(f, "rust_localcount: Rust panic at {file}:{line}")
            }
        }
    }
}

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
    /// `cv_broadcast(cv)`.
    #[inline(always)]
    pub fn broadcast(&self) {
        // SAFETY: type invariant.
        unsafe { K::cv_broadcast(self.cv) }
    }
}
