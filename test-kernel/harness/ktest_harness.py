#!/usr/bin/env python3
"""Boot a NetBSD ktest kernel under QEMU and turn its console into test results.

The in-kernel runner (test-kernel/ktest/) reports on the serial console, one
printf per line.  Console noise and a "[   1.0263745] " timestamp may precede
the tag on the same line; everything else on the console is kept as context:

  KTEST: begin version=1 ncpu=N hz=H
  KTEST: impl rust|c
  KTEST: plan <tp> <tc>                  (every case, before the first runs)
  KTEST: tc-start <tp> <tc>
  KTEST: tc-so <tp> <tc> <text>          (diagnostics of the running case)
  KTEST: tc-end <tp> <tc> passed
  KTEST: tc-end <tp> <tc> failed|skipped <reason>
  KTEST: done passed=N failed=N skipped=N

The kernel then ends the VM: on amd64 and i386 through isa-debug-exit (QEMU
exit status 1: all passed, 3: failures), else (aarch64, which has no such
port) or as a fallback by a reset (-no-reboot: status 0).  ARCHES says how
QEMU boots each architecture's kernel.  Panics, fatal traps,
ddb, the "root device:" prompt, hangs, QEMU errors and protocol
inconsistencies all count as failures.

Usable as a script (see --help and README.md) or as a library: run_boot() or
replay() give one RunResult per boot; write_reports(), summary_line() and
exit_status() aggregate any number of them.
"""
import argparse
import codecs
import dataclasses
import datetime
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Callable, Iterable

PROTOCOL_VERSION = "1"
DEFAULT_QEMU = "qemu-system-x86_64"  # amd64's (ARCHES has every architecture's)
DEFAULT_MEM = 512
DEFAULT_TIMEOUT = 600.0
# Above the in-kernel watchdog (KTEST_TIMEOUT_S), which reports first.
DEFAULT_CASE_TIMEOUT = 120.0

CRASH_GRACE = 10.0      # s a crashed kernel gets to print and reset
DONE_GRACE = 10.0       # s QEMU gets to exit after "KTEST: done"
POLL_INTERVAL = 0.2     # s between deadline checks while QEMU is silent
MAX_CASE_CONSOLE = 200  # console lines kept per case
MAX_STDERR = 64 * 1024  # bytes of QEMU stderr kept

# Exit statuses of QEMU accepted at the end of a run.
QEMU_ALL_PASSED = 1     # isa-debug-exit, outb(0xf4, 0)
QEMU_FAILURES = 3       # isa-debug-exit, outb(0xf4, 1)
QEMU_RESET = 0          # cpu_reset() with -no-reboot (aarch64: PSCI reset)


@dataclasses.dataclass(frozen=True)
class Arch:
    """How QEMU boots the test kernel of one NetBSD architecture (always
    TCG, never KVM) and how the kernel may end the VM."""
    qemu: str                   # default QEMU binary
    machine: tuple[str, ...]    # machine, accelerator and CPU options
    devices: tuple[str, ...]    # extra devices
    append: tuple[str, ...]     # kernel command line options
    exits: tuple[int, ...]      # QEMU exit statuses accepted after "done"
    image: str = "netbsd"       # what QEMU boots, in the kernel's build directory


ARCHES = {
    # Xen PVH entry (qemu -kernel netbsd); no TSC: its synchronisation takes
    # seconds per secondary CPU under TCG.
    "amd64": Arch("qemu-system-x86_64",
                  ("-M", "pc", "-accel", "tcg,thread=multi", "-cpu", "qemu64,-tsc"),
                  ("-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"),
                  ("-append", "console=com"),
                  (QEMU_ALL_PASSED, QEMU_FAILURES, QEMU_RESET)),
    # Multiboot (options MULTIBOOT); "-a": without a root device in the boot
    # flags the kernel would look for wd0a first.
    "i386": Arch("qemu-system-i386",
                 ("-M", "pc", "-accel", "tcg,thread=multi", "-cpu", "qemu32,-tsc"),
                 ("-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"),
                 ("-append", "-a"),
                 (QEMU_ALL_PASSED, QEMU_FAILURES, QEMU_RESET)),
    # evbarm on the virt machine: KERNEL is netbsd.img (Linux arm64 Image
    # header), the device tree comes from QEMU, the console is its PL011.
    # No isa-debug-exit: the kernel resets (PSCI) and QEMU exits 0.
    "aarch64": Arch("qemu-system-aarch64",
                    ("-M", "virt", "-accel", "tcg,thread=multi", "-cpu", "cortex-a57"),
                    (), (), (QEMU_RESET,), image="netbsd.img"),
}
DEFAULT_ARCH = "amd64"

