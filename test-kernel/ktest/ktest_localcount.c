/*	$NetBSD$	*/

/*-
 * In-kernel test cases for localcount(9).
 *
 * Only the public interface of <sys/localcount.h> is used:
 * localcount_init, localcount_acquire, localcount_release,
 * localcount_drain, localcount_fini and localcount_debug_refcnt.
 * Every case runs work on every CPU (one bound kthread per CPU) and,
 * except where noted, on unbound kthreads that sleep and migrate.
 *
 * Besides the localcount itself every object carries a "shadow"
 * count of the references the test believes to be outstanding.  A
 * holder decrements the shadow count *before* it calls
 * localcount_release, so when localcount_drain returns the shadow
 * count must be 0: otherwise the drain returned while a reference was
 * still held.  A lost or duplicated per-CPU update makes the drain
 * either sleep forever (the case watchdog fires) or panic with
 * "negatively referenced localcount" (DIAGNOSTIC).
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/condvar.h>
#include <sys/cpu.h>
#include <sys/errno.h>
#include <sys/intr.h>
#include <sys/ipi.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/localcount.h>
#include <sys/mutex.h>
#include <sys/proc.h>
#include <sys/sched.h>
#include <sys/systm.h>
#include <sys/xcall.h>

#include "ktest.h"

#if defined(DEBUG) && defined(LOCKDEBUG)
#define	LCT_DEBUG_REFCNT	1
#else
#define	LCT_DEBUG_REFCNT	0
#endif

/* One test object: a localcount plus the test's own bookkeeping. */
struct lcobj {
	struct localcount	lo_lc;
	volatile u_int		lo_shadow;	/* references outstanding */
	volatile u_int		lo_handoff;	/* refs parked for others */
};

/* The (cv, interlock) pair passed to localcount_release/_drain. */
struct lcpair {
	kmutex_t		lp_lock;
	kcondvar_t		lp_cv;
};

/* A barrier: waiters sleep until lb_n reaches lb_want. */
struct lcbar {
	kmutex_t		lb_lock;
	kcondvar_t		lb_cv;
	u_int			lb_n;
	u_int			lb_want;
};

/*
 * lct_pair_init(p, ipl), lct_pair_fini(p)
 *
 *	Set up / tear down an interlock and condvar.  IPL_NONE gives an
 *	adaptive mutex (the usual case); a hardware IPL gives a spin
 *	mutex, required when releases happen in hard interrupts.
 *	Thread context.
 */
static void
lct_pair_init(struct lcpair *p, int ipl)
{

	mutex_init(&p->lp_lock, MUTEX_DEFAULT, ipl);
	cv_init(&p->lp_cv, "ktestlc");
}

static void
lct_pair_fini(struct lcpair *p)
{

	cv_destroy(&p->lp_cv);
	mutex_destroy(&p->lp_lock);
}

/*
 * lct_bar_init(b, want), lct_bar_arrive(b), lct_bar_wait(b),
 * lct_bar_fini(b)
 *
 *	Simple counting barrier.  Thread context; lct_bar_wait sleeps.
 */
static void
lct_bar_init(struct lcbar *b, u_int want)
{

	mutex_init(&b->lb_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&b->lb_cv, "ktestbar");
	b->lb_n = 0;
	b->lb_want = want;
}

static void
lct_bar_arrive(struct lcbar *b)
{

	mutex_enter(&b->lb_lock);
	if (++b->lb_n >= b->lb_want)
		cv_broadcast(&b->lb_cv);
	mutex_exit(&b->lb_lock);
}

static void
lct_bar_wait(struct lcbar *b)
{

	mutex_enter(&b->lb_lock);
	while (b->lb_n < b->lb_want)
		cv_wait(&b->lb_cv, &b->lb_lock);
	mutex_exit(&b->lb_lock);
}

static void
lct_bar_fini(struct lcbar *b)
{

	cv_destroy(&b->lb_cv);
	mutex_destroy(&b->lb_lock);
}

/*
 * lct_obj_init(o)
 *
 *	Initialise a test object (zeroed storage).  Thread context,
 *	sleeps (percpu allocation).
 */
static void
lct_obj_init(struct lcobj *o)
{

	memset(o, 0, sizeof(*o));
	localcount_init(&o->lo_lc);
}

/*
 * lct_release(o, p)
 *
 *	Drop one reference of o, bookkept: the shadow count goes down
 *	first, then localcount_release.  Any context in which p's
 *	interlock may be taken; p's interlock not held.
 */
static inline void
lct_release(struct lcobj *o, struct lcpair *p)
{

	atomic_dec_uint(&o->lo_shadow);
	localcount_release(&o->lo_lc, &p->lp_cv, &p->lp_lock);
}

/*
 * lct_acquire(o)
 *
 *	Take one reference of o, bookkept.  Any context; no drain of o
 *	may be in progress or done.
 */
static inline void
lct_acquire(struct lcobj *o)
{

	localcount_acquire(&o->lo_lc);
	atomic_inc_uint(&o->lo_shadow);
}

/*
 * lct_drain(kt, o, p, outp, leftp)
 *
 *	Drain o with p (interlock taken here), reporting the shadow count
 *	just before the drain started (*outp) and when it returned
 *	(*leftp, must be 0), then localcount_fini.  A drain that returns
 *	early is reported on the console at once (a late release may
 *	crash the kernel before the case gets to report it).  Returns
 *	the drain's duration in microseconds.  Thread context, sleeps;
 *	p's interlock not held.
 */
static uint64_t
lct_drain(struct ktest *kt, struct lcobj *o, struct lcpair *p, u_int *outp,
    u_int *leftp)
{
	uint64_t t0, t1;
	u_int out, left;

	mutex_enter(&p->lp_lock);
	out = atomic_load_acquire(&o->lo_shadow);
	t0 = ktest_now_us();
	localcount_drain(&o->lo_lc, &p->lp_cv, &p->lp_lock);
	t1 = ktest_now_us();
	left = atomic_load_acquire(&o->lo_shadow);
	mutex_exit(&p->lp_lock);
	if (left != 0) {
		ktest_so(kt, "localcount_drain returned with %u of %u "
		    "references outstanding", left, out);
	}
	localcount_fini(&o->lo_lc);
	if (outp != NULL)
		*outp = out;
	if (leftp != NULL)
		*leftp = left;
	return t1 - t0;
}

/*
 * lct_take(p)
 *
 *	Atomically decrement *p if it is non-zero; true if it was.
 *	Any context.
 */
static bool
lct_take(volatile u_int *p)
{
	u_int v;

	do {
		v = atomic_load_relaxed(p);
		if (v == 0)
			return false;
	} while (atomic_cas_uint(p, v, v - 1) != v);
	return true;
}

/*
 * lct_other_cpu(seed)
 *
 *	A random CPU other than the current one.  Preemption disabled,
 *	ncpu >= 2.
 */
static struct cpu_info *
lct_other_cpu(uint32_t *seed)
{
	u_int self = cpu_index(curcpu());
	u_int c;

	KASSERT(kpreempt_disabled());
	KASSERT(ncpu >= 2);
	c = ktest_rand(seed) % (ncpu - 1);
	if (c >= self)
		c++;
	return cpu_lookup(c);
}

/*
 * lct_ipi_nop(arg)
 *
 *	Synchronous IPI message doing nothing.  Hard interrupt context.
 */
static void
lct_ipi_nop(void *arg)
{
}

/*
 * lct_ipi_unregister(id)
 *
 *	Unregister an asynchronous IPI handler after its senders have
 *	stopped.  ipi_unregister() asserts that no handler bit is still
 *	pending on any CPU, so first let in-flight IPIs land (sleep a
 *	little, which also lets our own CPU take its interrupts) and
 *	then push a synchronous IPI through every CPU: a CPU handles its
 *	pending asynchronous bits in the same pass as the message.
 *	Thread context, sleeps.
 */
static void
lct_ipi_unregister(u_int id)
{
	ipi_msg_t msg = { .func = lct_ipi_nop, .arg = NULL };

	kpause("ktestipi", false, MAX(1, hz / 20), NULL);
	kpreempt_disable();
	ipi_broadcast(&msg, false);
	ipi_wait(&msg);
	kpreempt_enable();
	kpause("ktestipi", false, 1, NULL);
	ipi_unregister(id);
}

