//! The amd64 fast path: `curlwp`, `KPREEMPT_DISABLE`/`KPREEMPT_ENABLE` and
//! `percpu_getref` inlined, as the kernel itself inlines them, so that a
//! fast-path `localcount_acquire`/`localcount_release` calls nothing.
//!
//! What the kernel's own C does, and what this module does instead of
//! calling it:
//!
//! | C (NetBSD-current, amd64) | here |
//! |---|---|
//! | `curlwp`: `x86_curlwp()`, `movq %gs:offsetof(struct cpu_info, ci_curlwp)` | [`curlwp`], the same instruction |
//! | `kpreempt_disable()`: `KPREEMPT_DISABLE(curlwp)` in `<sys/lwp.h>`: `l->l_nopreempt++` and a compiler barrier | [`kpreempt_disable`] |
//! | `kpreempt_enable()`: `KPREEMPT_ENABLE(curlwp)`: `KASSERT(l == curlwp)`, `KASSERT(l->l_nopreempt > 0)`, barrier, `l->l_nopreempt--`, barrier, `if (l->l_dopreempt) kpreempt(0)` | [`kpreempt_enable`] |
//! | `percpu_getref(pc)` with preemption already disabled: `percpu_getptr_remote(pc, curcpu())`, i.e. `curcpu()->ci_data.cpu_percpu.pcc_data + percpu_offset(pc)`, which `KASSERT`s `pc->pc_offset < percpu_allocation.nextoff` | [`percpu_ptr`] |
//!
//! **No layout is known here.**  Every offset comes from the kernel being
//! linked, as an absolute symbol that the linker writes into the
//! displacement of the instruction that uses it (`R_X86_64_32S`):
//! `kern/rust_localcount_glue.c` defines the offsets into `struct
//! cpu_info` and `struct lwp` from the kernel's own headers, and the
//! patch to `kern/subr_percpu.c` (`netbsd-patches/0004`) the offset of
//! `pc_offset` in its private `struct percpu` and the address of
//! `percpu_allocation.nextoff`; both `CTASSERT` the sizes of the fields
//! that the instructions below assume.  A kernel without them does not
//! link; a kernel with another layout links with its own offsets.
//!
//! The accesses are `asm!` with `sym` operands rather than Rust loads
//! through `addr_of!(symbol) as usize`: an absolute symbol may be 0
//! (`pc_offset` is the first field of `struct percpu`), and Rust assumes
//! that a static's address is never null.

use core::arch::asm;

use crate::sys::types::{lwp, percpu};

// Absolute symbols: only their *values* (offsets) are used, as `sym`
// operands of `asm!` displacements; they are never read as statics.
extern "C" {
    /// `offsetof(struct cpu_info, ci_curlwp)` (glue).
    static rust_localcount_ci_curlwp: u8;
    /// `offsetof(struct cpu_info, ci_data.cpu_percpu.pcc_data)` (glue).
    static rust_localcount_ci_percpu_data: u8;
    /// `offsetof(struct lwp, l_nopreempt)` (glue; an `int`).
    static rust_localcount_l_nopreempt: u8;
    /// `offsetof(struct lwp, l_dopreempt)` (glue; a `u_int`).
    static rust_localcount_l_dopreempt: u8;
    /// `offsetof(struct percpu, pc_offset)` (subr_percpu.c; an
    /// `unsigned`).
    static rust_localcount_pc_offset: u8;
    /// `&percpu_allocation.nextoff` (subr_percpu.c; an `unsigned int`):
    /// the bound `percpu_offset()` `KASSERT`s.
    #[cfg(feature = "diagnostic")]
    static rust_localcount_percpu_nextoff: u32;
}