STATUSES = ("passed", "failed", "skipped")

KTEST_RE = re.compile(r"KTEST: (begin|impl|plan|tc-start|tc-so|tc-end|done)(?: (.*))?$")
TIMESTAMP_RE = re.compile(r"\[\s*(\d+\.\d+)\]")
TRAILING_TIMESTAMP_RE = re.compile(r"\[\s*\d+\.\d+\]\s*$")
# (pattern, what the running case fails with, why the others did not run)
CRASH_PATTERNS = (
    (re.compile(r"\bpanic: .*"), "{0}", "kernel panicked"),
    (re.compile(r"\b(?:fatal .+?|unknown trap \d+) in (?:supervisor|user) mode"), "{0}",
     "kernel took a fatal trap"),
    (re.compile(r"\bStopped in pid .*"), "kernel entered ddb: {0}", "kernel entered ddb"),
)
# Prompts the kernel waits at forever (they are printed without a newline).
DDB_PROMPT_RE = re.compile(r"\bdb\{\d+\}>")
ROOT_PROMPT_RE = re.compile(r"\broot device(?: \(default [^)]*\))?:")
ROOT_PROMPT_ERROR = ("kernel stopped at the root device prompt: the ktest suite did not run "
                     "(is it configured into this kernel?)")
ROOT_PROMPT_LATE_ERROR = ("kernel went on to the root device prompt after KTEST begin: "
                          "the runner did not end the VM")
XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def print_progress(text: str) -> None:
    """Default progress sink: print one line to stdout immediately."""
    print(text, flush=True)


@dataclasses.dataclass
class CaseResult:
    """One test case: its verdict and what the console said while it ran."""
    tp: str
    tc: str
    status: str | None = None      # passed, failed or skipped once decided
    reason: str = ""
    start: float | None = None     # epoch seconds
    end: float | None = None
    reported: bool = False         # the verdict came from the kernel's tc-end
    session: int = 0               # 0 the kernel's, 1 the userland's, ...
    output: list[str] = dataclasses.field(default_factory=list)   # tc-so text
    console: list[str] = dataclasses.field(default_factory=list)  # other lines

    @property
    def name(self) -> str:
        """"tp:tc"."""
        return "%s:%s" % (self.tp, self.tc)

    @property
    def duration(self) -> float:
        """Seconds between tc-start and tc-end (0 if it never ran)."""
        if self.start is None or self.end is None:
            return 0.0
        return max(self.end - self.start, 0.0)

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return dict(tp=self.tp, tc=self.tc, status=self.status, reason=self.reason,
                    duration=round(self.duration, 3), reported=self.reported,
                    output=self.output, console=self.console)


@dataclasses.dataclass
class RunResult:
    """Everything learnt from one boot (or one replayed console log)."""
    label: str
    cases: list[CaseResult]
    errors: list[str]              # run-level problems; any makes the run fail
    smp: int | None = None
    kernel: str | None = None
    impl: str | None = None
    meta: dict = dataclasses.field(default_factory=dict)   # "begin" key=value
    done: dict | None = None       # "done" key=value (numbers as int)
    qemu_rc: int | None = None     # None: not booted, not started, or killed
    arch: str | None = None        # the kernel's architecture (ARCHES), if booted
    qemu_stderr: str = ""
    command: list[str] | None = None
    console_log: str | None = None
    start: float = 0.0
    end: float = 0.0

    def counts(self) -> dict:
        """{"passed": n, "failed": n, "skipped": n} over all cases."""
        n = dict.fromkeys(STATUSES, 0)
        for c in self.cases:
            n[c.status if c.status in n else "failed"] += 1
        return n

    @property
    def ok(self) -> bool:
        """True when at least one case ran, none failed and the run ended cleanly."""
        return bool(self.cases) and not self.errors and self.counts()["failed"] == 0

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return dict(label=self.label, ok=self.ok, counts=self.counts(), errors=self.errors,
                    smp=self.smp, arch=self.arch, kernel=self.kernel, impl=self.impl,
                    meta=self.meta, done=self.done, qemu_rc=self.qemu_rc, qemu_stderr=self.qemu_stderr,
                    command=self.command, console_log=self.console_log,
                    duration=round(max(self.end - self.start, 0.0), 3),
                    cases=[c.to_dict() for c in self.cases])


