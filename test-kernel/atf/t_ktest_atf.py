"""Tests of ktest_atf.py (the ATF test programs) and ktest_kyua.py.

The ATF interface is driven directly, over the recorded consoles of
../harness/testdata, over harness results directories, and over boots of a
fake QEMU that replays a recording; ktest_kyua.py's kyua runs are tested when
kyua is installed (scripts/test.sh runs its full check of the recordings).

Run from the repository root:
  python3 -m unittest discover -s test-kernel/atf -p 't_*.py' -v
"""
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ktest_atf  # noqa: E402
import ktest_kyua  # noqa: E402
from ktest_atf import kh  # noqa: E402

TESTDATA = os.path.join(os.path.dirname(HERE), "harness", "testdata")
PROGRAM = os.path.join(HERE, "ktest_atf.py")
HAVE_KYUA = shutil.which("kyua") is not None


def data(name):
    return os.path.join(TESTDATA, name + ".log")


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t_ktest_atf.")
        self.addCleanup(shutil.rmtree, self.tmp)

    def atf(self, *argv):
        """Run ktest_atf.main(); returns (status, result file, stdout, stderr).

        A case is run with -r into the temporary directory.
        """
        out, err = io.StringIO(), io.StringIO()
        argv = list(argv)
        resfile = os.path.join(self.tmp, "result")
        if os.path.exists(resfile):
            os.remove(resfile)
        if "-l" not in argv:
            argv[-1:-1] = ["-r", resfile]
        rc = ktest_atf.main(argv, out, err)
        result = None
        if os.path.exists(resfile):
            with open(resfile) as f:
                result = f.read()
        return rc, result, out.getvalue(), err.getvalue()

    def results_dir(self, *names):
        """A harness results directory holding the replays of recordings."""
        out = os.path.join(self.tmp, "results")
        kh.write_reports([kh.replay(data(n), n, progress=None) for n in names], out)
        return out


class ListTest(TempDirTest):
    def test_list_format(self):
        rc, _, out, err = self.atf("--console", data("interleaved"), "-l")
        self.assertEqual(rc, 0)
        self.assertEqual(err, "")
        self.assertEqual(out, 'Content-Type: application/X-atf-tp; version="1"\n'
                              "\nident: localcount:x\ndescr: localcount:x on interleaved\n"
                              "\nident: localcount:y\ndescr: localcount:y on interleaved\n")

    def test_list_is_the_plan_in_order(self):
        _, _, out, _ = self.atf("--console", data("panic"), "-l", "-v", "unknown=ignored")
        idents = [line.split(": ", 1)[1] for line in out.splitlines()
                  if line.startswith("ident: ")]
        self.assertEqual(idents, [c.name for c in kh.replay(data("panic"), progress=None).cases])

    def test_run_level_error_lists_the_pseudo_case(self):
        _, _, out, _ = self.atf("--console", data("root_prompt"), "-l")
        self.assertIn("\nident: ktest:boot\ndescr: the boot as a whole: what no test case shows\n",
                      out)

    def test_unreadable_source_lists_the_pseudo_case(self):
        rc, _, out, err = self.atf("--console", os.path.join(self.tmp, "nope.log"), "-l")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out.count("ident: "), 1)
        self.assertIn("ident: ktest:boot", out)


