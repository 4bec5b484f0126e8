//! The host kernel's devsw: the tables of `subr_devsw.c` and config(1)'s
//! `devsw.c`, and `devsw_attach`/`devsw_detach`/`cdev_open` as the patch set
//! makes them (netbsd-patches/0002), so that the library's lookup-acquire
//! and release run against the same protocol as in the kernel.
//!
//! Differences from the kernel, none of which the library can observe: no
//! `devsw_conv` name table (majors are requested or allocated directly), no
//! autoconf cross-check in detach, and the grown table is allocated up
//! front (it is still published only on the first attach beyond the static
//! table, with the same release stores).

use core::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use super::{with_ctx, HostCondvar, HostMutex};
use crate::devsw::{bdevsw, cdevsw, dev_t, Devsw, MAXDEVSW};
use crate::kernel::{cfdriver, DevswKernel, DevswTables, Kernel};
use crate::localcount::{self, LocalCount};

/// `EINVAL`.
pub const EINVAL: c_int = 22;
/// `EEXIST`.
pub const EEXIST: c_int = 17;
/// `ENOMEM`.
pub const ENOMEM: c_int = 12;
/// `ENXIO`.
pub const ENXIO: c_int = 6;

/// Where the module whose `modcmd` the current LWP runs came from
/// (`modsrc_t`): what `module_current()` and `module_source()` tell
/// `devsw_attach` in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModSource {
    /// `MODULE_SOURCE_KERNEL`: built into the kernel.
    Kernel,
    /// `MODULE_SOURCE_BOOT`: loaded by the boot loader.
    Boot,
    /// `MODULE_SOURCE_FILESYS`: loaded with modctl(2) from a file.
    Filesys,
}

/// One kind of devsw table (`Xdevsw`, `Xdevsw0`, `max_Xdevsws`,
/// `sys_Xdevsws`).
pub struct Table<D> {
    /// config(1)'s static `Xdevsw0`.
    static_tab: Box<[AtomicPtr<D>]>,
    /// The `MAXDEVSW` copy that replaces it on the first attach beyond it.
    grown: Box<[AtomicPtr<D>]>,
    /// `Xdevsw`: the current table.
    table: AtomicPtr<AtomicPtr<D>>,
    /// `max_Xdevsws`.
    max: AtomicI32,
    /// `sys_Xdevsws`.
    sys: i32,
}

impl<D> Table<D> {
    fn new(sys: usize) -> Self {
        let static_tab: Box<[AtomicPtr<D>]> =
            (0..sys).map(|_| AtomicPtr::new(ptr::null_mut())).collect();
        let grown: Box<[AtomicPtr<D>]> = (0..MAXDEVSW)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        let table = AtomicPtr::new(static_tab.as_ptr() as *mut AtomicPtr<D>);
        Table {
            static_tab,
            grown,
            table,
            max: AtomicI32::new(sys as i32),
            sys: sys as i32,
        }
    }

    fn tables(&self) -> DevswTables<D> {
        DevswTables {
            table: NonNull::from(&self.table),
            max: NonNull::from(&self.max),
            sys: self.sys,
        }
    }

    /// The current table's entry `i` (device_lock held, `i < max`).
    fn entry(&self, i: usize) -> &AtomicPtr<D> {
        if ptr::eq(self.table.load(Ordering::Relaxed), self.grown.as_ptr()) {
            &self.grown[i]
        } else {
            &self.static_tab[i]
        }
    }
}

/// The host kernel's devsw state.
pub struct HostDevsw {
    b: Table<bdevsw>,
    c: Table<cdevsw>,
    /// `device_lock`.
    pub device_lock: HostMutex,
    /// `devsw_cv`.
    pub devsw_cv: HostCondvar,
}

/// Number of static (built-in) majors of each kind on a host machine.
pub const SYS_DEVSWS: usize = 8;

impl HostDevsw {
    pub(super) fn new() -> Self {
        HostDevsw {
            b: Table::new(SYS_DEVSWS),
            c: Table::new(SYS_DEVSWS),
            device_lock: HostMutex::new(),
            devsw_cv: HostCondvar::new(),
        }
    }
}

/// The table of one devsw kind on the host machine.
pub(super) trait HostTable: Devsw {
    fn table(d: &HostDevsw) -> &Table<Self>;
}
impl HostTable for bdevsw {
    fn table(d: &HostDevsw) -> &Table<Self> {
        &d.b
    }
}
impl HostTable for cdevsw {
    fn table(d: &HostDevsw) -> &Table<Self> {
        &d.c
    }
}

