#!/usr/bin/env bash
# build-kernel-obj.sh ARCH [OUT.o]
#
# Build the library for a NetBSD kernel and turn it into ONE relocatable
# object that exports only the C API of include/sys/localcount.h:
#   ARCH: x86_64 (amd64) | aarch64 | i386 | x86_64-rump
#         x86_64-rump: for a rump kernel on an x86-64 Linux host
#         (test-kernel/rump/): the host target, position-independent
#         like the rest of a rump kernel, core from the toolchain (no
#         -Zbuild-std), no kernel lint (a rump kernel is a host program:
#         PIC, red zone and host TLS are its own rules).  The symbols
#         keep their kernel names here; the rump build renames them into
#         the rumpns_ namespace with sys/rump/Makefile.rump's rule.
#   OUT:  default target/kernel-obj/$ARCH/rust_localcount.o
# Env:
#   FEATURES  Cargo features mirroring the kernel's options, e.g.
#             "diagnostic lc-debug" (default: "diagnostic")
#
# Steps: cargo rustc --crate-type staticlib -Zbuild-std=core for the
# bare-metal target (stable toolchain, RUSTC_BOOTSTRAP=1, rust-src from
# scripts/install-rust-src.sh); then localize compiler_builtins' weak mem*
# functions, `ld -r --gc-sections` keeping what the API reaches, keep only
# the API symbols global, and run the kernel lint (scripts/kernlint.py).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
arch=${1:?usage: build-kernel-obj.sh x86_64|aarch64|i386 [OUT.o]}
out=${2:-$top/target/kernel-obj/$arch/rust_localcount.o}
features=${FEATURES-diagnostic}

case $arch in
x86_64|amd64) arch=x86_64; target=x86_64-unknown-none; tdir=$target
	LD=(ld); OBJCOPY=objcopy ;;
aarch64) target=aarch64-unknown-none-softfloat; tdir=$target
	LD=(aarch64-linux-gnu-ld); OBJCOPY=aarch64-linux-gnu-objcopy ;;
i386) target=$top/targets/i586-unknown-none.json; tdir=i586-unknown-none
	LD=(ld -m elf_i386); OBJCOPY=objcopy ;;
x86_64-rump) target=x86_64-unknown-linux-gnu; tdir=$target
	LD=(ld); OBJCOPY=objcopy ;;
*) echo "build-kernel-obj: unknown arch '$arch'" >&2; exit 2 ;;
esac
command -v "${LD[0]}" >/dev/null || { echo "build-kernel-obj: ${LD[0]} not found" >&2; exit 2; }

extra=()
[[ $target == *.json ]] && extra+=(-Zjson-target-spec)
# Bare-metal targets build core from source; the host target has it.
[[ $arch == x86_64-rump ]] || extra+=(-Zbuild-std=core)
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
echo "[kobj] $arch: cargo rustc --target $tdir --features '$features'" >&2
(cd "$top" && RUSTC_BOOTSTRAP=1 cargo rustc -q --lib --profile kernel \
	--target "$target" --crate-type staticlib \
	--no-default-features ${features:+--features "$features"} "${extra[@]}")
lib=$top/target/$tdir/kernel/librust_localcount.a
[[ -f $lib ]] || { echo "build-kernel-obj: $lib not built" >&2; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# The API: every function and global the generated header declares.
"$here/header-symbols.sh" "$top/include/sys/localcount.h" > "$tmp/api.all"
# Globals under #if defined(LOCALCOUNT_DEBUG) exist in one build only.
grep -v '^localcount_rust_built_' "$tmp/api.all" > "$tmp/api"
case " $features " in
*" lc-debug "*) echo localcount_rust_built_debug >> "$tmp/api" ;;
*) echo localcount_rust_built_nodebug >> "$tmp/api" ;;
esac

$OBJCOPY -L memcpy -L memmove -L memset -L memcmp -L bcmp -L strlen \
	"$lib" "$tmp/lib.a"
"${LD[@]}" -r --gc-sections $(sed 's/^/-u /' "$tmp/api") -o "$tmp/r.o" "$tmp/lib.a"
mkdir -p "$(dirname "$out")"
$OBJCOPY --keep-global-symbols="$tmp/api" "$tmp/r.o" "$out"

missing=$(comm -23 <(sort "$tmp/api") \
	<(readelf -sW "$out" | awk '$5=="GLOBAL" && $7!="UND"{print $8}' | sort))
[[ -z $missing ]] || { echo "build-kernel-obj: API symbols not defined: $missing" >&2; exit 1; }
[[ $arch == x86_64-rump ]] || python3 "$here/kernlint.py" --arch "$arch" "$out"
echo "[kobj] $out: $(wc -l < "$tmp/api") symbols exported;" \
	"$(size "$out" | awk 'NR==2{print "text="$1" data="$2" bss="$3}')"
echo "[kobj] undefined (the kernel provides):" \
	"$(readelf -sW "$out" | awk '$7=="UND" && $8!=""{print $8}' | sort -u | tr '\n' ' ')"