class CaseTest(TempDirTest):
    def test_passed(self):
        self.assertEqual(self.atf("--console", data("all_pass"), "localcount:init_fini")[:2],
                         (0, "passed\n"))

    def test_skipped(self):
        self.assertEqual(self.atf("--console", data("all_pass"), "devsw:detach_busy")[:2],
                         (0, "skipped: needs options LOCKDEBUG\n"))

    def test_failed_with_the_kernel_reason(self):
        self.assertEqual(self.atf("--console", data("one_failed"), "localcount:drain_waits")[:2],
                         (1, "failed: /usr/src/sys/dev/ktest/ktest_localcount.c:212: "
                             "lc.lc_totalp == NULL not met (3 references left)\n"))

    def test_panic_fails_the_case_and_those_not_run(self):
        rc, result, out, err = self.atf("--console", data("panic"), "localcount:drain_waits")
        self.assertEqual(rc, 1)
        self.assertEqual(result, 'failed: panic: kernel diagnostic assertion "lc->lc_totalp == '
                                 'NULL" failed: file "/usr/src/sys/kern/subr_localcount.c", '
                                 'line 123\n')
        self.assertEqual(out, "draining with 3 holders\n")            # its tc-so lines
        self.assertIn("[   4.5123456] cpu2: Begin traceback...\n", err)  # its console
        self.assertTrue(err.endswith("console log: %s\n" % data("panic")))
        self.assertEqual(self.atf("--console", data("panic"), "devsw:detach_busy")[:2],
                         (1, "failed: not run: kernel panicked\n"))

    def test_pseudo_case_reports_the_run_error(self):
        self.assertEqual(self.atf("--console", data("zero_cases"), "ktest:boot")[:2],
                         (1, "failed: no test cases ran\n"))

    def test_reasons_are_one_line(self):
        run = dict(label="x", cases=[dict(tp="a", tc="b", status="failed",
                                          reason="line one\n  line two\t")])
        self.assertEqual(ktest_atf.report_case(run, None, "a:b", io.StringIO(), io.StringIO()),
                         "failed: line one line two")
        run["cases"][0].update(status="skipped", reason="")
        self.assertEqual(ktest_atf.atf_result(run["cases"][0]), "skipped: (no reason given)")

    def test_unknown_case_is_broken(self):
        self.assertEqual(self.atf("--console", data("all_pass"), "devsw:nope")[:2],
                         (1, "broken: devsw:nope is not a case of all_pass\n"))

    def test_unreadable_source_is_broken(self):
        rc, result, _, _ = self.atf("--console", os.path.join(self.tmp, "nope.log"), "ktest:boot")
        self.assertEqual(rc, 1)
        self.assertTrue(result.startswith("broken: cannot read the console log "), result)

    def test_cleanup_does_nothing(self):
        rc, result, _, _ = self.atf("--console", data("all_pass"), "localcount:init_fini:cleanup")
        self.assertEqual((rc, result), (0, None))

    def test_result_to_stdout_without_r(self):
        out = io.StringIO()
        rc = ktest_atf.main(["--console", data("all_pass"), "localcount:init_fini"], out)
        self.assertEqual((rc, out.getvalue()), (0, "passed\n"))


class ResultsSourceTest(TempDirTest):
    """--results DIR --label L: what the kernel stage's kyua run reads."""

    def test_same_verdicts_as_the_replay(self):
        names = ["all_pass", "one_failed", "panic", "trap", "ddb", "watchdog", "hang",
                 "root_prompt", "done_mismatch", "zero_cases", "interleaved"]
        out = self.results_dir(*names)
        for name in names:
            listing = self.atf("--console", data(name), "-l")[2]
            self.assertEqual(self.atf("--results", out, "--label", name, "-l")[2],
                             listing)
            for case in kh.replay(data(name), progress=None).cases:
                self.assertEqual(self.atf("--results", out, "--label", name, case.name)[:2],
                                 self.atf("--console", data(name), case.name)[:2])

    def test_missing_run_is_broken(self):
        out = self.results_dir("all_pass")
        rc, result, _, _ = self.atf("--results", out, "--label", "rust smp2", "ktest:boot")
        self.assertEqual(rc, 1)
        self.assertEqual(result, "broken: %s/summary.json has no run labelled 'rust smp2'\n" % out)

    def test_ambiguous_label_is_broken(self):
        out = os.path.join(self.tmp, "results")
        r = kh.replay(data("all_pass"), "same", progress=None)
        kh.write_reports([r, r], out)
        self.assertIn("more than one run labelled 'same'",
                      self.atf("--results", out, "--label", "same", "ktest:boot")[1])

    def test_missing_summary_is_broken(self):
        result = self.atf("--results", self.tmp, "--label", "x", "ktest:boot")[1]
        self.assertTrue(result.startswith("broken: cannot read the runs of %s/summary.json: "
                                          % self.tmp), result)


