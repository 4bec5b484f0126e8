//! The NetBSD kernel backend: every primitive is the kernel's own function,
//! except on amd64, where the fast path's `curlwp`, `kpreempt_disable`,
//! `kpreempt_enable` and `percpu_getref`/`percpu_putref` are inlined as the
//! kernel inlines them (`amd64.rs`; kernel objects only, `target_os = "none"`:
//! a rump kernel on an x86-64 host keeps the calls, its `curlwp` is not
//! `%gs`-relative).

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod amd64;

use core::ffi::{c_char, c_int, c_longlong, c_void};
use core::ptr::NonNull;

use crate::kernel::{
    AutoconfKernel, DevswKernel, DevswTables, Interlock, Kernel, KernelSlot, PanicMsg,
    PreemptDisabled, Psz, Spl,
};
use crate::sys::conf::{bdevsw, cdevsw};
use crate::sys::imports as k;
use crate::sys::localcount::LocalCount;
use crate::sys::types::{cfdriver, device, kcondvar, kmutex, lwp, percpu, XcFunc};

/// The running NetBSD kernel.
pub struct NetBSD;

// SAFETY: these are the kernel's percpu(9), kpreempt, spl, xcall(9),
// mutex(9), condvar(9) and panic(9), which have exactly the semantics the
// trait documents (that is where the trait's contract comes from).
unsafe impl Kernel for NetBSD {
    type Slot = KernelSlot;

