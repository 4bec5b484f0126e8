/*	$NetBSD$	*/

/*-
 * pud_rump: NetBSD's real pud(4) driver (sys/dev/pud: "pass-to-userspace
 * device", on putter(4)) in a rump kernel, served by host threads.  pud
 * attaches ONE cdevsw, pud_cdevsw, at several majors: its own ("pud",
 * pud_modcmd, a dynamic major) and one per device server, which opens
 * /dev/pud (putter, minor PUTTER_MINOR_PUD) and registers a name and a
 * major with a PUD_CONF_REG frame; pudconf_reg() then calls
 * devsw_attach(name, &pud_bdevsw, &major, &pud_cdevsw, &major).  Clients
 * open, read and close that major's device node; pud forwards every call
 * as a frame that the server reads from its putter fd and answers by
 * writing it back.  When a server closes its putter fd,
 * pud_putter_close() calls devsw_detach(&pud_bdevsw, &pud_cdevsw) -- by
 * pointer ("XXX" in the source), so stock detaches the first major where
 * each devsw is attached (the lowest), not the server's own.  The Rust
 * devsw layer does the same (subr_devsw.c, RUST_LOCALCOUNT: "detached
 * from its lowest-numbered one ... as without the option"); the cases
 * assert that behaviour, identical on both kernels, and print the
 * tables.
 *
 * The servers register with PUD_CONFFLAG_BDEV: without a block major,
 * the devsw_detach(&pud_bdevsw, ...) of their close finds pud_bdevsw
 * nowhere: stock's KASSERT(bi < max_bdevsws) (without DIAGNOSTIC, an
 * index past the table), the Rust layer's "bdevsw %p not attached"
 * (from the code; not run here).
 *
 * Cases (tp "rump_pud"):
 *	register	servers A (major MAJ_A) and B (MAJ_B) register; the
 *			tables have pud_cdevsw at pud's own major and at
 *			both, pud_bdevsw at both; one open/read/close
 *			through each server's node, ENXIO through pud's
 *			own (no server)
 *	concurrent	2 client threads per virtual CPU and server open,
 *			read and close both nodes at the same time; every
 *			call succeeds with the right server's data (the
 *			servers see one d_close per last close: specfs)
 *	close_one	A's clients run, server B closes its putter fd,
 *			A's clients run again: A serves on; B's node: ENXIO; the
 *			detached majors are the lowest ones (pud's own
 *			character major, A's block major), B's stay
 *			attached
 *	close_last	server A closes: A's node ENXIO too; again the
 *			lowest majors go (A's character, B's block major);
 *			B's character major stays attached for good
 *
 * The tables are read with the rump kernel's cdevsw_lookup() and
 * bdevsw_lookup() (rumpns_ symbols of librump, called between
 * rump_schedule() and rump_unschedule()).
 *
 * Output: the KTEST console protocol (test-kernel/ktest/ktest.c) on
 * standard output, read by ktest_rump_run.py.  The number of virtual
 * CPUs is the rump kernel's RUMP_NCPU.  Exit status 0 after
 * "KTEST: done", 2 if the rump kernel did not start.
 */

#define	_GNU_SOURCE		/* RTLD_DEFAULT */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>		/* idtype_t, for <rump/rump_syscalls.h> */

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include "ktest_host.h"

/*
 * NetBSD's frames as the rump kernel (amd64) lays them out: putter_hdr
 * (sys/dev/putter/putter.h) and pud_req, pud_req_openclose,
 * pud_req_readwrite, pud_conf_reg (sys/dev/pud/pud_msgif.h), with
 * NetBSD's types: dev_t uint64_t, pid_t and lwpid_t int32_t, off_t
 * int64_t.
 */
struct nb_pud_req {
	uint64_t	pth_framelen;	/* struct putter_hdr */
	uint64_t	pdr_dev;
	int32_t		pdr_pid;
	int32_t		pdr_lid;
	int		pdr_reqclass;
	int		pdr_reqtype;
	uint64_t	pdr_reqid;
	int		pdr_rv;
	size_t		pdr_len;
};

struct nb_pud_req_readwrite {
	struct nb_pud_req pm_pdr;
	int64_t		pm_offset;
	size_t		pm_resid;
	uint8_t		pm_data[];
};

