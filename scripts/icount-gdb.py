"""gdb script for fastpath-icount.sh: count the instructions executed by one
fast-path call (no drain in progress) of each localcount function in a running NetBSD kernel under
QEMU (gdbstub), by single-stepping from the function's first instruction
until it returns to its caller, callees included.  QEMU's gdbstub masks
interrupts and timers while single-stepping, so the count is exact and the
same on every run.  Prints one line per function:

    ICOUNT <function> <instructions> <callee>=<n> ...
"""
import gdb

FUNCTIONS = ("localcount_acquire", "localcount_release")


_symbols = {}


def symbol(pc):
    """Name of the function containing pc ("func + off in section .text")."""
    if pc not in _symbols:
        info = gdb.execute("info symbol 0x%x" % pc, to_string=True).split()
        _symbols[pc] = info[0] if info and info[0] != "No" else hex(pc)
    return _symbols[pc]


def count(fn):
    """Instructions executed by the next call of fn, per function."""
    bp = gdb.Breakpoint("*" + fn, internal=True)
    gdb.execute("continue", to_string=True)
    bp.delete()
    sp0 = int(gdb.parse_and_eval("$sp"))
    ret = int(gdb.parse_and_eval("*(unsigned long *)$sp"))
    per_fn, n = {}, 0
    while True:
        pc = int(gdb.parse_and_eval("$pc"))
        if pc == ret and int(gdb.parse_and_eval("$sp")) > sp0:
            return n, per_fn
        name = symbol(pc)
        per_fn[name] = per_fn.get(name, 0) + 1
        gdb.execute("stepi", to_string=True)
        n += 1
        if n > 20000:
            raise gdb.GdbError("%s: no return after %d instructions" % (fn, n))


def count_fast_path(fn, tries=50):
    """Count calls of fn until one takes the fast path (the interlock not
    taken: a drain was not in progress), and return that one.  Only
    mutex_enter marks the slow path: with DEBUG and LOCKDEBUG the fast
    path calls mutex_ownable(interlock)."""
    for _ in range(tries):
        total, parts = count(fn)
        if not any(name.startswith("mutex_enter") for name in parts):
            return total, parts
    raise gdb.GdbError("%s: no fast-path call in %d calls" % (fn, tries))


gdb.execute("set pagination off")
for f in FUNCTIONS:
    total, parts = count_fast_path(f)
    print("ICOUNT %s %d %s" % (f, total, " ".join(
        "%s=%d" % kv for kv in sorted(parts.items(), key=lambda kv: -kv[1]))))
gdb.execute("kill", to_string=True)