/* ------------------------------------------------------------------
 * localcount:hammer_drain
 *
 * 64 objects.  One bound kthread per CPU and ncpu unbound kthreads do
 * random operations on random objects for HD_MS: acquire/release
 * pairs, references held for a while (unbound threads sleep while
 * holding them and migrate), and references handed off to another
 * thread (typically on another CPU) that releases them, so per-CPU
 * counts go negative on some CPUs.  Then, with handed-off references
 * still outstanding, every object is drained while one bound thread
 * per CPU releases the leftovers; each drain must return with the
 * object's shadow count at 0, and acquires must equal releases.
 */

#define	HD_NOBJ		64
#define	HD_HOLD		8
#define	HD_MS		2000
#define	HD_ITERS	2000000
#define	HD_DRAIN_MAX_US	(30ULL * 1000000)

struct hd_thr {
	uint64_t	ht_acq;
	uint64_t	ht_rel;
	u_int		ht_iters;
	u_int		ht_migr;
};

struct hd_state {
	struct ktest	*hd_kt;
	struct lcpair	hd_pair;
	struct lcobj	*hd_obj;
	struct hd_thr	*hd_thr;
	u_int		hd_nbound;
	int		hd_deadline;
	volatile u_int	hd_draining;
	volatile u_int	hd_late;
};

/*
 * hd_worker(cookie, idx)
 *
 *	Random acquire/release/hold/hand-off operations until the
 *	deadline.  kthread, thread context; unbound workers sleep while
 *	holding references.
 */
static void
hd_worker(void *cookie, u_int idx)
{
	struct hd_state *st = cookie;
	struct hd_thr *th = &st->hd_thr[idx];
	struct lcobj *held[HD_HOLD], *o;
	const bool bound = idx < st->hd_nbound;
	uint32_t seed = ktest_seed(), r;
	uint64_t acq = 0, rel = 0;
	u_int i, j, nheld = 0, lastcpu;

	lastcpu = cpu_index(curcpu());
	for (i = 0; i < HD_ITERS; i++) {
		if ((i & 63) == 0) {
			if (ktest_expired(st->hd_deadline))
				break;
			if (!bound && (i & 1023) == 512) {
				/* Sleep holding references: migrate. */
				kpause("ktesthd", false, 1, NULL);
				if (cpu_index(curcpu()) != lastcpu) {
					th->ht_migr++;
					lastcpu = cpu_index(curcpu());
				}
			} else
				ktest_breathe(i);
		}
		r = ktest_rand(&seed);
		o = &st->hd_obj[r % HD_NOBJ];
		switch ((r >> 16) & 15) {
		case 10:
		case 11:	/* hold for a while */
			lct_acquire(o);
			acq++;
			if (nheld == HD_HOLD) {
				j = (r >> 8) % HD_HOLD;
				lct_release(held[j], &st->hd_pair);
				rel++;
				held[j] = o;
			} else
				held[nheld++] = o;
			break;
		case 12:
		case 13:	/* hand off to whoever takes it */
			lct_acquire(o);
			acq++;
			atomic_inc_uint(&o->lo_handoff);
			break;
		case 14:
		case 15:	/* take a handed-off reference */
			if (lct_take(&o->lo_handoff)) {
				lct_release(o, &st->hd_pair);
				rel++;
			}
			break;
		default:	/* plain pair */
			localcount_acquire(&o->lo_lc);
			localcount_release(&o->lo_lc, &st->hd_pair.lp_cv,
			    &st->hd_pair.lp_lock);
			acq++;
			rel++;
			break;
		}
	}
	for (j = 0; j < nheld; j++) {
		lct_release(held[j], &st->hd_pair);
		rel++;
	}
	th->ht_acq = acq;
	th->ht_rel = rel;
	th->ht_iters = i;
}

/*
 * hd_late_releaser(cookie, idx)
 *
 *	Once the drains have started, release every handed-off reference
 *	left, object by object, racing with the drains and with the
 *	other CPUs' late releasers.  Bound kthread, thread context.
 */
static void
hd_late_releaser(void *cookie, u_int idx)
{
	struct hd_state *st = cookie;
	struct lcobj *o;
	u_int i;

	(void)ktest_wait_uint(&st->hd_draining, 1, 30000);
	kpause("ktesthdl", false, MAX(1, hz / 20), NULL);
	for (i = 0; i < HD_NOBJ; i++) {
		o = &st->hd_obj[i];
		while (lct_take(&o->lo_handoff)) {
			lct_release(o, &st->hd_pair);
			atomic_inc_uint(&st->hd_late);
		}
	}
}

/*
 * test_hammer_drain(kt)
 *
 *	localcount:hammer_drain.  Thread context, sleeps.
 */
