//! The host kernel: a simulated NetBSD multiprocessor on threads.
//!
//! It implements [`Kernel`] faithfully enough to break a wrong protocol:
//!
//! * **CPUs.**  A [`Machine`] has N virtual CPUs.  Each has a *preemption
//!   token* (held by the one LWP that runs on it with preemption disabled or
//!   at raised IPL) and an *IPL token* (held by a thread at `splhigh` on it,
//!   or by an interrupt handler running on it).
//! * **LWPs** are threads with a current CPU.  An LWP migrates to a random
//!   CPU whenever it becomes preemptible again (`kpreempt_enable` to zero,
//!   after sleeping, at [`preempt_point`]); with preemption disabled it
//!   cannot move, and per-CPU data is only
//!   reachable that way.  `kpreempt_disable` is a per-LWP counter, as
//!   `l_nopreempt`; a preemption *requested* while it is non-zero (an
//!   xcall thread wanting the CPU: the kernel sets `l_dopreempt`) is
//!   recorded and honoured by the `kpreempt_enable` that brings the count
//!   to zero (`KPREEMPT_ENABLE`'s `kpreempt(0)`): the LWP gives the CPU up
//!   there and then ([`Stats::preempt_requests`],
//!   [`Stats::preempts_honoured`]).  When an LWP
//!   sleeps (mutex, condvar, xcall wait) it gives its tokens up and takes
//!   them back -- possibly on another CPU -- when it wakes, as NetBSD does.
//! * **xcall(9).**  A low-priority broadcast (globally serialized, like
//!   NetBSD's) runs the function in one thread bound to each CPU; before it
//!   starts it must be *dispatched* on that CPU, i.e. take and drop the
//!   preemption token, so it cannot run while an LWP there has preemption
//!   disabled.
//! * **Interrupts.**  [`Machine::interrupt`] runs a handler "on" a CPU from
//!   another thread, holding that CPU's IPL token: it may land anywhere in a
//!   thread's preemption-disabled section (between a load and a store of a
//!   per-CPU counter) but not inside a `splhigh` section.  In a handler,
//!   `kpreempt_disable`/`splhigh` only count, as in the kernel.  Handlers
//!   may block on mutexes (soft-interrupt semantics).
//! * **mutex(9)/condvar(9)** with owner checks ([`HostMutex`],
//!   [`HostCondvar`]); **panic(9)** is a Rust panic with the message, which
//!   tests observe (through an `extern "C"` export it aborts the process,
//!   like a kernel panic stops the machine).
//!
//! The synchronization underneath is std's, or shuttle's under the model
//! checker ([`sync`]).

pub mod autoconf;
pub mod devsw;
pub mod sync;

mod mutex;

use core::ffi::c_void;
use core::ptr::NonNull;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

pub use mutex::{HostCondvar, HostMutex};
use sync::{host_thread_local, AtomicI64, Token};

use crate::kernel::{
    AutoconfKernel, DevswKernel, DevswTables, Interlock, Kernel, PanicMsg, PreemptDisabled, Psz,
    Spl,
};
use crate::sys::conf::{bdevsw, cdevsw};
use crate::sys::localcount::LocalCount;
use crate::sys::types::{cfdriver, device, kcondvar, kmutex, lwp, percpu, XcFunc};

/// The host-kernel backend.
pub struct Host;

/// One virtual CPU.
struct Cpu {
    /// Held while an LWP runs here with preemption disabled / IPL raised.
    preempt: Token,
    /// Held at `splhigh` here, or by an interrupt handler running here.
    ipl: Token,
    /// `l_dopreempt` of the LWP running here with preemption disabled: a
    /// preemption was requested (an xcall waits to be dispatched here).
    dopreempt: sync::AtomicBool,
}

/// A simulated multiprocessor.
pub struct Machine {
    cpus: Box<[Cpu]>,
    /// Low-priority xcalls are serialized, as `xc_lowpri` does.
    xc_lowpri: Token,
    next_lwp: AtomicU64,
    /// Percent chance that an LWP moves to another CPU when it may.
    migrate_pct: AtomicU64,
    stats: Stats,
    /// The devsw tables, `device_lock`, `devsw_cv` ([`devsw`]).
    devsw: devsw::HostDevsw,
    /// Drivers, devices and autoconf's locks ([`autoconf`]).
    autoconf: autoconf::HostAutoconf,
    /// When the machine booted (`uptime_ms`).
    boot: std::time::Instant,
    /// Lines the machine printed on its console (drain reports).
    console: sync::Mutex<Vec<String>>,
    /// The percpu(9) offset arena: slots in use, slots imported.
    percpu_arena: sync::Mutex<(usize, usize)>,
}

