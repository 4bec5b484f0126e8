/*	$NetBSD$	*/

/*-
 * <sys/event.h> for audiotest.c on a Linux host (ktest-rump.sh): NetBSD's
 * struct kevent (the layout rump_sys_kevent(), NetBSD's kevent100, copies
 * in and out) and the EV_* and EVFILT_* values audiotest uses.  Linux has
 * no kqueue: the host kqueue()/kevent() (audiotest without -R) fail with
 * ENOSYS.
 */

#ifndef _KTEST_SYS_EVENT_H_
#define _KTEST_SYS_EVENT_H_

#include <stdint.h>
#include <time.h>

#define EVFILT_READ	0U
#define EVFILT_WRITE	1U

#define EV_ADD		0x0001U
#define EV_DELETE	0x0002U
#define EV_ENABLE	0x0004U
#define EV_DISABLE	0x0008U
#define EV_ONESHOT	0x0010U
#define EV_CLEAR	0x0020U
#define EV_RECEIPT	0x0040U
#define EV_DISPATCH	0x0080U
#define EV_ERROR	0x4000U
#define EV_EOF		0x8000U

struct kevent {
	uintptr_t	ident;
	uint32_t	filter;
	uint32_t	flags;
	uint32_t	fflags;
	int64_t		data;
	void		*udata;
	uint64_t	ext[4];
};
_Static_assert(sizeof(struct kevent) == 72 || sizeof(void *) != 8,
    "struct kevent is not NetBSD's");

#define EV_SET(kevp, a, b, c, d, e, f) do {			\
	struct kevent *__kevp = (kevp);				\
								\
	__kevp->ident = (a);					\
	__kevp->filter = (b);					\
	__kevp->flags = (c);					\
	__kevp->fflags = (d);					\
	__kevp->data = (e);					\
	__kevp->udata = (void *)(intptr_t)(f);			\
	__kevp->ext[0] = __kevp->ext[1] = 0;			\
	__kevp->ext[2] = __kevp->ext[3] = 0;			\
} while (0)

static inline int
kqueue(void)
{

	errno = ENOSYS;
	return -1;
}

static inline int
kevent(int kq, const struct kevent *ch, size_t nch, struct kevent *ev,
    size_t nev, const struct timespec *ts)
{

	(void)kq; (void)ch; (void)nch; (void)ev; (void)nev; (void)ts;
	errno = ENOSYS;
	return -1;
}

#endif	/* _KTEST_SYS_EVENT_H_ */
