/*	$NetBSD$	*/

/*-
 * ktest_host.h: the KTEST console protocol (test-kernel/ktest/ktest.c)
 * for host programs that test a rump kernel through its system calls
 * (ktmod_rump.c, pud_rump.c), read by ktest_rump_run.py like the
 * in-kernel suite's output.
 *
 * A program defines its cases as a struct ktest_host_tc array, reports
 * from them with so(), check() and skip(), and calls ktest_host_run()
 * after rump_init().  Every function is static (KTEST_HOST_FN): each
 * program includes this header once, after <rump/rump.h> and
 * <rump/rump_syscalls.h>, with _GNU_SOURCE defined (RTLD_DEFAULT) and
 * <dlfcn.h>, <stdarg.h>, <stdio.h>, <string.h>, <time.h> included.
 */

#ifndef _KTEST_HOST_H_
#define _KTEST_HOST_H_

/* <sys/sysctl.h>: the rump kernel's hw.ncpu and kern.clockrate. */
#define	KTEST_HOST_CTL_KERN		1
#define	KTEST_HOST_KERN_CLOCKRATE	12
#define	KTEST_HOST_CTL_HW		6
#define	KTEST_HOST_HW_NCPU		3

/* A test case: its function, and the verdict it reports. */
struct ktest_host_tc {
	const char	*name;
	void		(*fn)(struct ktest_host_tc *);
	int		status;		/* 0 passed, 1 failed, 2 skipped */
	char		reason[256];
};

/* Functions of this header: a program need not use every one. */
#define	KTEST_HOST_FN	static __attribute__((__unused__))

/* The test program (tp) of the running cases, for the protocol lines. */
static const char *ktest_host_tp = "?";

/*
 * errname(e)
 *
 *	The name of NetBSD's errno value e (as the rump kernel returns
 *	it), for messages.  Not reentrant for unknown values.
 */
KTEST_HOST_FN const char *
errname(int e)
{
	static __thread char buf[32];

	switch (e) {
	case 0: return "success";
	case RUMP_ENOENT: return "ENOENT";
	case RUMP_ENXIO: return "ENXIO";
	case RUMP_EBUSY: return "EBUSY";
	case RUMP_EEXIST: return "EEXIST";
	case RUMP_ENODEV: return "ENODEV";
	case RUMP_EINVAL: return "EINVAL";
	case RUMP_EAGAIN: return "EAGAIN";
	case RUMP_EPROGMISMATCH: return "EPROGMISMATCH";
	default:
		snprintf(buf, sizeof(buf), "error %d", e);
		return buf;
	}
}

/* The host's monotonic clock, in microseconds. */
KTEST_HOST_FN long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* A "tc-so" line: what the running case saw. */
KTEST_HOST_FN void __attribute__((format(printf, 2, 3)))
so(struct ktest_host_tc *t, const char *f, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	printf("KTEST: tc-so %s %s %s\n", ktest_host_tp, t->name, buf);
}

/*
 * check(t, ok, fmt, ...): fail the case unless ok; the first failure
 * is its reason (file:line: message), later ones are tc-so lines.
 * Returns ok.
 */