#define	NB_PUD_DEVNAME_MAX	31
struct nb_pud_conf_reg {
	struct nb_pud_req pm_pdr;
	int		pm_version;
	uint64_t	pm_regdev;
	int		pm_flags;
	char		pm_devname[NB_PUD_DEVNAME_MAX + 1];
};

_Static_assert(sizeof(struct nb_pud_req) == 56, "pud_req");
_Static_assert(offsetof(struct nb_pud_req, pdr_rv) == 40, "pdr_rv");
_Static_assert(sizeof(struct nb_pud_req_readwrite) == 72, "readwrite");
_Static_assert(offsetof(struct nb_pud_conf_reg, pm_regdev) == 64, "regdev");
_Static_assert(sizeof(struct nb_pud_conf_reg) == 112, "pud_conf_reg");

#define	NB_PUD_REQ_CDEV		1
#define	NB_PUD_REQ_CONF		3
#define	NB_PUD_CDEV_OPEN	0
#define	NB_PUD_CDEV_CLOSE	1
#define	NB_PUD_CDEV_READ	2
#define	NB_PUD_CONF_REG		0
#define	NB_PUD_CONFFLAG_BDEV	1
#define	NB_PUD_DEVELVERSION	0x80000000
#define	NB_PUD_VERSION		1

/* <sys/filio.h>: _IOW('f', 126, int); <sys/errno.h>. */
#define	NB_FIONBIO		0x8004667eUL
#define	NB_EOPNOTSUPP		45

/* NetBSD's makedev() (<sys/types.h>). */
#define	NB_MAKEDEV(x, y)	((uint64_t)(				\
	(((uint64_t)(x) << 8) & 0x000fff00) |				\
	(((uint64_t)(y) << 12) & 0xfff00000) |				\
	(((uint64_t)(y) << 0) & 0x000000ff)))
#define	NB_S_IFCHR		0020000

/* The rump kernel's devsw tables and pud's devsws (see above). */
extern const char rumpns_pud_cdevsw[], rumpns_pud_bdevsw[];
const void	*rumpns_cdevsw_lookup(uint64_t);
const void	*rumpns_bdevsw_lookup(uint64_t);
int32_t		rumpns_cdevsw_lookup_major(const void *);

#define	MAJ_A		400	/* above rump's dynamic majors (255...) */
#define	MAJ_B		401
#define	READLEN		64
#define	ITERS		100	/* open/read/close per client thread */
#define	MAXCLIENTS	16

/*
 * A device server: a host thread that answers the frames pud sends to
 * its putter fd until told to stop, then closes the fd itself (a close
 * from another thread would wait for its read).
 */
struct server {
	const char	*name;
	int		major;
	char		mark;		/* the byte its reads return */
	int		fd;
	pthread_t	thread;
	int		running;
	volatile int	stop;
	unsigned int	opens, closes, reads, other, badframe;
	int		read_err;	/* read's error other than EAGAIN */
	int		close_rv;	/* the putter fd's close */
};

/* A client thread: open/read/close one server's node. */
struct client {
	pthread_t	thread;
	struct server	*srv;
	int		iters;		/* 0: until stop */
	volatile int	*stop;
	unsigned int	ok, enxio, other, badread;
	int		last_err;
};

static int ncpu = 1;
static int pud_major = -1;	/* pud's own character major */
static struct server srv_a = { .name = "pudtesta", .major = MAJ_A,
    .mark = 'A', .fd = -1 };
static struct server srv_b = { .name = "pudtestb", .major = MAJ_B,
    .mark = 'B', .fd = -1 };

/* ---- the rump kernel's devsw tables --------------------------------- */

/*
 * Where pud's devsws are attached at major m: "c" pud_cdevsw, "b"
 * pud_bdevsw, "cb" both, "-" neither.
 */
static const char *
attached(int m)
{
	const void *c, *b;

	rump_schedule();
	c = rumpns_cdevsw_lookup(NB_MAKEDEV(m, 0));
	b = rumpns_bdevsw_lookup(NB_MAKEDEV(m, 0));
	rump_unschedule();
	if (c == rumpns_pud_cdevsw)
		return b == rumpns_pud_bdevsw ? "cb" : "c";
	return b == rumpns_pud_bdevsw ? "b" : "-";
}

