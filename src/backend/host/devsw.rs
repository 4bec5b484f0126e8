//! The host kernel's devsw: the tables of `subr_devsw.c` and config(1)'s
//! `devsw.c`, and `devsw_attach`/`devsw_detach` as the patch set makes them
//! (netbsd-patches/0002), so that the library's lookup-acquire and release
//! run against the same protocol as in the kernel.  (`cdev_open`, which
//! calls the library's C exports as the kernel does, is test scaffolding:
//! `tests/common`.)
//!
//! Differences from the kernel, none of which the library can observe: no
//! `devsw_conv` name table (majors are requested or allocated directly), no
//! autoconf cross-check in detach, and the grown table is allocated up
//! front (it is still published only on the first attach beyond the static
//! table, with the same release stores).

use core::ffi::c_int;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use super::sync::{lock, Mutex};
use super::{with_ctx, HostCondvar, HostMutex};
use crate::devsw::Devsw;
use crate::kernel::{DevswKernel, DevswTables, Kernel};
use crate::localcount;
use crate::sys::conf::{bdevsw, cdevsw, DevswRefs, MAXDEVSW};
use crate::sys::localcount::LocalCount;
use crate::sys::types::{kcondvar, kmutex};

/// `EINVAL`.
pub const EINVAL: c_int = 22;
/// `EEXIST`.
pub const EEXIST: c_int = 17;
/// `ENOMEM`.
pub const ENOMEM: c_int = 12;

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
/// `sys_Xdevsws`) and its per-major counts (`Xdevswref`).
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
    /// The `MAXDEVSW` `struct devswref` that `Xdevswref` points to once
    /// the first devsw of this kind is attached.
    refs_arr: Box<[AtomicPtr<LocalCount>]>,
    /// `Xdevswref`.
    refs: DevswRefs,
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
            refs_arr: (0..MAXDEVSW)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            refs: AtomicPtr::new(ptr::null_mut()),
        }
    }

    fn tables(&self) -> DevswTables<D> {
        DevswTables {
            table: NonNull::from(&self.table),
            max: NonNull::from(&self.max),
            sys: self.sys,
            refs: NonNull::from(&self.refs),
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

    /// `Xdevswref[i].dr_lc` (device_lock held).
    fn dr_lc(&self, i: usize) -> *mut LocalCount {
        if self.refs.load(Ordering::Relaxed).is_null() {
            ptr::null_mut()
        } else {
            self.refs_arr[i].load(Ordering::Relaxed)
        }
    }

    /// The lowest major `d` is published at (device_lock held).
    fn major_of(&self, d: &D) -> Option<usize> {
        (0..self.max.load(Ordering::Relaxed) as usize)
            .find(|&i| ptr::eq(self.entry(i).load(Ordering::Relaxed), d))
    }

    /// Every major `d` is attached at now, lowest first (for tests: a
    /// snapshot, no lock taken).
    pub fn majors(&self, d: &D) -> Vec<usize> {
        (0..self.max.load(Ordering::Acquire) as usize)
            .filter(|&i| ptr::eq(self.entry(i).load(Ordering::Acquire), d))
            .collect()
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
    /// `devsw_drains`: the devsws whose `d_localcount` a detach drains.
    drains: Mutex<Vec<usize>>,
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
            drains: Mutex::new(Vec::new()),
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

pub(super) fn interlock() -> (NonNull<kcondvar>, NonNull<kmutex>) {
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

/// What `devsw_attach` allocates before it takes `device_lock`
/// (`struct devsw_prep` of the patch): each major's count, and a candidate
/// for each `d_localcount`.  Counts are never deallocated on the host:
/// one that a detach finalized stays poisoned, so a late release panics.
struct Prep {
    blc: Option<NonNull<LocalCount>>,
    clc: Option<NonNull<LocalCount>>,
    bdlc: LocalCount,
    cdlc: LocalCount,
}

fn new_count() -> NonNull<LocalCount> {
    let lc = NonNull::from(Box::leak(Box::new(LocalCount::zeroed())));
    // SAFETY: just allocated, ours.
    localcount::init::<Host>(unsafe { lc.as_ref() });
    lc
}

impl Prep {
    /// `devsw_prepare`: thread context, device_lock not held; sleeps
    /// (percpu_alloc may grow the arena with an xcall).
    fn new(bdev: Option<&bdevsw>, cdev: &cdevsw) -> Prep {
        let p = Prep {
            blc: bdev.map(|_| new_count()),
            clc: Some(new_count()),
            bdlc: LocalCount::zeroed(),
            cdlc: LocalCount::zeroed(),
        };
        if bdev.is_some_and(|b| !b.d_localcount.is_null()) {
            localcount::init::<Host>(&p.bdlc);
        }
        if !cdev.d_localcount.is_null() {
            localcount::init::<Host>(&p.cdlc);
        }
        p
    }

    /// `devsw_unprepare`: discard what was not published.
    fn discard(self) {
        for lc in [self.blc, self.clc].into_iter().flatten() {
            // SAFETY: ours, never published.
            localcount::discard_unused::<Host>(unsafe { lc.as_ref() });
        }
        localcount::discard_unused::<Host>(&self.bdlc);
        localcount::discard_unused::<Host>(&self.cdlc);
    }
}

/// `bdevsw_attach`/`cdevsw_attach` (device_lock held; may wait on
/// `devsw_cv` for a detach of the major).
fn attach_one<D: HostTable>(
    h: &HostDevsw,
    d: &'static D,
    major: &mut i32,
    lc: &mut Option<NonNull<LocalCount>>,
    dlc: &LocalCount,
) -> Result<(), c_int> {
    let t = D::table(h);
    loop {
        if *major < 0 {
            let max = t.max.load(Ordering::Relaxed);
            let mut m = t.sys;
            while m < max
                && (!t.entry(m as usize).load(Ordering::Relaxed).is_null()
                    || !t.dr_lc(m as usize).is_null())
            {
                m += 1;
            }
            *major = m;
        }
        if *major as usize >= MAXDEVSW {
            return Err(ENOMEM);
        }
        if t.refs.load(Ordering::Relaxed).is_null() {
            t.refs.store(
                t.refs_arr.as_ptr() as *mut AtomicPtr<LocalCount>,
                Ordering::Release,
            );
        }
        if *major >= t.max.load(Ordering::Relaxed) {
            // The one-time fork of the table.
            for (i, e) in t.static_tab.iter().enumerate() {
                t.grown[i].store(e.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            t.table.store(t.grown.as_ptr() as *mut _, Ordering::Release);
            t.max.store(MAXDEVSW as i32, Ordering::Release);
        }
        let m = *major as usize;
        if !t.entry(m).load(Ordering::Relaxed).is_null() {
            return Err(EEXIST);
        }
        if !t.dr_lc(m).is_null() || draining(h, d as *const D as *const ()) {
            // A detach is still draining this major's count or the
            // devsw's d_localcount: wait, then start over.
            h.devsw_cv.wait(&h.device_lock);
            continue;
        }
        let own = d.localcount();
        if !own.is_null() && t.major_of(d).is_none() {
            // SAFETY: the devsw's own localcount (static storage of the
            // "module"), attached nowhere and not being drained.
            localcount::install_unused::<Host>(unsafe { LocalCount::from_ptr(own) }, dlc);
        }
        let Some(c) = lc.take() else {
            super::host_panic(format_args!("devsw_attach: no prepared count"))
        };
        t.refs_arr[m].store(c.as_ptr(), Ordering::Relaxed);
        t.entry(m).store(d as *const D as *mut D, Ordering::Release);
        return Ok(());
    }
}

fn draining(h: &HostDevsw, d: *const ()) -> bool {
    lock(&h.drains).contains(&(d as usize))
}

/// `devsw_attach(name, bdev, &bmajor, cdev, &cmajor)` of the patched
/// kernel: EINVAL for a module's devsw without `d_localcount`; otherwise
/// prepare the counts (without device_lock) and publish each major with
/// its count (and, at a devsw's first major, its `d_localcount`), waiting
/// while a detach drains that major or that devsw.
pub fn devsw_attach(
    bdev: Option<&'static bdevsw>,
    bmajor: &mut i32,
    cdev: &'static cdevsw,
    cmajor: &mut i32,
) -> Result<(), c_int> {
    if refuse(bdev, cdev) {
        return Err(EINVAL);
    }
    let mut prep = Prep::new(bdev, cdev);
    let r = with_devsw(|t| {
        t.device_lock.enter();
        let r = (|| {
            if let Some(b) = bdev {
                attach_one(t, b, bmajor, &mut prep.blc, &prep.bdlc)?;
            }
            if let Err(e) = attach_one(t, cdev, cmajor, &mut prep.clc, &prep.cdlc) {
                if let Some(b) = bdev {
                    detach_majors(t, Some((b, *bmajor as usize)), None);
                }
                return Err(e);
            }
            Ok(())
        })();
        t.device_lock.exit();
        r
    });
    prep.discard();
    r
}

/// Unpublish `d` at `m`; its count, and whether this detach drains the
/// devsw's own `d_localcount` (it is attached nowhere else and nobody
/// drains it yet: then it goes on `devsw_drains`).
fn unpublish<D: HostTable>(h: &HostDevsw, d: &D, m: usize) -> (*mut LocalCount, bool) {
    let t = D::table(h);
    if !ptr::eq(t.entry(m).load(Ordering::Relaxed), d) {
        super::host_panic(format_args!(
            "devsw_detach: {} not attached at {m}",
            D::NAME
        ))
    }
    t.entry(m).store(ptr::null_mut(), Ordering::Relaxed);
    let key = d as *const D as usize;
    let last =
        !d.localcount().is_null() && t.major_of(d).is_none() && !lock(&h.drains).contains(&key);
    if last {
        lock(&h.drains).push(key);
    }
    (t.dr_lc(m), last)
}

fn drain_named(lc: *mut LocalCount, name: &str) {
    let name = std::ffi::CString::new(name).expect("drain name");
    // SAFETY: an initialized count, unpublished and waited out; name is a
    // C string that outlives the call.
    unsafe {
        localcount::drain_named::<Host>(
            LocalCount::from_ptr(lc),
            <Host as DevswKernel>::devsw_interlock(),
            name.as_ptr(),
        );
        localcount::fini::<Host>(LocalCount::from_ptr(lc));
    }
}

/// `devsw_detach_majors` of the patch: unpublish, `xc_barrier(0)` without
/// device_lock, drain each major's count, then, for a devsw detached from
/// its last major, its `d_localcount`.  device_lock held on entry and
/// return; dropped in between.
fn detach_majors(h: &HostDevsw, b: Option<(&bdevsw, usize)>, c: Option<(&cdevsw, usize)>) {
    let bs = b.map(|(d, m)| (d, m, unpublish(h, d, m)));
    let cs = c.map(|(d, m)| (d, m, unpublish(h, d, m)));
    if bs.is_none() && cs.is_none() {
        return;
    }
    h.device_lock.exit();
    xc_barrier();
    h.device_lock.enter();
    if let Some((_, m, (lc, _))) = bs {
        if !lc.is_null() {
            drain_named(lc, &format!("devsw_detach: bdevsw major {m}"));
            h.b.refs_arr[m].store(ptr::null_mut(), Ordering::Relaxed);
        }
    }
    if let Some((_, m, (lc, _))) = cs {
        if !lc.is_null() {
            drain_named(lc, &format!("devsw_detach: cdevsw major {m}"));
            h.c.refs_arr[m].store(ptr::null_mut(), Ordering::Relaxed);
        }
    }
    if let Some((d, _, (_, true))) = bs {
        drain_named(
            d.localcount(),
            &format!("devsw_detach: bdevsw {d:p} d_localcount"),
        );
        lock(&h.drains).retain(|&x| x != d as *const bdevsw as usize);
    }
    if let Some((d, _, (_, true))) = cs {
        drain_named(
            d.localcount(),
            &format!("devsw_detach: cdevsw {d:p} d_localcount"),
        );
        lock(&h.drains).retain(|&x| x != d as *const cdevsw as usize);
    }
    h.devsw_cv.broadcast();
}

/// `devsw_detach(bdev, cdev)` of the patched kernel: detach each from the
/// lowest major it is attached at.  Thread context; sleeps until every
/// reference taken through those majors is released (and, at a devsw's
/// last major, every reference to it).
pub fn devsw_detach(bdev: Option<&bdevsw>, cdev: Option<&cdevsw>) {
    with_devsw(|t| {
        t.device_lock.enter();
        let find = |name: &str, m: Option<usize>| {
            m.unwrap_or_else(|| {
                super::host_panic(format_args!("devsw_detach: {name} not attached"))
            })
        };
        let b = bdev.map(|d| (d, find("bdevsw", t.b.major_of(d))));
        let c = cdev.map(|d| (d, find("cdevsw", t.c.major_of(d))));
        detach_majors(t, b, c);
        t.device_lock.exit();
    })
}

/// The majors a cdevsw is attached at now.
pub fn cdevsw_majors(d: &cdevsw) -> Vec<usize> {
    with_devsw(|t| t.c.majors(d))
}

/// `xc_barrier(0)`: a low-priority broadcast of nothing, which cannot run
/// on a CPU until every pserialize read section there has ended.
pub fn xc_barrier() {
    // SAFETY: xc_nop ignores its (null) arguments.
    unsafe { Host::xc_broadcast_wait(super::xc_nop, ptr::null_mut(), ptr::null_mut()) }
}
