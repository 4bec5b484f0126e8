/*	$NetBSD$	*/

/*-
 * In-kernel test suite for localcount(9) and its users.
 *
 * Interface between the runner (ktest.c) and the test case files
 * (ktest_*.c).  See ktest.c for the console protocol and for the
 * kernel configuration lines needed to build the suite.
 */

#ifndef _KTEST_KTEST_H_
#define _KTEST_KTEST_H_

#include <sys/cdefs.h>
#include <sys/types.h>
#include <sys/systm.h>

#define	KTEST_PASS	0
#define	KTEST_FAIL	1
#define	KTEST_SKIP	2

/* Per-case watchdog: print a tc-end failed timeout line, then panic. */
#ifndef KTEST_TIMEOUT_S
#define	KTEST_TIMEOUT_S	60
#endif

/*
 * Scheduling.  Worker kthreads created by ktest_tg_spawn*() run at
 * KTEST_PRI (SCHED_RR, kernel range: no sleep boost, so an unbound
 * worker waking up on a CPU busy with a spinning worker is moved to
 * another CPU).  The cases themselves run in lwp0, which the runner
 * turns into a SCHED_RR LWP at KTEST_RUNNER_PRI for the duration of the
 * suite: spinning workers on every CPU must never starve the case's own
 * thread, also not on a DEBUG kernel where any higher-priority LWP
 * preempts in the kernel.  xcall (MAXPRI_KTHREAD) and softint threads
 * stay above both.
 */
#define	KTEST_PRI		PRI_KERNEL
#define	KTEST_RUNNER_PRI	PRI_KTHREAD

struct ktest;

struct ktest_case {
	const char	*kc_tp;		/* ATF "test program": localcount */
	const char	*kc_tc;		/* ATF "test case", e.g. hammer_drain */
	int		(*kc_fn)(struct ktest *);
};

/*
 * KTEST_CASE(tp, tc, fn): register int fn(struct ktest *) as test case
 * "tp:tc".  tp and tc are C identifiers; fn returns KTEST_PASS,
 * KTEST_FAIL or KTEST_SKIP (usually via ktest_result()).
 */
#define	KTEST_CASE(tp, tc, fn)						\
	static const struct ktest_case ktest_case_##tp##_##tc =		\
	    { #tp, #tc, fn };						\
	__link_set_add_rodata(ktest_cases, ktest_case_##tp##_##tc)

/*
 * KTEST_CHECK(kt, expr): if expr is false, mark the case failed with
 * "file:line: expr" (only the first failure is kept as the reason) and
 * evaluate to false.  It does not return, so that a case can still
 * stop and join its threads and tear down its objects.
 *
 * KTEST_CHECKF(kt, expr, fmt, ...): the same with a printf-like
 * explanation appended to the reason.
 */
#define	KTEST_CHECK(kt, expr)						\
	ktest_check((kt), (expr) ? true : false, __FILE__, __LINE__,	\
	    #expr, NULL)
#define	KTEST_CHECKF(kt, expr, ...)					\
	ktest_check((kt), (expr) ? true : false, __FILE__, __LINE__,	\
	    #expr, __VA_ARGS__)

bool	ktest_check(struct ktest *, bool, const char *, int, const char *,
	    const char *, ...) __printflike(6, 7);
bool	ktest_failed(const struct ktest *);
int	ktest_result(const struct ktest *);
int	ktest_skip(struct ktest *, const char *, ...) __printflike(2, 3);
void	ktest_so(struct ktest *, const char *, ...) __printflike(2, 3);

/*
 * Thread groups: kthreads that start together behind a gate and are
 * joined together.  fn(arg, idx) runs in each thread; idx is the
 * thread's spawn order within the group (0, 1, ...).
 */
struct ktest_tg;
typedef void (*ktest_thread_fn_t)(void *, u_int);

struct ktest_tg *ktest_tg_create(const char *, u_int);
int	ktest_tg_spawn(struct ktest_tg *, struct cpu_info *,
	    ktest_thread_fn_t, void *);
int	ktest_tg_spawn_percpu(struct ktest_tg *, ktest_thread_fn_t, void *);
int	ktest_tg_spawn_unbound(struct ktest_tg *, u_int, ktest_thread_fn_t,
	    void *);
u_int	ktest_tg_count(const struct ktest_tg *);
void	ktest_tg_start(struct ktest_tg *);
void	ktest_tg_join(struct ktest_tg *);

/*
 * One-shot helper threads ("a detacher", "an opener") with a started and
 * a done flag and their times: ktest_job_start runs j_fn(j) in a new
 * unbound kthread and returns once it has started; ktest_job_join waits
 * for it.  j_kt, j_arg, j_dev and j_error are the case's.  Thread
 * context; sleeps.
 */
struct ktest_job {
	struct ktest		*j_kt;
	void			(*j_fn)(struct ktest_job *);
	void			*j_arg;
	dev_t			j_dev;
	int			j_error;
	volatile u_int		j_started;
	volatile u_int		j_done;
	uint64_t		j_t_start;	/* ktest_now_us() before j_fn */
	uint64_t		j_t_done;	/* and after */
	struct ktest_tg		*j_tg;
};

int	ktest_job_start(struct ktest_job *, const char *);
void	ktest_job_join(struct ktest_job *);

/* Time and randomness helpers. */
uint64_t ktest_now_us(void);
int	ktest_deadline_ms(u_int);
bool	ktest_expired(int);
uint32_t ktest_seed(void);
int	ktest_wait_uint(volatile u_int *, u_int, u_int);
void	ktest_sleep_ms(u_int);
void	ktest_breathe(u_int);

/* xorshift32: cheap per-thread pseudo-random numbers. */
static __inline uint32_t
ktest_rand(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/* ktest_userland.c: /dev/ktctl for the userland suite. */
int	ktest_userland_attach(void);

/* In a rump kernel: stand-ins for ipi(9) (ktest_rump.h, ktest_rump.c). */
#ifdef KTEST_RUMP
#include "ktest_rump.h"
#endif

#endif	/* _KTEST_KTEST_H_ */
