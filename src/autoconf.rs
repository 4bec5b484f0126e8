//! The autoconf reference layer: `device_lookup_acquire`, `device_acquire`,
//! `device_release`, and the seed's `device_find_by_driver_unit_acquire`,
//! `device_lookup_private_acquire` and `device_detach_release`.
//!
//! Every autoconf device has a localcount (`dv_localcount`), released and
//! drained with `(config_misc_cv, config_misc_lock)`.  The semantics are
//! NetBSD-current's (`subr_autoconf.c` 1.314):
//!
//! * **lookup-acquire** (thread context, may sleep): under
//!   `config_misc_lock` and then `alldevs_lock`, find `cd->cd_devs[unit]`.
//!   No device, a device already unlinked (`dv_del_gen != 0`) or one whose
//!   detach has committed: NULL, at once.  A device another LWP is still
//!   attaching, or that any LWP is detaching: wait on `config_misc_cv` and
//!   look again (a detach may back out with `EBUSY`, and then the device is
//!   still there).  Otherwise acquire a reference.
//! * **acquire**: `localcount_acquire(dv_localcount)`; the caller guarantees
//!   that the device's detach cannot complete meanwhile.
//! * **release**: `localcount_release(dv_localcount, &config_misc_cv,
//!   &config_misc_lock)`.
//! * **detach-release** is autoconf's `config_detach_release`: it takes the
//!   detach lock (`dv_detaching`, which makes lookups wait), drops the
//!   caller's reference, runs the driver's detach, and on success commits
//!   (lookups fail from then on) and drains the localcount.
//!
//! `struct device` is private to autoconf; its fields are read through the
//! accessors of [`AutoconfKernel`] (C functions of the patch set).

use core::ffi::{c_char, c_int, c_void};
use core::ptr::NonNull;

use crate::kernel::{AutoconfKernel, PanicMsg};
use crate::localcount;
use crate::sys::localcount::LocalCount;
use crate::sys::types::{cfdriver, device};

/// The device's localcount, which autoconf allocates for every device.
fn device_lc_ptr<K: AutoconfKernel>(
    dv: NonNull<device>,
    what: &'static str,
) -> NonNull<LocalCount> {
    // SAFETY: dv is live (callers' contract).
    let lc = unsafe { K::device_localcount(dv) };
    match NonNull::new(lc) {
        Some(lc) => lc,
        None => K::panic(PanicMsg::NoLocalcount(what, dv.as_ptr() as *const c_void)),
    }
}

/// [`device_lc_ptr`] as a reference, for callers during whose use the
/// device cannot be freed (not for release: see [`release`]).
fn device_lc<'a, K: AutoconfKernel>(dv: NonNull<device>, what: &'static str) -> &'a LocalCount {
    // SAFETY: autoconf initializes dv_localcount when it allocates the
    // device and finalizes it only after the detach drained it, which the
    // callers' contract excludes for as long as they use it.
    unsafe { LocalCount::from_ptr(device_lc_ptr::<K>(dv, what).as_ptr()) }
}

/// `device_acquire(dv)`: take a reference to a device.
///
/// The caller guarantees that `dv`'s `ca_detach` cannot return before this
/// call (it holds a lock that detach also takes, or already a reference).
/// Any context; never sleeps.
pub fn acquire<K: AutoconfKernel>(dv: NonNull<device>) {
    // SAFETY: dv is live and its detach cannot complete (contract above).
    let done = unsafe { K::device_detach_done(dv) };
    if done {
        // SAFETY: dv is live (contract above).
        let name = unsafe { K::device_xname(dv) };
        kassertmsg!(K, false, "!dv->dv_detach_done", PanicMsg::DeviceName(name));
    }
    localcount::acquire::<K>(device_lc::<K>(dv, "device_acquire"));
}

/// `device_release(dv)`: drop a reference taken with [`acquire`] or
/// [`lookup_acquire`].
///
/// Context: thread or soft interrupt; the caller must not hold
/// `config_misc_lock`.
///
/// Once the reference is dropped, `config_detach` may finish and free the
/// device (and its localcount) while this is still returning: the
/// localcount is passed on as a pointer, never as a reference.
pub fn release<K: AutoconfKernel>(dv: NonNull<device>) {
    let lc = device_lc_ptr::<K>(dv, "device_release");
    localcount::release::<K>(lc, K::config_misc_interlock());
}

/// `device_lookup_acquire(cd, unit)`: the device `unit` of `cd`, with a
/// reference, or `None`; waits while the device is being attached by
/// another LWP or detached.
///
/// Thread context; may sleep.
pub fn lookup_acquire<K: AutoconfKernel>(
    cd: NonNull<cfdriver>,
    unit: c_int,
) -> Option<NonNull<device>> {
    K::assert_sleepable();
    lookup_acquire_in::<K>(unit, || Some(cd), || {})
}

