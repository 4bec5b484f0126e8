/*	$NetBSD$	*/

/*-
 * In-kernel test case for module hooks (sys/module_hook.h), the main
 * in-tree user of localcount(9) besides devsw and autoconf.
 *
 * modhook:set_unset_cycles: a bound kthread per CPU and ncpu unbound
 * kthreads call MODULE_HOOK_CALL on a test hook in a loop while the
 * case's thread sets and unsets the hook MH_CYCLES times (fewer, but
 * at least MH_MIN_CYCLES, if that takes longer than MH_MAX_US).  The hook
 * function counts itself "inside" while it runs (sometimes sleeping,
 * so the localcount reference migrates between CPUs) and counts any
 * call made while the hook is supposed to be unset.  After every
 * MODULE_HOOK_UNSET (which drains the hook's localcount) no call may
 * be inside the hook function, and no call may ever happen while it
 * is unset.  Both hook and default results must have been seen.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/cpu.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/module.h>
#include <sys/module_hook.h>
#include <sys/proc.h>
#include <sys/sched.h>
#include <sys/systm.h>

#include "ktest.h"

#define	MH_CYCLES	60
#define	MH_MAGIC	0x6b74
#define	MH_DEFAULT	(-1)
#define	MH_MAX_US	(30ULL * 1000000)
#define	MH_MIN_CYCLES	10

struct mh_state;

MODULE_HOOK(ktest_modhook_hook, int, (struct mh_state *, u_int));
struct ktest_modhook_hook_t ktest_modhook_hook;

struct mh_thr {
	uint64_t	mt_hits;
	uint64_t	mt_defaults;
	uint64_t	mt_bad;
};

struct mh_state {
	volatile u_int	mh_set;		/* hook is (being) set */
	volatile u_int	mh_stop;
	volatile u_int	mh_inside;	/* calls inside the hook function */
	volatile u_int	mh_after_unset;	/* calls while unset */
	volatile u_int	mh_sleeps;
	volatile u_int	mh_migr;
	u_int		mh_nbound;
	struct mh_thr	*mh_thr;
};

/*
 * mh_hook(st, idx)
 *
 *	The hook function.  Runs with a reference on the hook's
 *	localcount held by MODULE_HOOK_CALL.  Thread context; sleeps
 *	now and then when called from an unbound thread.
 */
static int
mh_hook(struct mh_state *st, u_int idx)
{
	u_int c0;

	atomic_inc_uint(&st->mh_inside);
	if (atomic_load_acquire(&st->mh_set) == 0)
		atomic_inc_uint(&st->mh_after_unset);
	if (idx >= st->mh_nbound && (st->mh_thr[idx].mt_hits & 63) == 0) {
		c0 = cpu_index(curcpu());
		kpause("ktestmh", false, 1, NULL);
		atomic_inc_uint(&st->mh_sleeps);
		if (cpu_index(curcpu()) != c0)
			atomic_inc_uint(&st->mh_migr);
	} else
		DELAY(1);
	atomic_dec_uint(&st->mh_inside);
	return MH_MAGIC;
}

/*
 * mh_caller(cookie, idx)
 *
 *	Call the hook until told to stop, counting hook and default
 *	results.  kthread, thread context.
 */
static void
mh_caller(void *cookie, u_int idx)
{
	struct mh_state *st = cookie;
	struct mh_thr *th = &st->mh_thr[idx];
	u_int i;
	int rv;

	for (i = 0; atomic_load_relaxed(&st->mh_stop) == 0; i++) {
		if ((i & 31) == 0)
			ktest_breathe(i);
		MODULE_HOOK_CALL(ktest_modhook_hook, (st, idx), MH_DEFAULT,
		    rv);
		if (rv == MH_MAGIC)
			th->mt_hits++;
		else if (rv == MH_DEFAULT)
			th->mt_defaults++;
		else
			th->mt_bad++;
	}
}

/*
 * test_set_unset_cycles(kt)
 *
 *	modhook:set_unset_cycles.  Thread context, sleeps; takes
 *	kernconfig_lock() (recursively: the runner already holds it).
 */
