/*	$NetBSD$	*/

/*-
 * In-kernel tests of devsw_attach/devsw_detach as real drivers use
 * them, written from those drivers rather than from the library:
 *
 *   devsw:pud_two_majors -- dev/pud attaches one cdevsw at two majors
 *	(its module's own, and one per server with a bdevsw, in
 *	pudconf_reg), and pud_putter_close detaches with
 *	devsw_detach(&pud_bdevsw, &pud_cdevsw).  Opens run through both
 *	majors while each is detached in turn.
 *   devsw:runtime_builtin_waits -- a built-in driver's devsw (no
 *	d_localcount) attached at run time from a kthread, one cdev_open
 *	per CPU inside d_open while devsw_detach runs: the detach must
 *	wait, as NetBSD-current's does.
 *   devsw:module_devsw_from_thread -- the same with a module-style devsw
 *	(with d_localcount) attached outside MODULE_CMD_INIT.
 *
 * These use only NetBSD-current's interfaces and run on the C and the
 * Rust kernel alike, so the two can be compared.  With options
 * RUST_LOCALCOUNT also:
 *
 *   devsw:attach_grows_percpu_during_drains -- devsw_attach whose
 *	per-CPU allocation grows the percpu(9) area (an xcall) while drains
 *	run on device_lock (their xcalls take it): no deadlock.
 *   devsw:detach_reports_after_5s -- a detach that has waited 5 s says
 *	so on the console (localcount_drain_reports counts the lines).
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#ifdef _KERNEL_OPT
#include "opt_rust_localcount.h"
#endif

#include <sys/param.h>
#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/buf.h>
#include <sys/conf.h>
#include <sys/condvar.h>
#include <sys/container_of.h>
#include <sys/cpu.h>
#include <sys/errno.h>
#include <sys/fcntl.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/localcount.h>
#include <sys/lwp.h>
#include <sys/module.h>
#include <sys/mutex.h>
#include <sys/percpu.h>
#include <sys/proc.h>
#include <sys/stat.h>
#include <sys/systm.h>

#include "ktest.h"

#define	KD_ALIVE	0x4b54414cU	/* "KTAL" */
#define	KD_DEAD		0xdeadbeefU	/* poison */
#define	KD_WAIT_MS	300	/* how long a detach must stay blocked */
#define	KD_DONE_MS	10000	/* how long it may take once unblocked */
#define	KD_OPEN_MS	50	/* the slow d_open, after the gate opens */

/* ------------------------------------------------------------------
 * A gate that d_open waits behind, and per-major "driver state".
 */

static kmutex_t kd_lock;
static kcondvar_t kd_cv;
static bool kd_go;			/* the gate is open */
static volatile u_int kd_in_open;	/* d_open calls running */
static volatile u_int kd_bad_opens;	/* d_open found its state freed */

#define	KD_NMAJ	2
static volatile devmajor_t kd_major[KD_NMAJ];	/* pud: per-server state */
static volatile u_int kd_state[KD_NMAJ];	/* KD_ALIVE or KD_DEAD */

static void
kd_gate_init(void)
{

	mutex_init(&kd_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&kd_cv, "ktdrvg");
	kd_go = false;
	kd_in_open = 0;
	kd_bad_opens = 0;
}

static void
kd_gate_fini(void)
{

	cv_destroy(&kd_cv);
	mutex_destroy(&kd_lock);
}

static void
kd_gate_open(void)
{

	mutex_enter(&kd_lock);
	kd_go = true;
	cv_broadcast(&kd_cv);
	mutex_exit(&kd_lock);
}

/* Wait until n d_open calls are inside (or give up after KD_DONE_MS). */
static int
kd_wait_in_open(u_int n)
{

	return ktest_wait_uint(&kd_in_open, n, KD_DONE_MS);
}

/* The state the driver keeps for major maj: like pud's per-server one. */
static volatile u_int *
kd_state_of(devmajor_t maj)
{
	int i;

	for (i = 0; i < KD_NMAJ; i++) {
		if (kd_major[i] == maj)
			return &kd_state[i];
	}
	return NULL;
}

/*
 * d_open: minor 0 returns at once; minor 1 waits behind the gate, then
 * sleeps KD_OPEN_MS (a slow open) and checks that the state of its
 * major is still there (devsw_detach of the major must wait for it).
 */
