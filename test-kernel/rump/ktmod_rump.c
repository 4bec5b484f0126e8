/*	$NetBSD$	*/

/*-
 * ktmod_rump: the userland suite's module cases (test-kernel/userland/
 * init.c) against a rump kernel, on the host's real cores: a real .kmod
 * (test-kernel/modules/ktmod/ktmod.c, built for the rump kernel by
 * ktest-rump.sh) is loaded at run time with modctl(2) from the rump
 * kernel's file system -- kobj(9) links it, renaming its symbols into
 * the rump kernel's rumpns_ namespace, and module_load() runs it as
 * MODULE_SOURCE_FILESYS, exactly as a module that modload(8) loads into
 * a NetBSD kernel -- while host threads open, read and close its
 * devices through the rump kernel's specfs and cdev_open/bdev_open.
 *
 * Unlike the rump components, which are built-in modules
 * (MODULE_SOURCE_KERNEL), such a module falls under the seed's rule:
 * a RUST_LOCALCOUNT kernel refuses its devsw without d_localcount
 * (EINVAL).
 *
 * Cases (tp "rump_module"):
 *	load_unload	ktmod: load, open/read/close, unload, reload
 *	storm		2 host threads per virtual CPU open/read/close
 *			ktmod's units while it is loaded and unloaded
 *			STORM_CYCLES times
 *	held_open	unload while a unit is open: EBUSY; after the
 *			close it unloads
 *	no_module_init	a module whose devsws lack d_localcount: EINVAL on
 *			the Rust rump kernel (skipped on the C one, saying
 *			what stock does)
 *	stock_module	a module built against the unpatched tree:
 *			EPROGMISMATCH
 *
 * Output: the KTEST console protocol (test-kernel/ktest/ktest.c) on
 * standard output, read by ktest_rump_run.py.  Usage:
 *	ktmod_rump [KMODDIR]
 * KMODDIR (default KTMOD_KMODDIR, which ktest-rump.sh defines) holds ktmod.kmod, ktmod_nomi.kmod and ktmod_stock.kmod.  The
 * number of virtual CPUs is the rump kernel's RUMP_NCPU.  Exit status 0
 * after "KTEST: done", 2 if the rump kernel did not start.
 */

#define	_GNU_SOURCE		/* RTLD_DEFAULT */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>		/* idtype_t, for <rump/rump_syscalls.h> */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rump/rump.h>
#include <rump/rump_syscalls.h>

#include "ktest_host.h"
#include "ktmod.h"

/*
 * The module's counters: ktmod.c increments ktmod_stats, which a NetBSD
 * test kernel defines (ktest_userland.c).  Here the program defines it
 * in the rump kernel's namespace and exports it (-Wl,--export-dynamic),
 * so that the rump kernel's symbol table, which rump_init() builds from
 * the program and its rump libraries, resolves the module's reference.
 */
struct ktmod_stats rumpns_ktmod_stats;

/*
 * <rump/rumpdefs.h> has NetBSD's errno values (as the rump kernel
 * returns them), O_* and modctl(2)'s commands and modctl_load_t, but not
 * <sys/module.h>'s flags.
 */
#define	NB_MODCTL_NO_PROP	0x2

/* NetBSD's makedev() (<sys/types.h>). */
#define	NB_MAKEDEV(x, y)	((uint64_t)(				\
	(((uint64_t)(x) << 8) & 0x000fff00) |				\
	(((uint64_t)(y) << 12) & 0xfff00000) |				\
	(((uint64_t)(y) << 0) & 0x000000ff)))

static const char *kmoddir;
static int ncpu = 1;
static int kernel_rust;

/* Sleep on the host (no virtual CPU held). */
static void
sleep_us(long us)
{

	if (us > 0)
		usleep((useconds_t)us);
}

/* ---- the rump kernel ------------------------------------------------ */

