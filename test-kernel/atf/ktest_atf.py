#!/usr/bin/env python3
"""ktest_atf: the in-kernel ktest suite as ATF test programs, for kyua.

One test program is one boot of a test kernel (one kernel at one vCPU
count).  Its test cases are the cases of the in-kernel suite, named "tp:tc"
as everywhere else ("localcount:hammer_drain"), plus the harness's
pseudo-case "ktest:boot" when the boot went wrong in a way no case shows.
The verdicts are ktest_harness.py's, unchanged.

It implements ATF's test-program interface (what kyua's "atf" interface
runs, and atf-run before it):

  ktest_atf.py [SOURCE] [-v VAR=VALUE]... -l
        list the cases (Content-Type: application/X-atf-tp; version="1")
  ktest_atf.py [SOURCE] [-r RESULTFILE] [-s SRCDIR] [-v VAR=VALUE]... CASE
        report CASE into RESULTFILE (default: standard output): "passed",
        "skipped: reason" (exit 0), "failed: reason" or "broken: reason"
        (exit 1); the case's tc-so lines go to standard output, the console
        lines printed while it ran to standard error
  ktest_atf.py [SOURCE] [-v VAR=VALUE]... CASE:cleanup
        nothing to clean up (no case declares has.cleanup)

SOURCE says where the boot's results come from:

  --kernel PATH --smp N [--label L]
        boot PATH under QEMU with N vCPUs (label default "smpN")
  (none)
        the program is named VARIANT_smpN: boot KERNELS/VARIANT/netbsd
        (netbsd.img on aarch64) with N vCPUs, label "VARIANT smpN" ("ARCH
        VARIANT smpN" for an arch other than amd64, as ktest_matrix.py
        labels them).  The
        test programs of test-kernel/Kyuafile are symlinks to this file named
        so (atf/rust_smp2 ...)
  --console LOG [--smp N] [--label L]
        replay a recorded console log (label default: LOG's name)
  --results DIR --label L
        the run labelled L in DIR/summary.json, as written by ktest_matrix.py
        (ktest.sh's results directory) or ktest_harness.py --out

A boot runs every case of the suite at once (15-45 s), so a boot is made
once and shared by the program's cases: listing (-l) boots the kernel and
keeps the harness's reports of that boot in RECORDS/<label>/ (console.log,
summary.json, results.tps, junit.xml, progress.log, and boot.json, which
names the kernel file by identity); each case then reads its verdict from
there.  kyua lists a program once per "kyua test", before running its
cases, so every "kyua test" boots afresh and its cases share that boot.  A
case run that finds no record of the same kernel file (a direct run without
-l, or a kernel rebuilt since) boots first, under a lock, so parallel cases
boot once.  The case list is the kernel's own: the "KTEST: plan" lines of
the boot (the C and Rust kernels do not register the same cases, and only
the kernel knows which it has), so it cannot drift from the suite.

Variables (-v VAR=VALUE; kyua passes its test_suites.ktest.VAR ones):
  kernels       directory of VARIANT/netbsd (default $KTEST_WORK/obj, with
                KTEST_WORK defaulting to target/ktest in this repository)
  records       where boots are kept (default $KTEST_WORK/atf)
  arch          the kernels' architecture: amd64 (default), i386 or aarch64
                (ktest_harness.ARCHES: how QEMU boots it)
  qemu          QEMU binary (default: the architecture's, qemu-system-x86_64
                for amd64)
  mem           MiB of guest memory (default 512)
  boot_timeout  seconds one boot may take (default 240: kyua gives a
                listing 300 s)
  case_timeout  seconds one in-kernel case may run (default 120)

Examples: kyua test in test-kernel/ (see harness/README.md, "kyua");
  test-kernel/atf/ktest_atf.py --console harness/testdata/panic.log -l
"""
import argparse
import dataclasses
import fcntl
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))
import ktest_harness as kh  # noqa: E402

BOOT_CASE = "ktest:boot"
DEFAULT_BOOT_TIMEOUT = 240.0    # below kyua's 300 s limit for a listing
CASE_TIMEOUT_MARGIN = 60        # s kyua gives a case on top of a boot
PROGRAM_NAME_RE = re.compile(r"^(?P<variant>[A-Za-z0-9][\w.-]*)_smp(?P<smp>[1-9][0-9]*)$")
ATF_TP_HEADER = 'Content-Type: application/X-atf-tp; version="1"'


class Unavailable(Exception):
    """The source has no run to report (no kernel, unreadable results...).

    The program then lists ktest:boot alone, and every case reports
    result ("skipped" or "broken") with this reason.
    """

    def __init__(self, result: str, reason: str):
        super().__init__(reason)
        self.result = result
        self.reason = reason


def case_name(case: dict) -> str:
    """"tp:tc" of a case of a run."""
    return "%s:%s" % (case["tp"], case["tc"])


