/*	$NetBSD$	*/

/*-
 * In-kernel benchmarks for localcount(9): test program "bench".
 *
 * These cases measure; they fail only on a real error (a reference
 * count that does not add up, a drain that returns while a reference
 * is still held, a worker that could not be created).  Every
 * measurement is one "KTEST: tc-so bench <tc> <text>" line whose text
 * is a list of space-separated key=value words, always starting with
 * bench=<name> impl=<c|rust> ncpu=<N>:
 *
 *   bench=pair_private|pair_shared|atomic_private|atomic_shared
 *	threads=T ops=O wall_us=W ns_per_op=X.Y min_ns_per_op=X.Y
 *	max_ns_per_op=X.Y ops_per_sec_per_cpu=R capped=0|1 rounds=N
 *	One bound kthread per CPU runs up to BENCH_ITERS acquire+release
 *	pairs (one "op" is a pair) after a spinning start barrier; of
 *	BENCH_ROUNDS such rounds the one with the lowest ns_per_op is
 *	reported (the least disturbed by the host).
 *	ns_per_op is the mean over threads (sum of thread times / ops),
 *	min/max are the fastest and slowest thread,
 *	ops_per_sec_per_cpu = ops / wall time / threads.  capped=1 means
 *	the BENCH_MAX_MS time cap stopped that round's loops early.
 *   bench=drain_latency mode=idle|busy|holders objs=N others=K
 *	avg_us=X.Y med_us=X.Y min_us=X.Y max_us=X.Y
 *	localcount_drain latency (interlock held, from the call to its
 *	return) over N objects: with the other CPUs idle; with the other
 *	K CPUs hammering pairs on other objects; with the other K CPUs
 *	hammering pairs on the drained object and each still holding a
 *	reference, released as the drain starts.  Modes that need a
 *	second CPU print "skipped=ncpu" instead of numbers at ncpu=1.
 *   bench=memory obj=localcount|atomic struct_bytes=S percpu_bytes=P
 *	handle_bytes=H total_bytes=S+P+H [padded_bytes=L]
 *	Bytes per reference-counted object: the embedded struct, the
 *	per-CPU counters of all CPUs, the percpu(9) handle; for the
 *	atomic counter also its size padded to a cache line (what a
 *	contended counter should occupy).  No timing.
 *
 * Numbers are integers or fixed-point decimals printed with integer
 * arithmetic (no floating point in the kernel).  Under QEMU/TCG the
 * times are emulated and only comparable within one host and run.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#ifdef _KERNEL_OPT
#include "opt_rust_localcount.h"
#endif

#include <sys/param.h>
#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/condvar.h>
#include <sys/cpu.h>
#include <sys/errno.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/localcount.h>
#include <sys/lock.h>
#include <sys/mutex.h>
#include <sys/proc.h>
#include <sys/queue.h>
#include <sys/sched.h>
#include <sys/systm.h>
#include <sys/time.h>

#include "ktest.h"

#ifdef RUST_LOCALCOUNT
#define	BENCH_IMPL	"rust"
#else
#define	BENCH_IMPL	"c"
#endif

#define	BENCH_ITERS	200000	/* timed pairs per thread */
#define	BENCH_WARMUP	2000	/* untimed pairs per thread */
#define	BENCH_CHUNK	256	/* pairs between preempt_point()s */
#define	BENCH_ROUNDS	3	/* throughput rounds, best reported */
#define	BENCH_MAX_MS	1500	/* time cap of one throughput round */
#define	BENCH_WAIT_MS	20000	/* give up waiting for another thread */
#define	BENCH_NDRAIN	20	/* objects drained per latency mode */
#define	BENCH_PREPAIRS	64	/* pairs on an object before its drain */
#define	BENCH_HOLDPAIRS	256	/* pairs per holder before the stop */

/*
 * One thread's slot, alone on its cache line(s): a private localcount,
 * a private atomic counter and the thread's results.  Slot nthreads
 * of an array is the shared object of the *_shared benchmarks.
 */
struct bench_slot {
	struct localcount	bs_lc;
	volatile u_int		bs_atomic;	/* 1 (the "table" ref) */
	u_int			bs_bad;		/* count mismatches */
	uint64_t		bs_ops;
	uint64_t		bs_t0;		/* ns */
	uint64_t		bs_t1;		/* ns */
} __aligned(COHERENCY_UNIT);

/* A cache-line aligned kmem allocation. */
struct bench_buf {
	void			*bb_raw;
	size_t			bb_size;
};

