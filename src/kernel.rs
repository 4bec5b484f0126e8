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

/// The alignment of [`KernelSlot`] on this target, at most what percpu(9)
/// guarantees a slot: offsets in a percpu allocation are multiples of
/// `PERCPU_QUANTUM_SIZE` (`ALIGNBYTES + 1`: 8 on amd64, 16 on aarch64,
/// only 4 on i386) from storage that `kmem_alloc` aligns at least as much.
/// The kernel glue checks `LOCALCOUNT_SLOT_ALIGN <= ALIGNBYTES + 1` with a
/// `CTASSERT`, so a port with smaller slots fails to build.
#[cfg(not(target_arch = "x86"))]
pub const LOCALCOUNT_SLOT_ALIGN: usize = 8;
/// The alignment of [`KernelSlot`] on i386: 4, as percpu(9)'s there.
#[cfg(target_arch = "x86")]
pub const LOCALCOUNT_SLOT_ALIGN: usize = 4;

/// A NetBSD percpu(9) `int64_t`, updated only by its own CPU.
///
/// Where the slot is 8-aligned (amd64, aarch64) it is an `AtomicI64`
/// accessed with relaxed single instructions.  On i386 percpu(9) slots are
/// only 4-aligned, and `AtomicI64` requires 8 (a reference to a
/// misaligned one would be undefined behaviour), so there it is a plain
/// `int64_t` (alignment 4 in the i386 ABI), read and written with volatile
/// accesses: only its own CPU touches it, at `splhigh` (the update is not
/// interrupt-atomic, [`PerCpuSlot::ADD_IS_INTERRUPT_ATOMIC`] is false), and
/// the drain xcall reads it on that CPU with preemption excluded.
#[cfg(not(target_arch = "x86"))]
#[repr(transparent)]
pub struct KernelSlot(core::sync::atomic::AtomicI64);

/// A NetBSD percpu(9) `int64_t` on i386 (4-aligned): see the other targets'.
#[cfg(target_arch = "x86")]
#[repr(transparent)]
pub struct KernelSlot(core::cell::UnsafeCell<i64>);

static_assertions::assert_eq_size!(KernelSlot, i64);
static_assertions::const_assert_eq!(core::mem::align_of::<KernelSlot>(), LOCALCOUNT_SLOT_ALIGN);
// What percpu(9) guarantees (ALIGNBYTES + 1) on the kernel targets.
#[cfg(target_arch = "x86_64")]
static_assertions::const_assert!(LOCALCOUNT_SLOT_ALIGN <= 8);
#[cfg(target_arch = "aarch64")]
static_assertions::const_assert!(LOCALCOUNT_SLOT_ALIGN <= 16);
#[cfg(target_arch = "x86")]
static_assertions::const_assert!(LOCALCOUNT_SLOT_ALIGN <= 4);

#[cfg(target_arch = "x86")]
impl PerCpuSlot for KernelSlot {
    const ADD_IS_INTERRUPT_ATOMIC: bool = false;

    #[inline(always)]
    fn load(&self) -> i64 {
        // SAFETY: a live, 4-aligned (enough for i64 here) slot that only
        // this CPU accesses, with interrupts blocked by the caller.
        unsafe { self.0.get().read_volatile() }
    }
    #[inline(always)]
    fn store(&self, v: i64) {
        // SAFETY: as in load.
        unsafe { self.0.get().write_volatile(v) }
    }
    #[inline(always)]
    fn add(&self, delta: i64) {
        self.store(self.load().wrapping_add(delta));
    }
}

#[cfg(not(target_arch = "x86"))]
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
    /// A device's name (NUL-terminated `device_xname`), as in
    /// `KASSERTMSG(!dv->dv_detach_done, "%s", device_xname(dv))`.
    DeviceName(*const core::ffi::c_char),
    /// `FUNCTION: device %p has no localcount`.
    NoLocalcount(&'static str, *const c_void),
    /// `device_lookup_private_acquire: %s has no softc`.
    NoSoftc(*const core::ffi::c_char),
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
            PanicMsg::DeviceName(name) => write_c_str(f, name),
            PanicMsg::NoLocalcount(func, dv) => {
                write!(f, "{func}: device {dv:p} has no localcount")
            }
            PanicMsg::NoSoftc(name) => {
                f.write_str("device_lookup_private_acquire: ")?;
                write_c_str(f, name)?;
                f.write_str(" has no softc")
            }
            PanicMsg::Rust { file, line } => {
                write!(f, "rust_localcount: Rust panic at {file}:{line}")
            }
        }
    }
}

