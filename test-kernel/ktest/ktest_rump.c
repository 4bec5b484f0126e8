/*	$NetBSD$	*/

/*-
 * ktest in a rump kernel: the ipi(9) stand-ins of ktest_rump.h, on
 * softint(9), and the rump-only case rump:component_devsw.  Compiled
 * only into the rump component (test-kernel/rump/), never into a kernel.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/conf.h>
#include <sys/cpu.h>
#include <sys/intr.h>
#include <sys/kernel.h>
#include <sys/localcount.h>
#include <sys/proc.h>
#include <sys/systm.h>

#include <rump/rumpuser.h>

#include "ktest.h"

#define	KTEST_RUMP_NIPI	8

static void *ktest_rump_ipi_sih[KTEST_RUMP_NIPI];

/*
 * ktest_rump_biodone(bp)
 *
 *	Stand-in for biodone(9), which is in librumpvfs: the test drivers'
 *	d_strategy, its only caller, is never called.
 */
void
ktest_rump_biodone(struct buf *bp)
{

	panic("ktest_rump_biodone: d_strategy called (bp %p)", bp);
}

/*
 * ktest_rump_nanouptime(ts)
 *
 *	Stand-in for nanouptime(9): the host's monotonic clock (the
 *	rumpuser_clock_gettime hypercall), not the rump kernel's tick
 *	counter.  Any context.
 */
void
ktest_rump_nanouptime(struct timespec *ts)
{
	int64_t sec;
	long nsec;

	if (rumpuser_clock_gettime(RUMPUSER_CLOCK_ABSMONO, &sec, &nsec) != 0)
		panic("ktest_rump_nanouptime: no host clock");
	ts->tv_sec = sec;
	ts->tv_nsec = nsec;
}

/*
 * ktest_rump_ipi_register(func, arg)
 *
 *	Stand-in for ipi_register(9): establish func(arg) as an MP-safe
 *	SOFTINT_SERIAL softint and return its id (slot + 1: as with
 *	ipi_register, 0 is never an id).  Thread context.
 */
u_int
ktest_rump_ipi_register(ipi_func_t func, void *arg)
{
	void *sih;
	u_int i;

	sih = softint_establish(SOFTINT_SERIAL | SOFTINT_MPSAFE, func, arg);
	if (sih == NULL)
		panic("ktest_rump_ipi_register: softint_establish failed");
	for (i = 0; i < KTEST_RUMP_NIPI; i++) {
		if (atomic_cas_ptr(&ktest_rump_ipi_sih[i], NULL, sih) == NULL)
			return i + 1;
	}
	panic("ktest_rump_ipi_register: more than %d handlers",
	    KTEST_RUMP_NIPI);
}

/*
 * ktest_rump_ipi_trigger(id, ci)
 *
 *	Stand-in for ipi_trigger(9): schedule the handler on ci.  Any
 *	context; the caller has preemption disabled, as ipi_trigger
 *	requires.
 */
void
ktest_rump_ipi_trigger(u_int id, struct cpu_info *ci)
{

	KASSERT(id >= 1 && id <= KTEST_RUMP_NIPI);
	KASSERT(ktest_rump_ipi_sih[id - 1] != NULL);
	softint_schedule_cpu(ktest_rump_ipi_sih[id - 1], ci);
}

/*
 * ktest_rump_ipi_unregister(id)
 *
 *	Stand-in for ipi_unregister(9), after the senders have stopped:
 *	let scheduled handlers run (the rump kernel's
 *	softint_disestablish does not wait for them), then disestablish.
 *	Thread context, sleeps.
 */
void
ktest_rump_ipi_unregister(u_int id)
{
	void *sih;

	KASSERT(id >= 1 && id <= KTEST_RUMP_NIPI);
	KASSERT(ktest_rump_ipi_sih[id - 1] != NULL);
	kpause("ktestipi", false, MAX(1, hz / 10), NULL);
	sih = ktest_rump_ipi_sih[id - 1];
	ktest_rump_ipi_sih[id - 1] = NULL;
	softint_disestablish(sih);
}

/*
 * rump:component_devsw
 *
 *	A rump component's devsw, attached at run time.  Every source of a
 *	rump kernel is compiled with _MODULE (opt_rumpkernel.h, included
 *	with -imacros by sys/rump/Makefile.rump), so DEVSW_MODULE_INIT
 *	gives a component's devsw its d_localcount, as it does a module's;
 *	and a component is a built-in module (MODULE_SOURCE_KERNEL), so
 *	devsw_attach accepts it either way.  The case reports the
 *	expansion, attaches such a devsw, and with RUST_LOCALCOUNT takes
 *	and drops a reference through cdevsw_lookup_acquire before the
 *	detach (which must drain it).  Thread context (the runner).
 */
/*
 * ktrump_open(dev, flag, mode, l)
 *
 *	d_open of the component's devsw: nothing to open.
 */
static int
ktrump_open(dev_t dev, int flag, int mode, struct lwp *l)
{

	return ENXIO;
}

static const struct cdevsw ktrump_cdevsw = {
	DEVSW_MODULE_INIT
	.d_open = ktrump_open,
	.d_close = noclose,
	.d_read = noread,
	.d_write = nowrite,
	.d_ioctl = noioctl,
	.d_stop = nostop,
	.d_tty = notty,
	.d_poll = nopoll,
	.d_mmap = nommap,
	.d_kqfilter = nokqfilter,
	.d_discard = nodiscard,
	.d_flag = D_OTHER | D_MPSAFE,
};

/*
 * ktest_rump_component_devsw(kt)
 *
 *	The case rump:component_devsw, described above.
 */
static int
ktest_rump_component_devsw(struct ktest *kt)
{
	devmajor_t bmajor = NODEVMAJOR, cmajor = NODEVMAJOR;
	int error;

#ifdef _MODULE
	ktest_so(kt, "_MODULE is defined in a rump component: "
	    "DEVSW_MODULE_INIT sets d_localcount=%p", ktrump_cdevsw.d_localcount);
#else
	ktest_so(kt, "_MODULE is not defined in a rump component: "
	    "DEVSW_MODULE_INIT is empty");
#endif
	KTEST_CHECK(kt, ktrump_cdevsw.d_localcount != NULL);

	error = devsw_attach("ktrump", NULL, &bmajor, &ktrump_cdevsw, &cmajor);
	KTEST_CHECKF(kt, error == 0, "devsw_attach: %d", error);
	if (error)
		return ktest_result(kt);
	ktest_so(kt, "attached at cmajor %d", (int)cmajor);
#ifdef RUST_LOCALCOUNT
	{
		const struct cdevsw *c;

		c = cdevsw_lookup_acquire(makedev(cmajor, 0));
		KTEST_CHECK(kt, c == &ktrump_cdevsw);
		if (c != NULL)
			cdevsw_release(c);
	}
#else
	KTEST_CHECK(kt, cdevsw_lookup(makedev(cmajor, 0)) == &ktrump_cdevsw);
#endif
	devsw_detach(NULL, &ktrump_cdevsw);
	KTEST_CHECK(kt, cdevsw_lookup(makedev(cmajor, 0)) == NULL);
	return ktest_result(kt);
}
KTEST_CASE(rump, component_devsw, ktest_rump_component_devsw);
