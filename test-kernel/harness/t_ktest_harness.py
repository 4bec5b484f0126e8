"""Tests of ktest_harness.py: recorded consoles (testdata/) and a fake QEMU.

Run from the repository root:
  python3 -m unittest discover -s test-kernel/harness -p 't_*.py' -v
"""
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ktest_harness as kh  # noqa: E402

DATA = os.path.join(HERE, "testdata")


def data(name):
    return os.path.join(DATA, name)


def replay(name, **kw):
    kw.setdefault("progress", None)
    return kh.replay(data(name), **kw)


def by_name(result):
    return {c.name: c for c in result.cases}


def run_main(argv):
    """Run the CLI; returns (exit status, stdout lines)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = kh.main(argv)
    return rc, out.getvalue().splitlines()


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t_ktest_harness.")
        self.addCleanup(shutil.rmtree, self.tmp)


class ReplayTest(unittest.TestCase):
    """Each recorded console, interpreted with replay()."""

    def test_all_pass(self):
        r = replay("all_pass.log")
        self.assertTrue(r.ok)
        self.assertEqual(r.errors, [])
        self.assertEqual(r.counts(), dict(passed=5, failed=0, skipped=1))
        self.assertEqual(r.impl, "rust")
        self.assertEqual(r.meta, dict(version="1", ncpu="4", hz="100"))
        self.assertEqual(r.done, dict(passed=5, failed=0, skipped=1, elapsed_ms=3794))
        self.assertEqual([c.name for c in r.cases], [
            "localcount:init_fini", "localcount:acquire_release", "localcount:hammer_drain",
            "localcount:drain_waits", "devsw:attach_open_detach", "devsw:detach_busy"])
        cases = by_name(r)
        self.assertEqual(cases["devsw:detach_busy"].status, "skipped")
        self.assertEqual(cases["devsw:detach_busy"].reason, "needs options LOCKDEBUG")
        hammer = cases["localcount:hammer_drain"]
        self.assertEqual(hammer.output, ["4 threads x 100000 acquire/release", "drained after 12 ms"])
        self.assertAlmostEqual(hammer.duration, 3.21, places=3)   # kernel timestamps
        self.assertTrue(all(c.reported for c in r.cases))
        self.assertEqual(kh.summary_line([r]), "5 passed, 0 failed, 1 skipped")
        self.assertEqual(kh.exit_status([r]), 0)

    def test_userland_session_follows(self):
        # "done ... next=userland" keeps the run going: /sbin/init's
        # session is a second begin/plan/.../done in the same boot.
        r = replay("userland_pass.log")
        self.assertEqual(r.errors, [])
        self.assertTrue(r.ok)
        self.assertEqual(kh.summary_line([r]), "12 passed, 0 failed, 1 skipped")
        self.assertEqual(r.meta, dict(version="1", ncpu="4", hz="100"))
        self.assertEqual(r.done, dict(passed=7, failed=0, skipped=0, elapsed_ms=45260))
        cases = by_name(r)
        self.assertEqual(cases["userland:storm"].session, 1)
        self.assertEqual(cases["devsw:detach_busy"].session, 0)
        self.assertIn("raced: 41 of 200 unloads went on with d_opens inside the driver;"
                      " 128 d_opens were drained by devsw_detach and refused (ENXIO);"
                      " 356 unloads refused (EBUSY) with a unit open",
                      cases["userland:storm"].output)

    def test_userland_session_never_comes(self):
        r = replay("userland_missing.log")
        self.assertFalse(r.ok)
        self.assertIsNone(r.done)
        self.assertEqual([c.name for c in r.cases if c.status == "failed"], ["ktest:boot"])
        self.assertIn("panic: init died (signal 0, exit 1)", r.errors)

    def test_userland_panic(self):
        r = replay("userland_panic.log")
        cases = by_name(r)
        self.assertEqual(cases["userland:load_unload"].status, "passed")
        self.assertEqual(cases["userland:storm"].status, "failed")
        self.assertTrue(cases["userland:storm"].reason.startswith("panic: kernel diagnostic"))
        self.assertEqual(cases["userland:everyday_devices"].reason, "not run: kernel panicked")

    def test_sessions_are_counted_apart(self):
        # Each session's done is checked against its own cases.
        with open(data("userland_pass.log"), "rb") as f:
            text = f.read().decode()
        bad = text.replace("KTEST: done passed=7 failed=0", "KTEST: done passed=12 failed=0")
        path = os.path.join(tempfile.mkdtemp(prefix="t_ktest_harness."), "bad.log")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        with open(path, "wb") as f:
            f.write(bad.encode())
        r = kh.replay(path, progress=None)
        self.assertFalse(r.ok)
        self.assertIn("KTEST done says passed=12 failed=0 skipped=0 but the console reported"
                      " passed=7 failed=0 skipped=0", r.errors)
        # Without next=, a second begin is still an error.
        with open(path, "wb") as f:
            f.write(text.replace(" next=userland", "").encode())
        r = kh.replay(path, progress=None)
        self.assertIn("second KTEST begin line (did the kernel restart?)", r.errors)

    def test_one_failed(self):
        r = replay("one_failed.log")
        self.assertEqual(r.errors, [])
        self.assertEqual(r.impl, "c")
        failed = [c for c in r.cases if c.status == "failed"]
        self.assertEqual([c.name for c in failed], ["localcount:drain_waits"])
        self.assertEqual(failed[0].reason, "/usr/src/sys/dev/ktest/ktest_localcount.c:212: "
                                           "lc.lc_totalp == NULL not met (3 references left)")
        self.assertEqual(kh.summary_line([r]), "5 passed, 1 failed")
        self.assertEqual(kh.exit_status([r]), 1)

    def test_panic_mid_case(self):
        r = replay("panic.log")
        cases = by_name(r)
        drain = cases["localcount:drain_waits"]
        self.assertEqual(drain.status, "failed")
        self.assertTrue(drain.reason.startswith(
            'panic: kernel diagnostic assertion "lc->lc_totalp == NULL" failed: file '), drain.reason)
        self.assertIn('line 123', drain.reason)
        self.assertFalse(drain.reported)
        self.assertEqual(drain.output, ["draining with 3 holders"])
        self.assertIn("[   4.5123456] cpu2: Begin traceback...", drain.console)
        self.assertIn("[   4.5123456] rebooting...", drain.console)
        for name in ("devsw:attach_open_detach", "devsw:detach_busy"):
            self.assertEqual(cases[name].status, "failed")
            self.assertEqual(cases[name].reason, "not run: kernel panicked")
            self.assertEqual(cases[name].duration, 0.0)
        self.assertEqual(r.counts(), dict(passed=3, failed=3, skipped=0))
        self.assertEqual(r.errors[0], drain.reason)
        self.assertIn("without KTEST done", r.errors[1])
        self.assertFalse(any(c.tp == "ktest" for c in r.cases))   # no pseudo-case needed
        self.assertEqual(kh.exit_status([r]), 1)

    def test_fatal_trap(self):
        cases = by_name(replay("trap.log"))
        self.assertEqual(cases["devsw:attach_open_detach"].reason, "fatal page fault in supervisor mode")
        self.assertIn("[   4.8123456] panic: trap", cases["devsw:attach_open_detach"].console)
        self.assertEqual(cases["devsw:detach_busy"].reason, "not run: kernel took a fatal trap")

    def test_ddb(self):
        r = replay("ddb.log")
        cases = by_name(r)
        self.assertTrue(cases["localcount:init_fini"].reason.startswith(
            "kernel entered ddb: Stopped in pid 0.51 (system)"))
        self.assertEqual(cases["devsw:detach_busy"].reason, "not run: kernel entered ddb")
        self.assertFalse(r.ok)

    def test_kernel_watchdog(self):
        r = replay("watchdog.log")
        cases = by_name(r)
        self.assertEqual(cases["localcount:drain_waits"].reason, "timeout after 60 s")
        self.assertTrue(cases["localcount:drain_waits"].reported)
        self.assertEqual(cases["devsw:attach_open_detach"].reason, "not run: kernel panicked")
        self.assertIn("panic: ktest: watchdog expired in localcount:drain_waits", r.errors)

    def test_hang_is_eof_without_done(self):
        r = replay("hang.log")
        cases = by_name(r)
        self.assertEqual(cases["localcount:init_fini"].status, "passed")
        hammer = cases["localcount:hammer_drain"]
        self.assertEqual(hammer.status, "failed")
        self.assertIn("hang or truncated log", hammer.reason)
        self.assertTrue(cases["devsw:detach_busy"].reason.startswith("not run: "))
        self.assertEqual(r.errors, ["console log ends without KTEST done (hang or truncated log)"])
        self.assertEqual(kh.summary_line([r]), "2 passed, 4 failed")

    def test_root_device_prompt(self):
        r = replay("root_prompt.log")
        self.assertEqual(len(r.errors), 1)
        self.assertIn("root device prompt", r.errors[0])
        self.assertEqual([(c.name, c.status) for c in r.cases], [("ktest:boot", "failed")])
        self.assertEqual(r.cases[0].reason, r.errors[0])
        self.assertEqual(kh.summary_line([r]), "0 passed, 1 failed")
        self.assertEqual(kh.exit_status([r]), 1)

    def test_done_count_mismatch(self):
        r = replay("done_mismatch.log")
        self.assertEqual(r.errors, ["KTEST done says passed=1 failed=1 skipped=0 but the "
                                    "console reported passed=2 failed=0 skipped=0"])
        self.assertEqual(r.cases[-1].name, "ktest:boot")
        self.assertEqual(kh.summary_line([r]), "2 passed, 1 failed")
        self.assertEqual(kh.exit_status([r]), 1)

    def test_zero_cases(self):
        r = replay("zero_cases.log")
        self.assertEqual(r.errors, ["no test cases ran"])
        self.assertEqual(kh.exit_status([r]), 1)

    def test_interleaved_noise(self):
        r = replay("interleaved.log")
        self.assertTrue(r.ok, r.errors)
        x, y = r.cases
        self.assertEqual((x.name, x.status, y.name, y.status),
                         ("localcount:x", "passed", "localcount:y", "passed"))
        # The tag is found after another CPU's unterminated printf, and the
        # timestamp right before the tag is the time of the line.
        self.assertAlmostEqual(x.duration, 2.1 - 1.04, places=6)
        self.assertIn("[   2.0512345] acpi0: GPE 0x3 spuri", x.console)
        self.assertIn("[   1.0600000] com0: silo overflow\x07\x1b[0m", x.console)
        # "panic:" inside tc-so text is not a panic; spacing is kept.
        self.assertEqual(x.output, ["no panic: expected with  two  spaces"])
        self.assertEqual(y.output, ["halfway"])
        self.assertEqual(y.console, ["noise without a timestamp"])

    def test_smp_mismatch(self):
        r = replay("all_pass.log", smp=2)
        self.assertEqual(r.errors, ["kernel reports ncpu=4 but QEMU was given -smp 2"])
        self.assertFalse(r.ok)

    def test_progress_lines(self):
        lines = []
        kh.replay(data("all_pass.log"), label="rust smp4", progress=lines.append)
        self.assertIn("[rust smp4] localcount:hammer_drain started", lines)
        self.assertIn("[rust smp4] localcount:hammer_drain: drained after 12 ms", lines)
        self.assertIn("[rust smp4] localcount:hammer_drain passed (3.2 s)", lines)
        self.assertIn("[rust smp4] devsw:detach_busy skipped: needs options LOCKDEBUG (0.0 s)", lines)
        self.assertTrue(all(line.startswith("[rust smp4] ") for line in lines))


class ParserTest(unittest.TestCase):
    """ConsoleParser fed line by line."""

    def parser(self, *lines, smp=None):
        p = kh.ConsoleParser("t", smp=smp, progress=None)
        for i, line in enumerate(lines):
            p.feed(line, 1000.0 + i)
        return p

    BEGIN = "KTEST: begin version=1 ncpu=2 hz=100"

    def test_prompt_without_newline(self):
        p = self.parser("[   1.0] boot device: <unknown>")
        p.feed_partial("[   1.2017158] root device: ", 1001.0)
        self.assertEqual(p.prompt, "root device prompt")
        p.feed_partial("db{1}> ", 1002.0)
        self.assertEqual(p.prompt, "root device prompt")   # first one wins

    def test_root_prompt_after_begin(self):
        p = self.parser(self.BEGIN, "KTEST: done passed=0 failed=0 skipped=0", "root device: ")
        self.assertEqual(p.errors, [kh.ROOT_PROMPT_LATE_ERROR])

    def test_ddb_prompt_is_a_crash(self):
        p = self.parser(self.BEGIN, "KTEST: tc-start a b")
        p.feed_partial("db{1}> ", 1003.0)
        self.assertEqual(p.prompt, "ddb prompt")
        self.assertEqual(p.cases[("a", "b")].reason, "kernel entered ddb: db{1}>")

    def test_crlf_and_default_reason(self):
        p = self.parser(self.BEGIN + "\r", "KTEST: tc-start a b\r", "KTEST: tc-end a b failed\r")
        self.assertEqual(p.cases[("a", "b")].reason, "(no reason given)")

    def test_malformed_lines_and_unknown_status(self):
        p = self.parser(self.BEGIN, "KTEST: tc-end a", "KTEST: tc-start a b",
                        "KTEST: tc-end a b exploded badly", "KTEST: done passed=x")
        self.assertEqual(p.errors, ["malformed KTEST line: KTEST: tc-end a",
                                    "malformed KTEST line: KTEST: done passed=x"])
        c = p.cases[("a", "b")]
        self.assertEqual((c.status, c.reason), ("failed", "unknown status 'exploded' badly"))

    def test_protocol_version(self):
        p = self.parser("KTEST: begin version=2 ncpu=2 hz=100")
        self.assertEqual(p.errors, ["unsupported KTEST protocol version '2' (expected 1)"])

    def test_start_without_end(self):
        p = self.parser(self.BEGIN, "KTEST: tc-start a x", "KTEST: tc-start a y",
                        "KTEST: tc-end a y passed", "KTEST: tc-end a y passed")
        self.assertEqual(p.cases[("a", "x")].reason, "no tc-end before the next tc-start")
        self.assertEqual(p.errors, ["second tc-end for a:y"])

    def test_runner_error_in_done(self):
        p = self.parser(self.BEGIN, "KTEST: done passed=0 failed=1 skipped=0 error=kthread_create:35")
        r = p.finish(1010.0)
        self.assertIn("kernel test runner error: kthread_create:35", r.errors)
        self.assertIn("KTEST done says passed=0 failed=1 skipped=0 but the console reported "
                      "passed=0 failed=0 skipped=0", r.errors)
        self.assertEqual(r.cases[-1].name, "ktest:boot")

    def test_no_output_at_all(self):
        r = kh.ConsoleParser("t", progress=None).finish(1.0, "QEMU exited with status 1 before KTEST done")
        self.assertEqual(r.errors, ["no KTEST begin line: the kernel never reached the test runner "
                                    "(QEMU exited with status 1 before KTEST done)"])
        self.assertEqual(kh.summary_line([r]), "0 passed, 1 failed")


class ReportTest(TempDirTest):
    """write_reports() over several runs."""

    def results(self):
        return [replay("all_pass.log", label="rust smp4", smp=4), replay("panic.log", label="c smp4"),
                replay("interleaved.log", label="rust smp4"), replay("root_prompt.log", label="c smp1")]

    def test_junit_is_well_formed(self):
        results = self.results()
        paths = kh.write_reports(results, self.tmp)
        root = ET.parse(paths["junit"]).getroot()
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual((root.get("tests"), root.get("failures"), root.get("skipped")), ("15", "4", "1"))
        suites = root.findall("testsuite")
        self.assertEqual([s.get("name") for s in suites], ["rust smp4", "c smp4", "rust smp4", "c smp1"])
        props = {p.get("name"): p.get("value") for p in suites[0].find("properties")}
        self.assertEqual((props["smp"], props["impl"], props["ncpu"]), ("4", "rust", "4"))
        self.assertEqual({p.get("name"): p.get("value") for p in suites[1].find("properties")}["impl"], "c")
        self.assertEqual((suites[0].get("tests"), suites[0].get("failures"), suites[0].get("skipped")),
                         ("6", "0", "1"))
        # Same label twice: the class names still tell the runs apart.
        classes = [{tc.get("classname") for tc in s.iter("testcase")} for s in suites]
        self.assertEqual(classes[0], {"rust_smp4.localcount", "rust_smp4.devsw"})
        self.assertEqual(classes[2], {"rust_smp4-2.localcount"})
        hammer = suites[0].find("testcase[@name='hammer_drain']")
        self.assertEqual(hammer.find("system-out").text, "4 threads x 100000 acquire/release\n"
                                                         "drained after 12 ms")
        self.assertIsNotNone(suites[0].find("testcase[@name='detach_busy']/skipped"))
        drain = suites[1].find("testcase[@name='drain_waits']")
        self.assertTrue(drain.find("failure").get("message").startswith("panic: kernel diagnostic"))
        self.assertIn("cpu2: Begin traceback...", drain.find("system-err").text)
        self.assertIn("silo overflow??", suites[2].find("testcase[@name='x']/system-err").text)
        self.assertIn("root device prompt", suites[3].find("system-err").text)
        self.assertEqual(suites[3].find("testcase").get("name"), "boot")

    def test_tps_structure(self):
        results = self.results()
        with open(kh.write_reports(results, self.tmp)["tps"]) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[:2], ['Content-Type: application/X-atf-tps; version="3"', ""])
        self.assertTrue(lines[-1].startswith("info: time.end, "))
        body = [l for l in lines[2:] if not l.startswith("info: ")]
        ntps = int(re.fullmatch(r"tps-count: (\d+)", body[0]).group(1))
        ts = r"\d+\.\d{6}"
        programs, i = [], 1
        while i < len(body):
            m = re.fullmatch(r"tp-start: (%s), ([^,]+), (\d+)" % ts, body[i])
            self.assertIsNotNone(m, body[i])
            name, ncases, i = m.group(2), int(m.group(3)), i + 1
            ends = []
            for _ in range(ncases):
                tc = re.fullmatch(r"tc-start: %s, (\w+)" % ts, body[i]).group(1)
                i += 1
                while body[i].startswith(("tc-so:", "tc-se:")):
                    i += 1
                m = re.fullmatch(r"tc-end: %s, (\w+), (passed|failed, .+|skipped, .+)" % ts, body[i])
                self.assertIsNotNone(m, body[i])
                self.assertEqual(m.group(1), tc)
                ends.append(m.group(2))
                i += 1
            self.assertRegex(body[i], r"^tp-end: %s, %s$" % (ts, re.escape(name)))
            programs.append((name, ends))
            i += 1
        self.assertEqual(len(programs), ntps)
        self.assertEqual([p[0] for p in programs], [
            "rust_smp4/localcount", "rust_smp4/devsw", "c_smp4/localcount", "c_smp4/devsw",
            "rust_smp4-2/localcount", "c_smp1/ktest"])
        self.assertEqual(programs[3][1], ["failed, not run: kernel panicked"] * 2)
        self.assertIn("tc-so:drained after 12 ms", lines)
        self.assertIn("skipped, needs options LOCKDEBUG", programs[1][1])

    def test_json_summary(self):
        results = self.results()
        with open(kh.write_reports(results, self.tmp)["json"]) as f:
            d = json.load(f)
        self.assertEqual((d["passed"], d["failed"], d["skipped"], d["ok"]), (10, 4, 1, False))
        self.assertEqual(d["summary"], "10 passed, 4 failed, 1 skipped")
        self.assertEqual([r["label"] for r in d["runs"]], ["rust smp4", "c smp4", "rust smp4", "c smp1"])
        self.assertEqual(d["runs"][1]["cases"][3]["output"], ["draining with 3 holders"])

    def test_label_slug(self):
        self.assertEqual(kh.label_slug("rust smp4"), "rust_smp4")
        self.assertEqual(kh.label_slug("c/lockdebug: smp8"), "c_lockdebug_smp8")
        self.assertEqual(kh.label_slug(" ! "), "run")

    def test_aggregate_line_and_status(self):
        ok = [replay("all_pass.log"), replay("interleaved.log")]
        self.assertEqual(kh.summary_line(ok), "7 passed, 0 failed, 1 skipped")
        self.assertEqual(kh.exit_status(ok), 0)
        self.assertEqual(kh.exit_status(ok + [replay("one_failed.log")]), 1)
        self.assertEqual(kh.exit_status([]), 1)


class CliReplayTest(TempDirTest):
    """main() with --replay: outputs, final line, exit codes."""

    def test_all_pass(self):
        out = os.path.join(self.tmp, "out")
        rc, lines = run_main(["--replay", data("all_pass.log"), "--out", out, "--label", "rust smp4"])
        self.assertEqual(rc, 0)
        self.assertEqual(lines[-1], "5 passed, 0 failed, 1 skipped")
        self.assertIn("[rust smp4] localcount:hammer_drain passed (3.2 s)", lines)
        self.assertEqual(sorted(os.listdir(out)), ["console.log", "junit.xml", "results.tps", "summary.json"])
        with open(os.path.join(out, "console.log"), "rb") as a, open(data("all_pass.log"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_failures_exit_1(self):
        for log, last in (("one_failed.log", "5 passed, 1 failed"), ("panic.log", "3 passed, 3 failed"),
                          ("hang.log", "2 passed, 4 failed"), ("root_prompt.log", "0 passed, 1 failed"),
                          ("done_mismatch.log", "2 passed, 1 failed"),
                          ("zero_cases.log", "0 passed, 1 failed")):
            with self.subTest(log=log):
                rc, lines = run_main(["--replay", data(log), "--out", os.path.join(self.tmp, log)])
                self.assertEqual((rc, lines[-1]), (1, last))

    def test_console_log_option(self):
        log = os.path.join(self.tmp, "kept.log")
        rc, _ = run_main(["--replay", data("one_failed.log"), "--out", self.tmp, "--console-log", log])
        self.assertEqual(rc, 1)
        self.assertTrue(os.path.exists(log))
        with open(os.path.join(self.tmp, "summary.json")) as f:
            self.assertEqual(json.load(f)["runs"][0]["console_log"], log)

    def test_usage_errors(self):
        for argv in ([], ["--kernel", "k"], ["--kernel", "k", "--smp", "0"],
                     ["--replay", os.path.join(self.tmp, "missing.log"), "--out", self.tmp]):
            with self.subTest(argv=argv), contextlib.redirect_stderr(io.StringIO()):
                with self.assertRaises(SystemExit) as cm:
                    run_main(argv)
                self.assertEqual(cm.exception.code, 2)


FAKE_QEMU = """#!{python}
import os, sys, time
with open({argfile!r}, "w") as f:
    f.write("\\n".join([str(os.getpid())] + sys.argv[1:]))
