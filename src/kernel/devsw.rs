//! [`DevswKernel`]: what the devsw reference layer ([`crate::devsw`])
//! needs from the kernel, and the pserialize(9) read-section guard.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicPtr};

use super::{Interlock, Kernel};
use crate::sys::conf::{bdevsw, cdevsw, DevswRefs};

/// The value `pserialize_read_enter()` returned, for `pserialize_read_exit`.
#[derive(Clone, Copy, Debug)]
pub struct Psz(pub core::ffi::c_int);

/// The kernel's global table of one kind of device switch (`bdevsw` or
/// `cdevsw`), as `sys/kern/subr_devsw.c` keeps it:
///
/// * `table` is `&Xdevsw`, the current array of `const struct Xdevsw *`.
///   It starts as config(1)'s static `Xdevsw0` (`sys` entries) and is
///   replaced once, with a store-release, by a copy with `MAXDEVSW` entries
///   when a major beyond the static ones is attached; no table is ever
///   freed.  Entries are published with store-release after the devsw's
///   localcount is initialized and unpublished (stored NULL) by detach.
/// * `max` is `&max_Xdevsws`: the length of the current table; it only
///   grows, and is stored (release) after the new table pointer.
/// * `sys` is `sys_Xdevsws`: the length of the static table (a constant).
/// * `refs` is `&Xdevswref`: NULL until the first `devsw_attach` of this
///   kind, then (stored with release, never changed or freed) an array of
///   `MAXDEVSW` `struct devswref { struct localcount *dr_lc; }`.  A
///   major's `dr_lc` is its reference count: set (initialized) before the
///   entry is published, cleared only after `devsw_detach` unpublished
///   the entry, waited out the read sections and drained it; NULL for a
///   major of config(1)'s static table that was never attached at run
///   time.
///
/// Invariant (established by the [`DevswKernel`] implementation): the
/// pointers are valid for the life of the kernel.
pub struct DevswTables<D> {
    /// `&Xdevsw`.
    pub table: NonNull<AtomicPtr<AtomicPtr<D>>>,
    /// `&max_Xdevsws`.
    pub max: NonNull<AtomicI32>,
    /// `sys_Xdevsws`.
    pub sys: i32,
    /// `&Xdevswref`: the per-major reference counts.
    pub refs: NonNull<DevswRefs>,
}

/// The kernel services of the devsw reference layer
/// ([`crate::devsw`]): pserialize(9) read sections, the devsw tables and
/// the `(cv, interlock)` pair devsw localcounts are drained with.
///
/// # Safety
///
/// Implementations guarantee:
///
/// * `pserialize_read_enter`/`pserialize_read_exit` delimit a pserialize(9)
///   read section: it does not sleep, and `xc_barrier(0)` (which
///   `devsw_detach` issues after unpublishing an entry) does not return
///   before every read section that was open when it was called has ended.
/// * The [`DevswTables`] returned are the kernel's, with the invariants and
///   publication protocol documented there, for the life of the kernel.
/// * `devsw_interlock` returns the `(devsw_cv, device_lock)` pair that
///   `devsw_detach` drains devsw localcounts with.
pub unsafe trait DevswKernel: Kernel {
    /// `pserialize_read_enter()`.
    fn pserialize_read_enter() -> Psz;
    /// `pserialize_read_exit(s)`.
    fn pserialize_read_exit(s: Psz);
    /// The block device table.
    fn bdevsw_tables() -> DevswTables<bdevsw>;
    /// The character device table.
    fn cdevsw_tables() -> DevswTables<cdevsw>;
    /// `(&devsw_cv, &device_lock)`.
    fn devsw_interlock() -> Interlock<Self>
    where
        Self: Sized;
}

/// A pserialize(9) read section (`pserialize_read_enter`/`_exit`).
#[must_use]
pub struct PszRead<K: DevswKernel> {
    s: Psz,
    _k: PhantomData<K>,
    _not_send: PhantomData<*mut u8>,
}

impl<K: DevswKernel> PszRead<K> {
    /// `s = pserialize_read_enter()`; `pserialize_read_exit(s)` on drop.
    #[inline(always)]
    pub fn new() -> Self {
        PszRead {
            s: K::pserialize_read_enter(),
            _k: PhantomData,
            _not_send: PhantomData,
        }
    }
}

impl<K: DevswKernel> Default for PszRead<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: DevswKernel> Drop for PszRead<K> {
    #[inline(always)]
    fn drop(&mut self) {
        K::pserialize_read_exit(self.s);
    }
}
