//! Kernel symbols imported by the NetBSD backend.
//!
//! Prototypes are NetBSD-current's (`<sys/percpu.h>`, `<sys/xcall.h>`,
//! `<sys/mutex.h>`, `<sys/condvar.h>`, `<sys/systm.h>`).  `splhigh()` and
//! `splx()` are macros or inlines on most ports, so the patch set adds two
//! one-line C functions for them (`rust_localcount_glue.c`).

#![allow(missing_docs)] // NetBSD's own functions: see percpu(9), xcall(9), mutex(9), ...

use core::ffi::{c_char, c_int, c_uint, c_void};

use crate::kernel::{kcondvar, kmutex, percpu, XcFunc};

extern "C" {
    pub fn percpu_alloc(size: usize) -> *mut percpu;
    pub fn percpu_free(pc: *mut percpu, size: usize);
    pub fn percpu_getref(pc: *mut percpu) -> *mut c_void;
    pub fn percpu_putref(pc: *mut percpu);

    pub fn kpreempt_disable();
    pub fn kpreempt_enable();

    pub fn rust_localcount_splhigh() -> c_int;
    pub fn rust_localcount_splx(s: c_int);
    #[cfg(feature = "broken-release-no-preempt")]
    pub fn rust_localcount_preempt_point();

    pub fn xc_broadcast(flags: c_uint, f: XcFunc, a: *mut c_void, b: *mut c_void) -> u64;
    pub fn xc_wait(id: u64);

    pub fn mutex_enter(m: *mut kmutex);
    pub fn mutex_exit(m: *mut kmutex);
    pub fn mutex_owned(m: *const kmutex) -> c_int;
    pub fn mutex_ownable(m: *const kmutex) -> c_int;

    pub fn cv_wait(cv: *mut kcondvar, m: *mut kmutex);
    pub fn cv_broadcast(cv: *mut kcondvar);

    pub fn panic(fmt: *const c_char, ...) -> !;
}
