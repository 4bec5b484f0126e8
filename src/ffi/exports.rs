//! The C API: NetBSD-current's `<sys/localcount.h>`.
//!
//! Each function checks its pointer arguments, turns them into references
//! and calls [`crate::localcount`].  The comment blocks are the contract, in
//! the style of `subr_localcount.c`; cbindgen copies them into the header.
//! They are also the safety contracts of these `unsafe` functions (hence no
//! separate `# Safety` sections, which would be Rust noise in a C header).
// The tab-indented text is NetBSD comment style for the generated header.
#![allow(clippy::missing_safety_doc, clippy::tabs_in_doc_comments)]

use core::ptr::NonNull;

use crate::backend::Current;
use crate::kernel::{kcondvar, kmutex, Interlock, Kernel, PanicMsg};
use crate::localcount::{self, LocalCount};

#[cold]
#[inline(never)]
fn null_argument(what: &'static str, arg: &'static str) -> ! {
    Current::panic(PanicMsg::NullArgument(what, arg))
}

#[inline(always)]
fn lc_ref<'a>(lc: *const LocalCount, what: &'static str) -> &'a LocalCount {
    if lc.is_null() {
        null_argument(what, "localcount");
    }
    // SAFETY: non-NULL; the C caller passes a struct localcount that lives
    // across the call (every function's contract below), and C never touches
    // its fields while our functions run except through these functions.
    unsafe { LocalCount::from_ptr(lc) }
}

#[inline(always)]
fn interlock_ref(cv: *mut kcondvar, mtx: *mut kmutex, what: &'static str) -> Interlock<Current> {
    match (NonNull::new(cv), NonNull::new(mtx)) {
        // SAFETY: non-NULL, and the contract of the exported function says
        // they are an initialized condvar and mutex.
        (Some(cv), Some(mtx)) => unsafe { Interlock::new(cv, mtx) },
        _ => null_argument(what, "condvar or interlock"),
    }
}

/// localcount_init(lc)
///
///	Initialize a localcount object: no drain in progress, every
///	CPU's count zero.  The object must be zero-filled or
///	previously finalized (lc_refcnt is not touched).
///
///	Context: thread; may sleep (percpu_alloc).  Cannot fail.
#[no_mangle]
pub unsafe extern "C" fn localcount_init(lc: *mut LocalCount) {
    localcount::init::<Current>(lc_ref(lc, "localcount_init"))
}

/// localcount_drain(lc, cv, interlock)
///
///	Wait for all acquired references to lc to drain.  Caller must
///	hold interlock; localcount_drain releases it during cross-calls
///	and waits on cv.  The cv and interlock passed here must be the
///	same as are passed to localcount_release for this lc.
///
///	Caller must guarantee that no new references can be acquired
///	with localcount_acquire before calling localcount_drain (e.g.
///	by removing lc from the table it was found in and waiting out
///	readers with pserialize_perform or xc_barrier).  Drains at most
///	once; afterwards only localcount_fini may be called.
///
///	Context: thread; sleeps.  Returns with interlock held.
///	Panics (DIAGNOSTIC) if interlock is not held, if lc is already
///	being drained or drained, or if more references were released
///	than acquired.
#[no_mangle]
pub unsafe extern "C" fn localcount_drain(
    lc: *mut LocalCount,
    cv: *mut kcondvar,
    interlock: *mut kmutex,
) {
    let il = interlock_ref(cv, interlock, "localcount_drain");
    localcount::drain::<Current>(lc_ref(lc, "localcount_drain"), il)
}

/// localcount_fini(lc)
///
///	Finalize a drained localcount object, freeing its per-CPU
///	storage.  It may then be initialized again with
///	localcount_init, or freed.
///
///	Context: thread; may sleep (percpu_free).
///	Panics (DIAGNOSTIC) if lc has not been drained.
#[no_mangle]
pub unsafe extern "C" fn localcount_fini(lc: *mut LocalCount) {
    localcount::fini::<Current>(lc_ref(lc, "localcount_fini"))
}

/// localcount_acquire(lc)
///
///	Acquire a reference to lc.  The object must not be draining or
///	drained: the caller must have found it in a table from which
///	the drainer removes it first (e.g. inside a pserialize read
///	section, or under a lock the drainer takes).
///
///	Context: any (thread, soft or hard interrupt, with locks held,
///	inside a pserialize read section).  Never sleeps; touches only
///	this CPU's count, with preemption and interrupts blocked.
///	Panics (DIAGNOSTIC) if a drain has started; with DEBUG and
///	LOCKDEBUG, "counter overflow" after 2^32 references.
#[no_mangle]
pub unsafe extern "C" fn localcount_acquire(lc: *mut LocalCount) {
    localcount::acquire::<Current>(lc_ref(lc, "localcount_acquire"))
}

/// localcount_release(lc, cv, interlock)
///
///	Release a reference to lc.  If a drain is in progress, take
///	interlock, decrement the drainer's total and, at zero, wake it
///	with cv_broadcast.  The cv and interlock must be the ones that
///	localcount_drain is (or will be) called with.
///
///	Context: any in which interlock may be taken; the caller must
///	not hold interlock.  Without a drain in progress it never
///	blocks; during one it may block on interlock.  With DEBUG and
///	LOCKDEBUG, panics "counter underflow" on more releases than
///	acquires.  Panics if lc has already been drained.
#[no_mangle]
pub unsafe extern "C" fn localcount_release(
    lc: *mut LocalCount,
    cv: *mut kcondvar,
    interlock: *mut kmutex,
) {
    let il = interlock_ref(cv, interlock, "localcount_release");
    localcount::release::<Current>(lc_ref(lc, "localcount_release"), il)
}

/// localcount_debug_refcnt(lc)
///
///	Return the total reference count of lc as maintained with DEBUG
///	and LOCKDEBUG (approximate: the drain slow path does not update
///	it); always 0 otherwise.
///
///	Context: any.
#[no_mangle]
pub unsafe extern "C" fn localcount_debug_refcnt(lc: *const LocalCount) -> u32 {
    let lc = lc_ref(lc, "localcount_debug_refcnt");
    if crate::diag::LC_DEBUG {
        lc.refcnt()
    } else {
        0
    }
}

/// Defined only by a library built for a kernel with DEBUG and LOCKDEBUG;
/// the kernel glue references the one matching its own options, so that a
/// mismatched kernel fails to link instead of miscounting.
#[cfg(feature = "lc-debug")]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static localcount_rust_built_debug: u8 = 1;

/// Defined only by a library built for a kernel without DEBUG and
/// LOCKDEBUG; see `localcount_rust_built_debug`.
#[cfg(not(feature = "lc-debug"))]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static localcount_rust_built_nodebug: u8 = 1;