/// A cross-call that does nothing (`xc_barrier`, percpu growth).
pub(crate) unsafe extern "C" fn xc_nop(_: *mut c_void, _: *mut c_void) {}

/// Slots of one percpu(9) arena import: `PERCPU_IMPORT_SIZE` (2048) bytes
/// of `int64_t`.
pub(crate) const PERCPU_IMPORT_SLOTS: usize = 2048 / 8;

/// Counters of what the simulation did (for test reports).
#[derive(Default, Debug)]
pub struct Stats {
    /// LWP migrations.
    pub migrations: AtomicU64,
    /// Interrupt handlers run.
    pub interrupts: AtomicU64,
    /// Cross-call broadcasts.
    pub xcalls: AtomicU64,
    /// Sleeps (blocking mutex_enter, cv_wait, xcall waits).
    pub sleeps: AtomicU64,
    /// percpu(9) allocations of this machine not freed yet.
    pub percpu_live: std::sync::atomic::AtomicI64,
    /// Times the percpu(9) arena grew (each with a low-priority xcall).
    pub percpu_grows: AtomicU64,
    /// Preemption requests: an xcall to be dispatched on a CPU where an
    /// LWP had preemption disabled (`l_dopreempt` set).
    pub preempt_requests: AtomicU64,
    /// Requests honoured by the `kpreempt_enable` that re-enabled
    /// preemption (`kpreempt(0)`): the LWP left its CPU there.
    pub preempts_honoured: AtomicU64,
}

/// Per-thread state: which LWP this thread is and where it runs.
struct Ctx {
    m: Arc<Machine>,
    lwp: u64,
    cpu: usize,
    /// Bound to its CPU (xcall threads): never migrates.
    bound: bool,
    /// Running as an interrupt handler on `cpu` (holds its IPL token).
    intr: bool,
    nopreempt: u32,
    spl: i32,
    preempt_held: bool,
    ipl_held: bool,
    rng: u64,
    /// Depth of pserialize(9) read sections (no sleeping inside).
    psz: u32,
    /// The module whose MODULE_CMD_INIT this LWP runs, if any.
    module: Option<devsw::ModSource>,
}

host_thread_local! {
    static CTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
}

/// Live host percpu allocations (leak checks in tests).
static LIVE_PERCPU: AtomicUsize = AtomicUsize::new(0);

/// Number of live host percpu(9) allocations.
pub fn live_percpu() -> usize {
    LIVE_PERCPU.load(Ordering::SeqCst)
}

fn with_ctx<R>(f: impl FnOnce(&mut Ctx) -> R) -> R {
    CTX.with(|c| match c.borrow_mut().as_mut() {
        Some(ctx) => f(ctx),
        None => panic!("host kernel: kernel primitive called outside an LWP"),
    })
}

impl Machine {
    /// A machine with `ncpu` CPUs.
    pub fn new(ncpu: usize) -> Arc<Machine> {
        assert!(ncpu >= 1);
        Arc::new(Machine {
            cpus: (0..ncpu)
                .map(|_| Cpu {
                    preempt: Token::new(),
                    dopreempt: sync::AtomicBool::new(false),
                    ipl: Token::new(),
                })
                .collect(),
            xc_lowpri: Token::new(),
            next_lwp: AtomicU64::new(1),
            migrate_pct: AtomicU64::new(50),
            stats: Stats::default(),
            devsw: devsw::HostDevsw::new(),
            autoconf: autoconf::HostAutoconf::new(),
            boot: std::time::Instant::now(),
            console: sync::Mutex::new(Vec::new()),
            percpu_arena: sync::Mutex::new((0, 0)),
        })
    }

    /// The lines printed on this machine's console so far.
    pub fn console(&self) -> Vec<String> {
        sync::lock(&self.console).clone()
    }

    /// Use up the percpu(9) arena's free space, so that the next
    /// `percpu_alloc` grows it (with an xcall, as `percpu_cpu_enlarge`).
    pub fn percpu_exhaust(&self) {
        let mut a = sync::lock(&self.percpu_arena);
        a.1 = a.0;
    }

