/*	$NetBSD$	*/

/*-
 * ktest: in-kernel test runner for the localcount(9) test suite.
 *
 * The suite is a built-in MODULE_CLASS_MISC module.  Built-in MISC
 * modules are initialised by module_init_class(MODULE_CLASS_ANY) in
 * main(), after configure2() (every CPU is running, mp_online, cold ==
 * 0, clocks, interrupts, softints and ipi(9) work, kernel preemption is
 * enabled) and before config_finalize() and the root file system is
 * mounted.  The cases run directly in ktest_modcmd(MODULE_CMD_INIT),
 * i.e. in lwp0, which holds kernconfig_lock() there (module_init_class
 * takes it); that is what lets the modhook case call
 * MODULE_HOOK_SET/UNSET (which assert kernconfig_is_held()) with a
 * recursive kernconfig_lock().  While the cases run, lwp0 is made a
 * SCHED_RR LWP at KTEST_RUNNER_PRI, above the test's worker threads
 * (see ktest.h).
 *
 * A pseudo-device attach function would have been fine as well: it is
 * called from config_finalize(), also before mountroot with every CPU
 * running, slightly later (after deferred autoconfiguration) and with
 * the big kernel lock held.  The module needs no defpseudo and
 * pseudo-device lines, and the kernconfig lock it runs under makes the
 * module hook case straightforward.
 *
 * When every case has run the VM is ended.  On x86 (amd64, i386)
 * outb(0xf4, nfail ? 1 : 0) makes QEMU's "-device
 * isa-debug-exit,iobase=0xf4,iosize=0x04" exit with status
 * (v << 1) | 1, i.e. 1 = all passed, 3 = failures.  Elsewhere (aarch64:
 * QEMU's virt machine has no such port), and on x86 without that
 * device, kern_reboot(RB_NOSYNC) resets the machine (on aarch64 through
 * PSCI SYSTEM_RESET) and QEMU -no-reboot exits 0; the harness then reads
 * the verdict from the console alone.
 *
 * Console protocol (one printf(9) per line, parsed by
 * ktest_harness.py):
 *	KTEST: begin version=1 ncpu=N hz=H
 *	KTEST: impl rust|c
 *	KTEST: plan <tp> <tc>			(every case, up front)
 *	KTEST: tc-start <tp> <tc>
 *	KTEST: tc-so <tp> <tc> <text>		(measurements, diagnostics)
 *	KTEST: tc-end <tp> <tc> passed
 *	KTEST: tc-end <tp> <tc> failed <reason>
 *	KTEST: tc-end <tp> <tc> skipped <reason>
 *	KTEST: done passed=N failed=N skipped=N elapsed_ms=T
 *	    [next=userland]	(options KTEST_USERLAND: a second session,
 *				printed by /sbin/init, follows)
 * A case that runs longer than KTEST_TIMEOUT_S seconds gets
 * "tc-end <tp> <tc> failed timeout after N s" from a callout, and the
 * kernel panics.
 *
 * Building the suite into a kernel (the files live outside sys/, and
 * config(1) only accepts absolute paths through "prefix"); these are
 * the lines of ktest.conf with @KTESTDIR@ replaced by the absolute path
 * of this directory:
 *
 *	prefix	/abs/path/test-kernel/ktest
 *	file	ktest.c
 *	file	ktest_localcount.c
 *	file	ktest_modhook.c
 *	prefix
 *
 * "KTEST: impl" is decided by the RUST_LOCALCOUNT option of
 * opt_rust_localcount.h, which the project's patch declares in
 * sys/kern/files.kern with
 *	defflag opt_rust_localcount.h RUST_LOCALCOUNT
 * (on an unpatched tree put that defflag line into the kernel config).
 */

#include <sys/cdefs.h>
__KERNEL_RCSID(0, "$NetBSD$");

#ifdef _KERNEL_OPT
#include "opt_rust_localcount.h"
#endif

#include <sys/param.h>
#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/callout.h>
#include <sys/condvar.h>
#include <sys/cprng.h>
#include <sys/cpu.h>
#include <sys/errno.h>
#include <sys/kernel.h>
#include <sys/kmem.h>
#include <sys/kthread.h>
#include <sys/lwp.h>
#include <sys/module.h>
#include <sys/mutex.h>
#include <sys/proc.h>
#include <sys/reboot.h>
#include <sys/sched.h>
#include <sys/systm.h>
#include <sys/time.h>

