//! The C API: NetBSD-current's `<sys/localcount.h>`, and the seed's devsw
//! and autoconf reference-acquire functions built on it.
//!
//! Each function checks its pointer arguments, turns them into references
//! and calls [`crate::localcount`].  The comment blocks are the contract, in
//! the style of `subr_localcount.c`; cbindgen copies them into the header.
//! They are also the safety contracts of these `unsafe` functions (hence no
//! separate `# Safety` sections, which would be Rust noise in a C header).
// The tab-indented text is NetBSD comment style for the generated header.
#![allow(clippy::missing_safety_doc, clippy::tabs_in_doc_comments)]

use core::ffi::{c_char, c_int, c_void};
use core::ptr::NonNull;

use crate::autoconf;
use crate::backend::Current;
use crate::devsw;
use crate::kernel::{GetInterlock, Interlock, Kernel, PanicMsg};
use crate::localcount;
use crate::sys::conf::{bdevsw, cdevsw};
use crate::sys::localcount::LocalCount;
use crate::sys::types::{cfdriver, dev_t, device, kcondvar, kmutex};

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

/// `lc` as a pointer, for the functions after which the object may be
/// freed by its drainer (the release paths): see [`localcount::release`].
#[inline(always)]
fn lc_ptr(lc: *mut LocalCount, what: &'static str) -> NonNull<LocalCount> {
    match NonNull::new(lc) {
        Some(lc) => lc,
        None => null_argument(what, "localcount"),
    }
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

/// `localcount_release`'s `(cv, interlock)`, checked for NULL only when
/// the release uses them (a drain is running): C's localcount_release
/// never touches them on its fast path either.  Two words, so that the
/// fast path passes them to the slow path in registers.
#[derive(Clone, Copy)]
struct ReleaseInterlock {
    cv: *mut kcondvar,
    mtx: *mut kmutex,
}

impl GetInterlock<Current> for ReleaseInterlock {
    #[inline(always)]
    fn interlock(self) -> Interlock<Current> {
        interlock_ref(self.cv, self.mtx, "localcount_release")
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

/// localcount_drain_named(lc, cv, interlock, name)
///
///	localcount_drain, which is never silent: once it has waited 5 s
///	it prints "NAME: N references outstanding after S s" on the
///	console, and again whenever its wait has doubled (10, 20, 40 s,
///	...).  For devsw_detach and config_detach, so that a stuck
///	detach names the driver and what it waits for.
///
///	Context: thread; sleeps.  Returns with interlock held.  Panics
///	as localcount_drain.
#[no_mangle]
pub unsafe extern "C" fn localcount_drain_named(
    lc: *mut LocalCount,
    cv: *mut kcondvar,
    interlock: *mut kmutex,
    name: *const c_char,
) {
    let il = interlock_ref(cv, interlock, "localcount_drain_named");
    if name.is_null() {
        null_argument("localcount_drain_named", "name");
    }
    // SAFETY: name is non-NULL and, by the contract above, a C string
    // that the caller keeps until we return.
    unsafe { localcount::drain_named::<Current>(lc_ref(lc, "localcount_drain_named"), il, name) }
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
    let il = ReleaseInterlock { cv, mtx: interlock };
    localcount::release::<Current>(lc_ptr(lc, "localcount_release"), il)
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

/* ------------------------------------------------------------------ */
/* devsw: the seed's reference-acquire layer (<sys/conf.h> devsw).     */

/// bdevsw_lookup_acquire(dev)
///
///	Look up the block device switch of major(dev) and acquire a
///	reference to it, which the caller must drop with
///	bdevsw_release.  Returns NULL if dev is NODEV or no bdevsw is
///	attached at that major.  The reference is on the bdevsw's
///	d_localcount, shared by every major it is attached at: while it
///	is held, the devsw_detach that detaches the bdevsw from its last
///	major waits (it drains d_localcount), so a modular driver cannot
///	be unloaded under the caller.  (A detach of one of several
///	majors waits for the references taken through that major with
///	bdevsw_lookup_acquire_major, as bdev_open takes them.)
///
///	A bdevsw without d_localcount (built-in drivers) is returned
///	without a reference: then this is bdevsw_lookup, and
///	bdevsw_release does nothing.
///
///	Context: any in which a pserialize(9) read section may be
///	entered (thread, soft or hard interrupt).  Never sleeps.
#[no_mangle]
pub unsafe extern "C" fn bdevsw_lookup_acquire(dev: dev_t) -> *const bdevsw {
    match devsw::lookup_acquire::<Current, bdevsw>(dev) {
        Some(d) => d.as_ptr(),
        None => core::ptr::null(),
    }
}

/// cdevsw_lookup_acquire(dev)
///
///	Look up the character device switch of major(dev) and acquire
///	a reference to it, which the caller must drop with
///	cdevsw_release.  Returns NULL if dev is NODEV or no cdevsw is
///	attached at that major.  See bdevsw_lookup_acquire.
///
///	Context: any in which a pserialize(9) read section may be
///	entered.  Never sleeps.
#[no_mangle]
pub unsafe extern "C" fn cdevsw_lookup_acquire(dev: dev_t) -> *const cdevsw {
    match devsw::lookup_acquire::<Current, cdevsw>(dev) {
        Some(d) => d.as_ptr(),
        None => core::ptr::null(),
    }
}

/// bdevsw_release(bdev)
///
///	Release a reference acquired with bdevsw_lookup_acquire, which
///	returned bdev (non-NULL).  Does nothing for a bdevsw without
///	d_localcount.  If devsw_detach is waiting for the reference, it
///	is woken.
///
///	Context: thread or soft interrupt: during a detach it takes
///	device_lock, which the caller must not hold.
#[no_mangle]
pub unsafe extern "C" fn bdevsw_release(bdev: *const bdevsw) {
    if bdev.is_null() {
        null_argument("bdevsw_release", "bdevsw");
    }
    // SAFETY: non-NULL (checked above).
    devsw::release::<Current, bdevsw>(unsafe { NonNull::new_unchecked(bdev.cast_mut()) })
}

/// cdevsw_release(cdev)
///
///	Release a reference acquired with cdevsw_lookup_acquire, which
///	returned cdev (non-NULL).  See bdevsw_release.
///
///	Context: thread or soft interrupt; device_lock not held.
#[no_mangle]
pub unsafe extern "C" fn cdevsw_release(cdev: *const cdevsw) {
    if cdev.is_null() {
        null_argument("cdevsw_release", "cdevsw");
    }
    // SAFETY: non-NULL (checked above).
    devsw::release::<Current, cdevsw>(unsafe { NonNull::new_unchecked(cdev.cast_mut()) })
}

/// bdevsw_lookup_acquire_major(dev, &lc)
///
///	Look up the block device switch of major(dev) and acquire a
///	reference to that major, as NetBSD-current's file-static
///	bdevsw_lookup_acquire(dev, &lc) does: for bdev_open, which
///	holds it across d_open.  Returns NULL if there is no bdevsw at
///	that major; else sets *lcp to the major's count (NULL for a
///	major of config(1)'s static tables, which is never drained), to
///	pass to bdevsw_release_major.  devsw_detach of that major waits
///	until the reference is released, whether or not the bdevsw has
///	d_localcount and however many majors it is attached at.
///
///	Context: any in which a pserialize(9) read section may be
///	entered.  Never sleeps.
#[no_mangle]
pub unsafe extern "C" fn bdevsw_lookup_acquire_major(
    dev: dev_t,
    lcp: *mut *mut LocalCount,
) -> *const bdevsw {
    lookup_major::<bdevsw>(dev, lcp, "bdevsw_lookup_acquire_major")
}

/// cdevsw_lookup_acquire_major(dev, &lc)
///
///	As bdevsw_lookup_acquire_major, for the character device switch
///	of major(dev): for cdev_open.
///
///	Context: any in which a pserialize(9) read section may be
///	entered.  Never sleeps.
#[no_mangle]
pub unsafe extern "C" fn cdevsw_lookup_acquire_major(
    dev: dev_t,
    lcp: *mut *mut LocalCount,
) -> *const cdevsw {
    lookup_major::<cdevsw>(dev, lcp, "cdevsw_lookup_acquire_major")
}

#[inline(always)]
fn lookup_major<D: devsw::Devsw>(
    dev: dev_t,
    lcp: *mut *mut LocalCount,
    what: &'static str,
) -> *const D {
    if lcp.is_null() {
        null_argument(what, "lcp");
    }
    let (d, lc) = match devsw::lookup_acquire_major::<Current, D>(dev) {
        Some((d, lc)) => (d.as_ptr().cast_const(), lc),
        None => (core::ptr::null(), core::ptr::null_mut()),
    };
    // SAFETY: non-NULL, and the caller passes a pointer to its variable.
    unsafe { lcp.write(lc) };
    d
}

/// bdevsw_release_major(bdev, lc)
///
///	Release the reference that bdevsw_lookup_acquire_major took,
///	which returned bdev and set lc (NULL: nothing to release).  If
///	devsw_detach is waiting for it, it is woken.
///
///	Context: thread or soft interrupt: during a detach it takes
///	device_lock, which the caller must not hold.
#[no_mangle]
pub unsafe extern "C" fn bdevsw_release_major(bdev: *const bdevsw, lc: *mut LocalCount) {
    if bdev.is_null() {
        null_argument("bdevsw_release_major", "bdevsw");
    }
    devsw::release_major::<Current>(lc)
}

/// cdevsw_release_major(cdev, lc)
///
///	Release the reference that cdevsw_lookup_acquire_major took.
///	See bdevsw_release_major.
///
///	Context: thread or soft interrupt; device_lock not held.
#[no_mangle]
pub unsafe extern "C" fn cdevsw_release_major(cdev: *const cdevsw, lc: *mut LocalCount) {
    if cdev.is_null() {
        null_argument("cdevsw_release_major", "cdevsw");
    }
    devsw::release_major::<Current>(lc)
}

/// devsw_localcount_install(dst, src)
///
///	Make dst (a devsw's d_localcount, zero-filled or finalized) the
///	localcount that localcount_init made in src, which was never
///	used; src is left zero-filled and dst's lc_refcnt zero.  For
///	devsw_attach, which initialises the localcount before it takes
///	device_lock (percpu_alloc may send an xcall and wait) and
///	installs it under the lock when the devsw turns out to be
///	attached nowhere yet.
///
///	Context: any; never sleeps.  Panics (DIAGNOSTIC) if dst is in
///	use.
#[no_mangle]
pub unsafe extern "C" fn devsw_localcount_install(dst: *mut LocalCount, src: *mut LocalCount) {
    localcount::install_unused::<Current>(
        lc_ref(dst, "devsw_localcount_install"),
        lc_ref(src, "devsw_localcount_install"),
    )
}

/// devsw_localcount_discard(lc)
///
///	Free the per-CPU storage of a localcount that localcount_init
///	made and that nobody ever saw, without the drain that
///	localcount_fini requires; nothing for a zero-filled one (e.g.
///	one that devsw_localcount_install moved away).
///
///	Context: thread; may sleep (percpu_free).
#[no_mangle]
pub unsafe extern "C" fn devsw_localcount_discard(lc: *mut LocalCount) {
    localcount::discard_unused::<Current>(lc_ref(lc, "devsw_localcount_discard"))
}

/* ------------------------------------------------------------------ */
/* autoconf: device references (<sys/device.h>).                       */

#[inline(always)]
fn dv_ref(dv: *mut device, what: &'static str) -> NonNull<device> {
    match NonNull::new(dv) {
        Some(dv) => dv,
        None => null_argument(what, "device"),
    }
}

#[inline(always)]
fn cd_ref(cd: *mut cfdriver, what: &'static str) -> NonNull<cfdriver> {
    match NonNull::new(cd) {
        Some(cd) => cd,
        None => null_argument(what, "cfdriver"),
    }
}

/// device_lookup_acquire(cd, unit)
///
///	Look up device unit of driver cd and return it with a reference
///	that the caller must drop with device_release (or pass to
///	device_detach_release).  Returns NULL if there is no such
///	device or its detach has committed.
///
///	=> If the device is still attaching (in another LWP), waits
///	   until its attach routine has returned.
///	=> If the device is detaching, waits until its detach routine
///	   has returned: the lookup then fails if the detach committed
///	   and succeeds if it backed out (e.g. EBUSY).
///
///	Context: thread; may sleep.  Takes config_misc_lock.
#[no_mangle]
pub unsafe extern "C" fn device_lookup_acquire(cd: *mut cfdriver, unit: c_int) -> *mut device {
    let cd = cd_ref(cd, "device_lookup_acquire");
    match autoconf::lookup_acquire::<Current>(cd, unit) {
        Some(dv) => dv.as_ptr(),
        None => core::ptr::null_mut(),
    }
}

/// device_acquire(dv)
///
///	Acquire a reference to dv.  The caller must make sure that the
///	detach routine of dv cannot return before this call, e.g. by
///	holding a lock that the detach path also takes, or already
///	holding a reference.  Release with device_release.
///
///	Context: any; never sleeps.  Panics (DIAGNOSTIC) if dv has
///	already been detached.
#[no_mangle]
pub unsafe extern "C" fn device_acquire(dv: *mut device) {
    autoconf::acquire::<Current>(dv_ref(dv, "device_acquire"))
}

/// device_release(dv)
///
///	Release a reference to dv acquired with device_acquire,
///	device_lookup_acquire, device_find_by_driver_unit_acquire,
///	device_lookup_private_acquire or one of the config_*_acquire
///	attach functions.  If a detach is waiting for the references to
///	drain, the last release wakes it.
///
///	Context: thread or soft interrupt; the caller must not hold
///	config_misc_lock.
#[no_mangle]
pub unsafe extern "C" fn device_release(dv: *mut device) {
    autoconf::release::<Current>(dv_ref(dv, "device_release"))
}

/// device_find_by_driver_unit_acquire(name, unit)
///
///	Like device_lookup_acquire, for the driver called name (e.g.
///	"wd"): returns device unit of it with a reference that the
///	caller must drop with device_release, or NULL.
///
///	Context: thread; may sleep.
#[no_mangle]
pub unsafe extern "C" fn device_find_by_driver_unit_acquire(
    name: *const c_char,
    unit: c_int,
) -> *mut device {
    if name.is_null() {
        null_argument("device_find_by_driver_unit_acquire", "name");
    }
    // SAFETY: non-NULL; the caller passes a NUL-terminated driver name.
    match unsafe { autoconf::find_by_driver_unit_acquire::<Current>(name, unit) } {
        Some(dv) => dv.as_ptr(),
        None => core::ptr::null_mut(),
    }
}

/// device_lookup_private_acquire(cd, unit)
///
///	Like device_lookup_acquire, but return the device's private
///	data (softc) instead of the device.  The reference is held on
///	the device: the caller must later call device_release with the
///	device_t that the softc records (e.g. sc->sc_dev), so the
///	driver must have a softc that does.  Returns NULL if there is
///	no such device.
///
///	Context: thread; may sleep.  Panics (DIAGNOSTIC) if the device
///	has no softc.
#[no_mangle]
pub unsafe extern "C" fn device_lookup_private_acquire(
    cd: *mut cfdriver,
    unit: c_int,
) -> *mut c_void {
    let cd = cd_ref(cd, "device_lookup_private_acquire");
    match autoconf::lookup_private_acquire::<Current>(cd, unit) {
        Some(sc) => sc.as_ptr(),
        None => core::ptr::null_mut(),
    }
}

/// device_detach_release(dv, flags)
///
///	Detach dv, consuming the caller's reference to it (acquired
///	with device_lookup_acquire or device_acquire) whatever the
///	outcome; the seed's name for config_detach_release, which it
///	calls.  Waits for any attach or other detach of dv, runs the
///	driver's detach routine and, if that succeeds, waits for every
///	other reference to dv to be released.  Returns 0, or the
///	driver's error (e.g. EBUSY: the device stays attached and
///	lookups succeed again), or ENOENT if dv was already detached.
///	flags are config_detach's (DETACH_FORCE, DETACH_QUIET, ...).
///
///	Context: thread; sleeps.  Takes the kernel lock.
#[no_mangle]
pub unsafe extern "C" fn device_detach_release(dv: *mut device, flags: c_int) -> c_int {
    let dv = dv_ref(dv, "device_detach_release");
    // SAFETY: the caller holds a reference on dv (contract above).
    unsafe { autoconf::detach_release::<Current>(dv, flags) }
}