static int
kd_open(dev_t dev, int flag, int mode, struct lwp *l)
{
	volatile u_int *st;

	if (minor(dev) == 0)
		return 0;
	atomic_inc_uint(&kd_in_open);
	mutex_enter(&kd_lock);
	while (!kd_go)
		cv_wait(&kd_cv, &kd_lock);
	mutex_exit(&kd_lock);
	ktest_sleep_ms(KD_OPEN_MS);
	st = kd_state_of(major(dev));
	if (st == NULL || atomic_load_acquire(st) != KD_ALIVE)
		atomic_inc_uint(&kd_bad_opens);
	atomic_dec_uint(&kd_in_open);
	return 0;
}

static void
kd_strategy(struct buf *bp)
{

	bp->b_error = ENXIO;
	biodone(bp);
}

/* The test cdevsws differ only in d_localcount. */
#define	KD_CDEVSW_OPS							\
	.d_open = kd_open,						\
	.d_close = nullclose,						\
	.d_read = noread,						\
	.d_write = nowrite,						\
	.d_ioctl = noioctl,						\
	.d_stop = nostop,						\
	.d_tty = notty,							\
	.d_poll = nopoll,						\
	.d_mmap = nommap,						\
	.d_kqfilter = nokqfilter,					\
	.d_discard = nodiscard,						\
	.d_flag = D_OTHER | D_MPSAFE

/* Module-style: with d_localcount, as DEVSW_MODULE_INIT makes them. */
static struct localcount kd_pud_c_lc, kd_pud_b_lc;
static const struct cdevsw kd_pud_cdevsw = {
	.d_localcount = &kd_pud_c_lc,
	KD_CDEVSW_OPS,
};
static const struct bdevsw kd_pud_bdevsw = {
	.d_localcount = &kd_pud_b_lc,
	.d_open = kd_open,
	.d_close = nullclose,
	.d_strategy = kd_strategy,
	.d_ioctl = noioctl,
	.d_dump = nodump,
	.d_psize = nosize,
	.d_discard = nodiscard,
	.d_flag = D_DISK | D_MPSAFE,
};

/* Built-in style: no d_localcount. */
static const struct cdevsw kd_builtin_cdevsw = {
	KD_CDEVSW_OPS,
};

/* ------------------------------------------------------------------
 * One-shot kthreads.
 */

struct kd_job {
	struct ktest_job	d_job;		/* the thread; j_dev, j_error */
	const struct bdevsw	*j_bdev;
	const struct cdevsw	*j_cdev;
	const char		*j_name;
	devmajor_t		j_bmajor, j_cmajor;
	bool			j_modcur;	/* module_current() != NULL */
	u_int			j_in_open_after; /* d_open running at return */
};

#define	KD_JOB(kj)	container_of(kj, struct kd_job, d_job)

static void
kd_open_fn(struct ktest_job *kj)
{

	kj->j_error = cdev_open(kj->j_dev, FREAD, S_IFCHR, curlwp);
}

static void
kd_attach_fn(struct ktest_job *kj)
{
	struct kd_job *j = KD_JOB(kj);

	j->j_modcur = module_current() != NULL;
	kj->j_error = devsw_attach(j->j_name, j->j_bdev, &j->j_bmajor,
	    j->j_cdev, &j->j_cmajor);
}

static void
kd_detach_fn(struct ktest_job *kj)
{
	struct kd_job *j = KD_JOB(kj);

	devsw_detach(j->j_bdev, j->j_cdev);
	j->j_in_open_after = atomic_load_acquire(&kd_in_open);
}

static void
kd_job_init(struct kd_job *j, void (*fn)(struct ktest_job *))
{

	memset(j, 0, sizeof(*j));
	j->d_job.j_fn = fn;
	j->j_bmajor = j->j_cmajor = NODEVMAJOR;
}

/*
 * Start a detach of (bdev, cdev) while d_open calls are held behind the
 * gate; check that it is still blocked after KD_WAIT_MS, open the gate,
 * and check that it returned only once every d_open had finished.
 * Returns how long the detach took (us).
 */