#define	check(t, ok, ...)						\
	ktest_host_check((t), (ok) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

KTEST_HOST_FN int __attribute__((format(printf, 5, 6)))
ktest_host_check(struct ktest_host_tc *t, int ok, const char *file,
    int line, const char *f, ...)
{
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	char extra[256];
	va_list ap;
	int n;

	if (ok)
		return 1;
	va_start(ap, f);
	if (t->status != 1) {
		t->status = 1;
		n = snprintf(t->reason, sizeof(t->reason), "%s:%d: ", base,
		    line);
		if (n < 0 || (size_t)n >= sizeof(t->reason))
			n = 0;
		vsnprintf(t->reason + n, sizeof(t->reason) - (size_t)n, f, ap);
	} else {
		vsnprintf(extra, sizeof(extra), f, ap);
		so(t, "also failed: %s:%d: %s", base, line, extra);
	}
	va_end(ap);
	return 0;
}

/* Skip the case with a reason (unless it has failed already). */
KTEST_HOST_FN void __attribute__((format(printf, 2, 3)))
skip(struct ktest_host_tc *t, const char *f, ...)
{
	va_list ap;

	if (t->status != 0)
		return;
	t->status = 2;
	va_start(ap, f);
	vsnprintf(t->reason, sizeof(t->reason), f, ap);
	va_end(ap);
}

/*
 * ktest_host_sysinfo(ncpu, hz, rust)
 *
 *	The rump kernel's number of virtual CPUs and clock rate (sysctl),
 *	and whether its librump has the Rust localcount (the marker symbol
 *	that ktest-rump.sh checks too); hz and rust may be NULL.  After
 *	rump_init().
 */
KTEST_HOST_FN void
ktest_host_sysinfo(int *ncpu, int *hz, int *rust)
{
	static const int mib_ncpu[] = { KTEST_HOST_CTL_HW, KTEST_HOST_HW_NCPU };
	static const int mib_clock[] = { KTEST_HOST_CTL_KERN,
	    KTEST_HOST_KERN_CLOCKRATE };
	int clock[5] = { 0, 0, 0, 0, 0 };
	size_t len;

	len = sizeof(*ncpu);
	if (rump_sys___sysctl(mib_ncpu, 2, ncpu, &len, NULL, 0) != 0)
		*ncpu = 1;
	len = sizeof(clock);
	rump_sys___sysctl(mib_clock, 2, clock, &len, NULL, 0);
	if (hz != NULL)
		*hz = clock[0];
	if (rust != NULL)
		*rust = dlsym(RTLD_DEFAULT,
		    "rumpns_localcount_rust_built_debug") != NULL ||
		    dlsym(RTLD_DEFAULT,
		    "rumpns_localcount_rust_built_nodebug") != NULL;
}

/*
 * ktest_host_run(session, tp, cases, ncases, setup_error)
 *
 *	One KTEST session: begin (with the rump kernel's ncpu and hz),
 *	impl, a plan line per case, then every case between tc-start and
 *	tc-end -- or, if setup_error is not NULL, every case failed with
 *	it -- and done.  Returns how many cases failed.
 */
KTEST_HOST_FN int
ktest_host_run(const char *session, const char *tp,
    struct ktest_host_tc *cases, size_t ncases, const char *setup_error)
{
	static const char *const st[] = { "passed", "failed", "skipped" };
	int ncpu, hz, rust, np = 0, nf = 0, ns = 0;
	long long t0;
	size_t i;

	ktest_host_tp = tp;
	ktest_host_sysinfo(&ncpu, &hz, &rust);
	printf("KTEST: begin version=1 ncpu=%d hz=%d session=%s\n", ncpu, hz,
	    session);
	printf("KTEST: impl %s\n", rust ? "rust" : "c");
	for (i = 0; i < ncases; i++)
		printf("KTEST: plan %s %s\n", tp, cases[i].name);
	t0 = now_us();
	for (i = 0; i < ncases; i++) {
		struct ktest_host_tc *t = &cases[i];

		printf("KTEST: tc-start %s %s\n", tp, t->name);
		if (setup_error != NULL)
			check(t, 0, "setup: %s", setup_error);
		else
			t->fn(t);
		printf("KTEST: tc-end %s %s %s%s%s\n", tp, t->name,
		    st[t->status], t->status ? " " : "",
		    t->status ? t->reason : "");
		np += t->status == 0;
		nf += t->status == 1;
		ns += t->status == 2;
	}
	printf("KTEST: done passed=%d failed=%d skipped=%d elapsed_ms=%lld\n",
	    np, nf, ns, (now_us() - t0) / 1000);
	return nf;
}

#endif	/* _KTEST_HOST_H_ */
