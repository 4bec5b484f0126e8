/*	$NetBSD$	*/

/*-
 * ktest_rump: run the in-kernel suite (test-kernel/ktest/) in a rump
 * kernel.
 *
 * The suite is the rump component librumpkern_ktest: a built-in
 * MODULE_CLASS_MISC module whose MODULE_CMD_INIT runs every case, which
 * rump_init() does in module_init_class() with every virtual CPU up.  The
 * KTEST console protocol (see ktest.c) goes to standard output through
 * the rump kernel's console, and test-kernel/rump/ktest_rump_run.py reads
 * it with the QEMU harness's parser.  The number of virtual CPUs is the
 * rump kernel's RUMP_NCPU environment variable.
 *
 * Exit status: 0 when rump_init() returned (the results are in the
 * output), 2 when it failed; a panic of the rump kernel aborts.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rump/rump.h>

/*
 * main()
 *
 *	Boot the rump kernel, which runs the suite, and report how
 *	rump_init() ended.
 */
int
main(void)
{
	int error;

	setvbuf(stdout, NULL, _IOLBF, 0);
	error = rump_init();
	if (error != 0) {
		fprintf(stderr, "ktest_rump: rump_init: %s\n", strerror(error));
		return 2;
	}
	printf("ktest_rump: rump_init returned\n");
	return 0;
}