    /// Number of CPUs.
    pub fn ncpu(&self) -> usize {
        self.cpus.len()
    }

    /// What the simulation did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of this machine's live percpu(9) allocations (leak checks
    /// that other tests running in parallel cannot disturb).
    pub fn live_percpu(&self) -> i64 {
        self.stats.percpu_live.load(Ordering::SeqCst)
    }

    /// Set the chance (percent) that a preemptible LWP migrates.
    pub fn set_migrate_pct(&self, pct: u64) {
        self.migrate_pct.store(pct.min(100), Ordering::Relaxed);
    }

    /// Who holds each CPU's tokens, for hang diagnostics.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.cpus.iter().enumerate() {
            s += &format!(
                "cpu{i}: preempt={:?} ipl={:?}\n",
                c.preempt.owner(),
                c.ipl.owner()
            );
        }
        s += &format!("xc_lowpri={:?}\n", self.xc_lowpri.owner());
        s
    }

    fn install(self: &Arc<Self>, cpu: usize, bound: bool, intr: bool) -> u64 {
        let lwp = self.next_lwp.fetch_add(1, Ordering::Relaxed);
        CTX.with(|c| {
            let mut c = c.borrow_mut();
            assert!(c.is_none(), "host kernel: thread is already an LWP");
            *c = Some(Ctx {
                m: Arc::clone(self),
                lwp,
                cpu: cpu % self.ncpu(),
                bound,
                intr,
                nopreempt: 0,
                spl: 0,
                preempt_held: false,
                ipl_held: false,
                rng: lwp.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                psz: 0,
                module: None,
            })
        });
        lwp
    }

    /// Run `f` on the current thread as an LWP starting on `cpu`.
    ///
    /// If `f` panics (a simulated kernel panic), the LWP's tokens are given
    /// back so that the rest of the machine can go on.
    pub fn lwp<R>(self: &Arc<Self>, cpu: usize, f: impl FnOnce() -> R) -> R {
        self.install(cpu, false, false);
        let _g = Uninstall;
        f()
    }

    /// Run `f` as an LWP bound to `cpu` (never migrates).
    pub fn bound_lwp<R>(self: &Arc<Self>, cpu: usize, f: impl FnOnce() -> R) -> R {
        self.install(cpu, true, false);
        let _g = Uninstall;
        f()
    }

    /// Spawn a thread that runs `f` as an LWP starting on `cpu`.
    pub fn spawn_lwp<F, R>(self: &Arc<Self>, cpu: usize, f: F) -> sync::thread::JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let m = Arc::clone(self);
        sync::thread::spawn(move || m.lwp(cpu, f))
    }

    /// Run `f` on the current (non-LWP) thread as an interrupt handler on
    /// `cpu`: it excludes, and is excluded by, `splhigh` sections on that
    /// CPU, and may land anywhere else in what runs there.
    pub fn interrupt<R>(self: &Arc<Self>, cpu: usize, f: impl FnOnce() -> R) -> R {
        let cpu = cpu % self.ncpu();
        let lwp = self.install(cpu, true, true);
        let _g = Uninstall;
        self.cpus[cpu].ipl.acquire(lwp);
        with_ctx(|c| c.ipl_held = true);
        self.stats.interrupts.fetch_add(1, Ordering::Relaxed);
        f()
    }
}

/// Drops the current thread's LWP context, giving back its tokens.
struct Uninstall;

impl Drop for Uninstall {
    fn drop(&mut self) {
        let ctx = CTX.with(|c| c.borrow_mut().take());
        if let Some(c) = ctx {
            if c.ipl_held {
                c.m.cpus[c.cpu].ipl.release(c.lwp);
            }
            if c.preempt_held {
                c.m.cpus[c.cpu].preempt.release(c.lwp);
            }
            if !std::thread::panicking() {
                assert!(
                    c.nopreempt == 0 && c.spl == 0,
                    "host kernel: LWP {} ended with preemption disabled ({}) or IPL raised ({})",
                    c.lwp,
                    c.nopreempt,
                    c.spl
                );
            }
        }
    }
}

/// A panic of the simulated kernel itself (its own checks: owner of a
/// mutex, sleeping where it may not, ...), observable like panic(9).
pub(crate) fn host_panic(args: std::fmt::Arguments<'_>) -> ! {
    panic!("panic: {args}")
}

