/*	$NetBSD$	*/

/*-
 * /sbin/init of the test kernels' md(4) root: the userland suite.
 *
 * The in-kernel suite (test-kernel/ktest/) runs before mountroot; in a
 * kernel with options KTEST_USERLAND it ends its KTEST session with
 * "done ... next=userland" and lets the boot go on.  This program is
 * then process 1.  It prints a second KTEST session on /dev/console in
 * the same protocol (ktest.c; parsed by test-kernel/harness), runs the
 * cases below through real system calls -- modctl(2) loads and unloads
 * real .kmod files from the root file system while worker processes
 * open, read and close their devices -- and reboots (QEMU -no-reboot
 * exits).
 *
 * No libc: freestanding C with its own amd64 system-call stubs (syscall
 * instruction, number in %rax, carry set on error with the errno in
 * %rax; numbers from the tree's <sys/syscall.h>) and a small printf.
 * start.S has the entry point and the NetBSD ident note that execve(2)
 * requires.  Built by test-kernel/userland/build.sh.
 *
 * Cases (tp "userland"):
 *	load_unload	ktmod: load, modstat, open/read/close, unload, reload
 *	storm		worker processes open/read/close ktmod's units in
 *			loops while the module is loaded and unloaded
 *			hundreds of times
 *	held_open	unload while a process holds a unit open: EBUSY;
 *			after the close it unloads
 *	no_module_init	a module whose devsws lack d_localcount: EINVAL on
 *			a RUST_LOCALCOUNT kernel (skipped on the C kernel,
 *			saying what stock does)
 *	stock_module	a module built against the unpatched tree:
 *			EPROGMISMATCH
 *	real_modules	each module of /etc/ktest/real-modules: load, open
 *			its device, close, unload, reload, unload
 *	everyday_devices  /dev/null, /dev/zero, /dev/console, the md(4)
 *			disk: open, read or write, close, from several
 *			processes
 *
 * Adding a case: write "static void case_x(struct tc *)" that reports
 * through check()/so()/skip(), and add it to cases[] below.
 */

#include <sys/syscall.h>

#include "ktmod.h"

#ifndef NULL
#define	NULL	((void *)0)
#endif

typedef unsigned long	size_t;
typedef long		ssize_t;
typedef long long	int64_t;

/* ABI constants (<sys/fcntl.h>, <sys/errno.h>, <sys/module.h>, ...). */
#define	O_RDONLY	0x0000
#define	O_WRONLY	0x0001
#define	O_RDWR		0x0002
#define	O_NONBLOCK	0x0004
#define	O_CLOEXEC	0x00400000
#define	ENOENT		2
#define	ENXIO		6
#define	EAGAIN		35
#define	EBUSY		16
#define	EEXIST		17
#define	ENODEV		19
#define	EINVAL		22
#define	EPROGMISMATCH	75
#define	WNOHANG		0x00000001
#define	CTL_KERN	1
#define	CTL_HW		6
#define	KERN_CLOCKRATE	12
#define	HW_NCPU		3
#define	RB_AUTOBOOT	0
#define	RB_NOSYNC	0x0004
#define	CLOCK_MONOTONIC	3
#define	MODCTL_LOAD	0
#define	MODCTL_UNLOAD	1
#define	MODCTL_STAT	4
#define	MODCTL_NO_PROP	0x2
#define	MAXMODNAME	32

struct timespec {
	int64_t		tv_sec;
	long		tv_nsec;
};

struct iovec {
	void		*iov_base;
	size_t		iov_len;
};

typedef struct {
	const char	*ml_filename;
	int		ml_flags;
	const char	*ml_props;
	size_t		ml_propslen;
} modctl_load_t;

typedef struct {
	char		ms_name[MAXMODNAME];
	unsigned long long ms_addr;
	int		ms_source;
	int		ms_class;
	unsigned int	ms_size;
	unsigned int	ms_refcnt;
	unsigned int	ms_flags;
	unsigned int	ms_reqoffset;
} modstat_t;

/* ---- system calls ------------------------------------------------ */

/*
 * sc(n, a1..a6): system call n.  Returns the result, or -errno when
 * the kernel sets the carry flag.  %rcx and %r11 are clobbered by the
 * syscall instruction; %rdx carries a second return value.
 */
static long
sc(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	unsigned char cf;

	__asm__ volatile("syscall; setc %1"
	    : "+a"(n), "=r"(cf), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10),
	      "+r"(r8), "+r"(r9)
	    :
	    : "rcx", "r11", "memory", "cc");
	return cf ? -n : n;
}

