/*	$NetBSD$	*/

/*
 * rust_localcount_glue.c -- kernel glue for the Rust localcount(9)
 * (options RUST_LOCALCOUNT).
 *
 * The Rust library (rust_localcount.o on the kernel link line) calls
 * kernel functions directly.  What it cannot call or must not know gets a
 * linkable accessor here:
 *
 *  - splhigh(), splx(), curlwp and ASSERT_SLEEPABLE() are macros or
 *    inline functions on most ports;
 *  - struct device is private to autoconf (<sys/device_impl.h>): the
 *    library reads the few fields device_lookup_acquire needs through
 *    rust_device_*() and rust_cfdriver_unit(), never by offset;
 *  - the library reads d_localcount of struct bdevsw/cdevsw by offset,
 *    so the offsets it was built with (from <sys/localcount.h>) are
 *    checked against <sys/conf.h> here, at compile time;
 *  - on amd64 the library inlines curlwp, KPREEMPT_DISABLE/ENABLE and
 *    percpu_getref as the kernel does (no function call on the
 *    localcount_acquire/release fast path): the offsets into struct
 *    cpu_info and struct lwp that it uses are defined here, from this
 *    kernel's headers, as absolute symbols that the linker writes into
 *    its instructions (rust_localcount_layout below; struct percpu's
 *    are in subr_percpu.c, which keeps it private).
 *
 * (autoconf's and devsw's file-static locks have their accessors in
 * subr_autoconf.c and subr_devsw.c.)  Nothing else belongs in this
 * file: the algorithms live in Rust.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/conf.h>
#include <sys/cpu.h>
#include <sys/device.h>
#include <sys/device_impl.h>
#include <sys/intr.h>
#include <sys/lwp.h>
#include <sys/sched.h>
#include <sys/condvar.h>
#include <sys/time.h>
#include <sys/localcount.h>

int	rust_localcount_splhigh(void);
void	rust_localcount_splx(int);
struct lwp *rust_localcount_curlwp(void);
void	rust_localcount_assert_sleepable(void);
device_t rust_cfdriver_unit(cfdriver_t, int);
struct localcount *rust_device_localcount(device_t);
bool	rust_device_deleted(device_t);
bool	rust_device_detach_committed(device_t);
bool	rust_device_detach_done(device_t);
struct lwp *rust_device_attaching(device_t);
struct lwp *rust_device_detaching(device_t);
int	rust_cv_timedwait_ms(kcondvar_t *, kmutex_t *, int);
uint64_t rust_uptime_ms(void);

/* The library's view of struct bdevsw/cdevsw (see <sys/conf.h>). */
CTASSERT(offsetof(struct bdevsw, d_localcount) == BDEVSW_D_LOCALCOUNT_OFFSET);
CTASSERT(offsetof(struct cdevsw, d_localcount) == CDEVSW_D_LOCALCOUNT_OFFSET);

/*
 * The library's per-CPU int64_t slot needs LOCALCOUNT_SLOT_ALIGN; a
 * percpu(9) allocation offers PERCPU_QUANTUM_SIZE, ALIGNBYTES + 1.
 */
CTASSERT(LOCALCOUNT_SLOT_ALIGN <= ALIGNBYTES + 1);

#if defined(__x86_64__) && !defined(RUST_LOCALCOUNT_RUMP)
/*
 * The fields the amd64 fast path reads and writes, with the sizes its
 * instructions assume (movq, incl/decl, cmpl).
 */
CTASSERT(sizeof(((struct cpu_info *)0)->ci_curlwp) == sizeof(uint64_t));
CTASSERT(sizeof(((struct cpu_info *)0)->ci_data.cpu_percpu.pcc_data) ==
    sizeof(uint64_t));
CTASSERT(sizeof(((struct lwp *)0)->l_nopreempt) == sizeof(uint32_t));
CTASSERT(sizeof(((struct lwp *)0)->l_dopreempt) == sizeof(uint32_t));