/// The CPU the current LWP runs on.
pub fn curcpu() -> usize {
    with_ctx(|c| c.cpu)
}

/// The current LWP's id.
pub fn curlwp() -> u64 {
    with_ctx(|c| c.lwp)
}

/// This CPU's slot of the host percpu(9) allocation `pc` for an LWP that
/// already has preemption disabled (what [`Kernel::percpu_slot`] returns;
/// for kernels built on the host's primitives, such as the model
/// checker's).  Panics if preemption is not disabled or `pc` was freed.
///
/// # Safety
/// `pc` came from the host's `percpu_alloc`.
pub unsafe fn percpu_slot_disabled(pc: NonNull<percpu>) -> NonNull<AtomicI64> {
    with_ctx(|c| {
        assert!(
            c.nopreempt > 0 || c.intr,
            "percpu_slot: preemption not disabled"
        )
    });
    let cpu = curcpu();
    // SAFETY: caller's contract: `pc` is a HostPercpu (never deallocated).
    let p = unsafe { pc.cast::<HostPercpu>().as_ref() };
    if p.freed.load(Ordering::SeqCst) {
        host_panic(format_args!(
            "percpu_slot: use after free of {:p}",
            pc.as_ptr()
        ));
    }
    NonNull::from(&p.slots[cpu])
}

/// A point where a preemptible LWP may be switched out and migrate.
pub fn preempt_point() {
    with_ctx(maybe_migrate);
    sync::thread::yield_now();
}

/// Move the current (preemptible, unbound) LWP to `cpu`, as the scheduler
/// might at any preemption point.
pub fn migrate_to(cpu: usize) {
    with_ctx(|c| {
        assert!(
            !c.bound && !c.intr && !c.preempt_held && c.nopreempt == 0 && c.spl == 0,
            "host kernel: migrate_to from a pinned context"
        );
        let to = cpu % c.m.ncpu();
        move_to(c, to);
    });
}

fn xorshift(r: &mut u64) -> u64 {
    let mut x = *r;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *r = x;
    x
}

/// Move a preemptible, unbound LWP to a random CPU (sometimes).
fn maybe_migrate(c: &mut Ctx) {
    if c.intr || c.preempt_held || c.nopreempt > 0 || c.spl > 0 {
        return;
    }
    migrate_randomly(c);
}

/// The scheduler's choice for an unbound LWP that is off its CPU
/// (preemptible, or asleep): sometimes another CPU.
fn migrate_randomly(c: &mut Ctx) {
    if c.bound {
        return;
    }
    let pct = c.m.migrate_pct.load(Ordering::Relaxed);
    if xorshift(&mut c.rng) % 100 < pct {
        let n = c.m.ncpu() as u64;
        let to = (xorshift(&mut c.rng) % n) as usize;
        move_to(c, to);
    }
}

/// Put the LWP on CPU `to`, counting a migration.  Callers: a preemptible
/// LWP ([`maybe_migrate`], [`migrate_to`]) or one that slept and holds no
/// CPU ([`sleep`]: an LWP that blocks with preemption disabled, e.g. on
/// the interlock in the release slow path, may wake up elsewhere, as in
/// NetBSD).
fn move_to(c: &mut Ctx, to: usize) {
    debug_assert!(!c.preempt_held && !c.intr && !c.bound);
    if to != c.cpu {
        c.cpu = to;
        c.m.stats.migrations.fetch_add(1, Ordering::Relaxed);
    }
}