#define	SC0(n)			sc((n), 0, 0, 0, 0, 0, 0)
#define	SC1(n, a)		sc((n), (long)(a), 0, 0, 0, 0, 0)
#define	SC2(n, a, b)		sc((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define	SC3(n, a, b, c)		sc((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define	SC4(n, a, b, c, d)	sc((n), (long)(a), (long)(b), (long)(c), \
				    (long)(d), 0, 0)
#define	SC6(n, a, b, c, d, e, f) sc((n), (long)(a), (long)(b), (long)(c), \
				    (long)(d), (long)(e), (long)(f))

static __attribute__((noreturn)) void
sys_exit(int status)
{

	SC1(SYS_exit, status);
	for (;;)
		continue;
}

/* fork: %rax is the pid, %rdx 0 in the parent and 1 in the child. */
static int
sys_fork(void)
{
	long rax = SYS_fork, rdx = 0;
	unsigned char cf;

	__asm__ volatile("syscall; setc %1"
	    : "+a"(rax), "=r"(cf), "+d"(rdx)
	    :
	    : "rcx", "r11", "rdi", "rsi", "r8", "r9", "r10", "memory", "cc");
	if (cf)
		return (int)-rax;
	return rdx ? 0 : (int)rax;
}

#define	sys_open(p, f)		((int)SC3(SYS_open, (p), (f), 0))
#define	sys_close(fd)		((int)SC1(SYS_close, (fd)))
#define	sys_read(fd, b, n)	SC3(SYS_read, (fd), (b), (n))
#define	sys_write(fd, b, n)	SC3(SYS_write, (fd), (b), (n))
#define	sys_dup2(a, b)		((int)SC2(SYS_dup2, (a), (b)))
#define	sys_pipe2(fds, fl)	((int)SC2(SYS_pipe2, (fds), (fl)))
#define	sys_modctl(cmd, arg)	((int)SC2(SYS_modctl, (cmd), (arg)))
#define	sys_wait4(p, st, o)	((int)SC4(SYS___wait450, (p), (st), (o), 0))
#define	sys_kill(p, s)		((int)SC2(SYS_kill, (p), (s)))
#define	sys_reboot(h)		((int)SC2(SYS_reboot, (h), 0))
#define	sys_lseek(fd, o, w)	SC3(SYS_lseek, (fd), (o), (w))

static int
sys_sysctl(const int *name, unsigned int namelen, void *old, size_t *oldlen)
{

	return (int)SC6(SYS___sysctl, name, namelen, old, oldlen, 0, 0);
}

static long long
now_us(void)
{
	struct timespec ts;

	if (SC2(SYS___clock_gettime50, CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	SC2(SYS___nanosleep50, &ts, 0);
}

/* ---- the bits of libc we need ------------------------------------ */

/* The compiler may emit calls to these. */
void	*memset(void *, int, size_t);
void	*memcpy(void *, const void *, size_t);

void *
memset(void *p, int c, size_t n)
{
	unsigned char *d = p;

	while (n-- > 0)
		*d++ = (unsigned char)c;
	return p;
}

void *
memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n-- > 0)
		*d++ = *s++;
	return dst;
}

static int
str_eq(const char *a, const char *b)
{

	while (*a != '\0' && *a == *b)
		a++, b++;
	return *a == *b;
}

/*
 * fmt(buf, size, fmt, ap): a small vsnprintf: %s %d %u %ld %lu %lld %llu
 * %%.  Always NUL-terminates; returns the length written.
 */
static size_t
vfmt(char *buf, size_t size, const char *f, __builtin_va_list ap)
{
	size_t n = 0;
	char num[24];

#define	PUT(c)	do { if (n + 1 < size) buf[n++] = (c); } while (0)
	for (; *f != '\0'; f++) {
		const char *s;
		unsigned long long u;
		int longs = 0, neg = 0, i = 0;

		if (*f != '%') {
			PUT(*f);
			continue;
		}
		f++;
		while (*f == 'l')
			longs++, f++;
		switch (*f) {
		case 's':
			s = __builtin_va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s != '\0'; s++)
				PUT(*s);
			continue;
		case 'd': {
			long long v = longs == 0 ? __builtin_va_arg(ap, int) :
			    longs == 1 ? __builtin_va_arg(ap, long) :
			    __builtin_va_arg(ap, long long);

			neg = v < 0;
			u = neg ? 0ULL - (unsigned long long)v :
			    (unsigned long long)v;
			break;
		}
		case 'u':
			u = longs == 0 ? __builtin_va_arg(ap, unsigned int) :
			    longs == 1 ? __builtin_va_arg(ap, unsigned long) :
			    __builtin_va_arg(ap, unsigned long long);
			break;
		case '%':
			PUT('%');
			continue;
		default:
			PUT('?');
			continue;
		}
		do {
			num[i++] = (char)('0' + u % 10);
			u /= 10;
		} while (u != 0);
		if (neg)
			PUT('-');
		while (i > 0)
			PUT(num[--i]);
	}