fn with_devsw<R>(f: impl FnOnce(&HostDevsw) -> R) -> R {
    let m = with_ctx(|c| std::sync::Arc::clone(&c.m));
    f(&m.devsw)
}

pub(super) fn tables<D: HostTable>() -> DevswTables<D> {
    // The pointers stay valid while the machine lives, and every LWP holds
    // a reference to its machine.
    with_devsw(|d| D::table(d).tables())
}

pub(super) fn interlock() -> (
    NonNull<crate::kernel::kcondvar>,
    NonNull<crate::kernel::kmutex>,
) {
    with_devsw(|d| (d.devsw_cv.as_nonnull(), d.device_lock.as_nonnull()))
}

type Host = super::Host;

/// Put a built-in driver into config(1)'s static table at `major` (what
/// the kernel has at boot).  Call before any LWP looks it up.
pub fn install_builtin_cdevsw(major: i32, d: &'static cdevsw) {
    with_devsw(|t| {
        assert!((major as usize) < SYS_DEVSWS, "not a static major");
        t.c.static_tab[major as usize].store(d as *const _ as *mut _, Ordering::Release);
    })
}

/// Run `f` as the module initialization of a module from `src`, as
/// `module_do_load` runs `MODULE_CMD_INIT` (with `module_active` set and
/// the kernel config lock held by this LWP).
pub fn with_module<R>(src: ModSource, f: impl FnOnce() -> R) -> R {
    let prev = with_ctx(|c| c.module.replace(src));
    struct Restore(Option<ModSource>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let p = self.0;
            with_ctx(|c| c.module = p);
        }
    }
    let _r = Restore(prev);
    f()
}

/// The patch's rule: a devsw attached while a module that is not built
/// into the kernel is being initialized must have `d_localcount`.
fn refuse(b: Option<&bdevsw>, c: &cdevsw) -> bool {
    let loading = with_ctx(|x| x.module);
    matches!(loading, Some(ModSource::Boot | ModSource::Filesys))
        && (c.d_localcount.is_null() || b.is_some_and(|b| b.d_localcount.is_null()))
}