static int
test_set_unset_cycles(struct ktest *kt)
{
	struct mh_state *st;
	struct ktest_tg *tg;
	uint64_t hits = 0, defaults = 0, bad = 0, t0, t1, u0, umax = 0;
	uint64_t usum = 0, ssum = 0, smax = 0, d;
	u_int c, i, nthr, inside, badinside = 0;
	uint32_t seed = ktest_seed();
	int error;

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	nthr = 2 * ncpu;
	st->mh_nbound = ncpu;
	st->mh_thr = kmem_zalloc(nthr * sizeof(st->mh_thr[0]), KM_SLEEP);

	tg = ktest_tg_create("ktestmh", nthr);
	error = ktest_tg_spawn_percpu(tg, mh_caller, st);
	if (error == 0)
		error = ktest_tg_spawn_unbound(tg, ncpu, mh_caller, st);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	ktest_tg_start(tg);

	t0 = ktest_now_us();
	kernconfig_lock();
	for (c = 0; c < MH_CYCLES; c++) {
		if (ktest_now_us() - t0 > MH_MAX_US)
			break;
		atomic_store_release(&st->mh_set, 1);
		u0 = ktest_now_us();
		MODULE_HOOK_SET(ktest_modhook_hook, mh_hook);
		d = ktest_now_us() - u0;
		smax = MAX(smax, d);
		ssum += d;
		if (c & 1)
			kpause("ktestmhc", false, 1 + ktest_rand(&seed) % 2,
			    NULL);
		else
			DELAY(ktest_rand(&seed) % 2000);
		u0 = ktest_now_us();
		MODULE_HOOK_UNSET(ktest_modhook_hook);
		d = ktest_now_us() - u0;
		umax = MAX(umax, d);
		usum += d;
		inside = atomic_load_acquire(&st->mh_inside);
		if (inside != 0 && badinside++ == 0) {
			KTEST_CHECKF(kt, inside == 0, "cycle %u: %u calls "
			    "inside the hook after MODULE_HOOK_UNSET", c,
			    inside);
		}
		atomic_store_release(&st->mh_set, 0);
	}
	kernconfig_unlock();
	t1 = ktest_now_us();

	/* Let the callers run on a while with the hook unset. */
	kpause("ktestmhe", false, MAX(1, hz / 20), NULL);
	atomic_store_release(&st->mh_stop, 1);
	ktest_tg_join(tg);

	for (i = 0; i < nthr; i++) {
		hits += st->mh_thr[i].mt_hits;
		defaults += st->mh_thr[i].mt_defaults;
		bad += st->mh_thr[i].mt_bad;
		KTEST_CHECKF(kt, st->mh_thr[i].mt_hits +
		    st->mh_thr[i].mt_defaults > 0, "thread %u made no calls",
		    i);
	}
	/* Slow hosts may stop early (MH_MAX_US), but not absurdly so. */
	KTEST_CHECKF(kt, c >= MH_MIN_CYCLES, "only %u of %u cycles in %"
	    PRIu64 " us", c, MH_CYCLES, t1 - t0);
	KTEST_CHECKF(kt, badinside == 0, "%u unsets left calls inside",
	    badinside);
	KTEST_CHECKF(kt, st->mh_after_unset == 0, "%u calls entered the "
	    "hook while it was unset", st->mh_after_unset);
	KTEST_CHECKF(kt, st->mh_inside == 0, "%u calls still inside",
	    st->mh_inside);
	KTEST_CHECKF(kt, bad == 0, "%" PRIu64 " calls returned garbage", bad);
	KTEST_CHECKF(kt, hits > 0, "the hook was never called");
	KTEST_CHECKF(kt, defaults > 0, "the default was never used");
	ktest_so(kt, "threads=%u cycles=%u hook_calls=%" PRIu64
	    " default_calls=%" PRIu64 " sleeps_in_hook=%u migrations=%u "
	    "cycles_us=%" PRIu64 " set_avg_us=%" PRIu64 " set_max_us=%"
	    PRIu64 " unset_avg_us=%" PRIu64 " unset_max_us=%" PRIu64, nthr, c,
	    hits, defaults, st->mh_sleeps, st->mh_migr, t1 - t0,
	    c ? ssum / c : 0, smax, c ? usum / c : 0, umax);

	kmem_free(st->mh_thr, nthr * sizeof(st->mh_thr[0]));
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(modhook, set_unset_cycles, test_set_unset_cycles);