static int
test_hammer_drain(struct ktest *kt)
{
	struct hd_state *st;
	struct ktest_tg *tg;
	struct lcobj *o;
	uint64_t acq = 0, rel = 0, iters = 0, t0, drain_us = 0, d;
	u_int i, nthr, migr = 0, outstanding = 0, left, minit = UINT_MAX;
	int error;

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	st->hd_kt = kt;
	st->hd_obj = kmem_zalloc(HD_NOBJ * sizeof(st->hd_obj[0]), KM_SLEEP);
	nthr = 2 * ncpu;
	st->hd_thr = kmem_zalloc(nthr * sizeof(st->hd_thr[0]), KM_SLEEP);
	st->hd_nbound = ncpu;
	lct_pair_init(&st->hd_pair, IPL_NONE);
	for (i = 0; i < HD_NOBJ; i++)
		lct_obj_init(&st->hd_obj[i]);

	/* Hammer phase. */
	tg = ktest_tg_create("ktesthd", nthr);
	error = ktest_tg_spawn_percpu(tg, hd_worker, st);
	if (error == 0)
		error = ktest_tg_spawn_unbound(tg, ncpu, hd_worker, st);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	st->hd_deadline = ktest_deadline_ms(HD_MS);
	ktest_tg_start(tg);
	ktest_tg_join(tg);

	for (i = 0; i < nthr; i++) {
		acq += st->hd_thr[i].ht_acq;
		rel += st->hd_thr[i].ht_rel;
		iters += st->hd_thr[i].ht_iters;
		migr += st->hd_thr[i].ht_migr;
		minit = MIN(minit, st->hd_thr[i].ht_iters);
	}
	KTEST_CHECKF(kt, minit > 0, "a worker thread did no work");
	for (i = 0; i < HD_NOBJ; i++) {
		o = &st->hd_obj[i];
		outstanding += o->lo_shadow;
		KTEST_CHECKF(kt, o->lo_shadow == o->lo_handoff,
		    "obj %u: shadow %u handoff %u", i, o->lo_shadow,
		    o->lo_handoff);
#if LCT_DEBUG_REFCNT
		KTEST_CHECKF(kt,
		    localcount_debug_refcnt(&o->lo_lc) == o->lo_shadow,
		    "obj %u: debug_refcnt %u shadow %u", i,
		    localcount_debug_refcnt(&o->lo_lc), o->lo_shadow);
#endif
	}

	/* Drain phase, with late releases racing the drains. */
	tg = ktest_tg_create("ktesthdl", ncpu);
	error = ktest_tg_spawn_percpu(tg, hd_late_releaser, st);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	ktest_tg_start(tg);
	t0 = ktest_now_us();
	for (i = 0; i < HD_NOBJ; i++) {
		if (i == 0)
			atomic_store_release(&st->hd_draining, 1);
		d = lct_drain(kt, &st->hd_obj[i], &st->hd_pair, NULL, &left);
		drain_us = MAX(drain_us, d);
		KTEST_CHECKF(kt, left == 0,
		    "obj %u drained with %u references outstanding", i, left);
	}
	t0 = ktest_now_us() - t0;
	ktest_tg_join(tg);

	KTEST_CHECKF(kt, acq == rel + st->hd_late,
	    "acquired %" PRIu64 " released %" PRIu64 " + %u", acq, rel,
	    st->hd_late);
	KTEST_CHECKF(kt, st->hd_late == outstanding,
	    "late releases %u, outstanding %u", st->hd_late, outstanding);
	KTEST_CHECKF(kt, t0 < HD_DRAIN_MAX_US,
	    "draining %u objects took %" PRIu64 " us", HD_NOBJ, t0);
	ktest_so(kt, "threads=%u iterations=%" PRIu64 " acquires=%" PRIu64
	    " migrations=%u outstanding_at_drain=%u drain_all_us=%" PRIu64
	    " drain_max_us=%" PRIu64, nthr, iters, acq, migr, outstanding,
	    t0, drain_us);

	lct_pair_fini(&st->hd_pair);
	kmem_free(st->hd_thr, nthr * sizeof(st->hd_thr[0]));
	kmem_free(st->hd_obj, HD_NOBJ * sizeof(st->hd_obj[0]));
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(localcount, hammer_drain, test_hammer_drain);

/* ------------------------------------------------------------------
 * localcount:sleep_migrate
 *
 * 4*ncpu unbound kthreads (plus one bound kthread per CPU) each take
 * SM_REFS references on random objects, then sleep 5..24 ticks before
 * releasing each one.  Meanwhile a bound "hog" kthread per CPU keeps
 * its CPU busy for 1..3 ticks at a time, so that a sleeper waking up
 * often finds the CPU it last ran on busy and the scheduler moves it:
 * many references are released on another CPU than the one they were
 * acquired on.  As soon as every reference is taken, one drainer per
 * object (bound round-robin to the CPUs) drains its object; every
 * drain must find its shadow count at 0 on return.
 */

#define	SM_NOBJ		8
#define	SM_REFS		3
#define	SM_ROUNDS	3

struct sm_state {
	struct ktest	*sm_kt;
	struct lcpair	sm_pair;
	struct lcbar	sm_bar;
	struct lcobj	sm_obj[SM_NOBJ];
	u_int		sm_out[SM_NOBJ];
	u_int		sm_left[SM_NOBJ];
	uint64_t	sm_lat[SM_NOBJ];
	volatile u_int	sm_nrefs;
	volatile u_int	sm_nrel;
	volatile u_int	sm_cross;
	volatile u_int	sm_done;
};

/*
 * sm_worker(cookie, idx)
 *
 *	Take references, wait for the others, then sleep and release.
 *	kthread, thread context, sleeps holding references.
 */
static void
sm_worker(void *cookie, u_int idx)
{
	struct sm_state *st = cookie;
	struct lcobj *o[SM_REFS];
	u_int cpu[SM_REFS];
	uint32_t seed = ktest_seed();
	u_int k;

	for (k = 0; k < SM_REFS; k++) {
		o[k] = &st->sm_obj[ktest_rand(&seed) % SM_NOBJ];
		kpreempt_disable();
		lct_acquire(o[k]);
		cpu[k] = cpu_index(curcpu());
		kpreempt_enable();
		atomic_inc_uint(&st->sm_nrefs);
	}
	lct_bar_arrive(&st->sm_bar);
	for (k = 0; k < SM_REFS; k++) {
		kpause("ktestsm", false, 5 + ktest_rand(&seed) % 20, NULL);
		kpreempt_disable();
		if (cpu_index(curcpu()) != cpu[k])
			atomic_inc_uint(&st->sm_cross);
		kpreempt_enable();
		lct_release(o[k], &st->sm_pair);
		atomic_inc_uint(&st->sm_nrel);
	}
}

/*
 * sm_hog(cookie, idx)
 *
 *	Alternately spin for 1..3 ticks and sleep for 1..2 ticks until
 *	the workers are done.  Bound kthread, thread context.
 */
static void
sm_hog(void *cookie, u_int idx)
{
	struct sm_state *st = cookie;
	uint32_t seed = ktest_seed();
	int until;

	while (atomic_load_acquire(&st->sm_done) == 0) {
		until = getticks() + 1 + ktest_rand(&seed) % 3;
		while (getticks() - until < 0)
			preempt_point();
		kpause("ktestsmh", false, 1 + ktest_rand(&seed) % 2, NULL);
	}
}

/*
 * sm_drainer(cookie, idx)
 *
 *	Once every worker holds its references, drain object idx.
 *	kthread, thread context, sleeps.
 */
static void
sm_drainer(void *cookie, u_int idx)
{
	struct sm_state *st = cookie;

	lct_bar_wait(&st->sm_bar);
	st->sm_lat[idx] = lct_drain(st->sm_kt, &st->sm_obj[idx], &st->sm_pair,
	    &st->sm_out[idx], &st->sm_left[idx]);
}

/*
 * test_sleep_migrate(kt)
 *
 *	localcount:sleep_migrate.  Thread context, sleeps.
 */
static int
test_sleep_migrate(struct ktest *kt)
{
	struct sm_state *st;
	struct ktest_tg *wtg, *dtg, *htg;
	uint64_t lat_max = 0;
	u_int round, i, nw, out = 0, refs = 0, rel = 0, cross = 0;
	u_int busy = 0;
	int error;

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	st->sm_kt = kt;
	lct_pair_init(&st->sm_pair, IPL_NONE);
	nw = 5 * ncpu;

	for (round = 0; round < SM_ROUNDS && !ktest_failed(kt); round++) {
		for (i = 0; i < SM_NOBJ; i++)
			lct_obj_init(&st->sm_obj[i]);
		st->sm_nrefs = st->sm_nrel = st->sm_cross = 0;
		st->sm_done = 0;
		lct_bar_init(&st->sm_bar, nw);

		dtg = ktest_tg_create("ktestsmd", SM_NOBJ);
		wtg = ktest_tg_create("ktestsm", nw);
		htg = ktest_tg_create("ktestsmh", ncpu);
		error = ktest_tg_spawn_percpu(htg, sm_hog, st);
		for (i = 0; i < SM_NOBJ && error == 0; i++) {
			error = ktest_tg_spawn(dtg, cpu_lookup(i % ncpu),
			    sm_drainer, st);
		}
		if (error == 0)
			error = ktest_tg_spawn_unbound(wtg, 4 * ncpu,
			    sm_worker, st);
		if (error == 0)
			error = ktest_tg_spawn_percpu(wtg, sm_worker, st);
		if (!KTEST_CHECKF(kt, error == 0, "kthread_create: %d",
		    error)) {
			/* Let the drainers through: no worker will come. */
			mutex_enter(&st->sm_bar.lb_lock);
			st->sm_bar.lb_want = ktest_tg_count(wtg);
			mutex_exit(&st->sm_bar.lb_lock);
		}
		ktest_tg_start(htg);
		ktest_tg_start(dtg);
		ktest_tg_start(wtg);
		ktest_tg_join(wtg);
		atomic_store_release(&st->sm_done, 1);
		ktest_tg_join(htg);
		ktest_tg_join(dtg);
		lct_bar_fini(&st->sm_bar);

		for (i = 0; i < SM_NOBJ; i++) {
			KTEST_CHECKF(kt, st->sm_left[i] == 0,
			    "round %u obj %u: drain returned with %u of %u "
			    "references outstanding", round, i,
			    st->sm_left[i], st->sm_out[i]);
			out += st->sm_out[i];
			if (st->sm_out[i] != 0)
				busy++;
			lat_max = MAX(lat_max, st->sm_lat[i]);
		}
		KTEST_CHECKF(kt, st->sm_nrel == st->sm_nrefs,
		    "round %u: %u references taken, %u released", round,
		    st->sm_nrefs, st->sm_nrel);
		refs += st->sm_nrefs;
		rel += st->sm_nrel;
		cross += st->sm_cross;
	}
	/* The case is vacuous if no drain ever started with holders. */
	KTEST_CHECKF(kt, out > 0, "no drain started with references held");
	ktest_so(kt, "threads=%u rounds=%u refs=%u releases=%u "
	    "cross_cpu_releases=%u drains_with_holders=%u/%u "
	    "held_at_drain_start=%u drain_max_us=%" PRIu64, nw, SM_ROUNDS,
	    refs, rel, cross, busy, SM_ROUNDS * SM_NOBJ, out, lat_max);

	lct_pair_fini(&st->sm_pair);
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(localcount, sleep_migrate, test_sleep_migrate);

/* ------------------------------------------------------------------
 * localcount:softint_release
 *
 * Phase 1 (SI_MS): a bound kthread per CPU does acquire/release pairs
 * on object A and on shared objects S[], and now and then acquires a
 * few references on A and hands them to the CPU's softint
 * (SOFTINT_NET, scheduled on the same CPU), which releases them.  The
 * softint also does acquire/release pairs on A and S[], and takes or
 * drops (alternately) a reference on A that it keeps between runs, so
 * that each run changes this CPU's count, while the thread-context
 * updates of that CPU are interrupted.  Threads also kick softints on
 * their neighbour CPU with an asynchronous IPI, so softints interrupt
 * thread context at arbitrary points.  Unbound
 * kthreads do the same pairs, and hand references acquired before a
 * sleep to the softint of the CPU they wake up on.
 *
 * Phase 2: the softint of every CPU acquires SI_DREFS references on
 * object D; the drain of D starts while the softints hold them, and
 * only then (after ~hz/10) are the softints told to release them, so
 * their releases run while the drain is in progress.
 *
 * A, S[] and D are then drained; all shadow counts must be 0 and
 * acquires must match releases.
 */

#define	SI_NS		4
#define	SI_MS		2000
#define	SI_ITERS	2000000
#define	SI_DREFS	4

struct si_pcpu {
	volatile u_int	sp_handed;	/* A refs to be released here */
	volatile u_int	sp_want_d;	/* phase 2: acquire this many on D */
	volatile u_int	sp_held_d;	/* phase 2: D refs held by softint */
	volatile u_int	sp_release_d;	/* phase 2: release them now */
	volatile u_int	sp_held_a;	/* A ref kept by softint */
	u_int		sp_runs;	/* softint runs */
	u_int		sp_kicks;	/* IPI handler runs */
	uint64_t	sp_rel_handed;	/* A refs released by softint */
	uint64_t	sp_pairs;	/* pairs done by softint */
};

struct si_thr {
	uint64_t	st_acq;
	uint64_t	st_rel;
	u_int		st_iters;
	u_int		st_scheds;
	u_int		st_migr;
};

struct si_state {
	struct ktest	*si_kt;
	struct lcpair	si_pair;
	struct lcbar	si_bar;
	struct lcobj	si_a;
	struct lcobj	si_s[SI_NS];
	struct lcobj	si_d;
	void		*si_sih;
	u_int		si_ipi;
	struct si_pcpu	*si_pc;
	struct si_thr	*si_thr;
	u_int		si_nbound;
	int		si_deadline;
	volatile u_int	si_draining;
	volatile u_int	si_errors;
	volatile u_int	si_toggle_stop;
};

/*
 * si_softint(cookie)
 *
 *	Release the A references handed to this CPU, do pairs on A and
 *	S[], and in phase 2 acquire or release D references.  Soft
 *	interrupt context (SOFTINT_NET, MP-safe), on the CPU that
 *	scheduled it.
 */
static void
si_softint(void *cookie)
{
	struct si_state *st = cookie;
	struct si_pcpu *pc = &st->si_pc[cpu_index(curcpu())];
	struct lcobj *o;
	u_int k, n;

	pc->sp_runs++;
	n = atomic_swap_uint(&pc->sp_handed, 0);
	for (k = 0; k < n; k++)
		lct_release(&st->si_a, &st->si_pair);
	pc->sp_rel_handed += n;

	for (k = 0; k < SI_NS; k++) {
		o = &st->si_s[(pc->sp_runs + k) % SI_NS];
		localcount_acquire(&o->lo_lc);
		localcount_release(&o->lo_lc, &st->si_pair.lp_cv,
		    &st->si_pair.lp_lock);
	}
	localcount_acquire(&st->si_a.lo_lc);
	localcount_release(&st->si_a.lo_lc, &st->si_pair.lp_cv,
	    &st->si_pair.lp_lock);
	pc->sp_pairs += SI_NS + 1;

	/* Keep a reference on A from one run to the next. */
	if (pc->sp_held_a) {
		lct_release(&st->si_a, &st->si_pair);
		atomic_store_release(&pc->sp_held_a, 0);
	} else if (atomic_load_acquire(&st->si_toggle_stop) == 0) {
		lct_acquire(&st->si_a);
		atomic_store_release(&pc->sp_held_a, 1);
	}

	n = atomic_load_acquire(&pc->sp_want_d);
	if (n != 0) {
		for (k = 0; k < n; k++)
			lct_acquire(&st->si_d);
		atomic_store_relaxed(&pc->sp_want_d, 0);
		atomic_store_release(&pc->sp_held_d, n);
	}
	if (atomic_load_acquire(&pc->sp_release_d) != 0) {
		n = atomic_load_relaxed(&pc->sp_held_d);
		/* During the drain: these take the slow path. */
		for (k = 0; k < n; k++)
			lct_release(&st->si_d, &st->si_pair);
		atomic_store_relaxed(&pc->sp_release_d, 0);
		atomic_store_release(&pc->sp_held_d, 0);
	}
}

/*
 * si_kick(cookie)
 *
 *	Asynchronous IPI handler: schedule this CPU's softint, which
 *	then runs on return from the interrupt, interrupting whatever
 *	thread was running.  Hard interrupt context.
 */
static void
si_kick(void *cookie)
{
	struct si_state *st = cookie;

	st->si_pc[cpu_index(curcpu())].sp_kicks++;
	softint_schedule(st->si_sih);
}

/*
 * si_flush_xc(a1, a2)
 *
 *	xcall: schedule the softint on this CPU so that it releases any
 *	handed A references left.  Thread context (xcall thread).
 */
static void
si_flush_xc(void *a1, void *a2)
{
	struct si_state *st = a1;

	kpreempt_disable();
	softint_schedule(st->si_sih);
	kpreempt_enable();
}

/*
 * si_worker(cookie, idx)
 *
 *	Phase 1 worker.  Bound workers hand references to their own
 *	CPU's softint and kick the next CPU's softint by IPI; unbound
 *	ones sleep holding a reference and hand it to the softint of the
 *	CPU they wake up on.  kthread, thread context.
 */
static void
si_worker(void *cookie, u_int idx)
{
	struct si_state *st = cookie;
	struct si_thr *th = &st->si_thr[idx];
	const bool bound = idx < st->si_nbound;
	struct lcobj *o;
	struct cpu_info *ci;
	uint32_t seed = ktest_seed(), r;
	uint64_t acq = 0, rel = 0;
	u_int i, k, nh, c0;

	for (i = 0; i < SI_ITERS; i++) {
		if ((i & 63) == 0) {
			if (ktest_expired(st->si_deadline))
				break;
			ktest_breathe(i);
		}
		r = ktest_rand(&seed);

		/* Thread-context pairs on A and on a shared object. */
		localcount_acquire(&st->si_a.lo_lc);
		localcount_release(&st->si_a.lo_lc, &st->si_pair.lp_cv,
		    &st->si_pair.lp_lock);
		o = &st->si_s[r % SI_NS];
		localcount_acquire(&o->lo_lc);
		localcount_release(&o->lo_lc, &st->si_pair.lp_cv,
		    &st->si_pair.lp_lock);
		acq += 2;
		rel += 2;

		if (bound && (i & 31) == 31) {
			/* Hand 1..4 references to this CPU's softint. */
			nh = 1 + (r >> 8) % 4;
			for (k = 0; k < nh; k++)
				lct_acquire(&st->si_a);
			acq += nh;
			kpreempt_disable();
			atomic_add_int(&st->si_pc[cpu_index(curcpu())]
			    .sp_handed, nh);
			softint_schedule(st->si_sih);
			kpreempt_enable();
			th->st_scheds++;
		}
		if (!bound && (i & 255) == 128) {
			/* Sleep holding a reference, release it in the
			 * softint of the CPU we wake up on. */
			lct_acquire(&st->si_a);
			acq++;
			c0 = cpu_index(curcpu());
			kpause("ktestsi", false, 1, NULL);
			kpreempt_disable();
			if (cpu_index(curcpu()) != c0)
				th->st_migr++;
			atomic_inc_uint(
			    &st->si_pc[cpu_index(curcpu())].sp_handed);
			softint_schedule(st->si_sih);
			kpreempt_enable();
			th->st_scheds++;
		}
		if (ncpu > 1 && (i & 15) == 7) {
			kpreempt_disable();
			if (bound) {
				ci = cpu_lookup((cpu_index(curcpu()) + 1) %
				    ncpu);
			} else
				ci = lct_other_cpu(&seed);
			ipi_trigger(st->si_ipi, ci);
			kpreempt_enable();
		}
	}
	th->st_acq = acq;
	th->st_rel = rel;
	th->st_iters = i;
}

/*
 * si_phase2(cookie, idx)
 *
 *	Have this CPU's softint take SI_DREFS references on D, report
 *	ready, and once the drain of D has been started tell the softint
 *	to release them.  Bound kthread, thread context, sleeps.
 */
static void
si_phase2(void *cookie, u_int idx)
{
	struct si_state *st = cookie;
	struct si_pcpu *pc = &st->si_pc[cpu_index(curcpu())];

	atomic_store_release(&pc->sp_want_d, SI_DREFS);
	kpreempt_disable();
	softint_schedule(st->si_sih);
	kpreempt_enable();
	if (ktest_wait_uint(&pc->sp_held_d, SI_DREFS, 10000) != 0)
		atomic_inc_uint(&st->si_errors);
	lct_bar_arrive(&st->si_bar);

	(void)ktest_wait_uint(&st->si_draining, 1, 30000);
	kpause("ktestsi2", false, MAX(1, hz / 10), NULL);
	atomic_store_release(&pc->sp_release_d, 1);
	kpreempt_disable();
	softint_schedule(st->si_sih);
	kpreempt_enable();
	if (ktest_wait_uint(&pc->sp_held_d, 0, 30000) != 0)
		atomic_inc_uint(&st->si_errors);
}

/*
 * test_softint_release(kt)
 *
 *	localcount:softint_release.  Thread context, sleeps.
 */
static int
test_softint_release(struct ktest *kt)
{
	struct si_state *st;
	struct ktest_tg *tg;
	struct si_pcpu *pc;
	uint64_t acq = 0, rel = 0, srel = 0, pairs = 0, d_us;
	u_int i, nthr, out, left, minruns = UINT_MAX, minkicks = UINT_MAX;
	u_int scheds = 0, migr = 0, miniters = UINT_MAX;
	int error;

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	st->si_kt = kt;
	nthr = 2 * ncpu;
	st->si_nbound = ncpu;
	st->si_pc = kmem_zalloc(ncpu * sizeof(st->si_pc[0]), KM_SLEEP);
	st->si_thr = kmem_zalloc(nthr * sizeof(st->si_thr[0]), KM_SLEEP);
	lct_pair_init(&st->si_pair, IPL_NONE);
	lct_obj_init(&st->si_a);
	lct_obj_init(&st->si_d);
	for (i = 0; i < SI_NS; i++)
		lct_obj_init(&st->si_s[i]);
	st->si_sih = softint_establish(SOFTINT_NET | SOFTINT_MPSAFE,
	    si_softint, st);
	KTEST_CHECK(kt, st->si_sih != NULL);
	st->si_ipi = ipi_register(si_kick, st);
	KTEST_CHECK(kt, st->si_ipi != 0);
	if (ktest_failed(kt))
		goto out;

	/* Phase 1. */
	tg = ktest_tg_create("ktestsi", nthr);
	error = ktest_tg_spawn_percpu(tg, si_worker, st);
	if (error == 0)
		error = ktest_tg_spawn_unbound(tg, ncpu, si_worker, st);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	st->si_deadline = ktest_deadline_ms(SI_MS);
	ktest_tg_start(tg);
	ktest_tg_join(tg);

	/*
	 * Make every CPU's softint release what was handed to it and the
	 * reference it keeps.
	 */
	atomic_store_release(&st->si_toggle_stop, 1);
	xc_wait(xc_broadcast(0, si_flush_xc, st, NULL));
	for (i = 0; i < ncpu; i++) {
		KTEST_CHECKF(kt, ktest_wait_uint(&st->si_pc[i].sp_handed, 0,
		    10000) == 0, "cpu %u: softint did not release %u "
		    "handed references", i, st->si_pc[i].sp_handed);
		KTEST_CHECKF(kt, ktest_wait_uint(&st->si_pc[i].sp_held_a, 0,
		    10000) == 0, "cpu %u: softint kept its reference", i);
	}
	lct_ipi_unregister(st->si_ipi);
	st->si_ipi = 0;

	for (i = 0; i < nthr; i++) {
		acq += st->si_thr[i].st_acq;
		rel += st->si_thr[i].st_rel;
		scheds += st->si_thr[i].st_scheds;
		migr += st->si_thr[i].st_migr;
		miniters = MIN(miniters, st->si_thr[i].st_iters);
	}
	for (i = 0; i < ncpu; i++) {
		pc = &st->si_pc[i];
		srel += pc->sp_rel_handed;
		pairs += pc->sp_pairs;
		minruns = MIN(minruns, pc->sp_runs);
		minkicks = MIN(minkicks, pc->sp_kicks);
	}
	KTEST_CHECKF(kt, miniters > 0, "a worker thread did no work");
	KTEST_CHECKF(kt, minruns > 0, "the softint never ran on some CPU");
	if (ncpu > 1) {
		KTEST_CHECKF(kt, minkicks > 0,
		    "no IPI kick arrived on some CPU");
	}
	KTEST_CHECKF(kt, acq == rel + srel, "A: acquired %" PRIu64
	    " released %" PRIu64 " in threads + %" PRIu64 " in softints",
	    acq, rel, srel);
	KTEST_CHECKF(kt, st->si_a.lo_shadow == 0, "A: %u references left",
	    st->si_a.lo_shadow);
	ktest_so(kt, "phase1 threads=%u acquires=%" PRIu64
	    " softint_releases=%" PRIu64 " softint_pairs=%" PRIu64
	    " softint_schedules=%u min_softint_runs_per_cpu=%u "
	    "min_kicks_per_cpu=%u migrations=%u", nthr, acq, srel, pairs,
	    scheds, minruns, ncpu > 1 ? minkicks : 0, migr);

	/* Phase 2: drain D while the softints hold references on it. */
	lct_bar_init(&st->si_bar, ncpu);
	tg = ktest_tg_create("ktestsi2", ncpu);
	error = ktest_tg_spawn_percpu(tg, si_phase2, st);
	if (!KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error)) {
		mutex_enter(&st->si_bar.lb_lock);
		st->si_bar.lb_want = ktest_tg_count(tg);
		mutex_exit(&st->si_bar.lb_lock);
	}
	ktest_tg_start(tg);
	lct_bar_wait(&st->si_bar);
	KTEST_CHECKF(kt, st->si_errors == 0, "a softint did not take its "
	    "D references");
	out = st->si_d.lo_shadow;
	mutex_enter(&st->si_pair.lp_lock);
	atomic_store_release(&st->si_draining, 1);
	mutex_exit(&st->si_pair.lp_lock);
	d_us = lct_drain(kt, &st->si_d, &st->si_pair, NULL, &left);
	ktest_tg_join(tg);
	lct_bar_fini(&st->si_bar);
	KTEST_CHECKF(kt, left == 0, "D drained with %u of %u references "
	    "held by softints", left, out);
	KTEST_CHECKF(kt, out == ncpu * SI_DREFS, "D: %u references held "
	    "at drain start", out);
	KTEST_CHECKF(kt, st->si_errors == 0, "a softint did not release "
	    "its D references");
	ktest_so(kt, "phase2 softint_held_at_drain=%u drain_us=%" PRIu64,
	    out, d_us);

out:
	if (st->si_ipi != 0)
		ipi_unregister(st->si_ipi);
	if (st->si_sih != NULL)
		softint_disestablish(st->si_sih);
	/* No softint can run any more: drain the remaining objects. */
	(void)lct_drain(kt, &st->si_a, &st->si_pair, NULL, &left);
	KTEST_CHECKF(kt, left == 0, "A: %u references left", left);
	for (i = 0; i < SI_NS; i++) {
		(void)lct_drain(kt, &st->si_s[i], &st->si_pair, NULL, &left);
		KTEST_CHECKF(kt, left == 0, "S[%u]: %u references left", i,
		    left);
	}
	if (st->si_draining == 0)
		(void)lct_drain(kt, &st->si_d, &st->si_pair, NULL, NULL);
	lct_pair_fini(&st->si_pair);
	kmem_free(st->si_thr, nthr * sizeof(st->si_thr[0]));
	kmem_free(st->si_pc, ncpu * sizeof(st->si_pc[0]));
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(localcount, softint_release, test_softint_release);

/* ------------------------------------------------------------------
 * localcount:hardintr_update
 *
 * For HI_MS, a bound kthread per CPU (and ncpu unbound kthreads) do
 * acquire/release pairs on object H and keep sending asynchronous IPIs
 * to other CPUs.  The IPI handler, in hard interrupt context on the
 * receiving CPU, does acquire/release pairs on H and alternately takes
 * and drops a reference it keeps across invocations, so the handler's
 * updates interrupt the thread-context updates of the same per-CPU
 * counter.  No drain is in progress, so all of these use the fast
 * path.  Since a release may happen in a hard interrupt, H's interlock
 * is a spin mutex at IPL_HIGH.  Afterwards the handler-held references
 * are released and H is drained: the drain must return promptly with
 * nothing outstanding (a lost update hangs it or panics "negatively
 * referenced").  The handler must have run on every CPU.
 */

#define	HI_MS		2000
#define	HI_ITERS	2000000
#define	HI_PAIRS	2
#define	HI_DRAIN_MAX_US	(5ULL * 1000000)

struct hi_pcpu {
	u_int		hp_runs;
	u_int		hp_held;
	uint64_t	hp_pairs;
};

struct hi_thr {
	uint64_t	ht_pairs;
	u_int		ht_sent;
	u_int		ht_migr;
};

struct hi_state {
	struct ktest	*hi_kt;
	struct lcpair	hi_pair;
	struct lcobj	hi_h;
	u_int		hi_ipi;
	struct hi_pcpu	*hi_pc;
	struct hi_thr	*hi_thr;
	u_int		hi_nbound;
	int		hi_deadline;
};

/*
 * hi_ipi_handler(cookie)
 *
 *	Fast-path updates of H from a hard interrupt.  Hard interrupt
 *	context (ipi(9) asynchronous handler), no drain in progress.
 */
static void
hi_ipi_handler(void *cookie)
{
	struct hi_state *st = cookie;
	struct hi_pcpu *pc = &st->hi_pc[cpu_index(curcpu())];
	u_int k;

	pc->hp_runs++;
	for (k = 0; k < HI_PAIRS; k++) {
		localcount_acquire(&st->hi_h.lo_lc);
		localcount_release(&st->hi_h.lo_lc, &st->hi_pair.lp_cv,
		    &st->hi_pair.lp_lock);
	}
	pc->hp_pairs += HI_PAIRS;
	if (pc->hp_held) {
		lct_release(&st->hi_h, &st->hi_pair);
		pc->hp_held = 0;
	} else {
		lct_acquire(&st->hi_h);
		pc->hp_held = 1;
	}
}

/*
 * hi_worker(cookie, idx)
 *
 *	Thread-context pairs on H, sending IPIs to the next CPU (bound)
 *	or a random other CPU (unbound, which also sleep holding a
 *	reference).  kthread, thread context.
 */
static void
hi_worker(void *cookie, u_int idx)
{
	struct hi_state *st = cookie;
	struct hi_thr *th = &st->hi_thr[idx];
	const bool bound = idx < st->hi_nbound;
	struct cpu_info *ci;
	uint32_t seed = ktest_seed();
	u_int i, c0;

	for (i = 0; i < HI_ITERS; i++) {
		if ((i & 63) == 0) {
			if (ktest_expired(st->hi_deadline))
				break;
			if (!bound && (i & 1023) == 512) {
				lct_acquire(&st->hi_h);
				c0 = cpu_index(curcpu());
				kpause("ktesthi", false, 1, NULL);
				if (cpu_index(curcpu()) != c0)
					th->ht_migr++;
				lct_release(&st->hi_h, &st->hi_pair);
			} else
				ktest_breathe(i);
		}
		localcount_acquire(&st->hi_h.lo_lc);
		localcount_release(&st->hi_h.lo_lc, &st->hi_pair.lp_cv,
		    &st->hi_pair.lp_lock);
		th->ht_pairs++;
		if ((i & 7) == 0) {
			kpreempt_disable();
			if (bound) {
				ci = cpu_lookup((cpu_index(curcpu()) + 1) %
				    ncpu);
			} else
				ci = lct_other_cpu(&seed);
			ipi_trigger(st->hi_ipi, ci);
			kpreempt_enable();
			th->ht_sent++;
		}
	}
}

/*
 * test_hardintr_update(kt)
 *
 *	localcount:hardintr_update.  Thread context, sleeps.
 */
static int
test_hardintr_update(struct ktest *kt)
{
	struct hi_state *st;
	struct ktest_tg *tg;
	struct hi_pcpu *pc;
	char runs[128];
	uint64_t pairs = 0, hpairs = 0, d_us;
	u_int i, nthr, minruns = UINT_MAX, sent = 0, migr = 0, left;
	u_int leftover = 0;
	size_t n;
	int error;

	if (ncpu < 2)
		return ktest_skip(kt, "needs >= 2 CPUs (ncpu=%u)", ncpu);

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	st->hi_kt = kt;
	nthr = 2 * ncpu;
	st->hi_nbound = ncpu;
	st->hi_pc = kmem_zalloc(ncpu * sizeof(st->hi_pc[0]), KM_SLEEP);
	st->hi_thr = kmem_zalloc(nthr * sizeof(st->hi_thr[0]), KM_SLEEP);
	lct_pair_init(&st->hi_pair, IPL_HIGH);
	lct_obj_init(&st->hi_h);
	st->hi_ipi = ipi_register(hi_ipi_handler, st);
	if (!KTEST_CHECK(kt, st->hi_ipi != 0))
		goto out;

	tg = ktest_tg_create("ktesthi", nthr);
	error = ktest_tg_spawn_percpu(tg, hi_worker, st);
	if (error == 0)
		error = ktest_tg_spawn_unbound(tg, ncpu, hi_worker, st);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	st->hi_deadline = ktest_deadline_ms(HI_MS);
	ktest_tg_start(tg);
	ktest_tg_join(tg);
	lct_ipi_unregister(st->hi_ipi);

	/* Drop the references the handlers still hold. */
	for (i = 0; i < ncpu; i++) {
		pc = &st->hi_pc[i];
		if (pc->hp_held) {
			pc->hp_held = 0;
			lct_release(&st->hi_h, &st->hi_pair);
			leftover++;
		}
	}
	for (i = 0; i < nthr; i++) {
		pairs += st->hi_thr[i].ht_pairs;
		sent += st->hi_thr[i].ht_sent;
		migr += st->hi_thr[i].ht_migr;
		KTEST_CHECKF(kt, st->hi_thr[i].ht_pairs > 0,
		    "thread %u did no work", i);
	}
	runs[0] = '\0';
	for (i = 0, n = 0; i < ncpu; i++) {
		pc = &st->hi_pc[i];
		hpairs += pc->hp_pairs;
		minruns = MIN(minruns, pc->hp_runs);
		if (n < sizeof(runs))
			n += snprintf(runs + n, sizeof(runs) - n, "%s%u",
			    i ? "," : "", pc->hp_runs);
	}
	KTEST_CHECKF(kt, minruns > 0, "IPI handler never ran on some CPU "
	    "(runs per cpu %s)", runs);
	KTEST_CHECKF(kt, st->hi_h.lo_shadow == 0, "H: %u references left",
	    st->hi_h.lo_shadow);

	d_us = lct_drain(kt, &st->hi_h, &st->hi_pair, NULL, &left);
	KTEST_CHECKF(kt, left == 0, "H drained with %u references", left);
	KTEST_CHECKF(kt, d_us < HI_DRAIN_MAX_US, "drain took %" PRIu64
	    " us", d_us);
	ktest_so(kt, "threads=%u thread_pairs=%" PRIu64 " ipis_sent=%u "
	    "handler_runs_per_cpu=%s handler_pairs=%" PRIu64
	    " handler_held_at_end=%u migrations=%u drain_us=%" PRIu64,
	    nthr, pairs, sent, runs, hpairs, leftover, migr, d_us);
	goto done;

out:
	(void)lct_drain(kt, &st->hi_h, &st->hi_pair, NULL, NULL);
done:
	lct_pair_fini(&st->hi_pair);
	kmem_free(st->hi_thr, nthr * sizeof(st->hi_thr[0]));
	kmem_free(st->hi_pc, ncpu * sizeof(st->hi_pc[0]));
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(localcount, hardintr_update, test_hardintr_update);

/* ------------------------------------------------------------------
 * localcount:drain_vs_release
 *
 * DR_ROUNDS rounds on a fresh object: 2*ncpu kthreads (one bound per
 * CPU plus ncpu unbound) take 1..3 references each, and once all are
 * taken the main thread drains while they release them after random
 * delays (none, a busy-wait of up to 300 us, or a sleep of 1..3
 * ticks).  Every fourth round the holders release everything before
 * the drain starts, which must then return at once.  The drain must
 * return with the shadow count at 0; its duration and the latency
 * between the last release and the drain's return are reported and
 * bounded.
 */

#define	DR_ROUNDS	16
#define	DR_MAX_US	(2ULL * 1000000)

struct dr_state {
	struct ktest	*dr_kt;
	struct lcpair	dr_pair;
	struct lcbar	dr_bar;
	struct lcobj	dr_o;
	bool		dr_early;	/* release before the drain */
	volatile uint64_t dr_tlast;	/* time of the last release */
};

/*
 * dr_worker(cookie, idx)
 *
 *	Take 1..3 references, meet the others, release them after random
 *	delays.  kthread, thread context, may sleep holding references.
 */
static void
dr_worker(void *cookie, u_int idx)
{
	struct dr_state *st = cookie;
	uint32_t seed = ktest_seed(), r;
	u_int k, m;

	m = 1 + ktest_rand(&seed) % 3;
	for (k = 0; k < m; k++)
		lct_acquire(&st->dr_o);
	lct_bar_arrive(&st->dr_bar);
	for (k = 0; k < m; k++) {
		r = ktest_rand(&seed);
		if (!st->dr_early) {
			switch (r % 8) {
			case 0:
			case 1:
				break;
			case 2:
			case 3:
			case 4:
				DELAY((r >> 8) % 300);
				break;
			default:
				kpause("ktestdr", false, 1 + (r >> 8) % 3,
				    NULL);
				break;
			}
		}
		if (atomic_dec_uint_nv(&st->dr_o.lo_shadow) == 0)
			st->dr_tlast = ktest_now_us();
		localcount_release(&st->dr_o.lo_lc, &st->dr_pair.lp_cv,
		    &st->dr_pair.lp_lock);
	}
}

/*
 * test_drain_vs_release(kt)
 *
 *	localcount:drain_vs_release.  Thread context, sleeps.
 */
static int
test_drain_vs_release(struct ktest *kt)
{
	struct dr_state *st;
	struct ktest_tg *tg;
	uint64_t t0, t1, d, w, dsum = 0, dmax = 0, wsum = 0, wmax = 0;
	uint64_t emax = 0;
	u_int round, nthr, out, left, nw = 0, nbusy = 0, held = 0;
	int error;

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	st->dr_kt = kt;
	nthr = 2 * ncpu;
	lct_pair_init(&st->dr_pair, IPL_NONE);

	for (round = 0; round < DR_ROUNDS && !ktest_failed(kt); round++) {
		lct_obj_init(&st->dr_o);
		st->dr_early = (round % 4) == 0;
		st->dr_tlast = 0;
		lct_bar_init(&st->dr_bar, nthr);
		tg = ktest_tg_create("ktestdr", nthr);
		error = ktest_tg_spawn_percpu(tg, dr_worker, st);
		if (error == 0)
			error = ktest_tg_spawn_unbound(tg, ncpu, dr_worker,
			    st);
		if (!KTEST_CHECKF(kt, error == 0, "kthread_create: %d",
		    error))
			st->dr_bar.lb_want = ktest_tg_count(tg);
		ktest_tg_start(tg);
		lct_bar_wait(&st->dr_bar);
		if (st->dr_early) {
			KTEST_CHECKF(kt, ktest_wait_uint(&st->dr_o.lo_shadow,
			    0, 10000) == 0, "holders did not release");
			/* Let the last localcount_release calls finish. */
			kpause("ktestdr0", false, 1, NULL);
		}

		mutex_enter(&st->dr_pair.lp_lock);
		out = atomic_load_acquire(&st->dr_o.lo_shadow);
		t0 = ktest_now_us();
		localcount_drain(&st->dr_o.lo_lc, &st->dr_pair.lp_cv,
		    &st->dr_pair.lp_lock);
		t1 = ktest_now_us();
		left = atomic_load_acquire(&st->dr_o.lo_shadow);
		mutex_exit(&st->dr_pair.lp_lock);
		localcount_fini(&st->dr_o.lo_lc);
		ktest_tg_join(tg);
		lct_bar_fini(&st->dr_bar);

		KTEST_CHECKF(kt, left == 0, "round %u: drain returned with %u "
		    "of %u references outstanding", round, left, out);
		d = t1 - t0;
		if (st->dr_early) {
			emax = MAX(emax, d);
			continue;
		}
		dsum += d;
		dmax = MAX(dmax, d);
		held += out;
		if (out != 0)
			nbusy++;
		if (st->dr_tlast > t0) {
			w = t1 > st->dr_tlast ? t1 - st->dr_tlast : 0;
			wsum += w;
			wmax = MAX(wmax, w);
			nw++;
		}
	}
	KTEST_CHECKF(kt, nbusy > 0, "no drain started with references held");
	KTEST_CHECKF(kt, wmax < DR_MAX_US, "drain returned %" PRIu64
	    " us after the last release", wmax);
	KTEST_CHECKF(kt, emax < DR_MAX_US, "drain of an unreferenced "
	    "object took %" PRIu64 " us", emax);
	ktest_so(kt, "threads=%u rounds=%u busy_rounds=%u "
	    "held_at_drain_start=%u drain_avg_us=%" PRIu64
	    " drain_max_us=%" PRIu64 " wake_after_last_release_avg_us=%"
	    PRIu64 " max_us=%" PRIu64 " idle_drain_max_us=%" PRIu64,
	    nthr, DR_ROUNDS, nbusy, held, nbusy ? dsum / nbusy : 0, dmax,
	    nw ? wsum / nw : 0, wmax, emax);

	lct_pair_fini(&st->dr_pair);
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(localcount, drain_vs_release, test_drain_vs_release);

/* ------------------------------------------------------------------
 * localcount:drain_vs_descheduled_release
 *
 * A release reads lc_totalp and then updates this CPU's counter, with
 * preemption disabled across both so that the drain's xcall cannot run
 * on this CPU in between.  If the releasing thread lost its CPU there,
 * the xcall could gather this CPU's counter first, and the update would
 * land in a counter nobody gathers again: the drain would wait for
 * ever.  How often a thread loses its CPU in that window depends on the
 * port: x86 has kernel preemption (any instruction); NetBSD/aarch64
 * has none, so there a thread only leaves its CPU when it blocks or
 * yields, and even a yield keeps the CPU unless another thread is
 * runnable there.  drain_vs_release has nothing else runnable on the
 * holders' CPUs.  Here a spinner bound to every CPU is always runnable
 * (it lets higher priorities in at every iteration, ktest_breathe), so
 * a releaser that leaves its CPU in that window stays away for a while.
 *
 * DS_ROUNDS rounds on a fresh object: a holder bound to every CPU takes
 * DS_REFS references on it; once all have, they release theirs one by
 * one, and the main thread starts the drain when a quarter of them are
 * gone (spinning, so that it does not wait for a wakeup; it keeps one
 * holder off its CPU meanwhile), i.e. while releases are under way.  The drain must return with nothing
 * outstanding, within DS_MAX_US of the last release.
 */

#define	DS_ROUNDS	16
#define	DS_REFS		32
#define	DS_MAX_US	(2ULL * 1000000)
#define	DS_QUARTER_MS	1000	/* longest wait for a quarter released */

struct ds_state {
	struct lcpair	ds_pair;
	struct lcbar	ds_bar;
	struct lcobj	ds_o;
	volatile u_int	ds_go;		/* holders: release now */
	volatile u_int	ds_stop;	/* spinners: stop */
	volatile u_int	ds_spins;	/* spinner iterations, all CPUs */
	volatile uint64_t ds_tlast;	/* time of the last release */
};

/*
 * ds_spinner(cookie, idx)
 *
 *	Keep this CPU busy until told to stop, always runnable, letting
 *	higher-priority threads (xcall, the main thread) in at every
 *	iteration and yielding to its peers every 512.  kthread bound to
 *	a CPU, thread context.
 */
static void
ds_spinner(void *cookie, u_int idx)
{
	struct ds_state *st = cookie;
	u_int i;

	for (i = 1; atomic_load_relaxed(&st->ds_stop) == 0; i++)
		ktest_breathe(i);
	atomic_add_int(&st->ds_spins, i);
}

/*
 * ds_holder(cookie, idx)
 *
 *	Take DS_REFS references, meet the others, wait for the go,
 *	release them one by one.  kthread bound to a CPU, thread context.
 */
static void
ds_holder(void *cookie, u_int idx)
{
	struct ds_state *st = cookie;
	u_int i, k;

	for (k = 0; k < DS_REFS; k++)
		lct_acquire(&st->ds_o);
	lct_bar_arrive(&st->ds_bar);
	for (i = 1; atomic_load_acquire(&st->ds_go) == 0; i++)
		ktest_breathe(i);
	for (k = 0; k < DS_REFS; k++) {
		if (atomic_dec_uint_nv(&st->ds_o.lo_shadow) == 0)
			st->ds_tlast = ktest_now_us();
		localcount_release(&st->ds_o.lo_lc, &st->ds_pair.lp_cv,
		    &st->ds_pair.lp_lock);
	}
}

/*
 * test_drain_vs_descheduled_release(kt)
 *
 *	localcount:drain_vs_descheduled_release.  Thread context, sleeps.
 */
static int
test_drain_vs_descheduled_release(struct ktest *kt)
{
	struct ds_state *st;
	struct ktest_tg *spin, *tg;
	uint64_t t0, t1, w, wmax = 0, dmax = 0;
	u_int round, out, left, held = 0, nbusy = 0;
	int deadline, error;

	if (ncpu < 2)
		return ktest_skip(kt, "needs >= 2 CPUs (ncpu=%u)", ncpu);

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	lct_pair_init(&st->ds_pair, IPL_NONE);
	spin = ktest_tg_create("ktestdss", ncpu);
	error = ktest_tg_spawn_percpu(spin, ds_spinner, st);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	ktest_tg_start(spin);

	for (round = 0; round < DS_ROUNDS && !ktest_failed(kt); round++) {
		lct_obj_init(&st->ds_o);
		st->ds_tlast = 0;
		st->ds_go = 0;
		lct_bar_init(&st->ds_bar, ncpu);
		tg = ktest_tg_create("ktestdsh", ncpu);
		error = ktest_tg_spawn_percpu(tg, ds_holder, st);
		if (!KTEST_CHECKF(kt, error == 0, "kthread_create: %d",
		    error))
			st->ds_bar.lb_want = ktest_tg_count(tg);
		ktest_tg_start(tg);
		lct_bar_wait(&st->ds_bar);

		/* Go, and drain once a quarter of the references is gone. */
		out = atomic_load_acquire(&st->ds_o.lo_shadow);
		deadline = ktest_deadline_ms(DS_QUARTER_MS);
		atomic_store_release(&st->ds_go, 1);
		while (atomic_load_acquire(&st->ds_o.lo_shadow) > out - out / 4 &&
		    !ktest_expired(deadline))
			continue;

		mutex_enter(&st->ds_pair.lp_lock);
		out = atomic_load_acquire(&st->ds_o.lo_shadow);
		t0 = ktest_now_us();
		localcount_drain(&st->ds_o.lo_lc, &st->ds_pair.lp_cv,
		    &st->ds_pair.lp_lock);
		t1 = ktest_now_us();
		left = atomic_load_acquire(&st->ds_o.lo_shadow);
		mutex_exit(&st->ds_pair.lp_lock);
		localcount_fini(&st->ds_o.lo_lc);
		ktest_tg_join(tg);
		lct_bar_fini(&st->ds_bar);

		KTEST_CHECKF(kt, left == 0, "round %u: drain returned with %u "
		    "of %u references outstanding", round, left, out);
		held += out;
		if (out != 0)
			nbusy++;
		dmax = MAX(dmax, t1 - t0);
		if (st->ds_tlast > t0) {
			w = t1 > st->ds_tlast ? t1 - st->ds_tlast : 0;
			wmax = MAX(wmax, w);
		}
	}
	atomic_store_relaxed(&st->ds_stop, 1);
	ktest_tg_join(spin);

	KTEST_CHECKF(kt, nbusy > 0, "no drain started with references held");
	KTEST_CHECKF(kt, wmax < DS_MAX_US, "drain returned %" PRIu64
	    " us after the last release", wmax);
	ktest_so(kt, "holders=%u refs=%u rounds=%u busy_rounds=%u "
	    "held_at_drain_start=%u drain_max_us=%" PRIu64
	    " wake_after_last_release_max_us=%" PRIu64 " spinner_iters=%u",
	    ncpu, DS_REFS, DS_ROUNDS, nbusy, held, dmax, wmax,
	    st->ds_spins);

	lct_pair_fini(&st->ds_pair);
	kmem_free(st, sizeof(*st));
	return ktest_result(kt);
}
KTEST_CASE(localcount, drain_vs_descheduled_release,
    test_drain_vs_descheduled_release);

/* ------------------------------------------------------------------
 * localcount:debug_refcnt
 *
 * localcount_debug_refcnt() is an exact count of the references taken
 * and released through the fast path with DEBUG && LOCKDEBUG, and
 * always 0 otherwise.  References are taken in the main thread, in a
 * bound kthread per CPU and in unbound kthreads that sleep between
 * acquiring and releasing (so they release on another CPU).
 */

#define	DBG_MAIN	5
#define	DBG_PERTHR	3

struct dbg_state {
	struct lcpair	db_pair;
	struct lcbar	db_bar;
	struct localcount *db_lc;
	volatile u_int	db_release;
};

/*
 * dbg_worker(cookie, idx)
 *
 *	Take DBG_PERTHR references (sleeping in between if unbound),
 *	report, wait to be told, release them.  kthread, thread context.
 */
static void
dbg_worker(void *cookie, u_int idx)
{
	struct dbg_state *st = cookie;
	u_int k;

	for (k = 0; k < DBG_PERTHR; k++) {
		localcount_acquire(st->db_lc);
		if (idx >= ncpu)
			kpause("ktestdbg", false, 1, NULL);
	}
	lct_bar_arrive(&st->db_bar);
	(void)ktest_wait_uint(&st->db_release, 1, 30000);
	for (k = 0; k < DBG_PERTHR; k++) {
		if (idx >= ncpu)
			kpause("ktestdbg", false, 1, NULL);
		localcount_release(st->db_lc, &st->db_pair.lp_cv,
		    &st->db_pair.lp_lock);
	}
}

/*
 * test_debug_refcnt(kt)
 *
 *	localcount:debug_refcnt.  Thread context, sleeps.
 */
static int
test_debug_refcnt(struct ktest *kt)
{
	struct dbg_state *st;
	struct ktest_tg *tg;
	u_int k, nthr, nstarted, expect;
	int error;

#define	DBG_EXPECT(n)	(LCT_DEBUG_REFCNT ? (uint32_t)(n) : 0)

	st = kmem_zalloc(sizeof(*st), KM_SLEEP);
	/* localcount_init does not touch lc_refcnt: zeroed storage. */
	st->db_lc = kmem_zalloc(sizeof(*st->db_lc), KM_SLEEP);
	lct_pair_init(&st->db_pair, IPL_NONE);
	localcount_init(st->db_lc);

	KTEST_CHECKF(kt, localcount_debug_refcnt(st->db_lc) == 0,
	    "fresh count: %u", localcount_debug_refcnt(st->db_lc));
	for (k = 0; k < DBG_MAIN; k++)
		localcount_acquire(st->db_lc);
	KTEST_CHECKF(kt, localcount_debug_refcnt(st->db_lc) ==
	    DBG_EXPECT(DBG_MAIN), "%u after %u acquires",
	    localcount_debug_refcnt(st->db_lc), DBG_MAIN);
	localcount_release(st->db_lc, &st->db_pair.lp_cv,
	    &st->db_pair.lp_lock);
	KTEST_CHECKF(kt, localcount_debug_refcnt(st->db_lc) ==
	    DBG_EXPECT(DBG_MAIN - 1), "%u after one release",
	    localcount_debug_refcnt(st->db_lc));
	localcount_acquire(st->db_lc);

	nthr = 2 * ncpu;
	lct_bar_init(&st->db_bar, nthr);
	tg = ktest_tg_create("ktestdbg", nthr);
	error = ktest_tg_spawn_percpu(tg, dbg_worker, st);
	if (error == 0)
		error = ktest_tg_spawn_unbound(tg, ncpu, dbg_worker, st);
	if (!KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error))
		st->db_bar.lb_want = ktest_tg_count(tg);
	nstarted = ktest_tg_count(tg);
	ktest_tg_start(tg);
	lct_bar_wait(&st->db_bar);
	expect = DBG_MAIN + DBG_PERTHR * nstarted;
	KTEST_CHECKF(kt, localcount_debug_refcnt(st->db_lc) ==
	    DBG_EXPECT(expect), "%u with %u references held on all CPUs",
	    localcount_debug_refcnt(st->db_lc), expect);
	atomic_store_release(&st->db_release, 1);
	ktest_tg_join(tg);
	lct_bar_fini(&st->db_bar);
	KTEST_CHECKF(kt, localcount_debug_refcnt(st->db_lc) ==
	    DBG_EXPECT(DBG_MAIN), "%u after the threads released",
	    localcount_debug_refcnt(st->db_lc));
	for (k = 0; k < DBG_MAIN; k++) {
		localcount_release(st->db_lc, &st->db_pair.lp_cv,
		    &st->db_pair.lp_lock);
	}
	KTEST_CHECKF(kt, localcount_debug_refcnt(st->db_lc) == 0,
	    "%u after all released", localcount_debug_refcnt(st->db_lc));
	ktest_so(kt, "debug_refcnt=%s threads=%u max_expected=%u",
	    LCT_DEBUG_REFCNT ? "exact" : "zero", nstarted,
	    DBG_EXPECT(expect));

	mutex_enter(&st->db_pair.lp_lock);
	localcount_drain(st->db_lc, &st->db_pair.lp_cv,
	    &st->db_pair.lp_lock);
	mutex_exit(&st->db_pair.lp_lock);
	localcount_fini(st->db_lc);
	lct_pair_fini(&st->db_pair);
	kmem_free(st->db_lc, sizeof(*st->db_lc));
	kmem_free(st, sizeof(*st));
#undef	DBG_EXPECT
	return ktest_result(kt);
}
KTEST_CASE(localcount, debug_refcnt, test_debug_refcnt);