def one_line(text: str) -> str:
    """text on one line, as an ATF result reason must be."""
    return " ".join(text.split())


def atf_result(case: dict) -> str:
    """The ATF result line of a harness case ("passed", "failed: reason"...)."""
    if case["status"] == "passed":
        return "passed"
    status = "skipped" if case["status"] == "skipped" else "failed"
    return "%s: %s" % (status, one_line(case["reason"]) or "(no reason given)")


# ---------------------------------------------------------------- sources

def load_results(directory: str, label: str) -> dict:
    """The run labelled label in directory/summary.json (RunResult.to_dict())."""
    path = os.path.join(directory, "summary.json")
    try:
        with open(path, encoding="utf-8") as f:
            runs = json.load(f)["runs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Unavailable("broken", "cannot read the runs of %s: %s" % (path, e))
    found = [r for r in runs if r.get("label") == label]
    if len(found) != 1:
        raise Unavailable("broken", "%s has %s run labelled %r"
                          % (path, "more than one" if found else "no", label))
    return found[0]


def replay_console(path: str, label: str, smp: int | None) -> dict:
    """The run of a recorded console log."""
    try:
        return kh.replay(path, label, smp, progress=None).to_dict()
    except OSError as e:
        raise Unavailable("broken", "cannot read the console log %s: %s" % (path, e))


@dataclasses.dataclass
class Boot:
    """One kernel at one vCPU count, booted at most once per listing."""
    kernel: str
    smp: int
    label: str
    records: str
    qemu: str | None = None     # None: the architecture's
    arch: str = kh.DEFAULT_ARCH
    mem: int = kh.DEFAULT_MEM
    timeout: float = DEFAULT_BOOT_TIMEOUT
    case_timeout: float = kh.DEFAULT_CASE_TIMEOUT

    @property
    def directory(self) -> str:
        """Where this boot's record is kept."""
        return os.path.join(self.records, kh.label_slug(self.label))

    def identity(self) -> dict:
        """What a record must match to stand for a boot of this kernel now."""
        kernel = os.path.abspath(self.kernel)
        try:
            st = os.stat(kernel)
        except FileNotFoundError:
            raise Unavailable("skipped", "no kernel at %s (build it with test-kernel/ktest.sh "
                              "-B, or set test_suites.ktest.kernels)" % kernel)
        except OSError as e:
            raise Unavailable("broken", "cannot boot %s: %s" % (kernel, e))
        return dict(kernel=kernel, dev=st.st_dev, ino=st.st_ino, size=st.st_size,
                    mtime_ns=st.st_mtime_ns, smp=self.smp, arch=self.arch,
                    qemu=self.qemu or kh.ARCHES[self.arch].qemu, mem=self.mem)

    def run(self, fresh: bool) -> dict:
        """The run of this boot: a new one if fresh, else the recorded one if
        it is of the same kernel file (booting if there is none)."""
        identity = self.identity()
        stamp = os.path.join(self.directory, "boot.json")
        os.makedirs(self.records, exist_ok=True)
        with open(self.directory + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not fresh and _read_json(stamp) == identity:
                return load_results(self.directory, self.label)
            shutil.rmtree(self.directory, ignore_errors=True)
            os.makedirs(self.directory)
            with open(os.path.join(self.directory, "progress.log"), "w",
                      encoding="utf-8") as log:
                result = kh.run_boot(
                    self.kernel, self.smp, self.label, qemu=self.qemu, arch=self.arch,
                    mem=self.mem, timeout=self.timeout, case_timeout=self.case_timeout,
                    console_log=os.path.join(self.directory, "console.log"),
                    progress=lambda line: print(line, file=log, flush=True))
            kh.write_reports([result], self.directory)
            with open(stamp + ".new", "w", encoding="utf-8") as f:
                json.dump(identity, f)
            os.replace(stamp + ".new", stamp)     # the record is complete
            return result.to_dict()


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the ATF interface

def list_cases(run: dict | None, timeout: int | None, out) -> None:
    """Write the test case list (application/X-atf-tp version 1).

    Without a run (the source is unavailable), ktest:boot alone, which
    then reports why.
    """
    out.write(ATF_TP_HEADER + "\n")
    for ident in [case_name(c) for c in run["cases"]] if run else [BOOT_CASE]:
        if ident != BOOT_CASE:
            descr = "%s on %s" % (ident, run["label"])
        else:
            descr = "the boot as a whole: what no test case shows"
        out.write("\nident: %s\ndescr: %s\n" % (ident, descr))
        if timeout:
            out.write("timeout: %d\n" % timeout)


def report_case(run: dict | None, unavailable: Unavailable | None, name: str,
                out, err) -> str:
    """The result line of case name; writes its output to out and err."""
    if run is None:
        return "%s: %s" % (unavailable.result, one_line(unavailable.reason))
    found = [c for c in run["cases"] if case_name(c) == name]
    if not found:
        return "broken: %s is not a case of %s" % (name, run["label"])
    case = found[0]
    for line in case.get("output", []):
        print(line, file=out)
    for line in case.get("console", []):
        print(line, file=err)
    if case["status"] != "passed" and run.get("console_log"):
        print("console log: %s" % run["console_log"], file=err)
    return atf_result(case)


def ktest_work() -> str:
    """ktest.sh's work directory: $KTEST_WORK, default target/ktest here."""
    return os.environ.get("KTEST_WORK") or os.path.join(TOP, "target", "ktest")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]),
        description="The ktest suite of one boot as an ATF test program (for kyua).")
    src = p.add_argument_group("source (default: from the program's name, VARIANT_smpN)")
    src.add_argument("--kernel", help="kernel to boot")
    src.add_argument("--console", help="recorded console log to replay")
    src.add_argument("--results", metavar="DIR", help="read the run from DIR/summary.json")
    src.add_argument("--smp", type=int, help="vCPUs to boot with (checked in a replay)")
    src.add_argument("--label", help="name of the run")
    atf = p.add_argument_group("ATF test-program interface")
    atf.add_argument("-l", dest="list", action="store_true", help="list the test cases")
    atf.add_argument("-r", dest="resfile",
                     help="file to write the result to (default: standard output)")
    atf.add_argument("-s", dest="srcdir", help="source directory (unused)")
    atf.add_argument("-v", dest="vars", action="append", default=[], metavar="VAR=VALUE",
                     help="configuration variable")
    atf.add_argument("case", nargs="?", help="test case to run (CASE or CASE:cleanup)")
    a = p.parse_args(argv)
    if a.list == (a.case is not None):
        p.error("give either -l or one test case")
    try:
        a.vars = dict(v.split("=", 1) for v in a.vars)
    except ValueError:
        p.error("-v needs VAR=VALUE")
    if sum(x is not None for x in (a.kernel, a.console, a.results)) > 1:
        p.error("--kernel, --console and --results exclude each other")
    if a.kernel is not None and a.smp is None:
        p.error("--kernel needs --smp")
    if a.results is not None and a.label is None:
        p.error("--results needs --label")
    arch = a.vars.get("arch", kh.DEFAULT_ARCH)
    if arch not in kh.ARCHES:
        p.error("unknown arch %r (one of %s)" % (arch, ", ".join(sorted(kh.ARCHES))))
    if a.kernel is None and a.console is None and a.results is None:
        m = PROGRAM_NAME_RE.match(os.path.basename(sys.argv[0]))
        if m is None:
            p.error("no source given, and the program's name is not VARIANT_smpN")
        kernels = a.vars.get("kernels") or os.path.join(ktest_work(), "obj")
        a.kernel = os.path.join(kernels, m.group("variant"), kh.ARCHES[arch].image)
        a.smp = int(m.group("smp"))
        a.label = "%s smp%s" % (m.group("variant"), m.group("smp"))
        if arch != kh.DEFAULT_ARCH:
            a.label = "%s %s" % (arch, a.label)
    a.boot = None
    if a.kernel is not None:
        v = a.vars
        try:
            a.boot = Boot(a.kernel, a.smp, a.label or "smp%d" % a.smp,
                          records=v.get("records") or os.path.join(ktest_work(), "atf"),
                          qemu=v.get("qemu"), arch=arch,
                          mem=int(v.get("mem", kh.DEFAULT_MEM)),
                          timeout=float(v.get("boot_timeout", DEFAULT_BOOT_TIMEOUT)),
                          case_timeout=float(v.get("case_timeout", kh.DEFAULT_CASE_TIMEOUT)))
        except ValueError as e:
            p.error("bad variable: %s" % e)
    return a


def main(argv: list[str] | None = None, out=None, err=None) -> int:
    """Command line entry point; returns the exit status."""
    a = parse_args(sys.argv[1:] if argv is None else argv)
    out, err = out or sys.stdout, err or sys.stderr
    if a.case is not None and a.case.endswith(":cleanup"):
        return 0
    boot = a.boot
    run, unavailable = None, None
    try:
        if boot is not None:
            run = boot.run(fresh=a.list)
        elif a.console is not None:
            run = replay_console(a.console, a.label, a.smp)
        else:
            run = load_results(a.results, a.label)
    except Unavailable as e:
        unavailable = e
    if a.list:
        timeout = int(boot.timeout) + CASE_TIMEOUT_MARGIN if boot is not None else None
        list_cases(run, timeout, out)
        return 0
    result = report_case(run, unavailable, a.case, out, err)
    if a.resfile is None:
        print(result, file=out)
    else:
        with open(a.resfile, "w", encoding="utf-8") as f:
            f.write(result + "\n")
    return 0 if result == "passed" or result.startswith("skipped:") else 1


if __name__ == "__main__":
    sys.exit(main())
