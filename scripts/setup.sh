#!/usr/bin/env bash
# setup.sh -- install what building and testing need on a Debian machine:
#   Debian packages (clang-19 for the header checks and the NetBSD kernel,
#   binutils for the aarch64 object, kyua to run the ATF test programs of
#   the kernel suite, QEMU and cross binutils for the kernel tests), Debian's
#   rust-src matching the stable toolchain (for -Zbuild-std=core).  The
#   header generator, cbindgen, is a build dependency of the crate (locked
#   by Cargo.lock), not a separate install.  Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

# Always: clang-19 (header checks), the aarch64 binutils (kernel object),
# makefs (the userland image builder's unit test), kyua (runs the kernel
# suite's ATF test programs; test.sh checks them against recorded consoles
# even without a NetBSD tree).
pkgs=(clang-19 llvm-19 binutils-aarch64-linux-gnu python3 makefs kyua)
# With a NetBSD tree (the kernel stage): what its kernel build and the QEMU
# runs need (gdb: fast-path instruction counts); for the i386 and aarch64
# kernels (test-kernel/ktest.sh -a), where their host tools exist, their
# binutils and QEMU (qemu-system-x86 has qemu-system-i386).
if [[ -f ${NETBSDSRCDIR:-/usr/src}/sys/kern/subr_localcount.c ]]; then
	pkgs+=(bsdextrautils byacc flex bc qemu-system-x86 gdb)
	[[ ! -x ${TOOLDIR_I386:-/usr/tools-i386}/bin/nbmake-i386 ]] ||
		pkgs+=(binutils-i686-linux-gnu)
	[[ ! -x ${TOOLDIR_AARCH64:-/usr/tools-aarch64}/bin/nbmake-evbarm ]] ||
		pkgs+=(qemu-system-arm)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	log "apt-get install ${missing[*]}"
	SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# rust-src for the kernel targets: Debian's package, pinned to the X.Y of
# the stable toolchain (only an exact X.Y match builds core).
RUST_SRC_DEB_VERSION=${RUST_SRC_DEB_VERSION:-1.95.0+dfsg1-2~bpo13+1} \
	"$here/install-rust-src.sh" stable

log "ok: $(rustc --version); $(clang-19 --version | head -1)"