static uint64_t
kd_detach_must_wait(struct ktest *kt, const char *what,
    const struct bdevsw *bdev, const struct cdevsw *cdev)
{
	struct kd_job det;

	kd_job_init(&det, kd_detach_fn);
	det.j_bdev = bdev;
	det.j_cdev = cdev;
	if (!KTEST_CHECK(kt, ktest_job_start(&det.d_job, "ktdrvd") == 0))
		return 0;
	ktest_sleep_ms(KD_WAIT_MS);
	KTEST_CHECKF(kt, !atomic_load_acquire(&det.d_job.j_done),
	    "%s: devsw_detach returned after %" PRIu64 " us while %u d_open"
	    " were running", what, det.d_job.j_t_done - det.d_job.j_t_start,
	    kd_in_open);
	kd_gate_open();
	KTEST_CHECKF(kt, ktest_wait_uint(&det.d_job.j_done, 1, KD_DONE_MS) ==
	    0, "%s: devsw_detach still blocked after the opens finished",
	    what);
	ktest_job_join(&det.d_job);
	KTEST_CHECKF(kt, det.j_in_open_after == 0,
	    "%s: devsw_detach returned with %u d_open running", what,
	    det.j_in_open_after);
	return det.d_job.j_t_done - det.d_job.j_t_start;
}

/* ------------------------------------------------------------------
 * devsw:pud_two_majors
 */
static int
ktest_drivers_pud_two_majors(struct ktest *kt)
{
	devmajor_t bm = NODEVMAJOR, ca = NODEVMAJOR, bb = NODEVMAJOR,
	    cb = NODEVMAJOR;
	struct kd_job op;
	uint64_t us;
	int error;

	kd_gate_init();
	/* pud_modcmd(MODULE_CMD_INIT): the module's own major. */
	error = devsw_attach("ktpud", NULL, &bm, &kd_pud_cdevsw, &ca);
	if (!KTEST_CHECKF(kt, error == 0, "module attach: %d", error))
		goto out;
	kd_major[0] = ca;
	atomic_store_release(&kd_state[0], KD_ALIVE);
	/* pudconf_reg: a server's major, with the bdevsw. */
	error = devsw_attach("ktpud0", &kd_pud_bdevsw, &bb, &kd_pud_cdevsw,
	    &cb);
	if (!KTEST_CHECKF(kt, error == 0, "pudconf_reg attach: %d", error)) {
		devsw_detach(NULL, &kd_pud_cdevsw);
		goto out;
	}
	kd_major[1] = cb;
	atomic_store_release(&kd_state[1], KD_ALIVE);
	ktest_so(kt, "one cdevsw at character majors %d and %d"
	    " (bdevsw at %d)", ca, cb, bb);
	KTEST_CHECK(kt, ca < cb);

	/* An open through the first major is inside d_open. */
	kd_job_init(&op, kd_open_fn);
	op.d_job.j_dev = makedev(ca, 1);
	KTEST_CHECK(kt, ktest_job_start(&op.d_job, "ktpudo") == 0);
	KTEST_CHECK(kt, kd_wait_in_open(1) == 0);
	/* The other major works meanwhile. */
	KTEST_CHECK(kt, cdev_open(makedev(cb, 0), FREAD, S_IFCHR,
	    curlwp) == 0);

	/* pud_putter_close: detaches the lowest major of the cdevsw. */
	us = kd_detach_must_wait(kt, "first major", NULL, &kd_pud_cdevsw);
	atomic_store_release(&kd_state[0], KD_DEAD);
	ktest_job_join(&op.d_job);
	KTEST_CHECKF(kt, op.d_job.j_error == 0, "d_open: %d",
	    op.d_job.j_error);
	ktest_so(kt, "detach of major %d waited %" PRIu64 " ms for its open",
	    ca, us / 1000);
	KTEST_CHECKF(kt, cdevsw_lookup(makedev(ca, 0)) == NULL,
	    "devsw_detach did not remove the lowest major %d", ca);
	KTEST_CHECKF(kt, cdevsw_lookup(makedev(cb, 0)) == &kd_pud_cdevsw,
	    "the other major %d is gone", cb);

	/* The other major still works: open, and the seed's lookup. */
	error = cdev_open(makedev(cb, 0), FREAD, S_IFCHR, curlwp);
	KTEST_CHECKF(kt, error == 0, "open through major %d after the"
	    " detach of %d: %d", cb, ca, error);
	KTEST_CHECK(kt, cdev_open(makedev(ca, 0), FREAD, S_IFCHR, curlwp) ==
	    ENXIO);
#ifdef RUST_LOCALCOUNT
	{
		const struct cdevsw *c;
		const struct bdevsw *b;

		c = cdevsw_lookup_acquire(makedev(cb, 0));
		KTEST_CHECK(kt, c == &kd_pud_cdevsw);
		if (c != NULL)
			cdevsw_release(c);
		b = bdevsw_lookup_acquire(makedev(bb, 0));
		KTEST_CHECK(kt, b == &kd_pud_bdevsw);
		if (b != NULL)
			bdevsw_release(b);
	}
#endif

	/* Now the server goes: an open through its major is running. */
	mutex_enter(&kd_lock);
	kd_go = false;
	mutex_exit(&kd_lock);
	kd_job_init(&op, kd_open_fn);
	op.d_job.j_dev = makedev(cb, 1);
	KTEST_CHECK(kt, ktest_job_start(&op.d_job, "ktpudo") == 0);
	KTEST_CHECK(kt, kd_wait_in_open(1) == 0);
	us = kd_detach_must_wait(kt, "last major", &kd_pud_bdevsw,
	    &kd_pud_cdevsw);
	atomic_store_release(&kd_state[1], KD_DEAD);
	ktest_job_join(&op.d_job);
	KTEST_CHECKF(kt, op.d_job.j_error == 0, "d_open: %d",
	    op.d_job.j_error);
	ktest_so(kt, "detach of major %d waited %" PRIu64 " ms for its open",
	    cb, us / 1000);
	KTEST_CHECK(kt, cdev_open(makedev(cb, 0), FREAD, S_IFCHR, curlwp) ==
	    ENXIO);

	/* The module is loaded again. */
	bm = ca = NODEVMAJOR;
	error = devsw_attach("ktpud", NULL, &bm, &kd_pud_cdevsw, &ca);
	if (KTEST_CHECKF(kt, error == 0, "re-attach: %d", error)) {
		KTEST_CHECK(kt, cdev_open(makedev(ca, 0), FREAD, S_IFCHR,
		    curlwp) == 0);
		devsw_detach(NULL, &kd_pud_cdevsw);
	}
	KTEST_CHECKF(kt, kd_bad_opens == 0,
	    "%u d_open saw their major's state freed", kd_bad_opens);
out:
	kd_gate_fini();
	return ktest_result(kt);
}
KTEST_CASE(devsw, pud_two_majors, ktest_drivers_pud_two_majors);

