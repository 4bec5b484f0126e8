//! The host kernel's autoconf: drivers, device instances and the attach /
//! detach protocol of NetBSD-current's `subr_autoconf.c` (1.314) that the
//! library's device references interact with -- `dv_attaching` until the
//! attach routine returns, the detach lock `dv_detaching`, the driver's
//! detach routine (which may back out with `EBUSY`), the commit, and the
//! drain of `dv_localcount` with `(config_misc_cv, config_misc_lock)`.
//!
//! A detached device is not freed but poisoned: every accessor the library
//! uses panics on it ("use after free"), so that a reference that outlives
//! the detach is caught instead of being undefined behaviour.

use core::ffi::{c_char, c_int, c_void};
use std::ffi::{CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::sync::{lock, Mutex};
use super::{curlwp, preempt_point, with_ctx, HostCondvar, HostMutex};
use crate::kernel::AutoconfKernel;
use crate::localcount;
use crate::sys::localcount::LocalCount;
use crate::sys::types::{cfdriver, device, kcondvar, kmutex, lwp};

type Host = super::Host;

/// `ENOENT`.
pub const ENOENT: c_int = 2;
/// `EBUSY`.
pub const EBUSY: c_int = 16;
/// `DETACH_FORCE`.
pub const DETACH_FORCE: c_int = 0x01;

/// Units per host driver (`cd_ndevs`).
pub const NDEVS: usize = 8;

/// A driver's attach and detach routines (`struct cfattach`).
pub trait DeviceOps: Send + Sync {
    /// `ca_attach`: runs with `dv_attaching` set to the attaching LWP.
    fn attach(&self, _dv: NonNull<device>) {}
    /// `ca_detach`: 0 to detach (it may call [`config_detach_commit`]
    /// first), or an errno (e.g. `EBUSY`) to back out.
    fn detach(&self, _dv: NonNull<device>, _flags: c_int) -> c_int {
        0
    }
}

/// A host `struct cfdriver`.
pub struct HostCfdriver {
    name: CString,
    /// `cd_devs[]` (alldevs_lock).
    devs: Box<[AtomicPtr<HostDevice>]>,
    /// Poison: [`config_cfdriver_detach`] removed it and its module may
    /// have been unloaded.
    freed: AtomicBool,
}

/// A host `struct device`.
pub struct HostDevice {
    cd: NonNull<HostCfdriver>,
    unit: usize,
    xname: CString,
    lc: LocalCount,
    ops: Arc<dyn DeviceOps>,
    /// `dv_attaching`, `dv_detaching`: LWP ids, 0 for NULL.
    attaching: AtomicU64,
    detaching: AtomicU64,
    detach_committed: AtomicBool,
    detach_done: AtomicBool,
    del_gen: AtomicU64,
    pending: AtomicU32,
    private: AtomicPtr<c_void>,
    /// Poison: the device has been detached and "freed".
    freed: AtomicBool,
}

// SAFETY: `cd` points to a leaked, immutable-but-for-atomics cfdriver; the
// rest are atomics, immutable data or Send + Sync.
unsafe impl Send for HostDevice {}
// SAFETY: as above.
unsafe impl Sync for HostDevice {}

/// The host kernel's autoconf state.
pub struct HostAutoconf {
    /// `config_misc_lock`.
    pub config_misc_lock: HostMutex,
    /// `config_misc_cv`.
    pub config_misc_cv: HostCondvar,
    /// `alldevs_lock`.
    pub alldevs_lock: HostMutex,
    drivers: Mutex<Vec<usize>>,
    /// The kernel config lock (`kernconfig_lock`): the mutex and its
    /// recursion depth (owner's only).
    kernconfig: HostMutex,
    kernconfig_depth: Mutex<u32>,
}

impl HostAutoconf {
    pub(super) fn new() -> Self {
        HostAutoconf {
            config_misc_lock: HostMutex::new(),
            config_misc_cv: HostCondvar::new(),
            alldevs_lock: HostMutex::new(),
            drivers: Mutex::new(Vec::new()),
            kernconfig: HostMutex::new(),
            kernconfig_depth: Mutex::new(0),
        }
    }
}

/// `kernconfig_lock()`: recursive.  Thread context; may sleep.
pub fn kernconfig_lock() {
    with_ac(|a| {
        if a.kernconfig.owned() {
            *lock(&a.kernconfig_depth) += 1;
        } else {
            a.kernconfig.enter();
        }
    })
}

/// `kernconfig_unlock()`.
pub fn kernconfig_unlock() {
    with_ac(|a| {
        let mut d = lock(&a.kernconfig_depth);
        if *d > 0 {
            *d -= 1;
        } else {
            drop(d);
            a.kernconfig.exit();
        }
    })
}

/// `config_cfdriver_detach(cd)` as module unload runs it (with the kernel
/// config lock held): `EBUSY` if the driver has devices, else remove it
/// from the list of drivers; the module may then free it, which the host
/// models by poisoning it (every later use panics "use after free").
pub fn config_cfdriver_detach(cd: NonNull<cfdriver>) -> c_int {
    kernconfig_lock();
    // SAFETY: cd came from cfdriver_attach (leaked, never deallocated).
    let hc = unsafe { cd.cast::<HostCfdriver>().as_ref() };
    let busy = with_ac(|a| {
        a.alldevs_lock.enter();
        let busy = hc.devs.iter().any(|d| !d.load(Ordering::SeqCst).is_null());
        a.alldevs_lock.exit();
        busy
    });
    let rc = if busy {
        EBUSY
    } else {
        with_ac(|a| lock(&a.drivers).retain(|&p| p != hc as *const HostCfdriver as usize));
        hc.freed.store(true, Ordering::SeqCst);
        0
    };
    kernconfig_unlock();
    rc
}

fn with_ac<R>(f: impl FnOnce(&HostAutoconf) -> R) -> R {
    let m = with_ctx(|c| Arc::clone(&c.m));
    f(&m.autoconf)
}

pub(super) fn interlock() -> (NonNull<kcondvar>, NonNull<kmutex>) {
    with_ac(|a| {
        (
            a.config_misc_cv.as_nonnull(),
            a.config_misc_lock.as_nonnull(),
        )
    })
}

pub(super) fn alldevs_lock() -> NonNull<kmutex> {
    with_ac(|a| a.alldevs_lock.as_nonnull())
}

fn lwp_ptr(id: u64) -> *const lwp {
    id as usize as *const lwp
}

pub(super) fn curlwp_ptr() -> *const lwp {
    lwp_ptr(curlwp())
}

/// The host device behind a `device_t`, which must not have been freed.
///
/// # Safety
/// `dv` came from [`config_attach_pseudo_acquire`] (host devices are never
/// deallocated, only poisoned).
pub(super) unsafe fn hdev<'a>(dv: NonNull<device>) -> &'a HostDevice {
    // SAFETY: caller's contract.
    let d = unsafe { dv.cast::<HostDevice>().as_ref() };
    if d.freed.load(Ordering::SeqCst) {
        super::host_panic(format_args!(
            "use after free: device {} ({:p}) was detached",
            d.xname.to_string_lossy(),
            dv.as_ptr()
        ));
    }
    d
}

/// `config_cfdriver_attach`: register a driver called `name`.
pub fn cfdriver_attach(name: &str) -> NonNull<cfdriver> {
    let cd = Box::leak(Box::new(HostCfdriver {
        name: CString::new(name).expect("driver name"),
        devs: (0..NDEVS)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect(),
        freed: AtomicBool::new(false),
    }));
    with_ac(|a| lock(&a.drivers).push(cd as *const HostCfdriver as usize));
    NonNull::from(cd).cast()
}

pub(super) fn cfdriver_lookup(name: &CStr) -> Option<NonNull<cfdriver>> {
    let cd = with_ac(|a| {
        lock(&a.drivers)
            .iter()
            // SAFETY: registered drivers are leaked, never deallocated.
            .find(|&&p| unsafe { &*(p as *const HostCfdriver) }.name.as_c_str() == name)
            .and_then(|&p| NonNull::new(p as *mut cfdriver))
    });
    // The kernel's lookup returns a pointer that nothing holds: the caller
    // may be preempted here while a module unload removes the driver.
    preempt_point();
    cd
}

/// `cd->cd_devs[unit]` (alldevs_lock held).
///
/// # Safety
/// `cd` came from [`cfdriver_attach`].
pub(super) unsafe fn cfdriver_unit(cd: NonNull<cfdriver>, unit: c_int) -> Option<NonNull<device>> {
    // SAFETY: caller's contract: a leaked HostCfdriver.
    let cd = unsafe { cd.cast::<HostCfdriver>().as_ref() };
    if cd.freed.load(Ordering::SeqCst) {
        super::host_panic(format_args!(
            "use after free: cfdriver {} was detached",
            cd.name.to_string_lossy()
        ));
    }
    let u = usize::try_from(unit).ok()?;
    let dv = cd.devs.get(u)?.load(Ordering::SeqCst);
    NonNull::new(dv.cast())
}

impl HostDevice {
    pub(super) fn localcount(&self) -> *mut LocalCount {
        &self.lc as *const LocalCount as *mut LocalCount
    }
    pub(super) fn deleted(&self) -> bool {
        self.del_gen.load(Ordering::SeqCst) != 0
    }
    pub(super) fn detach_committed(&self) -> bool {
        self.detach_committed.load(Ordering::SeqCst)
    }
    pub(super) fn detach_done(&self) -> bool {
        self.detach_done.load(Ordering::SeqCst)
    }
    pub(super) fn attaching(&self) -> *const lwp {
        lwp_ptr(self.attaching.load(Ordering::SeqCst))
    }
    pub(super) fn detaching(&self) -> *const lwp {
        lwp_ptr(self.detaching.load(Ordering::SeqCst))
    }
    pub(super) fn private(&self) -> *mut c_void {
        self.private.load(Ordering::SeqCst)
    }
    pub(super) fn xname_ptr(&self) -> *const c_char {
        self.xname.as_ptr()
    }
}

fn misc<R>(f: impl FnOnce(&HostAutoconf) -> R) -> R {
    with_ac(|a| {
        a.config_misc_lock.enter();
        let r = f(a);
        a.config_misc_lock.exit();
        r
    })
}

/// `config_attach_pseudo_acquire`: create device `unit` of `cd` (with
/// softc `private`), run `ops.attach` with `dv_attaching` set, and return
/// it with one reference, which the caller drops with `device_release`.
/// Thread context; sleeps.  Panics if the unit is taken.
pub fn config_attach_pseudo_acquire(
    cd: NonNull<cfdriver>,
    unit: usize,
    ops: Arc<dyn DeviceOps>,
    private: *mut c_void,
) -> NonNull<device> {
    // SAFETY: the caller passes a driver from cfdriver_attach.
    let hcd = unsafe { cd.cast::<HostCfdriver>().as_ref() };
    let xname = format!("{}{}", hcd.name.to_string_lossy(), unit);
    let d = Box::leak(Box::new(HostDevice {
        cd: NonNull::from(hcd),
        unit,
        xname: CString::new(xname).expect("xname"),
        lc: LocalCount::zeroed(),
        ops,
        attaching: AtomicU64::new(curlwp()),
        detaching: AtomicU64::new(0),
        detach_committed: AtomicBool::new(false),
        detach_done: AtomicBool::new(false),
        del_gen: AtomicU64::new(0),
        pending: AtomicU32::new(0),
        private: AtomicPtr::new(private),
        freed: AtomicBool::new(false),
    }));
    localcount::init::<Host>(&d.lc); // config_devalloc
    let dv = NonNull::from(&*d).cast::<device>();
    with_ac(|a| {
        // config_devlink
        a.alldevs_lock.enter();
        let slot = &hcd.devs[unit];
        let free = slot.load(Ordering::SeqCst).is_null();
        if free {
            slot.store(d, Ordering::SeqCst);
        }
        a.alldevs_lock.exit();
        assert!(free, "config_attach_pseudo_acquire: unit {unit} taken");
    });
    d.pending.fetch_add(1, Ordering::SeqCst); // config_pending_incr
    crate::autoconf::acquire::<Host>(dv);
    d.ops.attach(dv);
    misc(|a| {
        assert_eq!(d.attaching.load(Ordering::SeqCst), curlwp());
        d.attaching.store(0, Ordering::SeqCst);
        a.config_misc_cv.broadcast();
    });
    misc(|a| {
        // config_pending_decr
        if d.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            a.config_misc_cv.broadcast();
        }
    });
    dv
}