/// `curlwp`: the LWP running on this CPU, `movq %gs:ci_curlwp, %reg`.
///
/// `pure, nomem`: within one call of a library function it is always the
/// same LWP (C declares `x86_curlwp()` `__attribute__((const))` for the
/// same reason), so LLVM loads it once per function, not after every
/// compiler barrier.
#[inline(always)]
pub fn curlwp() -> *mut lwp {
    let l: *mut lwp;
    // SAFETY: in the kernel %gs is this CPU's struct cpu_info, whose
    // ci_curlwp (at the kernel's own offset) is the running LWP; the
    // instruction only loads.
    unsafe {
        asm!(
            "movq %gs:{ci_curlwp}, {l}",
            ci_curlwp = sym rust_localcount_ci_curlwp,
            l = out(reg) l,
            options(att_syntax, pure, nomem, nostack, preserves_flags),
        );
    }
    l
}

/// `KASSERT(l == curlwp)` with a fresh load of `curlwp` (DEBUG+LOCKDEBUG
/// builds; see [`kpreempt_enable`]).
#[cfg(all(feature = "diagnostic", feature = "lc-debug"))]
#[inline(always)]
fn assert_curlwp(l: *mut lwp) {
    // SAFETY: compares `l` with %gs:ci_curlwp (as in curlwp); not `pure`,
    // so it is a real load every time.
    unsafe {
        asm!(
            "cmpq %gs:{ci_curlwp}, {l}",
            "jne {bad}",
            ci_curlwp = sym rust_localcount_ci_curlwp,
            l = in(reg) l,
            bad = label { failed("l == (l1 = curlwp)", line!()) },
            options(att_syntax, readonly, nostack),
        );
    }
}

/// `KPREEMPT_DISABLE(curlwp)`: `l->l_nopreempt++`, a compiler barrier.
/// (Its `KASSERT(l == curlwp)` is true by construction: `l` *is* the
/// `curlwp` just loaded.)
#[inline(always)]
pub fn kpreempt_disable() {
    let l = curlwp();
    // SAFETY: `l` is the running LWP, alive while it runs; only it writes
    // its l_nopreempt (an int, CTASSERTed by the glue), and an interrupt
    // handler on this CPU restores it before returning, so one
    // non-locked `incl` is atomic enough.  No `nomem`: a compiler barrier,
    // as __insn_barrier().
    unsafe {
        asm!(
            "incl {l_nopreempt}({l})",
            l = in(reg) l,
            l_nopreempt = sym rust_localcount_l_nopreempt,
            options(att_syntax, nostack),
        );
    }
}

/// `KPREEMPT_ENABLE(curlwp)`: `KASSERT(l == curlwp)` and
/// `KASSERT(l->l_nopreempt > 0)` (DIAGNOSTIC), `l->l_nopreempt--`, then,
/// if a preemption was requested meanwhile (`l->l_dopreempt`, set by the
/// scheduler while preemption was disabled), `kpreempt(0)`, which honours
/// it now.
///
/// `KASSERT(l == curlwp)`: in C's `kpreempt_enable()`, i.e.
/// `KPREEMPT_ENABLE(curlwp)`, clang compiles this `KASSERTMSG` to nothing
/// (`x86_curlwp()` is `__attribute__((const))`, so both sides are one
/// load; see `kpreempt_enable` in the C kernel's disassembly).  Here too
/// `l` *is* `curlwp` by construction in DIAGNOSTIC builds; DEBUG+LOCKDEBUG
/// builds (`lc-debug`) also load `curlwp` again and compare (two
/// instructions), which fails if `%gs` or `ci_curlwp` changed under the
/// preemption-disabled section.
#[inline(always)]
pub fn kpreempt_enable() {
    let l = curlwp();
    #[cfg(feature = "diagnostic")]
    {
        #[cfg(feature = "lc-debug")]
        assert_curlwp(l);
        // SAFETY: `l` is the running LWP.  The decrement and the test of
        // l_dopreempt after it are in program order (one asm statement,
        // no `nomem`: a compiler barrier around both).  `jl` after `decl`
        // is taken exactly when l_nopreempt was <= 0 before it (signed
        // compare of old - 1 < 0, overflow included).
        unsafe {
            asm!(
                "decl {l_nopreempt}({l})",
                "jl {not_disabled}",
                "cmpl $0, {l_dopreempt}({l})",
                "jne {dopreempt}",
                l = in(reg) l,
                l_nopreempt = sym rust_localcount_l_nopreempt,
                l_dopreempt = sym rust_localcount_l_dopreempt,
                not_disabled = label { failed("l->l_nopreempt > 0", line!()) },
                dopreempt = label { preempt_now() },
                options(att_syntax, nostack),
            );
        }
    }
    #[cfg(not(feature = "diagnostic"))]
    // SAFETY: as above, without the KASSERT.
    unsafe {
        asm!(
            "decl {l_nopreempt}({l})",
            "cmpl $0, {l_dopreempt}({l})",
            "jne {dopreempt}",
            l = in(reg) l,
            l_nopreempt = sym rust_localcount_l_nopreempt,
            l_dopreempt = sym rust_localcount_l_dopreempt,
            dopreempt = label { preempt_now() },
            options(att_syntax, nostack),
        );
    }
}