def _kernel_time(line: str) -> float | None:
    """The last console timestamp before the KTEST tag (or in the line)."""
    head = line.split("KTEST: ", 1)[0]
    stamps = TIMESTAMP_RE.findall(head)
    return float(stamps[-1]) if stamps else None


def _keyvalues(words: Iterable[str]) -> dict:
    return dict(w.split("=", 1) for w in words if "=" in w)


class ConsoleParser:
    """Incremental interpreter of the console of one boot.

    feed() takes complete lines, feed_partial() the unterminated tail seen so
    far (prompts have no newline); finish() settles every open question and
    returns the RunResult.  The attributes done_at, crash_at, prompt and
    current tell a live watcher when QEMU has to be stopped.
    """

    def __init__(self, label: str, smp: int | None = None,
                 progress: Callable[[str], None] | None = print_progress):
        self.label = label
        self.smp = smp
        self.progress = progress
        self.cases: dict[tuple[str, str], CaseResult] = {}
        self.errors: list[str] = []
        self.meta: dict | None = None      # set by the first "begin"
        self.impl: str | None = None
        self.done: dict | None = None      # the last session's "done"
        self.session = 0                   # sessions begun so far - 1
        self.next: str | None = None       # "done ... next=X": a session follows
        self.done_at: float | None = None
        self.crash: str | None = None      # what the running case fails with
        self.crash_phrase: str | None = None
        self.crash_at: float | None = None
        self.prompt: str | None = None     # "root device prompt" or "ddb prompt"
        self.current: CaseResult | None = None
        self._sink: CaseResult | None = None   # case collecting console lines
        self.first: float | None = None     # time of the first line

    # -- input

    def feed(self, line: str, now: float) -> None:
        """Interpret one console line received at epoch time now."""
        if self.first is None:
            self.first = now
        line = line.replace("\r", "").rstrip("\n")
        m = KTEST_RE.search(line)
        noise = line if m is None else TRAILING_TIMESTAMP_RE.sub("", line[:m.start()])
        if TIMESTAMP_RE.sub("", noise).strip():
            self._console(noise, now)
        if m:
            self._ktest(m.group(1), m.group(2) or "", line, now)

    def feed_partial(self, text: str, now: float) -> None:
        """Look at an unterminated line for a prompt the kernel will wait at."""
        self._check_prompts(text.replace("\r", ""), now)

    def error(self, message: str) -> None:
        """Record a run-level problem (once)."""
        if message not in self.errors:
            self.errors.append(message)
            self.say("error: " + message)

    def fail_current(self, reason: str, now: float) -> None:
        """Fail the case that is running, if any (e.g. on a timeout)."""
        if self.current is not None:
            self._end(self.current, "failed", reason, now)

    # -- protocol

    def say(self, text: str) -> None:
        """Report progress, prefixed with the run's label."""
        if self.progress is not None:
            self.progress("[%s] %s" % (self.label, text))

    def _case(self, tp: str, tc: str) -> CaseResult:
        key = (tp, tc)
        if key not in self.cases:
            self.cases[key] = CaseResult(tp, tc, session=self.session)
        return self.cases[key]

    def _end(self, case: CaseResult, status: str, reason: str, now: float) -> None:
        case.status, case.reason, case.end = status, reason, now
        if case.start is None:
            case.start = now
        if self.current is case:
            self.current = None
        detail = ": " + reason if reason and status != "passed" else ""
        self.say("%s %s%s (%.1f s)" % (case.name, status, detail, case.duration))

    def _ktest(self, verb: str, rest: str, line: str, now: float) -> None:
        words = rest.split()
        if verb == "begin":
            self._begin(_keyvalues(words))
        elif verb == "impl" and words:
            self.impl = words[0]
            self.say("impl " + self.impl)
        elif verb == "done":
            self._done(words, line, now)
        elif len(words) < (3 if verb == "tc-end" else 2):
            self.error("malformed KTEST line: " + line.strip())
        elif verb == "plan":
            self._case(words[0], words[1])
        elif verb == "tc-start":
            self._start(self._case(words[0], words[1]), now)
        elif verb == "tc-so":
            case = self._case(words[0], words[1])
            text = rest.split(None, 2)[2] if len(words) > 2 else ""
            case.output.append(text)
            self.say("%s: %s" % (case.name, text))
        else:  # tc-end
            self._tc_end(self._case(words[0], words[1]), rest.split(None, 3), now)

    def _begin(self, meta: dict) -> None:
        if self.next is not None:
            # The session announced by the previous "done ... next=".
            self.session += 1
            self.next = None
        elif self.meta is not None:
            self.error("second KTEST begin line (did the kernel restart?)")
        if self.meta is None:
            self.meta = meta
        self.say("begin " + " ".join("%s=%s" % kv for kv in meta.items()))
        if meta.get("version") != PROTOCOL_VERSION:
            self.error("unsupported KTEST protocol version %r (expected %s)"
                       % (meta.get("version"), PROTOCOL_VERSION))
        if self.smp is not None and meta.get("ncpu") != str(self.smp):
            self.error("kernel reports ncpu=%s but QEMU was given -smp %d"
                       % (meta.get("ncpu"), self.smp))

    def _start(self, case: CaseResult, now: float) -> None:
        if self.current is not None:
            self._end(self.current, "failed", "no tc-end before the next tc-start", now)
        if case.start is not None:
            self.error("%s started twice" % case.name)
            return
        case.start = now
        self.current = self._sink = case
        self.say("%s started" % case.name)

    def _tc_end(self, case: CaseResult, words: list[str], now: float) -> None:
        if case.status is not None:
            self.error("second tc-end for %s" % case.name)
            return
        status, reason = words[2], words[3] if len(words) > 3 else ""
        if status not in STATUSES:
            status, reason = "failed", ("unknown status %r %s" % (status, reason)).strip()
        elif status != "passed" and not reason:
            reason = "(no reason given)"
        case.reported = True
        self._end(case, status, reason, now)
        if self._sink is case:
            self._sink = None

    def _done(self, words: list[str], line: str, now: float) -> None:
        done = {k: int(v) if v.isdigit() else v for k, v in _keyvalues(words).items()}
        self.say("done " + " ".join(words))
        if not all(isinstance(done.get(k), int) for k in STATUSES):
            self.error("malformed KTEST line: " + line.strip())
            done = {}
        if "error" in done:
            self.error("kernel test runner error: %s" % done["error"])
        if done.get("next"):
            # Another session follows in the same boot (the userland's):
            # check this one's counts now, and keep QEMU running.
            self.next = str(done["next"])
            if done:
                self._check_done(done, self.session)
            return
        self.done = done
        self.done_at = now

    # -- everything that is not a KTEST line

    def _console(self, text: str, now: float) -> None:
        if self.crash is None:
            for rx, fmt, phrase in CRASH_PATTERNS:
                m = rx.search(text)
                if m:
                    self._crashed(fmt.format(m.group(0).strip()), phrase, now)
                    break
        self._check_prompts(text, now)
        if self._sink is not None and len(self._sink.console) < MAX_CASE_CONSOLE:
            self._sink.console.append(text.rstrip())

    def _crashed(self, what: str, phrase: str, now: float) -> None:
        self.crash, self.crash_phrase, self.crash_at = what, phrase, now
        self.fail_current(what, now)
        self.error(what)

    def _check_prompts(self, text: str, now: float) -> None:
        if self.prompt is not None:
            return
        if ROOT_PROMPT_RE.search(text):
            self.prompt = "root device prompt"
            self.error(ROOT_PROMPT_ERROR if self.meta is None else ROOT_PROMPT_LATE_ERROR)
        elif DDB_PROMPT_RE.search(text):
            self.prompt = "ddb prompt"
            if self.crash is None:
                self._crashed("kernel entered ddb: " + text.strip(), "kernel entered ddb", now)

    # -- the end

    def finish(self, now: float, cut_short: str | None = None, **fields) -> RunResult:
        """Give every case a verdict, check the run as a whole, return the result.

        cut_short says why the console stopped early (QEMU killed, QEMU exited
        before "KTEST: done", a replayed log ends before it); it is an error.
        A run-level error with no failed case to show for it becomes a failed
        pseudo-case ktest:boot.  fields are passed on to RunResult.
        """
        why = self.crash_phrase or cut_short or (
            "the kernel reported done without running it" if self.done is not None
            else "the run ended early")
        self.fail_current(self.crash or cut_short or "no tc-end", now)
        for case in self.cases.values():
            if case.status is None:
                case.status, case.reason = "failed", "not run: " + why
                case.start = case.end = now
        if self.meta is None:
            if not self.errors:
                self.error("no KTEST begin line: the kernel never reached the test runner"
                           + (" (%s)" % cut_short if cut_short else ""))
        elif cut_short is not None:
            self.error(cut_short)
        elif self.done is None:
            self.error("no KTEST done line" if self.next is None else
                       "no KTEST done line from the %s session" % self.next)
        if self.done:
            self._check_done(self.done, self.session)
        cases = list(self.cases.values())
        if self.errors and not any(c.status == "failed" for c in cases):
            cases.append(CaseResult("ktest", "boot", "failed", "; ".join(self.errors),
                                    start=now, end=now))
        return RunResult(label=self.label, cases=cases, errors=list(self.errors), smp=self.smp,
                         impl=self.impl, meta=self.meta or {}, done=self.done,
                         start=fields.pop("start", self.first or now), end=now, **fields)

    def _check_done(self, done: dict, session: int) -> None:
        seen = dict.fromkeys(STATUSES, 0)
        for c in self.cases.values():
            if c.reported and c.session == session:
                seen[c.status] += 1
        if any(seen[k] != done[k] for k in STATUSES):
            fmt = " ".join("%s=%%(%s)d" % (k, k) for k in STATUSES)
            self.error("KTEST done says %s but the console reported %s"
                       % (fmt % done, fmt % seen))
        if not any(seen.values()):
            self.error("no test cases ran")


