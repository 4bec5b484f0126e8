//! Kernel symbols imported by the NetBSD backend: every function and
//! global of the kernel that the library uses, and nothing else.
//!
//! Prototypes are NetBSD-current's (`<sys/percpu.h>`, `<sys/xcall.h>`,
//! `<sys/mutex.h>`, `<sys/condvar.h>`, `<sys/systm.h>`).  `splhigh()` and
//! `splx()` are macros or inlines on most ports, so the patch set adds two
//! one-line C functions for them (`rust_localcount_glue.c`).
//!
//! The devsw and autoconf layers also read the kernel's devsw tables
//! (globals) and reach autoconf's file-static locks and the private
//! `struct device` through small C accessors that the patch set adds
//! (`rust_*` below; see `netbsd-patches/`).

#![allow(missing_docs)] // NetBSD's own functions: see percpu(9), xcall(9), mutex(9), ...

use core::ffi::{c_char, c_int, c_uint, c_void};
use core::sync::atomic::{AtomicI32, AtomicPtr};

use super::conf::{bdevsw, cdevsw, DevswRefs};
use super::localcount::LocalCount;
use super::types::{cfdriver, device, kcondvar, kmutex, lwp, percpu, XcFunc};

extern "C" {
    pub fn percpu_alloc(size: usize) -> *mut percpu;
    pub fn percpu_free(pc: *mut percpu, size: usize);
    pub fn percpu_getref(pc: *mut percpu) -> *mut c_void;
    pub fn percpu_putref(pc: *mut percpu);

    pub fn kpreempt_disable();
    pub fn kpreempt_enable();
    /// `kpreempt(0)`, what `KPREEMPT_ENABLE` calls when a preemption was
    /// requested while it was disabled (the amd64 fast path inlines
    /// `KPREEMPT_ENABLE`: `backend::netbsd::amd64`).
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    pub fn kpreempt(where_: usize) -> bool;

    pub fn rust_localcount_splhigh() -> c_int;
    pub fn rust_localcount_splx(s: c_int);
    #[cfg(feature = "broken-release-no-preempt")]
    pub fn rust_localcount_preempt_point();
    #[cfg(feature = "broken-percpu-no-spl")]
    pub fn rust_localcount_interrupt_point();

    pub fn xc_broadcast(flags: c_uint, f: XcFunc, a: *mut c_void, b: *mut c_void) -> u64;
    pub fn xc_wait(id: u64);

    pub fn mutex_enter(m: *mut kmutex);
    pub fn mutex_exit(m: *mut kmutex);
    pub fn mutex_owned(m: *const kmutex) -> c_int;
    pub fn mutex_ownable(m: *const kmutex) -> c_int;

    pub fn cv_wait(cv: *mut kcondvar, m: *mut kmutex);
    /// `cv_timedwait(cv, m, mstohz(ms))` (kern/rust_localcount_glue.c:
    /// mstohz is a macro): 0, or EWOULDBLOCK on timeout.
    pub fn rust_cv_timedwait_ms(cv: *mut kcondvar, m: *mut kmutex, ms: c_int) -> c_int;
    /// Milliseconds since boot (getmicrouptime; glue).
    pub fn rust_uptime_ms() -> u64;
    pub fn printf(fmt: *const c_char, ...) -> c_int;
    pub fn cv_broadcast(cv: *mut kcondvar);

    pub fn panic(fmt: *const c_char, ...) -> !;

    // pserialize(9).
    pub fn pserialize_read_enter() -> c_int;
    pub fn pserialize_read_exit(s: c_int);

    // The devsw tables (defined by config(1)'s devsw.c, declared in
    // sys/kern/subr_devsw.c): `const struct Xdevsw **Xdevsw`,
    // `int max_Xdevsws`, `const int sys_Xdevsws`.
    pub static bdevsw: AtomicPtr<AtomicPtr<bdevsw>>;
    pub static cdevsw: AtomicPtr<AtomicPtr<cdevsw>>;
    pub static max_bdevsws: AtomicI32;
    pub static max_cdevsws: AtomicI32;
    pub static sys_bdevsws: c_int;
    pub static sys_cdevsws: c_int;
    /// `struct devswref *Xdevswref` (subr_devsw.c; made global by the
    /// patch for us): the per-major reference counts.
    pub static bdevswref: DevswRefs;
    pub static cdevswref: DevswRefs;
    /// `kmutex_t device_lock` (`<sys/conf.h>`).
    pub static mut device_lock: kmutex;
    /// `&devsw_cv` (file-static in subr_devsw.c; accessor of the patch).
    pub fn rust_devsw_cv() -> *mut kcondvar;

    // autoconf (subr_autoconf.c accessors of the patch, for its statics).
    pub fn rust_config_misc_lock() -> *mut kmutex;
    pub fn rust_config_misc_cv() -> *mut kcondvar;
    pub fn rust_alldevs_lock() -> *mut kmutex;
    /// The kernel config lock (`<sys/systm.h>`).
    pub fn kernconfig_lock();
    pub fn kernconfig_unlock();
    // struct cfdriver / struct device accessors (rust_localcount_glue.c).
    pub fn rust_cfdriver_unit(cd: *mut cfdriver, unit: c_int) -> *mut device;
    pub fn rust_device_localcount(dv: *mut device) -> *mut LocalCount;
    pub fn rust_device_deleted(dv: *mut device) -> bool;
    pub fn rust_device_detach_committed(dv: *mut device) -> bool;
    pub fn rust_device_detach_done(dv: *mut device) -> bool;
    pub fn rust_device_attaching(dv: *mut device) -> *const lwp;
    pub fn rust_device_detaching(dv: *mut device) -> *const lwp;
    pub fn rust_localcount_curlwp() -> *const lwp;
    pub fn rust_localcount_assert_sleepable();
    // autoconf's own functions (<sys/device.h>).
    pub fn device_private(dv: *mut device) -> *mut c_void;
    pub fn device_xname(dv: *mut device) -> *const c_char;
    pub fn config_cfdriver_lookup(name: *const c_char) -> *mut cfdriver;
    pub fn config_detach_release(dv: *mut device, flags: c_int) -> c_int;
}
