#!/usr/bin/env python3
"""bench-report: Markdown tables of the in-kernel localcount(9) benchmarks.

Usage:
    test-kernel/bench-report.py RESULTS_DIR
    test-kernel/bench-report.py --runs DIR [DIR ...]

RESULTS_DIR is what test-kernel/ktest.sh wrote (default target/ktest/results):
its summary.json, or, without one, its *.console logs.  The benchmark cases
(test program "bench", test-kernel/ktest/ktest_bench.c) print one
"KTEST: tc-so bench <case> key=value ..." line per measurement, starting with
bench=<name> impl=<c|rust> ncpu=<N>.

For every benchmark and vCPU count the report gives the C and the Rust value,
Rust/C, and localcount/atomic (per implementation); then drain latency and
memory per object.  With --runs, every value is the median over the result
directories, and every ratio the median of the per-run ratios with its
min-max range.  Boots of variants with a suffix (c-lockdebug and
rust-lockdebug, ...) get their own tables.

Exit status: 0, also when some numbers are missing (shown as "-"); 2 on a
parse error (no results, unreadable summary.json, malformed bench line).
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

THROUGHPUT = ("pair_private", "pair_shared", "atomic_private", "atomic_shared")
BASELINE = {"pair_private": "atomic_private", "pair_shared": "atomic_shared"}
DRAIN_MODES = ("idle", "busy", "holders")
IMPLS = ("c", "rust")
TC_SO_RE = re.compile(r"KTEST: tc-so bench (\S+) (.*)$")
LABEL_RE = re.compile(r"^(\S+) (?:smp|ncpu)(\d+)$")   # ncpu: rump kernels (RUMP_NCPU)


class ParseError(Exception):
    """The results cannot be read."""


def parse_line(text: str, where: str) -> dict | None:
    """The key=value words of one tc-so text, or None if not a bench line."""
    words = text.split()
    if not words or not words[0].startswith("bench="):
        return None          # elapsed_ms=... and other diagnostics
    kv = {}
    for w in words:
        if "=" not in w:
            raise ParseError("%s: malformed bench line (word %r): %s" % (where, w, text))
        k, v = w.split("=", 1)
        kv[k] = v
    for k in ("bench", "impl", "ncpu"):
        if k not in kv:
            raise ParseError("%s: bench line without %s=: %s" % (where, k, text))
    if not kv["ncpu"].isdigit():
        raise ParseError("%s: bad ncpu in: %s" % (where, text))
    return kv


def num(kv: dict, key: str, where: str) -> float | None:
    """kv[key] as a number (None if absent)."""
    if key not in kv:
        return None
    try:
        return float(kv[key])
    except ValueError:
        raise ParseError("%s: %s=%r is not a number" % (where, key, kv[key])) from None


def variant_of(label: str | None, impl: str) -> str:
    """The kernel variant of a boot ("c", "rust-lockdebug", ...)."""
    m = LABEL_RE.match(label or "")
    return m.group(1) if m else impl


def lines_from_summary(path: str) -> list[tuple[str, str]]:
    """(variant, tc-so text) for every bench output line in summary.json."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ParseError("%s: %s" % (path, e)) from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ParseError("%s: no runs list" % path)
    out = []
    for run in data["runs"]:
        try:
            label = run.get("label")
            for case in run.get("cases", []):
                if case.get("tp") != "bench":
                    continue
                for text in case.get("output", []):
                    out.append((label, text))
        except AttributeError:
            raise ParseError("%s: unexpected run/case structure" % path) from None
    return out


def lines_from_consoles(d: str) -> list[tuple[str, str]]:
    """(variant, tc-so text) from the *.console logs of a results directory."""
    out = []
    for path in sorted(glob.glob(os.path.join(d, "*.console"))):
        # c_smp4.console, rust-lockdebug_smp2.console (label_slug)
        base = os.path.basename(path)[:-len(".console")]
        m = re.match(r"^(.+)_smp(\d+)$", base)
        label = "%s smp%s" % (m.group(1), m.group(2)) if m else None
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m2 = TC_SO_RE.search(line.replace("\r", "").rstrip("\n"))
                if m2:
                    out.append((label, m2.group(2)))
    return out


