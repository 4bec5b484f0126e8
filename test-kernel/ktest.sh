#!/usr/bin/env bash
#
# ktest.sh -- build NetBSD test kernels with the Rust and the C localcount(9),
# the modules and the userland of their md(4) root, boot them under QEMU and
# run the in-kernel suite (test-kernel/ktest/), then the userland suite
# (test-kernel/userland/: real modules loaded while processes open them).
#
# Usage: test-kernel/ktest.sh [-a ARCH] [-s "2 4 8"] [-v "c rust"] [-o OUTDIR] [-B] [-N]
#   -a  architecture (default amd64):
#         amd64    conf/KTEST.base, Xen PVH boot; the in-kernel suite, then
#                  the userland suite (modules, md(4) root, /sbin/init)
#         i386     conf/KTEST.i386.base, multiboot; the in-kernel suite only
#         aarch64  conf/KTEST.aarch64.base (evbarm, QEMU virt machine,
#                  cortex-a57, PL011 console); the in-kernel suite only
#       Boots are labelled "VARIANT smpN" on amd64 and "ARCH VARIANT smpN"
#       on the others; their work and results directories are apart
#       (KTEST_WORK/ARCH/obj, KTEST_WORK/ARCH/results; amd64's are
#       KTEST_WORK/obj and KTEST_WORK/results).
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
#         rust-broken-percpu  rust built with the DELIBERATELY WRONG feature
#                         broken-percpu-no-spl (no splhigh around the per-CPU
#                         update): must fail on i386 and aarch64, which need
#                         it (amd64 updates with one instruction: no spl)
#   -o  results directory (default target/ktest/results, or
#       target/ktest/ARCH/results); each run first removes the previous
#       run's result files there.  With kyua installed, kyua also runs the
#       results as ATF test programs: OUTDIR/kyua/
#   -B  build only, do not boot
#   -N  do not compile every modular driver of sys/modules (the
#       "N modules built, M failed" report of build-modules.sh -a; amd64)
# Environment:
#   NETBSDSRCDIR  NetBSD-current source tree (default /usr/src); only its
#                 sys/ and common/ are used, and it is never modified: the
#                 patches go to a hard-linked copy under KTEST_WORK, which
#                 must be on the same file system.
#   TOOLDIR       amd64 host tools from build.sh -m amd64 tools (default
#                 /usr/tools): nbconfig, nbmake-amd64.
#   TOOLDIR_I386  i386 host tools, build.sh -m i386 tools (default
#                 /usr/tools-i386): nbconfig, nbmake-i386.
#   TOOLDIR_AARCH64  evbarm-aarch64 host tools, build.sh -m evbarm -a
#                 aarch64 tools (default /usr/tools-aarch64): nbconfig,
#                 nbmake-evbarm and, if it has one, nbmkubootimage (the
#                 kernel link writes netbsd.img with it; without it,
#                 test-kernel/tools/mkubootimage-arm64.py does).  One
#                 TOOLDIR per machine: build.sh installs some
#                 target-specific scripts (nblorder, nbgenassym) under
#                 the same names for every machine.
#   KTEST_WORK    work directory (default target/ktest)
#   CLANG         host clang used as NetBSD's external toolchain (clang-19);
#                 with GNU binutils for i386 and aarch64 from Debian's
#                 binutils-i686-linux-gnu, binutils-aarch64-linux-gnu
#
# Exit: 0 all passed; 1 a build failed or a test failed, panicked, hung or
# did not run; 77 skipped (no NetBSD tree or tools for ARCH here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
arch=amd64
smps="2 4 8"
variants="c rust"
out=
build_only=false
all_modules=true
while getopts a:s:v:o:BN opt; do
	case $opt in
	a) arch=$OPTARG ;;
	s) smps=$OPTARG ;;
	v) variants=$OPTARG ;;
	o) out=$OPTARG ;;
	B) build_only=true ;;
	N) all_modules=false ;;
	*) sed -n '3,60p' "$0" >&2; exit 2 ;;
	esac
done

# ---- the architecture -------------------------------------------------------
# machine: NetBSD's MACHINE (nbmake-$machine); triple: the tool prefix of
# the external toolchain (MACHINE_GNU_PLATFORM); bu: this host's GNU
# binutils for it; kobj: build-kernel-obj.sh's name; image: what QEMU
# boots (ktest_harness.ARCHES has the QEMU command); userland: the
# userland suite, its modules and md(4) root (amd64 only).
case $arch in
amd64)	machine=amd64 triple=x86_64--netbsd bu= kobj=x86_64 image=netbsd
	qemu=qemu-system-x86_64 base=KTEST.base userland=true
	TOOLDIR=${TOOLDIR:-/usr/tools} tools_cmd="build.sh -m amd64 tools" ;;