/// `bdevsw_attach`/`cdevsw_attach` (device_lock held).
fn attach_one<D: HostTable>(t: &Table<D>, d: &'static D, major: &mut i32) -> Result<(), c_int> {
    if *major < 0 {
        let max = t.max.load(Ordering::Relaxed);
        let mut m = t.sys;
        while m < max && !t.entry(m as usize).load(Ordering::Relaxed).is_null() {
            m += 1;
        }
        *major = m;
    }
    if *major as usize >= MAXDEVSW {
        return Err(ENOMEM);
    }
    if *major >= t.max.load(Ordering::Relaxed) {
        // The one-time fork of the table.
        for (i, e) in t.static_tab.iter().enumerate() {
            t.grown[i].store(e.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        t.table.store(t.grown.as_ptr() as *mut _, Ordering::Release);
        t.max.store(MAXDEVSW as i32, Ordering::Release);
    }
    let e = t.entry(*major as usize);
    if !e.load(Ordering::Relaxed).is_null() {
        return Err(EEXIST);
    }
    let lc = d.localcount();
    if !lc.is_null() {
        // SAFETY: the devsw's own localcount, zero-filled or finalized by
        // a previous detach; not published yet.
        localcount::init::<Host>(unsafe { LocalCount::from_ptr(lc) });
    }
    e.store(d as *const D as *mut D, Ordering::Release);
    Ok(())
}

/// `devsw_attach(name, bdev, &bmajor, cdev, &cmajor)` of the patched
/// kernel: EINVAL for a module's devsw without `d_localcount`; otherwise
/// initialize each `d_localcount` and publish the entries.
pub fn devsw_attach(
    bdev: Option<&'static bdevsw>,
    bmajor: &mut i32,
    cdev: &'static cdevsw,
    cmajor: &mut i32,
) -> Result<(), c_int> {
    if refuse(bdev, cdev) {
        return Err(EINVAL);
    }
    with_devsw(|t| {
        t.device_lock.enter();
        let r = (|| {
            if let Some(b) = bdev {
                attach_one(&t.b, b, bmajor)?;
            }
            if let Err(e) = attach_one(&t.c, cdev, cmajor) {
                if let Some(b) = bdev {
                    detach_locked(t, Some(b), None);
                }
                return Err(e);
            }
            Ok(())
        })();
        t.device_lock.exit();
        r
    })
}

fn unpublish<D: HostTable>(t: &Table<D>, d: &D) {
    let max = t.max.load(Ordering::Relaxed);
    for i in 0..max as usize {
        let e = t.entry(i);
        if ptr::eq(e.load(Ordering::Relaxed), d) {
            e.store(ptr::null_mut(), Ordering::Relaxed);
            return;
        }
    }
    super::host_panic(format_args!("devsw_detach: {} not attached", D::NAME))
}

fn drain_fini<D: Devsw>(d: &D) {
    let lc = d.localcount();
    if lc.is_null() {
        return;
    }
    // SAFETY: initialized by attach, unpublished and waited out.
    let lc = unsafe { LocalCount::from_ptr(lc) };
    localcount::drain::<Host>(lc, <Host as DevswKernel>::devsw_interlock());
    localcount::fini::<Host>(lc);
}

/// `devsw_detach_locked` of the patched kernel: unpublish, then -- with
/// device_lock dropped, so that the barrier cannot wait for a drain xcall
/// that needs device_lock -- `xc_barrier(0)`, then drain and finalize each
/// `d_localcount` with `(devsw_cv, device_lock)`.
fn detach_locked(t: &HostDevsw, bdev: Option<&bdevsw>, cdev: Option<&cdevsw>) {
    if let Some(b) = bdev {
        unpublish(&t.b, b);
    }
    if let Some(c) = cdev {
        unpublish(&t.c, c);
    }
    if bdev.is_none() && cdev.is_none() {
        return;
    }
    t.device_lock.exit();
    xc_barrier();
    t.device_lock.enter();
    if let Some(b) = bdev {
        drain_fini(b);
    }
    if let Some(c) = cdev {
        drain_fini(c);
    }
}

/// `devsw_detach(bdev, cdev)` of the patched kernel.  Thread context;
/// sleeps until every reference taken with `*devsw_lookup_acquire` is
/// released.
pub fn devsw_detach(bdev: Option<&bdevsw>, cdev: Option<&cdevsw>) {
    with_devsw(|t| {
        t.device_lock.enter();
        detach_locked(t, bdev, cdev);
        t.device_lock.exit();
    })
}

unsafe extern "C" fn xc_nop(_: *mut core::ffi::c_void, _: *mut core::ffi::c_void) {}

/// `xc_barrier(0)`: a low-priority broadcast of nothing, which cannot run
/// on a CPU until every pserialize read section there has ended.
pub fn xc_barrier() {
    // SAFETY: xc_nop ignores its (null) arguments.
    unsafe { Host::xc_broadcast_wait(xc_nop, ptr::null_mut(), ptr::null_mut()) }
}

/// `cdev_open(dev, ...)` of the patched kernel: look the cdevsw up with a
/// reference, for a driver with `d_devtounit` (`unit = Some((cd, unit))`)
/// also the device, call `d_open` (here: `open`), release both.
pub fn cdev_open(
    dev: dev_t,
    unit: impl FnOnce(&cdevsw) -> Option<(NonNull<cfdriver>, c_int)>,
    open: impl FnOnce(&cdevsw) -> c_int,
) -> c_int {
    // SAFETY: the exported C functions, called as the kernel does.
    let d = unsafe { crate::ffi::exports::cdevsw_lookup_acquire(dev) };
    if d.is_null() {
        return ENXIO;
    }
    // SAFETY: we hold a reference: the cdevsw stays attached.
    let dr = unsafe { &*d };
    let rv = match unit(dr) {
        None => open(dr),
        Some((cd, u)) => {
            // SAFETY: cd is a live cfdriver (the caller's).
            let dv = unsafe { crate::ffi::exports::device_lookup_acquire(cd.as_ptr(), u) };
            if dv.is_null() {
                ENXIO
            } else {
                let rv = open(dr);
                // SAFETY: the reference taken above.
                unsafe { crate::ffi::exports::device_release(dv) };
                rv
            }
        }
    };
    // SAFETY: the reference taken above.
    unsafe { crate::ffi::exports::cdevsw_release(d) };
    rv
}