/// `config_detach_commit(dv)`: from the driver's detach routine, commit to
/// detaching: `device_lookup_acquire` fails from now on.
pub fn config_detach_commit(dv: NonNull<device>) {
    // SAFETY: the device is being detached by this LWP, hence live.
    let d = unsafe { hdev(dv) };
    misc(|a| {
        assert_eq!(
            d.detaching.load(Ordering::SeqCst),
            curlwp(),
            "config_detach_commit: not detaching {}",
            d.xname.to_string_lossy()
        );
        d.detach_committed.store(true, Ordering::SeqCst);
        a.config_misc_cv.broadcast();
    });
}

fn detach_exit(d: &HostDevice) {
    misc(|a| {
        assert_eq!(
            d.detaching.load(Ordering::SeqCst),
            curlwp(),
            "not detaching"
        );
        d.detaching.store(0, Ordering::SeqCst);
        a.config_misc_cv.broadcast();
    });
}

/// `config_detach_release(dv, flags)` of NetBSD-current: consume the
/// caller's reference, detach, drain.  See [`crate::autoconf`].
///
/// # Safety
/// The caller holds a reference on `dv`, a host device.
pub unsafe fn config_detach_release(dv: NonNull<device>, flags: c_int) -> c_int {
    // SAFETY: the caller holds a reference, so the device is live.
    let d = unsafe { hdev(dv) };
    // config_detach_enter
    misc(|a| {
        while d.pending.load(Ordering::SeqCst) != 0 || d.detaching.load(Ordering::SeqCst) != 0 {
            assert_ne!(
                d.detaching.load(Ordering::SeqCst),
                curlwp(),
                "recursively detaching {}",
                d.xname.to_string_lossy()
            );
            a.config_misc_cv.wait(&a.config_misc_lock);
        }
        assert_eq!(d.attaching.load(Ordering::SeqCst), 0, "attaching");
        d.detaching.store(curlwp(), Ordering::SeqCst);
    });
    crate::autoconf::release::<Host>(dv);
    let already = with_ac(|a| {
        a.alldevs_lock.enter();
        let g = d.deleted();
        a.alldevs_lock.exit();
        g
    });
    if already {
        detach_exit(d);
        return ENOENT;
    }
    let rv = d.ops.detach(dv, flags);
    assert!(
        !d.detach_done.load(Ordering::SeqCst),
        "{} detached twice",
        d.xname.to_string_lossy()
    );
    if rv != 0 {
        assert!(
            !d.detach_committed.load(Ordering::SeqCst),
            "{} committed to detaching and then backed out, error={rv}",
            d.xname.to_string_lossy()
        );
        if flags & DETACH_FORCE != 0 {
            super::host_panic(format_args!(
                "config_detach: forced detach of {} failed ({rv})",
                d.xname.to_string_lossy()
            ));
        }
        detach_exit(d);
        return rv;
    }
    d.detach_done.store(true, Ordering::SeqCst);
    config_detach_commit(dv);
    let il = <Host as AutoconfKernel>::config_misc_interlock();
    il.enter();
    let name =
        CString::new(format!("config_detach: {}", d.xname.to_string_lossy())).expect("device name");
    // SAFETY: name is a C string that outlives the call.
    unsafe { localcount::drain_named::<Host>(&d.lc, il, name.as_ptr()) };
    il.exit();
    // As NetBSD: leave the detach lock first, then unlink.  In between,
    // lookups find a committed device and must fail without waiting.
    detach_exit(d);
    preempt_point();
    with_ac(|a| {
        a.alldevs_lock.enter();
        // SAFETY: drivers are leaked, never freed.
        let cd = unsafe { d.cd.as_ref() };
        cd.devs[d.unit].store(ptr::null_mut(), Ordering::SeqCst);
        d.del_gen.store(1, Ordering::SeqCst);
        a.alldevs_lock.exit();
    });
    // config_devdelete: finalize and "free" (poison).
    localcount::fini::<Host>(&d.lc);
    d.freed.store(true, Ordering::SeqCst);
    0
}

/// Whether the device has been detached and "freed" (poisoned).
///
/// # Safety
/// `dv` came from [`config_attach_pseudo_acquire`].
pub unsafe fn device_is_freed(dv: NonNull<device>) -> bool {
    // SAFETY: host devices are never deallocated.
    unsafe { dv.cast::<HostDevice>().as_ref() }
        .freed
        .load(Ordering::SeqCst)
}
