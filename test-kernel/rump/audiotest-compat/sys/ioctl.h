/*	$NetBSD$	*/

/*-
 * <sys/ioctl.h> for audiotest.c on a Linux host (ktest-rump.sh): the
 * ioctl numbers the rump kernel decodes are NetBSD's, built with
 * NetBSD's _IOW from the tree's <sys/ioccom.h>; glibc's header would
 * bring Linux's _IOW and FIOASYNC.
 */

#ifndef _KTEST_SYS_IOCTL_H_
#define _KTEST_SYS_IOCTL_H_

#include <sys/ioccom.h>

#define FIOASYNC	_IOW('f', 125, int)	/* set/clear async i/o */
#define FIONBIO		_IOW('f', 126, int)	/* set/clear non-blocking i/o */
#define FIONREAD	_IOR('f', 127, int)	/* get # bytes to read */

int ioctl(int, unsigned long, ...);

#endif	/* _KTEST_SYS_IOCTL_H_ */