/*
 * rust_localcount_layout()
 *
 *	Never called: its body only defines, as absolute symbols, the
 *	offsets of this kernel's structures that the library's amd64
 *	fast path uses (src/backend/netbsd/amd64.rs):
 *
 *	rust_localcount_ci_curlwp	offsetof(struct cpu_info, ci_curlwp)
 *	rust_localcount_ci_percpu_data	offsetof(struct cpu_info,
 *					    ci_data.cpu_percpu.pcc_data)
 *	rust_localcount_l_nopreempt	offsetof(struct lwp, l_nopreempt)
 *	rust_localcount_l_dopreempt	offsetof(struct lwp, l_dopreempt)
 *
 *	The library refers to them as displacements (R_X86_64_32S), so it
 *	carries no layout of its own: a kernel whose structures differ
 *	gets its own offsets at link time, and a kernel without these
 *	symbols does not link.  (An "i" operand needs a function around
 *	it: clang rejects operands in file-scope asm.)
 */
__used static void
rust_localcount_layout(void)
{

	__asm(".globl rust_localcount_ci_curlwp\n\t"
	    ".set rust_localcount_ci_curlwp, %c0\n\t"
	    ".globl rust_localcount_ci_percpu_data\n\t"
	    ".set rust_localcount_ci_percpu_data, %c1\n\t"
	    ".globl rust_localcount_l_nopreempt\n\t"
	    ".set rust_localcount_l_nopreempt, %c2\n\t"
	    ".globl rust_localcount_l_dopreempt\n\t"
	    ".set rust_localcount_l_dopreempt, %c3"
	    :
	    : "i" (offsetof(struct cpu_info, ci_curlwp)),
	      "i" (offsetof(struct cpu_info, ci_data.cpu_percpu.pcc_data)),
	      "i" (offsetof(struct lwp, l_nopreempt)),
	      "i" (offsetof(struct lwp, l_dopreempt)));
}
#endif	/* __x86_64__ && !RUST_LOCALCOUNT_RUMP */

/*
 * rust_localcount_splhigh()
 *
 *	Block all interrupts on this CPU; return the previous level for
 *	rust_localcount_splx.  Any context; never sleeps.
 */
int
rust_localcount_splhigh(void)
{

	return splhigh();
}

/*
 * rust_localcount_splx(s)
 *
 *	Restore the interrupt priority level s returned by
 *	rust_localcount_splhigh on this CPU.  Any context; never sleeps.
 */
void
rust_localcount_splx(int s)
{

	splx(s);
}

/*
 * rust_localcount_curlwp()
 *
 *	The current LWP.  Any context.
 */
struct lwp *
rust_localcount_curlwp(void)
{

	return curlwp;
}

/*
 * rust_localcount_assert_sleepable()
 *
 *	ASSERT_SLEEPABLE(): panic (DIAGNOSTIC) if the caller may not
 *	sleep.  Any context.
 */
void
rust_localcount_assert_sleepable(void)
{

	ASSERT_SLEEPABLE();
}

/*
 * rust_cfdriver_unit(cd, unit)
 *
 *	cd->cd_devs[unit], or NULL if unit is out of range.  Caller
 *	holds alldevs_lock.
 */
device_t
rust_cfdriver_unit(cfdriver_t cd, int unit)
{

	if (unit < 0 || unit >= cd->cd_ndevs)
		return NULL;
	return cd->cd_devs[unit];
}

/*
 * rust_device_localcount(dv)
 *
 *	dv->dv_localcount (set when dv is allocated, freed with it).
 *	dv must be live.
 */
struct localcount *
rust_device_localcount(device_t dv)
{

	return dv->dv_localcount;
}

/*
 * rust_device_deleted(dv)
 *
 *	True if dv has been unlinked by a detach (dv_del_gen != 0).
 *	Caller holds alldevs_lock.
 */
bool
rust_device_deleted(device_t dv)
{

	return dv->dv_del_gen != 0;
}

/*
 * rust_device_detach_committed(dv)
 *
 *	dv->dv_detach_committed: a detach of dv can no longer back out.
 *	Caller holds config_misc_lock.
 */
bool
rust_device_detach_committed(device_t dv)
{

	return dv->dv_detach_committed;
}

/*
 * rust_device_detach_done(dv)
 *
 *	dv->dv_detach_done: the detach routine of dv has succeeded.
 *	Caller makes sure the detach cannot complete meanwhile.
 */
bool
rust_device_detach_done(device_t dv)
{

	return dv->dv_detach_done;
}

