/*	$NetBSD$	*/

/*
 * rust_localcount_glue.c -- kernel glue for the Rust localcount(9)
 * (options RUST_LOCALCOUNT).
 *
 * The Rust library (rust_localcount.o on the kernel link line) calls
 * kernel functions directly.  splhigh() and splx() are macros or inline
 * functions on most ports, so they get a linkable name here.  Nothing
 * else belongs in this file: the algorithm lives in Rust.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/systm.h>
#include <sys/cpu.h>
#include <sys/intr.h>
#include <sys/sched.h>
#include <sys/localcount.h>

int	rust_localcount_splhigh(void);
void	rust_localcount_splx(int);

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
 * rust_localcount_preempt_point()
 *
 *	Yield the CPU if the caller is a thread with preemption enabled,
 *	as kernel preemption could at any instruction of preemptible
 *	code; otherwise do nothing.  Only the DELIBERATELY BROKEN build
 *	of the library (feature broken-release-no-preempt) calls it, in
 *	the window its missing kpreempt_disable() opens, so that the
 *	in-kernel suite can show that it catches the race.
 */
void	rust_localcount_preempt_point(void);

void
rust_localcount_preempt_point(void)
{

	if (!cpu_intr_p() && !cpu_softintr_p() && !kpreempt_disabled())
		yield();
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