/// The loop of [`lookup_acquire`]: `pin` returns the cfdriver and keeps
/// it from going away until `unpin` (which may be called with autoconf's
/// locks held); it is called again for every look, and never held while
/// this sleeps.
fn lookup_acquire_in<K: AutoconfKernel>(
    unit: c_int,
    mut pin: impl FnMut() -> Option<NonNull<cfdriver>>,
    mut unpin: impl FnMut(),
) -> Option<NonNull<device>> {
    let il = K::config_misc_interlock();
    let alldevs = K::alldevs_lock();
    loop {
        let Some(cd) = pin() else {
            unpin();
            return None;
        };
        il.enter();
        // SAFETY: autoconf's alldevs_lock (trait contract); lock order
        // config_misc_lock -> alldevs_lock, as autoconf's own.
        unsafe { K::mutex_enter(alldevs) };
        // SAFETY: cd is a live cfdriver (pinned) and we hold alldevs_lock.
        let found = match unsafe { K::cfdriver_unit(cd, unit) } {
            None => None,
            Some(dv) => {
                // SAFETY: dv is linked in cd_devs and cannot be freed while
                // we hold alldevs_lock; we also hold config_misc_lock for
                // the detach/attach state.
                let (gone, attaching, detaching) = unsafe {
                    (
                        K::device_deleted(dv) || K::device_detach_committed(dv),
                        K::device_attaching(dv),
                        K::device_detaching(dv),
                    )
                };
                if gone {
                    None
                } else if (!attaching.is_null() && attaching != K::curlwp()) || !detaching.is_null()
                {
                    // Attach or detach in progress: wait for it to finish
                    // and look again (a detach may back out with EBUSY),
                    // without pinning the driver while we sleep.
                    // SAFETY: held above.
                    unsafe { K::mutex_exit(alldevs) };
                    unpin();
                    il.wait();
                    il.exit();
                    continue;
                } else {
                    // No detach has started (dv_detaching is NULL under
                    // config_misc_lock, which config_detach_enter takes to
                    // set it), so ca_detach cannot return before this:
                    // device_acquire's contract.
                    acquire::<K>(dv);
                    Some(dv)
                }
            }
        };
        // SAFETY: held above.
        unsafe { K::mutex_exit(alldevs) };
        il.exit();
        unpin();
        return found;
    }
}

/// `device_find_by_driver_unit_acquire(name, unit)`: [`lookup_acquire`] on
/// the driver called `name`.
///
/// # Safety
/// `name` is a NUL-terminated string.
pub unsafe fn find_by_driver_unit_acquire<K: AutoconfKernel>(
    name: *const c_char,
    unit: c_int,
) -> Option<NonNull<device>> {
    K::assert_sleepable();
    // The cfdriver is found by name and used while nothing else holds it:
    // config_cfdriver_detach (module unload) may remove it, and the module
    // free it, at any time except while the kernel config lock is held
    // (module_unload holds it across the module's MODULE_CMD_FINI).  So
    // hold that lock for each look, and drop it before sleeping.
    lookup_acquire_in::<K>(
        unit,
        || {
            K::kernconfig_lock();
            // SAFETY: caller's contract; the kernel config lock keeps the
            // cfdriver list and the cfdriver found alive.
            unsafe { K::cfdriver_lookup(name) }
        },
        || K::kernconfig_unlock(),
    )
}

/// `device_lookup_private_acquire(cd, unit)`: the softc of the device
/// `unit` of `cd`, with a reference held on the device; `None` if there is
/// no such device.  The device must have a softc (else DIAGNOSTIC panics;
/// without DIAGNOSTIC the reference is dropped and `None` returned, since
/// the caller could not release it).
pub fn lookup_private_acquire<K: AutoconfKernel>(
    cd: NonNull<cfdriver>,
    unit: c_int,
) -> Option<NonNull<c_void>> {
    let dv = lookup_acquire::<K>(cd, unit)?;
    // SAFETY: we hold a reference, so dv is live.
    let sc = NonNull::new(unsafe { K::device_private(dv) });
    if sc.is_none() {
        // SAFETY: we hold a reference, so dv is live.
        let name = unsafe { K::device_xname(dv) };
        kassertmsg!(
            K,
            false,
            "device_private(dv) != NULL",
            PanicMsg::NoSoftc(name)
        );
        release::<K>(dv);
    }
    sc
}

/// `device_detach_release(dv, flags)`: the seed's name for autoconf's
/// `config_detach_release`.  Consumes the caller's reference whatever the
/// outcome; returns 0 or an errno (`EBUSY` and others from the driver,
/// `ENOENT` if already detached).
///
/// # Safety
/// The caller holds a reference on the live device `dv`.
pub unsafe fn detach_release<K: AutoconfKernel>(dv: NonNull<device>, flags: c_int) -> c_int {
    K::assert_sleepable();
    // SAFETY: caller's contract.
    unsafe { K::config_detach_release(dv, flags) }
}