/* One line with the three majors' state. */
static void
tables(struct ktest_host_tc *t, const char *when)
{

	so(t, "%s: major %d (pud): %s, %d (A): %s, %d (B): %s", when,
	    pud_major, attached(pud_major), MAJ_A, attached(MAJ_A), MAJ_B,
	    attached(MAJ_B));
}

/* ---- servers -------------------------------------------------------- */

/*
 * Answer one frame in place: open and close succeed, a read returns
 * the server's mark, anything else EOPNOTSUPP.
 */
static void
answer(struct server *s, struct nb_pud_req *pdr)
{
	struct nb_pud_req_readwrite *rw = (void *)pdr;

	pdr->pdr_rv = 0;
	if (pdr->pdr_reqclass != NB_PUD_REQ_CDEV) {
		s->other++;
		pdr->pdr_rv = NB_EOPNOTSUPP;
		return;
	}
	switch (pdr->pdr_reqtype) {
	case NB_PUD_CDEV_OPEN:
		s->opens++;
		break;
	case NB_PUD_CDEV_CLOSE:
		s->closes++;
		break;
	case NB_PUD_CDEV_READ:
		s->reads++;
		if (rw->pm_resid > pdr->pth_framelen - sizeof(*rw)) {
			s->badframe++;
			pdr->pdr_rv = RUMP_EINVAL;
			break;
		}
		memset(rw->pm_data, s->mark, rw->pm_resid);
		rw->pm_resid = 0;
		break;
	default:
		s->other++;
		pdr->pdr_rv = NB_EOPNOTSUPP;
		break;
	}
}

/*
 * The server thread: poll (at most 10 ms, then look at the stop flag),
 * read a frame (non-blocking fd), answer it; at stop, close the fd.
 */
static void *
server_main(void *arg)
{
	static __thread uint64_t frame[65536 / sizeof(uint64_t)];
	struct server *s = arg;
	struct nb_pud_req *pdr = (void *)frame;
	struct pollfd pfd;
	ssize_t n;

	while (!s->stop) {
		pfd.fd = s->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		rump_sys_poll(&pfd, 1, 10);
		n = rump_sys_read(s->fd, frame, sizeof(frame));
		if (n < 0) {
			if (errno == RUMP_EAGAIN)
				continue;
			s->read_err = errno;
			break;
		}
		if ((size_t)n < sizeof(*pdr) || (size_t)n != pdr->pth_framelen) {
			s->badframe++;
			continue;
		}
		answer(s, pdr);
		if (rump_sys_write(s->fd, frame, (size_t)n) != n)
			s->badframe++;
	}
	s->close_rv = rump_sys_close(s->fd) == 0 ? 0 : errno;
	s->fd = -1;
	return NULL;
}

/*
 * Open /dev/pud, make it non-blocking, register the server's name and
 * major (character and block), start its thread.  0 or an error message
 * in msg.
 */
static int
server_start(struct server *s, char *msg, size_t len)
{
	struct nb_pud_conf_reg reg;
	int one = 1, e;
	ssize_t n;

	s->stop = 0;
	s->opens = s->closes = s->reads = s->other = s->badframe = 0;
	s->read_err = s->close_rv = 0;
	s->fd = rump_sys_open("/dev/pud", RUMP_O_RDWR);
	if (s->fd < 0) {
		snprintf(msg, len, "open /dev/pud: %s", errname(errno));
		return -1;
	}
	if (rump_sys_ioctl(s->fd, NB_FIONBIO, &one) != 0) {
		snprintf(msg, len, "FIONBIO: %s", errname(errno));
		return -1;
	}
	memset(&reg, 0, sizeof(reg));
	reg.pm_pdr.pth_framelen = sizeof(reg);
	reg.pm_pdr.pdr_reqclass = NB_PUD_REQ_CONF;
	reg.pm_pdr.pdr_reqtype = NB_PUD_CONF_REG;
	reg.pm_version = (int)(NB_PUD_DEVELVERSION | NB_PUD_VERSION);
	reg.pm_regdev = NB_MAKEDEV(s->major, 0);
	reg.pm_flags = NB_PUD_CONFFLAG_BDEV;
	strncpy(reg.pm_devname, s->name, NB_PUD_DEVNAME_MAX);
	/* putter ignores what pud_putter_dispatch returns. */
	n = rump_sys_write(s->fd, &reg, sizeof(reg));
	if (n != (ssize_t)sizeof(reg)) {
		snprintf(msg, len, "write PUD_CONF_REG: %zd (%s)", n,
		    errname(n < 0 ? errno : 0));
		return -1;
	}
	e = pthread_create(&s->thread, NULL, server_main, s);
	if (e != 0) {
		snprintf(msg, len, "pthread_create: %s", strerror(e));
		return -1;
	}
	s->running = 1;
	return 0;
}