class UsageTest(unittest.TestCase):
    def usage(self, *argv):
        with mock.patch("sys.stderr", io.StringIO()) as err, \
                self.assertRaises(SystemExit) as cm:
            ktest_atf.main(list(argv))
        self.assertEqual(cm.exception.code, 2)
        return err.getvalue()

    def test_usage_errors(self):
        log = data("all_pass")
        self.assertIn("either -l or one test case", self.usage("--console", log))
        self.assertIn("either -l or one test case", self.usage("--console", log, "-l", "a:b"))
        self.assertIn("exclude each other",
                      self.usage("--console", log, "--results", "d", "--label", "x", "-l"))
        self.assertIn("--kernel needs --smp", self.usage("--kernel", "k", "-l"))
        self.assertIn("--results needs --label", self.usage("--results", "d", "-l"))
        self.assertIn("-v needs VAR=VALUE", self.usage("--console", log, "-v", "x", "-l"))
        self.assertIn("bad variable", self.usage("--kernel", "k", "--smp", "2", "-vmem=lots", "-l"))
        with mock.patch("sys.argv", ["ktest_atf.py"]):
            self.assertIn("not VARIANT_smpN", self.usage("-l"))


FAKE_QEMU = """#!{python}
import os, sys, time
with open({count!r}, "a") as f:
    f.write("%d %s\\n" % (os.getpid(), " ".join(sys.argv[1:])))
time.sleep({delay!r})
sys.stdout.buffer.write(open({log!r}, "rb").read())
sys.stdout.flush()
sys.exit(1)
"""


