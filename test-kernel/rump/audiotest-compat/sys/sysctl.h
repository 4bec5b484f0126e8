/*	$NetBSD$	*/

/*-
 * <sys/sysctl.h> for audiotest.c on a Linux host (ktest-rump.sh).
 *
 * audiotest calls sysctlbyname(3) for kern.osrevision (which NetBSD it
 * tests: before rump_init()), hw.pagesize and hw.audioN.multiuser.  Linux
 * has none of these names; the NetBSD under test is the rump kernel, so
 * sysctlbyname() here resolves the name in the rump kernel's tree (one
 * CTL_QUERY per component, as NetBSD's sysctlnametomib(3) does) and calls its
 * __sysctl(2).  rump_init() returns at once when the kernel is already
 * up, so calling it here first changes nothing for audiotest.
 */

#ifndef _KTEST_SYS_SYSCTL_H_
#define _KTEST_SYS_SYSCTL_H_

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#define CTL_MAXNAME	12
#define SYSCTL_NAMELEN	32
#define CTL_QUERY	(-2)
#define SYSCTL_VERSION	0x01000000

/* NetBSD's struct sysctlnode (every pointer and size_t padded to 64 bits). */
struct ktest_sysctlnode {
	uint32_t	sysctl_flags;
	int32_t		sysctl_num;
	char		sysctl_name[SYSCTL_NAMELEN];
	uint32_t	sysctl_ver;
	uint32_t	__rsvd;
	uint64_t	sysctl_un[2];
	uint64_t	_sysctl_size;
	uint64_t	_sysctl_func;
	uint64_t	_sysctl_parent;
	uint64_t	_sysctl_desc;
};
_Static_assert(sizeof(struct ktest_sysctlnode) == 96,
    "struct sysctlnode is not NetBSD's");

/*
 * sysctlbyname(name, oldp, oldlenp, newp, newlen)
 *
 *	NetBSD's sysctlbyname(3), in the rump kernel.
 */
static inline int
sysctlbyname(const char *name, void *oldp, size_t *oldlenp,
    const void *newp, size_t newlen)
{
	struct ktest_sysctlnode *nodes, query;
	int mib[CTL_MAXNAME + 1];
	char buf[256], *comp, *next;
	size_t len, i;
	u_int depth;
	int error;

	if ((error = rump_init()) != 0) {
		errno = error;
		return -1;
	}
	if (strlen(name) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, name);
	memset(&query, 0, sizeof(query));
	query.sysctl_flags = SYSCTL_VERSION;
	depth = 0;
	for (comp = buf; comp != NULL; comp = next) {
		if ((next = strchr(comp, '.')) != NULL)
			*next++ = '\0';
		if (depth == CTL_MAXNAME) {
			errno = ENOENT;
			return -1;
		}
		/* The children of mib[0..depth-1]. */
		mib[depth] = CTL_QUERY;
		len = 0;
		if (rump_sys___sysctl(mib, depth + 1, NULL, &len, &query,
		    sizeof(query)) == -1)
			return -1;
		if ((nodes = malloc(len)) == NULL)
			return -1;
		if (rump_sys___sysctl(mib, depth + 1, nodes, &len, &query,
		    sizeof(query)) == -1) {
			free(nodes);
			return -1;
		}
		for (i = 0; i < len / sizeof(*nodes); i++) {
			if (strncmp(nodes[i].sysctl_name, comp,
			    SYSCTL_NAMELEN) == 0)
				break;
		}
		if (i == len / sizeof(*nodes)) {
			free(nodes);
			errno = ENOENT;
			return -1;
		}
		mib[depth++] = nodes[i].sysctl_num;
		free(nodes);
	}
	return rump_sys___sysctl(mib, depth, oldp, oldlenp, newp, newlen);
}

#endif	/* _KTEST_SYS_SYSCTL_H_ */
