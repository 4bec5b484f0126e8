//! One CPU's counter in a percpu(9) allocation: the [`PerCpuSlot`] trait
//! and the kernel's slot type, [`KernelSlot`].

/// One CPU's `int64_t` counter in a percpu(9) allocation.
///
/// The per-CPU update is a read-modify-write that is not atomic between CPUs
/// (that is the point of localcount): only its own CPU touches a slot, with
/// preemption disabled.  What it must be atomic against is an interrupt
/// handler on the same CPU that adjusts the same counter.  NetBSD's C code
/// gets that by raising to `splhigh` around `load`/`store`; where one
/// instruction can do the whole update ([`PerCpuSlot::ADD_IS_INTERRUPT_ATOMIC`]),
/// [`PerCpuSlot::add`] needs no IPL change, because interrupts are only taken
/// between instructions.
pub trait PerCpuSlot {
    /// Whether [`PerCpuSlot::add`] is atomic with respect to interrupts on
    /// this CPU (a single instruction).  If false, callers raise the IPL.
    const ADD_IS_INTERRUPT_ATOMIC: bool;
    /// Read this CPU's counter (one untorn access).
    fn load(&self) -> i64;
    /// Write this CPU's counter (one untorn access).
    fn store(&self, v: i64);
    /// Add `delta` to this CPU's counter; interrupt-atomic if
    /// `ADD_IS_INTERRUPT_ATOMIC`.
    fn add(&self, delta: i64);
}

/// The alignment of [`KernelSlot`] on this target, at most what percpu(9)
/// guarantees a slot: offsets in a percpu allocation are multiples of
/// `PERCPU_QUANTUM_SIZE` (`ALIGNBYTES + 1`: 8 on amd64, 16 on aarch64,
/// only 4 on i386) from storage that `kmem_alloc` aligns at least as much.
/// The kernel glue checks `LOCALCOUNT_SLOT_ALIGN <= ALIGNBYTES + 1` with a
/// `CTASSERT`, so a port with smaller slots fails to build.
#[cfg(not(target_arch = "x86"))]
pub const LOCALCOUNT_SLOT_ALIGN: usize = 8;
/// The alignment of [`KernelSlot`] on i386: 4, as percpu(9)'s there.
#[cfg(target_arch = "x86")]
pub const LOCALCOUNT_SLOT_ALIGN: usize = 4;

/// A NetBSD percpu(9) `int64_t`, updated only by its own CPU.
///
/// Where the slot is 8-aligned (amd64, aarch64) it is an `AtomicI64`
/// accessed with relaxed single instructions.  On i386 percpu(9) slots are
/// only 4-aligned, and `AtomicI64` requires 8 (a reference to a
/// misaligned one would be undefined behaviour), so there it is a plain
/// `int64_t` (alignment 4 in the i386 ABI), read and written with volatile
/// accesses: only its own CPU touches it, at `splhigh` (the update is not
/// interrupt-atomic, [`PerCpuSlot::ADD_IS_INTERRUPT_ATOMIC`] is false), and
/// the drain xcall reads it on that CPU with preemption excluded.
#[cfg(not(target_arch = "x86"))]
#[repr(transparent)]
pub struct KernelSlot(core::sync::atomic::AtomicI64);

/// A NetBSD percpu(9) `int64_t` on i386 (4-aligned): see the other targets'.
#[cfg(target_arch = "x86")]
#[repr(transparent)]
pub struct KernelSlot(core::cell::UnsafeCell<i64>);

static_assertions::assert_eq_size!(KernelSlot, i64);
static_assertions::const_assert_eq!(core::mem::align_of::<KernelSlot>(), LOCALCOUNT_SLOT_ALIGN);
// What percpu(9) guarantees (ALIGNBYTES + 1) on the kernel targets.
#[cfg(target_arch = "x86_64")]
static_assertions::const_assert!(LOCALCOUNT_SLOT_ALIGN <= 8);
#[cfg(target_arch = "aarch64")]
static_assertions::const_assert!(LOCALCOUNT_SLOT_ALIGN <= 16);
#[cfg(target_arch = "x86")]
static_assertions::const_assert!(LOCALCOUNT_SLOT_ALIGN <= 4);

#[cfg(target_arch = "x86")]
impl PerCpuSlot for KernelSlot {
    const ADD_IS_INTERRUPT_ATOMIC: bool = false;

    #[inline(always)]
    fn load(&self) -> i64 {
        // SAFETY: a live, 4-aligned (enough for i64 here) slot that only
        // this CPU accesses, with interrupts blocked by the caller.
        unsafe { self.0.get().read_volatile() }
    }
    #[inline(always)]
    fn store(&self, v: i64) {
        // SAFETY: as in load.
        unsafe { self.0.get().write_volatile(v) }
    }
    #[inline(always)]
    fn add(&self, delta: i64) {
        self.store(self.load().wrapping_add(delta));
    }
}

#[cfg(not(target_arch = "x86"))]
impl PerCpuSlot for KernelSlot {
    /// On x86-64 a non-locked `add` to memory is one instruction: an
    /// interrupt on this CPU sees the counter before or after it, never in
    /// between (no `lock` prefix: no other CPU writes this slot).
    const ADD_IS_INTERRUPT_ATOMIC: bool = cfg!(target_arch = "x86_64");

    #[inline(always)]
    fn load(&self) -> i64 {
        self.0.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn store(&self, v: i64) {
        self.0.store(v, core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn add(&self, delta: i64) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self.0.as_ptr()` is a valid, aligned int64_t that only
        // this CPU writes while the caller holds it (preemption disabled);
        // the instruction reads and writes nothing else and uses no stack.
        unsafe {
            // `delta` is a constant at every call site, so this folds to
            // one `inc`, `dec` or `add` instruction.
            let p = self.0.as_ptr();
            if delta == 1 {
                core::arch::asm!("inc qword ptr [{p}]", p = in(reg) p, options(nostack));
            } else if delta == -1 {
                core::arch::asm!("dec qword ptr [{p}]", p = in(reg) p, options(nostack));
            } else {
                core::arch::asm!(
                    "add qword ptr [{p}], {d}",
                    p = in(reg) p,
                    d = in(reg) delta,
                    options(nostack),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.store(self.load().wrapping_add(delta));
    }
}

/// The host's per-CPU counters (std or shuttle atomics): `fetch_add` is one
/// indivisible step, like x86's `add` to memory.
impl PerCpuSlot for core::sync::atomic::AtomicI64 {
    const ADD_IS_INTERRUPT_ATOMIC: bool = true;

    #[inline(always)]
    fn load(&self) -> i64 {
        self.load(core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn store(&self, v: i64) {
        self.store(v, core::sync::atomic::Ordering::Relaxed)
    }
    #[inline(always)]
    fn add(&self, delta: i64) {
        self.fetch_add(delta, core::sync::atomic::Ordering::Relaxed);
    }
}