/// Take or give back the preemption/IPL tokens so that they match the
/// LWP's state (the single place where an LWP "gets on" or "leaves" a CPU).
fn settle() {
    loop {
        // Decide outside the RefCell borrow, block without it.
        enum Op {
            TakePreempt(Arc<Machine>, usize, u64),
            TakeIpl(Arc<Machine>, usize, u64),
            Done,
        }
        let op = with_ctx(|c| {
            if c.intr {
                return Op::Done;
            }
            let want_preempt = c.nopreempt > 0 || c.spl > 0;
            let want_ipl = c.spl > 0;
            if c.ipl_held && !want_ipl {
                c.m.cpus[c.cpu].ipl.release(c.lwp);
                c.ipl_held = false;
            }
            if c.preempt_held && !want_preempt {
                c.m.cpus[c.cpu].preempt.release(c.lwp);
                c.preempt_held = false;
                maybe_migrate(c);
            }
            if want_preempt && !c.preempt_held {
                return Op::TakePreempt(Arc::clone(&c.m), c.cpu, c.lwp);
            }
            if want_ipl && !c.ipl_held {
                return Op::TakeIpl(Arc::clone(&c.m), c.cpu, c.lwp);
            }
            Op::Done
        });
        match op {
            Op::TakePreempt(m, cpu, lwp) => {
                m.cpus[cpu].preempt.acquire(lwp);
                with_ctx(|c| c.preempt_held = true);
            }
            Op::TakeIpl(m, cpu, lwp) => {
                m.cpus[cpu].ipl.acquire(lwp);
                with_ctx(|c| c.ipl_held = true);
            }
            Op::Done => return,
        }
    }
}

/// Sleep: give up the CPU (both tokens) while `f` blocks, then get back on
/// a CPU -- another one, if the LWP is not bound.
pub(crate) fn sleep<R>(f: impl FnOnce() -> R) -> R {
    if with_ctx(|c| c.psz) != 0 {
        host_panic(format_args!(
            "sleeping in a pserialize read section (lwp {})",
            curlwp()
        ));
    }
    let (m, lwp, cpu, intr, had_ipl, had_preempt) = with_ctx(|c| {
        let s = (
            Arc::clone(&c.m),
            c.lwp,
            c.cpu,
            c.intr,
            c.ipl_held,
            c.preempt_held,
        );
        c.ipl_held = false;
        c.preempt_held = false;
        s
    });
    if had_ipl {
        m.cpus[cpu].ipl.release(lwp);
    }
    if had_preempt {
        m.cpus[cpu].preempt.release(lwp);
    }
    m.stats.sleeps.fetch_add(1, Ordering::Relaxed);
    let r = f();
    if intr {
        // A soft interrupt resumes on its CPU at its IPL.
        if had_ipl {
            m.cpus[cpu].ipl.acquire(lwp);
            with_ctx(|c| c.ipl_held = true);
        }
    } else {
        // Asleep, the LWP held no CPU: it may wake up on another one.
        with_ctx(migrate_randomly);
        settle();
    }
    r
}

/// Block the current LWP in `f` on something outside the simulation (a
/// channel, a timer), as a sleeping LWP: it gives up its CPU meanwhile and
/// may wake up on another one.
pub fn sleep_for<R>(f: impl FnOnce() -> R) -> R {
    sleep(f)
}

/// A host percpu(9) allocation: one `int64_t` counter per CPU.
///
/// Never deallocated: `percpu_free` poisons it, and a later
/// `percpu_getref` panics ("use after free") instead of being undefined
/// behaviour, so that a release that touches a localcount after its drain
/// returned and `fini` ran is caught.
struct HostPercpu {
    size: usize,
    slots: Box<[AtomicI64]>,
    freed: std::sync::atomic::AtomicBool,
}

struct SendPtr(*mut c_void, *mut c_void);
// SAFETY: the xcall arguments are only used while the broadcaster waits,
// exactly as the kernel's xc_broadcast passes them to other CPUs.
unsafe impl Send for SendPtr {}

// SAFETY: the simulation provides the documented semantics: getref takes
// the CPU's preemption token (so the xcall, which must be dispatched through
// that token, is excluded), splhigh takes the IPL token (excluding
// interrupt handlers on that CPU), xcalls run bound to each CPU and are
// joined (a happens-before edge both ways), mutexes/condvars are real ones.
unsafe impl Kernel for Host {
    type Slot = AtomicI64;

