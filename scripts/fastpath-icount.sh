#!/usr/bin/env bash
# fastpath-icount.sh KERNEL... -- instructions executed by one fast-path
# localcount_acquire and localcount_release (callees included: percpu_getref,
# spl, kpreempt, ...) in each linked NetBSD kernel, counted exactly by
# single-stepping under QEMU's gdbstub (scripts/icount-gdb.py).  The count
# does not depend on machine load.  Kernels must run something that calls
# localcount_acquire/release after boot (the ktest suite does).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${ICOUNT_PORT:-12345}
command -v gdb >/dev/null || { echo "fastpath-icount: gdb not found" >&2; exit 2; }
printf '%-40s %8s %8s %8s\n' kernel acquire release pair
for k in "$@"; do
	qemu-system-x86_64 -M pc -accel tcg -cpu qemu64,-tsc -smp 1 -m 512 \
		-display none -nodefaults -serial null -no-reboot -kernel "$k" \
		-append console=com -gdb tcp:127.0.0.1:$port &
	qpid=$!
	sleep "${ICOUNT_BOOT_WAIT:-4}"	# let it boot into the suite
	out=$(timeout 300 gdb -batch -nx -ex "set osabi none" \
		-ex "set architecture i386:x86-64" -ex "file $k" \
		-ex "target remote 127.0.0.1:$port" -x "$here/icount-gdb.py" 2>&1 |
		grep '^ICOUNT' || true)
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	a=$(awk '$2=="localcount_acquire"{print $3}' <<<"$out")
	r=$(awk '$2=="localcount_release"{print $3}' <<<"$out")
	[[ -n $a && -n $r ]] || { echo "fastpath-icount: no count for $k" >&2; exit 1; }
	printf '%-40s %8d %8d %8d\n' "$k" "$a" "$r" $((a + r))
	sed 's/^ICOUNT /    /' <<<"$out"
done