/* Load /stand/NAME.kmod; 0 or NetBSD's errno. */
static int
mod_load(const char *name)
{
	char path[64];
	struct rump_modctl_load ml;

	snprintf(path, sizeof(path), "/stand/%s.kmod", name);
	ml.ml_filename = path;
	ml.ml_flags = NB_MODCTL_NO_PROP;
	ml.ml_props = NULL;
	ml.ml_propslen = 0;
	return rump_sys_modctl(RUMP_MODCTL_LOAD, &ml) == 0 ? 0 : errno;
}

/* Unload module NAME; 0 or NetBSD's errno (ENOENT: not loaded). */
static int
mod_unload(const char *name)
{

	return rump_sys_modctl(RUMP_MODCTL_UNLOAD, (void *)(uintptr_t)name) == 0 ?
	    0 : errno;
}

static const char *
unit_path(char *buf, size_t size, int block, int unit)
{

	snprintf(buf, size, "/dev/ktmod%s%d", block ? "b" : "", unit);
	return buf;
}

/* ---- cases ---------------------------------------------------------- */

static void
case_load_unload(struct ktest_host_tc *t)
{
	char path[32], buf[16];
	int fd, e, i;
	ssize_t n;

	for (i = 0; i < 2; i++) {
		e = mod_load("ktmod");
		if (!check(t, e == 0, "load ktmod.kmod: %s", errname(e)))
			return;
		fd = rump_sys_open(unit_path(path, sizeof(path), 0, 1),
		    RUMP_O_RDONLY);
		if (check(t, fd >= 0, "open %s: %s", path, errname(errno))) {
			n = rump_sys_read(fd, buf, sizeof(buf));
			check(t, n == 6 && buf[0] == 'k', "read %s: %zd", path,
			    n);
			check(t, rump_sys_close(fd) == 0, "close %s", path);
		}
		fd = rump_sys_open(unit_path(path, sizeof(path), 1, 1),
		    RUMP_O_RDONLY);
		if (check(t, fd >= 0, "open %s: %s", path, errname(errno)))
			check(t, rump_sys_close(fd) == 0, "close %s", path);
		e = mod_unload("ktmod");
		check(t, e == 0, "unload ktmod: %s", errname(e));
		e = mod_unload("ktmod");
		check(t, e == RUMP_ENOENT, "second unload: %s, not ENOENT",
		    errname(e));
		fd = rump_sys_open(unit_path(path, sizeof(path), 0, 1),
		    RUMP_O_RDONLY);
		e = fd >= 0 ? 0 : errno;
		check(t, e == RUMP_ENXIO || e == RUMP_ENODEV,
		    "open %s after unload: %s", path,
		    fd >= 0 ? "succeeded" : errname(e));
		if (fd >= 0)
			rump_sys_close(fd);
	}
	so(t, "loaded, used and unloaded twice from /stand/ktmod.kmod");
}

/*
 * Worker of the storm: for every token read from the token pipe, open
 * its own unit (character with a read, or block), then close it; at EOF
 * (the runner closed the pipe) it returns its counts.  The runner hands
 * out tokens right before each unload, so that opens race every unload,
 * and none while the unload goes on, so that unloads are not starved.
 */
struct worker {
	pthread_t	thread;
	int		unit;
	int		tokfd;
	unsigned int	ok, enxio, enodev, other, badread, last_err;
};

static void *
storm_worker(void *arg)
{
	struct worker *w = arg;
	char path[32], buf[16], c;
	unsigned int i;

	for (i = 0; read(w->tokfd, &c, 1) == 1; i++) {
		int block = (i & 3) == 3;
		int fd = rump_sys_open(unit_path(path, sizeof(path), block,
		    w->unit), RUMP_O_RDONLY);
		int e = fd >= 0 ? 0 : errno;

		if (fd >= 0) {
			w->ok++;
			if (!block && rump_sys_read(fd, buf, sizeof(buf)) != 6)
				w->badread++;
			rump_sys_close(fd);
		} else if (e == RUMP_ENXIO)
			w->enxio++;
		else if (e == RUMP_ENODEV)
			w->enodev++;
		else {
			w->other++;
			w->last_err = (unsigned int)e;
		}
	}
	return NULL;
}

