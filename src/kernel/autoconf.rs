//! [`AutoconfKernel`]: what the autoconf reference layer
//! ([`crate::autoconf`]) needs from the kernel.

use core::ptr::NonNull;

use super::{Interlock, Kernel};
use crate::sys::localcount::LocalCount;
use crate::sys::types::{cfdriver, device, kmutex, lwp};

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
    unsafe fn device_localcount(dv: NonNull<device>) -> *mut LocalCount;
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