#undef PUT
	buf[n < size ? n : size - 1] = '\0';
	return n;
}

static size_t __attribute__((format(printf, 3, 4)))
fmt(char *buf, size_t size, const char *f, ...)
{
	__builtin_va_list ap;
	size_t n;

	__builtin_va_start(ap, f);
	n = vfmt(buf, size, f, ap);
	__builtin_va_end(ap);
	return n;
}

/*
 * Where say() writes: /dev/ktctl, whose d_write prints with the kernel's
 * printf(9) (ktest_userland.c), else the console tty (fd 1).  Through the
 * tty a line waits in the output queue while the kernel's own messages
 * (modctl's "WARNING: module error ...") go out at once, and one of them
 * once landed in the middle of a line ("tc-so use[rland ...").
 */
static int sayfd = 1;

/* One write(2) per line, so that lines stay whole on the console. */
static void __attribute__((format(printf, 1, 2)))
say(const char *f, ...)
{
	char line[KTCTL_LINE_MAX];
	__builtin_va_list ap;
	size_t n;

	__builtin_va_start(ap, f);
	n = vfmt(line, sizeof(line) - 1, f, ap);
	__builtin_va_end(ap);
	line[n++] = '\n';
	sys_write(sayfd, line, n);
}

static const char *
errname(int e)
{
	static char buf[16];

	switch (e) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case ENXIO: return "ENXIO";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case EAGAIN: return "EAGAIN";
	case EPROGMISMATCH: return "EPROGMISMATCH";
	}
	fmt(buf, sizeof(buf), "errno %d", e);
	return buf;
}

/* ---- KTEST protocol ---------------------------------------------- */

#define	TP	"userland"

struct tc {
	const char	*name;
	void		(*fn)(struct tc *);
	int		status;		/* 0 passed, 1 failed, 2 skipped */
	char		reason[256];
};

/* Diagnostics of the running case. */
#define	so(t, ...)	do {						\
	char so_[400];							\
	fmt(so_, sizeof(so_), __VA_ARGS__);				\
	say("KTEST: tc-so " TP " %s %s", (t)->name, so_);		\
} while (0)

/* Fail the case (the first failure is the reason) unless ok. */
#define	check(t, ok, ...)	check_((t), (ok) ? 1 : 0, __LINE__, __VA_ARGS__)

static int __attribute__((format(printf, 4, 5)))
check_(struct tc *t, int ok, int line, const char *f, ...)
{
	__builtin_va_list ap;
	size_t n;

	if (ok)
		return 1;
	if (t->status != 1) {
		t->status = 1;
		n = fmt(t->reason, sizeof(t->reason), "init.c:%d: ", line);
		__builtin_va_start(ap, f);
		vfmt(t->reason + n, sizeof(t->reason) - n, f, ap);
		__builtin_va_end(ap);
	} else {
		char extra[256];

		__builtin_va_start(ap, f);
		vfmt(extra, sizeof(extra), f, ap);
		__builtin_va_end(ap);
		so(t, "also failed: init.c:%d: %s", line, extra);
	}
	return 0;
}

#define	skip(t, ...)	do {						\
	if ((t)->status == 0) {						\
		(t)->status = 2;					\
		fmt((t)->reason, sizeof((t)->reason), __VA_ARGS__);	\
	}								\
} while (0)

/* ---- helpers ------------------------------------------------------ */

static int ncpu = 1;

static int
mod_load(const char *path)
{
	modctl_load_t ml = { path, MODCTL_NO_PROP, NULL, 0 };
	int rv = sys_modctl(MODCTL_LOAD, &ml);

	return rv < 0 ? -rv : 0;
}

static int
mod_unload(const char *name)
{
	int rv = sys_modctl(MODCTL_UNLOAD, name);

	return rv < 0 ? -rv : 0;
}

/*
 * Is the module loaded (MODCTL_STAT)?  -1 if the call fails.  The
 * kernel copies out an int count, then the modstat_t array right after
 * it (unaligned), then the "required" strings.
 */