/* Stop the server thread: it closes its putter fd. */
static void
server_stop(struct server *s)
{

	if (!s->running)
		return;
	s->stop = 1;
	pthread_join(s->thread, NULL);
	s->running = 0;
}

/* ---- clients -------------------------------------------------------- */

/* One open/read/close of the server's node; 0 or NetBSD's errno. */
static int
client_once(struct server *s, int *badread)
{
	char path[32], buf[READLEN];
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/dev/%s", s->name);
	fd = rump_sys_open(path, RUMP_O_RDONLY);
	if (fd < 0)
		return errno;
	n = rump_sys_read(fd, buf, sizeof(buf));
	if (n != (ssize_t)sizeof(buf))
		*badread = 1;
	else
		for (i = 0; i < READLEN; i++)
			if (buf[i] != s->mark)
				*badread = 1;
	rump_sys_close(fd);
	return 0;
}

/* Client thread: iters open/read/close, or until *stop. */
static void *
client_main(void *arg)
{
	struct client *c = arg;
	int i, e, bad;

	for (i = 0; c->iters == 0 ? !*c->stop : i < c->iters; i++) {
		bad = 0;
		e = client_once(c->srv, &bad);
		if (e == 0)
			c->ok++;
		else if (e == RUMP_ENXIO)
			c->enxio++;
		else {
			c->other++;
			c->last_err = e;
		}
		c->badread += (unsigned int)bad;
	}
	return NULL;
}

/* ---- cases ---------------------------------------------------------- */

static void
case_register(struct ktest_host_tc *t)
{
	char msg[128];
	int e, bad;

	pud_major = rumpns_cdevsw_lookup_major(rumpns_pud_cdevsw);
	so(t, "pud's own character major (pud_modcmd): %d", pud_major);
	if (!check(t, pud_major >= 0 && pud_major < MAJ_A,
	    "pud_cdevsw attached at %d, not below %d", pud_major, MAJ_A))
		return;
	if (!check(t, server_start(&srv_a, msg, sizeof(msg)) == 0,
	    "server A: %s", msg))
		return;
	if (!check(t, server_start(&srv_b, msg, sizeof(msg)) == 0,
	    "server B: %s", msg))
		return;
	tables(t, "registered");
	check(t, strcmp(attached(pud_major), "c") == 0 &&
	    strcmp(attached(MAJ_A), "cb") == 0 &&
	    strcmp(attached(MAJ_B), "cb") == 0, "tables not as registered");
	bad = 0;
	e = client_once(&srv_a, &bad);
	check(t, e == 0 && !bad, "A: open %s, read %s", errname(e),
	    bad ? "bad" : "ok");
	e = client_once(&srv_b, &bad);
	check(t, e == 0 && !bad, "B: open %s, read %s", errname(e),
	    bad ? "bad" : "ok");
	e = client_once(&(struct server){ .name = "pud_own" }, &bad);
	so(t, "open /dev/pud_own (pud's major, no server): %s", errname(e));
	check(t, e == RUMP_ENXIO, "open through pud's own major: %s",
	    errname(e));
}