#define	STORM_CYCLES	200
#define	STORM_MAXW	16
#define	STORM_UNLOAD_S	30	/* an unload that takes longer fails */

static void
case_storm(struct ktest_host_tc *t)
{
	static char tokens[2 * STORM_MAXW];
	static struct worker ws[STORM_MAXW];
	struct ktmod_stats k0, k1;
	struct worker sum;
	int tok[2];
	int nw = 2 * ncpu > STORM_MAXW ? STORM_MAXW : 2 * ncpu;
	unsigned int cycles = 0, busy = 0, i;
	long long t0, deadline;
	int e, w;

	k0 = rumpns_ktmod_stats;
	if (!check(t, pipe(tok) == 0, "pipe: %s", strerror(errno)))
		return;
	for (w = 0; w < nw; w++) {
		memset(&ws[w], 0, sizeof(ws[w]));
		ws[w].unit = w % KTMOD_NUNIT;
		ws[w].tokfd = tok[0];
		e = pthread_create(&ws[w].thread, NULL, storm_worker, &ws[w]);
		if (!check(t, e == 0, "pthread_create: %s", strerror(e))) {
			nw = w;
			break;
		}
	}
	so(t, "%d host threads (2 per vCPU), %d load/unload cycles", nw,
	    STORM_CYCLES);

	t0 = now_us();
	for (i = 0; i < STORM_CYCLES && t->status != 1; i++) {
		e = mod_load("ktmod");
		if (!check(t, e == 0, "cycle %u: load: %s", i, errname(e)))
			break;
		/* Two opens per worker, then unload while they run. */
		if (!check(t, write(tok[1], tokens, (size_t)(2 * nw)) ==
		    2 * nw, "write tokens: %s", strerror(errno)))
			break;
		sleep_us((long)(i % 5) * 3000);
		deadline = now_us() + STORM_UNLOAD_S * 1000000LL;
		while ((e = mod_unload("ktmod")) == RUMP_EBUSY &&
		    now_us() < deadline) {
			busy++;
			sleep_us(1000);
		}
		if (!check(t, e == 0, "cycle %u: unload: %s%s", i,
		    errname(e), e == RUMP_EBUSY ? " for 30 s" : ""))
			break;
		cycles++;
		if (cycles % 50 == 0)
			so(t, "%u cycles, %lld ms", cycles,
			    (now_us() - t0) / 1000);
	}

	/* Stop the workers: EOF on the token pipe. */
	close(tok[1]);
	memset(&sum, 0, sizeof(sum));
	for (w = 0; w < nw; w++) {
		pthread_join(ws[w].thread, NULL);
		sum.ok += ws[w].ok;
		sum.enxio += ws[w].enxio;
		sum.enodev += ws[w].enodev;
		sum.other += ws[w].other;
		sum.badread += ws[w].badread;
		if (ws[w].other)
			sum.last_err = ws[w].last_err;
	}
	close(tok[0]);
	if (mod_unload("ktmod") == 0)
		so(t, "ktmod was still loaded: unloaded");

	k1 = rumpns_ktmod_stats;
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
	    DELTA(ks_unloads) == cycles, "the module counted %u loads, %u"
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
case_held_open(struct ktest_host_tc *t)
{
	char path[32];
	int fd, e;

	e = mod_load("ktmod");
	if (!check(t, e == 0, "load: %s", errname(e)))
		return;
	fd = rump_sys_open(unit_path(path, sizeof(path), 0, 3), RUMP_O_RDONLY);
	check(t, fd >= 0, "open %s: %s", path, errname(errno));
	e = mod_unload("ktmod");
	check(t, e == RUMP_EBUSY, "unload with unit 3 open: %s, not EBUSY",
	    errname(e));
	so(t, "unload while the unit is open: %s", errname(e));
	if (fd >= 0)
		check(t, rump_sys_close(fd) == 0, "close %s: %s", path,
		    errname(errno));
	e = mod_unload("ktmod");
	check(t, e == 0, "unload after the close: %s", errname(e));
}

static void
case_no_module_init(struct ktest_host_tc *t)
{
	int e = mod_load("ktmod_nomi");

	so(t, "modctl(MODCTL_LOAD, ktmod_nomi.kmod): %s", errname(e));
	if (e == 0)
		so(t, "unload: %s", errname(mod_unload("ktmod_nomi")));
	if (!kernel_rust) {
		skip(t, "C rump kernel: no seed API; stock loads a devsw"
		    " without d_localcount (load returned %s)", errname(e));
		return;
	}
	check(t, e == RUMP_EINVAL, "load returned %s, not EINVAL", errname(e));
	check(t, mod_unload("ktmod_nomi") == RUMP_ENOENT,
	    "ktmod_nomi is loaded");
}

static void
case_stock_module(struct ktest_host_tc *t)
{
	int e = mod_load("ktmod_stock");

	so(t, "modctl(MODCTL_LOAD, ktmod_stock.kmod): %s", errname(e));
	if (e == 0)
		mod_unload("ktmod_stock");
	check(t, e == RUMP_EPROGMISMATCH, "a module built against the unpatched"
	    " tree loaded or failed otherwise: %s, not EPROGMISMATCH",
	    errname(e));
}

static struct ktest_host_tc cases[] = {
	{ "load_unload", case_load_unload, 0, "" },
	{ "storm", case_storm, 0, "" },
	{ "held_open", case_held_open, 0, "" },
	{ "no_module_init", case_no_module_init, 0, "" },
	{ "stock_module", case_stock_module, 0, "" },
};
#define	NCASES	(sizeof(cases) / sizeof(cases[0]))

/*
 * setup()
 *
 *	The rump kernel's /stand/NAME.kmod (etfs(9) files backed by
 *	KMODDIR/NAME.kmod) and /dev/ktmod* nodes at ktmod's fixed majors.
 *	0 or a message.
 */
static const char *
setup(void)
{
	static const char *const kmods[] = { "ktmod", "ktmod_nomi",
	    "ktmod_stock" };
	static char msg[256];
	char path[64], host[4096];
	unsigned int i;
	int u, b;

	if (rump_sys_mkdir("/stand", 0755) != 0 && errno != EEXIST)
		return "mkdir /stand";
	if (rump_sys_mkdir("/dev", 0755) != 0 && errno != EEXIST)
		return "mkdir /dev";
	for (i = 0; i < sizeof(kmods) / sizeof(kmods[0]); i++) {
		snprintf(path, sizeof(path), "/stand/%s.kmod", kmods[i]);
		snprintf(host, sizeof(host), "%s/%s.kmod", kmoddir, kmods[i]);
		if (access(host, R_OK) != 0) {
			snprintf(msg, sizeof(msg), "%.200s: %s", host,
			    strerror(errno));
			return msg;
		}
		if (rump_pub_etfs_register(path, host, RUMP_ETFS_REG) != 0) {
			snprintf(msg, sizeof(msg), "etfs %s", path);
			return msg;
		}
	}
	for (u = 0; u < KTMOD_NUNIT; u++) {
		for (b = 0; b < 2; b++) {
			unit_path(path, sizeof(path), b, u);
			if (rump_sys_mknod(path, (b ? S_IFBLK : S_IFCHR) | 0600,
			    NB_MAKEDEV(b ? KTMOD_BMAJOR : KTMOD_CMAJOR, u)) != 0) {
				snprintf(msg, sizeof(msg), "mknod %s: %s",
				    path, errname(errno));
				return msg;
			}
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *msg;
	int error;

	if (argc > 2) {
		fprintf(stderr, "usage: ktmod_rump [KMODDIR]\n");
		return 2;
	}
	kmoddir = argc == 2 ? argv[1] : KTMOD_KMODDIR;
	setvbuf(stdout, NULL, _IOLBF, 0);
	error = rump_init();
	if (error != 0) {
		fprintf(stderr, "ktmod_rump: rump_init: %s\n", strerror(error));
		return 2;
	}
	ktest_host_sysinfo(&ncpu, NULL, &kernel_rust);
	msg = setup();
	ktest_host_run("rump_module", "rump_module", cases, NCASES, msg);
	return 0;
}
