#!/usr/bin/env python3
"""ktest_kyua: run kyua over ktest results and check what it reports.

  ktest_kyua.py results OUT
      kyua over the boots of a ktest_matrix.py run (OUT/summary.json: the
      kernel stage of ktest.sh, which calls this through ktest_matrix.py
      --kyua).  Writes OUT/kyua/: a Kyuafile with one ATF test program per
      boot (ktest_atf.py --results OUT --label LABEL), kyua's results.db and
      log, test.txt (kyua test's output), report.txt, junit.xml and html/;
      checks that kyua reports every case exactly as the harness does.
  ktest_kyua.py recordings [--out DIR] [--expected FILE]
      kyua over the recorded consoles of test-kernel/harness/testdata (no
      kernel, no NetBSD tree): each recording is a test program replaying it
      (console/NAME), and a few are also read back from a harness results
      directory (results/NAME, as the kernel stage reads them); every case
      must have exactly the result that FILE (default: recordings.expected
      next to this script) gives it.  This is how scripts/test.sh tests the
      ATF interface itself.  DIR (default: a temporary directory, removed
      afterwards) receives results/ and kyua/.

Both also check that kyua's report-junit agrees with its text report, and
run report-html.  Exit status: 0 kyua reported what was expected; 1 it did
not (every difference is printed); 77 kyua is not installed.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, HERE)
import ktest_atf  # noqa: E402
from ktest_atf import kh  # noqa: E402

ATF_PROGRAM = os.path.join(HERE, "ktest_atf.py")
TESTDATA = os.path.join(os.path.dirname(HERE), "harness", "testdata")
RECORDINGS_EXPECTED = os.path.join(HERE, "recordings.expected")
PROGRAM_NAME_RE = re.compile(r"^([A-Za-z0-9_+-][A-Za-z0-9_.+-]*/)?[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$")
# One case in "kyua report": "program:case  ->  result  [1.234s]".
REPORT_LINE_RE = re.compile(r"^(?P<case>[^:\s]+:.+?)  ->  (?P<result>.+?)  \[[0-9.]+s\]$")
RESULT_TYPES = "passed,skipped,xfail,broken,failed"
# Recordings also read back from a results directory (each case costs kyua
# a process): a pass with a skip, a failure, a panic, a run-level error.
RESULTS_MODE_RECORDINGS = ("all_pass", "one_failed", "panic", "root_prompt")
SKIPPED = 77


class KyuaError(Exception):
    """kyua could not run or report."""


def write_kyua_dir(directory: str, programs: dict[str, list[str]], what: str) -> None:
    """Make directory a kyua test suite: for each program name ("NAME" or
    "DIR/NAME"), a shell script running ktest_atf.py with its arguments (and
    this Python, which also saves a version manager's shim per case), and
    a Kyuafile in every directory (kyua wants a subdirectory's programs in
    its own Kyuafile, included from the one above)."""
    shutil.rmtree(directory, ignore_errors=True)
    entries: dict[str, list[str]] = {"": []}    # directory -> Kyuafile lines
    for name, args in programs.items():
        if not PROGRAM_NAME_RE.match(name):
            raise ValueError("unusable test program name %r" % name)
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\n# ATF test program for kyua, written by "
                    "test-kernel/atf/ktest_kyua.py.\nexec %s \"$@\"\n"
                    % shlex.join([sys.executable, ATF_PROGRAM] + args))
        os.chmod(path, 0o755)
        parent, base = os.path.split(name)
        if parent not in entries:
            entries[parent] = []
            entries[os.path.dirname(parent)].append(
                'include("%s/Kyuafile")' % os.path.basename(parent))
        entries[parent].append('atf_test_program{name="%s"}' % base)
    for sub, lines in entries.items():
        head = ["-- Kyuafile, written by test-kernel/atf/ktest_kyua.py: %s." % what,
                "syntax(2)", "", 'test_suite("ktest")', ""]
        with open(os.path.join(directory, sub, "Kyuafile"), "w", encoding="utf-8") as f:
            f.write("\n".join(head + lines) + "\n")


def _kyua(directory: str, *args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(["kyua", "--config=none", "--logfile=kyua.log", *args], cwd=directory,
                          stdout=stdout, stderr=subprocess.STDOUT, text=True)


def run_kyua(directory: str) -> tuple[dict[str, str], str]:
    """kyua test in directory, then report, report-junit and report-html.

    Returns ({"program:case": result line}, kyua's "Test cases: ..." line).
    """
    with open(os.path.join(directory, "test.txt"), "w", encoding="utf-8") as out:
        rc = _kyua(directory, "test", "--results-file=results.db", stdout=out).returncode
    if rc not in (0, 1):    # 1: some case failed or is broken
        raise KyuaError("kyua test exited with status %d (see %s/test.txt and kyua.log)"
                        % (rc, directory))
    for args in (("report", "--results-filter=" + RESULT_TYPES,
                  "--output=report.txt"),
                 ("report-junit", "--output=junit.xml"),
                 ("report-html", "--force", "--output=html")):
        r = _kyua(directory, args[0], "--results-file=results.db", *args[1:])
        if r.returncode != 0:
            raise KyuaError("kyua %s exited with status %d: %s"
                            % (args[0], r.returncode, r.stdout.strip()))
    results, summary = {}, ""
    with open(os.path.join(directory, "report.txt"), encoding="utf-8") as f:
        for line in f:
            m = REPORT_LINE_RE.match(line.rstrip("\n"))
            if m:
                results[m.group("case")] = m.group("result")
            elif line.startswith("Test cases: "):
                summary = line.strip()
    return results, summary


def check_junit(path: str, results: dict[str, str]) -> list[str]:
    """Where kyua's JUnit report (path) disagrees with its text report."""
    # kyua writes a failed case as <failure message=reason>, a broken one
    # as <error message=reason>, a skipped one as <skipped/>.
    elements = {"failed": "failure", "broken": "error", "skipped": "skipped", "passed": None}
    junit = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        kinds = [e for e in tc if e.tag in ("failure", "error", "skipped")]
        junit[(tc.get("classname"), tc.get("name"))] = kinds
    problems = []
    for case, result in results.items():
        program, name = case.split(":", 1)
        kinds = junit.pop((program.replace("/", "."), name), None)
        status, _, reason = result.partition(": ")
        want = elements.get(status)
        got = [e.tag for e in kinds] if kinds is not None else None
        if got != ([want] if want else []) or (
                want in ("failure", "error") and kinds[0].get("message") != reason):
            problems.append("junit.xml: %s: %s, but the text report says %r"
                            % (case, "missing" if got is None else
                               ET.tostring(kinds[0], encoding="unicode").strip()
                               if kinds else "passed", result))
    problems += ["junit.xml: %s:%s is not in the text report" % k for k in junit]
    return problems


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """One line per case whose kyua result is not the expected one."""
    lines = []
    for case in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(case), actual.get(case)
        if want != got:
            lines.append("%s: kyua says %s, expected %s"
                         % (case, "nothing" if got is None else repr(got),
                            "nothing" if want is None else repr(want)))
    return lines


def report(problems: list[str], summary: str, verdict: str) -> bool:
    """Print the outcome of a check; True if there were no problems."""
    for line in problems:
        print("kyua: MISMATCH %s" % line)
    print("kyua: %s" % (summary or "no 'Test cases:' line in kyua's report"))
    if problems:
        print("kyua: %d case(s) not reported as expected" % len(problems))
        return False
    print("kyua: " + verdict)
    return True


def check_results(out: str) -> bool:
    """kyua over ktest_matrix.py's results directory out (see the module doc)."""
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    programs, expected = {}, {}
    for run in runs:
        name = kh.label_slug(run["label"])
        programs[name] = ["--results", os.path.abspath(out), "--label", run["label"]]
        for case in run["cases"]:
            expected["%s:%s" % (name, ktest_atf.case_name(case))] = ktest_atf.atf_result(case)
    directory = os.path.join(out, "kyua")
    write_kyua_dir(directory, programs, "the boots of %s/summary.json" % os.path.abspath(out))
    try:
        actual, summary = run_kyua(directory)
    except KyuaError as e:
        print("kyua: ERROR %s" % e)
        return False
    problems = differences(expected, actual)
    problems += check_junit(os.path.join(directory, "junit.xml"), actual)
    return report(problems, summary, "every case as the harness reports it; kyua report "
                  "-r %s (junit.xml, html/ beside it)" % os.path.join(directory, "results.db"))


def read_expected(path: str) -> dict[str, str]:
    """FILE of "program:case  ->  result" lines ('#' comments)."""
    expected = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            case, sep, result = line.partition("  ->  ")
            if not sep:
                raise ValueError("%s:%d: not 'program:case  ->  result'" % (path, n))
            expected[case] = result
    return expected


def check_recordings(out: str, expected_file: str) -> bool:
    """kyua over the recorded consoles in testdata/ (see the module doc)."""
    logs = {os.path.splitext(os.path.basename(p))[0]: p
            for p in sorted(glob.glob(os.path.join(TESTDATA, "*.log")))}
    results_dir = os.path.join(out, "results")
    kh.write_reports([kh.replay(logs[name], name, progress=None)
                      for name in RESULTS_MODE_RECORDINGS], results_dir)
    programs = {"console/" + name: ["--console", log] for name, log in logs.items()}
    for name in RESULTS_MODE_RECORDINGS:
        programs["results/" + name] = ["--results", results_dir, "--label", name]
    expected = {}
    for case, result in read_expected(expected_file).items():
        expected["console/" + case] = result
        if case.split(":", 1)[0] in RESULTS_MODE_RECORDINGS:
            expected["results/" + case] = result
    directory = os.path.join(out, "kyua")
    write_kyua_dir(directory, programs, "the recorded consoles of %s" % TESTDATA)
    try:
        actual, summary = run_kyua(directory)
    except KyuaError as e:
        print("kyua: ERROR %s" % e)
        return False
    problems = differences(expected, actual)
    problems += check_junit(os.path.join(directory, "junit.xml"), actual)
    print("kyua: %d recorded consoles replayed, %d also read back from a results directory"
          % (len(logs), len(RESULTS_MODE_RECORDINGS)))
    return report(problems, summary, "every case as %s says (the failures are those the "
                  "recordings show)" % os.path.basename(expected_file))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("results", help="kyua over a ktest_matrix.py results directory")
    r.add_argument("out", metavar="OUT")
    c = sub.add_parser("recordings", help="kyua over the recorded consoles of testdata/")
    c.add_argument("--out", metavar="DIR", help="keep the results here (default: temporary)")
    c.add_argument("--expected", metavar="FILE", default=RECORDINGS_EXPECTED,
                   help="expected results (default %(default)s)")
    a = p.parse_args(argv)
    if shutil.which("kyua") is None:
        print("kyua: SKIPPED: kyua is not installed (scripts/setup.sh installs it)")
        return SKIPPED
    if a.command == "results":
        return 0 if check_results(a.out) else 1
    if a.out is not None:
        return 0 if check_recordings(a.out, a.expected) else 1
    with tempfile.TemporaryDirectory(prefix="ktest_kyua.") as tmp:
        return 0 if check_recordings(tmp, a.expected) else 1


if __name__ == "__main__":
    sys.exit(main())