def load_dir(d: str) -> dict:
    """{(variant, ncpu, bench, sub): kv} for one results directory."""
    summary = os.path.join(d, "summary.json")
    if os.path.isfile(summary):
        raw = lines_from_summary(summary)
    elif glob.glob(os.path.join(d, "*.console")):
        raw = lines_from_consoles(d)
    else:
        raise ParseError("%s: neither summary.json nor *.console logs" % d)
    recs = {}
    for label, text in raw:
        kv = parse_line(text, d)
        if kv is None:
            continue
        sub = kv.get("mode") or kv.get("obj") or ""
        key = (variant_of(label, kv["impl"]), int(kv["ncpu"]), kv["bench"], sub)
        recs[key] = kv
        for k in ("ns_per_op", "ops_per_sec_per_cpu", "avg_us", "med_us", "max_us", "total_bytes",
                  "padded_bytes", "struct_bytes", "percpu_bytes", "handle_bytes"):
            num(kv, k, d)
    if not recs:
        raise ParseError("%s: no bench lines (was ktest_bench.c built in?)" % d)
    return recs


# ------------------------------------------------------------ statistics

def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else "%.*f" % (digits, v)


class Agg:
    """One table cell over several runs: median and min-max."""

    def __init__(self, values):
        self.values = [v for v in values if v is not None]

    def median(self):
        return statistics.median(self.values) if self.values else None

    def show(self, digits: int = 1, spread: bool = False) -> str:
        if not self.values:
            return "-"
        s = fmt(self.median(), digits)
        if spread and len(self.values) > 1:
            s += " (%s–%s)" % (fmt(min(self.values), digits), fmt(max(self.values), digits))
        return s


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