# ---------------------------------------------------------------- running

def qemu_command(kernel: str, smp: int, qemu: str | None = None,
                 mem: int = DEFAULT_MEM, arch: str = DEFAULT_ARCH) -> list[str]:
    """The QEMU command line booting kernel (of architecture arch, see
    ARCHES) with smp vCPUs (TCG, never KVM); qemu defaults to the
    architecture's QEMU."""
    a = ARCHES[arch]
    return [qemu or a.qemu, *a.machine,
            "-smp", str(smp), "-m", str(mem), "-display", "none", "-nodefaults",
            "-serial", "stdio", "-no-reboot", *a.devices,
            "-kernel", kernel, *a.append]


def _kill(proc: subprocess.Popen) -> None:
    """Stop QEMU and anything it started (it runs in its own session)."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _deadline(parser: ConsoleParser, now: float, start: float, timeout: float,
              case_timeout: float) -> str | None:
    """Why QEMU must be stopped now, or None to keep it running."""
    if parser.prompt is not None:
        return "QEMU killed at the %s" % parser.prompt
    if parser.crash_at is not None and now - parser.crash_at > CRASH_GRACE:
        return "QEMU killed %g s after the crash" % CRASH_GRACE
    if parser.done_at is not None and now - parser.done_at > DONE_GRACE:
        return "QEMU did not exit within %g s of KTEST done (QEMU killed)" % DONE_GRACE
    case = parser.current
    if case is not None and now - case.start > case_timeout:
        parser.fail_current("timeout: no tc-end within %g s" % case_timeout, now)
        return ("case timeout: %s had no tc-end within %g s (QEMU killed)"
                % (case.name, case_timeout))
    if now - start > timeout:
        parser.fail_current("timeout: the run exceeded %g s" % timeout, now)
        return "timeout: the run exceeded %g s (QEMU killed)" % timeout
    return None


def _watch(proc: subprocess.Popen, parser: ConsoleParser, log, start: float,
           timeout: float, case_timeout: float) -> tuple[str | None, bytes]:
    """Feed QEMU's console to parser until QEMU exits or has to be stopped.

    Returns (why QEMU has to be killed or None if it exited, its stderr).
    """
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "console")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending, stderr, exited_at = "", b"", None
    try:
        while sel.get_map():
            now = time.time()
            stop = _deadline(parser, now, start, timeout, case_timeout)
            if stop is not None:
                return stop, stderr
            if proc.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at > 1.0:   # something else holds the pipes open
                    break
            for key, _ in sel.select(POLL_INTERVAL):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                elif key.data == "stderr":
                    stderr = (stderr + data)[-MAX_STDERR:]
                else:
                    if log is not None:
                        log.write(data)
                        log.flush()
                    *lines, pending = (pending + decoder.decode(data)).split("\n")
                    for line in lines:
                        parser.feed(line, now)
                    parser.feed_partial(pending, now)
        return None, stderr
    finally:
        pending += decoder.decode(b"", final=True)
        if pending:
            parser.feed(pending, time.time())
        sel.close()


def run_boot(kernel: str, smp: int, label: str | None = None, *, qemu: str | None = None,
             arch: str = DEFAULT_ARCH, mem: int = DEFAULT_MEM, timeout: float = DEFAULT_TIMEOUT,
             case_timeout: float = DEFAULT_CASE_TIMEOUT, console_log: str | None = None,
             progress: Callable[[str], None] | None = print_progress) -> RunResult:
    """Boot kernel (of architecture arch) under QEMU with smp vCPUs and collect
    its KTEST results.

    label prefixes the progress lines and names the run in reports (default
    "smpN").  The raw console is written to console_log if given.  QEMU is
    killed on a prompt, after a crash, after timeout seconds in all, or when
    a case has run for case_timeout seconds.  Never raises for a failed boot:
    problems are in RunResult.errors and failed cases.
    """
    label = label or "smp%d" % smp
    cmd = qemu_command(kernel, smp, qemu, mem, arch)
    parser = ConsoleParser(label, smp=smp, progress=progress)
    parser.say("boot: " + shlex.join(cmd))
    fields = dict(kernel=kernel, arch=arch, command=cmd, console_log=console_log,
                  start=time.time())
    log = open(console_log, "wb") if console_log else None
    try:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            parser.error("QEMU failed to start: %s" % e)
            return parser.finish(time.time(), **fields)
        with proc:
            try:
                cut_short, stderr = _watch(proc, parser, log, fields["start"], timeout,
                                           case_timeout)
                if cut_short is None:
                    try:
                        fields["qemu_rc"] = proc.wait(5)
                    except subprocess.TimeoutExpired:
                        cut_short = "QEMU closed its console but did not exit (QEMU killed)"
            finally:
                if proc.poll() is None:
                    _kill(proc)
    finally:
        if log is not None:
            log.close()
    fields["qemu_stderr"] = stderr.decode("utf-8", "replace")
    if "qemu_rc" in fields:
        cut_short = _check_exit(parser, fields["qemu_rc"], fields["qemu_stderr"],
                                ARCHES[arch].exits)
    result = parser.finish(time.time(), cut_short, **fields)
    parser.say("finished: %s (%.1f s)" % (summary_line([result]), result.end - result.start))
    return result


def _check_exit(parser: ConsoleParser, rc: int, stderr: str,
                exits: tuple[int, ...] = ARCHES[DEFAULT_ARCH].exits) -> str | None:
    """Judge QEMU's own exit status (exits: the ones accepted after "done");
    returns the cut_short text for finish()."""
    tail = " ".join(stderr.strip().splitlines()[-3:])
    tail = ": " + tail if tail else ""
    if parser.done is None:
        return "QEMU exited with status %d before KTEST done%s" % (rc, tail)
    if rc not in exits:
        parser.error("QEMU exited with status %d%s" % (rc, tail))
    elif rc == QEMU_FAILURES and not parser.done.get("failed"):
        parser.error("QEMU exit status 3 says cases failed, but KTEST done reported none")
    return None


def replay(console_log: str, label: str | None = None, smp: int | None = None,
           progress: Callable[[str], None] | None = print_progress) -> RunResult:
    """Interpret a recorded console log as if it were coming from a live boot.

    Times come from the kernel's console timestamps (anchored so that the last
    one is the file's modification time).  A log that ends before
    "KTEST: done" counts as a hang or truncated log.
    """
    label = label or os.path.splitext(os.path.basename(console_log))[0]
    with open(console_log, "rb") as f:
        lines = f.read().decode("utf-8", "replace").split("\n")
    if lines and not lines[-1]:
        lines.pop()
    stamps = [t for t in map(_kernel_time, lines) if t is not None]
    base = os.path.getmtime(console_log) - (stamps[-1] if stamps else 0.0)
    parser = ConsoleParser(label, smp=smp, progress=progress)
    now = base
    for line in lines:
        t = _kernel_time(line)
        now = base + t if t is not None else now
        parser.feed(line, now)
    cut_short = None if parser.done is not None else \
        "console log ends without KTEST done (hang or truncated log)"
    return parser.finish(now, cut_short, console_log=console_log, start=base)


# ---------------------------------------------------------------- reports

def summary_line(results: Iterable[RunResult]) -> str:
    """"N passed, N failed" (", N skipped" appended when there are skips)."""
    n = dict.fromkeys(STATUSES, 0)
    for r in results:
        for k, v in r.counts().items():
            n[k] += v
    line = "%(passed)d passed, %(failed)d failed" % n
    return line + (", %(skipped)d skipped" % n if n["skipped"] else "")


def exit_status(results: list[RunResult]) -> int:
    """0 if there is at least one run and every run is ok, else 1."""
    return 0 if results and all(r.ok for r in results) else 1


def label_slug(label: str) -> str:
    """label made safe for file names and tps/JUnit names ("rust smp4" -> "rust_smp4")."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label).strip("_") or "run"