static void
case_concurrent(struct ktest_host_tc *t)
{
	static struct client cs[2 * MAXCLIENTS];
	int per = 2 * ncpu > MAXCLIENTS ? MAXCLIENTS : 2 * ncpu;
	unsigned int ok[2] = { 0, 0 }, other = 0, enxio = 0, badread = 0;
	long long t0 = now_us();
	int i, e, n = 0;

	if (!check(t, srv_a.running && srv_b.running, "servers not running"))
		return;
	for (i = 0; i < 2 * per; i++) {
		memset(&cs[i], 0, sizeof(cs[i]));
		cs[i].srv = i % 2 ? &srv_b : &srv_a;
		cs[i].iters = ITERS;
		e = pthread_create(&cs[i].thread, NULL, client_main, &cs[i]);
		if (!check(t, e == 0, "pthread_create: %s", strerror(e)))
			break;
		n++;
	}
	for (i = 0; i < n; i++) {
		pthread_join(cs[i].thread, NULL);
		ok[i % 2] += cs[i].ok;
		enxio += cs[i].enxio;
		other += cs[i].other;
		badread += cs[i].badread;
	}
	so(t, "%d client threads, %d open/read/close each, %lld ms", n,
	    ITERS, (now_us() - t0) / 1000);
	so(t, "A: %u ok, B: %u ok, %u ENXIO, %u other, %u bad reads", ok[0],
	    ok[1], enxio, other, badread);
	so(t, "server A: %u opens, %u reads, %u closes; B: %u, %u, %u",
	    srv_a.opens, srv_a.reads, srv_a.closes, srv_b.opens,
	    srv_b.reads, srv_b.closes);
	check(t, ok[0] == (unsigned int)(per * ITERS) &&
	    ok[1] == (unsigned int)(per * ITERS) && badread == 0,
	    "not every open/read/close succeeded");
	/*
	 * specfs calls d_close only at the node's last close (spec_close),
	 * so a server sees fewer closes than opens while clients overlap.
	 */
	check(t, srv_a.opens == srv_a.reads && srv_b.opens == srv_b.reads &&
	    srv_a.closes >= 1 && srv_a.closes <= srv_a.opens &&
	    srv_b.closes >= 1 && srv_b.closes <= srv_b.opens,
	    "servers: reads != opens, or closes not in 1..opens");
	check(t, srv_a.badframe + srv_b.badframe + srv_a.other +
	    srv_b.other == 0, "servers: bad or unexpected frames");
}

/*
 * clients_for(t, s, us, sum)
 *
 *	Run 2 client threads per virtual CPU on server s's
 *	node for us microseconds; add their counts to *sum.  0 or -1 (a
 *	thread did not start; the case has failed).
 */
static int
clients_for(struct ktest_host_tc *t, struct server *s, long us, struct client *sum)
{
	static struct client cs[MAXCLIENTS];
	static volatile int stop;
	int nc = 2 * ncpu > MAXCLIENTS ? MAXCLIENTS : 2 * ncpu;
	int i, e, n = 0;

	stop = 0;
	for (i = 0; i < nc; i++) {
		memset(&cs[i], 0, sizeof(cs[i]));
		cs[i].srv = s;
		cs[i].stop = &stop;
		e = pthread_create(&cs[i].thread, NULL, client_main, &cs[i]);
		if (!check(t, e == 0, "pthread_create: %s", strerror(e)))
			break;
		n++;
	}
	usleep((useconds_t)us);
	stop = 1;
	for (i = 0; i < n; i++) {
		pthread_join(cs[i].thread, NULL);
		sum->ok += cs[i].ok;
		sum->enxio += cs[i].enxio;
		sum->other += cs[i].other;
		sum->badread += cs[i].badread;
		if (cs[i].other)
			sum->last_err = cs[i].last_err;
	}
	return n == nc ? 0 : -1;
}

/*
 * close_one: A's clients, then B's close, then A's clients again.  The
 * close does not run while A's clients call into the rump kernel: it
 * did at first, and a rump kernel, which never preempts, then kept the
 * closing server's devsw_detach waiting for its xcalls for 6 to more
 * than 120 s at RUMP_NCPU 1 and 2 (on both kernels); opens of A racing
 * the detach are the "concurrent" case's and the in-kernel suite's job
 * (devsw:pud_two_majors).
 */
