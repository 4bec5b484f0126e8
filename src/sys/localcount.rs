//! `<sys/localcount.h>`: `struct localcount`, whose layout is ABI.
//!
//! The fields are atomics to Rust (C never touches them while the
//! library's functions run); the protocol that gives them meaning -- the
//! three states of `lc_totalp`, who may touch which counter when -- is in
//! [`crate::localcount`].

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::types::percpu;

/// `int64_t *lc_totalp`, accessed atomically from Rust.
///
/// cbindgen:no-export
#[repr(transparent)]
pub struct TotalPtr(pub(crate) AtomicPtr<i64>);

/// `struct percpu *lc_percpu`, accessed atomically from Rust.
///
/// cbindgen:no-export
#[repr(transparent)]
pub struct PercpuPtr(pub(crate) AtomicPtr<percpu>);

/// `volatile uint32_t lc_refcnt`, maintained with atomic operations.
///
/// cbindgen:no-export
#[repr(transparent)]
pub struct RefCnt(pub(crate) AtomicU32);

/// A localcount(9) reference count: `struct localcount`.
///
/// The layout is the ABI of NetBSD-current's `<sys/localcount.h>` (the
/// struct is embedded by value in IPsec and module-hook structures): three
/// words, 24 bytes with alignment 8 on LP64, 12/4 on ILP32, `lc_refcnt`
/// always present.  A zero-filled `struct localcount` is what
/// `localcount_init` expects (it does not touch `lc_refcnt`).
#[repr(C)]
pub struct LocalCount {
    /// NULL, the drainer's total, or the poison `1` after a drain.
    pub lc_totalp: TotalPtr,
    /// This object's per-CPU `int64_t` counters.
    pub lc_percpu: PercpuPtr,
    /// Total references; only kept with DEBUG && LOCKDEBUG.
    pub lc_refcnt: RefCnt,
}

// The ABI: three words (24/8 on LP64, 12/4 on ILP32), in this order.
static_assertions::assert_eq_size!(LocalCount, [usize; 3]);
static_assertions::assert_eq_align!(LocalCount, usize);
static_assertions::const_assert_eq!(core::mem::offset_of!(LocalCount, lc_totalp), 0);
static_assertions::const_assert_eq!(
    core::mem::offset_of!(LocalCount, lc_percpu),
    core::mem::size_of::<usize>()
);
static_assertions::const_assert_eq!(
    core::mem::offset_of!(LocalCount, lc_refcnt),
    2 * core::mem::size_of::<usize>()
);

// SAFETY: every field is an atomic; the protocol (not the type system)
// decides who may touch what, as in C.
unsafe impl Sync for LocalCount {}
// SAFETY: as above; no thread affinity.
unsafe impl Send for LocalCount {}

impl LocalCount {
    /// A zero-filled localcount, like static storage or `kmem_zalloc`.
    pub const fn zeroed() -> Self {
        LocalCount {
            lc_totalp: TotalPtr(AtomicPtr::new(ptr::null_mut())),
            lc_percpu: PercpuPtr(AtomicPtr::new(ptr::null_mut())),
            lc_refcnt: RefCnt(AtomicU32::new(0)),
        }
    }

    /// View a C `struct localcount *` as a reference.
    ///
    /// # Safety
    /// `p` is non-NULL, aligned, points to a `struct localcount` that stays
    /// allocated for `'a`, and is accessed only through atomic operations
    /// (this crate's functions) for that time.
    #[inline(always)]
    pub unsafe fn from_ptr<'a>(p: *const LocalCount) -> &'a LocalCount {
        // SAFETY: guaranteed by the caller.
        unsafe { &*p }
    }

    /// The raw `lc_totalp` (idle: NULL; draining: `&total`; drained: 1).
    #[inline(always)]
    pub fn totalp(&self) -> *mut i64 {
        self.lc_totalp.0.load(Ordering::Relaxed)
    }

    /// The debug reference count (`lc_refcnt`).
    #[inline(always)]
    pub fn refcnt(&self) -> u32 {
        self.lc_refcnt.0.load(Ordering::Relaxed)
    }

    /// Overwrite `lc_refcnt` (host tests of the overflow/underflow panics).
    #[cfg(feature = "host")]
    pub fn set_refcnt(&self, v: u32) {
        self.lc_refcnt.0.store(v, Ordering::Relaxed)
    }
}