    #[inline]
    fn percpu_alloc(size: usize) -> NonNull<percpu> {
        // SAFETY: percpu_alloc sleeps and never fails (returns non-NULL).
        let p = unsafe { k::percpu_alloc(size) };
        match NonNull::new(p) {
            Some(p) => p,
            None => Self::panic(PanicMsg::Text("localcount_init: percpu_alloc failed")),
        }
    }
    #[inline]
    unsafe fn percpu_free(pc: NonNull<percpu>, size: usize) {
        // SAFETY: caller's contract.
        unsafe { k::percpu_free(pc.as_ptr(), size) }
    }
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    #[inline(always)]
    unsafe fn percpu_getref(pc: NonNull<percpu>) -> NonNull<KernelSlot> {
        // percpu_getref: kpreempt_disable(), then this CPU's copy, inlined.
        amd64::kpreempt_disable();
        // SAFETY: caller's contract; preemption is disabled just above.
        let p = unsafe { amd64::percpu_ptr(pc.as_ptr()) };
        // SAFETY: this CPU's percpu area + the allocation's offset is
        // never NULL; an int64_t slot has the size of KernelSlot and at
        // least its alignment (LOCALCOUNT_SLOT_ALIGN <= ALIGNBYTES + 1,
        // CTASSERTed by the glue).
        unsafe { NonNull::new_unchecked(p.cast::<KernelSlot>()) }
    }
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    #[inline(always)]
    unsafe fn percpu_putref(_pc: NonNull<percpu>) {
        // percpu_putref: kpreempt_enable(), inlined.
        amd64::kpreempt_enable();
    }
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    #[inline(always)]
    unsafe fn percpu_slot(pc: NonNull<percpu>, _np: &PreemptDisabled<Self>) -> NonNull<KernelSlot> {
        // SAFETY: caller's contract; `_np` proves preemption is disabled.
        let p = unsafe { amd64::percpu_ptr(pc.as_ptr()) };
        // SAFETY: as in percpu_getref.
        unsafe { NonNull::new_unchecked(p.cast::<KernelSlot>()) }
    }
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    #[inline(always)]
    fn kpreempt_disable() {
        amd64::kpreempt_disable()
    }
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    #[inline(always)]
    fn kpreempt_enable() {
        amd64::kpreempt_enable()
    }

    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline(always)]
    unsafe fn percpu_getref(pc: NonNull<percpu>) -> NonNull<KernelSlot> {
        // SAFETY: caller's contract; the returned slot is an int64_t, which
        // has the size of KernelSlot and at least its alignment
        // (LOCALCOUNT_SLOT_ALIGN <= ALIGNBYTES + 1, CTASSERTed by the glue).
        let p = unsafe { k::percpu_getref(pc.as_ptr()) } as *mut KernelSlot;
        // SAFETY: percpu_getref never returns NULL for a live allocation.
        unsafe { NonNull::new_unchecked(p) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline(always)]
    unsafe fn percpu_putref(pc: NonNull<percpu>) {
        // SAFETY: caller's contract.
        unsafe { k::percpu_putref(pc.as_ptr()) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline(always)]
    unsafe fn percpu_slot(pc: NonNull<percpu>, _np: &PreemptDisabled<Self>) -> NonNull<KernelSlot> {
        // The kernel's functions: a nested percpu_getref/putref, whose
        // pointer stays this CPU's while `_np` keeps preemption disabled.
        // SAFETY: caller's contract.
        let p = unsafe { Self::percpu_getref(pc) };
        // SAFETY: pairs with the percpu_getref just above.
        unsafe { Self::percpu_putref(pc) };
        p
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline(always)]
    fn kpreempt_disable() {
        // SAFETY: callable in any context.
        unsafe { k::kpreempt_disable() }
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline(always)]
    fn kpreempt_enable() {
        // SAFETY: callable in any context; pairs with kpreempt_disable.
        unsafe { k::kpreempt_enable() }
    }
    #[inline(always)]
    fn splhigh() -> Spl {
        // SAFETY: callable in any context.
        Spl(unsafe { k::rust_localcount_splhigh() })
    }
    #[inline(always)]
    fn splx(s: Spl) {
        // SAFETY: `s` came from splhigh on this CPU (guard discipline).
        unsafe { k::rust_localcount_splx(s.0) }
    }
    unsafe fn xc_broadcast_wait(f: XcFunc, a: *mut c_void, b: *mut c_void) {
        // SAFETY: flags 0 = low-priority xcall; thread context (caller).
        unsafe { k::xc_wait(k::xc_broadcast(0, f, a, b)) }
    }
    #[inline]
    unsafe fn mutex_enter(m: NonNull<kmutex>) {
        // SAFETY: caller's contract.
        unsafe { k::mutex_enter(m.as_ptr()) }
    }
    #[inline]
    unsafe fn mutex_exit(m: NonNull<kmutex>) {
        // SAFETY: caller's contract.
        unsafe { k::mutex_exit(m.as_ptr()) }
    }
    #[inline]
    unsafe fn mutex_owned(m: NonNull<kmutex>) -> bool {
        // SAFETY: caller's contract.
        unsafe { k::mutex_owned(m.as_ptr()) != 0 }
    }
    #[inline]
    unsafe fn mutex_ownable(m: NonNull<kmutex>) -> bool {
        // SAFETY: caller's contract.
        unsafe { k::mutex_ownable(m.as_ptr()) != 0 }
    }
    #[inline]
    unsafe fn cv_wait(cv: NonNull<kcondvar>, m: NonNull<kmutex>) {
        // SAFETY: caller's contract.
        unsafe { k::cv_wait(cv.as_ptr(), m.as_ptr()) }
    }
    #[inline]
    unsafe fn cv_broadcast(cv: NonNull<kcondvar>) {
        // SAFETY: caller's contract.
        unsafe { k::cv_broadcast(cv.as_ptr()) }
    }
    unsafe fn cv_timedwait_ms(cv: NonNull<kcondvar>, m: NonNull<kmutex>, ms: u32) -> bool {
        let ms = ms.min(c_int::MAX as u32) as c_int;
        // SAFETY: caller's contract.
        unsafe { k::rust_cv_timedwait_ms(cv.as_ptr(), m.as_ptr(), ms) != 0 }
    }
    fn uptime_ms() -> u64 {
        // SAFETY: the glue reads the uptime clock; any context.
        unsafe { k::rust_uptime_ms() }
    }
    unsafe fn report_drain_wait(name: *const c_char, outstanding: i64, secs: u64) {
        // SAFETY: the format matches the arguments (%s: the caller's
        // NUL-terminated name; %lld: long long; %llu: unsigned long long).
        unsafe {
            k::printf(
                c"%s: %lld references outstanding after %llu s\n".as_ptr(),
                name,
                outstanding as core::ffi::c_longlong,
                secs as core::ffi::c_ulonglong,
            );
        }
    }

    #[cfg(feature = "broken-release-no-preempt")]
    fn preempt_point() {
        // SAFETY: yields only from preemptible thread context (see glue).
        unsafe { k::rust_localcount_preempt_point() }
    }

    #[cfg(feature = "broken-percpu-no-spl")]
    fn interrupt_point() {
        // SAFETY: a short busy-wait (see glue); any context.
        unsafe { k::rust_localcount_interrupt_point() }
    }

    #[cold]
    fn panic(msg: PanicMsg<'_>) -> ! {
        // The kernel formats: each message is one printf format, strings
        // passed as "%.*s" (Rust strings are not NUL-terminated).
        fn s(x: &str) -> (c_int, *const c_char) {
            (x.len().min(c_int::MAX as usize) as c_int, x.as_ptr().cast())
        }
        // SAFETY: every format below matches its arguments (%.*s: int and
        // pointer to that many bytes; %s: a NUL-terminated device name;
        // %p: pointer; %d: int; %lld: long long), and panic() never
        // returns.
        unsafe {
            match msg {
                PanicMsg::Assertion {
                    expr,
                    file,
                    line,
                    detail,
                } => {
                    let (el, ep) = s(expr);
                    let (fl, fp) = s(file);
                    let line = line as c_int;
                    match detail {
                        Some(&PanicMsg::NegativeTotal(p, t)) => k::panic(
                            c"kernel diagnostic assertion \"%.*s\" failed: file \"%.*s\", line %d negatively referenced localcount: %p, %lld".as_ptr(),
                            el, ep, fl, fp, line, p, t as c_longlong,
                        ),
                        Some(&PanicMsg::DeviceName(name)) => k::panic(
                            c"kernel diagnostic assertion \"%.*s\" failed: file \"%.*s\", line %d %s".as_ptr(),
                            el, ep, fl, fp, line, name,
                        ),
                        Some(&PanicMsg::NoSoftc(name)) => k::panic(
                            c"kernel diagnostic assertion \"%.*s\" failed: file \"%.*s\", line %d device_lookup_private_acquire: %s has no softc".as_ptr(),
                            el, ep, fl, fp, line, name,
                        ),
                        _ => k::panic(
                            c"kernel diagnostic assertion \"%.*s\" failed: file \"%.*s\", line %d ".as_ptr(),
                            el, ep, fl, fp, line,
                        ),
                    }
                }
                PanicMsg::Text(t) => {
                    let (tl, tp) = s(t);
                    k::panic(c"%.*s".as_ptr(), tl, tp)
                }
                PanicMsg::NullArgument(func, arg) => {
                    let ((fl, fp), (al, ap)) = (s(func), s(arg));
                    k::panic(c"%.*s: NULL %.*s".as_ptr(), fl, fp, al, ap)
                }
                PanicMsg::NotInitialized(p) => {
                    k::panic(c"localcount %p is not initialized".as_ptr(), p)
                }
                PanicMsg::ReleasedAfterDrain(p) => k::panic(
                    c"localcount_release: localcount %p released after drain".as_ptr(),
                    p,
                ),
                PanicMsg::NegativeTotal(p, t) => k::panic(
                    c"negatively referenced localcount: %p, %lld".as_ptr(),
                    p,
                    t as c_longlong,
                ),
                PanicMsg::DeviceName(name) => k::panic(c"%s".as_ptr(), name),
                PanicMsg::NoLocalcount(func, dv) => {
                    let (fl, fp) = s(func);
                    k::panic(c"%.*s: device %p has no localcount".as_ptr(), fl, fp, dv)
                }
                PanicMsg::NoSoftc(name) => k::panic(
                    c"device_lookup_private_acquire: %s has no softc".as_ptr(),
                    name,
                ),
                PanicMsg::Rust { file, line } => {
                    let (fl, fp) = s(file);
                    k::panic(
                        c"rust_localcount: Rust panic at %.*s:%d".as_ptr(),
                        fl,
                        fp,
                        line as c_int,
                    )
                }
            }
        }
    }
}

/// A kernel object's address that the kernel guarantees non-NULL.
#[inline(always)]
fn kaddr<T>(p: *mut T) -> NonNull<T> {
    match NonNull::new(p) {
        Some(p) => p,
        None => NetBSD::panic(PanicMsg::Text("rust_localcount: NULL kernel object")),
    }
}

// SAFETY: pserialize(9) and the globals of subr_devsw.c / config(1)'s
// devsw.c, which have exactly the properties DevswKernel documents (the
// trait's contract is written from them): devsw_detach unpublishes, then
// xc_barrier(0)s, then drains with (devsw_cv, device_lock).
unsafe impl DevswKernel for NetBSD {
    #[inline(always)]
    fn pserialize_read_enter() -> Psz {
        // SAFETY: callable in any context; paired by PszRead.
        Psz(unsafe { k::pserialize_read_enter() })
    }
    #[inline(always)]
    fn pserialize_read_exit(s: Psz) {
        // SAFETY: `s` came from pserialize_read_enter on this CPU.
        unsafe { k::pserialize_read_exit(s.0) }
    }
    #[inline(always)]
    fn bdevsw_tables() -> DevswTables<bdevsw> {
        DevswTables {
            table: kaddr((&raw const k::bdevsw).cast_mut()),
            max: kaddr((&raw const k::max_bdevsws).cast_mut()),
            // SAFETY: a constant initialized by config(1).
            sys: unsafe { k::sys_bdevsws },
            refs: kaddr((&raw const k::bdevswref).cast_mut()),
        }
    }
    #[inline(always)]
    fn cdevsw_tables() -> DevswTables<cdevsw> {
        DevswTables {
            table: kaddr((&raw const k::cdevsw).cast_mut()),
            max: kaddr((&raw const k::max_cdevsws).cast_mut()),
            // SAFETY: a constant initialized by config(1).
            sys: unsafe { k::sys_cdevsws },
            refs: kaddr((&raw const k::cdevswref).cast_mut()),
        }
    }
    #[inline]
    fn devsw_interlock() -> Interlock<Self> {
        // SAFETY: the address of devsw_cv (initialized by devsw_init at
        // boot).
        let cv = kaddr(unsafe { k::rust_devsw_cv() });
        let mtx = kaddr(&raw mut k::device_lock);
        // SAFETY: both are initialized kernel objects that live forever.
        unsafe { Interlock::new(cv, mtx) }
    }
}

// SAFETY: autoconf's locks and struct device fields through the patch's
// accessors, and autoconf's own functions: exactly what AutoconfKernel
// documents.
unsafe impl AutoconfKernel for NetBSD {
    #[inline]
    fn config_misc_interlock() -> Interlock<Self> {
        // SAFETY: accessors returning the addresses of autoconf's statics.
        let (cv, mtx) = unsafe { (k::rust_config_misc_cv(), k::rust_config_misc_lock()) };
        // SAFETY: initialized by config_init at boot; they live forever.
        unsafe { Interlock::new(kaddr(cv), kaddr(mtx)) }
    }
    #[inline]
    fn alldevs_lock() -> NonNull<kmutex> {
        // SAFETY: accessor returning the address of autoconf's static.
        kaddr(unsafe { k::rust_alldevs_lock() })
    }
    #[inline]
    unsafe fn cfdriver_unit(cd: NonNull<cfdriver>, unit: c_int) -> Option<NonNull<device>> {
        // SAFETY: caller's contract (live cfdriver, alldevs_lock held).
        NonNull::new(unsafe { k::rust_cfdriver_unit(cd.as_ptr(), unit) })
    }
    #[inline]
    unsafe fn device_localcount(dv: NonNull<device>) -> *mut LocalCount {
        // SAFETY: caller's contract (live device).
        unsafe { k::rust_device_localcount(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_deleted(dv: NonNull<device>) -> bool {
        // SAFETY: caller's contract (live device, alldevs_lock held).
        unsafe { k::rust_device_deleted(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_detach_committed(dv: NonNull<device>) -> bool {
        // SAFETY: caller's contract (live device, config_misc_lock held).
        unsafe { k::rust_device_detach_committed(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_detach_done(dv: NonNull<device>) -> bool {
        // SAFETY: caller's contract (live device).
        unsafe { k::rust_device_detach_done(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_attaching(dv: NonNull<device>) -> *const lwp {
        // SAFETY: caller's contract (live device, config_misc_lock held).
        unsafe { k::rust_device_attaching(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_detaching(dv: NonNull<device>) -> *const lwp {
        // SAFETY: caller's contract (live device, config_misc_lock held).
        unsafe { k::rust_device_detaching(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_private(dv: NonNull<device>) -> *mut c_void {
        // SAFETY: caller's contract (live device).
        unsafe { k::device_private(dv.as_ptr()) }
    }
    #[inline]
    unsafe fn device_xname(dv: NonNull<device>) -> *const c_char {
        // SAFETY: caller's contract (live device).
        unsafe { k::device_xname(dv.as_ptr()) }
    }
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    #[inline]
    fn curlwp() -> *const lwp {
        amd64::curlwp()
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline]
    fn curlwp() -> *const lwp {
        // SAFETY: callable in any context.
        unsafe { k::rust_localcount_curlwp() }
    }
    #[inline]
    fn assert_sleepable() {
        // SAFETY: callable in any context (panics where it must).
        unsafe { k::rust_localcount_assert_sleepable() }
    }
    #[inline]
    unsafe fn cfdriver_lookup(name: *const c_char) -> Option<NonNull<cfdriver>> {
        // SAFETY: caller's contract (NUL-terminated name); thread context.
        NonNull::new(unsafe { k::config_cfdriver_lookup(name) })
    }
    #[inline]
    fn kernconfig_lock() {
        // SAFETY: thread context (callers assert it); recursive.
        unsafe { k::kernconfig_lock() }
    }
    #[inline]
    fn kernconfig_unlock() {
        // SAFETY: pairs with kernconfig_lock.
        unsafe { k::kernconfig_unlock() }
    }
    #[inline]
    unsafe fn config_detach_release(dv: NonNull<device>, flags: c_int) -> c_int {
        // SAFETY: caller's contract (a held reference on a live device).
        unsafe { k::config_detach_release(dv.as_ptr(), flags) }
    }
}