    fn percpu_alloc(size: usize) -> NonNull<percpu> {
        assert_eq!(size, 8, "host percpu: only int64_t counters are simulated");
        // ASSERT_SLEEPABLE, and the arena: percpu_backend_alloc imports
        // PERCPU_IMPORT_SIZE more and percpu_cpu_enlarge grows every CPU's
        // storage with a low-priority xcall, which it waits for.
        let grow = with_ctx(|c| {
            if c.intr || c.nopreempt > 0 || c.psz > 0 || c.spl > 0 {
                host_panic(format_args!("percpu_alloc: not sleepable"));
            }
            let mut a = sync::lock(&c.m.percpu_arena);
            let grow = a.0 == a.1;
            if grow {
                a.1 += PERCPU_IMPORT_SLOTS;
            }
            a.0 += 1;
            grow
        });
        if grow {
            with_ctx(|c| c.m.stats.percpu_grows.fetch_add(1, Ordering::Relaxed));
            // SAFETY: xc_nop ignores its (null) arguments.
            unsafe {
                Self::xc_broadcast_wait(xc_nop, core::ptr::null_mut(), core::ptr::null_mut())
            };
        }
        let n = with_ctx(|c| c.m.ncpu());
        let pc = Box::new(HostPercpu {
            size,
            slots: (0..n).map(|_| AtomicI64::new(0)).collect(),
            freed: std::sync::atomic::AtomicBool::new(false),
        });
        LIVE_PERCPU.fetch_add(1, Ordering::SeqCst);
        with_ctx(|c| c.m.stats.percpu_live.fetch_add(1, Ordering::SeqCst));
        NonNull::from(Box::leak(pc)).cast()
    }

    unsafe fn percpu_free(pc: NonNull<percpu>, size: usize) {
        // SAFETY: caller's contract: `pc` came from percpu_alloc (and host
        // allocations are never deallocated).
        let b = unsafe { pc.cast::<HostPercpu>().as_ref() };
        assert_eq!(b.size, size, "percpu_free: size mismatch");
        if b.freed.swap(true, Ordering::SeqCst) {
            host_panic(format_args!("percpu_free: {:p} freed twice", pc.as_ptr()));
        }
        with_ctx(|c| sync::lock(&c.m.percpu_arena).0 -= 1);
        LIVE_PERCPU.fetch_sub(1, Ordering::SeqCst);
        with_ctx(|c| c.m.stats.percpu_live.fetch_sub(1, Ordering::SeqCst));
    }

    unsafe fn percpu_getref(pc: NonNull<percpu>) -> NonNull<AtomicI64> {
        Self::kpreempt_disable();
        let cpu = curcpu();
        // SAFETY: caller's contract: `pc` is a HostPercpu (never
        // deallocated).
        let p = unsafe { pc.cast::<HostPercpu>().as_ref() };
        if p.freed.load(Ordering::SeqCst) {
            host_panic(format_args!(
                "percpu_getref: use after free of {:p}",
                pc.as_ptr()
            ));
        }
        NonNull::from(&p.slots[cpu])
    }

    unsafe fn percpu_putref(_pc: NonNull<percpu>) {
        Self::kpreempt_enable();
    }

    unsafe fn percpu_slot(pc: NonNull<percpu>, _np: &PreemptDisabled<Self>) -> NonNull<AtomicI64> {
        // SAFETY: caller's contract; `_np` keeps preemption disabled.
        unsafe { percpu_slot_disabled(pc) }
    }

    fn kpreempt_disable() {
        with_ctx(|c| c.nopreempt += 1);
        settle();
    }

    fn kpreempt_enable() {
        let honour = with_ctx(|c| {
            assert!(c.nopreempt > 0, "kpreempt_enable: not disabled");
            c.nopreempt -= 1;
            // KPREEMPT_ENABLE: l_dopreempt -> kpreempt(0), which does
            // nothing in interrupt context or while still disabled.
            c.nopreempt == 0
                && c.spl == 0
                && !c.intr
                && c.preempt_held
                && c.m.cpus[c.cpu].dopreempt.swap(false, Ordering::SeqCst)
        });
        settle();
        if honour {
            // kpreempt(0): the CPU went to the requester (settle gave the
            // token back); let it run before this LWP goes on, wherever
            // the scheduler puts it.
            with_ctx(|c| {
                c.m.stats.preempts_honoured.fetch_add(1, Ordering::Relaxed);
            });
            sync::thread::yield_now();
        }
    }

    fn splhigh() -> Spl {
        let s = with_ctx(|c| {
            let s = c.spl;
            c.spl += 1;
            s
        });
        settle();
        Spl(s)
    }

    fn splx(s: Spl) {
        with_ctx(|c| c.spl = s.0);
        settle();
    }