i386)	machine=i386 triple=i486--netbsdelf bu=i686-linux-gnu- kobj=i386
	image=netbsd qemu=qemu-system-i386 base=KTEST.i386.base userland=false
	TOOLDIR=${TOOLDIR_I386:-/usr/tools-i386} tools_cmd="build.sh -m i386 tools" ;;
aarch64) machine=evbarm triple=aarch64--netbsd bu=aarch64-linux-gnu- kobj=aarch64
	image=netbsd.img qemu=qemu-system-aarch64 base=KTEST.aarch64.base
	userland=false TOOLDIR=${TOOLDIR_AARCH64:-/usr/tools-aarch64}
	tools_cmd="build.sh -m evbarm -a aarch64 tools" ;;
*)	echo "ktest: unknown architecture '$arch' (amd64, i386 or aarch64)" >&2
	exit 2 ;;
esac

NETBSDSRCDIR=${NETBSDSRCDIR:-/usr/src}
work=${KTEST_WORK:-$top/target/ktest}
# The patched tree is shared; objects and results are per architecture.
if [[ $arch == amd64 ]]; then awork=$work; else awork=$work/$arch; fi
out=${out:-$awork/results}
CLANG=${CLANG:-clang-19}

log() { printf '[ktest] %s\n' "$*" >&2; }
skip() { log "SKIPPED: $*"; exit 77; }
die() { log "ERROR: $*"; exit 1; }

# ---- what this machine has ----------------------------------------------
[[ -f $NETBSDSRCDIR/sys/kern/subr_localcount.c && -d $NETBSDSRCDIR/common ]] ||
	skip "no NetBSD source tree at NETBSDSRCDIR=$NETBSDSRCDIR (need sys/ and common/)"
[[ -x $TOOLDIR/bin/nbconfig && -x $TOOLDIR/bin/nbmake-$machine ]] ||
	skip "no NetBSD host tools for $arch at $TOOLDIR ($tools_cmd)"
# The evbarm link writes netbsd.img with mkubootimage -f arm64; a tools
# tree without it (TOOLS_BUILDRUMP=yes) gets our arm64-only stand-in.
mkuboot=()
if [[ $arch == aarch64 && ! -x $TOOLDIR/bin/nbmkubootimage ]]; then
	mkuboot=(TOOL_MKUBOOTIMAGE="$here/tools/mkubootimage-arm64.py")
	log "no nbmkubootimage in $TOOLDIR: test-kernel/tools/mkubootimage-arm64.py writes netbsd.img"
fi
command -v "$CLANG" >/dev/null || die "$CLANG not found (apt-get install clang-19)"
command -v "${bu}ld" >/dev/null ||
	die "${bu}ld not found (apt-get install binutils-${bu%-})"
! $userland || command -v makefs >/dev/null || die "makefs not found (apt-get install makefs)"
$build_only || command -v $qemu >/dev/null ||
	die "$qemu not found (apt-get install qemu-system-$( [[ $arch == aarch64 ]] && echo arm || echo x86))"
log "arch=$arch NETBSDSRCDIR=$NETBSDSRCDIR TOOLDIR=$TOOLDIR work=$awork"
mkdir -p "$awork" "$out"
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
# with this host's GNU binutils for the architecture; for a cross target
# clang gets -B with a directory whose "ld" is the cross ld (else "clang
# -r" runs the host's ld: "file in wrong format").
ext=$awork/ext
mkdir -p "$ext/bin"
bflag=
if [[ -n $bu ]]; then
	mkdir -p "$ext/ld"
	ln -sf "$(command -v "${bu}ld")" "$ext/ld/ld"
	bflag=" -B $ext/ld"
fi
printf '#!/bin/sh\nexec %s --target=%s%s "$@"\n' "$CLANG" "$triple" "$bflag" > "$ext/bin/$triple-clang"
printf '#!/bin/sh\nexec %s --target=%s -E -x c "$@"\n' "$CLANG" "$triple" > "$ext/bin/$triple-clang-cpp"
chmod +x "$ext/bin/"*clang*
for t in ar as ld nm objcopy objdump ranlib readelf size strings strip; do
	ln -sf "$(command -v "$bu$t")" "$ext/bin/$triple-$t"
done
MAKEVARS=(HAVE_LLVM=yes MKLLVM=yes MKGCC=no MKBINUTILS=no MKCTF=no MKDTRACE=no
	NOCLANGERROR=yes EXTERNAL_TOOLCHAIN="$ext")

# ---- 3. modules, /sbin/init and the md(4) root image ----------------------
# ktmod (+ its refused variants) and the real modules go into the image;
# with -a, every modular driver is compiled for the report.  amd64 only:
# elsewhere the in-kernel suite ends the VM (no KTEST_USERLAND).
mods=$work/modules
build_modules=(env EXTERNAL_TOOLCHAIN="$ext" "$here/modules/build-modules.sh"
	-s "$src/sys" -u "$NETBSDSRCDIR/sys" -o "$mods" -w "$work/modules-work")