static int
mod_loaded(const char *name)
{
	static unsigned char buf[64 * 1024];
	struct iovec iov = { buf, sizeof(buf) };
	modstat_t ms;
	int i, n;

	if (sys_modctl(MODCTL_STAT, &iov) < 0)
		return -1;
	memcpy(&n, buf, sizeof(n));
	for (i = 0; i < n; i++) {
		size_t off = sizeof(n) + (size_t)i * sizeof(ms);

		if (off + sizeof(ms) > sizeof(buf))
			return -1;
		memcpy(&ms, buf + off, sizeof(ms));
		if (str_eq(ms.ms_name, name))
			return 1;
	}
	return 0;
}

static int
read_stats(struct ktmod_stats *ks)
{
	int fd = sys_open("/dev/ktctl", O_RDONLY);
	long n;

	if (fd < 0)
		return -fd;
	n = sys_read(fd, ks, sizeof(*ks));
	sys_close(fd);
	return n == (long)sizeof(*ks) ? 0 : n < 0 ? (int)-n : EINVAL;
}

static const char *
unit_path(char *buf, size_t size, int block, int unit)
{

	fmt(buf, size, "/dev/ktmod%s%d", block ? "b" : "", unit);
	return buf;
}

/* Exit status of a child from wait4()'s status word. */
#define	EXITED(st)	(((st) & 0x7f) == 0)
#define	EXITCODE(st)	(((st) >> 8) & 0xff)

/*
 * Wait up to ms milliseconds for pid; returns its status, or -1 if it
 * is still running (it is then killed with SIGKILL and reaped).
 */
static int
wait_child(int pid, long ms)
{
	long long deadline = now_us() + ms * 1000LL;
	int st = 0;

	for (;;) {
		int rv = sys_wait4(pid, &st, WNOHANG);

		if (rv == pid)
			return st;
		if (rv < 0 || now_us() > deadline)
			break;
		sleep_us(2000);
	}
	sys_kill(pid, 9);
	sys_wait4(pid, &st, 0);
	return -1;
}

/* ---- cases --------------------------------------------------------- */

static void
case_load_unload(struct tc *t)
{
	char path[32], buf[16];
	int fd, e, i;
	long n;

	for (i = 0; i < 2; i++) {
		e = mod_load("/stand/ktmod.kmod");
		if (!check(t, e == 0, "load ktmod.kmod: %s", errname(e)))
			return;
		check(t, mod_loaded("ktmod") == 1, "modstat does not list ktmod");
		fd = sys_open(unit_path(path, sizeof(path), 0, 1), O_RDONLY);
		if (check(t, fd >= 0, "open %s: %s", path, errname(-fd))) {
			n = sys_read(fd, buf, sizeof(buf));
			check(t, n == 6 && buf[0] == 'k', "read %s: %ld", path,
			    n);
			check(t, sys_close(fd) == 0, "close %s", path);
		}
		fd = sys_open(unit_path(path, sizeof(path), 1, 1), O_RDONLY);
		if (check(t, fd >= 0, "open %s: %s", path, errname(-fd)))
			check(t, sys_close(fd) == 0, "close %s", path);
		e = mod_unload("ktmod");
		check(t, e == 0, "unload ktmod: %s", errname(e));
		check(t, mod_loaded("ktmod") == 0, "ktmod still listed");
		fd = sys_open(unit_path(path, sizeof(path), 0, 1), O_RDONLY);
		check(t, fd == -ENXIO || fd == -ENODEV,
		    "open %s after unload: %s", path,
		    fd >= 0 ? "succeeded" : errname(-fd));
		if (fd >= 0)
			sys_close(fd);
	}
}

/*
 * Worker of the storm: for every token read from the token pipe, open
 * its own unit (character with a read, or block), then close it; at EOF
 * (the runner closed the pipe) write its counts to the result pipe and
 * exit.  The runner hands out tokens right before each unload, so that
 * opens race every unload, and stops handing them out until the unload
 * is done, so that unloads cannot be starved.
 */
struct wres {
	unsigned int	ok, enxio, enodev, other, badread, last_err;
};

static __attribute__((noreturn)) void
storm_worker(int unit, int tokfd, int resfd)
{
	struct wres r = { 0, 0, 0, 0, 0, 0 };
	char path[32], buf[16], c;
	unsigned int i;

	for (i = 0; sys_read(tokfd, &c, 1) == 1; i++) {
		int block = (i & 3) == 3;
		int fd = sys_open(unit_path(path, sizeof(path), block, unit),
		    O_RDONLY);

		if (fd >= 0) {
			r.ok++;
			if (!block && sys_read(fd, buf, sizeof(buf)) != 6)
				r.badread++;
			sys_close(fd);
		} else if (fd == -ENXIO)
			r.enxio++;
		else if (fd == -ENODEV)
			r.enodev++;
		else {
			r.other++;
			r.last_err = (unsigned int)-fd;
		}
	}
	sys_write(resfd, &r, sizeof(r));
	sys_exit(0);
}

