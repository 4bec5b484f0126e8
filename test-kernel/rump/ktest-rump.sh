#!/usr/bin/env bash
#
# ktest-rump.sh -- build rump kernels with the C and with the Rust
# localcount(9) and run the in-kernel suite (test-kernel/ktest/) in them,
# as a rump component, on the host's real cores.
#
# Usage: test-kernel/rump/ktest-rump.sh [-n "1 2 4 8"] [-v "c rust"] [-o OUTDIR] [-B]
#   -n  virtual CPU counts (RUMP_NCPU) to run each rump kernel with
#       (default "1 2 4 8")
#   -v  rump kernel variants (default "c rust"):
#         c                  sys/kern/subr_localcount.c (the tree's C code,
#                            our patches applied but not RUST_LOCALCOUNT, as
#                            the "c" kernel of ktest.sh)
#         rust               RUMP_RUST_LOCALCOUNT: the Rust library, built
#                            for the host (scripts/build-kernel-obj.sh
#                            x86_64-rump), in librump instead of
#                            subr_localcount.c; subr_devsw.c and
#                            subr_autoconf.c as in a RUST_LOCALCOUNT kernel
#         rust-broken        rust built with the DELIBERATELY WRONG feature
#                            broken-release-no-preempt: the suite must fail
#         rust-broken-devsw  rust built with broken-devsw-no-reference: the
#                            devsw cases must fail
#   -o  results directory (default RUMP_WORK/results); each run first removes
#       the previous run's result files there
#   -B  build only, do not run
#   -a  also NetBSD's own tests/dev/audio against each rump kernel (from
#       NETBSDTESTSDIR): h_pad (t_pad:pad_output) opens /dev/pad0 and
#       /dev/audio0 of the real pad(4) and audio(4) drivers through the
#       devsw, and audiotest runs every t_audio case (the list and the
#       "audiotest -ARe CASE" call that t_audio.awk generates); every
#       case's verdict must be the same on every variant, and none may
#       fail
# Environment:
#   NETBSDSRCDIR  a NetBSD source tree that buildrump.sh can build rump
#                 kernels from (default /usr/src): build.sh, tools/,
#                 share/mk/, lib/librumpuser/, lib/librump/, sys/ with
#                 sys/rump/, common/.  It is never modified: the patches
#                 go to a hard-linked copy under RUMP_WORK (same file
#                 system as the tree).
#   BUILDRUMPSH   a checkout of buildrump.sh (github.com/rumpkernel), the
#                 driver that builds NetBSD's rump kernels on non-NetBSD
#                 hosts (default: NETBSDSRCDIR/../buildrump.sh).  Its
#                 "tools" step makes the NetBSD host tools and rumpmake;
#                 this script then runs rumpmake itself on the few
#                 libraries it needs (librumpuser, librump).
#   BUILDRUMP_FLAGS  options for buildrump.sh (default "-V NOGCCERROR=yes":
#                 the rump kernels are built with the host's gcc, usually
#                 newer than the tree, whose new warnings would otherwise
#                 be errors; our own C is compiled with the kernel's
#                 -Werror flags by test-kernel/ktest.sh)
#   HOST_CFLAGS   for the host tools (default "-O -fcommon -w": tools that
#                 predate gcc 10 define common symbols in several files)
#   NETBSDTESTSDIR  NetBSD's tests/ (default NETBSDSRCDIR/tests), for -a
#   RUMP_WORK     work directory (default target/rump)
#   RUMP_JOBS     make -j (default 2)
#
# Steps: (1) hard-linked copy of NETBSDSRCDIR with netbsd-patches/apply.sh
# and devsw-module-init.sh on its sys/, and netbsd-patches/rump/*.patch
# (RUMP_RUST_LOCALCOUNT in Makefile.rumpkern); (2) buildrump.sh tools;
# (3) per variant: librumpuser and librump (the Rust object renamed into
# the rumpns_ namespace by rump's own __archivebuild rule) and a check
# that the intended implementation is the one linked; the component
# librumpkern_ktest (Makefile.component); librumpvfs, librumpdev,
# putter(4) and pud(4); the programs ktest_rump (ktest_rump_main.c: the
# suite), ktmod_rump (ktmod_rump.c: the userland suite's module cases)
# and pud_rump (pud_rump.c: two pud device servers at two majors of one
# cdevsw); with -a audio(4), pad(4), h_pad and audiotest; then the
# userland suite's ktmod.c as .kmod files for the rump kernels
# (build_kmods); (4) with -a, h_pad and every t_audio case on every
# variant (results in OUTDIR: t_audio-VARIANT.tps, ATF tps, and
# t_audio-VARIANT.out); (5) every variant at every RUMP_NCPU through
# ktest_rump_run.py: the suite ("VARIANT-rump ncpuN"), the module cases
# ("VARIANT-rump-modules ncpuN") and pud ("VARIANT-rump-pud ncpuN"): ATF
# tps, JUnit, JSON, console logs and a final "N passed, N failed" line.
#
# Exit: 0 all passed; 1 a build failed or a case failed, panicked, hung or
# did not run; 77 skipped (no rump-capable tree or no buildrump.sh here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tk=$(dirname "$here")
top=$(dirname "$tk")
ncpus="1 2 4 8"
variants="c rust"
out=
build_only=false
audio=false
while getopts n:v:o:Ba opt; do
	case $opt in
	a) audio=true ;;
	n) ncpus=$OPTARG ;;
	v) variants=$OPTARG ;;
	o) out=$OPTARG ;;
	B) build_only=true ;;
	*) sed -n '3,68p' "$0" >&2; exit 2 ;;
	esac
