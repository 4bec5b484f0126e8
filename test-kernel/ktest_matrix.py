#!/usr/bin/env python3
"""ktest_matrix: boot several test kernels at several vCPU counts, one after
the other, and report all results together (called by ktest.sh).

Usage: ktest_matrix.py --out DIR [--arch ARCH] [--kyua] VARIANT:SMP:KERNEL ...

Every kernel is of architecture ARCH (default amd64; ktest_harness.ARCHES
says how QEMU boots it).  A boot is labelled "VARIANT smpN", and on the
other architectures "ARCH VARIANT smpN" ("aarch64 rust smp2"), so that the
results of several architectures do not collide.

Writes DIR/results.tps (ATF), DIR/junit.xml, DIR/summary.json and one console
log per boot (DIR/<label, "_" for spaces>.console), prints a per-boot table,
every failure, and the final "N passed, N failed" line.  With --kyua, kyua then
runs the boots' results as ATF test programs (atf/ktest_kyua.py results DIR:
DIR/kyua/ holds kyua's results and reports) and must report every case as
the harness does.  Exit status 0 only if every boot ran every case to a pass
(or skip) and ended cleanly (and kyua agreed).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "harness"), os.path.join(HERE, "atf")]
import ktest_harness as kh  # noqa: E402
import ktest_kyua  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--arch", default=kh.DEFAULT_ARCH, choices=sorted(kh.ARCHES),
                   help="the kernels' architecture (default %(default)s)")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds per boot (default %(default)g)")
    p.add_argument("--case-timeout", type=float, default=120.0,
                   help="seconds per case (default %(default)g)")
    p.add_argument("--kyua", action="store_true",
                   help="also run the results through kyua (ATF test programs)")
    p.add_argument("runs", nargs="+", metavar="VARIANT:SMP:KERNEL")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    results = []
    for spec in a.runs:
        variant, smp, kernel = spec.split(":", 2)
        label = "%s smp%s" % (variant, smp)
        if a.arch != kh.DEFAULT_ARCH:
            label = "%s %s" % (a.arch, label)
        log = os.path.join(a.out, "%s.console" % kh.label_slug(label))
        results.append(kh.run_boot(kernel, int(smp), label, arch=a.arch, timeout=a.timeout,
                                   case_timeout=a.case_timeout, console_log=log))
    paths = kh.write_reports(results, a.out)
    kyua_ok = ktest_kyua.check_results(a.out) if a.kyua else True
    kh.print_report(results, paths, "boot", 30)
    return kh.exit_status(results) if kyua_ok else 1


if __name__ == "__main__":
    sys.exit(main())