if $userland; then
	log "modules: test-kernel/modules/build-modules.sh"
	"${build_modules[@]}" $($all_modules && echo -a) >&2 || die "module build failed"
	mkdir -p "$work/userland"
	"$here/userland/build.sh" "$src/sys" "$work/userland/init" ||
		die "userland build failed"
	"$here/userland/mkimage.sh" -s "$src/sys" -i "$work/userland/init" \
		-m "$mods" -o "$work/userland/root.img" || die "root image failed"
	log "root image $work/userland/root.img: /sbin/init, $(ls "$mods"/*.kmod | wc -l) modules"
else
	log "$arch: in-kernel suite only (the userland suite and its modules are amd64's)"
fi

# ---- 4. build each kernel -------------------------------------------------
build_kernel() {
	local v=$1 conf obj features=""
	obj=$awork/obj/$v
	mkdir -p "$obj"
	conf=$obj/KTEST_${v//-/_}
	{
		if $userland; then
			sed -e "s/^# KTEST --/# KTEST_${v//-/_} (generated by ktest.sh) --/" \
			    -e 's/^config[[:space:]].*/config		netbsd	root on md0a type ffs/' \
			    "$here/conf/$base"
			sed "s|@IMAGE@|$work/userland/root.img|" "$here/conf/userland.conf"
		else
			sed -e "s/^# KTEST --/# KTEST_${v//-/_} (generated by ktest.sh) --/" \
			    "$here/conf/$base"
		fi
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
	rust-broken-percpu) features="diagnostic broken-percpu-no-spl" ;;
	*) die "unknown variant $v" ;;
	esac
	if [[ $v == rust* ]]; then
		log "$v: Rust kernel object (features: $features)"
		FEATURES=$features "$top/scripts/build-kernel-obj.sh" $kobj \
			"$obj/rust_localcount.o.new" >&2
		cmp -s "$obj/rust_localcount.o.new" "$obj/rust_localcount.o" &&
			rm "$obj/rust_localcount.o.new" ||
			mv "$obj/rust_localcount.o.new" "$obj/rust_localcount.o"
	fi
	log "$v: nbconfig + nbmake-$machine in $obj"
	local t0=$SECONDS
	(cd "$obj" && "$TOOLDIR/bin/nbconfig" -b "$obj" -s "$src/sys" "$conf") \
		> "$obj/config.log" 2>&1 || { cat "$obj/config.log" >&2; die "$v: nbconfig failed"; }
	# dependall, as build.sh does: without the .d files, a change to a
	# header of the patched tree (e.g. struct cdevsw in <sys/conf.h>)
	# would leave stale objects behind.
	# md_root_image.h (the root image as a C array) first, else
	# md_root.d fails; the 2017 share/mk has no TOOL_HEXDUMP.  DBSYM
	# copies the symbol table into db_symtab (COPY_SYMTAB).
	local mk=("$TOOLDIR/bin/nbmake-$machine" "${MAKEVARS[@]}" ${mkuboot[@]+"${mkuboot[@]}"})
	$userland && mk+=(TOOL_HEXDUMP=hexdump DBSYM="$here/userland/dbsym.py")
	if ! (cd "$obj" && { ! $userland || "${mk[@]}" md_root_image.h; } &&
		"${mk[@]}" -j"${KTEST_JOBS:-2}" dependall) > "$obj/build.log" 2>&1; then
		grep -E 'error:|Error code|undefined reference' "$obj/build.log" |
			head -30 >&2 || true
		die "$v: kernel build failed (log: $obj/build.log)"
	fi
	[[ -f $obj/$image ]] || die "$v: no $obj/$image"
	log "$v: built $obj/netbsd in $((SECONDS - t0)) s"
	# The right implementation must be linked: Rust (the glue and the
	# Rust-only symbol, no subr_localcount.o) or C.
	"${bu}nm" "$obj/netbsd" > "$obj/netbsd.nm"
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
! $userland || "${build_modules[@]}" -k "$work/obj/$first/netbsd" > "$work/modules-check.log" 2>&1 ||
	{ tail -20 "$work/modules-check.log" >&2; die "modules do not resolve against $first's kernel"; }
$build_only && { log "build only: done"; exit 0; }

# ---- 5. boot every kernel at every vCPU count -----------------------------
runs=()
for v in $variants; do
	for n in $smps; do
		runs+=("$v:$n:$awork/obj/$v/$image")
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
exec python3 "$here/ktest_matrix.py" --arch "$arch" --out "$out" "${kyua[@]}" "${runs[@]}"
