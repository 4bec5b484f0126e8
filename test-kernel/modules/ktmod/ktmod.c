/*	$NetBSD$	*/

/*-
 * ktmod: a pseudo-device module for the userland suite
 * (test-kernel/userland/init.c), with a cdevsw (/dev/ktmodN, major
 * KTMOD_CMAJOR) and a bdevsw (/dev/ktmodbN, major KTMOD_BMAJOR),
 * KTMOD_NUNIT units each.
 *
 * d_open, d_read and d_close sleep a tick to widen the windows in which
 * an unload races them, and count their calls in and out in the
 * kernel's ktmod_stats (ktest_userland.c), which outlives the module.
 *
 * The unload contract (MODULE_CMD_FINI), as a NetBSD driver keeps it:
 * EBUSY while a unit is open; otherwise the driver is marked dying and
 * devsw_detach() waits for every d_open still holding a devsw reference
 * (each finds the driver dying and fails with ENXIO).  d_open sleeps a
 * tick *before* it looks at the driver's state: an unload that starts
 * then sees no open unit, and only the devsw reference keeps the
 * module's text from being freed under the sleeping d_open -- exactly
 * the race that the seed's d_localcount (DEVSW_MODULE_INIT) and
 * -current's per-major devsw references close.
 *
 * After the detach, FINI also waits until no d_read or d_close is
 * inside the driver (ktmod_active).  What it cannot cover, like any NetBSD driver, is the
 * return from an entry point after its last mutex_exit: cdev_close and
 * cdev_read take no devsw reference, and a closed unit no longer keeps
 * FINI from going on.  That window is a few instructions long.
 *
 * Built three ways (test-kernel/modules/build-modules.sh):
 *	ktmod		with DEVSW_MODULE_INIT, against the patched tree;
 *	ktmod_nomi	-DKTMOD_NO_MODULE_INIT: devsws without d_localcount,
 *			which a RUST_LOCALCOUNT kernel refuses (EINVAL);
 *	ktmod_stock	against the unpatched tree (no d_localcount in
 *			struct cdevsw at all), which the patched kernel
 *			must refuse by its version (EPROGMISMATCH).
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/atomic.h>
#include <sys/buf.h>
#include <sys/conf.h>
#include <sys/condvar.h>
#include <sys/errno.h>
#include <sys/kernel.h>
#include <sys/module.h>
#include <sys/mutex.h>
#include <sys/proc.h>
#include <sys/stat.h>
#include <sys/systm.h>
#include <sys/uio.h>

#include "ktmod.h"

#ifndef KTMOD_NAME
#define	KTMOD_NAME	ktmod
#endif
/* <name>_modcmd, with KTMOD_NAME expanded first. */
#define	KTMOD_MODCMD_(name)	__CONCAT(name,_modcmd)
#define	KTMOD_MODCMD		KTMOD_MODCMD_(KTMOD_NAME)

/* The devsw's d_localcount, unless built to show what lacks it. */
#if defined(DEVSW_MODULE_INIT) && !defined(KTMOD_NO_MODULE_INIT)
#define	KTMOD_DEVSW_INIT	DEVSW_MODULE_INIT
#else
#define	KTMOD_DEVSW_INIT
#endif

MODULE(MODULE_CLASS_DRIVER, KTMOD_NAME, NULL);

static dev_type_open(ktmod_open);
static dev_type_close(ktmod_close);
static dev_type_read(ktmod_read);
static dev_type_strategy(ktmod_strategy);

static const struct bdevsw ktmod_bdevsw = {
	KTMOD_DEVSW_INIT
	.d_open = ktmod_open,
	.d_close = ktmod_close,
	.d_strategy = ktmod_strategy,
	.d_ioctl = noioctl,
	.d_dump = nodump,
	.d_psize = nosize,
	.d_discard = nodiscard,
	.d_flag = D_DISK | D_MPSAFE
};

static const struct cdevsw ktmod_cdevsw = {
	KTMOD_DEVSW_INIT
	.d_open = ktmod_open,
	.d_close = ktmod_close,
	.d_read = ktmod_read,
	.d_write = nowrite,
	.d_ioctl = noioctl,
	.d_stop = nostop,
	.d_tty = notty,
	.d_poll = nopoll,
	.d_mmap = nommap,
	.d_kqfilter = nokqfilter,
	.d_discard = nodiscard,
	.d_flag = D_OTHER | D_MPSAFE
};

/*
 * ktmod_lock protects everything below.  ktmod_isopen[t][u]: unit u of
 * type t (0 block, 1 character) is open (specfs calls d_close only at
 * the last close of a device, so a flag per unit, not a count).
 * ktmod_active: d_read and d_close calls inside the driver, which FINI
 * waits for after the detach (cdev_read and cdev_close take no devsw
 * reference).  d_open is deliberately not counted there: only the devsw
 * reference that cdev_open/bdev_open hold protects it.
 */
static kmutex_t		ktmod_lock;
static kcondvar_t	ktmod_cv;
static bool		ktmod_isopen[2][KTMOD_NUNIT];
static u_int		ktmod_active;
static bool		ktmod_dying;

/* d_opens inside the driver: statistics only, FINI never waits for it. */
static volatile u_int	ktmod_opening;

#define	KTMOD_COUNT(field)	atomic_inc_uint(&ktmod_stats.field)
#define	KTMOD_TYPE(fmt)		((fmt) == S_IFBLK ? 0 : 1)

