#!/usr/bin/env bash
#
# build-modules.sh -- build the kernel modules (.kmod) of the userland
# suite: ours (test-kernel/modules/*/), real modules of sys/modules whose
# devsw devsw-module-init.sh edits, and, with -a, every module of
# sys/modules whose sources it edits ("all modular drivers compile").
#
# Usage: test-kernel/modules/build-modules.sh [-a] [-s SYSDIR] [-u STOCKSYS]
#            [-o OUTDIR] [-w WORKDIR] [-k KERNEL]
#   -s  the patched sys/ tree: netbsd-patches/apply.sh AND
#       devsw-module-init.sh applied, common/ next to it (SYSDIR/../common).
#       Default: made under WORKDIR from $NETBSDSRCDIR/sys (hard links).
#   -u  the unpatched sys/ tree, for our *_stock modules (default
#       $NETBSDSRCDIR/sys); only read.
#   -o  output directory (default WORKDIR/out): the .kmod files of ours and
#       of the real modules, real-modules.txt; with -a modules-summary.txt
#   -w  work directory (default target/modules-work): object directories
#       and the trees this script makes (hard links: it must be on the file
#       system of NETBSDSRCDIR)
#   -k  the kernel (ELF) the modules will be loaded into: every undefined
#       symbol of ours and of the real modules must be a global symbol of it
#       or of a module required first, else exit 1.  Without -k the check
#       runs against target/ktest/obj/rust/netbsd, if built, and only warns.
#   -a  also build every module of sys/modules whose sources
#       devsw-module-init.sh edits, against SYSDIR, each failure again
#       against the same patched tree without the edit; one line per
#       failure, then `N modules built, M failed (K also without the edit)',
#       also written to OUTDIR/modules-summary.txt
# Ours: each test-kernel/modules/<dir>/ with a Makefile (KMOD=, SRCS=,
# .include <bsd.kmodule.mk>; S= is given on the command line) is built
# against SYSDIR, or against STOCKSYS if <dir> is named *_stock.
# OUTDIR/real-modules.txt, for the image builder, one line per device node,
# modules in load order (what a module requires comes before it):
#	name kmod-path devnode type major minor
# type is char or block; a module loaded only because another requires it
# has "- - - -" for devnode type major minor.
# Environment:
#   NETBSDSRCDIR       NetBSD source tree (default /usr/src; sys/, common/)
#   TOOLDIR            NetBSD host tools (default /usr/tools): nbmake-amd64
#                      and its share/mk, nbconfig (ioconf.c)
#   EXTERNAL_TOOLCHAIN the clang wrappers (default target/ktest/ext, which
#                      test-kernel/ktest.sh writes)
#   MAKEVARS           make variables, space-separated (default ktest.sh's;
#                      an EXTERNAL_TOOLCHAIN= in it wins)
#   JOBS               modules built at once: 1 or 2 (default 2)
#   OURS               the directory of our module directories (default
#                      test-kernel/modules)
#
# Exit: 0 ours and the real modules built (with -k: and resolve), and with
# -a every failure also happens without the edit; 1 one of ours or of the
# real modules failed to build (or, with -k, to resolve), or the edit
# breaks a module's build; 2 usage; 77 skipped (no NetBSD tree or tools).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
patches=$top/netbsd-patches

log() { printf '[modules] %s\n' "$*" >&2; }
skip() { log "SKIPPED: $*"; exit 77; }
die() { log "ERROR: $*"; exit 1; }

# ---- the real modules ---------------------------------------------------
# Modules of sys/modules whose devsw devsw-module-init.sh edits and that
# load into the test kernel without hardware: no bus attachment, every
# undefined symbol in the kernel (check_symbols) or in a module required
# first.  devnode/type/major/minor: a node that open(2) and close(2)
# succeed on with nothing configured; the majors are those of
# sys/arch/amd64/conf/majors.amd64 and sys/conf/majors, which
# devsw_attach() gives these names.  requires: MODULE()'s list, less what
# the kernel has built in (bufq_fcfs).
#	clockctl  d_open counts opens; FINI refuses (EBUSY) while one is open
#	vnd       opening the raw partition of an unconfigured unit spawns the
#	          unit (config_attach_pseudo), the last close destroys it; FINI
#	          EBUSY while a unit exists; needs readdisklabel (the kernel's
#	          "disk" attribute: md(4)) and zlib (VND_COMPRESSION)
#	fss       d_open spawns unit 0 (config_attach_pseudo), the last close
#	          detaches it; FINI EBUSY while a unit exists
#	vcoda     d_open marks the unit open (exclusive: a second open is
#	          EBUSY); FINI EBUSY while one is open
real_modules() {
	cat <<-'EOF'
	# name		requires	devnode		type	major	minor
	zlib		-		-		-	-	-
	clockctl	-		clockctl	char	79	0
	vnd		zlib		rvnd0d		char	41	3
	vnd		zlib		vnd0d		block	14	3
	fss		-		rfss0		char	163	0
	fss		-		fss0		block	163	0
	vcoda		-		cfs0		char	60	0
	EOF
}

