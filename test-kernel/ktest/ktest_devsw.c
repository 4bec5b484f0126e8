/*	$NetBSD$	*/

/*-
 * In-kernel tests of the seed's reference-acquire layer (options
 * RUST_LOCALCOUNT): bdevsw/cdevsw_lookup_acquire and their releases, and
 * device_lookup_acquire and friends, against the races they exist to
 * stop.
 *
 * The test driver "ktdev" is attached and detached at run time, as a
 * module would do it: a pseudo-device (config_cfdriver_attach,
 * config_cfattach_attach, config_attach_pseudo_acquire) and a cdevsw
 * with d_localcount, d_cfdriver and d_devtounit, registered with
 * devsw_attach.  Worker kthreads bound to every CPU loop on
 * cdevsw_lookup_acquire / device_lookup_acquire / cdev_open, hold the
 * reference across a sleep, check the object and release it, while the
 * case detaches: detach must wait for the references, lookups must fail
 * afterwards, and nothing may touch the devsw or softc after the detach
 * returned -- both are poisoned then (they stay allocated, so a stale
 * access is seen as poison instead of being a use after free).
 *
 * Also: a module's devsw without d_localcount is refused with EINVAL,
 * and built-in devsw lookups and run-time attaches of built-in drivers
 * (no d_localcount) work as before.
 *
 * On a kernel without RUST_LOCALCOUNT the seed API does not exist (the
 * stock reference functions are file-static): every case reports itself
 * skipped.
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
#include <sys/cpu.h>
#include <sys/device.h>
#include <sys/errno.h>
#include <sys/fcntl.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/lwp.h>
#include <sys/module.h>
#include <sys/proc.h>
#include <sys/stat.h>
#include <sys/systm.h>

#include "ktest.h"

#ifndef RUST_LOCALCOUNT

static int
ktest_devsw_skip(struct ktest *kt)
{

	return ktest_skip(kt, "needs options RUST_LOCALCOUNT (the seed API"
	    " is not in stock kernels)");
}

KTEST_CASE(devsw, builtin_lookup, ktest_devsw_skip);
KTEST_CASE(devsw, builtin_runtime_attach, ktest_devsw_skip);
KTEST_CASE(devsw, module_without_localcount_einval, ktest_devsw_skip);
KTEST_CASE(devsw, detach_waits_for_open, ktest_devsw_skip);
KTEST_CASE(devsw, detach_storm, ktest_devsw_skip);
KTEST_CASE(autoconf, detach_storm, ktest_devsw_skip);
KTEST_CASE(autoconf, ebusy_backout, ktest_devsw_skip);
KTEST_CASE(autoconf, find_and_private, ktest_devsw_skip);

#else	/* RUST_LOCALCOUNT */

/* config(1)'s tables (devsw.c), as subr_devsw.c declares them. */
extern const int sys_bdevsws, sys_cdevsws;
extern int max_bdevsws, max_cdevsws;

#define	KT_ALIVE	0x4b54414cU	/* "KTAL" */
#define	KT_DEAD		0xdeadbeefU	/* poison */

#define	KT_WAIT_MS	300	/* how long a detach must stay blocked */
#define	KT_DONE_MS	10000	/* how long it may take once unblocked */

/* ------------------------------------------------------------------
 * The test driver: pseudo-device ktdev, and its cdevsw.
 */

struct ktdev_softc {
	device_t	sc_dev;
	volatile u_int	sc_magic;	/* KT_ALIVE, KT_DEAD once detached */
	volatile u_int	sc_refuse;	/* detach backs out with EBUSY */
	volatile u_int	sc_in_detach;	/* detach routine running */
};

static int	ktdev_match(device_t, cfdata_t, void *);
static void	ktdev_attach(device_t, device_t, void *);
static int	ktdev_detach(device_t, int);

static dev_type_open(ktdev_open);
static dev_type_close(ktdev_close);

extern struct cfdriver ktdev_cd;
CFDRIVER_DECL(ktdev, DV_DULL, NULL);
static CFATTACH_DECL_NEW(ktdev, 0, ktdev_match, ktdev_attach, ktdev_detach,
    NULL);

static struct cfdata ktdev_cfdata = {
	.cf_name = "ktdev",
	.cf_atname = "ktdev",
	.cf_unit = 0,
	.cf_fstate = FSTATE_STAR,
	.cf_loc = NULL,
	.cf_flags = 0,
	.cf_pspec = NULL,
};

/*
 * The devsw of a modular driver: its own struct localcount, as
 * DEVSW_MODULE_INIT provides it when the driver is built as a module.
 * kd_magic is poisoned after devsw_detach returns.
 */
static struct localcount ktdev_localcount;
static struct ktdevsw {
	struct cdevsw	kd_cdevsw;	/* first: &kd_cdevsw == &ktdevsw */
	volatile u_int	kd_magic;
} ktdevsw = {
	.kd_cdevsw = {
		.d_localcount = &ktdev_localcount,
		.d_open = ktdev_open,
		.d_close = ktdev_close,
		.d_read = noread,
		.d_write = nowrite,
		.d_ioctl = noioctl,
		.d_stop = nostop,
		.d_tty = notty,
		.d_poll = nopoll,
		.d_mmap = nommap,
		.d_kqfilter = nokqfilter,
		.d_discard = nodiscard,
		.d_devtounit = dev_minor_unit,
		.d_cfdriver = &ktdev_cd,
		.d_flag = D_OTHER | D_MPSAFE,
	},
	.kd_magic = KT_DEAD,
};

static volatile u_int ktdev_bad_opens;	/* d_open saw poison */
static volatile u_int ktdev_good_opens;

static int
ktdev_match(device_t parent, cfdata_t cf, void *aux)
{

	return 1;
}

