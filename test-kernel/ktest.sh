#!/usr/bin/env bash
#
# ktest.sh -- build NetBSD test kernels with the Rust and the C localcount(9),
# the modules and the userland of their md(4) root, boot them under QEMU and
# run the in-kernel suite (test-kernel/ktest/), then the userland suite
# (test-kernel/userland/: real modules loaded while processes open them).
#
# Usage: test-kernel/ktest.sh [-s "2 4 8"] [-v "c rust"] [-o OUTDIR] [-B] [-N]
#   -s  vCPU counts to boot each kernel with (default "2 4 8")
#   -v  kernel variants (default "c rust"):
#         c               stock kernel: C localcount (sys/kern/subr_localcount.c)
#         rust            options RUST_LOCALCOUNT: the Rust library
#         c-lockdebug     c + DEBUG + LOCKDEBUG
#         rust-lockdebug  rust + DEBUG + LOCKDEBUG (library built with lc-debug)
#         rust-broken     rust built with the DELIBERATELY WRONG feature
#                         broken-release-no-preempt: the suite must fail
#         rust-broken-devsw  rust built with the DELIBERATELY WRONG feature
#                         broken-devsw-no-reference: the devsw cases must fail
#   -o  results directory (default target/ktest/results); each run first
#       removes the previous run's result files there.  With kyua installed,
#       kyua also runs the results as ATF test programs: OUTDIR/kyua/
#   -B  build only, do not boot
#   -N  do not compile every modular driver of sys/modules (the
#       "N modules built, M failed" report of build-modules.sh -a)
# Environment:
#   NETBSDSRCDIR  NetBSD-current source tree (default /usr/src); only its
#                 sys/ and common/ are used, and it is never modified: the
#                 patches go to a hard-linked copy under KTEST_WORK, which
#                 must be on the same file system.
#   TOOLDIR       NetBSD host tools from build.sh tools (default /usr/tools):
#                 nbconfig, nbmake-amd64.
#   KTEST_WORK    work directory (default target/ktest)
#   CLANG         host clang used as NetBSD's external toolchain (clang-19)
#
# Exit: 0 all passed; 1 a build failed or a test failed, panicked, hung or
# did not run; 77 skipped (no NetBSD tree or tools here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
smps="2 4 8"
variants="c rust"
out=
build_only=false
all_modules=true
while getopts s:v:o:BN opt; do
	case $opt in
	s) smps=$OPTARG ;;
	v) variants=$OPTARG ;;
	o) out=$OPTARG ;;
	B) build_only=true ;;
	N) all_modules=false ;;
	*) sed -n '3,35p' "$0" >&2; exit 2 ;;
	esac
done

NETBSDSRCDIR=${NETBSDSRCDIR:-/usr/src}
TOOLDIR=${TOOLDIR:-/usr/tools}
work=${KTEST_WORK:-$top/target/ktest}
out=${out:-$work/results}
CLANG=${CLANG:-clang-19}

log() { printf '[ktest] %s\n' "$*" >&2; }
skip() { log "SKIPPED: $*"; exit 77; }
die() { log "ERROR: $*"; exit 1; }

# ---- what this machine has ----------------------------------------------
[[ -f $NETBSDSRCDIR/sys/kern/subr_localcount.c && -d $NETBSDSRCDIR/common ]] ||
	skip "no NetBSD source tree at NETBSDSRCDIR=$NETBSDSRCDIR (need sys/ and common/)"
[[ -x $TOOLDIR/bin/nbconfig && -x $TOOLDIR/bin/nbmake-amd64 ]] ||
	skip "no NetBSD host tools at TOOLDIR=$TOOLDIR (build.sh -m amd64 tools)"