def _slugs(results: list[RunResult]) -> list[str]:
    """A distinct label_slug() per run ("-2", "-3"... appended to repeats)."""
    out = []
    for r in results:
        base = label_slug(r.label)
        slug, i = base, 1
        while slug in out:
            i += 1
            slug = "%s-%d" % (base, i)
        out.append(slug)
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _xml_text(text: str) -> str:
    return XML_INVALID_RE.sub("?", text)


def _ctime(t: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(t))


def _tps_time(t: float) -> str:
    return "%.6f" % t


def write_tps(results: list[RunResult], path: str) -> None:
    """Write the runs as one atf-run "tps" (version 3) file.

    Every run's test programs are named "<label>/<tp>", so boots of the same
    suite with different kernels or CPU counts stay apart.
    """
    start = min((r.start for r in results), default=time.time())
    end = max((r.end for r in results), default=start)
    programs = []
    for slug, r in zip(_slugs(results), results):
        for tp in dict.fromkeys(c.tp for c in r.cases):
            programs.append(("%s/%s" % (slug, tp), r, [c for c in r.cases if c.tp == tp]))
    out = ['Content-Type: application/X-atf-tps; version="3"', "",
           "info: atf.version, ktest_harness (NetBSD in-kernel tests under QEMU)",
           "info: tests.root, %s" % ", ".join(
               dict.fromkeys(r.kernel or r.console_log or r.label for r in results)),
           "info: time.start, %s" % _ctime(start),
           "tps-count: %d" % len(programs)]
    for name, r, cases in programs:
        out.append("tp-start: %s, %s, %d"
                   % (_tps_time(cases[0].start or r.start), name, len(cases)))
        for c in cases:
            out.append("tc-start: %s, %s" % (_tps_time(c.start or r.start), c.tc))
            out += ["tc-so:" + s for s in c.output]
            out += ["tc-se:" + s for s in c.console]
            verdict = c.status
            if c.status != "passed":
                verdict += ", " + _one_line(c.reason)
            out.append("tc-end: %s, %s, %s" % (_tps_time(c.end or r.end), c.tc, verdict))
        out.append("tp-end: %s, %s" % (_tps_time(max(c.end or r.end for c in cases)), name))
    out.append("info: time.end, %s" % _ctime(end))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def write_junit(results: list[RunResult], path: str) -> None:
    """Write the runs as JUnit XML: one <testsuite> per run (named by label)."""
    total = dict.fromkeys(STATUSES, 0)
    root = ET.Element("testsuites", name="ktest")
    for slug, r in zip(_slugs(results), results):
        n = r.counts()
        for k in STATUSES:
            total[k] += n[k]
        suite = ET.SubElement(root, "testsuite", {
            "name": r.label, "tests": str(len(r.cases)), "failures": str(n["failed"]),
            "errors": "0", "skipped": str(n["skipped"]),
            "time": "%.3f" % max(r.end - r.start, 0.0),
            "timestamp": datetime.datetime.fromtimestamp(r.start).isoformat(timespec="seconds"),
            "hostname": socket.gethostname()})
        props = ET.SubElement(suite, "properties")
        for key, value in (("label", r.label), ("smp", r.smp), ("arch", r.arch),
                           ("impl", r.impl),
                           ("ncpu", r.meta.get("ncpu")), ("hz", r.meta.get("hz")),
                           ("kernel", r.kernel), ("qemu_rc", r.qemu_rc),
                           ("console_log", r.console_log)):
            if value is not None:
                ET.SubElement(props, "property", name=key, value=_xml_text(str(value)))
        for c in r.cases:
            tc = ET.SubElement(suite, "testcase", classname="%s.%s" % (slug, c.tp), name=c.tc,
                               time="%.3f" % c.duration)
            if c.status == "skipped":
                ET.SubElement(tc, "skipped", message=_xml_text(c.reason))
            elif c.status != "passed":
                ET.SubElement(tc, "failure", message=_xml_text(_one_line(c.reason)),
                              type="failed").text = _xml_text(c.reason)
            if c.output:
                ET.SubElement(tc, "system-out").text = _xml_text("\n".join(c.output))
            if c.console:
                ET.SubElement(tc, "system-err").text = _xml_text("\n".join(c.console))
        if r.errors:
            ET.SubElement(suite, "system-err").text = _xml_text("\n".join(r.errors))
    root.set("tests", str(sum(total.values())))
    root.set("failures", str(total["failed"]))
    root.set("skipped", str(total["skipped"]))
    root.set("errors", "0")
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


