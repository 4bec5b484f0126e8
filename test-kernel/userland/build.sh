#!/usr/bin/env bash
#
# build.sh SYSDIR OUT -- build the userland suite's /sbin/init (init.c,
# start.S): a static amd64 NetBSD executable without libc, compiled by
# the host clang for x86_64--netbsd and linked by the host's GNU ld.
#
# SYSDIR is the (patched) NetBSD sys/ tree: <sys/syscall.h> gives the
# system-call numbers and <sys/param.h> the __NetBSD_Version__ that goes
# into the ident note.  CLANG (default clang-19) and LD (default ld)
# name the tools.  Exit 0 built, 1 failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[[ $# == 2 ]] || { echo "usage: build.sh SYSDIR OUT" >&2; exit 1; }
sys=$1 out=$2
CLANG=${CLANG:-clang-19}
LD=${LD:-ld}
version=$(awk '$1 == "#define" && $2 == "__NetBSD_Version__" { print $3 }' \
	"$sys/sys/param.h")
[[ $version =~ ^[0-9]+$ ]] || { echo "build.sh: no __NetBSD_Version__ in $sys/sys/param.h" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cflags=(--target=x86_64--netbsd -ffreestanding -nostdinc -fno-pic -fno-pie
	-mno-red-zone -fno-stack-protector -fno-builtin -O2 -g
	-Wall -Wextra -Werror -Wno-unused-parameter
	-I"$sys" -I"$here/../ktest" -DNETBSD_VERSION="$version")
"$CLANG" "${cflags[@]}" -c "$here/start.S" -o "$tmp/start.o"
"$CLANG" "${cflags[@]}" -c "$here/init.c" -o "$tmp/init.o"
"$LD" -static -nostdlib -m elf_x86_64 -e _start --build-id=none \
	-z noexecstack -o "$out" "$tmp/start.o" "$tmp/init.o"
