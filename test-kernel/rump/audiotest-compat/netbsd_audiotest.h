/*	$NetBSD$	*/

/*-
 * netbsd_audiotest.h: what NetBSD's tests/dev/audio/audiotest.c needs to
 * drive a rump kernel from a Linux host, forced in with -include by
 * ktest-rump.sh (with -I of this directory, whose <util.h>,
 * <sys/event.h>, <sys/sysctl.h> and <sys/ioctl.h> stand in for
 * NetBSD's, and of the build directory that holds NetBSD's own
 * <sys/audioio.h> and <sys/ioccom.h> copied from the user's tree).
 *
 * The rump kernel is NetBSD: every number audiotest passes to a
 * rump_sys_*() call or compares with what one returns must be NetBSD's,
 * not glibc's.  The host headers are included first, so that their own
 * include guards keep audiotest.c's later #includes from redefining
 * anything, and then the constants that differ are redefined:
 *
 *	O_NONBLOCK	open(2)/fcntl(2) flag (glibc 04000, NetBSD 0x4)
 *	EAGAIN		errno; rump_sys_*() leave the rump kernel's
 *	EOVERFLOW	(NetBSD) error number in the host's errno
 *	POLLRDNORM...	poll(2) bits above POLLNVAL
 *	FIOASYNC	ioctl numbers, with NetBSD's _IOW (<sys/ioctl.h>)
 *
 * The constants audiotest uses that are equal on both (O_RDONLY,
 * O_WRONLY, O_RDWR, F_GETFL, EPERM ... ERANGE, POLLIN ... POLLNVAL)
 * are checked at compile time instead.  struct kevent and EV_* are
 * NetBSD's in <sys/event.h>; sysctlbyname() asks the rump kernel
 * (<sys/sysctl.h>).
 */

#ifndef _KTEST_NETBSD_AUDIOTEST_H_
#define _KTEST_NETBSD_AUDIOTEST_H_

#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/poll.h>
#include <sys/param.h>
#include <sys/time.h>

#include <sys/ioccom.h>		/* NetBSD's, from the tree */

/* <sys/cdefs.h> */
#define __RCSID(s)
#define __dead			__attribute__((__noreturn__))
#define __printflike(f, a)	__attribute__((__format__(__printf__, f, a)))
#define __unreachable()		__builtin_unreachable()
#ifndef __unused
#define __unused		__attribute__((__unused__))
#endif
#define __arraycount(a)		(sizeof(a) / sizeof((a)[0]))

/* <sys/param.h> */
#ifndef howmany
#define howmany(x, y)		(((x) + ((y) - 1)) / (y))
#endif
#ifndef roundup2
#define roundup2(x, m)		(((x) + ((m) - 1)) & ~((m) - 1))
#endif

/* <fcntl.h>: the access modes and F_GETFL are the same on both. */
_Static_assert(O_RDONLY == 0 && O_WRONLY == 1 && O_RDWR == 2 && F_GETFL == 3,
    "O_RDONLY/O_WRONLY/O_RDWR/F_GETFL differ from NetBSD's");
#undef O_NONBLOCK
#define O_NONBLOCK		0x00000004

/* <errno.h>: 1 (EPERM) to 34 (ERANGE) are the same on both. */
_Static_assert(EPERM == 1 && EIO == 5 && ENXIO == 6 && EBADF == 9 &&
    EACCES == 13 && ENODEV == 19 && EINVAL == 22 && ENOTTY == 25,
    "errno values differ from NetBSD's");
#undef EAGAIN
#define EAGAIN			35
#undef EWOULDBLOCK
#define EWOULDBLOCK		EAGAIN
#undef EOVERFLOW
#define EOVERFLOW		84

/*
 * strerror(3) of a NetBSD error number: glibc's text where the numbers
 * agree, NetBSD's own for the two that audiotest expects and that do
 * not.
 */
static inline const char *
netbsd_strerror(int e)
{

	switch (e) {
	case EAGAIN:
		return "Resource temporarily unavailable";
	case EOVERFLOW:
		return "Value too large to be stored in data type";
	}
	return e <= 34 ? (strerror)(e) : "Unknown NetBSD error";
}
#define strerror(e)		netbsd_strerror(e)

/* <poll.h> */
_Static_assert(POLLIN == 0x1 && POLLPRI == 0x2 && POLLOUT == 0x4 &&
    POLLERR == 0x8 && POLLHUP == 0x10 && POLLNVAL == 0x20,
    "poll bits differ from NetBSD's");
#undef POLLRDNORM
#define POLLRDNORM		0x0040
#undef POLLWRNORM
#define POLLWRNORM		POLLOUT
#undef POLLRDBAND
#define POLLRDBAND		0x0080
#undef POLLWRBAND
#define POLLWRBAND		0x0100

/*
 * <sys/mman.h>: only audiotest's debug output names these; with -R
 * (rump) its mmap cases are skipped before any mmap(2).
 */
#ifndef MAP_INHERIT
#define MAP_INHERIT		0x0080
#endif
#ifndef MAP_HASSEMAPHORE
#define MAP_HASSEMAPHORE	0x0200
#endif
#ifndef MAP_TRYFIXED
#define MAP_TRYFIXED		0x0400
#endif
#ifndef MAP_WIRED
#define MAP_WIRED		0x0800
#endif

/* <stdlib.h> getprogname(3) */
extern char *program_invocation_short_name;
static inline const char *
getprogname(void)
{

	return program_invocation_short_name;
}

/* <string.h> strlcpy(3), strlcat(3): not in every glibc */
static inline size_t
ktest_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

static inline size_t
ktest_strlcat(char *dst, const char *src, size_t size)
{
	size_t dlen = strnlen(dst, size);

	if (dlen == size)
		return size + strlen(src);
	return dlen + ktest_strlcpy(dst + dlen, src, size - dlen);
}
#define strlcpy			ktest_strlcpy
#define strlcat			ktest_strlcat

/* NetBSD's pthread_setname_np(3) takes a printf format and an argument. */
int pthread_setname_np(pthread_t, const char *);
#define pthread_setname_np(t, name, arg)	(pthread_setname_np)(t, name)

#endif	/* _KTEST_NETBSD_AUDIOTEST_H_ */
