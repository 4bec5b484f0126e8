/*	$NetBSD$	*/

/*-
 * netbsd_compat.h: what a NetBSD test program that drives a rump kernel
 * (tests/dev/audio: h_pad.c, audiotest.c) needs on a Linux host besides
 * the rump headers, forced in with -include by ktest-rump.sh.
 *
 * The rump headers expect <stdint.h> and <sys/types.h> to be included
 * already, and rump_syscalls.h declares rump_sys_clock_getcpuclockid2()
 * with idtype_t (<sys/wait.h> on Linux).  NetBSD's <sys/endian.h>
 * le32dec() is not in glibc.  NetBSD's own <sys/audioio.h> and
 * <sys/ioccom.h> (ioctl numbers as the rump kernel decodes them) come
 * from the user's tree at build time, never from this project.
 */

#ifndef _KTEST_NETBSD_COMPAT_H_
#define _KTEST_NETBSD_COMPAT_H_

#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

/*
 * le32dec(p)
 *
 *	Decode a little-endian 32-bit value at p (NetBSD <sys/endian.h>).
 */
static inline uint32_t
le32dec(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 |
	    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

#endif	/* _KTEST_NETBSD_COMPAT_H_ */