#if !defined(KTEST_RUMP) && (defined(__x86_64__) || defined(__i386__))
#include <machine/pio.h>		/* outb: QEMU isa-debug-exit */
#endif

#include "ktest.h"

MODULE(MODULE_CLASS_MISC, ktest, NULL);

#define	KTEST_REASONLEN	200
#define	KTEST_SOLEN	200

struct ktest {
	const struct ktest_case	*kt_case;
	volatile u_int		kt_nfail;
	bool			kt_skipped;
	char			kt_reason[KTEST_REASONLEN];
};

/*
 * Every test case is a ktest_case in the "ktest_cases" link set, so a
 * test file only needs KTEST_CASE(tp, tc, fn) and no central list.
 */
__link_set_decl(ktest_cases, const struct ktest_case);

static u_int ktest_npass, ktest_nfail, ktest_nskip;
static callout_t ktest_wd;
static const struct ktest_case *volatile ktest_cur;

/*
 * ktest_reason_clean(buf)
 *
 *	Make buf fit on one protocol line: no newlines or carriage
 *	returns.  Any context.
 */
static void
ktest_reason_clean(char *buf)
{

	for (; *buf != '\0'; buf++) {
		if (*buf == '\n' || *buf == '\r' || *buf == '\t')
			*buf = ' ';
	}
}

/*
 * ktest_check(kt, ok, file, line, expr, fmt, ...)
 *
 *	Implementation of KTEST_CHECK/KTEST_CHECKF: if !ok, count a
 *	failure and, for the first one, record "file:line: expr not met"
 *	and the optional explanation as the failure reason.  Returns ok.
 *	Thread context; may be called from the case's worker threads.
 */
bool
ktest_check(struct ktest *kt, bool ok, const char *file, int line,
    const char *expr, const char *fmt, ...)
{
	const char *base;
	va_list ap;
	size_t n;

	if (__predict_true(ok))
		return true;
	if (atomic_inc_uint_nv(&kt->kt_nfail) != 1)
		return false;

	base = strrchr(file, '/');
	base = (base != NULL) ? base + 1 : file;
	n = snprintf(kt->kt_reason, sizeof(kt->kt_reason),
	    "%s:%d: %s not met", base, line, expr);
	if (fmt != NULL && n + 2 < sizeof(kt->kt_reason)) {
		strlcat(kt->kt_reason, ": ", sizeof(kt->kt_reason));
		n = strlen(kt->kt_reason);
		va_start(ap, fmt);
		vsnprintf(kt->kt_reason + n, sizeof(kt->kt_reason) - n, fmt,
		    ap);
		va_end(ap);
	}
	ktest_reason_clean(kt->kt_reason);
	membar_producer();
	return false;
}

/*
 * ktest_failed(kt)
 *
 *	True if a check of the current case has failed so far.
 */
bool
ktest_failed(const struct ktest *kt)
{

	return atomic_load_relaxed(&kt->kt_nfail) != 0;
}

/*
 * ktest_result(kt)
 *
 *	KTEST_FAIL if any check failed, else KTEST_PASS: the usual last
 *	statement of a case.
 */
int
ktest_result(const struct ktest *kt)
{

	return ktest_failed(kt) ? KTEST_FAIL : KTEST_PASS;
}

/*
 * ktest_skip(kt, fmt, ...)
 *
 *	Record a skip reason; returns KTEST_SKIP for "return ktest_skip()".
 */
int
ktest_skip(struct ktest *kt, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(kt->kt_reason, sizeof(kt->kt_reason), fmt, ap);
	va_end(ap);
	ktest_reason_clean(kt->kt_reason);
	kt->kt_skipped = true;
	return KTEST_SKIP;
}

/*
 * ktest_so(kt, fmt, ...)
 *
 *	Print one "KTEST: tc-so <tp> <tc> <text>" line (a measurement or
 *	a diagnostic of the current case).  Thread context.
 */
