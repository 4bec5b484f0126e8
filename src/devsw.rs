//! The devsw reference layer: the seed's `bdevsw_lookup_acquire`,
//! `cdevsw_lookup_acquire`, `bdevsw_release`, `cdevsw_release`, and the
//! per-major `*_lookup_acquire_major`/`*_release_major` that `bdev_open`
//! and `cdev_open` use.
//!
//! Two kinds of reference, both taken in one pserialize(9) read section
//! with the lookup of the entry, so that `devsw_detach` -- which
//! unpublishes the entry, waits out every read section with
//! `xc_barrier(0)` and then drains -- cannot let a devsw go while anybody
//! uses it:
//!
//! * **per major** ([`lookup_acquire_major`]): every major attached at run
//!   time has its own count (`Xdevswref[major]`, as NetBSD-current's
//!   `devswref`), which `devsw_detach` of that major drains.  It protects
//!   whatever a `d_open` running through that major uses, for any devsw:
//!   a built-in driver's attached from a kthread, one devsw attached at
//!   several majors (`dev/pud`).
//! * **per devsw** ([`lookup_acquire`], the seed's public API): the
//!   devsw's own `d_localcount` (`DEVSW_MODULE_INIT`), shared by all the
//!   majors it is attached at, installed at its first attach and drained
//!   at the detach from its last major: it keeps the devsw and its
//!   module's code alive.  A devsw without `d_localcount` is returned
//!   unreferenced (config(1)'s built-in drivers).
//!
//! * **release** (thread or soft interrupt; `device_lock` not held):
//!   `localcount_release(lc, &devsw_cv, &device_lock)`; nothing for no
//!   count.
//!
//! Why it is correct: `devsw_attach` initializes both counts before it
//! publishes the entry with a store-release, and our acquire load of the
//! entry orders our reads of them and the acquire after it.  A lookup that
//! found the entry did so inside a read section that `devsw_detach`'s
//! `xc_barrier(0)` waits for, so its acquire happens before the drain
//! starts (localcount(9)'s rule: no acquire concurrent with the drain), and
//! the drain then waits for its release; a lookup that starts after the
//! unpublish finds NULL.  A major's count is cleared only after its drain,
//! and `d_localcount` is drained only when the devsw is published at no
//! major and every lookup through any of them has been waited out (the
//! argument in full is at `devsw_detach_majors` in the patch).
//!
//! The C structures are mirrored only as far as needed: the offset of
//! `d_localcount`.  The offsets are exported in the header
//! (`BDEVSW_D_LOCALCOUNT_OFFSET`, `CDEVSW_D_LOCALCOUNT_OFFSET`) and the
//! kernel glue checks them against `<sys/conf.h>` with `CTASSERT`s, so a
//! layout mismatch fails the kernel build.

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use crate::kernel::{DevswKernel, DevswTables, PszRead};
use crate::localcount;
use crate::sys::conf::{bdevsw, cdevsw};
use crate::sys::localcount::LocalCount;
use crate::sys::types::{dev_t, major, NODEV};

/// A kind of device switch: [`bdevsw`] or [`cdevsw`].
pub trait Devsw: Sized + 'static {
    /// "bdevsw" or "cdevsw", for messages.
    const NAME: &'static str;
    /// `d_localcount`.
    fn localcount(&self) -> *mut LocalCount;
    /// The kernel's table of this kind.
    fn tables<K: DevswKernel>() -> DevswTables<Self>;
}

/// `d->d_localcount` as the lookups and releases see it: NULL in the
/// DELIBERATELY BROKEN build `broken-devsw-no-reference` (which must make
/// the tests fail).
#[inline(always)]
fn counted(lc: *mut LocalCount) -> *mut LocalCount {
    if cfg!(feature = "broken-devsw-no-reference") {
        core::ptr::null_mut()
    } else {
        lc
    }
}

impl Devsw for bdevsw {
    const NAME: &'static str = "bdevsw";
    #[inline(always)]
    fn localcount(&self) -> *mut LocalCount {
        self.d_localcount
    }
    #[inline(always)]
    fn tables<K: DevswKernel>() -> DevswTables<Self> {
        K::bdevsw_tables()
    }
}

impl Devsw for cdevsw {
    const NAME: &'static str = "cdevsw";
    #[inline(always)]
    fn localcount(&self) -> *mut LocalCount {
        self.d_localcount
    }
    #[inline(always)]
    fn tables<K: DevswKernel>() -> DevswTables<Self> {
        K::cdevsw_tables()
    }
}

