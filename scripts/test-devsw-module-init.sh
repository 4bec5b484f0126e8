#!/usr/bin/env bash
# test-devsw-module-init.sh -- netbsd-patches/devsw-module-init.sh on a
# hard-linked copy of $NETBSDSRCDIR/sys (default /usr/src/sys, never
# modified): it refuses a non-NetBSD directory (2) and an unpatched tree (3);
# -n changes nothing; a real run adds DEVSW_MODULE_INIT to modular drivers'
# devsw initialisers in private copies of the files (the original tree is
# untouched, the edited files are no longer hard links); a second run
# changes nothing.  Exit 77 when there is no NetBSD tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
NETBSDSRCDIR=${NETBSDSRCDIR:-/usr/src}
script=$top/netbsd-patches/devsw-module-init.sh
[[ -f $NETBSDSRCDIR/sys/kern/subr_devsw.c ]] ||
	{ echo "test-devsw-module-init: SKIPPED: no NetBSD tree at $NETBSDSRCDIR"; exit 77; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "test-devsw-module-init: FAIL: $*" >&2; exit 1; }
expect_rc() {
	local want=$1 rc=0; shift
	"$@" > "$tmp/out" 2>&1 || rc=$?
	[[ $rc == "$want" ]] || { cat "$tmp/out" >&2; fail "$* exited $rc, not $want"; }
}

expect_rc 1 "$script"
expect_rc 2 "$script" "$tmp"
cp -al "$NETBSDSRCDIR/sys" "$tmp/sys"
expect_rc 3 "$script" "$tmp/sys"
"$top/netbsd-patches/apply.sh" "$tmp/sys" > /dev/null

expect_rc 0 "$script" -n "$tmp/sys"
grep -rlq --include='*.c' '^	DEVSW_MODULE_INIT$' "$tmp/sys" && fail "-n changed files"
grep -q "would add" "$tmp/out" || fail "-n reported nothing to do"

expect_rc 0 "$script" "$tmp/sys"
cp "$tmp/out" "$tmp/run1"
sed -n 's/^devsw-module-init: \([^:]*\): [^:]*: added DEVSW_MODULE_INIT$/\1/p' \
	"$tmp/run1" | sort -u > "$tmp/changed"
n=$(wc -l < "$tmp/changed")
(( n > 10 )) || fail "only $n files changed"
while read -r f; do
	[[ $(stat -c %h "$tmp/sys/$f") == 1 ]] || fail "$f is still a hard link"
	grep -q DEVSW_MODULE_INIT "$NETBSDSRCDIR/sys/$f" &&
		fail "$NETBSDSRCDIR/sys/$f was modified through the link"
	# The macro opens the initialiser, right after its brace.
	grep -A1 -E 'struct [bc]devsw [a-z0-9_]+ = \{$' "$tmp/sys/$f" |
		grep -q '^	DEVSW_MODULE_INIT$' || fail "$f: macro not in place"
done < "$tmp/changed"
for f in dev/cgd.c dev/vnd.c net/bpf.c; do
	grep -qx "$f" "$tmp/changed" || fail "$f (a module) not changed"
done
grep -q DEVSW_MODULE_INIT "$tmp/sys/dev/md.c" && fail "dev/md.c is not modular"

expect_rc 0 "$script" "$tmp/sys"
grep -q " 0 initialisers added DEVSW_MODULE_INIT in 0 files" "$tmp/out" ||
	{ cat "$tmp/out" >&2; fail "second run changed something"; }
echo "test-devsw-module-init: ok ($n files changed on a hard-linked copy;" \
	"original untouched; idempotent; refusals)"