    unsafe fn xc_broadcast_wait(f: XcFunc, a: *mut c_void, b: *mut c_void) {
        let (m, lwp) = with_ctx(|c| {
            assert!(!c.intr, "xc_broadcast: in interrupt context");
            (Arc::clone(&c.m), c.lwp)
        });
        m.stats.xcalls.fetch_add(1, Ordering::Relaxed);
        sleep(|| {
            m.xc_lowpri.acquire(lwp);
            let handles: Vec<_> = (0..m.ncpu())
                .map(|cpu| {
                    let m2 = Arc::clone(&m);
                    let args = SendPtr(a, b);
                    sync::thread::spawn(move || {
                        let args = args;
                        m2.bound_lwp(cpu, || {
                            // Dispatch: the xcall thread gets this CPU only
                            // when nobody has preemption disabled on it.
                            // If an LWP has preemption disabled there,
                            // this is a preemption request (l_dopreempt),
                            // which its kpreempt_enable honours.
                            let me = curlwp();
                            let c = &m2.cpus[cpu];
                            if c.preempt.owner().is_some() {
                                c.dopreempt.store(true, Ordering::SeqCst);
                                m2.stats.preempt_requests.fetch_add(1, Ordering::Relaxed);
                            }
                            c.preempt.acquire(me);
                            c.dopreempt.store(false, Ordering::SeqCst);
                            c.preempt.release(me);
                            // SAFETY: the broadcaster's contract: `f` may be
                            // called with (a, b) until we are joined.
                            unsafe { f(args.0, args.1) }
                        })
                    })
                })
                .collect();
            // Join every CPU's call before reporting a panic from one of
            // them, so that the machine stays usable (xc_lowpri released).
            let panicked = handles.into_iter().filter_map(|h| h.join().err()).next();
            m.xc_lowpri.release(lwp);
            if let Some(e) = panicked {
                std::panic::resume_unwind(e);
            }
        })
    }

    unsafe fn mutex_enter(m: NonNull<kmutex>) {
        // SAFETY: caller's contract: host kmutexes are HostMutexes.
        unsafe { m.cast::<HostMutex>().as_ref() }.enter();
    }
    unsafe fn mutex_exit(m: NonNull<kmutex>) {
        // SAFETY: as above.
        unsafe { m.cast::<HostMutex>().as_ref() }.exit();
    }
    unsafe fn mutex_owned(m: NonNull<kmutex>) -> bool {
        // SAFETY: as above.
        unsafe { m.cast::<HostMutex>().as_ref() }.owned()
    }
    unsafe fn mutex_ownable(m: NonNull<kmutex>) -> bool {
        // SAFETY: as above.
        !unsafe { m.cast::<HostMutex>().as_ref() }.owned()
    }
    unsafe fn cv_wait(cv: NonNull<kcondvar>, m: NonNull<kmutex>) {
        // SAFETY: caller's contract: host objects.
        let (cv, m) = unsafe {
            (
                cv.cast::<HostCondvar>().as_ref(),
                m.cast::<HostMutex>().as_ref(),
            )
        };
        cv.wait(m);
    }
    unsafe fn cv_broadcast(cv: NonNull<kcondvar>) {
        // SAFETY: caller's contract: host condvar.
        unsafe { cv.cast::<HostCondvar>().as_ref() }.broadcast();
    }
    unsafe fn cv_timedwait_ms(cv: NonNull<kcondvar>, m: NonNull<kmutex>, ms: u32) -> bool {
        // SAFETY: caller's contract: host objects.
        let (cv, m) = unsafe {
            (
                cv.cast::<HostCondvar>().as_ref(),
                m.cast::<HostMutex>().as_ref(),
            )
        };
        cv.timedwait(m, std::time::Duration::from_millis(ms.into()))
    }
    fn uptime_ms() -> u64 {
        with_ctx(|c| c.m.boot.elapsed().as_millis() as u64)
    }
    unsafe fn report_drain_wait(name: *const core::ffi::c_char, outstanding: i64, secs: u64) {
        // SAFETY: caller's contract.
        let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
        let line = format!("{name}: {outstanding} references outstanding after {secs} s");
        eprintln!("{line}");
        with_ctx(|c| sync::lock(&c.m.console).push(line));
    }

    fn panic(msg: PanicMsg<'_>) -> ! {
        panic!("panic: {msg}")
    }

    fn preempt_point() {
        let preemptible = with_ctx(|c| !c.intr && c.nopreempt == 0 && c.spl == 0);
        if preemptible {
            preempt_point();
        }
    }
}