#define	STORM_CYCLES	200
#define	STORM_MAXW	16
#define	STORM_UNLOAD_S	30	/* an unload that takes longer fails */

static void
case_storm(struct tc *t)
{
	static char tokens[2 * STORM_MAXW];
	struct ktmod_stats k0, k1;
	struct wres r, sum = { 0, 0, 0, 0, 0, 0 };
	int pids[STORM_MAXW], tok[2], res[2];
	int nw = 2 * ncpu > STORM_MAXW ? STORM_MAXW : 2 * ncpu;
	unsigned int cycles = 0, busy = 0, i;
	long long t0, deadline;
	int e, w, st, stuck = 0;

	if (!check(t, read_stats(&k0) == 0, "read /dev/ktctl"))
		return;
	if (!check(t, sys_pipe2(tok, O_CLOEXEC) == 0 &&
	    sys_pipe2(res, O_CLOEXEC) == 0, "pipe2"))
		return;
	for (w = 0; w < nw; w++) {
		pids[w] = sys_fork();
		if (pids[w] == 0) {
			sys_close(tok[1]);
			sys_close(res[0]);
			storm_worker(w % KTMOD_NUNIT, tok[0], res[1]);
		}
		if (!check(t, pids[w] > 0, "fork: %s", errname(-pids[w]))) {
			nw = w;
			break;
		}
	}
	sys_close(tok[0]);
	sys_close(res[1]);
	so(t, "%d worker processes (2 per vCPU), %d load/unload cycles",
	    nw, STORM_CYCLES);

	t0 = now_us();
	for (i = 0; i < STORM_CYCLES && t->status != 1; i++) {
		e = mod_load("/stand/ktmod.kmod");
		if (!check(t, e == 0, "cycle %u: load: %s", i, errname(e)))
			break;
		/* Two opens per worker, then unload while they run. */
		sys_write(tok[1], tokens, (size_t)(2 * nw));
		sleep_us((long)(i % 5) * 3000);
		deadline = now_us() + STORM_UNLOAD_S * 1000000LL;
		while ((e = mod_unload("ktmod")) == EBUSY &&
		    now_us() < deadline) {
			busy++;
			sleep_us(1000);
		}
		if (!check(t, e == 0, "cycle %u: unload: %s%s", i,
		    errname(e), e == EBUSY ? " for 30 s" : ""))
			break;
		cycles++;
		if (cycles % 50 == 0)
			so(t, "%u cycles, %lld ms", cycles,
			    (now_us() - t0) / 1000);
	}

	/* Stop the workers: EOF on the token pipe. */
	sys_close(tok[1]);
	for (w = 0; w < nw; w++) {
		st = wait_child(pids[w], 60000);
		if (st < 0 || !EXITED(st) || EXITCODE(st) != 0)
			stuck++;
	}
	while (sys_read(res[0], &r, sizeof(r)) == (long)sizeof(r)) {
		sum.ok += r.ok;
		sum.enxio += r.enxio;
		sum.enodev += r.enodev;
		sum.other += r.other;
		sum.badread += r.badread;
		if (r.other)
			sum.last_err = r.last_err;
	}
	sys_close(res[0]);
	if (mod_loaded("ktmod") == 1)
		mod_unload("ktmod");

	check(t, stuck == 0, "%d worker processes stuck or failed", stuck);
	check(t, read_stats(&k1) == 0, "read /dev/ktctl");
	so(t, "%u cycles in %lld ms; unload EBUSY %u times", cycles,
	    (now_us() - t0) / 1000, busy);
	so(t, "opens: %u ok, %u ENXIO, %u ENODEV, %u other (last %s),"
	    " %u bad reads", sum.ok, sum.enxio, sum.enodev, sum.other,
	    errname((int)sum.last_err), sum.badread);
	check(t, sum.other == 0, "%u opens failed with something other than"
	    " ENXIO/ENODEV (last: %s)", sum.other, errname((int)sum.last_err));
	check(t, sum.badread == 0, "%u reads returned the wrong length",
	    sum.badread);
	check(t, sum.ok > 0, "no open ever succeeded");
#define	DELTA(f)	(k1.f - k0.f)
	check(t, DELTA(ks_open_in) == DELTA(ks_open_out) &&
	    DELTA(ks_read_in) == DELTA(ks_read_out) &&
	    DELTA(ks_close_in) == DELTA(ks_close_out),
	    "calls in != calls out: open %u/%u read %u/%u close %u/%u",
	    DELTA(ks_open_in), DELTA(ks_open_out), DELTA(ks_read_in),
	    DELTA(ks_read_out), DELTA(ks_close_in), DELTA(ks_close_out));
	check(t, DELTA(ks_loads) == DELTA(ks_unloads) &&
	    DELTA(ks_unloads) == cycles, "kernel counted %u loads, %u"
	    " unloads for %u cycles", DELTA(ks_loads), DELTA(ks_unloads),
	    cycles);
	so(t, "driver: %u d_open, %u d_read, %u d_close, in == out",
	    DELTA(ks_open_in), DELTA(ks_read_in), DELTA(ks_close_in));
	so(t, "raced: %u of %u unloads went on with d_opens inside the driver;"
	    " %u d_opens were drained by devsw_detach and refused (ENXIO);"
	    " %u unloads refused (EBUSY) with a unit open",
	    DELTA(ks_unload_raced), cycles, DELTA(ks_opens_refused),
	    DELTA(ks_unload_busy));
	check(t, DELTA(ks_opens_refused) >= cycles / 4, "only %u d_opens"
	    " raced %u unloads: the case proves nothing",
	    DELTA(ks_opens_refused), cycles);
#undef DELTA
}