/* ------------------------------------------------------------------
 * devsw:runtime_builtin_waits, devsw:module_devsw_from_thread
 */

static void
kd_opener_thread(void *arg, u_int idx)
{
	const dev_t *dev = arg;

	(void)cdev_open(*dev, FREAD, S_IFCHR, curlwp);
}

static int
kd_attached_from_thread(struct ktest *kt, const char *name,
    const struct cdevsw *cdev)
{
	struct kd_job att;
	dev_t dev;
	struct ktest_tg *tg;
	uint64_t us;
	u_int n;

	kd_gate_init();
	/* A kthread attaches it (no module is being initialised there). */
	kd_job_init(&att, kd_attach_fn);
	att.j_name = name;
	att.j_cdev = cdev;
	if (!KTEST_CHECK(kt, ktest_job_start(&att.d_job, "ktdrva") == 0))
		goto out;
	ktest_job_join(&att.d_job);
	if (!KTEST_CHECKF(kt, att.d_job.j_error == 0, "devsw_attach: %d",
	    att.d_job.j_error))
		goto out;
	KTEST_CHECK(kt, !att.j_modcur);
	kd_major[0] = att.j_cmajor;
	atomic_store_release(&kd_state[0], KD_ALIVE);

	/* One cdev_open per CPU, inside d_open. */
	dev = makedev(att.j_cmajor, 1);
	tg = ktest_tg_create("ktdrvo", ncpu);
	if (!KTEST_CHECK(kt, ktest_tg_spawn_percpu(tg, kd_opener_thread,
	    &dev) == 0)) {
		kd_gate_open();
		ktest_tg_join(tg);
		devsw_detach(NULL, cdev);
		goto out;
	}
	n = ktest_tg_count(tg);
	ktest_tg_start(tg);
	KTEST_CHECKF(kt, kd_wait_in_open(n) == 0, "%u of %u opens in d_open",
	    kd_in_open, n);

	us = kd_detach_must_wait(kt, name, NULL, cdev);
	atomic_store_release(&kd_state[0], KD_DEAD);
	ktest_tg_join(tg);
	ktest_so(kt, "devsw_detach of major %d waited %" PRIu64 " ms for %u"
	    " opens (d_localcount %s)", att.j_cmajor, us / 1000, n,
	    cdev->d_localcount != NULL ? "set" : "NULL");
	KTEST_CHECKF(kt, kd_bad_opens == 0,
	    "%u d_open saw their major's state freed", kd_bad_opens);
out:
	kd_gate_fini();
	return ktest_result(kt);
}