/// Write a NUL-terminated C string (a device name) like printf's `%s`.
fn write_c_str(f: &mut fmt::Formatter<'_>, s: *const core::ffi::c_char) -> fmt::Result {
    if s.is_null() {
        return f.write_str("(null)");
    }
    // SAFETY: PanicMsg's C strings are device names, NUL-terminated and
    // alive while the message is formatted (the device is live).
    let bytes = unsafe { core::ffi::CStr::from_ptr(s) }.to_bytes();
    match core::str::from_utf8(bytes) {
        Ok(t) => f.write_str(t),
        Err(_) => f.write_str("(non-UTF-8 name)"),
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

/// `struct device` (`device_t`): an autoconf device instance.  Opaque: its
/// layout is private to autoconf (`<sys/device_impl.h>`), so the library
/// reaches its fields only through the accessors of [`AutoconfKernel`].
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct device {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// `struct cfdriver` (`cfdriver_t`): an autoconf driver, opaque.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct cfdriver {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// `struct lwp`: a kernel thread, opaque (only compared with `curlwp`).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct lwp {
    _opaque: [u8; 0],
    _not_send_sync: PhantomData<*mut u8>,
}

/// The value `pserialize_read_enter()` returned, for `pserialize_read_exit`.
#[derive(Clone, Copy, Debug)]
pub struct Psz(pub core::ffi::c_int);

/// The kernel's global table of one kind of device switch (`bdevsw` or
/// `cdevsw`), as `sys/kern/subr_devsw.c` keeps it:
///
/// * `table` is `&Xdevsw`, the current array of `const struct Xdevsw *`.
///   It starts as config(1)'s static `Xdevsw0` (`sys` entries) and is
///   replaced once, with a store-release, by a copy with `MAXDEVSW` entries
///   when a major beyond the static ones is attached; no table is ever
///   freed.  Entries are published with store-release after the devsw's
///   localcount is initialized and unpublished (stored NULL) by detach.
/// * `max` is `&max_Xdevsws`: the length of the current table; it only
///   grows, and is stored (release) after the new table pointer.
/// * `sys` is `sys_Xdevsws`: the length of the static table (a constant).
/// * `refs` is `&Xdevswref`: NULL until the first `devsw_attach` of this
///   kind, then (stored with release, never changed or freed) an array of
///   `MAXDEVSW` `struct devswref { struct localcount *dr_lc; }`.  A
///   major's `dr_lc` is its reference count: set (initialized) before the
///   entry is published, cleared only after `devsw_detach` unpublished
///   the entry, waited out the read sections and drained it; NULL for a
///   major of config(1)'s static table that was never attached at run
///   time.
///
/// Invariant (established by the [`DevswKernel`] implementation): the
/// pointers are valid for the life of the kernel.
pub struct DevswTables<D> {
    /// `&Xdevsw`.
    pub table: NonNull<core::sync::atomic::AtomicPtr<core::sync::atomic::AtomicPtr<D>>>,
    /// `&max_Xdevsws`.
    pub max: NonNull<core::sync::atomic::AtomicI32>,
    /// `sys_Xdevsws`.
    pub sys: i32,
    /// `&Xdevswref`: the per-major reference counts.
    pub refs: NonNull<DevswRefs>,
}

/// `struct devswref *Xdevswref`: a pointer to the array of per-major
/// counts (`struct devswref` is one `struct localcount *`).
pub type DevswRefs =
    core::sync::atomic::AtomicPtr<core::sync::atomic::AtomicPtr<crate::localcount::LocalCount>>;

/// The kernel services of the devsw reference layer
/// ([`crate::devsw`]): pserialize(9) read sections, the devsw tables and
/// the `(cv, interlock)` pair devsw localcounts are drained with.
///
/// # Safety
///
/// Implementations guarantee:
///
/// * `pserialize_read_enter`/`pserialize_read_exit` delimit a pserialize(9)
///   read section: it does not sleep, and `xc_barrier(0)` (which
///   `devsw_detach` issues after unpublishing an entry) does not return
///   before every read section that was open when it was called has ended.
/// * The [`DevswTables`] returned are the kernel's, with the invariants and
///   publication protocol documented there, for the life of the kernel.
/// * `devsw_interlock` returns the `(devsw_cv, device_lock)` pair that
///   `devsw_detach` drains devsw localcounts with.
pub unsafe trait DevswKernel: Kernel {
    /// `pserialize_read_enter()`.
    fn pserialize_read_enter() -> Psz;
    /// `pserialize_read_exit(s)`.
    fn pserialize_read_exit(s: Psz);
    /// The block device table.
    fn bdevsw_tables() -> DevswTables<crate::devsw::bdevsw>;
    /// The character device table.
    fn cdevsw_tables() -> DevswTables<crate::devsw::cdevsw>;
    /// `(&devsw_cv, &device_lock)`.
    fn devsw_interlock() -> Interlock<Self>
    where
        Self: Sized;
}

/// A pserialize(9) read section (`pserialize_read_enter`/`_exit`).
#[must_use]
pub struct PszRead<K: DevswKernel> {
    s: Psz,
    _k: PhantomData<K>,
    _not_send: PhantomData<*mut u8>,
}

impl<K: DevswKernel> PszRead<K> {
    /// `s = pserialize_read_enter()`; `pserialize_read_exit(s)` on drop.
    #[inline(always)]
    pub fn new() -> Self {
        PszRead {
            s: K::pserialize_read_enter(),
            _k: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<K: DevswKernel> Default for PszRead<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: DevswKernel> Drop for PszRead<K> {
    #[inline(always)]
    fn drop(&mut self) {
        K::pserialize_read_exit(self.s);
    }
}

/// The kernel services of the autoconf reference layer
/// ([`crate::autoconf`]): autoconf's locks and a few fields of
/// `struct device`, reached through C accessors (the layout of `struct
/// device` is private to autoconf and never hard-coded here), plus the
/// autoconf functions the layer calls.
///
/// # Safety
///
/// Implementations guarantee:
///
/// * `config_misc_interlock` is `(&config_misc_cv, &config_misc_lock)` of
///   `sys/kern/subr_autoconf.c`: the pair device localcounts are released
///   and drained with, and that attach/detach state changes are made and
///   broadcast under; `alldevs_lock` is autoconf's `alldevs_lock`.
/// * The `device_*` accessors return the named field of a live `struct
///   device` (`dv_localcount`, `dv_del_gen != 0`, `dv_detach_committed`,
///   `dv_detach_done`, `dv_attaching`, `dv_detaching`, `dv_private`,
///   `dv_xname`), and `cfdriver_unit` returns `cd->cd_devs[unit]` or NULL
///   when `unit` is out of range; each is called only with the lock that
///   protects the field held, as documented on the method.
/// * `curlwp` is the calling LWP; `assert_sleepable` panics (DIAGNOSTIC)
///   where sleeping is not allowed.
/// * `cfdriver_lookup` and `config_detach_release` are autoconf's
///   `config_cfdriver_lookup` and `config_detach_release`.
pub unsafe trait AutoconfKernel: Kernel {
    /// `(&config_misc_cv, &config_misc_lock)`.
    fn config_misc_interlock() -> Interlock<Self>
    where
        Self: Sized;
    /// `&alldevs_lock` (a spin mutex at IPL_VM).
    fn alldevs_lock() -> NonNull<kmutex>;
    /// `cd->cd_devs[unit]`, or `None` if `unit` is out of range or the slot
    /// is empty.
    ///
    /// # Safety
    /// `cd` is a live cfdriver; the caller holds `alldevs_lock`.
    unsafe fn cfdriver_unit(
        cd: NonNull<cfdriver>,
        unit: core::ffi::c_int,
    ) -> Option<NonNull<device>>;
    /// `dv->dv_localcount`.
    ///
    /// # Safety
    /// `dv` is a live device (it cannot be freed during the call).
    unsafe fn device_localcount(dv: NonNull<device>) -> *mut crate::LocalCount;
    /// `dv->dv_del_gen != 0`: the device has been detached and unlinked.
    ///
    /// # Safety
    /// `dv` is a live device; the caller holds `alldevs_lock`.
    unsafe fn device_deleted(dv: NonNull<device>) -> bool;
    /// `dv->dv_detach_committed`.
    ///
    /// # Safety
    /// `dv` is a live device; the caller holds `config_misc_lock`.
    unsafe fn device_detach_committed(dv: NonNull<device>) -> bool;
    /// `dv->dv_detach_done`.
    ///
    /// # Safety
    /// `dv` is a live device whose detach cannot complete during the call.
    unsafe fn device_detach_done(dv: NonNull<device>) -> bool;
    /// `dv->dv_attaching` (NULL unless an LWP is still in `ca_attach`).
    ///
    /// # Safety
    /// `dv` is a live device; the caller holds `config_misc_lock`.
    unsafe fn device_attaching(dv: NonNull<device>) -> *const lwp;
    /// `dv->dv_detaching` (NULL unless an LWP is detaching it).
    ///
    /// # Safety
    /// `dv` is a live device; the caller holds `config_misc_lock`.
    unsafe fn device_detaching(dv: NonNull<device>) -> *const lwp;
    /// `device_private(dv)`.
    ///
    /// # Safety
    /// `dv` is a live device.
    unsafe fn device_private(dv: NonNull<device>) -> *mut core::ffi::c_void;
    /// `device_xname(dv)`, for messages.
    ///
    /// # Safety
    /// `dv` is a live device; the name lives as long as the device.
    unsafe fn device_xname(dv: NonNull<device>) -> *const core::ffi::c_char;
    /// `curlwp`.
    fn curlwp() -> *const lwp;
    /// `ASSERT_SLEEPABLE()`.
    fn assert_sleepable();
    /// `config_cfdriver_lookup(name)`.
    ///
    /// # Safety
    /// `name` is a NUL-terminated string.
    unsafe fn cfdriver_lookup(name: *const core::ffi::c_char) -> Option<NonNull<cfdriver>>;
    /// `kernconfig_lock()`: the kernel configuration lock (recursive),
    /// held by module load and unload; `config_cfdriver_detach` runs under
    /// it.
    fn kernconfig_lock();
    /// `kernconfig_unlock()`.
    fn kernconfig_unlock();
    /// `config_detach_release(dv, flags)`.
    ///
    /// # Safety
    /// `dv` is a live device on which the caller holds a reference, which
    /// this consumes.
    unsafe fn config_detach_release(
        dv: NonNull<device>,
        flags: core::ffi::c_int,
    ) -> core::ffi::c_int;
}
