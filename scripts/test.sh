#!/usr/bin/env bash
# test.sh -- every test of the project, in order; stops at the first failure.
#
#   1. format, lints (clippy -D warnings, host and kernel-less builds), docs
#   2. header: no drift from the Rust source; compiles as C (scripts/check-header.sh)
#   3. host tests: exports through the C ABI, C layout checks, misuse panics,
#      properties -- without and with the DEBUG+LOCKDEBUG feature
#   4. stress on the host kernel (release build, LC_STRESS_SCALE, default 50)
#   5. model checking with shuttle, including the deliberately broken protocols
#   6. kernel objects for amd64, aarch64, i386 + kernel lint
#   7. unit tests of the QEMU harness (recorded console logs), of the ATF
#      test programs (test-kernel/atf/), dbsym.py (sample ELF kernels),
#      mkimage.sh (a root image from a fake tree) and build-modules.sh (its
#      checks on sample objects); kyua running the recorded consoles as ATF
#      test programs (skipped without kyua)
#   8. netbsd-patches/devsw-module-init.sh on a hard-linked copy of the
#      NetBSD tree (scripts/test-devsw-module-init.sh); skipped without one
#   9. the NetBSD kernel stage (test-kernel/ktest.sh): builds and boots the
#      Rust and C amd64 kernels; skipped, saying so, when no NetBSD tree is
#      present (NETBSDSRCDIR, default /usr/src).  KTEST_SKIP=1 skips it
#      explicitly.  Then one representative boot per other architecture
#      (KTEST_ARCHES, default "i386 aarch64"): the Rust kernel at 2 vCPUs,
#      where that architecture's host tools exist (ktest.sh's TOOLDIR_I386,
#      TOOLDIR_AARCH64), else skipped, saying so; KTEST_ARCHES="" skips
#      them.  The full matrix of an architecture is
#      test-kernel/ktest.sh -a ARCH (see README).
#  10. the rump stage (test-kernel/rump/ktest-rump.sh): rump kernels with the
#      C and the Rust localcount, the in-kernel suite as a rump component and
#      the module cases (ktmod.kmod loaded at run time, ktmod_rump.c) at
#      RUMP_NCPU 1, 2, 4, 8 on the host's cores, and tests/dev/audio's h_pad
#      and every t_audio case on both (-a), with identical verdicts
#      required; skipped, saying so, without a rump-capable NetBSD tree
#      (RUMP_NETBSDSRCDIR, default NETBSDSRCDIR) and buildrump.sh
#      (BUILDRUMPSH).  RUMP_SKIP=1 skips it explicitly.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
step() { printf '\n=== %s\n' "$*"; }
# Stages that did not run, with why: named again in the final line.
skipped=()
unset RUSTFLAGS

step "1. cargo fmt --check, clippy, rustdoc"
cargo fmt --check
cargo clippy --quiet -- -D warnings
cargo clippy --quiet --features host --tests -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --features host

step "2. header"
scripts/check-header.sh

step "3. host tests"
cargo test --quiet --features host
cargo test --quiet --features host,lc-debug

step "4. stress (release)"
LC_STRESS_SCALE=${LC_STRESS_SCALE:-50} cargo test --quiet --release --features host \
	--test stress -- --nocapture --test-threads=1 2>&1 | grep --line-buffered -oE 'stress ncpu=.*|test result.*|panicked.*|HANG.*'

step "5. model checking (shuttle)"
CARGO_TARGET_DIR=target/model cargo test --quiet --release --features model-shuttle \
	--test model -- --nocapture --test-threads=1

step "6. kernel objects + lint"
for arch in x86_64 aarch64 i386; do
	scripts/build-kernel-obj.sh "$arch"
	FEATURES="diagnostic lc-debug" scripts/build-kernel-obj.sh "$arch" \
		"target/kernel-obj/$arch/rust_localcount-lockdebug.o"
done

step "7. harness, dbsym, root-image, module-build unit tests; ATF programs under kyua"
python3 -m unittest discover -s test-kernel/harness -p 't_*.py'
python3 -m unittest discover -s test-kernel/atf -p 't_*.py'
python3 -m unittest discover -s test-kernel/userland -p 't_*.py'
python3 -m unittest discover -s test-kernel/modules -p 't_*.py'
python3 -m unittest discover -s test-kernel/tools -p 't_*.py'
rc=0
test-kernel/atf/ktest_kyua.py recordings || rc=$?
case $rc in
0) ;;
77) skipped+=("kyua check of the ATF test programs (kyua not installed)") ;;
*) exit "$rc" ;;
esac
step "8. DEVSW_MODULE_INIT script"
rc=0
scripts/test-devsw-module-init.sh || rc=$?
case $rc in
0) ;;
77) skipped+=("DEVSW_MODULE_INIT script (no NetBSD tree at ${NETBSDSRCDIR:-/usr/src})") ;;
*) exit "$rc" ;;
esac

step "9. NetBSD kernel stage"
if [[ -n ${KTEST_SKIP:-} ]]; then
	echo "kernel stage: SKIPPED (KTEST_SKIP set)"
	skipped+=("kernel stage (KTEST_SKIP set)")
else
	rc=0
	test-kernel/ktest.sh || rc=$?
	case $rc in
	0) ;;
	77)
		why="no NetBSD source tree or host tools at ${NETBSDSRCDIR:-/usr/src}, ${TOOLDIR:-/usr/tools}"
		echo "kernel stage: SKIPPED: $why (see README, 'The NetBSD side')"
		skipped+=("kernel stage ($why)")
		;;
	*) exit "$rc" ;;
	esac
	# One boot per other architecture (the Rust kernel at 2 vCPUs): a
	# few minutes each, most of it the kernel build.
	for arch in ${KTEST_ARCHES-i386 aarch64}; do
		step "9. NetBSD kernel stage, $arch: rust at 2 vCPUs"
		rc=0
		test-kernel/ktest.sh -a "$arch" -s 2 -v rust || rc=$?
		case $rc in
		0) ;;
		77)
			case $arch in
			i386) tools=${TOOLDIR_I386:-/usr/tools-i386} ;;
			aarch64) tools=${TOOLDIR_AARCH64:-/usr/tools-aarch64} ;;
			*) tools="?" ;;
			esac
			why="no NetBSD source tree or host tools at ${NETBSDSRCDIR:-/usr/src}, $tools"
			echo "kernel stage $arch: SKIPPED: $why (see README, 'Other architectures')"
			skipped+=("kernel stage $arch ($why)")
			;;
		*) exit "$rc" ;;
		esac
	done
fi

step "10. rump stage"
if [[ -n ${RUMP_SKIP:-} ]]; then
	echo "rump stage: SKIPPED (RUMP_SKIP set)"
	skipped+=("rump stage (RUMP_SKIP set)")
else
	rc=0
	rumpsrc=${RUMP_NETBSDSRCDIR:-${NETBSDSRCDIR:-/usr/src}}
	NETBSDSRCDIR=$rumpsrc test-kernel/rump/ktest-rump.sh -a || rc=$?
	case $rc in
	0) ;;
	77)
		why="no rump-capable NetBSD tree at $rumpsrc or no buildrump.sh at ${BUILDRUMPSH:-$rumpsrc/../buildrump.sh}"
		echo "rump stage: SKIPPED: $why (see README, 'Rump kernels')"
		skipped+=("rump stage ($why)")
		;;
	*) exit "$rc" ;;
	esac
fi
echo
if ((${#skipped[@]})); then
	msg=$(printf '%s; ' "${skipped[@]}")
	echo "all tests passed; skipped: ${msg%; }"
else
	echo "all tests passed; nothing skipped"
fi