/*
 * ktdev_attach(parent, self, aux)
 *
 *	aux is the softc, allocated by the case (so that it outlives the
 *	device and can be poisoned after the detach).
 */
static void
ktdev_attach(device_t parent, device_t self, void *aux)
{
	struct ktdev_softc *sc = aux;

	device_set_private(self, sc);
	sc->sc_dev = self;
	atomic_store_release(&sc->sc_magic, KT_ALIVE);
}

/*
 * ktdev_detach(self, flags)
 *
 *	EBUSY (after a pause, so that lookups must wait for it) if the
 *	case asked for it; else succeed.  The softc is not poisoned
 *	here: references acquired before the detach started are still
 *	legitimately held, and the drain after this returns waits for
 *	them.
 */
static int
ktdev_detach(device_t self, int flags)
{
	struct ktdev_softc *sc = device_private(self);

	if (atomic_load_acquire(&sc->sc_refuse)) {
		atomic_store_release(&sc->sc_in_detach, 1);
		kpause("ktdevbsy", false, MAX(1, mstohz(200)), NULL);
		atomic_store_release(&sc->sc_in_detach, 0);
		return EBUSY;
	}
	return 0;
}

/*
 * ktdev_open(dev, flag, mode, l)
 *
 *	Called through cdev_open, which holds references to the cdevsw
 *	and (d_devtounit) to the device: both must be alive across a
 *	sleep.
 */
static int
ktdev_open(dev_t dev, int flag, int mode, struct lwp *l)
{
	struct ktdev_softc *sc;
	int i;

	for (i = 0; i < 2; i++) {
		sc = device_lookup_private(&ktdev_cd, minor(dev));
		if (sc == NULL ||
		    atomic_load_acquire(&sc->sc_magic) != KT_ALIVE ||
		    atomic_load_acquire(&ktdevsw.kd_magic) != KT_ALIVE) {
			atomic_inc_uint(&ktdev_bad_opens);
			return EIO;
		}
		if (i == 0)
			kpause("ktdevop", false, 1, NULL);
	}
	atomic_inc_uint(&ktdev_good_opens);
	return 0;
}

static int
ktdev_close(dev_t dev, int flag, int mode, struct lwp *l)
{

	return 0;
}

/*
 * ktdev_driver_init(), ktdev_driver_fini()
 *
 *	Register and unregister the autoconf driver, as a module's
 *	MODULE_CMD_INIT/FINI do.  Thread context.
 */
static int
ktdev_driver_init(void)
{
	int error;

	if ((error = config_cfdriver_attach(&ktdev_cd)) != 0)
		return error;
	if ((error = config_cfattach_attach("ktdev", &ktdev_ca)) != 0) {
		(void)config_cfdriver_detach(&ktdev_cd);
		return error;
	}
	return 0;
}

static void
ktdev_driver_fini(struct ktest *kt)
{

	KTEST_CHECK(kt, config_cfattach_detach("ktdev", &ktdev_ca) == 0);
	KTEST_CHECK(kt, config_cfdriver_detach(&ktdev_cd) == 0);
}

/*
 * ktdev_devsw_attach(kt, dev)
 *
 *	devsw_attach the ktdev cdevsw (from the case's LWP, i.e. within
 *	the built-in ktest module's initialisation) and return its dev_t
 *	for unit 0 in *dev.
 */
static int
ktdev_devsw_attach(struct ktest *kt, dev_t *dev)
{
	devmajor_t bmajor = NODEVMAJOR, cmajor = NODEVMAJOR;
	int error;

	atomic_store_release(&ktdevsw.kd_magic, KT_ALIVE);
	error = devsw_attach("ktdev", NULL, &bmajor, &ktdevsw.kd_cdevsw,
	    &cmajor);
	if (!KTEST_CHECKF(kt, error == 0, "devsw_attach: %d", error)) {
		atomic_store_release(&ktdevsw.kd_magic, KT_DEAD);
		return error;
	}
	*dev = makedev(cmajor, 0);
	return 0;
}

/* devsw_detach, then poison the devsw. */
static void
ktdev_devsw_detach(void)
{

	devsw_detach(NULL, &ktdevsw.kd_cdevsw);
	atomic_store_release(&ktdevsw.kd_magic, KT_DEAD);
}

/* ------------------------------------------------------------------
 * Workers: loop on the lookups on every CPU.
 */

#define	KW_DEVSW	0x01	/* cdevsw_lookup_acquire + sleep + release */
#define	KW_DEVICE	0x02	/* device_lookup_acquire + sleep + release */
#define	KW_OPEN		0x04	/* cdev_open (references both) */

struct kt_work {
	struct ktest		*w_kt;
	dev_t			w_dev;
	u_int			w_what;
	struct ktdev_softc	*w_sc;
	volatile u_int		w_stop;
	volatile u_int		w_devsw_epoch;	/* odd: devsw_detach returned */
	volatile u_int		w_device_gone;	/* device detach returned */
	volatile u_int		w_devsw_hits, w_devsw_misses;
	volatile u_int		w_dev_hits, w_dev_misses;
	volatile u_int		w_opens, w_open_enxio;
};

static void
kt_hold(uint32_t *seed)
{

	if (ktest_rand(seed) % 4 == 0)
		kpause("ktdevw", false, 1, NULL);
	else
		DELAY(ktest_rand(seed) % 200);
}