static int
ktest_drivers_runtime_builtin_waits(struct ktest *kt)
{

	return kd_attached_from_thread(kt, "ktbltw", &kd_builtin_cdevsw);
}
KTEST_CASE(devsw, runtime_builtin_waits, ktest_drivers_runtime_builtin_waits);

static int
ktest_drivers_module_devsw_from_thread(struct ktest *kt)
{

	return kd_attached_from_thread(kt, "ktmodt", &kd_pud_cdevsw);
}
KTEST_CASE(devsw, module_devsw_from_thread,
    ktest_drivers_module_devsw_from_thread);

#ifdef RUST_LOCALCOUNT

/* ------------------------------------------------------------------
 * devsw:attach_grows_percpu_during_drains
 */

#define	KD_ROUNDS	10
#define	KD_PCPU_CHUNK	(2048 / sizeof(int64_t))	/* PERCPU_IMPORT_SIZE */
#define	KD_NPCPU	(KD_ROUNDS * 3 * KD_PCPU_CHUNK)	/* fillers */
#define	KD_NDRAIN	256	/* localcounts per drainer */

static percpu_t **kd_pcpu;
static u_int kd_npcpu;
static percpu_t *kd_anchor;
static volatile u_int kd_stop;
static volatile u_int kd_drains;
static kcondvar_t kd_drain_cv;

/*
 * CPU 0's per-CPU area moves when percpu(9) grows it (one CPU, always
 * the same, whichever this LWP runs on).
 */
static void *
kd_pcpu_base(void)
{

	return percpu_getptr_remote(kd_anchor, cpu_lookup(0));
}

/*
 * Use up the percpu(9) offset arena (it has no quantum cache): allocate
 * until an allocation grew the area (it imported a new chunk of
 * PERCPU_IMPORT_SIZE), then the rest of that chunk, so that the next
 * percpu_alloc must grow it again, with an xcall.  The fillers stay
 * allocated until the case ends, so that what a round frees leaves at
 * most a chunk's worth for the next one to fill.
 */
static bool
kd_pcpu_exhaust(void)
{
	void *base = kd_pcpu_base();
	u_int i;

	while (kd_npcpu < KD_NPCPU) {
		kd_pcpu[kd_npcpu++] = percpu_alloc(sizeof(int64_t));
		if (kd_pcpu_base() != base)
			break;
	}
	for (i = 1; i < KD_PCPU_CHUNK && kd_npcpu < KD_NPCPU; i++)
		kd_pcpu[kd_npcpu++] = percpu_alloc(sizeof(int64_t));
	return kd_npcpu < KD_NPCPU;
}

static void
kd_pcpu_release(void)
{

	while (kd_npcpu > 0)
		percpu_free(kd_pcpu[--kd_npcpu], sizeof(int64_t));
}

/* Drain localcounts with device_lock as the interlock, one after another. */
static void
kd_drainer_thread(void *arg, u_int idx)
{
	struct localcount *lcs = arg;
	u_int i;

	for (i = 0; i < KD_NDRAIN && !atomic_load_acquire(&kd_stop); i++) {
		mutex_enter(&device_lock);
		localcount_drain(&lcs[i], &kd_drain_cv, &device_lock);
		mutex_exit(&device_lock);
		atomic_inc_uint(&kd_drains);
	}
}