/*
 * rust_device_attaching(dv), rust_device_detaching(dv)
 *
 *	The LWP still running the attach routine of dv, or the LWP
 *	detaching dv; NULL if none.  Caller holds config_misc_lock.
 */
struct lwp *
rust_device_attaching(device_t dv)
{

	return dv->dv_attaching;
}

struct lwp *
rust_device_detaching(device_t dv)
{

	return dv->dv_detaching;
}

/*
 * rust_cv_timedwait_ms(cv, mtx, ms)
 *
 *	cv_timedwait for about ms milliseconds (mstohz is a macro):
 *	0, or EWOULDBLOCK if it timed out.  Thread context; mtx held;
 *	sleeps.
 */
int
rust_cv_timedwait_ms(kcondvar_t *cv, kmutex_t *mtx, int ms)
{

	return cv_timedwait(cv, mtx, MAX(1, mstohz(ms)));
}

/*
 * rust_uptime_ms()
 *
 *	Milliseconds since boot, from the uptime clock.  Any context;
 *	never sleeps.
 */
uint64_t
rust_uptime_ms(void)
{
	struct timeval tv;

	getmicrouptime(&tv);
	return (uint64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/*
 * rust_localcount_preempt_point()
 *
 *	Yield the CPU if the caller is a thread with preemption enabled,
 *	as kernel preemption could at any instruction of preemptible
 *	code; otherwise do nothing.  Only the DELIBERATELY BROKEN build
 *	of the library (feature broken-release-no-preempt) calls it, in
 *	the window its missing kpreempt_disable() opens, so that the
 *	in-kernel suite can show that it catches the race.
 *
 *	A port without kernel preemption (no __HAVE_PREEMPTION, e.g.
 *	aarch64) never takes the CPU from a thread in the kernel, and its
 *	kpreempt_disabled() is always true: the window never opens there.
 *	This yields where a port with kernel preemption could preempt:
 *	thread context, kpreempt_disable() not in effect, no IPL raised
 *	(which holding a spin mutex implies; splhigh() returns the
 *	previous level).  Likewise in a rump kernel (RUST_LOCALCOUNT_RUMP),
 *	which never preempts and whose kpreempt_disabled() is always true:
 *	there it asks the LWP's own count, and yield() may move the LWP to
 *	another virtual CPU.
 */
void	rust_localcount_preempt_point(void);

void
rust_localcount_preempt_point(void)
{
#if !defined(RUST_LOCALCOUNT_RUMP) && !defined(__HAVE_PREEMPTION)
	int s;
#endif

	if (cpu_intr_p() || cpu_softintr_p())
		return;
#if defined(RUST_LOCALCOUNT_RUMP)
	if (curlwp->l_nopreempt == 0)
		yield();
#elif defined(__HAVE_PREEMPTION)
	if (!kpreempt_disabled())
		yield();
#else
	if (curlwp->l_nopreempt != 0)
		return;
	s = splhigh();
	splx(s);
	if (s == IPL_NONE)
		yield();
#endif
}

/*
 * rust_localcount_interrupt_point()
 *
 *	Busy-wait a few microseconds with the caller's interrupt priority
 *	level, so that an interrupt pending on this CPU is taken here.
 *	On hardware an interrupt can come between any two instructions;
 *	QEMU's TCG takes one only between translated blocks, so the load,
 *	add and store of a per-CPU update, in one block, are never
 *	interrupted there.  Only the DELIBERATELY BROKEN build of the
 *	library (feature broken-percpu-no-spl) calls it, between the load
 *	and the store of its unprotected per-CPU update, so that the
 *	in-kernel suite can show that it catches the lost update.  Any
 *	context.
 */
void	rust_localcount_interrupt_point(void);

void
rust_localcount_interrupt_point(void)
{

	delay(2);
}

/*
 * The library is built for either a DEBUG && LOCKDEBUG kernel (it keeps
 * lc_refcnt) or not, and defines localcount_rust_built_debug or
 * localcount_rust_built_nodebug accordingly.  Referencing the one that
 * matches this kernel's options turns a mismatch into a link error.
 */
#ifdef LOCALCOUNT_DEBUG
__used static const volatile uint8_t *const rust_localcount_built_for =
    &localcount_rust_built_debug;
#else
__used static const volatile uint8_t *const rust_localcount_built_for =
    &localcount_rust_built_nodebug;
#endif