# real_order: the real modules in load order, each once.
real_order() {
	real_modules | awk '
	/^#/ || NF == 0 { next }
	function add(m) { if (!(m in seen)) { seen[m] = 1; print m } }
	{
		if ($2 != "-") {
			n = split($2, r, ",")
			for (i = 1; i <= n; i++)
				add(r[i])
		}
		add($1)
	}'
}

# requires NAME: the modules NAME requires (comma-separated), or "-".
requires() {
	real_modules | awk -v m="$1" '$1 == m { print $2; found = 1; exit }
		END { if (!found) print "-" }'
}

# real_modules_txt OUTDIR: real-modules.txt for the modules built there.
real_modules_txt() {
	local m line
	for m in $(real_order); do
		[[ -f $1/$m.kmod ]] || continue
		line=$(real_modules | awk -v m="$m" '$1 == m && $3 != "-" {
			printf "%s\n", $3 " " $4 " " $5 " " $6 }')
		if [[ -z $line ]]; then
			echo "$m $1/$m.kmod - - - -"
		else
			printf '%s\n' "$line" | while read -r node type major minor; do
				echo "$m $1/$m.kmod /dev/$node $type $major $minor"
			done
		fi
	done
}

# ---- building -------------------------------------------------------------
# kmake SYSDIR MODDIR OBJDIR MAKEARGS...: the tools' make in MODDIR (a
# module directory) against SYSDIR, objects in OBJDIR.  NETBSDSRCDIR is
# SYSDIR/.., so that -I${NETBSDSRCDIR}/common/include is the kernel's.
kmake() {
	local s=$1 dir=$2 obj=$3
	shift 3
	(cd "$dir" && MAKEOBJDIR=$obj "$nbmake" "${makevars[@]}" S="$s" \
		NETBSDSRCDIR="${s%/*}" "$@")
}

# build_module SYSDIR MODDIR OBJDIR: MODDIR's .kmod in OBJDIR (emptied when
# it was last used with another tree).  OBJDIR/build.log, OBJDIR/result:
# "ok PATH-OF-KMOD" or "fail FIRST-ERROR-LINE".
build_module() {
	local s=$1 dir=$2 obj=$3 kmod
	if [[ ! -f $obj/.tree || $(cat "$obj/.tree") != "$s" ]]; then
		rm -rf "$obj"
		mkdir -p "$obj"
		echo "$s" > "$obj/.tree"
	fi
	rm -f "$obj/result"
	kmod=$(kmake "$s" "$dir" "$obj" -V KMOD 2>/dev/null) || kmod=
	if kmake "$s" "$dir" "$obj" dependall > "$obj/build.log" 2>&1 &&
	    [[ -n $kmod && -f $obj/$kmod.kmod ]]; then
		echo "ok $obj/$kmod.kmod" > "$obj/result"
	else
		echo "fail $(first_error "$obj/build.log" "$s")" > "$obj/result"
	fi
}