void
ktest_so(struct ktest *kt, const char *fmt, ...)
{
	char buf[KTEST_SOLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ktest_reason_clean(buf);
	/* One printf per line: kprintf serialises whole calls. */
	printf("KTEST: tc-so %s %s %s\n", kt->kt_case->kc_tp,
	    kt->kt_case->kc_tc, buf);
}

/*
 * ktest_now_us()
 *
 *	Monotonic time in microseconds (nanouptime).  Any context.
 */
uint64_t
ktest_now_us(void)
{
	struct timespec ts;

	nanouptime(&ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * ktest_deadline_ms(ms), ktest_expired(deadline)
 *
 *	Cheap tick-based deadlines for time-bounded loops.  Any context.
 */
int
ktest_deadline_ms(u_int ms)
{

	return getticks() + MAX(1, mstohz(ms));
}

bool
ktest_expired(int deadline)
{

	return getticks() - deadline >= 0;
}

/*
 * ktest_seed()
 *
 *	A non-zero seed for ktest_rand().  Thread or softint context.
 */
uint32_t
ktest_seed(void)
{

	return cprng_fast32() | 1;
}

/*
 * ktest_breathe(i)
 *
 *	To be called every 64 iterations or so of a spinning worker loop
 *	(i is the iteration count).  Lets higher-priority threads (the
 *	case's own thread, xcall threads) in with preempt_point(), and
 *	every 512 iterations yields to other runnable threads of the same
 *	priority, so that unbound workers queued behind a bound spinner
 *	are not starved (in a rump kernel: sleeps a tick instead, see
 *	below).  Thread context.
 */
void
ktest_breathe(u_int i)
{

#ifdef KTEST_RUMP
	/*
	 * A rump kernel never preempts, and a thread that yields its
	 * virtual CPU often takes it straight back before a thread waiting
	 * for that CPU (an xcall thread) wakes up; with more virtual CPUs
	 * than host cores that starves drains and pserialize_perform.
	 * Sleeping a tick now and then hands the CPU over for sure.
	 */
	if ((i & 511) == 0) {
		kpause("ktestbr", false, 1, NULL);
		return;
	}
#endif
	if ((i & 511) == 0)
		yield();
	else
		preempt_point();
}

/*
 * ktest_sleep_ms(ms)
 *
 *	Sleep about ms milliseconds (at least a tick).  Thread context.
 */
void
ktest_sleep_ms(u_int ms)
{

	kpause("ktestsl", false, MAX(1, mstohz(ms)), NULL);
}

/* How long ktest_job_start waits for the thread to start. */
#define	KTEST_JOB_START_MS	10000

static void
ktest_job_thread(void *arg, u_int idx)
{
	struct ktest_job *j = arg;

	atomic_store_release(&j->j_started, 1);
	j->j_t_start = ktest_now_us();
	(*j->j_fn)(j);
	j->j_t_done = ktest_now_us();
	atomic_store_release(&j->j_done, 1);
}

/*
 * ktest_job_start(j, name)
 *
 *	Run j->j_fn(j) in a new unbound kthread called name; return 0
 *	once it has started, or the error of spawning it.  Thread
 *	context; sleeps.
 */
int
ktest_job_start(struct ktest_job *j, const char *name)
{
	int error;

	j->j_tg = ktest_tg_create(name, 1);
	error = ktest_tg_spawn_unbound(j->j_tg, 1, ktest_job_thread, j);
	if (error == 0) {
		ktest_tg_start(j->j_tg);
		(void)ktest_wait_uint(&j->j_started, 1, KTEST_JOB_START_MS);
	}
	return error;
}

/*
 * ktest_job_join(j)
 *
 *	Wait for the job's thread to finish.  Thread context; sleeps.
 */
void
ktest_job_join(struct ktest_job *j)
{

	ktest_tg_join(j->j_tg);
	j->j_tg = NULL;
}

/*
 * ktest_wait_uint(p, val, ms)
 *
 *	Sleep a tick at a time until *p == val; give up after about ms
 *	milliseconds.  Returns 0 or ETIMEDOUT.  Thread context, sleeps.
 */
int
ktest_wait_uint(volatile u_int *p, u_int val, u_int ms)
{
	const int deadline = ktest_deadline_ms(ms);

	while (atomic_load_acquire(p) != val) {
		if (ktest_expired(deadline))
			return ETIMEDOUT;
		kpause("ktestw", false, 1, NULL);
	}
	return 0;
}

/* ------------------------------------------------------------------
 * Thread groups.
 */

struct ktest_thr {
	struct ktest_tg		*th_tg;
	lwp_t			*th_lwp;
	ktest_thread_fn_t	th_fn;
	void			*th_arg;
	u_int			th_idx;
};

struct ktest_tg {
	const char		*tg_name;
	kmutex_t		tg_lock;
	kcondvar_t		tg_cv;
	bool			tg_go;
	u_int			tg_max;
	u_int			tg_n;
	struct ktest_thr	*tg_thr;
};

/*
 * ktest_tg_create(name, max)
 *
 *	Create an empty thread group for up to max threads.  Thread
 *	context, sleeps (KM_SLEEP).
 */
struct ktest_tg *
ktest_tg_create(const char *name, u_int max)
{
	struct ktest_tg *tg;

	tg = kmem_zalloc(sizeof(*tg), KM_SLEEP);
	tg->tg_name = name;
	tg->tg_max = max;
	tg->tg_thr = kmem_zalloc(max * sizeof(tg->tg_thr[0]), KM_SLEEP);
	mutex_init(&tg->tg_lock, MUTEX_DEFAULT, IPL_NONE);
	cv_init(&tg->tg_cv, "ktesttg");
	return tg;
}

/*
 * ktest_tg_thread(cookie)
 *
 *	Body of every group thread: wait at the gate, run the test
 *	function, exit.  kthread, thread context.
 */
static void
ktest_tg_thread(void *cookie)
{
	struct ktest_thr *th = cookie;
	struct ktest_tg *tg = th->th_tg;

	mutex_enter(&tg->tg_lock);
	while (!tg->tg_go)
		cv_wait(&tg->tg_cv, &tg->tg_lock);
	mutex_exit(&tg->tg_lock);

	(*th->th_fn)(th->th_arg, th->th_idx);
	kthread_exit(0);
}

/*
 * ktest_tg_spawn(tg, ci, fn, arg)
 *
 *	Create one MP-safe, joinable kthread in tg running fn(arg, idx)
 *	once the gate opens; bound to ci, or unbound (free to migrate) if
 *	ci is NULL.  Returns 0 or an errno.  Thread context, sleeps.
 */
int
ktest_tg_spawn(struct ktest_tg *tg, struct cpu_info *ci,
    ktest_thread_fn_t fn, void *arg)
{
	struct ktest_thr *th;
	int error;

	if (tg->tg_n >= tg->tg_max)
		return E2BIG;
	th = &tg->tg_thr[tg->tg_n];
	th->th_tg = tg;
	th->th_fn = fn;
	th->th_arg = arg;
	th->th_idx = tg->tg_n;
	if (ci != NULL) {
		error = kthread_create(KTEST_PRI,
		    KTHREAD_MPSAFE | KTHREAD_MUSTJOIN, ci, ktest_tg_thread,
		    th, &th->th_lwp, "%s/%u.%u", tg->tg_name, th->th_idx,
		    cpu_index(ci));
	} else {
		error = kthread_create(KTEST_PRI,
		    KTHREAD_MPSAFE | KTHREAD_MUSTJOIN, NULL, ktest_tg_thread,
		    th, &th->th_lwp, "%s/%u", tg->tg_name, th->th_idx);
	}
	if (error == 0)
		tg->tg_n++;
	return error;
}

/*
 * ktest_tg_spawn_percpu(tg, fn, arg)
 *
 *	One thread bound to each CPU, in cpu_index() order.  Returns 0 or
 *	the first errno.  Thread context, sleeps.
 */
int
ktest_tg_spawn_percpu(struct ktest_tg *tg, ktest_thread_fn_t fn, void *arg)
{
	CPU_INFO_ITERATOR cii;
	struct cpu_info *ci;
	int error;

	for (CPU_INFO_FOREACH(cii, ci)) {
		error = ktest_tg_spawn(tg, ci, fn, arg);
		if (error)
			return error;
	}
	return 0;
}

/*
 * ktest_tg_spawn_unbound(tg, n, fn, arg)
 *
 *	n unbound threads.  Returns 0 or the first errno.  Thread
 *	context, sleeps.
 */
int
ktest_tg_spawn_unbound(struct ktest_tg *tg, u_int n, ktest_thread_fn_t fn,
    void *arg)
{
	u_int i;
	int error;

	for (i = 0; i < n; i++) {
		error = ktest_tg_spawn(tg, NULL, fn, arg);
		if (error)
			return error;
	}
	return 0;
}

/*
 * ktest_tg_count(tg)
 *
 *	Number of threads created so far.
 */
u_int
ktest_tg_count(const struct ktest_tg *tg)
{

	return tg->tg_n;
}

/*
 * ktest_tg_start(tg)
 *
 *	Open the gate: every thread of the group starts its function.
 *	Thread context.
 */
void
ktest_tg_start(struct ktest_tg *tg)
{

	mutex_enter(&tg->tg_lock);
	tg->tg_go = true;
	cv_broadcast(&tg->tg_cv);
	mutex_exit(&tg->tg_lock);
}

/*
 * ktest_tg_join(tg)
 *
 *	Open the gate if that has not happened yet, wait for every
 *	thread of the group to finish, and free the group.  Thread
 *	context, sleeps.
 */
void
ktest_tg_join(struct ktest_tg *tg)
{
	u_int i;

	ktest_tg_start(tg);
	for (i = 0; i < tg->tg_n; i++)
		kthread_join(tg->tg_thr[i].th_lwp);
	cv_destroy(&tg->tg_cv);
	mutex_destroy(&tg->tg_lock);
	kmem_free(tg->tg_thr, tg->tg_max * sizeof(tg->tg_thr[0]));
	kmem_free(tg, sizeof(*tg));
}

/* ------------------------------------------------------------------
 * Runner.
 */

/*
 * ktest_watchdog(arg)
 *
 *	Callout: the current case ran for KTEST_TIMEOUT_S seconds.  Report
 *	it as failed and panic (a hung drain cannot be recovered from).
 *	Softclock (soft interrupt) context.
 */
static void
ktest_watchdog(void *arg)
{
	const struct ktest_case *tc = ktest_cur;

	/* Single printf per line: kprintf serialises whole calls. */
	if (tc != NULL) {
		printf("KTEST: tc-end %s %s failed timeout after %d s\n",
		    tc->kc_tp, tc->kc_tc, KTEST_TIMEOUT_S);
	}
	panic("ktest: watchdog expired in %s:%s",
	    tc ? tc->kc_tp : "?", tc ? tc->kc_tc : "?");
}

/*
 * ktest_run_case(tc)
 *
 *	Run one case under the watchdog and print its tc-start, tc-end
 *	(and elapsed-time tc-so) lines.  Thread context, sleeps.
 */
static void
ktest_run_case(const struct ktest_case *tc)
{
	struct ktest *kt;
	uint64_t t0, t1;
	int rv;

	kt = kmem_zalloc(sizeof(*kt), KM_SLEEP);
	kt->kt_case = tc;
	ktest_cur = tc;
	printf("KTEST: tc-start %s %s\n", tc->kc_tp, tc->kc_tc);
	callout_schedule(&ktest_wd, KTEST_TIMEOUT_S * hz);
	t0 = ktest_now_us();
	rv = (*tc->kc_fn)(kt);
	t1 = ktest_now_us();
	callout_halt(&ktest_wd, NULL);
	ktest_cur = NULL;

	/* A failed check overrides whatever the case returned. */
	if (ktest_failed(kt))
		rv = KTEST_FAIL;
	printf("KTEST: tc-so %s %s elapsed_ms=%" PRIu64 "\n",
	    tc->kc_tp, tc->kc_tc, (t1 - t0) / 1000);
	switch (rv) {
	case KTEST_PASS:
		ktest_npass++;
		printf("KTEST: tc-end %s %s passed\n", tc->kc_tp, tc->kc_tc);
		break;
	case KTEST_SKIP:
		ktest_nskip++;
		printf("KTEST: tc-end %s %s skipped %s\n", tc->kc_tp,
		    tc->kc_tc, kt->kt_reason[0] ? kt->kt_reason : "-");
		break;
	default:
		ktest_nfail++;
		printf("KTEST: tc-end %s %s failed %s\n", tc->kc_tp,
		    tc->kc_tc, kt->kt_reason[0] ? kt->kt_reason : "-");
		break;
	}
	kmem_free(kt, sizeof(*kt));
}

/*
 * ktest_setsched(class, pri, oclassp, opri)
 *
 *	Change the scheduling class and priority of the current LWP
 *	(as sched_setparam(2) does), returning the old ones.  Thread
 *	context.
 */
static void
ktest_setsched(int class, pri_t pri, int *oclassp, pri_t *oprip)
{
	struct lwp *l = curlwp;

	mutex_enter(l->l_proc->p_lock);
	lwp_lock(l);
	if (oclassp != NULL)
		*oclassp = l->l_class;
	if (oprip != NULL)
		*oprip = l->l_priority;
	l->l_class = class;
	lwp_changepri(l, pri);
	lwp_unlock(l);
	mutex_exit(l->l_proc->p_lock);
}

/*
 * ktest_run_all()
 *
 *	Announce and run every registered case, print the summary and
 *	end the VM.  Does not return (unless both the QEMU exit port and
 *	the reboot fail), except with options KTEST_USERLAND: then it
 *	attaches /dev/ktctl and returns, and the boot goes on to the
 *	userland suite.  Thread context (lwp0 in main()), kernconfig
 *	lock held by the caller.
 */
static void
ktest_run_all(void)
{
	const struct ktest_case * const *tcp;
	uint64_t t0;
	int nlocks, oclass;
	pri_t opri;
#ifdef KTEST_USERLAND
	int error;
#endif

	/* Run the cases without the big lock, should lwp0 hold it. */
	KERNEL_UNLOCK_ALL(NULL, &nlocks);
	/* ... and above the workers (see KTEST_RUNNER_PRI). */
	ktest_setsched(SCHED_RR, KTEST_RUNNER_PRI, &oclass, &opri);

	printf("KTEST: begin version=1 ncpu=%u hz=%d\n", ncpu, hz);
#ifdef RUST_LOCALCOUNT
	printf("KTEST: impl rust\n");
#else
	printf("KTEST: impl c\n");
#endif
	callout_init(&ktest_wd, CALLOUT_MPSAFE);
	callout_setfunc(&ktest_wd, ktest_watchdog, NULL);

	__link_set_foreach(tcp, ktest_cases)
		printf("KTEST: plan %s %s\n", (*tcp)->kc_tp, (*tcp)->kc_tc);

	t0 = ktest_now_us();
	__link_set_foreach(tcp, ktest_cases)
		ktest_run_case(*tcp);
	ktest_setsched(oclass, opri, NULL, NULL);

#ifdef KTEST_USERLAND
	/*
	 * The userland suite follows: the boot goes on to the md(4) root
	 * and test-kernel/userland's /sbin/init, which prints its own
	 * KTEST session and reboots.
	 */
	error = ktest_userland_attach();
	printf("KTEST: done passed=%u failed=%u skipped=%u elapsed_ms=%"
	    PRIu64 " next=userland%s\n", ktest_npass, ktest_nfail,
	    ktest_nskip, (ktest_now_us() - t0) / 1000,
	    error ? " error=ktctl_attach_failed" : "");
	KERNEL_LOCK(nlocks, NULL);
	return;
#else
	printf("KTEST: done passed=%u failed=%u skipped=%u elapsed_ms=%"
	    PRIu64 "\n", ktest_npass, ktest_nfail, ktest_nskip,
	    (ktest_now_us() - t0) / 1000);
#endif

#ifdef KTEST_RUMP
	/* A rump kernel: back to rump_init() and the program that called it. */
	KERNEL_LOCK(nlocks, NULL);
#else
	delay(100000);				/* let the UART drain */
#if defined(__x86_64__) || defined(__i386__)
	outb(0xf4, ktest_nfail ? 1 : 0);	/* QEMU isa-debug-exit */
	delay(100000);
#endif
	kern_reboot(RB_NOSYNC, NULL);		/* reset (aarch64: PSCI) */
	KERNEL_LOCK(nlocks, NULL);
#endif
}

/*
 * ktest_modcmd(cmd, arg)
 *
 *	Module control.  MODULE_CMD_INIT of the built-in module runs the
 *	whole suite and ends the VM.  Thread context (main()), kernconfig
 *	lock held.
 */
static int
ktest_modcmd(modcmd_t cmd, void *arg)
{

	switch (cmd) {
	case MODULE_CMD_INIT:
		ktest_run_all();
		return 0;
	case MODULE_CMD_FINI:
		return EBUSY;
	default:
		return ENOTTY;
	}
}