static void
ktmod_enter(void)
{

	mutex_enter(&ktmod_lock);
	ktmod_active++;
	mutex_exit(&ktmod_lock);
}

static void
ktmod_exit(void)
{

	mutex_enter(&ktmod_lock);
	if (--ktmod_active == 0)
		cv_broadcast(&ktmod_cv);
	mutex_exit(&ktmod_lock);
}

/*
 * ktmod_open(dev, flag, fmt, l)
 *
 *	Sleep a tick, then open unit minor(dev): ENXIO beyond
 *	KTMOD_NUNIT or if the module is being unloaded meanwhile.
 *	Thread context.
 */
static int
ktmod_open(dev_t dev, int flag, int fmt, struct lwp *l)
{
	const u_int unit = minor(dev);
	int error = 0;

	KTMOD_COUNT(ks_open_in);
	atomic_inc_uint(&ktmod_opening);
	kpause("ktmodop", false, 1, NULL);	/* an unload may start here */
	mutex_enter(&ktmod_lock);
	if (ktmod_dying) {
		/* Came in through a reference that devsw_detach waits for. */
		KTMOD_COUNT(ks_opens_refused);
		error = ENXIO;
	} else if (unit >= KTMOD_NUNIT)
		error = ENXIO;
	else
		ktmod_isopen[KTMOD_TYPE(fmt)][unit] = true;
	mutex_exit(&ktmod_lock);
	atomic_dec_uint(&ktmod_opening);
	KTMOD_COUNT(ks_open_out);
	return error;
}

/*
 * ktmod_close(dev, flag, fmt, l)
 *
 *	Last close of unit minor(dev).  Sleeps a tick; the unit stays
 *	open for FINI until the close is done.  Thread context.
 */
static int
ktmod_close(dev_t dev, int flag, int fmt, struct lwp *l)
{

	KTMOD_COUNT(ks_close_in);
	ktmod_enter();
	kpause("ktmodcl", false, 1, NULL);
	mutex_enter(&ktmod_lock);
	ktmod_isopen[KTMOD_TYPE(fmt)][minor(dev)] = false;
	mutex_exit(&ktmod_lock);
	ktmod_exit();
	KTMOD_COUNT(ks_close_out);
	return 0;
}

/*
 * ktmod_read(dev, uio, flag)
 *
 *	Read "ktmod\n" (once per call, whatever the offset).  Sleeps a
 *	tick.  Thread context.
 */
static int
ktmod_read(dev_t dev, struct uio *uio, int flag)
{
	static const char msg[] = "ktmod\n";
	int error;

	KTMOD_COUNT(ks_read_in);
	ktmod_enter();
	kpause("ktmodrd", false, 1, NULL);
	error = uiomove(__UNCONST(msg),
	    MIN(sizeof(msg) - 1, uio->uio_resid), uio);
	ktmod_exit();
	KTMOD_COUNT(ks_read_out);
	return error;
}

/*
 * ktmod_strategy(bp)
 *
 *	A disk of zeros: reads return zeros, writes are discarded.
 */
static void
ktmod_strategy(struct buf *bp)
{

	KTMOD_COUNT(ks_strategy_in);
	if (bp->b_flags & B_READ)
		memset(bp->b_data, 0, bp->b_bcount);
	bp->b_resid = 0;
	biodone(bp);
	KTMOD_COUNT(ks_strategy_out);
}

/*
 * ktmod_fini()
 *
 *	MODULE_CMD_FINI: EBUSY while a unit is open; otherwise mark the
 *	driver dying, detach the devsws (which waits for the d_opens that
 *	hold a reference) and wait for the calls still inside the driver.
 *	Thread context, kernconfig lock held.
 */
static int
ktmod_fini(void)
{
	u_int t, u;

	mutex_enter(&ktmod_lock);
	for (t = 0; t < 2; t++) {
		for (u = 0; u < KTMOD_NUNIT; u++) {
			if (ktmod_isopen[t][u]) {
				mutex_exit(&ktmod_lock);
				KTMOD_COUNT(ks_unload_busy);
				return EBUSY;
			}
		}
	}
	ktmod_dying = true;
	if (ktmod_opening > 0)
		KTMOD_COUNT(ks_unload_raced);
	mutex_exit(&ktmod_lock);

	devsw_detach(&ktmod_bdevsw, &ktmod_cdevsw);

	mutex_enter(&ktmod_lock);
	while (ktmod_active > 0)
		cv_wait(&ktmod_cv, &ktmod_lock);
	mutex_exit(&ktmod_lock);
	cv_destroy(&ktmod_cv);
	mutex_destroy(&ktmod_lock);
	KTMOD_COUNT(ks_unloads);
	return 0;
}

static int
KTMOD_MODCMD(modcmd_t cmd, void *arg)
{
	devmajor_t bmajor = KTMOD_BMAJOR, cmajor = KTMOD_CMAJOR;
	int error;

	switch (cmd) {
	case MODULE_CMD_INIT:
		mutex_init(&ktmod_lock, MUTEX_DEFAULT, IPL_NONE);
		cv_init(&ktmod_cv, "ktmodfin");
		error = devsw_attach("ktmod", &ktmod_bdevsw, &bmajor,
		    &ktmod_cdevsw, &cmajor);
		if (error) {
			cv_destroy(&ktmod_cv);
			mutex_destroy(&ktmod_lock);
			return error;
		}
		KTMOD_COUNT(ks_loads);
		return 0;
	case MODULE_CMD_FINI:
		return ktmod_fini();
	default:
		return ENOTTY;
	}
}