done

NETBSDSRCDIR=${NETBSDSRCDIR:-/usr/src}
BUILDRUMPSH=${BUILDRUMPSH:-$NETBSDSRCDIR/../buildrump.sh}
BUILDRUMP_FLAGS=${BUILDRUMP_FLAGS--V NOGCCERROR=yes}
export HOST_CFLAGS=${HOST_CFLAGS--O -fcommon -w}
work=${RUMP_WORK:-$top/target/rump}
out=${out:-$work/results}
jobs=${RUMP_JOBS:-2}

log() { printf '[rump] %s\n' "$*" >&2; }
skip() { log "SKIPPED: $*"; exit 77; }
die() { log "ERROR: $*"; exit 1; }

# ---- what this machine has ----------------------------------------------
for f in build.sh share/mk/bsd.own.mk lib/librumpuser/Makefile \
    lib/librump/Makefile sys/rump/Makefile.rump sys/kern/subr_localcount.c; do
	[[ -e $NETBSDSRCDIR/$f ]] ||
		skip "no rump-capable NetBSD tree at NETBSDSRCDIR=$NETBSDSRCDIR (no $f)"
done
[[ -x $BUILDRUMPSH/buildrump.sh ]] ||
	skip "no buildrump.sh at BUILDRUMPSH=$BUILDRUMPSH"
for t in cc ld objcopy python3; do
	command -v $t >/dev/null || die "$t not found"
done
NETBSDSRCDIR=$(cd "$NETBSDSRCDIR" && pwd)
NETBSDTESTSDIR=${NETBSDTESTSDIR:-$NETBSDSRCDIR/tests}
if $audio && [[ ! -f $NETBSDTESTSDIR/dev/audio/h_pad.c ]]; then
	log "no tests/dev/audio at NETBSDTESTSDIR=$NETBSDTESTSDIR: -a ignored"
	audio=false