def write_json(results: list[RunResult], path: str) -> None:
    """Write a JSON summary: totals, the final line and every run in full."""
    n = dict.fromkeys(STATUSES, 0)
    for r in results:
        for k, v in r.counts().items():
            n[k] += v
    data = dict(n, ok=exit_status(results) == 0, summary=summary_line(results),
                runs=[r.to_dict() for r in results])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def write_reports(results: list[RunResult], outdir: str) -> dict[str, str]:
    """Write results.tps, junit.xml and summary.json for all runs into outdir.

    Returns {"tps": path, "junit": path, "json": path}.
    """
    os.makedirs(outdir, exist_ok=True)
    paths = dict(tps=os.path.join(outdir, "results.tps"),
                 junit=os.path.join(outdir, "junit.xml"),
                 json=os.path.join(outdir, "summary.json"))
    write_tps(results, paths["tps"])
    write_junit(results, paths["junit"])
    write_json(results, paths["json"])
    return paths


def print_failures(results: Iterable[RunResult], out=None) -> None:
    """Recap every failed case and run-level error, one line each."""
    out = out or sys.stdout
    for r in results:
        for c in r.cases:
            if c.status == "failed":
                print("[%s] FAILED %s: %s" % (r.label, c.name, _one_line(c.reason)), file=out)
        for e in r.errors:
            print("[%s] ERROR %s" % (r.label, e), file=out)


