#!/bin/sh
#
# apply.sh [-n] SYSDIR
#
#	Switch a NetBSD-current sys/ tree to the Rust localcount(9):
#	  - applies the patches in this directory (0001-*.patch, ...): 0001
#	    adds `options RUST_LOCALCOUNT' (sys/kern/files.kern); 0002 adds
#	    d_localcount to struct bdevsw/cdevsw (<sys/conf.h>, for every
#	    kernel: modules must be rebuilt) and, with the option, makes the
#	    devsw and autoconf reference functions the Rust library's;
#	  - installs our files (files/, relative to sys/):
#	    sys/kern/rust_localcount_glue.c and the
#	    generated <sys/localcount.h> (include/sys/localcount.h, a drop-in
#	    with the same ABI).
#	With -n, only checks that everything would apply (changes nothing).
#
#	Refuses (exit 2) a directory that is not a NetBSD sys/ tree and
#	(exit 3) a tree that already has the patches, changing nothing.
#	Files that are modified are first replaced by private copies, so a
#	tree made of hard links to the user's tree (cp -al) can be patched
#	without touching the original.
#
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
dryrun=false
if [ "${1-}" = -n ]; then
	dryrun=true
	shift
fi
[ $# -eq 1 ] || { echo "usage: apply.sh [-n] SYSDIR" >&2; exit 1; }
sys=$(cd "$1" 2>/dev/null && pwd) || { echo "apply.sh: $1: no such directory" >&2; exit 2; }

die() { echo "apply.sh: $*" >&2; exit "${rc:-2}"; }

# Is it a NetBSD sys/ tree we know?
for f in kern/files.kern kern/subr_localcount.c sys/localcount.h sys/param.h; do
	[ -f "$sys/$f" ] || die "$sys is not a NetBSD sys/ tree (no $f)"
done
grep -q '__NetBSD_Version__' "$sys/sys/param.h" ||
	die "$sys/sys/param.h has no __NetBSD_Version__: not a NetBSD tree"
grep -q '^struct localcount {' "$sys/sys/localcount.h" ||
	die "$sys/sys/localcount.h has no struct localcount"

if grep -q 'rust_localcount' "$sys/kern/files.kern"; then
	rc=3 die "$sys already has the RUST_LOCALCOUNT patches; nothing changed"
fi

# Dry run of every patch first: all or nothing.
for p in "$here"/[0-9]*.patch; do
	patch -d "$sys/.." -p1 --dry-run --silent < "$p" >/dev/null ||
		die "$(basename "$p") does not apply to $sys; nothing changed"
done
[ -f "$top/include/sys/localcount.h" ] || die "missing $top/include/sys/localcount.h"
if $dryrun; then
	echo "apply.sh: all patches apply to $sys"
	exit 0
fi

# Replace the files we modify by private copies (break hard links).
private() {
	cp -p "$1" "$1.apply.$$" && mv -f "$1.apply.$$" "$1"
}
for p in "$here"/[0-9]*.patch; do
	for f in $(sed -n 's|^+++ b/sys/\([^	 ]*\).*|\1|p' "$p"); do
		private "$sys/$f"
	done
	patch -d "$sys/.." -p1 --silent --no-backup-if-mismatch < "$p"
	echo "apply.sh: applied $(basename "$p")"
done
rm -f "$sys/sys/localcount.h"
cp "$top/include/sys/localcount.h" "$sys/sys/localcount.h"
echo "apply.sh: installed sys/sys/localcount.h (generated, drop-in)"
(cd "$here/files" && find . -type f) | while read -r f; do
	rm -f "$sys/$f"
	cp "$here/files/$f" "$sys/$f"
	echo "apply.sh: installed sys/${f#./}"
done