static void
case_held_open(struct tc *t)
{
	char path[32], c = 0;
	int hold[2], ready[2], pid, e, st;

	e = mod_load("/stand/ktmod.kmod");
	if (!check(t, e == 0, "load: %s", errname(e)))
		return;
	if (!check(t, sys_pipe2(hold, O_CLOEXEC) == 0 &&
	    sys_pipe2(ready, O_CLOEXEC) == 0, "pipe2"))
		return;
	pid = sys_fork();
	if (pid == 0) {
		int fd = sys_open(unit_path(path, sizeof(path), 0, 3),
		    O_RDONLY);

		c = fd >= 0 ? 'o' : 'x';
		sys_write(ready[1], &c, 1);
		sys_read(hold[0], &c, 1);	/* until the parent says */
		sys_exit(fd >= 0 && sys_close(fd) == 0 ? 0 : 1);
	}
	sys_close(ready[1]);
	sys_close(hold[0]);
	check(t, sys_read(ready[0], &c, 1) == 1 && c == 'o',
	    "the child could not open unit 3");
	e = mod_unload("ktmod");
	check(t, e == EBUSY, "unload with unit 3 open: %s, not EBUSY",
	    errname(e));
	check(t, mod_loaded("ktmod") == 1, "ktmod gone while open");
	so(t, "unload while a process holds the unit open: %s", errname(e));
	sys_write(hold[1], &c, 1);
	st = wait_child(pid, 30000);
	check(t, st >= 0 && EXITED(st) && EXITCODE(st) == 0,
	    "the child did not close cleanly (status %d)", st);
	e = mod_unload("ktmod");
	check(t, e == 0, "unload after the close: %s", errname(e));
	sys_close(hold[1]);
	sys_close(ready[0]);
}

static int kernel_rust;

static void
case_no_module_init(struct tc *t)
{
	int e = mod_load("/stand/ktmod_nomi.kmod");

	so(t, "modctl(MODCTL_LOAD, ktmod_nomi.kmod): %s", errname(e));
	if (e == 0) {
		int u = mod_unload("ktmod_nomi");

		so(t, "unload: %s", errname(u));
	}
	if (!kernel_rust) {
		skip(t, "C kernel: no seed API; stock loads a devsw without"
		    " d_localcount (load returned %s)", errname(e));
		return;
	}
	check(t, e == EINVAL, "load returned %s, not EINVAL", errname(e));
	check(t, mod_loaded("ktmod_nomi") == 0, "ktmod_nomi is loaded");
}

static void
case_stock_module(struct tc *t)
{
	int e = mod_load("/stand/ktmod_stock.kmod");

	so(t, "modctl(MODCTL_LOAD, ktmod_stock.kmod): %s", errname(e));
	if (e == 0)
		mod_unload("ktmod_stock");
	check(t, e == EPROGMISMATCH, "a module built against the unpatched"
	    " tree loaded or failed otherwise: %s, not EPROGMISMATCH",
	    errname(e));
}

/*
 * /etc/ktest/real-modules (mkimage.sh, from build-modules.sh's choice):
 * "name /stand/name.kmod [/dev/node ...]" per module, in load order (a
 * module another one requires comes first and may have no node).
 */
#define	REAL_MAXMOD	16
#define	REAL_MAXNODE	4

