//! `<sys/conf.h>`: `struct bdevsw` and `struct cdevsw` with the seed's
//! `d_localcount` (netbsd-patches/0002), mirrored only as far as the
//! library needs them -- the offset of `d_localcount` -- and the devsw
//! tables' shapes from `sys/kern/subr_devsw.c` (`MAXDEVSW`,
//! `struct devswref`).
//!
//! The offsets are exported in the header (`BDEVSW_D_LOCALCOUNT_OFFSET`,
//! `CDEVSW_D_LOCALCOUNT_OFFSET`) and the kernel glue checks them against
//! `<sys/conf.h>` with `CTASSERT`s, so a layout mismatch fails the kernel
//! build.

use core::ffi::c_void;
use core::sync::atomic::AtomicPtr;

use super::localcount::LocalCount;

/// `MAXDEVSW` of `subr_devsw.c`: the number of majors of a grown table.
pub const MAXDEVSW: usize = 512;

/// `struct bdevsw` of `<sys/conf.h>` with the seed's `d_localcount`, as far
/// as this library needs it.
///
/// The nine operations (`d_open` ... `d_devtounit`) and `d_cfdriver` are
/// pointers the library never touches; `d_localcount` follows `d_flag`
/// (the patch puts it last, so that no existing member moves).
///
/// cbindgen:no-export
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct bdevsw {
    /// `d_open`, `d_cancel`, `d_close`, `d_strategy`, `d_ioctl`, `d_dump`,
    /// `d_psize`, `d_discard`, `d_devtounit`, `d_cfdriver`.
    pub d_ops: [*const c_void; 10],
    /// `d_flag` (`D_DISK`, `D_MPSAFE`, ...).
    pub d_flag: core::ffi::c_int,
    /// The seed's reference count: set by `DEVSW_MODULE_INIT` in modular
    /// drivers; NULL in built-in ones.
    pub d_localcount: *mut LocalCount,
}

/// `struct cdevsw` of `<sys/conf.h>` with the seed's `d_localcount`, as far
/// as this library needs it (see [`bdevsw`]).
///
/// cbindgen:no-export
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct cdevsw {
    /// `d_open`, `d_cancel`, `d_close`, `d_read`, `d_write`, `d_ioctl`,
    /// `d_stop`, `d_tty`, `d_poll`, `d_mmap`, `d_kqfilter`, `d_discard`,
    /// `d_devtounit`, `d_cfdriver`.
    pub d_ops: [*const c_void; 14],
    /// `d_flag`.
    pub d_flag: core::ffi::c_int,
    /// See [`bdevsw::d_localcount`].
    pub d_localcount: *mut LocalCount,
}

// SAFETY: a devsw is immutable C data while it is attached (the kernel
// declares it `const`); the library only reads it.
unsafe impl Sync for bdevsw {}
// SAFETY: as above.
unsafe impl Sync for cdevsw {}
// SAFETY: as above; no thread affinity.
unsafe impl Send for bdevsw {}
// SAFETY: as above.
unsafe impl Send for cdevsw {}

/// Offset of `d_localcount` in `struct bdevsw` (LP64).  The kernel glue
/// checks it against `<sys/conf.h>` at compile time.
#[cfg(target_pointer_width = "64")]
pub const BDEVSW_D_LOCALCOUNT_OFFSET: usize = 88;
/// Offset of `d_localcount` in `struct bdevsw` (ILP32).
#[cfg(not(target_pointer_width = "64"))]
pub const BDEVSW_D_LOCALCOUNT_OFFSET: usize = 44;
/// Offset of `d_localcount` in `struct cdevsw` (LP64).
#[cfg(target_pointer_width = "64")]
pub const CDEVSW_D_LOCALCOUNT_OFFSET: usize = 120;
/// Offset of `d_localcount` in `struct cdevsw` (ILP32).
#[cfg(not(target_pointer_width = "64"))]
pub const CDEVSW_D_LOCALCOUNT_OFFSET: usize = 60;

// The mirrors' layout: d_localcount where the header says, and last.
static_assertions::const_assert_eq!(
    core::mem::offset_of!(bdevsw, d_localcount),
    BDEVSW_D_LOCALCOUNT_OFFSET
);
static_assertions::const_assert_eq!(
    core::mem::offset_of!(cdevsw, d_localcount),
    CDEVSW_D_LOCALCOUNT_OFFSET
);
static_assertions::const_assert_eq!(
    core::mem::size_of::<bdevsw>(),
    BDEVSW_D_LOCALCOUNT_OFFSET + core::mem::size_of::<usize>()
);
static_assertions::const_assert_eq!(
    core::mem::size_of::<cdevsw>(),
    CDEVSW_D_LOCALCOUNT_OFFSET + core::mem::size_of::<usize>()
);

/// `struct devswref *Xdevswref` of `subr_devsw.c`: a pointer to the array
/// of per-major counts (`struct devswref` is one `struct localcount *`).
pub type DevswRefs = AtomicPtr<AtomicPtr<LocalCount>>;
