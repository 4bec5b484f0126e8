//! The kernel's own types, as the library sees them: opaque structures
//! (only ever behind pointers, their layout is the kernel's business), the
//! cross-call function type, and `dev_t` with its macros.

use core::ffi::c_void;
use core::marker::PhantomData;

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

/// `struct device` (`device_t`): an autoconf device instance.  Opaque: its
/// layout is private to autoconf (`<sys/device_impl.h>`), so the library
/// reaches its fields only through the accessors of [`AutoconfKernel`](crate::kernel::AutoconfKernel).
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

/// `dev_t` (NetBSD's is `uint64_t`).
#[allow(non_camel_case_types)]
pub type dev_t = u64;

/// `NODEV`: `(dev_t)(-1)`.
pub const NODEV: dev_t = u64::MAX;

/// `major(dev)`: `(devmajor_t)(((uint32_t)(x) & 0x000fff00) >> 8)`.
#[inline(always)]
pub const fn major(dev: dev_t) -> i32 {
    (((dev as u32) & 0x000f_ff00) >> 8) as i32
}

/// `minor(dev)`.
#[inline(always)]
pub const fn minor(dev: dev_t) -> i32 {
    ((((dev as u32) & 0xfff0_0000) >> 12) | ((dev as u32) & 0x0000_00ff)) as i32
}

/// `makedev(major, minor)`.
#[inline(always)]
pub const fn makedev(maj: i32, min: i32) -> dev_t {
    let (x, y) = (maj as u64, min as u64);
    ((x << 8) & 0x000f_ff00) | ((y << 12) & 0xfff0_0000) | (y & 0x0000_00ff)
}