struct realmod {
	char	*name, *path;
	char	*node[REAL_MAXNODE];
	int	nnode;
};

/* Split the next line of *pp into words; returns their number. */
static int
next_line(char **pp, char **w, int maxw)
{
	char *p = *pp;
	int n = 0;

	while (*p != '\0' && *p != '\n') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		if (n < maxw)
			w[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n')
			p++;
		if (*p == ' ' || *p == '\t')
			*p++ = '\0';
	}
	if (*p == '\n')
		*p++ = '\0';
	*pp = p;
	return n;
}

static void
case_real_modules(struct tc *t)
{
	static char list[4096];
	struct realmod mods[REAL_MAXMOD];
	char *p, *w[2 + REAL_MAXNODE];
	int fd, n, i, j, k, round, e, nmod = 0, nopen = 0;
	long len;

	fd = sys_open("/etc/ktest/real-modules", O_RDONLY);
	if (!check(t, fd >= 0, "open /etc/ktest/real-modules: %s",
	    errname(-fd)))
		return;
	len = sys_read(fd, list, sizeof(list) - 1);
	sys_close(fd);
	if (!check(t, len > 0, "read /etc/ktest/real-modules"))
		return;
	list[len] = '\0';
	for (p = list; *p != '\0' && nmod < REAL_MAXMOD;) {
		n = next_line(&p, w, 2 + REAL_MAXNODE);
		if (n < 2 || *w[0] == '#')
			continue;
		mods[nmod].name = w[0];
		mods[nmod].path = w[1];
		mods[nmod].nnode = n - 2;
		for (j = 2; j < n; j++)
			mods[nmod].node[j - 2] = w[j];
		nopen += n > 2;
		nmod++;
	}

	/* Load all, open and close every node, unload all (reverse). */
	for (round = 0; round < 2 && t->status != 1; round++) {
		for (i = 0; i < nmod; i++) {
			e = mod_load(mods[i].path);
			if (!check(t, e == 0, "round %d: %s: load %s: %s",
			    round, mods[i].name, mods[i].path, errname(e))) {
				nmod = i;
				break;
			}
			check(t, mod_loaded(mods[i].name) == 1,
			    "%s: loaded but not in modstat", mods[i].name);
		}
		for (i = 0; i < nmod; i++) {
			for (j = 0; j < mods[i].nnode; j++) {
				for (k = 0; k < 3; k++) {
					fd = sys_open(mods[i].node[j],
					    O_RDONLY);
					if (!check(t, fd >= 0, "%s: open %s:"
					    " %s", mods[i].name,
					    mods[i].node[j], errname(-fd)))
						break;
					check(t, sys_close(fd) == 0,
					    "%s: close %s", mods[i].name,
					    mods[i].node[j]);
				}
			}
		}
		for (i = nmod - 1; i >= 0; i--) {
			e = mod_unload(mods[i].name);
			check(t, e == 0, "round %d: %s: unload: %s", round,
			    mods[i].name, errname(e));
		}
	}
	for (i = 0; i < nmod; i++) {
		char nodes[128];
		size_t off = 0;

		nodes[0] = '\0';
		for (j = 0; j < mods[i].nnode; j++)
			off += fmt(nodes + off, sizeof(nodes) - off, " %s",
			    mods[i].node[j]);
		if (mods[i].nnode == 0)
			so(t, "%s: loaded (required by the next), unloaded,"
			    " twice", mods[i].name);
		else
			so(t, "%s: loaded,%s opened and closed 3 times,"
			    " unloaded, twice", mods[i].name, nodes);
	}
	check(t, nopen >= 3, "only %d real modules with a device node",
	    nopen);
}

/*
 * Several processes open, use and close everyday devices, built-in
 * drivers without d_localcount, through the same lookup path.  (The
 * root's block device /dev/md0a is mounted, so opening it is EBUSY by
 * design; its character device is read instead.)
 */