static void
case_close_one(struct ktest_host_tc *t)
{
	struct client before, after;
	long long t0;
	int e, bad = 0;

	if (!check(t, srv_a.running && srv_b.running, "servers not running"))
		return;
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	if (clients_for(t, &srv_a, 50000, &before) != 0)
		return;
	t0 = now_us();
	server_stop(&srv_b);
	so(t, "server B closed its putter fd in %lld ms (close: %s, read"
	    " error: %s)", (now_us() - t0) / 1000, errname(srv_b.close_rv),
	    errname(srv_b.read_err));
	if (clients_for(t, &srv_a, 50000, &after) != 0)
		return;
	so(t, "A's clients: %u ok before B's close, %u after; %u ENXIO,"
	    " %u other, %u bad reads", before.ok, after.ok,
	    before.enxio + after.enxio, before.other + after.other,
	    before.badread + after.badread);
	check(t, before.ok > 0 && after.ok > 0 &&
	    before.enxio + after.enxio == 0 &&
	    before.other + after.other == 0 &&
	    before.badread + after.badread == 0,
	    "A did not serve on after B's close");
	e = client_once(&srv_b, &bad);
	so(t, "open /dev/%s after B's close: %s", srv_b.name, errname(e));
	check(t, e == RUMP_ENXIO, "B's node after its close: %s",
	    errname(e));
	e = client_once(&srv_a, &bad);
	check(t, e == 0 && !bad, "A after B's close: %s", errname(e));
	tables(t, "after B's close");
	/*
	 * Stock (and the Rust layer): devsw_detach(&pud_bdevsw,
	 * &pud_cdevsw) removed the first major of each, pud's own
	 * character major and A's block major; B's stay.
	 */
	check(t, strcmp(attached(pud_major), "-") == 0 &&
	    strcmp(attached(MAJ_A), "c") == 0 &&
	    strcmp(attached(MAJ_B), "cb") == 0,
	    "not the lowest majors detached: %s %s %s", attached(pud_major),
	    attached(MAJ_A), attached(MAJ_B));
}

static void
case_close_last(struct ktest_host_tc *t)
{
	int e, bad = 0;

	if (!check(t, srv_a.running, "server A not running"))
		return;
	server_stop(&srv_a);
	so(t, "server A closed its putter fd (close: %s, read error: %s)",
	    errname(srv_a.close_rv), errname(srv_a.read_err));
	so(t, "server A answered %u opens, %u reads, %u closes in all",
	    srv_a.opens, srv_a.reads, srv_a.closes);
	e = client_once(&srv_a, &bad);
	so(t, "open /dev/%s after A's close: %s", srv_a.name, errname(e));
	check(t, e == RUMP_ENXIO, "A's node after its close: %s",
	    errname(e));
	e = client_once(&srv_b, &bad);
	check(t, e == RUMP_ENXIO, "B's node: %s", errname(e));
	tables(t, "after A's close");
	/* Again the lowest: A's character and B's block major. */
	check(t, strcmp(attached(pud_major), "-") == 0 &&
	    strcmp(attached(MAJ_A), "-") == 0 &&
	    strcmp(attached(MAJ_B), "c") == 0,
	    "not the lowest majors detached: %s %s %s", attached(pud_major),
	    attached(MAJ_A), attached(MAJ_B));
}

static struct ktest_host_tc cases[] = {
	{ "register", case_register, 0, "" },
	{ "concurrent", case_concurrent, 0, "" },
	{ "close_one", case_close_one, 0, "" },
	{ "close_last", case_close_last, 0, "" },
};
#define	NCASES	(sizeof(cases) / sizeof(cases[0]))

/*
 * setup()
 *
 *	Device nodes in the rump kernel: /dev/pudtesta, /dev/pudtestb at
 *	the servers' majors, /dev/pud_own at pud's own.  0 or a message.
 */
static const char *
setup(void)
{
	int m;

	m = rumpns_cdevsw_lookup_major(rumpns_pud_cdevsw);
	if (rump_sys_mknod("/dev/pudtesta", NB_S_IFCHR | 0600,
	    NB_MAKEDEV(MAJ_A, 0)) != 0)
		return "mknod /dev/pudtesta";
	if (rump_sys_mknod("/dev/pudtestb", NB_S_IFCHR | 0600,
	    NB_MAKEDEV(MAJ_B, 0)) != 0)
		return "mknod /dev/pudtestb";
	if (m >= 0 && rump_sys_mknod("/dev/pud_own", NB_S_IFCHR | 0600,
	    NB_MAKEDEV(m, 0)) != 0)
		return "mknod /dev/pud_own";
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *msg;
	int error;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: pud_rump\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	error = rump_init();
	if (error != 0) {
		fprintf(stderr, "pud_rump: rump_init: %s\n", strerror(error));
		return 2;
	}
	ktest_host_sysinfo(&ncpu, NULL, NULL);
	msg = setup();
	ktest_host_run("rump_pud", "rump_pud", cases, NCASES, msg);
	/* Servers still running after a failure: stop them. */
	server_stop(&srv_a);
	server_stop(&srv_b);
	return 0;
}