static void
kt_worker(void *arg, u_int idx)
{
	struct kt_work *w = arg;
	struct ktest *kt = w->w_kt;
	const struct cdevsw *d;
	struct ktdev_softc *sc;
	device_t dv;
	uint32_t seed = ktest_seed();
	u_int gone, e0;
	int error;

	while (!atomic_load_acquire(&w->w_stop) && !ktest_failed(kt)) {
		if (w->w_what & KW_DEVSW) {
			/*
			 * A lookup that starts and ends while the devsw
			 * is detached (an odd epoch) must fail; one that
			 * overlaps a new attach may succeed.
			 */
			e0 = atomic_load_acquire(&w->w_devsw_epoch);
			d = cdevsw_lookup_acquire(w->w_dev);
			if (d != NULL) {
				KTEST_CHECKF(kt, !((e0 & 1) && e0 ==
				    atomic_load_acquire(&w->w_devsw_epoch)),
				    "cdevsw_lookup_acquire"
				    " succeeded after devsw_detach returned");
				KTEST_CHECKF(kt, d == &ktdevsw.kd_cdevsw,
				    "wrong cdevsw %p", d);
				KTEST_CHECKF(kt, atomic_load_acquire(
				    &ktdevsw.kd_magic) == KT_ALIVE,
				    "referenced cdevsw is poisoned (detached)");
				kt_hold(&seed);
				KTEST_CHECKF(kt, atomic_load_acquire(
				    &ktdevsw.kd_magic) == KT_ALIVE,
				    "cdevsw detached under a reference");
				cdevsw_release(d);
				atomic_inc_uint(&w->w_devsw_hits);
			} else
				atomic_inc_uint(&w->w_devsw_misses);
		}
		if (w->w_what & KW_DEVICE) {
			gone = atomic_load_acquire(&w->w_device_gone);
			dv = device_lookup_acquire(&ktdev_cd, 0);
			if (dv != NULL) {
				KTEST_CHECKF(kt, !gone, "device_lookup_acquire"
				    " succeeded after the detach returned");
				sc = device_private(dv);
				KTEST_CHECKF(kt, sc == w->w_sc,
				    "wrong softc %p", sc);
				KTEST_CHECKF(kt, atomic_load_acquire(
				    &w->w_sc->sc_magic) == KT_ALIVE,
				    "referenced softc is poisoned (detached)");
				kt_hold(&seed);
				KTEST_CHECKF(kt, atomic_load_acquire(
				    &w->w_sc->sc_magic) == KT_ALIVE,
				    "device detached under a reference");
				device_release(dv);
				atomic_inc_uint(&w->w_dev_hits);
			} else
				atomic_inc_uint(&w->w_dev_misses);
		}
		if (w->w_what & KW_OPEN) {
			error = cdev_open(w->w_dev, FREAD, S_IFCHR, curlwp);
			KTEST_CHECKF(kt, error == 0 || error == ENXIO,
			    "cdev_open: %d (EIO: d_open saw a detached"
			    " devsw or softc)", error);
			if (error == 0)
				atomic_inc_uint(&w->w_opens);
			else
				atomic_inc_uint(&w->w_open_enxio);
		}
		if (ktest_rand(&seed) % 8 == 0)
			kpause("ktdevy", false, 1, NULL);
	}
}

static struct ktest_tg *
kt_workers_start(struct kt_work *w)
{
	struct ktest_tg *tg;

	tg = ktest_tg_create("ktdevw", ncpu);
	if (ktest_tg_spawn_percpu(tg, kt_worker, w) != 0) {
		KTEST_CHECKF(w->w_kt, false, "cannot create workers");
		atomic_store_release(&w->w_stop, 1);
	}
	ktest_tg_start(tg);
	return tg;
}

static void
kt_workers_stop(struct kt_work *w, struct ktest_tg *tg)
{

	atomic_store_release(&w->w_stop, 1);
	ktest_tg_join(tg);
}

/* ------------------------------------------------------------------
 * devsw cases.
 */

/*
 * devsw:builtin_lookup -- for every major of config(1)'s static
 * tables, *devsw_lookup_acquire returns what *devsw_lookup does, with
 * no d_localcount (built-in), and release is a no-op; NODEV and
 * majors beyond the tables give NULL.
 */
static int
ktest_devsw_builtin_lookup(struct ktest *kt)
{
	const struct bdevsw *b;
	const struct cdevsw *c;
	u_int nb = 0, nc = 0;
	int m;

	for (m = 0; m < sys_bdevsws; m++) {
		b = bdevsw_lookup_acquire(makedev(m, 0));
		KTEST_CHECKF(kt, b == bdevsw_lookup(makedev(m, 0)),
		    "bmajor %d", m);
		if (b == NULL)
			continue;
		nb++;
		KTEST_CHECKF(kt, b->d_localcount == NULL,
		    "built-in bdevsw %d has d_localcount", m);
		bdevsw_release(b);
		KTEST_CHECK(kt, bdevsw_lookup(makedev(m, 0)) == b);
	}
	for (m = 0; m < sys_cdevsws; m++) {
		c = cdevsw_lookup_acquire(makedev(m, 1));
		KTEST_CHECKF(kt, c == cdevsw_lookup(makedev(m, 1)),
		    "cmajor %d", m);
		if (c == NULL)
			continue;
		nc++;
		KTEST_CHECKF(kt, c->d_localcount == NULL,
		    "built-in cdevsw %d has d_localcount", m);
		cdevsw_release(c);
		KTEST_CHECK(kt, cdevsw_lookup(makedev(m, 1)) == c);
	}
#ifndef KTEST_RUMP
	KTEST_CHECK(kt, nb > 0 && nc > 0);
#endif
	KTEST_CHECK(kt, bdevsw_lookup_acquire(NODEV) == NULL);
	KTEST_CHECK(kt, cdevsw_lookup_acquire(NODEV) == NULL);
	m = MAX(max_cdevsws, max_bdevsws);
	if (m < 0xfff) {
		KTEST_CHECK(kt, cdevsw_lookup_acquire(makedev(m, 0)) == NULL);
		KTEST_CHECK(kt, bdevsw_lookup_acquire(makedev(m, 0)) == NULL);
	}
	ktest_so(kt, "static majors: %u bdevsw, %u cdevsw of %d/%d", nb, nc,
	    sys_bdevsws, sys_cdevsws);
#ifdef KTEST_RUMP
	/*
	 * A rump kernel has no static devsw: its tables
	 * (sys/rump/librump/rumpkern/emul.c) start empty and every
	 * component attaches its devsw at run time.
	 */
	if (nb == 0 && nc == 0 && !ktest_failed(kt))
		return ktest_skip(kt, "no static devsw in a rump kernel (every"
		    " devsw is attached at run time by its component)");
#endif
	return ktest_result(kt);
}
KTEST_CASE(devsw, builtin_lookup, ktest_devsw_builtin_lookup);

