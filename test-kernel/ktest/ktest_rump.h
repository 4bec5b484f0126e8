/*	$NetBSD$	*/

/*-
 * ktest in a rump kernel: stand-ins for what a rump kernel lacks.
 *
 * A rump kernel has no hardware interrupts and no ipi(9): its
 * "interrupts" are softint(9) threads, scheduled on a virtual CPU like
 * any other LWP (cpu_intr_p() is always false there), and a thread that
 * holds a virtual CPU is never preempted by them.  The cases that send
 * asynchronous IPIs (localcount:softint_release kicks a neighbour CPU's
 * softint, localcount:hardintr_release updates the per-CPU counter from
 * the handler) run in a rump kernel with the handler as a SOFTINT_SERIAL
 * softint scheduled on the target CPU (softint_schedule_cpu(9), which
 * the rump kernel implements): the closest thing to an interrupt that
 * exists there.  ipi_broadcast() and ipi_wait() are only used to flush
 * a no-op message before ipi_unregister(); the stand-in for
 * ipi_unregister() lets scheduled handlers run first.
 *
 * Nor does a rump kernel preempt: a thread keeps its virtual CPU until it
 * blocks or yields, and preempt_point() is empty there.  The workers of
 * the suite spin with preempt_point() (ktest_breathe(), the benchmark
 * loops) so that higher-priority threads, the xcall threads above all,
 * get in; in a rump kernel that must be yield(), or a drain's xcall
 * never runs on a CPU that a worker spins on.
 *
 * A rump kernel's timecounter only advances with its clock "interrupt"
 * (hz times a second), so nanouptime(9) cannot time a benchmark round;
 * the suite reads the host's monotonic clock through the
 * rumpuser_clock_gettime() hypercall instead.
 *
 * biodone(9) is in librumpvfs, which the suite does not need: the
 * test drivers' d_strategy is never called, and its stand-in panics.
 *
 * KTEST_RUMP is defined by test-kernel/rump/Makefile.component (a rump
 * kernel on x86 is compiled with the native ABI, without _RUMPKERNEL).
 * Included by ktest.h when KTEST_RUMP is defined; ktest_rump.c holds
 * the functions.
 */

#ifndef _KTEST_KTEST_RUMP_H_
#define _KTEST_KTEST_RUMP_H_

#ifdef KTEST_RUMP

#include <sys/ipi.h>

struct cpu_info;

struct buf;
struct timespec;

void	ktest_rump_biodone(struct buf *);
void	ktest_rump_nanouptime(struct timespec *);
u_int	ktest_rump_ipi_register(ipi_func_t, void *);
void	ktest_rump_ipi_unregister(u_int);
void	ktest_rump_ipi_trigger(u_int, struct cpu_info *);

#define	biodone(bp)		ktest_rump_biodone(bp)
#define	preempt_point()		yield()
#define	nanouptime(ts)		ktest_rump_nanouptime(ts)
#define	ipi_register(func, arg)	ktest_rump_ipi_register((func), (arg))
#define	ipi_unregister(id)	ktest_rump_ipi_unregister(id)
#define	ipi_trigger(id, ci)	ktest_rump_ipi_trigger((id), (ci))
#define	ipi_broadcast(msg, skip)	((void)(msg), (void)(skip))
#define	ipi_wait(msg)		((void)(msg))

#endif	/* KTEST_RUMP */

#endif	/* _KTEST_KTEST_RUMP_H_ */