data = open({log!r}, "rb").read() if {log!r} else b""
for i in range(0, len(data), 97):        # in pieces that split lines
    sys.stdout.buffer.write(data[i:i + 97])
    sys.stdout.buffer.flush()
sys.stderr.write({stderr!r})
sys.stderr.flush()
while {hang!r}:
    time.sleep(60)
sys.exit({rc!r})
"""


class LiveBootTest(TempDirTest):
    """run_boot() and main() driving a fake QEMU that replays a console."""

    def fake_qemu(self, log=None, rc=1, hang=False, stderr=""):
        self.argfile = os.path.join(self.tmp, "qemu.args")
        path = os.path.join(self.tmp, "qemu-system-x86_64")
        with open(path, "w") as f:
            f.write(FAKE_QEMU.format(python=sys.executable, argfile=self.argfile,
                                     log=data(log) if log else "", rc=rc, hang=hang, stderr=stderr))
        os.chmod(path, 0o755)
        return path

    def boot(self, log=None, rc=1, hang=False, stderr="", **kw):
        qemu = self.fake_qemu(log, rc, hang, stderr)
        self.progress = []
        kw.setdefault("label", "rust smp4")
        t0 = time.monotonic()
        r = kh.run_boot(os.path.join(self.tmp, "netbsd"), 4, qemu=qemu, progress=self.progress.append,
                        console_log=os.path.join(self.tmp, "console.log"), **kw)
        self.elapsed = time.monotonic() - t0
        return r

    def qemu_args(self):
        """The fake QEMU's pid, then its arguments."""
        with open(self.argfile) as f:
            return f.read().splitlines()

    def qemu_pid(self):
        return int(self.qemu_args()[0])

    def assert_qemu_gone(self):
        with self.assertRaises(ProcessLookupError):
            os.kill(self.qemu_pid(), 0)

    def test_all_pass_exit_status_1(self):
        r = self.boot("all_pass.log", rc=1)
        self.assertTrue(r.ok, r.errors)
        self.assertEqual(r.qemu_rc, 1)
        self.assertEqual(kh.summary_line([r]), "5 passed, 0 failed, 1 skipped")
        args = self.qemu_args()[1:]
        self.assertEqual(args, ["-M", "pc", "-accel", "tcg,thread=multi", "-cpu", "qemu64,-tsc",
                                "-smp", "4", "-m", "512", "-display", "none", "-nodefaults",
                                "-serial", "stdio", "-no-reboot",
                                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                "-kernel", os.path.join(self.tmp, "netbsd"), "-append", "console=com"])
        self.assertNotIn("kvm", " ".join(args))
        with open(r.console_log, "rb") as a, open(data("all_pass.log"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertIn("[rust smp4] localcount:hammer_drain started", self.progress)
        self.assertTrue(any(re.fullmatch(r"\[rust smp4\] localcount:hammer_drain passed \(\d+\.\d s\)", l)
                            for l in self.progress))

    def test_failures_exit_status_3(self):
        r = self.boot("one_failed.log", rc=3)
        self.assertEqual(r.errors, [])
        self.assertEqual(r.counts()["failed"], 1)
        self.assertFalse(r.ok)

    def test_status_3_without_failures(self):
        r = self.boot("all_pass.log", rc=3)
        self.assertEqual(r.errors, ["QEMU exit status 3 says cases failed, but KTEST done reported none"])
        self.assertEqual(kh.exit_status([r]), 1)

    def test_unexpected_exit_status(self):
        r = self.boot("all_pass.log", rc=2, stderr="qemu-system-x86_64: something broke\n")
        self.assertEqual(r.errors, ["QEMU exited with status 2: qemu-system-x86_64: something broke"])
        self.assertEqual(r.cases[-1].name, "ktest:boot")

    def test_reset_after_done_is_clean(self):
        self.assertTrue(self.boot("all_pass.log", rc=0).ok)

    def test_panic_then_reset(self):
        r = self.boot("panic.log", rc=0)
        self.assertEqual(r.qemu_rc, 0)
        self.assertEqual(by_name(r)["devsw:detach_busy"].reason, "not run: kernel panicked")
        self.assertEqual(r.errors[1], "QEMU exited with status 0 before KTEST done")

    def test_qemu_error_before_boot(self):
        r = self.boot(None, rc=1, stderr="qemu: could not open kernel file 'netbsd'\n")
        self.assertFalse(r.ok)
        self.assertEqual(r.errors, ["no KTEST begin line: the kernel never reached the test runner "
                                    "(QEMU exited with status 1 before KTEST done: "
                                    "qemu: could not open kernel file 'netbsd')"])

    def test_qemu_does_not_start(self):
        r = kh.run_boot("netbsd", 2, qemu=os.path.join(self.tmp, "no-such-qemu"), progress=None)
        self.assertEqual(len(r.errors), 1)
        self.assertTrue(r.errors[0].startswith("QEMU failed to start: "))
        self.assertEqual(kh.summary_line([r]), "0 passed, 1 failed")

    def test_overall_timeout_kills_qemu(self):
        r = self.boot("hang.log", hang=True, timeout=1.5, case_timeout=60)
        self.assertLess(self.elapsed, 6)
        self.assert_qemu_gone()
        self.assertIsNone(r.qemu_rc)
        hammer = by_name(r)["localcount:hammer_drain"]
        self.assertEqual(hammer.reason, "timeout: the run exceeded 1.5 s")
        self.assertEqual(hammer.output, ["4 threads x 100000 acquire/release"])
        self.assertEqual(r.errors, ["timeout: the run exceeded 1.5 s (QEMU killed)"])
        self.assertIn("[rust smp4] localcount:hammer_drain failed: timeout: the run exceeded 1.5 s",
                      [l.rsplit(" (", 1)[0] for l in self.progress])

    def test_case_timeout(self):
        r = self.boot("hang.log", hang=True, timeout=30, case_timeout=1)
        self.assertLess(self.elapsed, 6)
        self.assert_qemu_gone()
        self.assertEqual(by_name(r)["localcount:hammer_drain"].reason, "timeout: no tc-end within 1 s")
        self.assertEqual(r.errors, ["case timeout: localcount:hammer_drain had no tc-end within 1 s "
                                    "(QEMU killed)"])

    def test_hang_before_begin(self):
        r = self.boot(None, hang=True, timeout=1)
        self.assert_qemu_gone()
        self.assertEqual(r.errors, ["no KTEST begin line: the kernel never reached the test runner "
                                    "(timeout: the run exceeded 1 s (QEMU killed))"])

    def test_root_prompt_stops_qemu_at_once(self):
        r = self.boot("root_prompt.log", hang=True, timeout=30)
        self.assertLess(self.elapsed, 6)
        self.assert_qemu_gone()
        self.assertEqual(len(r.errors), 1)
        self.assertIn("root device prompt", r.errors[0])

    def test_ddb_prompt_stops_qemu_at_once(self):
        r = self.boot("ddb.log", hang=True, timeout=30)
        self.assertLess(self.elapsed, 6)
        self.assertIn("QEMU killed at the ddb prompt", r.errors)

    def test_crash_without_reset(self):
        with mock.patch.object(kh, "CRASH_GRACE", 0.5):
            r = self.boot("panic.log", hang=True, timeout=30)
        self.assertLess(self.elapsed, 6)
        self.assert_qemu_gone()
        self.assertTrue(r.errors[0].startswith("panic: kernel diagnostic assertion"))
        self.assertEqual(r.errors[1], "QEMU killed 0.5 s after the crash")

    def test_done_without_exit(self):
        with mock.patch.object(kh, "DONE_GRACE", 0.5):
            r = self.boot("all_pass.log", hang=True, timeout=30)
        self.assertLess(self.elapsed, 6)
        self.assert_qemu_gone()
        self.assertEqual(r.errors, ["QEMU did not exit within 0.5 s of KTEST done (QEMU killed)"])
        self.assertEqual((r.cases[-1].name, r.cases[-1].reason), ("ktest:boot", r.errors[0]))
        self.assertEqual(r.counts(), dict(passed=5, failed=1, skipped=1))
        self.assertEqual(kh.exit_status([r]), 1)

    def test_cli(self):
        for log, status, rc, last in (("all_pass.log", 1, 0, "5 passed, 0 failed, 1 skipped"),
                                      ("one_failed.log", 3, 1, "5 passed, 1 failed")):
            with self.subTest(log=log):
                out = os.path.join(self.tmp, log)
                code, lines = run_main(["--kernel", "netbsd", "--smp", "4", "--qemu",
                                        self.fake_qemu(log, status), "--out", out, "--label", "c smp4",
                                        "--timeout", "20", "--case-timeout", "10", "--mem", "256"])
                self.assertEqual((code, lines[-1]), (rc, last))
                self.assertIn("256", self.qemu_args())
                with open(os.path.join(out, "summary.json")) as f:
                    self.assertEqual(json.load(f)["runs"][0]["qemu_rc"], status)
                ET.parse(os.path.join(out, "junit.xml"))

    def test_i386_command(self):
        r = self.boot("all_pass.log", rc=1, arch="i386")
        self.assertTrue(r.ok, r.errors)
        self.assertEqual(self.qemu_args()[1:], [
            "-M", "pc", "-accel", "tcg,thread=multi", "-cpu", "qemu32,-tsc",
            "-smp", "4", "-m", "512", "-display", "none", "-nodefaults", "-serial", "stdio",
            "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", os.path.join(self.tmp, "netbsd"), "-append", "-a"])
        self.assertEqual(r.to_dict()["arch"], "i386")

    def test_aarch64_command_and_reset(self):
        r = self.boot("all_pass.log", rc=0, arch="aarch64")
        self.assertTrue(r.ok, r.errors)
        self.assertEqual(self.qemu_args()[1:], [
            "-M", "virt", "-accel", "tcg,thread=multi", "-cpu", "cortex-a57",
            "-smp", "4", "-m", "512", "-display", "none", "-nodefaults", "-serial", "stdio",
            "-no-reboot", "-kernel", os.path.join(self.tmp, "netbsd")])
        self.assertEqual(kh.ARCHES["aarch64"].image, "netbsd.img")

    def test_aarch64_has_no_exit_port(self):
        # Status 1 or 3 only comes from isa-debug-exit, which aarch64's
        # virt machine does not have: something else ended QEMU.
        for rc in (1, 3):
            with self.subTest(rc=rc):
                r = self.boot("all_pass.log", rc=rc, arch="aarch64")
                self.assertEqual(r.errors, ["QEMU exited with status %d" % rc])
                self.assertFalse(r.ok)

    def test_default_qemu_per_arch(self):
        self.assertEqual(kh.qemu_command("k", 2)[0], "qemu-system-x86_64")
        self.assertEqual(kh.qemu_command("k", 2, arch="i386")[0], "qemu-system-i386")
        self.assertEqual(kh.qemu_command("k", 2, arch="aarch64")[0], "qemu-system-aarch64")
        self.assertEqual(kh.qemu_command("k", 2, "q", arch="aarch64")[0], "q")

    def test_cli_arch(self):
        out = os.path.join(self.tmp, "out")
        code, lines = run_main(["--kernel", "netbsd.img", "--smp", "4", "--arch", "aarch64",
                                "--qemu", self.fake_qemu("all_pass.log", 0), "--out", out])
        self.assertEqual((code, lines[-1]), (0, "5 passed, 0 failed, 1 skipped"))
        self.assertIn("virt", self.qemu_args())
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            run_main(["--kernel", "k", "--smp", "2", "--arch", "sparc64"])

    def test_several_boots_aggregate(self):
        results = [self.boot("all_pass.log", rc=1, label="rust smp4"),
                   self.boot("one_failed.log", rc=3, label="c smp4")]
        paths = kh.write_reports(results, self.tmp)
        suites = ET.parse(paths["junit"]).getroot().findall("testsuite")
        self.assertEqual([s.get("name") for s in suites], ["rust smp4", "c smp4"])
        self.assertEqual(kh.summary_line(results), "10 passed, 1 failed, 1 skipped")
        self.assertEqual(kh.exit_status(results), 1)


if __name__ == "__main__":
    unittest.main()