def print_report(results: list[RunResult], paths: dict[str, str], heading: str,
                 width: int) -> None:
    """The end of a matrix of runs: a table of per-run counts (first column
    HEADING, WIDTH wide), the failure recap, where the reports are and the
    final `N passed, N failed` line."""
    print()
    print("%-*s %8s %8s %8s %9s" % (width, heading, "passed", "failed", "skipped", "seconds"))
    for r in results:
        n = r.counts()
        print("%-*s %8d %8d %8d %9.1f" % (width, r.label, n["passed"], n["failed"],
                                          n["skipped"], r.end - r.start))
    print_failures(results)
    print("results: %s" % ", ".join(sorted(paths.values())))
    print(summary_line(results))


# ---------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        description="Boot a NetBSD ktest kernel under QEMU (or replay a recorded console "
                    "log) and report the in-kernel test results.",
        epilog="Exit status: 0 every case passed or was skipped and the run ended cleanly; "
               "1 anything else; 2 usage error.")
    p.add_argument("--kernel", help="kernel to boot (required unless --replay)")
    p.add_argument("--smp", type=int, help="number of vCPUs (required unless --replay)")
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHES),
                   help="the kernel's architecture (default %(default)s)")
    p.add_argument("--qemu", help="QEMU binary (default: the architecture's, e.g. %s)"
                   % ARCHES[DEFAULT_ARCH].qemu)
    p.add_argument("--mem", type=int, default=DEFAULT_MEM, help="MiB of RAM (default %(default)s)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds for the whole boot (default %(default)g)")
    p.add_argument("--case-timeout", type=float, default=DEFAULT_CASE_TIMEOUT,
                   help="seconds one case may run (default %(default)g)")
    p.add_argument("--label", help="run name in progress lines and reports "
                                   "(default smpN, or the replayed log's name)")
    p.add_argument("--out", default="ktest-out", help="report directory (default %(default)s)")
    p.add_argument("--console-log", help="where to keep the raw console (default OUT/console.log)")
    p.add_argument("--replay", metavar="CONSOLE_LOG",
                   help="interpret a recorded console log instead of booting")
    a = p.parse_args(argv)
    if a.replay is None and (a.kernel is None or a.smp is None):
        p.error("--kernel and --smp are required unless --replay is given")
    if a.smp is not None and a.smp < 1:
        p.error("--smp must be at least 1")
    os.makedirs(a.out, exist_ok=True)
    console_log = a.console_log or os.path.join(a.out, "console.log")
    if a.replay is not None:
        try:
            result = replay(a.replay, a.label, a.smp)
        except OSError as e:
            p.error("cannot read %s: %s" % (a.replay, e))
        if not os.path.exists(console_log) or not os.path.samefile(a.replay, console_log):
            shutil.copyfile(a.replay, console_log)
        result.console_log, result.kernel = console_log, a.kernel
    else:
        result = run_boot(a.kernel, a.smp, a.label, qemu=a.qemu, arch=a.arch, mem=a.mem,
                          timeout=a.timeout, case_timeout=a.case_timeout,
                          console_log=console_log)
    paths = write_reports([result], a.out)
    print_failures([result])
    print("reports: %s, %s, %s; console: %s"
          % (paths["tps"], paths["junit"], paths["json"], console_log))
    print(summary_line([result]), flush=True)
    return exit_status([result])


if __name__ == "__main__":
    sys.exit(main())
