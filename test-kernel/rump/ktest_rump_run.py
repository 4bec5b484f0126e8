#!/usr/bin/env python3
"""ktest_rump_run.py -- run the in-kernel suite in rump kernels and report.

Usage: ktest_rump_run.py --out DIR [--timeout S] [--case-timeout S]
                         VARIANT[/SUITE]:NCPU:PROGRAM...

Each PROGRAM is a ktest_rump binary (ktest_rump_main.c linked with a rump
kernel and the librumpkern_ktest component), labelled "VARIANT-rump
ncpuN", or another program that prints the same protocol, such as
ktmod_rump (the module cases), labelled "VARIANT-rump-SUITE ncpuN"; it is
run with RUMP_NCPU=NCPU
and its standard output (the rump kernel's console, the KTEST protocol of
test-kernel/ktest/ktest.c) is read by the QEMU harness's own parser
(test-kernel/harness/ktest_harness.py): the same per-case verdicts, the
same deadlines (a case without tc-end, a hang, a panic), the same result
files (ATF tps, JUnit XML, JSON, one console log per run) and the same
final "N passed, N failed" line.  Exit status 0 when every run passed,
1 otherwise.

The program's own exit status is judged instead of QEMU's: 0 after
"KTEST: done" (rump_init() returned), anything else is an error (a rump
kernel panic aborts the process).
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import ktest_harness as kh  # noqa: E402


def run_rump(program: str, ncpu: int, label: str, timeout: float, case_timeout: float,
             console_log: str) -> kh.RunResult:
    """Run program with RUMP_NCPU=ncpu and collect its KTEST results.

    Never raises for a failed run: problems are in RunResult.errors and
    failed cases, as with kh.run_boot().
    """
    cmd = [program]
    env = dict(os.environ, RUMP_NCPU=str(ncpu))
    parser = kh.ConsoleParser(label, smp=ncpu, progress=kh.print_progress)
    parser.say("run: RUMP_NCPU=%d %s" % (ncpu, program))
    fields = dict(kernel=program, command=["env", "RUMP_NCPU=%d" % ncpu] + cmd,
                  console_log=console_log, start=time.time())
    rc = None
    with open(console_log, "wb") as log:
        try:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except OSError as e:
            parser.error("%s failed to start: %s" % (program, e))
            return parser.finish(time.time(), **fields)
        with proc:
            try:
                cut_short, stderr = kh._watch(proc, parser, log, fields["start"], timeout,
                                              case_timeout)
                if cut_short is None:
                    try:
                        rc = proc.wait(5)
                    except subprocess.TimeoutExpired:
                        cut_short = "the program closed its output but did not exit (killed)"
            finally:
                if proc.poll() is None:
                    kh._kill(proc)
    fields["qemu_stderr"] = stderr.decode("utf-8", "replace")
    if rc is not None:
        tail = " ".join(fields["qemu_stderr"].strip().splitlines()[-3:])
        tail = ": " + tail if tail else ""
        if parser.done is None:
            cut_short = "the program exited with status %d before KTEST done%s" % (rc, tail)
        elif rc != 0:
            parser.error("the program exited with status %d%s" % (rc, tail))
    result = parser.finish(time.time(), cut_short, **fields)
    parser.say("finished: %s (%.1f s)" % (kh.summary_line([result]), result.end - result.start))
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds per run (default %(default)g)")
    p.add_argument("--case-timeout", type=float, default=120.0,
                   help="seconds per case (default %(default)g)")
    p.add_argument("runs", nargs="+", metavar="VARIANT[/SUITE]:NCPU:PROGRAM")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    results = []
    for spec in a.runs:
        variant, ncpu, program = spec.split(":", 2)
        variant, _, suite = variant.partition("/")
        label = "%s-rump%s ncpu%s" % (variant, "-" + suite if suite else "", ncpu)
        log = os.path.join(a.out, "%s.console" % kh.label_slug(label))
        results.append(run_rump(program, int(ncpu), label, a.timeout, a.case_timeout, log))
    paths = kh.write_reports(results, a.out)
    kh.print_report(results, paths, "run", 22)
    return kh.exit_status(results)


if __name__ == "__main__":
    sys.exit(main())