command -v "$CLANG" >/dev/null || die "$CLANG not found (apt-get install clang-19)"
command -v makefs >/dev/null || die "makefs not found (apt-get install makefs)"
$build_only || command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
log "NETBSDSRCDIR=$NETBSDSRCDIR TOOLDIR=$TOOLDIR work=$work"
mkdir -p "$work" "$out"
# Each run starts from an empty results directory: remove what an earlier
# run wrote there (only those files), so that no old console log sits next
# to the new summary.
$build_only || rm -rf "$out"/*.console "$out"/results.tps "$out"/junit.xml \
	"$out"/summary.json "$out"/kyua

# ---- 1. the patched tree: hard-linked copy + netbsd-patches/apply.sh ----
# and devsw-module-init.sh (for the modules; built-in drivers do not change)
stamp=$(cat "$top"/netbsd-patches/*.patch "$top"/netbsd-patches/*.sh \
	"$top"/include/sys/localcount.h \
	$(find "$top/netbsd-patches/files" -type f | sort) | sha256sum | cut -c1-16)
src=$work/src
if [[ ! -f $src/.ktest-stamp || $(cat "$src/.ktest-stamp") != "$stamp" ]]; then
	log "making the patched tree $src/sys (hard links to $NETBSDSRCDIR/sys)"
	rm -rf "$src"
	mkdir -p "$src"
	cp -al "$NETBSDSRCDIR/sys" "$src/sys"
	ln -s "$(cd "$NETBSDSRCDIR/common" && pwd)" "$src/common"
	"$top/netbsd-patches/apply.sh" "$src/sys" >&2
	"$top/netbsd-patches/devsw-module-init.sh" "$src/sys" > "$src/devsw-module-init.log"
	echo "$stamp" > "$src/.ktest-stamp"
fi

# ---- 2. the host's clang as NetBSD's external toolchain -----------------
ext=$work/ext
mkdir -p "$ext/bin"
printf '#!/bin/sh\nexec %s --target=x86_64--netbsd "$@"\n' "$CLANG" > "$ext/bin/x86_64--netbsd-clang"
printf '#!/bin/sh\nexec %s --target=x86_64--netbsd -E -x c "$@"\n' "$CLANG" > "$ext/bin/x86_64--netbsd-clang-cpp"
chmod +x "$ext/bin/"*clang*
for t in ar as ld nm objcopy objdump ranlib readelf size strings strip; do
	ln -sf "$(command -v "$t")" "$ext/bin/x86_64--netbsd-$t"
done
MAKEVARS=(HAVE_LLVM=yes MKLLVM=yes MKGCC=no MKBINUTILS=no MKCTF=no MKDTRACE=no
	NOCLANGERROR=yes EXTERNAL_TOOLCHAIN="$ext")

# ---- 3. modules, /sbin/init and the md(4) root image ----------------------
# ktmod (+ its refused variants) and the real modules go into the image;
# with -a, every modular driver is compiled for the report.
mods=$work/modules
build_modules=(env EXTERNAL_TOOLCHAIN="$ext" "$here/modules/build-modules.sh"
	-s "$src/sys" -u "$NETBSDSRCDIR/sys" -o "$mods" -w "$work/modules-work")
log "modules: test-kernel/modules/build-modules.sh"
"${build_modules[@]}" $($all_modules && echo -a) >&2 || die "module build failed"
mkdir -p "$work/userland"
"$here/userland/build.sh" "$src/sys" "$work/userland/init" ||
	die "userland build failed"
"$here/userland/mkimage.sh" -s "$src/sys" -i "$work/userland/init" \
	-m "$mods" -o "$work/userland/root.img" || die "root image failed"
log "root image $work/userland/root.img: /sbin/init, $(ls "$mods"/*.kmod | wc -l) modules"

# ---- 4. build each kernel -------------------------------------------------
build_kernel() {
	local v=$1 conf obj features=""
	obj=$work/obj/$v
	mkdir -p "$obj"
	conf=$obj/KTEST_${v//-/_}
	{
		sed -e "s/^# KTEST --/# KTEST_${v//-/_} (generated by ktest.sh) --/" \
		    -e 's/^config[[:space:]].*/config		netbsd	root on md0a type ffs/' \
		    "$here/conf/KTEST.base"
		sed "s|@IMAGE@|$work/userland/root.img|" "$here/conf/userland.conf"
		case $v in *lockdebug*) cat "$here/conf/lockdebug.conf" ;; esac
		case $v in rust*) sed "s|@RUSTOBJ@|$obj/rust_localcount.o|g" "$here/conf/rust.conf" ;; esac
		sed "s|@KTESTDIR@|$here/ktest|g" "${KTEST_CONF:-$here/ktest/ktest.conf}"
	} > "$conf.new"
	cmp -s "$conf.new" "$conf" && rm "$conf.new" || mv "$conf.new" "$conf"
	case $v in
	c|c-lockdebug) ;;
	rust) features="diagnostic" ;;
	rust-lockdebug) features="diagnostic lc-debug" ;;
	rust-broken) features="diagnostic broken-release-no-preempt" ;;
	rust-broken-devsw) features="diagnostic broken-devsw-no-reference" ;;
	*) die "unknown variant $v" ;;
	esac
	if [[ $v == rust* ]]; then
		log "$v: Rust kernel object (features: $features)"
		FEATURES=$features "$top/scripts/build-kernel-obj.sh" x86_64 \
			"$obj/rust_localcount.o.new" >&2
		cmp -s "$obj/rust_localcount.o.new" "$obj/rust_localcount.o" &&
			rm "$obj/rust_localcount.o.new" ||
			mv "$obj/rust_localcount.o.new" "$obj/rust_localcount.o"
	fi
	log "$v: nbconfig + nbmake-amd64 in $obj"
	local t0=$SECONDS
	(cd "$obj" && "$TOOLDIR/bin/nbconfig" -b "$obj" -s "$src/sys" "$conf") \
		> "$obj/config.log" 2>&1 || { cat "$obj/config.log" >&2; die "$v: nbconfig failed"; }
	# dependall, as build.sh does: without the .d files, a change to a
	# header of the patched tree (e.g. struct cdevsw in <sys/conf.h>)
	# would leave stale objects behind.
	# md_root_image.h (the root image as a C array) first, else
	# md_root.d fails; the 2017 share/mk has no TOOL_HEXDUMP.  DBSYM
	# copies the symbol table into db_symtab (COPY_SYMTAB).
	local mk=("$TOOLDIR/bin/nbmake-amd64" "${MAKEVARS[@]}" TOOL_HEXDUMP=hexdump
		DBSYM="$here/userland/dbsym.py")
	if ! (cd "$obj" && "${mk[@]}" md_root_image.h &&
		"${mk[@]}" -j"${KTEST_JOBS:-2}" dependall) > "$obj/build.log" 2>&1; then
		grep -E 'error:|Error code|undefined reference' "$obj/build.log" |
			head -30 >&2 || true
		die "$v: kernel build failed (log: $obj/build.log)"
	fi
	log "$v: built $obj/netbsd in $((SECONDS - t0)) s"
	# The right implementation must be linked: Rust (the glue and the
	# Rust-only symbol, no subr_localcount.o) or C.
	nm "$obj/netbsd" > "$obj/netbsd.nm"
	grep -q ' T localcount_acquire$' "$obj/netbsd.nm" || die "$v: no localcount_acquire"
	if [[ $v == rust* ]]; then
		[[ ! -f $obj/subr_localcount.o ]] || die "$v: subr_localcount.o was built"
		grep -qE ' R localcount_rust_built_(no)?debug$' "$obj/netbsd.nm" ||
			die "$v: the Rust localcount is not the one linked"
	else
		[[ -f $obj/subr_localcount.o ]] || die "$v: subr_localcount.o missing"
		! grep -q 'localcount_rust_built' "$obj/netbsd.nm" || die "$v: Rust object linked"
	fi
}

for v in $variants; do
	build_kernel "$v"
done
# What the kernel will load must resolve against it, as kobj requires.
first=${variants%% *}
"${build_modules[@]}" -k "$work/obj/$first/netbsd" > "$work/modules-check.log" 2>&1 ||
	{ tail -20 "$work/modules-check.log" >&2; die "modules do not resolve against $first's kernel"; }
$build_only && { log "build only: done"; exit 0; }

# ---- 5. boot every kernel at every vCPU count -----------------------------
runs=()
for v in $variants; do
	for n in $smps; do
		runs+=("$v:$n:$work/obj/$v/netbsd")
	done
done
# kyua (ATF's runner) then runs the results as ATF test programs, as a
# NetBSD developer would read them (test-kernel/atf/; $out/kyua/).
kyua=()
if command -v kyua >/dev/null; then
	kyua=(--kyua)
else
	log "kyua not installed: the results are not run through kyua (apt-get install kyua)"
fi
exec python3 "$here/ktest_matrix.py" --out "$out" "${kyua[@]}" "${runs[@]}"