fi
BUILDRUMPSH=$(cd "$BUILDRUMPSH" && pwd)
log "NETBSDSRCDIR=$NETBSDSRCDIR BUILDRUMPSH=$BUILDRUMPSH work=$work"
mkdir -p "$work" "$out"
work=$(cd "$work" && pwd)
$build_only || rm -rf "$out"/*.console "$out"/results.tps "$out"/junit.xml \
	"$out"/summary.json "$out"/h_pad-*.out "$out"/t_audio-*

# ---- 1. the patched tree -----------------------------------------------
stamp=$(cat "$top"/netbsd-patches/*.patch "$top"/netbsd-patches/*.sh \
	"$top"/netbsd-patches/rump/*.patch "$top"/include/sys/localcount.h \
	$(find "$top/netbsd-patches/files" -type f | sort) | sha256sum | cut -c1-16)
src=$work/src
if [[ ! -f $work/.src-stamp || $(cat "$work/.src-stamp") != "$stamp" ]]; then
	log "making the patched tree $src (hard links to $NETBSDSRCDIR)"
	rm -rf "$src" "$work/.src-stamp"
	cp -al "$NETBSDSRCDIR" "$src"
	"$top/netbsd-patches/apply.sh" "$src/sys" >&2
	# Every rump kernel source is compiled with _MODULE, so the drivers
	# of the rump components get their d_localcount as modules do.
	"$top/netbsd-patches/devsw-module-init.sh" "$src/sys" > "$src/devsw-module-init.log"
	for p in "$top"/netbsd-patches/rump/*.patch; do
		# Break the hard links of the files the patch changes first.
		for f in $(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p"); do
			cp "$src/$f" "$src/$f.new" && mv "$src/$f.new" "$src/$f"
		done
		patch -s -p1 -d "$src" < "$p" || die "$p does not apply"
	done
	echo "$stamp" > "$work/.src-stamp"
fi

# ---- 2. buildrump.sh tools: NetBSD host tools and rumpmake --------------
# -H: the tree is not the revision buildrump.sh pins (checkout.sh); the
# manual pages are not needed.
# They depend on the tree and the options, not on our patches.
tools=$work/tools
tstamp=$(printf '%s\n' "$NETBSDSRCDIR" "$BUILDRUMP_FLAGS" "$HOST_CFLAGS" | sha256sum | cut -c1-16)
if [[ ! -x $tools/bin/brrumpmake || $(cat "$tools/.stamp" 2>/dev/null) != "$tstamp" ]]; then
	log "buildrump.sh tools -> $tools (log: $work/tools.log)"
	t0=$SECONDS
	# shellcheck disable=SC2086
	(cd "$work" && "$BUILDRUMPSH/buildrump.sh" -H -q -j "$jobs" -s "$src" \
		-T "$tools" -o "$work/obj-c" -d "$work/dest" \
		-V MKMAN=no -V MKDOC=no -V MKHTML=no -V MKINFO=no \
		$BUILDRUMP_FLAGS tools) > "$work/tools.log" 2>&1 ||
		{ tail -20 "$work/tools.log" >&2; die "buildrump.sh tools failed"; }
	echo "$tstamp" > "$tools/.stamp"
	log "tools built in $((SECONDS - t0)) s"
fi

# ---- 3. the rump kernels, the component, the program ----------------------
# rumpmake bakes the object directory (MAKEOBJDIR, DESTDIR, BUILDRUMP_STAGE
# under buildrump.sh's -o) in; each variant gets a copy pointing at its own.
# _GCC_CRTI/_GCC_CRTN empty: the host cc links its own crti/crtn into the
# shared libraries.  MKSTATICLIB=no: the program links the shared ones.
build_variant() {
	local v=$1 obj=$work/obj-$1 features="" rmk=() rustvar=() comp
	case $v in
	c) ;;
	rust) features="diagnostic" ;;
	rust-broken) features="diagnostic broken-release-no-preempt" ;;
	rust-broken-devsw) features="diagnostic broken-devsw-no-reference" ;;
	*) die "unknown variant $v" ;;
	esac
	# A deliberately broken variant differs from "rust" only in the Rust
	# object: start from a copy of rust's objects (make then redoes what
	# depends on the object) instead of compiling librump again.
	if [[ $v == rust-* && ! -d $obj && -f $work/obj-rust/dest.stage/usr/lib/librump.so ]]; then
		log "$v: objects copied from $work/obj-rust"
		cp -a "$work/obj-rust" "$obj.tmp"
		rm -rf "$obj.tmp/ktest" "$obj.tmp/ktest_rump"
		mv "$obj.tmp" "$obj"
	fi
	sed "s|$work/obj-c|$obj|g" "$tools/bin/brrumpmake" > "$tools/bin/rumpmake-$v"
	chmod +x "$tools/bin/rumpmake-$v"
	mkdir -p "$obj/dest.stage/usr/bin" "$obj/dest.stage/usr/include/rump" \
		"$obj/dest.stage/usr/lib"
	rmk=(nice "$tools/bin/rumpmake-$v" _GCC_CRTI= _GCC_CRTN= MKSTATICLIB=no -j "$jobs")
	if [[ $v == rust* ]]; then
		log "$v: Rust object for the rump kernel (features: $features)"
		FEATURES=$features "$top/scripts/build-kernel-obj.sh" x86_64-rump \
			"$obj/rust_localcount.o.new" >&2
		cmp -s "$obj/rust_localcount.o.new" "$obj/rust_localcount.o" &&
			rm "$obj/rust_localcount.o.new" ||
			mv "$obj/rust_localcount.o.new" "$obj/rust_localcount.o"
		rustvar=(RUMP_RUST_LOCALCOUNT="$obj/rust_localcount.o")
	fi
	printf 'SUBDIR=%s\n.include <bsd.subdir.mk>\n' \
		"$(printf ' %s' "$src"/lib/librumpuser "$src"/lib/librump \
		    "$src"/sys/rump/include)" > "$obj/Makefile.includes"
	printf 'SUBDIR= %s .WAIT %s\n.include <bsd.subdir.mk>\n' \
		"$src/lib/librumpuser" "$src/lib/librump" > "$obj/Makefile.libs"
	log "$v: librumpuser, librump (log: $obj/build.log)"
	local t0=$SECONDS
	if ! ( "${rmk[@]}" -f "$obj/Makefile.includes" obj &&
	    "${rmk[@]}" -f "$obj/Makefile.includes" includes &&
	    "${rmk[@]}" "${rustvar[@]}" -f "$obj/Makefile.libs" dependall &&
	    "${rmk[@]}" "${rustvar[@]}" -f "$obj/Makefile.libs" install ) \
	    > "$obj/build.log" 2>&1; then
		grep -E 'error:|Error code|undefined reference' "$obj/build.log" |
			head -30 >&2 || true
		die "$v: rump kernel build failed (log: $obj/build.log)"
	fi
	log "$v: rump kernel built in $((SECONDS - t0)) s"

	# The right implementation must be the one in librump: Rust (renamed
	# into rumpns_, no subr_localcount) or C.
	local lib=$obj/dest.stage/usr/lib/librump.so
	nm -D --defined-only "$lib" > "$obj/librump.nm"
	grep -q ' T rumpns_localcount_acquire$' "$obj/librump.nm" ||
		die "$v: no rumpns_localcount_acquire in $lib"
	if [[ $v == rust* ]]; then
		grep -qE ' R rumpns_localcount_rust_built_(no)?debug$' "$obj/librump.nm" ||
			die "$v: the Rust localcount is not the one in $lib"
		[[ ! -e $obj/lib/librump/subr_localcount.pico ]] ||
			die "$v: subr_localcount was compiled"
		# Every global symbol of the Rust object in rump's namespace
		# (Makefile.rump leaves rump*, RUMP* and __* alone).
		nm -g "$obj/lib/librump/rust_localcount.pico" | awk '{print $NF}' |
			grep -vE '^(rump|RUMP|__|_GLOBAL_OFFSET_TABLE_)' > "$obj/rust-outside-ns.txt" &&
			die "$v: Rust object symbols outside the rumpns_ namespace:" \
			    "$(tr '\n' ' ' < "$obj/rust-outside-ns.txt")"
	else
		! grep -q 'localcount_rust_built' "$obj/librump.nm" ||
			die "$v: Rust object in the C rump kernel"
	fi

	# The suite as a rump component, built where its objects go.
	comp=$obj/ktest
	mkdir -p "$comp"
	cp "$here/Makefile.component" "$comp/Makefile"
	if ! (cd "$comp" && "${rmk[@]}" KTESTDIR="$tk/ktest" \
	    RUST_LOCALCOUNT=$([[ $v == rust* ]] && echo yes || echo no) dependall) \
	    > "$comp/build.log" 2>&1; then
		grep -E 'error:|Error code' "$comp/build.log" | head -30 >&2 || true
		die "$v: component build failed (log: $comp/build.log)"
	fi
	# The components the programs below link: librumpvfs (modctl(2)
	# loads a .kmod through the rump kernel's file system; etfs; specfs
	# opens the devices), librumpdev, putter(4) and pud(4).
	rump_components "$v" devices "librumpvfs, librumpdev, putter(4), pud(4)" \
		"$src/lib/librumpvfs" "$src/lib/librumpdev" \
		"$src/sys/rump/fs/lib/libnofifovfs" .WAIT \
		"$src/sys/rump/dev/lib/libputter" .WAIT \
		"$src/sys/rump/dev/lib/libpud"
	# The programs: plain host C against the installed rump headers.
	host_prog "$v" ktest_rump "$here/ktest_rump_main.c" -L"$comp" \
		-Wl,-rpath,"$comp" -- -lrumpkern_ktest
	# ktmod_rump exports rumpns_ktmod_stats to the rump kernel's symbol
	# table (--export-dynamic), which the module's counters resolve to.
	host_prog "$v" ktmod_rump "$here/ktmod_rump.c" -I"$tk/ktest" \
		-DKTMOD_KMODDIR="\"$work/kmod\"" -Wl,--export-dynamic -- \
		-lrumpvfs -lrumpvfs_nofifofs
	# pud_rump also calls the rump kernel's cdevsw_lookup/bdevsw_lookup
	# (rumpns_ symbols) to print the devsw tables.
	host_prog "$v" pud_rump "$here/pud_rump.c" -- -lrumpdev_pud \
		-lrumpdev_putter -lrumpdev -lrumpvfs -lrumpvfs_nofifofs
	log "$v: $obj/ktest_rump, $obj/ktmod_rump, $obj/pud_rump"
	$audio && build_audio "$v"
	return 0
}

# host_prog VARIANT NAME SOURCE [FLAG...] -- [LIB...]: OBJ/NAME, a plain
# host C program (-Werror) against VARIANT's installed rump headers,
# linked with LIB... and the rump kernel (librump, librumpuser), all kept
# (--no-as-needed: rump_init() finds the components among the loaded
# libraries), with an rpath to them.
host_prog() {
	local v=$1 name=$2 source=$3 obj=$work/obj-$1 flags=() libs=()
	shift 3
	while (($#)) && [[ $1 != -- ]]; do flags+=("$1"); shift; done
	(($#)) && shift
	libs=("$@")
	cc -O2 -Wall -Wextra -Werror -I"$obj/dest.stage/usr/include" \
		"${flags[@]}" -o "$obj/$name" "$source" \
		-L"$obj/dest.stage/usr/lib" -Wl,--no-as-needed "${libs[@]}" \
		-lrump -lrumpuser -lpthread -ldl \
		-Wl,-rpath,"$obj/dest.stage/usr/lib" ||
		die "$v: $name build failed"
}

# rump_components VARIANT NAME WHAT DIR...: build and install the rump
# libraries in DIR... (in bsd.subdir.mk's order; ".WAIT" between two
# waits for the first) with build_variant's rumpmake command line (rmk:
# bash's dynamic scope); OBJ/Makefile.NAME, log in OBJ/NAME-build.log.
rump_components() {
	local v=$1 what=$3 mk=$work/obj-$1/Makefile.$2 blog=$work/obj-$1/$2-build.log
	shift 3
	printf 'SUBDIR= %s\n.include <bsd.subdir.mk>\n' "$*" > "$mk"
	log "$v: $what (log: $blog)"
	if ! ( "${rmk[@]}" -f "$mk" obj && "${rmk[@]}" -f "$mk" includes &&
	    "${rmk[@]}" -f "$mk" dependall && "${rmk[@]}" -f "$mk" install ) \
	    > "$blog" 2>&1; then
		grep -E 'error:|Error code' "$blog" | head -30 >&2 || true
		die "$v: $what: build failed (log: $blog)"
	fi
}

# build_audio VARIANT: the drivers tests/dev/audio links (librumpdev_audio,
# librumpdev_pad; librumpvfs with the fifofs stubs and librumpdev come
# from build_variant), h_pad and audiotest, plain host programs against the
# rump headers, with NetBSD's own <sys/audioio.h> and <sys/ioccom.h>
# (ioctl numbers as the rump kernel decodes them) copied from the patched
# tree; h_pad with netbsd_compat.h, audiotest with audiotest-compat/
# (NetBSD's O_NONBLOCK, errno, poll bits, FIOASYNC, struct kevent, and
# sysctlbyname() in the rump kernel; <util.h>, <sys/event.h>,
# <sys/sysctl.h> and <sys/ioctl.h> of our own).
build_audio() {
	# rmk: build_variant's rumpmake command line (bash: dynamic scope).
	local v=$1 obj=$work/obj-$1 compat=$work/compat
	rump_components "$v" audio "audio(4), pad(4)" \
		"$src/sys/rump/dev/lib/libaudio" "$src/sys/rump/dev/lib/libpad"
	# What h_pad and audiotest link, as tests/dev/audio/Makefile.
	local rumplibs=(-L"$obj/dest.stage/usr/lib" -Wl,--no-as-needed
		-lrumpdev_pad -lrumpdev_audio -lrumpdev -lrumpvfs
		-lrumpvfs_nofifofs -lrump -lrumpuser -lpthread -ldl
		-Wl,-rpath,"$obj/dest.stage/usr/lib")
	mkdir -p "$compat/sys"
	cp "$src/sys/sys/audioio.h" "$src/sys/sys/ioccom.h" "$compat/sys/"
	cc -O2 -D_DEFAULT_SOURCE -include "$here/netbsd_compat.h" \
		-I"$compat" -I"$obj/dest.stage/usr/include" \
		-I"$NETBSDTESTSDIR/dev/audio" -o "$obj/h_pad" \
		"$NETBSDTESTSDIR/dev/audio/h_pad.c" "${rumplibs[@]}" || die "$v: h_pad build failed"
	# -D_KERNTYPES as tests/dev/audio/Makefile.  -w: NetBSD's source, not
	# ours, and it passes "" as printf formats.
	cc -O2 -w -D_DEFAULT_SOURCE -D_KERNTYPES \
		-include "$here/audiotest-compat/netbsd_audiotest.h" \
		-I"$here/audiotest-compat" -I"$compat" \
		-I"$obj/dest.stage/usr/include" -o "$obj/audiotest" \
		"$NETBSDTESTSDIR/dev/audio/audiotest.c" "${rumplibs[@]}" || die "$v: audiotest build failed"
}

# run_t_audio VARIANT: every case of t_audio as NetBSD's atf runs it (the
# list and "audiotest -ARe CASE" from t_audio.awk; exit 0 passed, 1
# failed, 2 skipped, anything else failed; the reason is the output
# without the rump kernel's "[" lines), one rump kernel per case.  Writes
# OUTDIR/t_audio-VARIANT.tps (ATF tps), OUTDIR/t_audio-VARIANT.out (every
# case's output) and OUTDIR/t_audio-VARIANT.verdicts ("CASE VERDICT").
run_t_audio() {
	local v=$1 obj=$work/obj-$1 tc rc msg verdict n=0
	local tps=$out/t_audio-$v.tps log=$out/t_audio-$v.out
	local ver=$out/t_audio-$v.verdicts
	local -A count=([passed]=0 [failed]=0 [skipped]=0)
	awk -f "$NETBSDTESTSDIR/dev/audio/t_audio.awk" \
		"$NETBSDTESTSDIR/dev/audio/audiotest.c" |
		sed -n 's/^[[:space:]]*atf_add_test_case //p' > "$work/t_audio.cases"
	n=$(wc -l < "$work/t_audio.cases")
	[[ $n -gt 0 ]] || die "no t_audio cases from t_audio.awk"
	: > "$log"
	: > "$ver"
	: > "$work/t_audio-$v.skips"
	{
		printf 'Content-Type: application/X-atf-tps; version="3"\n\n'
		printf 'info: variant, %s\ntps-count: 1\n' "$v"
		printf 'tp-start: %s, t_audio, %d\n' "$(date +%s.%6N)" "$n"
	} > "$tps"
	while read -r tc; do
		printf 'tc-start: %s, %s\n' "$(date +%s.%6N)" "$tc" >> "$tps"
		rc=0
		msg=$(cd "$obj" && timeout 120 ./audiotest -ARe "$tc" 2>&1) || rc=$?
		printf '=== %s (exit %d)\n%s\n' "$tc" "$rc" "$msg" >> "$log"
		msg=$(printf '%s\n' "$msg" | { grep -v '^\[' || true; } |
			tr '\n' ' ' | sed 's/ *$//')
		case $rc in
		0) verdict=passed; msg= ;;
		2) verdict=skipped ;;
		1) verdict=failed ;;
		124) verdict=failed; msg="timed out after 120 s" ;;
		*) verdict=failed; msg="unknown error $rc" ;;
		esac
		count[$verdict]=$((count[$verdict] + 1))
		echo "$tc $verdict" >> "$ver"
		printf 'tc-end: %s, %s, %s%s\n' "$(date +%s.%6N)" "$tc" \
			"$verdict" "${msg:+, $msg}" >> "$tps"
		[[ $verdict != failed ]] || log "t_audio:$tc on $v: failed: $msg"
		[[ $verdict != skipped ]] || echo "$msg" >> "$work/t_audio-$v.skips"
	done < "$work/t_audio.cases"
	printf 'tp-end: %s, t_audio\n' "$(date +%s.%6N)" >> "$tps"
	log "tests/dev/audio t_audio on $v: $n cases: ${count[passed]} passed," \
		"${count[failed]} failed, ${count[skipped]} skipped ($tps)"
	# Why they were skipped (audiotest's own reasons), a line per reason.
	[[ ! -s $work/t_audio-$v.skips ]] ||
		sed 's/^Line [0-9]*: //' "$work/t_audio-$v.skips" | sort | uniq -c |
		sort -rn | while read -r k why; do
			log "  skipped $k: $why"
		done
}

# build_kmods: the userland suite's modules (test-kernel/modules/ktmod/
# ktmod.c) as .kmod files that kobj(9) can load into a rump kernel, in
# WORK/kmod: ktmod and ktmod_nomi (-DKTMOD_NO_MODULE_INIT) against the
# patched tree, ktmod_stock against NETBSDSRCDIR's unpatched sys/.  A
# rump kernel lives at a host address above 2 GiB, and the amd64
# kobj_reloc() stores R_X86_64_32/32S values without an overflow check,
# so the module is compiled -mcmodel=large -fno-pic: every address is a
# 64-bit absolute (R_X86_64_64), checked below.  Otherwise the flags of
# a kernel module: freestanding, no red zone, no FP/SIMD, _KERNEL
# _MODULE, the tree's amd64 <machine/> (and <amd64/>, <x86/>) headers.
build_kmods() {
	local kdir=$work/kmod name sys defs bad
	mkdir -p "$kdir"
	for name in ktmod ktmod_nomi ktmod_stock; do
		case $name in
		ktmod) sys=$src/sys defs=() ;;
		ktmod_nomi) sys=$src/sys defs=(-DKTMOD_NAME=ktmod_nomi -DKTMOD_NO_MODULE_INIT) ;;
		ktmod_stock) sys=$NETBSDSRCDIR/sys defs=(-DKTMOD_NAME=ktmod_stock) ;;
		esac
		mkdir -p "$kdir/$name.inc"
		ln -sfn "$sys/arch/amd64/include" "$kdir/$name.inc/machine"
		ln -sfn "$sys/arch/amd64/include" "$kdir/$name.inc/amd64"
		ln -sfn "$sys/arch/x86/include" "$kdir/$name.inc/x86"
		cc -c -O2 -std=gnu99 -Wall -Werror -Wno-unused-function \
			-ffreestanding -fno-builtin -fno-common -fno-pic -fno-pie \
			-mcmodel=large -mno-red-zone -mno-mmx -mno-sse -mno-avx \
			-fno-stack-protector -fcf-protection=none \
			-fno-asynchronous-unwind-tables -fno-unwind-tables \
			-nostdinc -D_KERNEL -D_MODULE -DDIAGNOSTIC "${defs[@]}" \
			-I"$kdir/$name.inc" -I"$sys" \
			-I"${sys%/sys}/common/include" -I"$tk/ktest" \
			-o "$kdir/$name.o" "$top/test-kernel/modules/ktmod/ktmod.c" ||
			die "$name.kmod: compile failed"
		ld -r -o "$kdir/$name.kmod" "$kdir/$name.o" ||
			die "$name.kmod: link failed"
		bad=$(readelf -rW "$kdir/$name.kmod" | awk '$3 ~ /^R_X86_64_/ &&
			$3 != "R_X86_64_64" && $3 != "R_X86_64_PC32" &&
			$3 != "R_X86_64_PLT32" { print $3 }' | sort -u | tr '\n' ' ')
		[[ -z $bad ]] || die "$name.kmod: relocations kobj cannot place" \
			"at a rump kernel's addresses: $bad"
	done
	log "kmod: $kdir/ktmod.kmod, ktmod_nomi.kmod, ktmod_stock.kmod"
}

for v in $variants; do
	build_variant "$v"
done
build_kmods
$build_only && { log "build only: done"; exit 0; }

# ---- 4. NetBSD's tests/dev/audio (-a): the same result on every variant --
if $audio; then
	first=
	for v in $variants; do
		rc=0
		(cd "$work/obj-$v" && timeout 120 ./h_pad) > "$out/h_pad-$v.out" 2>&1 || rc=$?
		[[ $rc == 0 ]] && res=passed || res="failed (exit $rc)"
		log "tests/dev/audio t_pad:pad_output on $v: $res"
		first=${first:-$res}
		[[ $res == "$first" ]] ||
			die "t_pad:pad_output differs between variants ($first, $res on $v)"
		[[ $rc == 0 ]] || die "t_pad:pad_output failed on $v (see $out/h_pad-$v.out)"
	done
	first=
	for v in $variants; do
		run_t_audio "$v"
		if [[ -n $first ]] && ! diff -u "$out/t_audio-$first.verdicts" \
		    "$out/t_audio-$v.verdicts" >&2; then
			die "t_audio verdicts differ between $first and $v"
		fi
		first=${first:-$v}
	done
	! grep -q ' failed$' "$out/t_audio-$first.verdicts" ||
		die "t_audio cases failed (the same on every variant):" \
		    "$(grep ' failed$' "$out/t_audio-$first.verdicts" | cut -d' ' -f1 | tr '\n' ' ')"
fi

# ---- 5. run every variant at every RUMP_NCPU ------------------------------
# SUITE:PROGRAM; the suite's runs are labelled "VARIANT-rump ncpuN", the
# others' "VARIANT-rump-SUITE ncpuN".
runs=()
for spec in :ktest_rump /modules:ktmod_rump /pud:pud_rump; do
	for v in $variants; do
		for n in $ncpus; do
			runs+=("$v${spec%%:*}:$n:$work/obj-$v/${spec#*:}")
		done
	done
done
exec python3 "$here/ktest_rump_run.py" --out "$out" "${runs[@]}"
