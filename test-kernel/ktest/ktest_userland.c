/*	$NetBSD$	*/

/*-
 * The kernel's half of the userland suite (test-kernel/userland/):
 *
 * - ktmod_stats, the counters of the test module ktmod
 *   (test-kernel/modules/ktmod/), kept in the kernel so that they
 *   survive the module's unloads;
 * - /dev/ktctl (character major KTCTL_CMAJOR), a built-in cdevsw whose
 *   read returns struct ktmod_stats, so that the userland can check
 *   "calls in == calls out" after its load/unload storm, and whose
 *   write prints the userland suite's KTEST lines with printf(9).
 *
 * The in-kernel suite (ktest.c) attaches ktctl before it runs and, in a
 * kernel with options KTEST_USERLAND, lets the boot continue to the md(4)
 * root and the userland's /sbin/init instead of ending the VM.
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#include <sys/param.h>
#include <sys/conf.h>
#include <sys/systm.h>
#include <sys/uio.h>

#include "opt_rust_localcount.h"

#include "ktmod.h"
#include "ktest.h"

struct ktmod_stats ktmod_stats = {
#ifdef RUST_LOCALCOUNT
	.ks_rust = 1,
#endif
};

static dev_type_read(ktctl_read);
static dev_type_write(ktctl_write);

static const struct cdevsw ktctl_cdevsw = {
	.d_open = nullopen,
	.d_close = nullclose,
	.d_read = ktctl_read,
	.d_write = ktctl_write,
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
 * ktctl_read(dev, uio, flag)
 *
 *	Copy out a snapshot of ktmod_stats, from offset 0 whatever the
 *	file offset (each read is a fresh snapshot).  Thread context;
 *	may sleep (uiomove).
 */
static int
ktctl_read(dev_t dev, struct uio *uio, int flag)
{
	struct ktmod_stats snap;
	unsigned int *dst = (unsigned int *)&snap;
	const volatile unsigned int *src =
	    (const volatile unsigned int *)&ktmod_stats;
	size_t i;

	for (i = 0; i < KTMOD_NSTATS; i++)
		dst[i] = src[i];
	return uiomove(&snap, MIN(sizeof(snap), uio->uio_resid), uio);
}

/*
 * ktctl_write(dev, uio, flag)
 *
 *	Print what is written on the console with printf(9), one call per
 *	KTCTL_LINE_MAX bytes: the userland suite writes each KTEST line
 *	here with one write(2).  A line written to /dev/console waits in
 *	the console tty's output queue while the kernel's own printf goes
 *	out at once, so a kernel message (modctl's "WARNING: module
 *	error ...") could land in the middle of a queued line and corrupt
 *	it; through printf(9) the line is whole and in order with them.
 *	Thread context; may sleep (uiomove).
 */
static int
ktctl_write(dev_t dev, struct uio *uio, int flag)
{
	char buf[KTCTL_LINE_MAX];
	size_t n;
	int error;

	while (uio->uio_resid > 0) {
		n = MIN(sizeof(buf), uio->uio_resid);
		error = uiomove(buf, n, uio);
		if (error)
			return error;
		printf("%.*s", (int)n, buf);
	}
	return 0;
}

/*
 * ktest_userland_attach()
 *
 *	Attach /dev/ktctl at KTCTL_CMAJOR.  Thread context, before the
 *	in-kernel cases run; sleeps.  Returns 0 or devsw_attach's error.
 */
int
ktest_userland_attach(void)
{
	devmajor_t bmajor = NODEVMAJOR, cmajor = KTCTL_CMAJOR;

	return devsw_attach("ktctl", NULL, &bmajor, &ktctl_cdevsw, &cmajor);
}