class BootTest(TempDirTest):
    """Boot mode: a program named rust_smp4 boots KERNELS/rust/netbsd once per
    listing (a fake QEMU replaying all_pass.log, which reports ncpu=4)."""

    def setUp(self):
        super().setUp()
        self.kernel = os.path.join(self.tmp, "kernels", "rust", "netbsd")
        os.makedirs(os.path.dirname(self.kernel))
        with open(self.kernel, "w") as f:
            f.write("not really a kernel\n")
        self.program = os.path.join(self.tmp, "rust_smp4")
        os.symlink(PROGRAM, self.program)
        self.count = os.path.join(self.tmp, "qemu.calls")
        self.records = os.path.join(self.tmp, "records")
        self.fake_qemu()

    def fake_qemu(self, delay=0.0):
        self.qemu = os.path.join(self.tmp, "qemu-system-x86_64")
        with open(self.qemu, "w") as f:
            f.write(FAKE_QEMU.format(python=sys.executable, count=self.count, delay=delay,
                                     log=data("all_pass")))
        os.chmod(self.qemu, 0o755)

    def boots(self):
        """The fake QEMU's command lines so far."""
        if not os.path.exists(self.count):
            return []
        with open(self.count) as f:
            return [line.split(" ", 1)[1].strip() for line in f]

    def run_program(self, *args, wait=True):
        """Run the rust_smp4 symlink as kyua would (in a fresh directory)."""
        work = tempfile.mkdtemp(dir=self.tmp)
        argv = [self.program, "-vkernels=" + os.path.dirname(os.path.dirname(self.kernel)),
                "-vrecords=" + self.records, "-vqemu=" + self.qemu, *args]
        env = dict(os.environ, HOME=work, TMPDIR=work)
        if not wait:
            return subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)

    def run_case(self, case):
        resfile = os.path.join(self.tmp, "result")
        p = self.run_program("-r" + resfile, case)
        with open(resfile) as f:
            return p.returncode, f.read()

    def test_listing_boots_and_cases_share_the_boot(self):
        p = self.run_program("-l")
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertIn("\nident: localcount:hammer_drain\ndescr: localcount:hammer_drain on rust "
                      "smp4\ntimeout: 300\n", p.stdout)
        self.assertEqual(self.boots(), [" ".join(kh.qemu_command(self.kernel, 4, "q")[1:])])
        record = os.path.join(self.records, "rust_smp4")
        self.assertEqual(sorted(os.listdir(record)),
                         ["boot.json", "console.log", "junit.xml", "progress.log", "results.tps",
                          "summary.json"])
        with open(os.path.join(record, "progress.log")) as f:
            self.assertIn("[rust smp4] localcount:hammer_drain passed", f.read())
        self.assertEqual(self.run_case("localcount:hammer_drain"), (0, "passed\n"))
        self.assertEqual(self.run_case("devsw:detach_busy"),
                         (0, "skipped: needs options LOCKDEBUG\n"))
        self.assertEqual(len(self.boots()), 1)
        self.run_program("-l")                     # a new kyua run: a new boot
        self.assertEqual(len(self.boots()), 2)

    def test_rebuilt_kernel_is_booted_again(self):
        self.run_program("-l")
        st = os.stat(self.kernel)
        os.utime(self.kernel, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        self.assertEqual(self.run_case("localcount:init_fini"), (0, "passed\n"))
        self.assertEqual(len(self.boots()), 2)
        self.assertEqual(self.run_case("localcount:init_fini"), (0, "passed\n"))
        self.assertEqual(len(self.boots()), 2)

    def test_parallel_cases_boot_once(self):
        self.fake_qemu(delay=1.0)
        procs = [self.run_program("-r" + os.path.join(self.tmp, "r%d" % i),
                                  "localcount:init_fini", wait=False) for i in range(3)]
        for p in procs:
            p.communicate()
            self.assertEqual(p.returncode, 0)
        self.assertEqual(len(self.boots()), 1)

    def test_boot_failure_fails_every_case(self):
        with open(self.qemu, "w") as f:
            f.write("#!/bin/sh\necho 'qemu: could not load kernel' >&2\nexit 1\n")
        p = self.run_program("-l")
        self.assertIn("ident: ktest:boot", p.stdout)
        rc, result = self.run_case("ktest:boot")
        self.assertEqual(rc, 1)
        self.assertEqual(result, "failed: no KTEST begin line: the kernel never reached the test "
                                 "runner (QEMU exited with status 1 before KTEST done: qemu: could "
                                 "not load kernel)\n")

    def test_no_kernel_skips(self):
        os.remove(self.kernel)
        p = self.run_program("-l")
        self.assertIn("ident: ktest:boot", p.stdout)
        self.assertEqual(self.run_case("ktest:boot"),
                         (0, "skipped: no kernel at %s (build it with test-kernel/ktest.sh -B, "
                             "or set test_suites.ktest.kernels)\n" % self.kernel))
        self.assertEqual(self.boots(), [])

    def test_arch_variable(self):
        # aarch64: KERNELS/VARIANT/netbsd.img, labelled "aarch64 VARIANT smpN".
        p = self.run_program("-varch=aarch64", "-l")
        self.assertIn("ident: ktest:boot", p.stdout)
        image = os.path.join(os.path.dirname(self.kernel), "netbsd.img")
        self.assertIn("no kernel at %s" % image, self.run_program(
            "-varch=aarch64", "ktest:boot").stdout)
        shutil.copy(self.kernel, image)
        p = self.run_program("-varch=aarch64", "-l")
        self.assertIn("descr: localcount:hammer_drain on aarch64 rust smp4\n", p.stdout)
        self.assertEqual(self.boots(), [" ".join(kh.qemu_command(image, 4, "q",
                                                                 arch="aarch64")[1:])])
        self.assertTrue(os.path.isdir(os.path.join(self.records, "aarch64_rust_smp4")))
        p = self.run_program("-varch=vax", "-l")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown arch 'vax'", p.stderr)

    def test_kernel_option(self):
        self.atf("--kernel", self.kernel, "--smp", "4", "-vrecords=" + self.records,
                 "-vqemu=" + self.qemu, "-l")
        self.assertTrue(os.path.isfile(os.path.join(self.records, "smp4", "boot.json")))
        self.assertEqual(self.atf("--kernel", self.kernel, "--smp", "4",
                                  "-vrecords=" + self.records, "-vqemu=" + self.qemu,
                                  "devsw:attach_open_detach")[:2], (0, "passed\n"))
        self.assertEqual(len(self.boots()), 1)


class KyuaDirTest(TempDirTest):
    def test_write_kyua_dir(self):
        d = os.path.join(self.tmp, "kyua")
        ktest_kyua.write_kyua_dir(d, {"a": ["--console", "x y.log"], "sub/b": ["-x"]}, "a test")
        with open(os.path.join(d, "Kyuafile")) as f:
            top = f.read()
        self.assertIn('syntax(2)\n\ntest_suite("ktest")\n', top)
        self.assertIn('atf_test_program{name="a"}\ninclude("sub/Kyuafile")\n', top)
        with open(os.path.join(d, "sub", "Kyuafile")) as f:
            self.assertIn('atf_test_program{name="b"}\n', f.read())
        with open(os.path.join(d, "a")) as f:
            self.assertTrue(f.read().endswith("exec %s %s --console 'x y.log' \"$@\"\n"
                                              % (sys.executable, PROGRAM)))
        self.assertTrue(os.access(os.path.join(d, "sub", "b"), os.X_OK))
        with self.assertRaises(ValueError):
            ktest_kyua.write_kyua_dir(d, {"../a": []}, "bad")

    def test_differences(self):
        self.assertEqual(ktest_kyua.differences({"p:a": "passed", "p:b": "passed"},
                                                {"p:a": "passed", "p:c": "failed: x"}),
                         ["p:b: kyua says nothing, expected 'passed'",
                          "p:c: kyua says 'failed: x', expected nothing"])

    def test_check_junit(self):
        path = os.path.join(self.tmp, "junit.xml")
        with open(path, "w") as f:
            f.write('<testsuite><testcase classname="d.p" name="a:b" time="0.1"/>'
                    '<testcase classname="d.p" name="a:c"><failure message="why"/></testcase>'
                    '<testcase classname="d.p" name="a:d"><skipped/></testcase>'
                    '<testcase classname="d.p" name="a:e"><error message="oops"/></testcase>'
                    '</testsuite>')
        results = {"d/p:a:b": "passed", "d/p:a:c": "failed: why", "d/p:a:d": "skipped: x",
                   "d/p:a:e": "broken: oops"}
        self.assertEqual(ktest_kyua.check_junit(path, results), [])
        results.update({"d/p:a:b": "failed: why", "d/p:a:c": "failed: other"})
        del results["d/p:a:e"]
        self.assertEqual(len(ktest_kyua.check_junit(path, results)), 3)

    def test_read_expected(self):
        path = os.path.join(self.tmp, "x.expected")
        with open(path, "w") as f:
            f.write("# comment\n\np:a:b  ->  failed: x  ->  y\n")
        self.assertEqual(ktest_kyua.read_expected(path), {"p:a:b": "failed: x  ->  y"})
        with open(path, "a") as f:
            f.write("p:a:c passed\n")
        with self.assertRaisesRegex(ValueError, ":4: not"):
            ktest_kyua.read_expected(path)

    def test_expected_file_covers_every_recording(self):
        expected = ktest_kyua.read_expected(ktest_kyua.RECORDINGS_EXPECTED)
        names = {n[:-len(".log")] for n in os.listdir(TESTDATA) if n.endswith(".log")}
        self.assertEqual({c.split(":", 1)[0] for c in expected}, names)
        for name in names:
            for case in kh.replay(data(name), progress=None).cases:
                self.assertIn("%s:%s" % (name, case.name), expected)


@unittest.skipUnless(HAVE_KYUA, "kyua is not installed")
class KyuaTest(TempDirTest):
    """ktest_kyua.check_results() over a small results directory."""

    def check(self):
        with mock.patch("sys.stdout", io.StringIO()) as out:
            ok = ktest_kyua.check_results(self.results_dir("all_pass", "root_prompt"))
        return ok, out.getvalue()

    def test_kyua_reports_what_the_harness_does(self):
        ok, out = self.check()
        self.assertTrue(ok, out)
        self.assertIn("kyua: Test cases: 7 total, 1 skipped, 0 expected failures, 0 broken, "
                      "1 failed\n", out)
        kdir = os.path.join(self.tmp, "results", "kyua")
        for name in ("results.db", "report.txt", "junit.xml", os.path.join("html", "index.html")):
            self.assertTrue(os.path.isfile(os.path.join(kdir, name)), name)

    def test_disagreement_fails(self):
        # The expectations say everything passed; the programs (other
        # processes) still report what the recordings say.
        with mock.patch.object(ktest_kyua.ktest_atf, "atf_result", return_value="passed"):
            ok, out = self.check()
        self.assertFalse(ok)
        self.assertIn("kyua: MISMATCH root_prompt:ktest:boot: kyua says 'failed: kernel stopped "
                      "at the root device prompt", out)
        self.assertIn("kyua: 2 case(s) not reported as expected\n", out)


if __name__ == "__main__":
    unittest.main()