# first_error LOG SYSDIR: why the build in LOG failed, in one line: the
# compiler's first error, else the linker's first complaint (with
# --fatal-warnings a warning fails the link), else make's; paths relative
# to SYSDIR, clang's flag name and C99 boilerplate dropped.
first_error() {
	local line
	line=$(grep -m1 -E '(^|: )(fatal )?error: ' "$1" | grep -v 'linker command failed') ||
	line=$(grep -m1 -E '(^|/)ld(\.[a-z]+)?: |undefined reference' "$1") ||
	line=$(grep -m1 -E 'error: ' "$1") ||
	line=$(grep -m1 -E "don't know how to make|\\*\\*\\* Error|Stop\\.|Failed" "$1") ||
	line="no .kmod and no error line (see $1)"
	line=${line//"$2/"/}
	line=${line//"${2%/*}/"/}
	line=$(sed -e 's/; ISO C99 and later do not support implicit function declarations//' \
		-e 's/ \[-W[^]]*\]$//' <<< "$line")
	printf '%s\n' "${line:0:240}"
}

# moddir SYSDIR NAME: the directory of module NAME: ours/<dir> (test-kernel/
# modules/<dir>) or the tree's (SYSDIR/modules/NAME; NAME may be examples/x).
moddir() {
	case $2 in
	ours/*) echo "$ours_dir/${2#ours/}" ;;
	*) echo "$1/modules/$2" ;;
	esac
}

# build_list SYSDIR OBJROOT LABEL NAME...: build the modules, JOBS at a
# time, a progress line as each ends; results in OBJROOT/NAME/result.
build_list() {
	local s=$1 objroot=$2 label=$3 n d t0=$SECONDS
	shift 3
	n=$#
	mkdir -p "$objroot"
	: > "$objroot/.progress"
	for d in "$@"; do
		while (($(jobs -rp | wc -l) >= JOBS)); do
			wait -n || true
		done
		(
			build_module "$s" "$(moddir "$s" "$d")" "$objroot/$d"
			echo "$d" >> "$objroot/.progress"
			read -r st rest < "$objroot/$d/result"
			[[ $st == ok ]] && rest="built" || rest="FAILED: $rest"
			log "$label ($(wc -l < "$objroot/.progress")/$n) $d: $rest"
		) &
	done
	wait
	log "$label: $n modules in $((SECONDS - t0)) s"
}

result() { cut -d' ' -f2- "$1/result"; }
built() { [[ -f $1/result && $(cut -d' ' -f1 "$1/result") == ok ]]; }

# ---- checks of what was built -----------------------------------------------
# unresolved KMOD DEFS: the undefined symbols of KMOD that are not in the
# sorted list DEFS, one line.
unresolved() {
	nm -u "$1" | awk '{ print $2 }' | sort -u | comm -23 - "$2" | tr '\n' ' ' |
		sed 's/ $//'
}

# ioconf_hint OBJDIR SYMBOL...: the SYMBOLs that the module's own ioconf.c
# (made by config from IOCONF=) defines.  The tools' bsd.kmodule.mk does
# not link ioconf.o, like NetBSD's: a driver built as a module defines its
# cfdriver itself (CFDRIVER_DECL under _MODULE, or #include "ioconf.c").
ioconf_hint() {
	local obj=$1
	shift
	[[ -f $obj/ioconf.c ]] || return 0
	{
		sed -n 's/^CFDRIVER_DECL(\([A-Za-z0-9_]*\),.*/\1_cd/p' "$obj/ioconf.c"
		grep -o 'cf[a-z]*_ioconf_[A-Za-z0-9_]*' "$obj/ioconf.c" || true
	} | sort -u | comm -12 - <(printf '%s\n' "$@" | sort -u) | tr '\n' ' ' | sed 's/ $//'
}

# redefined KMOD DEFS: the global symbols KMOD defines that are in DEFS
# already, less those kobj(9) lets a module redefine (link sets, _end...).
redefined() {
	nm --defined-only "$1" | awk '$2 ~ /^[A-TV-Z]$/ { print $3 }' |
		{ grep -vE '^(__start_link_set_|__stop_link_set_|_?_bss_start$|_bss_end__$|__bss_end__$|_edata$|_?_end$|__end__$)' || true; } |
		sort -u | comm -12 - "$2" | tr '\n' ' ' | sed 's/ $//'
}

# check_symbols KERNEL OBJROOT NAME...: can each module load into KERNEL?
# As kobj(9) checks: every undefined symbol must be a global symbol of
# KERNEL or of a module that requires() lists, and no global symbol of the
# module may be one of theirs ("global symbol redefined").  One line per
# module; returns 1 if one cannot load.
check_symbols() {
	local kernel=$1 objroot=$2 m r kmod missing dup hint rc=0
	shift 2
	nm "$kernel" | awk '$2 ~ /^[A-TV-Z]$/ { print $3 }' | sort -u > "$work/kernel.defs"
	for m in "$@"; do
		built "$objroot/$m" || continue
		kmod=$(result "$objroot/$m")
		{
			cat "$work/kernel.defs"
			for r in $(requires "${m#ours/}" | tr ',' ' '); do
				[[ $r == - ]] || nm --defined-only "$objroot/$r/$r.kmod" |
					awk '$2 ~ /^[A-TV-Z]$/ { print $3 }'
			done
		} | sort -u > "$work/defs"
		missing=$(unresolved "$kmod" "$work/defs")
		dup=$(redefined "$kmod" "$work/defs")
		if [[ -z $missing && -z $dup ]]; then
			log "$m: every symbol resolves against ${kernel#"$top"/}"
			continue
		fi
		rc=1
		[[ -z $dup ]] || log "$m: redefines symbols of ${kernel#"$top"/}: $dup"
		[[ -z $missing ]] && continue
		log "$m: undefined in ${kernel#"$top"/}: $missing"
		# shellcheck disable=SC2086
		hint=$(ioconf_hint "$objroot/$m" $missing)
		[[ -z $hint ]] || log "$m: $hint: defined in its ioconf.c, which no" \
		    "module links: the driver must define it when built with _MODULE" \
		    "(CFDRIVER_DECL, or #include \"ioconf.c\")"
	done
	rm -f "$work/defs"
	return $rc
}

# devsw_localcount KMOD NAME OFFSET: does the devsw NAME of KMOD have a
# d_localcount (a relocation at NAME + OFFSET, inside NAME)?  OFFSET:
# <sys/localcount.h>'s BDEVSW_D_LOCALCOUNT_OFFSET or
# CDEVSW_D_LOCALCOUNT_OFFSET.
devsw_localcount() {
	local kmod=$1 name=$2 off=$3 val size ndx sec
	read -r val size ndx < <(readelf -sW "$kmod" |
		awk -v n="$name" '$8 == n && $4 == "OBJECT" { print $2, $3, $7; exit }') ||
		return 1
	((size >= off + 8)) || return 1
	sec=$(readelf -SW "$kmod" | sed -n "s/^ *\\[ *$ndx\\] \\([^ ]*\\) .*/\\1/p")
	readelf -rW "$kmod" | awk -v s="$sec" -v o="$(printf '%016x' $((16#$val + off)))" '
		/^Relocation section/ { cur = $3; gsub(/\047/, "", cur); sub(/^\.rela?/, "", cur); next }
		cur == s && $1 == o { found = 1 }
		END { exit !found }'
}

# devsws KMOD: "name offset" for each devsw of KMOD: the objects named
# *_bdevsw and *_cdevsw, NetBSD's names for them (LP64 offsets).
devsws() {
	readelf -sW "$1" | awk '$4 == "OBJECT" && $8 ~ /_bdevsw$/ { print $8, 88 }
		$4 == "OBJECT" && $8 ~ /_cdevsw$/ { print $8, 120 }'
}

# localcount_report KMOD: "set: NAME..." and "not set: NAME..." (each part
# only if not empty) for the devsws of KMOD; returns 1 if one is not set.
localcount_report() {
	local name off set=() unset=()
	while read -r name off; do
		if devsw_localcount "$1" "$name" "$off"; then
			set+=("$name")
		else
			unset+=("$name")
		fi
	done < <(devsws "$1")
	local line=
	((${#set[@]} == 0)) || line="set in ${set[*]}"
	((${#unset[@]} == 0)) || line="${line:+$line; }NOT set in ${unset[*]}"
	echo "${line:-no devsw}"
	((${#unset[@]} == 0))
}

# ---- -a: which modules build the edited files -------------------------------
# edited TREE: "file devsw" for each initialiser devsw-module-init.sh would
# edit in TREE.
edited() {
	"$patches/devsw-module-init.sh" -n "$1" 2>&1 |
		sed -n 's/^devsw-module-init: \([^:]*\): \([A-Za-z0-9_]*\): would add DEVSW_MODULE_INIT$/\1 \2/p' |
		sort -u
}

# modules_of TREE FILE...: "module file" for each module directory of
# TREE/modules (and modules/examples) whose SRCS, looked up along its .PATH
# as make does, hold one of the FILEs (relative to TREE).
modules_of() {
	local s=$1 f b d srcs path p
	shift
	for f in "$@"; do
		b=${f##*/}
		for d in $(grep -l -F -- "$b" "$s"/modules/*/Makefile* \
		    "$s"/modules/examples/*/Makefile* 2>/dev/null |
		    xargs -r -n1 dirname | sort -u); do
			{ read -r srcs; read -r path; } < <(kmake "$s" "$d" /nonexistent \
				-V SRCS -V .PATH 2>/dev/null) || continue
			[[ " $srcs " == *" $b "* ]] || continue
			for p in $path; do
				[[ -f $p/$b ]] || continue
				[[ $p/$b -ef $s/$f ]] && echo "${d#"$s"/modules/} $f"
				break
			done
		done
	done | sort -u
}

# summary_line BUILT FAILED ALSO: the last line of the -a summary.
summary_line() {
	echo "$1 modules built, $2 failed ($3 also without the edit)"
}

# make_tree DIR EDIT: DIR/sys = hard links to $NETBSDSRCDIR/sys with
# apply.sh, and devsw-module-init.sh if EDIT is true; DIR/common a link to
# $NETBSDSRCDIR/common.  Remade when the patches change.
make_tree() {
	local dir=$1 edit=$2 stamp what=apply.sh
	$edit && what="apply.sh and devsw-module-init.sh"
	stamp=$(cat "$patches"/*.patch "$patches"/*.sh "$top/include/sys/localcount.h" \
		$(find "$patches/files" -type f | sort) | sha256sum | cut -c1-16)
	stamp="$stamp $edit"
	[[ -f $dir/.stamp && $(cat "$dir/.stamp") == "$stamp" ]] && return 0
	log "making $dir/sys: hard links to $NETBSDSRCDIR/sys, $what"
	rm -rf "$dir"
	mkdir -p "$dir"
	cp -al "$NETBSDSRCDIR/sys" "$dir/sys"
	ln -s "$(cd "$NETBSDSRCDIR/common" && pwd)" "$dir/common"
	"$patches/apply.sh" "$dir/sys" > "$dir/apply.log"
	if $edit; then
		"$patches/devsw-module-init.sh" "$dir/sys" > "$dir/devsw-module-init.log" 2>&1
	fi
	echo "$stamp" > "$dir/.stamp"
}

# The unit test (t_build_modules.py) sources the functions above.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

# ============================================================================
all=false
sys= stock= out= work= kernel=
while getopts as:u:o:w:k: opt; do
	case $opt in
	a) all=true ;;
	s) sys=$OPTARG ;;
	u) stock=$OPTARG ;;
	o) out=$OPTARG ;;
	w) work=$OPTARG ;;
	k) kernel=$OPTARG ;;
	*) sed -n '3,52p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -eq 0 ]] || { sed -n '3,52p' "$0" >&2; exit 2; }

NETBSDSRCDIR=${NETBSDSRCDIR:-/usr/src}
TOOLDIR=${TOOLDIR:-/usr/tools}
MAKEVARS=${MAKEVARS:-HAVE_LLVM=yes MKLLVM=yes MKGCC=no MKBINUTILS=no MKCTF=no MKDTRACE=no NOCLANGERROR=yes}
read -r -a makevars <<< "$MAKEVARS"
for v in "${makevars[@]}"; do
	case $v in EXTERNAL_TOOLCHAIN=*) EXTERNAL_TOOLCHAIN=${v#*=} ;; esac
done
EXTERNAL_TOOLCHAIN=${EXTERNAL_TOOLCHAIN:-$top/target/ktest/ext}
makevars+=(EXTERNAL_TOOLCHAIN="$EXTERNAL_TOOLCHAIN")
JOBS=${JOBS:-2}
[[ $JOBS == 1 ]] || JOBS=2
ours_dir=$(cd "${OURS:-$here}" && pwd)
work=${work:-$top/target/modules-work}
stock=${stock:-$NETBSDSRCDIR/sys}
strict=false
if [[ -n $kernel ]]; then
	strict=true
else
	kernel=$top/target/ktest/obj/rust/netbsd
fi

# ---- what this machine has ----------------------------------------------
[[ -f $NETBSDSRCDIR/sys/kern/subr_localcount.c && -d $NETBSDSRCDIR/common ]] ||
	skip "no NetBSD source tree at NETBSDSRCDIR=$NETBSDSRCDIR (need sys/ and common/)"
[[ -x $TOOLDIR/bin/nbmake-amd64 && -x $TOOLDIR/bin/nbconfig ]] ||
	skip "no NetBSD host tools at TOOLDIR=$TOOLDIR (build.sh -m amd64 tools)"
[[ -x $EXTERNAL_TOOLCHAIN/bin/x86_64--netbsd-clang ]] ||
	skip "no external toolchain at EXTERNAL_TOOLCHAIN=$EXTERNAL_TOOLCHAIN" \
	    "(test-kernel/ktest.sh -B writes it)"
[[ -f $stock/sys/conf.h ]] || skip "no unpatched tree at $stock"
stock=$(cd "$stock" && pwd)
! grep -q 'd_localcount' "$stock/sys/conf.h" ||
	die "$stock has d_localcount in <sys/conf.h>: -u needs the unpatched tree"
if $strict; then
	[[ -f $kernel ]] || die "no kernel at $kernel"
fi
mkdir -p "$work/bin"
work=$(cd "$work" && pwd)
out=${out:-$work/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The tools' make wrapper without its MAKEOBJDIR (which builds in the
# source directories): kmake gives each module its own object directory.
nbmake=$work/bin/nbmake-amd64
sed '/^MAKEOBJDIR=/d' "$TOOLDIR/bin/nbmake-amd64" > "$nbmake"
chmod +x "$nbmake"

if [[ -z $sys ]]; then
	make_tree "$work/patched" true
	sys=$work/patched/sys
fi
sys=$(cd "$sys" 2>/dev/null && pwd) || skip "no patched tree at $sys"
[[ -d $sys/../common ]] || die "no $sys/../common (the kernel's common/)"
grep -q 'struct localcount \*d_localcount;' "$sys/sys/conf.h" ||
	die "$sys does not have the RUST_LOCALCOUNT patches (netbsd-patches/apply.sh)"
dmi=$("$patches/devsw-module-init.sh" -n "$sys" 2>&1) ||
	die "devsw-module-init.sh -n $sys failed: $dmi"
grep -q ' 0 initialisers would add' <<< "$dmi" ||
	die "$sys lacks the devsw-module-init.sh edit (run it on that tree)"
log "patched tree $sys, unpatched tree $stock, work $work, output $out"
rm -f "$out"/*.kmod "$out/real-modules.txt" "$out/modules-summary.txt"
failed=0

# ---- 1. ours ----------------------------------------------------------------
ours=() ours_stock=()
for mk in "$ours_dir"/*/Makefile; do
	[[ -f $mk ]] || continue
	d=${mk%/Makefile}
	case ${d##*/} in
	*_stock) ours_stock+=("ours/${d##*/}") ;;
	*) ours+=("ours/${d##*/}") ;;
	esac
done
((${#ours[@]} + ${#ours_stock[@]} > 0)) || log "no module of ours in $ours_dir/*/"
((${#ours[@]} == 0)) || build_list "$sys" "$work/obj/patched" "ours" "${ours[@]}"
((${#ours_stock[@]} == 0)) ||
	build_list "$stock" "$work/obj/stock" "ours, unpatched tree" "${ours_stock[@]}"
for obj in "${ours[@]/#/$work/obj/patched/}" "${ours_stock[@]/#/$work/obj/stock/}"; do
	if built "$obj"; then
		cp -p "$(result "$obj")" "$out/"
	else
		log "FAILED: ${obj#"$work"/obj/}: $(result "$obj") (log: $obj/build.log)"
		failed=$((failed + 1))
	fi
done

# ---- 2. the real modules ----------------------------------------------------
mapfile -t real < <(real_order)
build_list "$sys" "$work/obj/patched" "real" "${real[@]}"
for m in "${real[@]}"; do
	obj=$work/obj/patched/$m
	if built "$obj"; then
		cp -p "$(result "$obj")" "$out/"
	else
		log "FAILED: real module $m: $(result "$obj") (log: $obj/build.log)"
		failed=$((failed + 1))
	fi
done
real_modules_txt "$out" > "$out/real-modules.txt"

# The devsws that the image's modules attach: the real modules' must have a
# d_localcount (DEVSW_MODULE_INIT); ours are reported (ktmod_nomi's lack it
# on purpose, *_stock ones have no such field).
for obj in "${ours[@]/#/$work/obj/patched/}" "${real[@]/#/$work/obj/patched/}"; do
	built "$obj" || continue
	m=${obj#"$work"/obj/patched/}
	if lc=$(localcount_report "$(result "$obj")"); then
		[[ $lc == "no devsw" ]] || log "$m: d_localcount $lc"
	elif [[ $m == ours/* ]]; then
		log "$m: d_localcount $lc"
	else
		log "FAILED: real module $m: d_localcount $lc"
		failed=$((failed + 1))
	fi
done

# ---- 3. do they resolve against the kernel? ---------------------------------
if [[ -f $kernel ]]; then
	if ! check_symbols "$kernel" "$work/obj/patched" "${ours[@]}" "${real[@]}"; then
		if $strict; then
			log "FAILED: a module does not resolve against $kernel"
			failed=$((failed + 1))
		else
			log "(warning only: check against the kernel they will load into with -k)"
		fi
	fi
else
	log "no kernel at $kernel: symbol check skipped (-k KERNEL)"
fi

# ---- 4. -a: every module of sys/modules the edit touches ----------------------
if $all; then
	t0=$SECONDS
	make_tree "$work/noedit" false
	noedit=$work/noedit/sys
	edited "$noedit" > "$work/edited.txt"
	mapfile -t files < <(cut -d' ' -f1 "$work/edited.txt" | sort -u)
	((${#files[@]} > 0)) || die "devsw-module-init.sh -n lists no file in $noedit"
	modules_of "$sys" "${files[@]}" > "$work/module-files.txt"
	mapfile -t mods < <(cut -d' ' -f1 "$work/module-files.txt" | sort -u)
	mapfile -t orphans < <(comm -23 <(printf '%s\n' "${files[@]}") \
		<(cut -d' ' -f2 "$work/module-files.txt" | sort -u))
	log "-a: devsw-module-init.sh edits ${#files[@]} files:" \
	    "$((${#files[@]} - ${#orphans[@]})) are built by ${#mods[@]} modules of" \
	    "sys/modules, ${#orphans[@]} by none"
	build_list "$sys" "$work/obj/patched" "-a" "${mods[@]}"
	fails=()
	for m in "${mods[@]}"; do
		built "$work/obj/patched/$m" || fails+=("$m")
	done
	((${#fails[@]} == 0)) ||
		build_list "$noedit" "$work/obj/noedit" "-a, without the edit" "${fails[@]}"
	# Every edited devsw of a built module must carry its d_localcount.
	nlc=0 nolc=()
	while read -r m f; do
		built "$work/obj/patched/$m" || continue
		for name in $(awk -v f="$f" '$1 == f { print $2 }' "$work/edited.txt"); do
			off=120		# CDEVSW_D_LOCALCOUNT_OFFSET (LP64)
			grep -qE "struct[[:space:]]+bdevsw[[:space:]]+$name\\b" "$sys/$f" &&
				off=88	# BDEVSW_D_LOCALCOUNT_OFFSET (LP64)
			if devsw_localcount "$(result "$work/obj/patched/$m")" "$name" $off; then
				nlc=$((nlc + 1))
			else
				nolc+=("$m:$name")
			fi
		done
	done < "$work/module-files.txt"
	also=0 broken=0
	{
		echo "modules of sys/modules whose sources devsw-module-init.sh edits:" \
		    "${#mods[@]}, built against $sys"
		((${#orphans[@]} == 0)) ||
			echo "edited files that no module of sys/modules builds: ${orphans[*]}"
		for m in "${fails[@]}"; do
			if built "$work/obj/noedit/$m"; then
				echo "FAILED $m: $(result "$work/obj/patched/$m")" \
				    "-- builds without the edit: the edit breaks it"
				broken=$((broken + 1))
			else
				echo "FAILED $m: $(result "$work/obj/patched/$m")" \
				    "-- also fails without the edit: $(result "$work/obj/noedit/$m")"
				also=$((also + 1))
			fi
		done
		if ((${#nolc[@]} == 0)); then
			echo "d_localcount set in all $nlc edited devsws of the built modules"
		else
			echo "d_localcount NOT set in: ${nolc[*]} ($nlc set)"
		fi
		summary_line $((${#mods[@]} - ${#fails[@]})) ${#fails[@]} $also
	} > "$out/modules-summary.txt"
	cat "$out/modules-summary.txt"
	log "-a: took $((SECONDS - t0)) s"
	failed=$((failed + broken + ${#nolc[@]}))
fi

if ((failed > 0)); then
	log "$failed failed"
	exit 1
fi
log "in $out: $(cd "$out" && echo *.kmod) real-modules.txt"
exit 0
