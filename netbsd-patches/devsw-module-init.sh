#!/bin/sh
#
# devsw-module-init.sh [-n] SYSDIR
#
#	Add DEVSW_MODULE_INIT at the start of the bdevsw/cdevsw designated
#	initialisers of every driver that can be built as a module, in a
#	NetBSD sys/ tree that has the RUST_LOCALCOUNT patches (apply.sh):
#
#		const struct cdevsw foo_cdevsw = {
#			DEVSW_MODULE_INIT
#			.d_open = fooopen,
#			...
#
#	When the driver is compiled as a module (_MODULE), the macro points
#	d_localcount at a zero-filled struct localcount in the module, which
#	devsw_attach requires of a module (EINVAL otherwise) and which keeps
#	the module loaded while its devsw is in use; built into the kernel
#	it expands to nothing.
#
#	Modular drivers are the .c files of the SRCS of sys/modules/*/Makefile
#	(found through their .PATH) and any .c file with a MODULE()
#	declaration.  Initialisers that already have DEVSW_MODULE_INIT or a
#	.d_localcount, and positional (non-designated) ones, are left alone
#	and reported.  Running it again changes nothing (idempotent).
#
#	Files are replaced, not edited in place: in a tree of hard links to
#	another tree (cp -al), only the edited files stop being links.
#	With -n, only reports what it would change.
#
#	Exit: 0 done (or nothing to do); 1 usage; 2 not a NetBSD sys/ tree;
#	3 the tree does not have the RUST_LOCALCOUNT patches (no d_localcount
#	in <sys/conf.h> or no DEVSW_MODULE_INIT in <sys/localcount.h>).
#
set -eu

prog=devsw-module-init
dryrun=false
if [ "${1-}" = -n ]; then
	dryrun=true
	shift
fi
[ $# -eq 1 ] || { echo "usage: $prog.sh [-n] SYSDIR" >&2; exit 1; }
sys=$(cd "$1" 2>/dev/null && pwd) || { echo "$prog: $1: no such directory" >&2; exit 2; }

die() { rc=$1; shift; echo "$prog: $*" >&2; exit "$rc"; }

for f in kern/subr_devsw.c sys/conf.h sys/param.h sys/localcount.h modules/Makefile; do
	[ -f "$sys/$f" ] || die 2 "$sys is not a NetBSD sys/ tree (no $f)"
done
grep -q '__NetBSD_Version__' "$sys/sys/param.h" ||
	die 2 "$sys/sys/param.h has no __NetBSD_Version__: not a NetBSD tree"
grep -q 'struct localcount \*d_localcount;' "$sys/sys/conf.h" &&
    grep -q 'define[	 ]*DEVSW_MODULE_INIT' "$sys/sys/localcount.h" ||
	die 3 "$sys does not have the RUST_LOCALCOUNT patches" \
	    "(run netbsd-patches/apply.sh $sys first)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# 1. Source files of the modules: SRCS of sys/modules/*/Makefile, each
#    looked up in the module's .PATH directories (${S} and $S are SYSDIR)
#    and in the module's own directory.
for mk in "$sys"/modules/*/Makefile; do
	awk -v sys="$sys" -v dir="${mk%/Makefile}" '
	function subst(s) {
		gsub(/\$\{S\}|\$S/, sys, s)
		gsub(/\$\{\.CURDIR\}/, dir, s)
		return s
	}
	{
		line = $0
		while (line ~ /\\$/ && (getline nxt) > 0)
			line = substr(line, 1, length(line) - 1) " " nxt
		if (line ~ /^\.PATH[ \t]*:/) {
			sub(/^\.PATH[ \t]*:/, "", line)
			n = split(line, w, /[ \t]+/)
			for (i = 1; i <= n; i++)
				if (w[i] != "")
					path[++np] = subst(w[i])
		} else if (line ~ /^SRCS[ \t]*\+?=/) {
			sub(/^SRCS[ \t]*\+?=/, "", line)
			n = split(line, w, /[ \t]+/)
			for (i = 1; i <= n; i++)
				if (w[i] ~ /\.c$/)
					src[++ns] = w[i]
		}
	}
	END {
		path[++np] = dir
		for (i = 1; i <= ns; i++)
			for (j = 1; j <= np; j++) {
				if (path[j] ~ /\$/)
					continue	# unresolved variable
				f = path[j] "/" src[i]
				if ((getline junk < f) >= 0) {
					close(f)
					print f
					break
				}
			}
	}' "$mk"
done > "$tmp/files"

# 2. Any .c file that declares a module.
grep -rlE --include='*.c' '^[[:space:]]*MODULE\(' "$sys" >> "$tmp/files" || true

# Keep those with a devsw initialiser.
devsw_re='^[[:space:]]*(static[[:space:]]+)?(const[[:space:]]+)?struct[[:space:]]+[bc]devsw[[:space:]]+[A-Za-z0-9_]+[[:space:]]*=[[:space:]]*\{[[:space:]]*$'
sort -u "$tmp/files" | while read -r f; do
	grep -qE "$devsw_re" "$f" && echo "$f"
done > "$tmp/candidates" || true

# 3. Edit.  For each initialiser: already has the macro or .d_localcount
#    -> "ok"; starts with a designator -> insert; else "positional".
nfiles=0 nadded=0 nok=0 nskip=0
while read -r f; do
	rel=${f#"$sys"/}
	awk -v re="$devsw_re" -v rel="$rel" -v rep="$tmp/report" '
	function name(s) {
		sub(/[ \t]*=.*/, "", s)
		sub(/.*[ \t]/, "", s)
		return s
	}
	pending != "" && $0 ~ /^[ \t]*$/ { print; next }
	pending != "" {
		if ($0 ~ /DEVSW_MODULE_INIT/ || $0 ~ /\.d_localcount[ \t]*=/)
			printf "ok %s %s\n", rel, pending >> rep
		else if ($0 ~ /^[ \t]*\./) {
			print "\tDEVSW_MODULE_INIT"
			printf "added %s %s\n", rel, pending >> rep
		} else
			printf "positional %s %s\n", rel, pending >> rep
		pending = ""
	}
	$0 ~ re { pending = name($0) }
	{ print }' "$f" > "$tmp/new"
	if ! cmp -s "$f" "$tmp/new"; then
		nfiles=$((nfiles + 1))
		if ! $dryrun; then
			# A private copy (mode kept), then replace the link.
			cp -p "$f" "$f.dmi.$$"
			cat "$tmp/new" > "$f.dmi.$$"
			mv -f "$f.dmi.$$" "$f"
		fi
	fi
done < "$tmp/candidates"

[ -f "$tmp/report" ] || : > "$tmp/report"
verb="added"
$dryrun && verb="would add"
while read -r what rel dname; do
	case $what in
	added)	echo "$prog: $rel: $dname: $verb DEVSW_MODULE_INIT"
		nadded=$((nadded + 1)) ;;
	ok)	nok=$((nok + 1)) ;;
	positional)
		echo "$prog: $rel: $dname: positional initialiser, not changed" >&2
		nskip=$((nskip + 1)) ;;
	esac
done < "$tmp/report"
echo "$prog: $(wc -l < "$tmp/candidates" | tr -d ' ') modular driver files with devsw;" \
	"$nadded initialisers $verb DEVSW_MODULE_INIT in $nfiles files," \
	"$nok already had it, $nskip positional (not changed)"
