/*	$NetBSD$	*/

/*-
 * ktmod: the test pseudo-device that the userland part of the suite
 * (test-kernel/userland/init.c) loads and unloads as a real module
 * (test-kernel/modules/ktmod/ktmod.c) while processes open, read and
 * close it.
 *
 * Its counters live in the kernel, not in the module, so that they
 * survive every unload: ktest_userland.c defines ktmod_stats, the
 * module increments it, and /dev/ktctl (a built-in cdevsw of the test
 * kernel) lets the userland read it.  This header is shared by the
 * three; it uses no kernel or libc type.
 */

#ifndef _KTEST_KTMOD_H_
#define _KTEST_KTMOD_H_

/* Fixed majors (config's dynamic range ends far below; see ktmod.c). */
#define	KTCTL_CMAJOR		500
#define	KTMOD_CMAJOR		501
#define	KTMOD_BMAJOR		250
#define	KTMOD_NUNIT		16	/* minors 0..15 */
#define	KTCTL_LINE_MAX		512	/* a write to /dev/ktctl: printf(9)
					   in pieces of this size */

/*
 * Every entry point counts its calls on entry (_in) and just before it
 * returns (_out): in == out once nothing runs in the driver.  The
 * module's MODULE_CMD_FINI counts its outcomes.
 */
struct ktmod_stats {
	unsigned int	ks_open_in, ks_open_out;
	unsigned int	ks_read_in, ks_read_out;
	unsigned int	ks_close_in, ks_close_out;
	unsigned int	ks_strategy_in, ks_strategy_out;
	unsigned int	ks_opens_refused;	/* d_open found it dying: ENXIO */
	unsigned int	ks_loads;		/* MODULE_CMD_INIT succeeded */
	unsigned int	ks_unloads;		/* MODULE_CMD_FINI succeeded */
	unsigned int	ks_unload_busy;		/* FINI: a unit open: EBUSY */
	unsigned int	ks_unload_raced;	/* FINI went on with d_opens inside
						   the driver (devsw_detach waited
						   for them) */
	unsigned int	ks_rust;		/* set by the kernel: 1 if it has
						   options RUST_LOCALCOUNT */
};

#define	KTMOD_NSTATS	(sizeof(struct ktmod_stats) / sizeof(unsigned int))

#ifdef _KERNEL
extern struct ktmod_stats ktmod_stats;
#endif

#endif	/* _KTEST_KTMOD_H_ */