/// Run `f` on the devsw published at `major(dev)` and its major, inside one
/// pserialize(9) read section (the caller takes its references in `f`);
/// `None` if there is none.
#[inline(always)]
fn with_entry<K: DevswKernel, D: Devsw, R>(
    dev: dev_t,
    f: impl FnOnce(NonNull<D>, usize, &DevswTables<D>) -> R,
) -> Option<R> {
    if dev == NODEV {
        return None;
    }
    let maj = major(dev);
    if maj < 0 {
        return None;
    }
    let t = D::tables::<K>();
    let _psz = PszRead::<K>::new();
    // SAFETY: DevswTables' invariant: the kernel's globals, valid forever.
    let (table, max) = unsafe { (t.table.as_ref(), t.max.as_ref()) };
    // max_Xdevsws never shrinks, so a major below it (or below the static
    // table's length, which needs no barrier) stays a valid index of
    // whichever table we load below.
    if maj >= t.sys && maj >= max.load(Ordering::Acquire) {
        return None;
    }
    let tab = table.load(Ordering::Acquire);
    // SAFETY: `tab` has at least max(sys, max_Xdevsws) entries (it is the
    // static table or its grown copy, published before max_Xdevsws with
    // release) and maj is below that; tables are never freed.
    let slot = unsafe { &*tab.add(maj as usize) };
    let d = NonNull::new(slot.load(Ordering::Acquire))?;
    Some(f(d, maj as usize, &t))
}

/// `Xdevsw_lookup_acquire(dev)`: the devsw attached at `major(dev)`, with a
/// reference on its `d_localcount` if it has one; `None` if there is none.
///
/// The reference is the devsw's, shared by all the majors it is attached
/// at: `devsw_detach` drains it when it detaches the devsw from its last
/// major.  It keeps the devsw and its module alive, not one major's state
/// (for that, see [`lookup_acquire_major`]).
///
/// Any context that may enter a pserialize(9) read section; never sleeps.
pub fn lookup_acquire<K: DevswKernel, D: Devsw>(dev: dev_t) -> Option<NonNull<D>> {
    with_entry::<K, D, _>(dev, |d, _, _| {
        // SAFETY: a published devsw stays valid at least until every read
        // section that saw it has ended (devsw_detach's xc_barrier), and is
        // immutable meanwhile.
        let lc = counted(unsafe { d.as_ref() }.localcount());
        if !lc.is_null() {
            // SAFETY: devsw_attach initialized d_localcount before it
            // published the devsw's first major (our acquire load of the
            // entry orders it), and it is drained only after the last
            // major was unpublished and this read section waited out.
            localcount::acquire::<K>(unsafe { LocalCount::from_ptr(lc) });
        }
        d
    })
}

/// `Xdevsw_lookup_acquire_major(dev, &lc)`: the devsw attached at
/// `major(dev)` and a reference on that major's count, as NetBSD-current's
/// file-static `Xdevsw_lookup_acquire(dev, &lc)`; `None` if there is none.
/// The count (`lc`, NULL for a major of config(1)'s static table) is what
/// the caller passes to [`release_major`].  `devsw_detach` of that major
/// waits for it, whatever the devsw and however many majors it has.
///
/// Any context that may enter a pserialize(9) read section; never sleeps.
pub fn lookup_acquire_major<K: DevswKernel, D: Devsw>(
    dev: dev_t,
) -> Option<(NonNull<D>, *mut LocalCount)> {
    with_entry::<K, D, _>(dev, |d, maj, t| {
        // SAFETY: DevswTables' invariant.
        let refs = unsafe { t.refs.as_ref() }.load(Ordering::Acquire);
        let mut lc = core::ptr::null_mut();
        if !refs.is_null() {
            // SAFETY: a non-NULL Xdevswref has MAXDEVSW entries, is never
            // freed, and maj < MAXDEVSW (it indexes a table).
            lc = counted(unsafe { &*refs.add(maj) }.load(Ordering::Acquire));
        }
        if !lc.is_null() {
            // SAFETY: devsw_attach set and initialized the major's count
            // before publishing the entry we loaded with acquire; it is
            // cleared and drained only after the entry is unpublished and
            // this read section has ended.
            localcount::acquire::<K>(unsafe { LocalCount::from_ptr(lc) });
        }
        (d, lc)
    })
}

/// `Xdevsw_release(d)`: drop the reference [`lookup_acquire`] took (none
/// for a devsw without `d_localcount`).
///
/// `d` is a pointer, not a reference: once the reference is dropped the
/// last detach may finish and the module (devsw and localcount) be
/// unloaded while this function is still returning.
///
/// Context: any in which `device_lock` may be taken (thread or soft
/// interrupt); the caller must not hold `device_lock`.
pub fn release<K: DevswKernel, D: Devsw>(d: NonNull<D>) {
    // SAFETY: the caller holds a reference, so the devsw is still attached
    // or being drained; we read its d_localcount pointer before dropping
    // the reference and do not touch the devsw afterwards.
    let lc = counted(unsafe { d.as_ref() }.localcount());
    if let Some(lc) = NonNull::new(lc) {
        localcount::release::<K>(lc, K::devsw_interlock());
    }
}

/// `Xdevsw_release_major(d, lc)`: drop the reference
/// [`lookup_acquire_major`] took on `lc` (nothing if it is NULL).
///
/// Context: as [`release`].
pub fn release_major<K: DevswKernel>(lc: *mut LocalCount) {
    if let Some(lc) = NonNull::new(lc) {
        localcount::release::<K>(lc, K::devsw_interlock());
    }
}