static int
ktest_drivers_attach_grows_percpu(struct ktest *kt)
{
	struct localcount *lcs;
	struct ktest_tg *tg;
	devmajor_t bm, cm;
	u_int round, grew = 0, i, ndrainers = 2;
	void *base;
	int error;

	lcs = kmem_zalloc(ndrainers * KD_NDRAIN * sizeof(*lcs), KM_SLEEP);
	kd_pcpu = kmem_zalloc(KD_NPCPU * sizeof(*kd_pcpu), KM_SLEEP);
	kd_npcpu = 0;
	for (i = 0; i < ndrainers * KD_NDRAIN; i++)
		localcount_init(&lcs[i]);
	cv_init(&kd_drain_cv, "ktdrvdr");
	kd_anchor = percpu_alloc(sizeof(int64_t));
	kd_stop = 0;
	kd_drains = 0;

	tg = ktest_tg_create("ktdrvx", ndrainers);
	for (i = 0; i < ndrainers; i++) {
		KTEST_CHECK(kt, ktest_tg_spawn_unbound(tg, 1, kd_drainer_thread,
		    &lcs[i * KD_NDRAIN]) == 0);
	}
	ktest_tg_start(tg);
	for (round = 0; round < KD_ROUNDS && !ktest_failed(kt); round++) {
		if (!KTEST_CHECK(kt, kd_pcpu_exhaust()))
			break;
		base = kd_pcpu_base();
		bm = cm = NODEVMAJOR;
		error = devsw_attach("ktgrow", NULL, &bm, &kd_pud_cdevsw, &cm);
		if (!KTEST_CHECKF(kt, error == 0, "devsw_attach: %d", error))
			break;
		if (kd_pcpu_base() != base)
			grew++;
		devsw_detach(NULL, &kd_pud_cdevsw);
	}
	atomic_store_release(&kd_stop, 1);
	ktest_tg_join(tg);
	kd_pcpu_release();
	kmem_free(kd_pcpu, KD_NPCPU * sizeof(*kd_pcpu));
	ktest_so(kt, "%u attaches, %u grew the per-CPU area, %u drains ran",
	    round, grew, kd_drains);
	/* Something else in the kernel may take a slot now and then. */
	KTEST_CHECKF(kt, round == KD_ROUNDS && grew * 4 >= round * 3,
	    "only %u of %u attaches grew the per-CPU area", grew, round);

	percpu_free(kd_anchor, sizeof(int64_t));
	/* Drained ones are finalised; the drainers may have left some. */
	for (i = 0; i < ndrainers * KD_NDRAIN; i++) {
		if (lcs[i].lc_totalp == (void *)(uintptr_t)1)
			localcount_fini(&lcs[i]);
		else
			devsw_localcount_discard(&lcs[i]);
	}
	kmem_free(lcs, ndrainers * KD_NDRAIN * sizeof(*lcs));
	cv_destroy(&kd_drain_cv);
	return ktest_result(kt);
}
KTEST_CASE(devsw, attach_grows_percpu_during_drains,
    ktest_drivers_attach_grows_percpu);

/* ------------------------------------------------------------------
 * devsw:detach_reports_after_5s
 */
static int
ktest_drivers_detach_reports(struct ktest *kt)
{
	devmajor_t bm = NODEVMAJOR, cm = NODEVMAJOR;
	struct kd_job op, det;
	u_int before;
	int error;

	kd_gate_init();
	error = devsw_attach("ktslow", NULL, &bm, &kd_pud_cdevsw, &cm);
	if (!KTEST_CHECKF(kt, error == 0, "devsw_attach: %d", error))
		goto out;
	kd_major[0] = cm;
	atomic_store_release(&kd_state[0], KD_ALIVE);
	kd_job_init(&op, kd_open_fn);
	op.d_job.j_dev = makedev(cm, 1);
	KTEST_CHECK(kt, ktest_job_start(&op.d_job, "ktslowo") == 0);
	KTEST_CHECK(kt, kd_wait_in_open(1) == 0);

	before = localcount_drain_reports;
	kd_job_init(&det, kd_detach_fn);
	det.j_cdev = &kd_pud_cdevsw;
	KTEST_CHECK(kt, ktest_job_start(&det.d_job, "ktslowd") == 0);
	ktest_sleep_ms(LOCALCOUNT_DRAIN_REPORT_MS + 1000);
	KTEST_CHECK(kt, !atomic_load_acquire(&det.d_job.j_done));
	KTEST_CHECKF(kt, localcount_drain_reports == before + 1,
	    "%u report lines after %d ms (expected 1)",
	    localcount_drain_reports - before,
	    LOCALCOUNT_DRAIN_REPORT_MS + 1000);
	kd_gate_open();
	KTEST_CHECK(kt, ktest_wait_uint(&det.d_job.j_done, 1, KD_DONE_MS) == 0);
	ktest_job_join(&det.d_job);
	atomic_store_release(&kd_state[0], KD_DEAD);
	ktest_job_join(&op.d_job);
	ktest_so(kt, "the detach waited %" PRIu64 " ms and reported it"
	    " (see the console line above)",
	    (det.d_job.j_t_done - det.d_job.j_t_start) / 1000);
out:
	kd_gate_fini();
	return ktest_result(kt);
}
KTEST_CASE(devsw, detach_reports_after_5s, ktest_drivers_detach_reports);

#endif	/* RUST_LOCALCOUNT */