/// `kpreempt(0)`: a preemption was requested while it was disabled.
#[cold]
#[inline(never)]
fn preempt_now() {
    // SAFETY: kpreempt may be called in any context with preemption
    // enabled (it does nothing where it may not preempt), exactly as
    // KPREEMPT_ENABLE calls it.
    unsafe {
        crate::sys::imports::kpreempt(0);
    }
}

/// A failed `KASSERT` of `<sys/lwp.h>` or `subr_percpu.c`.
#[cfg(feature = "diagnostic")]
#[cold]
#[inline(never)]
fn failed(expr: &'static str, line: u32) -> ! {
    use crate::kernel::{Kernel, PanicMsg};
    super::NetBSD::panic(PanicMsg::Assertion {
        expr,
        file: file!(),
        line,
        detail: None,
    })
}

/// `percpu_getptr_remote(pc, curcpu())`: this CPU's copy of the percpu(9)
/// allocation `pc`, i.e. `%gs:pcc_data + pc->pc_offset`, with
/// `KASSERT(pc->pc_offset < percpu_allocation.nextoff)` (DIAGNOSTIC), as
/// `percpu_offset()`.
///
/// # Safety
/// `pc` is a live percpu(9) allocation, and the caller has disabled
/// preemption (the pointer is this CPU's only while it stays disabled: the
/// low-priority xcall that moves a CPU's percpu area when it grows cannot
/// run here until then).
#[inline(always)]
pub unsafe fn percpu_ptr(pc: *const percpu) -> *mut i64 {
    let mut p: usize;
    // SAFETY: `pc` is live (caller); its pc_offset is an unsigned int
    // (CTASSERTed in subr_percpu.c), which `movl` zero-extends.  A load.
    unsafe {
        asm!(
            "movl {pc_offset}({pc}), {p:e}",
            pc = in(reg) pc,
            p = out(reg) p,
            pc_offset = sym rust_localcount_pc_offset,
            options(att_syntax, pure, readonly, nostack, preserves_flags),
        );
    }
    // SAFETY: reads percpu_allocation.nextoff, an unsigned int of
    // subr_percpu.c that lives forever (as percpu_offset() does, unlocked).
    #[cfg(feature = "diagnostic")]
    unsafe {
        asm!(
            "cmpl {nextoff}(%rip), {p:e}",
            "jae {bad}",
            p = in(reg) p,
            nextoff = sym rust_localcount_percpu_nextoff,
            bad = label { failed("off < percpu_allocation.nextoff", line!()) },
            options(att_syntax, readonly, nostack),
        );
    }
    // SAFETY: %gs is this CPU's cpu_info and pcc_data its percpu area,
    // which stays this CPU's while preemption is disabled (caller).  A
    // load.
    unsafe {
        asm!(
            "addq %gs:{pcc_data}, {p}",
            p = inout(reg) p,
            pcc_data = sym rust_localcount_ci_percpu_data,
            options(att_syntax, pure, readonly, nostack),
        );
    }
    p as *mut i64
}