static void
case_everyday_devices(struct tc *t)
{
	static const struct {
		const char	*path;
		int		flags;
		int		op;	/* 0 read, 1 write, -1 none */
	} devs[] = {
		{ "/dev/null", O_RDWR, 1 },
		{ "/dev/zero", O_RDONLY, 0 },
		{ "/dev/console", O_WRONLY, -1 },
		{ "/dev/rmd0a", O_RDONLY, 0 },
		{ "/dev/ktctl", O_RDONLY, 0 },
	};
	const int ndev = sizeof(devs) / sizeof(devs[0]);
	const int nproc = ncpu < 4 ? 4 : ncpu > 16 ? 16 : ncpu, iters = 400;
	int pids[16], p, bad = 0, st;
	long long t0 = now_us();

	for (p = 0; p < nproc; p++) {
		pids[p] = sys_fork();
		if (pids[p] == 0) {
			static char buf[512];
			int i, d, fd, fails = 0;
			long n;

			for (i = 0; i < iters; i++) {
				for (d = 0; d < ndev; d++) {
					const char *what = "open";

					fd = sys_open(devs[d].path,
					    devs[d].flags);
					n = fd;
					if (fd >= 0 && devs[d].op == 0) {
						what = "read";
						n = sys_read(fd, buf,
						    sizeof(buf));
					} else if (fd >= 0 && devs[d].op == 1) {
						what = "write";
						n = sys_write(fd, buf,
						    sizeof(buf));
					}
					if (fd >= 0 && n >= 0 &&
					    sys_close(fd) != 0)
						what = "close", n = -1;
					if (n > 0 || (n == 0 && fd >= 0 &&
					    devs[d].op == -1))
						continue;
					if (fails++ == 0)
						so(t, "pid %d: %s %s: %s", p,
						    what, devs[d].path,
						    n == 0 ? "0 bytes" :
						    errname((int)-n));
					if (fd >= 0 && n < 0)
						sys_close(fd);
				}
			}
			sys_exit(fails > 255 ? 255 : fails);
		}
		if (!check(t, pids[p] > 0, "fork: %s", errname(-pids[p])))
			break;
	}
	for (p--; p >= 0; p--) {
		st = wait_child(pids[p], 120000);
		if (st < 0 || !EXITED(st) || EXITCODE(st) != 0)
			bad++;
	}
	so(t, "%d processes x %d rounds of /dev/null, zero, console, rmd0a,"
	    " ktctl: %lld ms", nproc, iters, (now_us() - t0) / 1000);
	check(t, bad == 0, "%d processes saw failures", bad);
}

static struct tc cases[] = {
	{ "load_unload", case_load_unload, 0, "" },
	{ "storm", case_storm, 0, "" },
	{ "held_open", case_held_open, 0, "" },
	{ "no_module_init", case_no_module_init, 0, "" },
	{ "stock_module", case_stock_module, 0, "" },
	{ "real_modules", case_real_modules, 0, "" },
	{ "everyday_devices", case_everyday_devices, 0, "" },
};
#define	NCASES	(sizeof(cases) / sizeof(cases[0]))

int	main(void);

int
main(void)
{
	static const int mib_ncpu[] = { CTL_HW, HW_NCPU };
	static const int mib_clock[] = { CTL_KERN, KERN_CLOCKRATE };
	struct ktmod_stats ks;
	int clock[5] = { 0, 0, 0, 0, 0 }, fd, np = 0, nf = 0, ns = 0;
	size_t len;
	unsigned int i;
	long long t0;

	fd = sys_open("/dev/console", O_RDWR);
	if (fd >= 0) {
		sys_dup2(fd, 0);
		sys_dup2(fd, 1);
		sys_dup2(fd, 2);
		if (fd > 2)
			sys_close(fd);
	}
	len = sizeof(ncpu);
	sys_sysctl(mib_ncpu, 2, &ncpu, &len);
	len = sizeof(clock);
	sys_sysctl(mib_clock, 2, clock, &len);
	kernel_rust = read_stats(&ks) == 0 && ks.ks_rust;
	fd = sys_open("/dev/ktctl", O_WRONLY);
	if (fd >= 0)
		sayfd = fd;

	say("KTEST: begin version=1 ncpu=%d hz=%d session=userland", ncpu,
	    clock[0]);
	say("KTEST: impl %s", kernel_rust ? "rust" : "c");
	for (i = 0; i < NCASES; i++)
		say("KTEST: plan " TP " %s", cases[i].name);
	t0 = now_us();
	for (i = 0; i < NCASES; i++) {
		struct tc *t = &cases[i];
		static const char *const st[] = { "passed", "failed",
		    "skipped" };

		say("KTEST: tc-start " TP " %s", t->name);
		t->fn(t);
		say("KTEST: tc-end " TP " %s %s%s%s", t->name, st[t->status],
		    t->status ? " " : "", t->status ? t->reason : "");
		np += t->status == 0;
		nf += t->status == 1;
		ns += t->status == 2;
	}
	say("KTEST: done passed=%d failed=%d skipped=%d elapsed_ms=%lld", np,
	    nf, ns, (now_us() - t0) / 1000);
	sleep_us(200000);		/* let the console drain */
	sys_reboot(RB_AUTOBOOT | RB_NOSYNC);
	for (;;)
		sleep_us(1000000);
}