/* The test bdevsws do no I/O. */
static void
ktnostrategy(struct buf *bp)
{

	bp->b_error = ENXIO;
	biodone(bp);
}

/* A built-in driver's devsw that is attached at run time. */
static const struct cdevsw ktbuiltin_cdevsw = {
	.d_open = nullopen,
	.d_close = nullclose,
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
static const struct bdevsw ktbuiltin_bdevsw = {
	.d_open = nullopen,
	.d_close = nullclose,
	.d_strategy = ktnostrategy,
	.d_ioctl = noioctl,
	.d_dump = nodump,
	.d_psize = nosize,
	.d_discard = nodiscard,
	.d_flag = D_DISK | D_MPSAFE,
};

/* Attach, look up, open, detach a built-in devsw; 0 or a failed check. */
static void
kt_builtin_cycle(struct ktest *kt, const char *name, const char *where)
{
	devmajor_t bmajor = NODEVMAJOR, cmajor = NODEVMAJOR;
	const struct bdevsw *b;
	const struct cdevsw *c;
	int error;

	error = devsw_attach(name, &ktbuiltin_bdevsw, &bmajor,
	    &ktbuiltin_cdevsw, &cmajor);
	if (!KTEST_CHECKF(kt, error == 0, "%s: devsw_attach: %d", where,
	    error))
		return;
	c = cdevsw_lookup_acquire(makedev(cmajor, 0));
	KTEST_CHECKF(kt, c == &ktbuiltin_cdevsw, "%s: cdevsw", where);
	b = bdevsw_lookup_acquire(makedev(bmajor, 0));
	KTEST_CHECKF(kt, b == &ktbuiltin_bdevsw, "%s: bdevsw", where);
	if (c != NULL)
		cdevsw_release(c);
	if (b != NULL)
		bdevsw_release(b);
	error = cdev_open(makedev(cmajor, 0), FREAD, S_IFCHR, curlwp);
	KTEST_CHECKF(kt, error == 0, "%s: cdev_open: %d", where, error);
	devsw_detach(&ktbuiltin_bdevsw, &ktbuiltin_cdevsw);
	KTEST_CHECKF(kt, cdevsw_lookup_acquire(makedev(cmajor, 0)) == NULL,
	    "%s: cdevsw still found after devsw_detach", where);
	KTEST_CHECKF(kt, bdevsw_lookup_acquire(makedev(bmajor, 0)) == NULL,
	    "%s: bdevsw still found after devsw_detach", where);
	error = cdev_open(makedev(cmajor, 0), FREAD, S_IFCHR, curlwp);
	KTEST_CHECKF(kt, error == ENXIO, "%s: cdev_open after detach: %d",
	    where, error);
}

static void
kt_builtin_job(struct ktest_job *j)
{

	kt_builtin_cycle(j->j_kt, "ktbuiltin", "kthread");
}

/*
 * devsw:builtin_runtime_attach -- a built-in driver's devsw without
 * d_localcount can be attached and detached at run time, both from a
 * built-in module's initialisation (this LWP: the suite runs in the
 * ktest module's MODULE_CMD_INIT) and from a plain kthread; lookups
 * return it unreferenced.
 */
static int
ktest_devsw_builtin_runtime_attach(struct ktest *kt)
{
	struct ktest_job j;
	module_t *mod;

	mod = module_current();
	ktest_so(kt, "module being initialised: %s (%s)",
	    mod ? module_name(mod) : "none",
	    mod == NULL ? "-" : module_source(mod) == MODULE_SOURCE_KERNEL ?
	    "built-in" : "loaded");
	kt_builtin_cycle(kt, "ktbuiltin", "ktest module init");

	memset(&j, 0, sizeof(j));
	j.j_kt = kt;
	j.j_fn = kt_builtin_job;
	if (!KTEST_CHECK(kt, ktest_job_start(&j, "ktbltin") == 0))
		return ktest_result(kt);
	ktest_job_join(&j);
	return ktest_result(kt);
}
KTEST_CASE(devsw, builtin_runtime_attach, ktest_devsw_builtin_runtime_attach);

static struct localcount ktmod_b_localcount, ktmod_c_localcount;
static const struct cdevsw ktmod_nolc_cdevsw = {
	.d_open = nullopen,
	.d_close = nullclose,
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
static const struct cdevsw ktmod_lc_cdevsw = {
	.d_localcount = &ktmod_c_localcount,
	.d_open = nullopen,
	.d_close = nullclose,
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
static const struct bdevsw ktmod_lc_bdevsw = {
	.d_localcount = &ktmod_b_localcount,
	.d_open = nullopen,
	.d_close = nullclose,
	.d_strategy = ktnostrategy,
	.d_ioctl = noioctl,
	.d_dump = nodump,
	.d_psize = nosize,
	.d_discard = nodiscard,
	.d_flag = D_DISK | D_MPSAFE,
};

/*
 * devsw:module_without_localcount_einval -- while a module loaded from
 * the file system is being initialised, devsw_attach refuses a devsw
 * (block or character) without d_localcount with EINVAL, so modctl(2)
 * fails with EINVAL; with d_localcount it attaches (and the references
 * work).  There is no file system here, so the case plays the module:
 * the module being initialised by this LWP is the built-in ktest
 * module, and its source is switched to MODULE_SOURCE_FILESYS for the
 * duration of the attaches -- which is what devsw_attach asks
 * kern_module.c (module_current(), module_source()).
 */
static int
ktest_devsw_module_without_localcount_einval(struct ktest *kt)
{
	devmajor_t bmajor, cmajor;
	const struct cdevsw *c;
	const struct bdevsw *b;
	modsrc_t src;
	module_t *mod;
	int error;

	mod = module_current();
	if (mod == NULL) {
		return ktest_skip(kt, "the suite does not run in a module's"
		    " initialisation here");
	}
	src = mod->mod_source;
	mod->mod_source = MODULE_SOURCE_FILESYS;

	bmajor = cmajor = NODEVMAJOR;
	error = devsw_attach("ktmodnolc", NULL, &bmajor, &ktmod_nolc_cdevsw,
	    &cmajor);
	KTEST_CHECKF(kt, error == EINVAL, "cdevsw without d_localcount:"
	    " devsw_attach returned %d, not EINVAL", error);
	if (error == 0)
		devsw_detach(NULL, &ktmod_nolc_cdevsw);

	bmajor = cmajor = NODEVMAJOR;
	error = devsw_attach("ktmodnolc", &ktbuiltin_bdevsw, &bmajor,
	    &ktmod_lc_cdevsw, &cmajor);
	KTEST_CHECKF(kt, error == EINVAL, "bdevsw without d_localcount:"
	    " devsw_attach returned %d, not EINVAL", error);
	if (error == 0)
		devsw_detach(&ktbuiltin_bdevsw, &ktmod_lc_cdevsw);

	bmajor = cmajor = NODEVMAJOR;
	error = devsw_attach("ktmodlc", &ktmod_lc_bdevsw, &bmajor,
	    &ktmod_lc_cdevsw, &cmajor);
	mod->mod_source = src;
	if (!KTEST_CHECKF(kt, error == 0, "devsw with d_localcount:"
	    " devsw_attach returned %d", error))
		return ktest_result(kt);
	c = cdevsw_lookup_acquire(makedev(cmajor, 0));
	b = bdevsw_lookup_acquire(makedev(bmajor, 0));
	KTEST_CHECK(kt, c == &ktmod_lc_cdevsw);
	KTEST_CHECK(kt, b == &ktmod_lc_bdevsw);
	if (c != NULL)
		cdevsw_release(c);
	if (b != NULL)
		bdevsw_release(b);
	devsw_detach(&ktmod_lc_bdevsw, &ktmod_lc_cdevsw);
	KTEST_CHECK(kt, cdevsw_lookup_acquire(makedev(cmajor, 0)) == NULL);
	return ktest_result(kt);
}
KTEST_CASE(devsw, module_without_localcount_einval,
    ktest_devsw_module_without_localcount_einval);

/*
 * A devsw whose d_open blocks until the case lets it go: "an open in
 * progress".
 */
static struct localcount ktgate_localcount;
static kmutex_t ktgate_lock;
static kcondvar_t ktgate_cv;
static bool ktgate_in_open, ktgate_go;
static volatile u_int ktgate_magic = KT_DEAD;

static int
ktgate_open(dev_t dev, int flag, int mode, struct lwp *l)
{
	int error = 0;

	mutex_enter(&ktgate_lock);
	ktgate_in_open = true;
	cv_broadcast(&ktgate_cv);
	while (!ktgate_go)
		cv_wait(&ktgate_cv, &ktgate_lock);
	mutex_exit(&ktgate_lock);
	if (atomic_load_acquire(&ktgate_magic) != KT_ALIVE)
		error = EIO;	/* the devsw was detached under the open */
	return error;
}

static const struct cdevsw ktgate_cdevsw = {
	.d_localcount = &ktgate_localcount,
	.d_open = ktgate_open,
	.d_close = nullclose,
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

static void
kt_gate_open_job(struct ktest_job *j)
{

	j->j_error = cdev_open(j->j_dev, FREAD, S_IFCHR, curlwp);
}

static void
kt_gate_detach_job(struct ktest_job *j)
{

	devsw_detach(NULL, &ktgate_cdevsw);
	atomic_store_release(&ktgate_magic, KT_DEAD);
}

/*
 * devsw:detach_waits_for_open -- devsw_detach of a devsw with
 * d_localcount waits while a d_open (called by cdev_open with a devsw
 * reference) is in progress; meanwhile lookups already fail; it
 * returns once the open is done.
 */
static int
ktest_devsw_detach_waits_for_open(struct ktest *kt)
{
	devmajor_t bmajor = NODEVMAJOR, cmajor = NODEVMAJOR;
	struct ktest_job opener, detacher;
	uint64_t t0;
	int error;

	mutex_init(&ktgate_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&ktgate_cv, "ktgate");
	ktgate_in_open = ktgate_go = false;
	atomic_store_release(&ktgate_magic, KT_ALIVE);
	error = devsw_attach("ktgate", NULL, &bmajor, &ktgate_cdevsw,
	    &cmajor);
	if (!KTEST_CHECKF(kt, error == 0, "devsw_attach: %d", error))
		goto out;

	memset(&opener, 0, sizeof(opener));
	opener.j_kt = kt;
	opener.j_fn = kt_gate_open_job;
	opener.j_dev = makedev(cmajor, 0);
	memset(&detacher, 0, sizeof(detacher));
	detacher.j_kt = kt;
	detacher.j_fn = kt_gate_detach_job;

	KTEST_CHECK(kt, ktest_job_start(&opener, "ktgateo") == 0);
	mutex_enter(&ktgate_lock);
	while (!ktgate_in_open)
		cv_wait(&ktgate_cv, &ktgate_lock);
	mutex_exit(&ktgate_lock);

	/* The open is in progress: the detach must wait for it. */
	t0 = ktest_now_us();
	KTEST_CHECK(kt, ktest_job_start(&detacher, "ktgated") == 0);
	ktest_sleep_ms(KT_WAIT_MS);
	KTEST_CHECKF(kt, !atomic_load_acquire(&detacher.j_done),
	    "devsw_detach returned during d_open");
	KTEST_CHECKF(kt, cdevsw_lookup_acquire(opener.j_dev) == NULL,
	    "the detaching devsw is still found");
	KTEST_CHECK(kt, cdev_open(opener.j_dev, FREAD, S_IFCHR, curlwp) ==
	    ENXIO);

	mutex_enter(&ktgate_lock);
	ktgate_go = true;
	cv_broadcast(&ktgate_cv);
	mutex_exit(&ktgate_lock);
	KTEST_CHECKF(kt, ktest_wait_uint(&detacher.j_done, 1, KT_DONE_MS) ==
	    0, "devsw_detach still blocked after the open finished");
	ktest_job_join(&opener);
	ktest_job_join(&detacher);
	KTEST_CHECKF(kt, opener.j_error == 0, "d_open: %d", opener.j_error);
	ktest_so(kt, "devsw_detach waited %" PRIu64 " ms for the open",
	    (detacher.j_t_done - t0) / 1000);
out:
	cv_destroy(&ktgate_cv);
	mutex_destroy(&ktgate_lock);
	return ktest_result(kt);
}
KTEST_CASE(devsw, detach_waits_for_open, ktest_devsw_detach_waits_for_open);

static void
kt_devsw_detach_job(struct ktest_job *j)
{

	ktdev_devsw_detach();
}

/*
 * devsw:detach_storm -- workers on every CPU loop on
 * cdevsw_lookup_acquire + sleep + release while the devsw is attached
 * and detached several times; each detach waits for a reference the
 * case holds, lookups fail once it returned, and no worker ever sees
 * the poisoned devsw under a reference.
 */
static int
ktest_devsw_detach_storm(struct ktest *kt)
{
	const struct cdevsw *held;
	struct kt_work *w;
	struct ktest_job det;
	struct ktest_tg *tg;
	uint64_t t0, waited = 0;
	dev_t dev = NODEV;
	int round;

	w = kmem_zalloc(sizeof(*w), KM_SLEEP);
	w->w_kt = kt;
	w->w_what = KW_DEVSW;
	if (ktdev_devsw_attach(kt, &dev) != 0)
		goto out;
	w->w_dev = dev;
	tg = kt_workers_start(w);
	for (round = 0; round < 4 && !ktest_failed(kt); round++) {
		if (round > 0) {
			atomic_inc_uint(&w->w_devsw_epoch);	/* even */
			KTEST_CHECK(kt, ktdev_devsw_attach(kt, &dev) == 0);
			KTEST_CHECKF(kt, dev == w->w_dev,
			    "major moved: %llx", (unsigned long long)dev);
		}
		ktest_sleep_ms(200);
		held = cdevsw_lookup_acquire(dev);
		if (!KTEST_CHECK(kt, held == &ktdevsw.kd_cdevsw))
			break;
		memset(&det, 0, sizeof(det));
		det.j_kt = kt;
		det.j_fn = kt_devsw_detach_job;
		t0 = ktest_now_us();
		KTEST_CHECK(kt, ktest_job_start(&det, "ktdevd") == 0);
		ktest_sleep_ms(KT_WAIT_MS);
		KTEST_CHECKF(kt, !atomic_load_acquire(&det.j_done),
		    "devsw_detach returned while a reference was held");
		KTEST_CHECK(kt, cdevsw_lookup_acquire(dev) == NULL);
		cdevsw_release(held);
		KTEST_CHECKF(kt, ktest_wait_uint(&det.j_done, 1, KT_DONE_MS) ==
		    0, "devsw_detach blocked after the last release");
		ktest_job_join(&det);
		waited += det.j_t_done - t0;
		atomic_inc_uint(&w->w_devsw_epoch);	/* odd: detached */
		ktest_sleep_ms(100);	/* lookups must now fail */
	}
	kt_workers_stop(w, tg);
	ktest_so(kt, "%d rounds, %u CPUs: %u references, %u misses,"
	    " detach waited %" PRIu64 " ms in total", round, ncpu,
	    w->w_devsw_hits, w->w_devsw_misses, waited / 1000);
	KTEST_CHECKF(kt, w->w_devsw_hits > 0, "no worker got a reference");
out:
	kmem_free(w, sizeof(*w));
	return ktest_result(kt);
}
KTEST_CASE(devsw, detach_storm, ktest_devsw_detach_storm);

/* ------------------------------------------------------------------
 * autoconf cases.
 */

/* Attach the ktdev driver, unit 0, softc sc; return it unreferenced. */
static device_t
kt_device_attach(struct ktest *kt, struct ktdev_softc *sc)
{
	device_t dv;

	dv = config_attach_pseudo_acquire(&ktdev_cfdata, sc);
	if (!KTEST_CHECK(kt, dv != NULL))
		return NULL;
	KTEST_CHECK(kt, device_unit(dv) == 0);
	KTEST_CHECK(kt, device_private(dv) == sc);
	device_release(dv);
	return dv;
}

static void
kt_device_detach_job(struct ktest_job *j)
{
	device_t dv;

	dv = device_lookup_acquire(&ktdev_cd, 0);
	if (!KTEST_CHECK(j->j_kt, dv != NULL)) {
		j->j_error = ENXIO;
		return;
	}
	j->j_error = device_detach_release(dv, 0);
}

/*
 * autoconf:detach_storm -- the pseudo-device and its devsw (with
 * d_devtounit, so cdev_open references both) are in use by workers on
 * every CPU: device_lookup_acquire + sleep + release, cdev_open whose
 * d_open sleeps, cdevsw_lookup_acquire.  device_detach_release must
 * wait for a reference the case holds; lookups fail promptly once it
 * committed; when it returned, the softc is poisoned and nobody may see
 * it any more; then the devsw is detached the same way.
 */
static int
ktest_autoconf_detach_storm(struct ktest *kt)
{
	struct ktdev_softc *sc;
	struct kt_work *w;
	struct ktest_job det;
	struct ktest_tg *tg;
	device_t held, dv;
	uint64_t t0, t1;
	dev_t dev = NODEV;
	u_int bad0;
	int error;

	if ((error = ktdev_driver_init()) != 0)
		return ktest_skip(kt, "cannot register ktdev: %d", error);
	sc = kmem_zalloc(sizeof(*sc), KM_SLEEP);
	w = kmem_zalloc(sizeof(*w), KM_SLEEP);
	w->w_kt = kt;
	w->w_sc = sc;
	w->w_what = KW_DEVSW | KW_DEVICE | KW_OPEN;
	bad0 = atomic_load_relaxed(&ktdev_bad_opens);

	if (kt_device_attach(kt, sc) == NULL)
		goto out;
	if (ktdev_devsw_attach(kt, &dev) != 0)
		goto detach;
	w->w_dev = dev;
	tg = kt_workers_start(w);
	ktest_sleep_ms(300);

	/* Hold a reference and detach: the detach must wait for it. */
	held = device_lookup_acquire(&ktdev_cd, 0);
	KTEST_CHECK(kt, held != NULL);
	memset(&det, 0, sizeof(det));
	det.j_kt = kt;
	det.j_fn = kt_device_detach_job;
	t0 = ktest_now_us();
	KTEST_CHECK(kt, ktest_job_start(&det, "ktdevdd") == 0);

	/* Lookups wait while the detach routine runs, then fail. */
	while ((dv = device_lookup_acquire(&ktdev_cd, 0)) != NULL) {
		device_release(dv);
		if (!KTEST_CHECKF(kt, ktest_now_us() - t0 < KT_DONE_MS * 1000,
		    "device_lookup_acquire never failed during the detach"))
			break;
		kpause("ktdevc", false, 1, NULL);
	}
	t1 = ktest_now_us();
	ktest_sleep_ms(KT_WAIT_MS);
	KTEST_CHECKF(kt, !atomic_load_acquire(&det.j_done),
	    "device_detach_release returned while a reference was held");
	t1 = ktest_now_us() - t1;
	KTEST_CHECK(kt, device_lookup_acquire(&ktdev_cd, 0) == NULL);
	KTEST_CHECK(kt, cdev_open(dev, FREAD, S_IFCHR, curlwp) == ENXIO);
	if (held != NULL)
		device_release(held);
	KTEST_CHECKF(kt, ktest_wait_uint(&det.j_done, 1, KT_DONE_MS) == 0,
	    "device_detach_release blocked after the last release");
	ktest_job_join(&det);
	KTEST_CHECKF(kt, det.j_error == 0, "device_detach_release: %d",
	    det.j_error);
	atomic_store_release(&sc->sc_magic, KT_DEAD);
	atomic_store_release(&w->w_device_gone, 1);
	ktest_so(kt, "detach waited %" PRIu64 " ms, lookups failed for %"
	    PRIu64 " ms of it", (det.j_t_done - t0) / 1000, t1 / 1000);
	ktest_sleep_ms(200);	/* lookups and opens must now fail */

	/* Then the devsw (its driver has no units left). */
	memset(&det, 0, sizeof(det));
	det.j_kt = kt;
	det.j_fn = kt_devsw_detach_job;
	KTEST_CHECK(kt, ktest_job_start(&det, "ktdevsd") == 0);
	KTEST_CHECKF(kt, ktest_wait_uint(&det.j_done, 1, KT_DONE_MS) == 0,
	    "devsw_detach blocked");
	ktest_job_join(&det);
	atomic_inc_uint(&w->w_devsw_epoch);	/* odd: detached */
	ktest_sleep_ms(100);
	kt_workers_stop(w, tg);

	KTEST_CHECKF(kt, atomic_load_relaxed(&ktdev_bad_opens) == bad0,
	    "d_open saw a detached devsw or softc");
	ktest_so(kt, "%u CPUs: %u device refs, %u misses; %u devsw refs;"
	    " %u opens, %u ENXIO", ncpu, w->w_dev_hits, w->w_dev_misses,
	    w->w_devsw_hits, w->w_opens, w->w_open_enxio);
	KTEST_CHECK(kt, w->w_dev_hits > 0 && w->w_opens > 0);
	goto out;

detach:
	dv = device_lookup_acquire(&ktdev_cd, 0);
	if (dv != NULL)
		KTEST_CHECK(kt, device_detach_release(dv, 0) == 0);
out:
	ktdev_driver_fini(kt);
	kmem_free(w, sizeof(*w));
	kmem_free(sc, sizeof(*sc));
	return ktest_result(kt);
}
KTEST_CASE(autoconf, detach_storm, ktest_autoconf_detach_storm);

struct kt_lookup_job {
	struct ktest_job	lj_job;
	device_t	lj_dv;
	uint64_t	lj_us;
};

static void
kt_lookup_job(struct ktest_job *j)
{
	struct kt_lookup_job *lj = j->j_arg;
	uint64_t t0 = ktest_now_us();

	lj->lj_dv = device_lookup_acquire(&ktdev_cd, 0);
	lj->lj_us = ktest_now_us() - t0;
}

/*
 * autoconf:ebusy_backout -- a detach whose detach routine backs out
 * with EBUSY: lookups started during it wait for it and then succeed,
 * device_detach_release returns EBUSY having consumed the reference,
 * and the device stays usable; a second detach succeeds.
 */
static int
ktest_autoconf_ebusy_backout(struct ktest *kt)
{
	struct kt_lookup_job lj;
	struct ktdev_softc *sc;
	struct ktest_job det;
	device_t dv;
	int error;

	if ((error = ktdev_driver_init()) != 0)
		return ktest_skip(kt, "cannot register ktdev: %d", error);
	sc = kmem_zalloc(sizeof(*sc), KM_SLEEP);
	if (kt_device_attach(kt, sc) == NULL)
		goto out;

	atomic_store_release(&sc->sc_refuse, 1);
	memset(&det, 0, sizeof(det));
	det.j_kt = kt;
	det.j_fn = kt_device_detach_job;
	KTEST_CHECK(kt, ktest_job_start(&det, "ktdevbd") == 0);
	KTEST_CHECK(kt, ktest_wait_uint(&sc->sc_in_detach, 1, KT_DONE_MS) ==
	    0);

	/* The detach routine is running: this lookup must wait for it. */
	memset(&lj, 0, sizeof(lj));
	lj.lj_job.j_kt = kt;
	lj.lj_job.j_fn = kt_lookup_job;
	lj.lj_job.j_arg = &lj;
	KTEST_CHECK(kt, ktest_job_start(&lj.lj_job, "ktdevbl") == 0);
	KTEST_CHECKF(kt, ktest_wait_uint(&det.j_done, 1, KT_DONE_MS) == 0,
	    "detach did not back out");
	KTEST_CHECK(kt, ktest_wait_uint(&lj.lj_job.j_done, 1, KT_DONE_MS) ==
	    0);
	ktest_job_join(&det);
	ktest_job_join(&lj.lj_job);
	KTEST_CHECKF(kt, det.j_error == EBUSY, "device_detach_release: %d",
	    det.j_error);
	KTEST_CHECKF(kt, lj.lj_dv != NULL, "lookup failed after the back-out");
	ktest_so(kt, "lookup during the detach waited %" PRIu64 " ms",
	    lj.lj_us / 1000);
	KTEST_CHECKF(kt, lj.lj_us >= 50 * 1000,
	    "lookup did not wait for the detach routine (%" PRIu64 " us)",
	    lj.lj_us);
	if (lj.lj_dv != NULL) {
		KTEST_CHECK(kt, device_private(lj.lj_dv) == sc);
		device_release(lj.lj_dv);
	}

	/* Still attached and usable; now really detach. */
	atomic_store_release(&sc->sc_refuse, 0);
	dv = device_lookup_acquire(&ktdev_cd, 0);
	if (KTEST_CHECK(kt, dv != NULL))
		KTEST_CHECK(kt, device_detach_release(dv, 0) == 0);
	atomic_store_release(&sc->sc_magic, KT_DEAD);
	KTEST_CHECK(kt, device_lookup_acquire(&ktdev_cd, 0) == NULL);
out:
	ktdev_driver_fini(kt);
	kmem_free(sc, sizeof(*sc));
	return ktest_result(kt);
}
KTEST_CASE(autoconf, ebusy_backout, ktest_autoconf_ebusy_backout);

/*
 * autoconf:find_and_private -- device_find_by_driver_unit_acquire and
 * device_lookup_private_acquire return the device / softc with a
 * reference (released through the device_t the softc records), which a
 * detach waits for; NULL for unknown drivers and units.
 */
static int
ktest_autoconf_find_and_private(struct ktest *kt)
{
	struct ktdev_softc *sc, *sc2;
	struct ktest_job det;
	device_t dv;
	int error;

	if ((error = ktdev_driver_init()) != 0)
		return ktest_skip(kt, "cannot register ktdev: %d", error);
	sc = kmem_zalloc(sizeof(*sc), KM_SLEEP);
	if (kt_device_attach(kt, sc) == NULL)
		goto out;

	KTEST_CHECK(kt, device_find_by_driver_unit_acquire("ktdev", 1) ==
	    NULL);
	KTEST_CHECK(kt, device_find_by_driver_unit_acquire("ktnosuch", 0) ==
	    NULL);
	KTEST_CHECK(kt, device_lookup_private_acquire(&ktdev_cd, 3) == NULL);
	dv = device_find_by_driver_unit_acquire("ktdev", 0);
	KTEST_CHECK(kt, dv != NULL && device_private(dv) == sc);
	sc2 = device_lookup_private_acquire(&ktdev_cd, 0);
	KTEST_CHECK(kt, sc2 == sc);

	/* Two references: the detach waits for both. */
	memset(&det, 0, sizeof(det));
	det.j_kt = kt;
	det.j_fn = kt_device_detach_job;
	KTEST_CHECK(kt, ktest_job_start(&det, "ktdevfd") == 0);
	ktest_sleep_ms(KT_WAIT_MS);
	KTEST_CHECK(kt, !atomic_load_acquire(&det.j_done));
	if (dv != NULL)
		device_release(dv);
	ktest_sleep_ms(100);
	KTEST_CHECK(kt, !atomic_load_acquire(&det.j_done));
	if (sc2 != NULL)
		device_release(sc2->sc_dev);
	KTEST_CHECK(kt, ktest_wait_uint(&det.j_done, 1, KT_DONE_MS) == 0);
	ktest_job_join(&det);
	KTEST_CHECK(kt, det.j_error == 0);
	atomic_store_release(&sc->sc_magic, KT_DEAD);
	KTEST_CHECK(kt, device_find_by_driver_unit_acquire("ktdev", 0) ==
	    NULL);
	KTEST_CHECK(kt, device_lookup_private_acquire(&ktdev_cd, 0) == NULL);
out:
	ktdev_driver_fini(kt);
	kmem_free(sc, sizeof(*sc));
	return ktest_result(kt);
}
KTEST_CASE(autoconf, find_and_private, ktest_autoconf_find_and_private);

#endif	/* RUST_LOCALCOUNT */