/* The (cv, interlock) pair of localcount_release/_drain. */
struct bench_pair {
	kmutex_t		bp_lock;
	kcondvar_t		bp_cv;
};

enum bench_kind {
	BK_PAIR_PRIVATE,
	BK_PAIR_SHARED,
	BK_ATOMIC_PRIVATE,
	BK_ATOMIC_SHARED,
};

static const char *const bench_kind_name[] = {
	[BK_PAIR_PRIVATE] = "pair_private",
	[BK_PAIR_SHARED] = "pair_shared",
	[BK_ATOMIC_PRIVATE] = "atomic_private",
	[BK_ATOMIC_SHARED] = "atomic_shared",
};

/*
 * bench_now_ns()
 *
 *	Monotonic time in nanoseconds (nanouptime: reads the
 *	timecounter, unlike getnanouptime).  Any context.
 */
static uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	nanouptime(&ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/*
 * bench_zalloc(bb, size), bench_free(bb)
 *
 *	Allocate zeroed memory starting on a cache line boundary, so that
 *	slots do not share lines; free it.  Thread context, sleeps.
 */
static void *
bench_zalloc(struct bench_buf *bb, size_t size)
{

	bb->bb_size = size + COHERENCY_UNIT;
	bb->bb_raw = kmem_zalloc(bb->bb_size, KM_SLEEP);
	return (void *)roundup2((uintptr_t)bb->bb_raw, COHERENCY_UNIT);
}

static void
bench_free(struct bench_buf *bb)
{

	kmem_free(bb->bb_raw, bb->bb_size);
}

/*
 * bench_pair_init(p), bench_pair_fini(p)
 *
 *	Set up / tear down an adaptive interlock and its condvar.
 *	Thread context.
 */
static void
bench_pair_init(struct bench_pair *p)
{

	mutex_init(&p->bp_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&p->bp_cv, "ktestbn");
}

static void
bench_pair_fini(struct bench_pair *p)
{

	cv_destroy(&p->bp_cv);
	mutex_destroy(&p->bp_lock);
}

/*
 * bench_drain(lc, p)
 *
 *	Drain lc (taking p's interlock around localcount_drain) and
 *	finalize it.  Returns the duration of localcount_drain in ns.
 *	Thread context, sleeps; no new acquires of lc may start.
 */
static uint64_t
bench_drain(struct localcount *lc, struct bench_pair *p)
{
	uint64_t t0, t1;

	mutex_enter(&p->bp_lock);
	t0 = bench_now_ns();
	localcount_drain(lc, &p->bp_cv, &p->bp_lock);
	t1 = bench_now_ns();
	mutex_exit(&p->bp_lock);
	localcount_fini(lc);
	return t1 - t0;
}

/*
 * bench_wait_ge(p, val, quitp, deadline)
 *
 *	Spin until *p >= val (true), or until *quitp is set or the tick
 *	deadline passes (false).  Yields at every spin to more important
 *	threads (xcall threads, lwp0): on a non-DEBUG kernel they cannot
 *	preempt a PRI_KERNEL kthread.  Thread context.
 */
static bool
bench_wait_ge(volatile u_int *p, u_int val, volatile u_int *quitp,
    int deadline)
{

	while (atomic_load_acquire(p) < val) {
		if (quitp != NULL && atomic_load_acquire(quitp) != 0)
			return false;
		if (ktest_expired(deadline))
			return false;
		SPINLOCK_BACKOFF_HOOK;
		preempt_point();
	}
	return true;
}

/*
 * bench_pairs(lc, p, n)
 *
 *	n localcount_acquire+localcount_release pairs on lc.  Not inlined
 *	so that every benchmark loop has the same shape.  Any context in
 *	which p's interlock may be taken.
 */
static void __noinline
bench_pairs(struct localcount *lc, struct bench_pair *p, u_int n)
{
	u_int i;

	for (i = 0; i < n; i++) {
		localcount_acquire(lc);
		localcount_release(lc, &p->bp_cv, &p->bp_lock);
	}
}

/*
 * bench_atomics(c, n)
 *
 *	n reference count pairs on a plain atomic counter that holds one
 *	base reference: atomic_inc_uint to take, atomic_dec_uint_nv to
 *	drop and test for the last reference.  Returns how many drops
 *	wrongly saw zero.  Any context.
 */
static u_int __noinline
bench_atomics(volatile u_int *c, u_int n)
{
	u_int i, bad = 0;

	for (i = 0; i < n; i++) {
		atomic_inc_uint(c);
		if (__predict_false(atomic_dec_uint_nv(c) == 0))
			bad++;
	}
	return bad;
}

/* ------------------------------------------------------------------
 * Throughput: bench:pair_private, pair_shared, atomic_private,
 * atomic_shared.
 */

struct bench_tp {
	struct ktest		*tp_kt;
	enum bench_kind		tp_kind;
	struct bench_pair	tp_pair;
	struct bench_slot	*tp_slot;	/* tp_nthr + 1 slots */
	u_int			tp_nthr;
	volatile u_int		tp_ready;
	volatile u_int		tp_go;
	volatile u_int		tp_capped;
	int			tp_deadline;
	u_int			tp_bad;		/* count mismatches */
};

/*
 * bench_tp_run(tp, o, n)
 *
 *	n pairs of tp's kind on object o; returns the count mismatches
 *	seen.  Thread context.
 */
static u_int
bench_tp_run(struct bench_tp *tp, struct bench_slot *o, u_int n)
{

	switch (tp->tp_kind) {
	case BK_PAIR_PRIVATE:
	case BK_PAIR_SHARED:
		bench_pairs(&o->bs_lc, &tp->tp_pair, n);
		return 0;
	default:
		return bench_atomics(&o->bs_atomic, n);
	}
}

/*
 * bench_tp_thread(cookie, idx)
 *
 *	Warm up, wait at the spinning start barrier (the last thread to
 *	arrive opens it and starts the time cap), then run BENCH_ITERS
 *	pairs in chunks and record ops and start/end times.  Bound
 *	kthread, thread context.
 */
static void
bench_tp_thread(void *cookie, u_int idx)
{
	struct bench_tp *tp = cookie;
	struct bench_slot *me = &tp->tp_slot[idx], *o;
	uint64_t t0, t1, ops = 0;
	u_int n, bad;

	switch (tp->tp_kind) {
	case BK_PAIR_SHARED:
	case BK_ATOMIC_SHARED:
		o = &tp->tp_slot[tp->tp_nthr];
		break;
	default:
		o = me;
		break;
	}
	bad = bench_tp_run(tp, o, BENCH_WARMUP);

	if (atomic_inc_uint_nv(&tp->tp_ready) == tp->tp_nthr) {
		tp->tp_deadline = ktest_deadline_ms(BENCH_MAX_MS);
		atomic_store_release(&tp->tp_go, 1);
	} else {
		while (atomic_load_acquire(&tp->tp_go) == 0) {
			SPINLOCK_BACKOFF_HOOK;
			preempt_point();
		}
	}

	t0 = bench_now_ns();
	while (ops < BENCH_ITERS) {
		n = MIN(BENCH_CHUNK, BENCH_ITERS - ops);
		bad += bench_tp_run(tp, o, n);
		ops += n;
		if (ktest_expired(tp->tp_deadline)) {
			atomic_store_relaxed(&tp->tp_capped, 1);
			break;
		}
		preempt_point();
	}
	t1 = bench_now_ns();

	me->bs_ops = ops;
	me->bs_t0 = t0;
	me->bs_t1 = t1;
	me->bs_bad = bad;
}

/* The statistics of one throughput round. */
struct bench_stat {
	uint64_t	st_ops;
	uint64_t	st_wall;	/* ns, first start to last end */
	uint64_t	st_mean;	/* ns/op x 10, sum of times / ops */
	uint64_t	st_min;		/* ns/op x 10, fastest thread */
	uint64_t	st_max;		/* ns/op x 10, slowest thread */
	u_int		st_capped;
};

/*
 * bench_tp_round(kt, tp, st)
 *
 *	Run one round of tp's benchmark with a bound thread per CPU and
 *	fill in *st.  Returns false if the round could not run or
 *	measured nothing.  Thread context, sleeps.
 */
static bool
bench_tp_round(struct ktest *kt, struct bench_tp *tp, struct bench_stat *st)
{
	struct bench_slot *s;
	struct ktest_tg *tg;
	uint64_t sum_ns = 0, d, tmin = UINT64_MAX, tmax = 0;
	u_int i;
	int error;

	memset(st, 0, sizeof(*st));
	st->st_min = UINT64_MAX;
	tp->tp_ready = 0;
	tp->tp_go = 0;
	tp->tp_capped = 0;
	for (i = 0; i < tp->tp_nthr; i++)
		tp->tp_slot[i].bs_ops = 0;

	tg = ktest_tg_create("ktestbn", tp->tp_nthr);
	error = ktest_tg_spawn_percpu(tg, bench_tp_thread, tp);
	KTEST_CHECKF(kt, error == 0, "kthread_create: %d", error);
	if (error != 0) {
		/* Let the spawned threads pass the barrier. */
		tp->tp_deadline = ktest_deadline_ms(0);
		atomic_store_release(&tp->tp_go, 1);
	}
	ktest_tg_start(tg);
	ktest_tg_join(tg);
	if (error != 0)
		return false;

	for (i = 0; i < tp->tp_nthr; i++) {
		s = &tp->tp_slot[i];
		tp->tp_bad += s->bs_bad;
		KTEST_CHECKF(kt, s->bs_ops > 0 && s->bs_t1 > s->bs_t0,
		    "thread %u did no timed work", i);
		if (s->bs_ops == 0 || s->bs_t1 <= s->bs_t0)
			return false;
		d = s->bs_t1 - s->bs_t0;
		st->st_ops += s->bs_ops;
		sum_ns += d;
		tmin = MIN(tmin, s->bs_t0);
		tmax = MAX(tmax, s->bs_t1);
		st->st_min = MIN(st->st_min, d * 10 / s->bs_ops);
		st->st_max = MAX(st->st_max, d * 10 / s->bs_ops);
	}
	st->st_wall = tmax - tmin;
	st->st_mean = sum_ns * 10 / st->st_ops;
	st->st_capped = tp->tp_capped;
	return st->st_wall > 0;
}

/*
 * bench_throughput(kt, kind)
 *
 *	Run BENCH_ROUNDS rounds of one throughput benchmark, check the
 *	counts, and print the measurement line of the best round (lowest
 *	mean ns per op: the one least disturbed by the host).  Thread
 *	context, sleeps.
 */
static int
bench_throughput(struct ktest *kt, enum bench_kind kind)
{
	struct bench_tp *tp;
	struct bench_buf bb;
	struct bench_stat st, best;
	uint64_t rate;
	u_int i, r, nthr = ncpu, nbest = 0;

	tp = kmem_zalloc(sizeof(*tp), KM_SLEEP);
	tp->tp_kt = kt;
	tp->tp_kind = kind;
	tp->tp_nthr = nthr;
	tp->tp_slot = bench_zalloc(&bb, (nthr + 1) * sizeof(tp->tp_slot[0]));
	bench_pair_init(&tp->tp_pair);
	for (i = 0; i <= nthr; i++) {
		localcount_init(&tp->tp_slot[i].bs_lc);
		tp->tp_slot[i].bs_atomic = 1;
	}

	memset(&best, 0, sizeof(best));
	for (r = 0; r < BENCH_ROUNDS; r++) {
		if (!bench_tp_round(kt, tp, &st))
			break;
		if (nbest == 0 || st.st_mean < best.st_mean)
			best = st;
		nbest++;
	}

	KTEST_CHECKF(kt, tp->tp_bad == 0, "%u releases saw the count drop to 0",
	    tp->tp_bad);
	for (i = 0; i <= nthr; i++) {
		KTEST_CHECKF(kt, tp->tp_slot[i].bs_atomic == 1,
		    "atomic counter %u is %u, not 1", i,
		    tp->tp_slot[i].bs_atomic);
#if defined(DEBUG) && defined(LOCKDEBUG)
		KTEST_CHECKF(kt,
		    localcount_debug_refcnt(&tp->tp_slot[i].bs_lc) == 0,
		    "localcount %u: debug_refcnt %u", i,
		    localcount_debug_refcnt(&tp->tp_slot[i].bs_lc));
#endif
		/* Returns only once the per-CPU counts sum to zero. */
		(void)bench_drain(&tp->tp_slot[i].bs_lc, &tp->tp_pair);
	}

	if (nbest > 0) {
		rate = best.st_ops * 1000000000 / best.st_wall / nthr;
		ktest_so(kt, "bench=%s impl=%s ncpu=%u threads=%u ops=%" PRIu64
		    " wall_us=%" PRIu64 " ns_per_op=%" PRIu64 ".%" PRIu64
		    " min_ns_per_op=%" PRIu64 ".%" PRIu64
		    " max_ns_per_op=%" PRIu64 ".%" PRIu64
		    " ops_per_sec_per_cpu=%" PRIu64 " capped=%u rounds=%u",
		    bench_kind_name[kind], BENCH_IMPL, ncpu, nthr, best.st_ops,
		    best.st_wall / 1000, best.st_mean / 10, best.st_mean % 10,
		    best.st_min / 10, best.st_min % 10, best.st_max / 10,
		    best.st_max % 10, rate, best.st_capped, nbest);
	}

	bench_pair_fini(&tp->tp_pair);
	bench_free(&bb);
	kmem_free(tp, sizeof(*tp));
	return ktest_result(kt);
}

/*
 * test_pair_private(kt), test_pair_shared(kt), test_atomic_private(kt),
 * test_atomic_shared(kt)
 *
 *	bench:pair_private -- each CPU's thread does localcount pairs on
 *	its own object.  bench:pair_shared -- every CPU on one object.
 *	bench:atomic_private, bench:atomic_shared -- the same with a
 *	plain atomic reference count (shared: one cache line for all).
 *	Thread context, sleeps.
 */
static int
test_pair_private(struct ktest *kt)
{

	return bench_throughput(kt, BK_PAIR_PRIVATE);
}
KTEST_CASE(bench, pair_private, test_pair_private);

static int
test_pair_shared(struct ktest *kt)
{

	return bench_throughput(kt, BK_PAIR_SHARED);
}
KTEST_CASE(bench, pair_shared, test_pair_shared);

static int
test_atomic_private(struct ktest *kt)
{

	return bench_throughput(kt, BK_ATOMIC_PRIVATE);
}
KTEST_CASE(bench, atomic_private, test_atomic_private);

static int
test_atomic_shared(struct ktest *kt)
{

	return bench_throughput(kt, BK_ATOMIC_SHARED);
}
KTEST_CASE(bench, atomic_shared, test_atomic_shared);

/* ------------------------------------------------------------------
 * bench:drain_latency
 */

enum bench_dmode {
	BD_IDLE,
	BD_BUSY,
	BD_HOLDERS,
};

static const char *const bench_dmode_name[] = {
	[BD_IDLE] = "idle",
	[BD_BUSY] = "busy",
	[BD_HOLDERS] = "holders",
};

struct bench_dl {
	struct ktest		*dl_kt;
	enum bench_dmode	dl_mode;
	struct bench_pair	dl_pair;
	struct bench_slot	*dl_slot;	/* see below */
	u_int			dl_nham;	/* hammering threads */
	int			dl_deadline;
	/* Latencies, ns, written by the drainer. */
	uint64_t		dl_lat[BENCH_NDRAIN];
	u_int			dl_ndone;
	/* Control, written by the drainer. */
	volatile u_int		dl_quit;
	volatile u_int		dl_gen;		/* holders: round */
	volatile u_int		dl_stop;	/* holders: stop round */
	volatile u_int		dl_draining;	/* holders: drain round */
	/* Progress, written by the hammering threads. */
	char			dl_pad[COHERENCY_UNIT];
	volatile u_int		dl_running;
	volatile u_int		dl_acks;
	volatile u_int		dl_shadow;	/* refs held across drain */
};

/*
 * Slots of bench_dl: [0, BENCH_NDRAIN) are the drained objects (in
 * holders mode only slot 0 is used, re-initialised every round),
 * [BENCH_NDRAIN, BENCH_NDRAIN + dl_nham) the busy hammerers' private
 * objects.
 */
#define	BENCH_DL_NSLOT(nham)	(BENCH_NDRAIN + (nham))

/*
 * bench_dl_simple(dl)
 *
 *	Idle and busy modes: BENCH_NDRAIN times, initialise an object,
 *	do a few pairs on it and time its drain.  Thread context,
 *	sleeps.
 */
static void
bench_dl_simple(struct bench_dl *dl)
{
	struct localcount *lc;
	u_int i;

	for (i = 0; i < BENCH_NDRAIN; i++) {
		lc = &dl->dl_slot[i].bs_lc;
		localcount_init(lc);
		bench_pairs(lc, &dl->dl_pair, BENCH_PREPAIRS);
		dl->dl_lat[i] = bench_drain(lc, &dl->dl_pair);
		dl->dl_ndone++;
	}
}

/*
 * bench_dl_holders(dl)
 *
 *	Holders mode, drainer side: BENCH_NDRAIN rounds of: initialise
 *	the object, let every hammerer do BENCH_HOLDPAIRS pairs on it,
 *	tell them to stop (each stops while holding a reference, and
 *	acknowledges), then time the drain while the holders release
 *	their references as soon as it is announced.  The drain must
 *	return with no reference outstanding.  Thread context, sleeps.
 */
static void
bench_dl_holders(struct bench_dl *dl)
{
	struct ktest *kt = dl->dl_kt;
	struct localcount *lc = &dl->dl_slot[0].bs_lc;
	uint64_t t0, t1;
	u_int g, out, left;
	bool ok;

	for (g = 1; g <= BENCH_NDRAIN; g++) {
		localcount_init(lc);
		atomic_store_release(&dl->dl_gen, g);
		ok = bench_wait_ge(&dl->dl_running, g * dl->dl_nham, NULL,
		    dl->dl_deadline);
		KTEST_CHECKF(kt, ok, "round %u: hammerers did not start", g);
		atomic_store_release(&dl->dl_stop, g);
		if (ok) {
			ok = bench_wait_ge(&dl->dl_acks, g * dl->dl_nham,
			    NULL, dl->dl_deadline);
			KTEST_CHECKF(kt, ok, "round %u: hammerers did not stop",
			    g);
		}
		if (!ok) {
			/* Holders release when they see dl_quit. */
			atomic_store_release(&dl->dl_quit, 1);
			(void)bench_drain(lc, &dl->dl_pair);
			return;
		}

		mutex_enter(&dl->dl_pair.bp_lock);
		out = atomic_load_acquire(&dl->dl_shadow);
		atomic_store_release(&dl->dl_draining, g);
		t0 = bench_now_ns();
		localcount_drain(lc, &dl->dl_pair.bp_cv, &dl->dl_pair.bp_lock);
		t1 = bench_now_ns();
		left = atomic_load_acquire(&dl->dl_shadow);
		mutex_exit(&dl->dl_pair.bp_lock);
		localcount_fini(lc);

		KTEST_CHECKF(kt, out == dl->dl_nham,
		    "round %u: %u references held at drain, expected %u", g,
		    out, dl->dl_nham);
		KTEST_CHECKF(kt, left == 0,
		    "round %u: drain returned with %u references held", g,
		    left);
		dl->dl_lat[g - 1] = t1 - t0;
		dl->dl_ndone++;
	}
}

/*
 * bench_dl_drainer(cookie, idx)
 *
 *	The drainer of the busy and holders modes, bound to CPU 0; when
 *	done it tells the hammerers to quit.  Bound kthread, thread
 *	context, sleeps.
 */
static void
bench_dl_drainer(void *cookie, u_int idx)
{
	struct bench_dl *dl = cookie;
	bool ok;

	if (dl->dl_mode == BD_BUSY) {
		/* Start draining once every other CPU is hammering. */
		ok = bench_wait_ge(&dl->dl_running, dl->dl_nham, NULL,
		    dl->dl_deadline);
		KTEST_CHECKF(dl->dl_kt, ok, "hammerers did not start");
		if (ok)
			bench_dl_simple(dl);
	} else
		bench_dl_holders(dl);
	atomic_store_release(&dl->dl_quit, 1);
}

/*
 * bench_dl_busy(dl, idx)
 *
 *	Busy mode, hammerer side: pairs on a private object (never one
 *	being drained) until the drainer is done.  Bound kthread, thread
 *	context.
 */
static void
bench_dl_busy(struct bench_dl *dl, u_int idx)
{
	struct localcount *lc = &dl->dl_slot[BENCH_NDRAIN + idx - 1].bs_lc;

	bench_pairs(lc, &dl->dl_pair, BENCH_CHUNK);
	atomic_inc_uint(&dl->dl_running);
	while (atomic_load_acquire(&dl->dl_quit) == 0) {
		bench_pairs(lc, &dl->dl_pair, BENCH_CHUNK);
		preempt_point();
	}
}

/*
 * bench_dl_holder(dl)
 *
 *	Holders mode, hammerer side: every round, pairs on the object
 *	until the drainer says stop; the pair that sees the stop keeps
 *	its reference (counted in dl_shadow), acknowledges, and releases
 *	it as soon as the drain is announced.  Bound kthread, thread
 *	context.
 */
static void
bench_dl_holder(struct bench_dl *dl)
{
	struct localcount *lc = &dl->dl_slot[0].bs_lc;
	struct bench_pair *p = &dl->dl_pair;
	u_int g, n;

	for (g = 1; g <= BENCH_NDRAIN; g++) {
		if (!bench_wait_ge(&dl->dl_gen, g, &dl->dl_quit,
		    dl->dl_deadline))
			return;
		for (n = 0;; n++) {
			localcount_acquire(lc);
			if (atomic_load_acquire(&dl->dl_stop) == g)
				break;
			localcount_release(lc, &p->bp_cv, &p->bp_lock);
			if (n + 1 == BENCH_HOLDPAIRS)
				atomic_inc_uint(&dl->dl_running);
			if ((n & (BENCH_CHUNK - 1)) == 0) {
				if (atomic_load_acquire(&dl->dl_quit) != 0)
					return;
				preempt_point();
			}
		}
		/* Holding one reference to lc. */
		atomic_inc_uint(&dl->dl_shadow);
		membar_release();
		atomic_inc_uint(&dl->dl_acks);
		(void)bench_wait_ge(&dl->dl_draining, g, &dl->dl_quit,
		    dl->dl_deadline);
		atomic_dec_uint(&dl->dl_shadow);
		membar_release();
		localcount_release(lc, &p->bp_cv, &p->bp_lock);
	}
}

/*
 * bench_dl_hammer(cookie, idx)
 *
 *	Body of the threads on the CPUs other than CPU 0 (idx >= 1).
 *	Bound kthread, thread context.
 */
static void
bench_dl_hammer(void *cookie, u_int idx)
{
	struct bench_dl *dl = cookie;

	if (dl->dl_mode == BD_BUSY)
		bench_dl_busy(dl, idx);
	else
		bench_dl_holder(dl);
}

/*
 * bench_dl_mode(kt, mode)
 *
 *	Measure one drain latency mode and print its line.  Thread
 *	context, sleeps.
 */
static void
bench_dl_mode(struct ktest *kt, enum bench_dmode mode)
{
	CPU_INFO_ITERATOR cii;
	struct cpu_info *ci;
	struct bench_dl *dl;
	struct bench_buf bb;
	struct ktest_tg *tg;
	uint64_t sum = 0, lmin = UINT64_MAX, lmax = 0, avg, med, v;
	u_int i, j, nham;
	int error;

	nham = (mode == BD_IDLE) ? 0 : ncpu - 1;
	if (mode != BD_IDLE && nham == 0) {
		ktest_so(kt, "bench=drain_latency impl=%s ncpu=%u mode=%s "
		    "skipped=ncpu", BENCH_IMPL, ncpu, bench_dmode_name[mode]);
		return;
	}

	dl = kmem_zalloc(sizeof(*dl), KM_SLEEP);
	dl->dl_kt = kt;
	dl->dl_mode = mode;
	dl->dl_nham = nham;
	dl->dl_slot = bench_zalloc(&bb,
	    BENCH_DL_NSLOT(nham) * sizeof(dl->dl_slot[0]));
	bench_pair_init(&dl->dl_pair);
	for (i = BENCH_NDRAIN; i < BENCH_DL_NSLOT(nham); i++)
		localcount_init(&dl->dl_slot[i].bs_lc);
	dl->dl_deadline = ktest_deadline_ms(BENCH_WAIT_MS);

	if (mode == BD_IDLE) {
		bench_dl_simple(dl);
	} else {
		/* The drainer is thread 0 on CPU 0, hammerers 1.. elsewhere. */
		tg = ktest_tg_create("ktestbd", ncpu);
		error = 0;
		for (CPU_INFO_FOREACH(cii, ci)) {
			if (cpu_index(ci) == 0) {
				error = ktest_tg_spawn(tg, ci,
				    bench_dl_drainer, dl);
				break;
			}
		}
		for (CPU_INFO_FOREACH(cii, ci)) {
			if (error != 0 || cpu_index(ci) == 0)
				continue;
			error = ktest_tg_spawn(tg, ci, bench_dl_hammer, dl);
		}
		KTEST_CHECKF(kt, error == 0 && ktest_tg_count(tg) == ncpu,
		    "kthread_create: %d", error);
		if (error != 0 || ktest_tg_count(tg) != ncpu)
			atomic_store_release(&dl->dl_quit, 1);
		ktest_tg_start(tg);
		ktest_tg_join(tg);
	}

	for (i = BENCH_NDRAIN; i < BENCH_DL_NSLOT(nham); i++)
		(void)bench_drain(&dl->dl_slot[i].bs_lc, &dl->dl_pair);

	KTEST_CHECKF(kt, dl->dl_ndone == BENCH_NDRAIN,
	    "mode %s: %u of %u drains done", bench_dmode_name[mode],
	    dl->dl_ndone, BENCH_NDRAIN);
	for (i = 0; i < dl->dl_ndone; i++) {
		sum += dl->dl_lat[i];
		lmin = MIN(lmin, dl->dl_lat[i]);
		lmax = MAX(lmax, dl->dl_lat[i]);
		/* Insertion sort, for the median. */
		v = dl->dl_lat[i];
		for (j = i; j > 0 && dl->dl_lat[j - 1] > v; j--)
			dl->dl_lat[j] = dl->dl_lat[j - 1];
		dl->dl_lat[j] = v;
	}
	if (dl->dl_ndone > 0) {
		/* Microseconds with one decimal: ns / 100. */
		avg = sum / dl->dl_ndone / 100;
		med = dl->dl_lat[dl->dl_ndone / 2] / 100;
		lmin /= 100;
		lmax /= 100;
		ktest_so(kt, "bench=drain_latency impl=%s ncpu=%u mode=%s "
		    "objs=%u others=%u avg_us=%" PRIu64 ".%" PRIu64
		    " med_us=%" PRIu64 ".%" PRIu64
		    " min_us=%" PRIu64 ".%" PRIu64 " max_us=%" PRIu64
		    ".%" PRIu64, BENCH_IMPL, ncpu, bench_dmode_name[mode],
		    dl->dl_ndone, nham, avg / 10, avg % 10, med / 10, med % 10,
		    lmin / 10, lmin % 10, lmax / 10, lmax % 10);
	}

	bench_pair_fini(&dl->dl_pair);
	bench_free(&bb);
	kmem_free(dl, sizeof(*dl));
}

/*
 * test_drain_latency(kt)
 *
 *	bench:drain_latency -- localcount_drain latency with idle CPUs,
 *	with the other CPUs busy on other objects, and with the other
 *	CPUs holding references to the drained object.  Thread context,
 *	sleeps.
 */
static int
test_drain_latency(struct ktest *kt)
{

	bench_dl_mode(kt, BD_IDLE);
	bench_dl_mode(kt, BD_BUSY);
	bench_dl_mode(kt, BD_HOLDERS);
	return ktest_result(kt);
}
KTEST_CASE(bench, drain_latency, test_drain_latency);

/* ------------------------------------------------------------------
 * bench:memory
 */

/*
 * The layout of subr_percpu.c's private struct percpu, which
 * percpu_alloc(9) kmem_alloc()s for every allocation (the handle that
 * lc_percpu points to).  Mirrored here only to report its size.
 */
struct bench_percpu_mirror {
	unsigned		pm_offset;
	size_t			pm_size;
	void			(*pm_ctor)(void *, void *, struct cpu_info *);
	void			(*pm_dtor)(void *, void *, struct cpu_info *);
	void			*pm_cookie;
	LIST_ENTRY(bench_percpu_mirror) pm_list;
};

/*
 * test_memory(kt)
 *
 *	bench:memory -- bytes per reference-counted object: a localcount
 *	(struct, one int64_t per CPU rounded to the percpu(9) arena's
 *	quantum, the percpu handle) versus a plain atomic counter.  No
 *	timing.  Thread context.
 */
static int
test_memory(struct ktest *kt)
{
	const size_t lc_struct = sizeof(struct localcount);
	const size_t lc_slot = roundup(sizeof(int64_t), ALIGNBYTES + 1);
	const size_t lc_percpu = lc_slot * ncpu;
	const size_t lc_handle = sizeof(struct bench_percpu_mirror);
	const size_t at_struct = sizeof(volatile u_int);

	ktest_so(kt, "bench=memory impl=%s ncpu=%u obj=localcount "
	    "struct_bytes=%zu percpu_bytes=%zu handle_bytes=%zu "
	    "total_bytes=%zu", BENCH_IMPL, ncpu, lc_struct, lc_percpu,
	    lc_handle, lc_struct + lc_percpu + lc_handle);
	ktest_so(kt, "bench=memory impl=%s ncpu=%u obj=atomic "
	    "struct_bytes=%zu percpu_bytes=0 handle_bytes=0 total_bytes=%zu "
	    "padded_bytes=%zu", BENCH_IMPL, ncpu, at_struct, at_struct,
	    (size_t)roundup(at_struct, COHERENCY_UNIT));
	KTEST_CHECKF(kt, lc_struct == 3 * sizeof(void *),
	    "sizeof(struct localcount) %zu", lc_struct);
	return ktest_result(kt);
}
KTEST_CASE(bench, memory, test_memory);
