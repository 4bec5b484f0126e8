//! The NetBSD kernel backend: every primitive is the kernel's own function.

use core::ffi::{c_char, c_int, c_longlong, c_void};
use core::ptr::NonNull;

use crate::ffi::kernel as k;
use crate::kernel::{kcondvar, kmutex, percpu, Kernel, KernelSlot, PanicMsg, Spl, XcFunc};

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
    #[inline(always)]
    unsafe fn percpu_getref(pc: NonNull<percpu>) -> NonNull<KernelSlot> {
        // SAFETY: caller's contract; the returned slot is an int64_t, which
        // has the size and alignment of KernelSlot on every kernel target.
        let p = unsafe { k::percpu_getref(pc.as_ptr()) } as *mut KernelSlot;
        // SAFETY: percpu_getref never returns NULL for a live allocation.
        unsafe { NonNull::new_unchecked(p) }
    }
    #[inline(always)]
    unsafe fn percpu_putref(pc: NonNull<percpu>) {
        // SAFETY: caller's contract.
        unsafe { k::percpu_putref(pc.as_ptr()) }
    }
    #[inline(always)]
    fn kpreempt_disable() {
        // SAFETY: callable in any context.
        unsafe { k::kpreempt_disable() }
    }
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

    #[cfg(feature = "broken-release-no-preempt")]
    fn preempt_point() {
        // SAFETY: yields only from preemptible thread context (see glue).
        unsafe { k::rust_localcount_preempt_point() }
    }

    #[cold]
    fn panic(msg: PanicMsg<'_>) -> ! {
        // The kernel formats: each message is one printf format, strings
        // passed as "%.*s" (Rust strings are not NUL-terminated).
        fn s(x: &str) -> (c_int, *const c_char) {
            (x.len().min(c_int::MAX as usize) as c_int, x.as_ptr().cast())
        }
        // SAFETY: every format below matches its arguments (%.*s: int and
        // pointer to that many bytes; %p: pointer; %d: int; %lld: long
        // long), and panic() never returns.
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