// SAFETY: a read section disables preemption on its CPU, which the
// low-priority xcall of xc_barrier must be dispatched through (see
// xc_broadcast_wait), and sleeping inside one panics; the tables are the
// machine's (valid while any of its LWPs runs) with the kernel's
// publication protocol (devsw::devsw_attach); the interlock is the pair
// devsw::devsw_detach drains with.
unsafe impl DevswKernel for Host {
    fn pserialize_read_enter() -> Psz {
        with_ctx(|c| c.psz += 1);
        Self::kpreempt_disable();
        Psz(0)
    }
    fn pserialize_read_exit(_s: Psz) {
        Self::kpreempt_enable();
        with_ctx(|c| {
            assert!(c.psz > 0, "pserialize_read_exit: not in a read section");
            c.psz -= 1;
        });
    }
    fn bdevsw_tables() -> DevswTables<bdevsw> {
        devsw::tables::<bdevsw>()
    }
    fn cdevsw_tables() -> DevswTables<cdevsw> {
        devsw::tables::<cdevsw>()
    }
    fn devsw_interlock() -> Interlock<Self> {
        let (cv, m) = devsw::interlock();
        // SAFETY: the machine's condvar and mutex, alive with the machine.
        unsafe { Interlock::new(cv, m) }
    }
}

// SAFETY: the machine's autoconf ([`autoconf`]): its locks, and accessors
// of host devices that panic on a detached ("freed") device instead of
// reading it.
unsafe impl AutoconfKernel for Host {
    fn config_misc_interlock() -> Interlock<Self> {
        let (cv, m) = autoconf::interlock();
        // SAFETY: the machine's condvar and mutex, alive with the machine.
        unsafe { Interlock::new(cv, m) }
    }
    fn alldevs_lock() -> NonNull<kmutex> {
        autoconf::alldevs_lock()
    }
    unsafe fn cfdriver_unit(
        cd: NonNull<cfdriver>,
        unit: core::ffi::c_int,
    ) -> Option<NonNull<device>> {
        // SAFETY: caller's contract (a host cfdriver).
        unsafe { autoconf::cfdriver_unit(cd, unit) }
    }
    unsafe fn device_localcount(dv: NonNull<device>) -> *mut LocalCount {
        // SAFETY: caller's contract (a host device).
        unsafe { autoconf::hdev(dv) }.localcount()
    }
    unsafe fn device_deleted(dv: NonNull<device>) -> bool {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.deleted()
    }
    unsafe fn device_detach_committed(dv: NonNull<device>) -> bool {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.detach_committed()
    }
    unsafe fn device_detach_done(dv: NonNull<device>) -> bool {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.detach_done()
    }
    unsafe fn device_attaching(dv: NonNull<device>) -> *const lwp {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.attaching()
    }
    unsafe fn device_detaching(dv: NonNull<device>) -> *const lwp {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.detaching()
    }
    unsafe fn device_private(dv: NonNull<device>) -> *mut c_void {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.private()
    }
    unsafe fn device_xname(dv: NonNull<device>) -> *const core::ffi::c_char {
        // SAFETY: as above.
        unsafe { autoconf::hdev(dv) }.xname_ptr()
    }
    fn curlwp() -> *const lwp {
        autoconf::curlwp_ptr()
    }
    fn assert_sleepable() {
        let ok = with_ctx(|c| !c.intr && c.nopreempt == 0 && c.spl == 0 && c.psz == 0);
        if !ok {
            host_panic(format_args!("ASSERT_SLEEPABLE: not sleepable"));
        }
    }
    unsafe fn cfdriver_lookup(name: *const core::ffi::c_char) -> Option<NonNull<cfdriver>> {
        // SAFETY: caller's contract (NUL-terminated).
        let name = unsafe { std::ffi::CStr::from_ptr(name) };
        autoconf::cfdriver_lookup(name)
    }
    fn kernconfig_lock() {
        autoconf::kernconfig_lock()
    }
    fn kernconfig_unlock() {
        autoconf::kernconfig_unlock()
    }
    unsafe fn config_detach_release(
        dv: NonNull<device>,
        flags: core::ffi::c_int,
    ) -> core::ffi::c_int {
        // SAFETY: caller's contract (a held reference on a host device).
        unsafe { autoconf::config_detach_release(dv, flags) }
    }
}