class Report:
    def __init__(self, runs: list[dict]):
        self.runs = runs
        self.multi = len(runs) > 1

    def get(self, run: dict, variant, ncpu, bench, sub, key):
        kv = run.get((variant, ncpu, bench, sub))
        if kv is None or key not in kv:
            return None
        return float(kv[key])

    def cell(self, variant, ncpu, bench, sub, key, digits=1):
        return Agg(self.get(r, variant, ncpu, bench, sub, key) for r in self.runs).show(digits)

    def ratio_cell(self, num_of, den_of, digits=2):
        """Median (min-max) over runs of num_of(run) / den_of(run)."""
        return Agg(ratio(num_of(r), den_of(r)) for r in self.runs).show(digits, self.multi)

    def keys(self):
        ks = set()
        for r in self.runs:
            ks.update(r.keys())
        return ks

    def suffixes(self):
        """Variant suffixes present ("" for c/rust, "-lockdebug", ...)."""
        out = set()
        for (variant, _n, _b, _s) in self.keys():
            for impl in IMPLS:
                if variant.startswith(impl) and (variant == impl or variant[len(impl)] == "-"):
                    out.add(variant[len(impl):])
        return sorted(out)

    def ncpus(self, bench, cv, rv):
        return sorted({n for (v, n, b, _s) in self.keys() if b == bench and v in (cv, rv)})

    def print(self, out=sys.stdout):
        w = out.write
        for suffix in self.suffixes():
            cv, rv = "c" + suffix, "rust" + suffix
            w("### localcount benchmarks: %s vs %s%s\n\n" % (
                cv, rv, " (%d runs: median, ratio range in parentheses)" % len(self.runs)
                if self.multi else ""))
            self.throughput(w, cv, rv)
            self.drain(w, cv, rv)
            self.memory(w, cv, rv)
        if all(s.endswith("-rump") for s in self.suffixes()):
            w("Caveat: rump kernels (test-kernel/rump/): virtual CPUs are host threads on "
              "the host's real cores, shared with whatever else runs there, and a rump "
              "kernel's localcount(9) fast path is function calls (percpu_getref, "
              "kpreempt_disable, ...), not a kernel's inline code; the benchmark loops "
              "yield every 256 pairs (no preemption in a rump kernel).  atomic_* rows run "
              "the same code in both kernels and show the noise floor.\n")
        else:
            w("Caveat: QEMU TCG (emulated CPUs, vCPUs multiplexed on a shared 2-core host), "
              "so times are emulated, noisy and only comparable within one run; atomic_* "
              "rows run the same code in both kernels and show the noise floor.\n")

    def throughput(self, w, cv, rv):
        w("| bench | ncpu | C ns/pair | Rust ns/pair | Rust/C | C pairs/s/CPU "
          "| Rust pairs/s/CPU | C lc/atomic | Rust lc/atomic |\n")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
        for bench in THROUGHPUT:
            for n in self.ncpus(bench, cv, rv):
                g = self.get
                rc = self.ratio_cell(lambda r: g(r, rv, n, bench, "", "ns_per_op"),
                                     lambda r: g(r, cv, n, bench, "", "ns_per_op"))
                base = BASELINE.get(bench)
                if base:
                    lc_c = self.ratio_cell(lambda r: g(r, cv, n, bench, "", "ns_per_op"),
                                           lambda r: g(r, cv, n, base, "", "ns_per_op"))
                    lc_r = self.ratio_cell(lambda r: g(r, rv, n, bench, "", "ns_per_op"),
                                           lambda r: g(r, rv, n, base, "", "ns_per_op"))
                else:
                    lc_c = lc_r = "n/a"
                w("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n" % (
                    bench, n,
                    self.cell(cv, n, bench, "", "ns_per_op"),
                    self.cell(rv, n, bench, "", "ns_per_op"), rc,
                    self.cell(cv, n, bench, "", "ops_per_sec_per_cpu", 0),
                    self.cell(rv, n, bench, "", "ops_per_sec_per_cpu", 0), lc_c, lc_r))
        w("\nns/pair: mean cost of one acquire+release (or inc+dec_nv) pair per thread, "
          "one bound thread per CPU; lc/atomic: localcount ns/pair over the atomic "
          "refcount's on the same sharing pattern (< 1: localcount is cheaper).\n\n")

    def drain(self, w, cv, rv):
        w("| drain_latency mode | ncpu | C avg µs | Rust avg µs | Rust/C | C median µs "
          "| Rust median µs | C max µs | Rust max µs |\n")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
        for mode in DRAIN_MODES:
            for n in self.ncpus("drain_latency", cv, rv):
                g = self.get
                vals = [self.cell(v, n, "drain_latency", mode, "avg_us") for v in (cv, rv)]
                if vals == ["-", "-"]:
                    continue
                rc = self.ratio_cell(lambda r: g(r, rv, n, "drain_latency", mode, "avg_us"),
                                     lambda r: g(r, cv, n, "drain_latency", mode, "avg_us"))
                w("| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n" % (
                    mode, n, vals[0], vals[1], rc,
                    self.cell(cv, n, "drain_latency", mode, "med_us"),
                    self.cell(rv, n, "drain_latency", mode, "med_us"),
                    self.cell(cv, n, "drain_latency", mode, "max_us"),
                    self.cell(rv, n, "drain_latency", mode, "max_us")))
        w("\nidle: other CPUs idle; busy: other CPUs hammering pairs on other objects; "
          "holders: other CPUs each hold a reference to the drained object and release it "
          "as the drain starts (skipped at ncpu=1).  Interlock held, call to return.\n\n")

    def memory(self, w, cv, rv):
        w("| memory | ncpu | C localcount B | Rust localcount B | atomic B | atomic padded B "
          "| localcount/atomic | localcount/padded |\n")
        w("|---|--:|--:|--:|--:|--:|--:|--:|\n")
        for n in self.ncpus("memory", cv, rv):
            g = self.get
            at = next((g(r, v, n, "memory", "atomic", "total_bytes") for r in self.runs
                       for v in (cv, rv) if g(r, v, n, "memory", "atomic", "total_bytes")), None)
            pad = next((g(r, v, n, "memory", "atomic", "padded_bytes") for r in self.runs
                        for v in (cv, rv) if g(r, v, n, "memory", "atomic", "padded_bytes")), None)
            lc = next((g(r, v, n, "memory", "localcount", "total_bytes") for r in self.runs
                       for v in (cv, rv) if g(r, v, n, "memory", "localcount", "total_bytes")),
                      None)
            w("| bytes/object | %d | %s | %s | %s | %s | %s | %s |\n" % (
                n, self.cell(cv, n, "memory", "localcount", "total_bytes", 0),
                self.cell(rv, n, "memory", "localcount", "total_bytes", 0),
                fmt(at, 0), fmt(pad, 0), fmt(ratio(lc, at), 1), fmt(ratio(lc, pad), 1)))
        w("\nlocalcount = struct localcount + one 8-byte counter per CPU + the percpu(9) "
          "handle (struct percpu, mirrored); atomic = a u_int, padded = on its own cache line.\n\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", nargs="?", help="results directory (summary.json or *.console)")
    p.add_argument("--runs", nargs="+", metavar="DIR",
                   help="aggregate several results directories (median, min-max)")
    a = p.parse_args(argv)
    dirs = list(a.runs or [])
    if a.dir:
        dirs.insert(0, a.dir)
    if not dirs:
        p.error("give a results directory or --runs DIR [DIR ...]")
    try:
        runs = [load_dir(d) for d in dirs]
    except ParseError as e:
        print("bench-report: %s" % e, file=sys.stderr)
        return 2
    Report(runs).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
