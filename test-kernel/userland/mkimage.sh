#!/usr/bin/env bash
#
# mkimage.sh -s SYSDIR -i INIT -m MODDIR -o IMAGE [-k]
#
# Make the md(4) root file system of the userland suite: an FFSv1
# little-endian image (Debian's makefs) holding
#	/sbin/init			INIT (test-kernel/userland/build.sh)
#	/stand/<name>.kmod		every MODDIR/*.kmod
#	/etc/ktest/real-modules		"name /stand/name.kmod [/dev/node ...]"
#					per module of MODDIR/real-modules.txt,
#					in load order
#	/dev/...			console, null, zero, md0a, rmd0a
#					(majors from SYSDIR's majors.amd64),
#					ktctl, ktmodN, ktmodbN (ktmod.h) and
#					the real modules' nodes
# Device nodes come from an mtree spec (makefs -F), so no root
# privilege is needed.  -k keeps the staging directory and spec next to
# IMAGE (IMAGE.stage, IMAGE.spec).  Exit 0 made, 1 failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { sed -n '3,4p' "$0" >&2; exit 1; }
keep=false sys= init= mods= img=
while getopts s:i:m:o:k opt; do
	case $opt in
	s) sys=$OPTARG ;; i) init=$OPTARG ;; m) mods=$OPTARG ;;
	o) img=$OPTARG ;; k) keep=true ;; *) usage ;;
	esac
done
[[ -n $sys && -n $init && -n $mods && -n $img ]] || usage
die() { echo "mkimage.sh: $*" >&2; exit 1; }
command -v makefs >/dev/null || die "makefs not found (apt-get install makefs)"
majors=$sys/arch/amd64/conf/majors.amd64
[[ -f $majors ]] || die "no $majors"

# major NAME char|block: the device-major line's number for NAME.
major() {
	awk -v n="$1" -v t="$2" '$1 == "device-major" && $2 == n {
		for (i = 3; i < NF; i++) if ($i == t) { print $(i + 1); exit } }' "$majors"
}
hdr() { sed -n "s/^#define[[:space:]]*$1[[:space:]]*\([0-9]*\).*/\1/p" "$here/../ktest/ktmod.h"; }
cons=$(major cons char) mem=$(major mem char)
mdb=$(major md block) mdc=$(major md char)
[[ -n $cons && -n $mem && -n $mdb && -n $mdc ]] || die "cons/mem/md majors not in $majors"
ktctl=$(hdr KTCTL_CMAJOR) ktc=$(hdr KTMOD_CMAJOR) ktb=$(hdr KTMOD_BMAJOR) nunit=$(hdr KTMOD_NUNIT)

stage=$img.stage spec=$img.spec
rm -rf "$stage"
mkdir -p "$stage"/{dev,sbin,stand,etc/ktest}
cp "$init" "$stage/sbin/init"
: > "$stage/etc/ktest/real-modules"
{
	echo "/set type=dir uid=0 gid=0 mode=0755"
	echo ". type=dir"
	echo "./dev type=dir"
	node() { echo "./dev/$1 type=$2 mode=0600 device=netbsd,$3,$4"; }
	node console char "$cons" 0
	node null char "$mem" 2
	node zero char "$mem" 12
	node md0a block "$mdb" 0
	node rmd0a char "$mdc" 0
	node ktctl char "$ktctl" 0
	for ((u = 0; u < nunit; u++)); do
		node "ktmod$u" char "$ktc" "$u"
		node "ktmodb$u" block "$ktb" "$u"
	done
	if [[ -f $mods/real-modules.txt ]]; then
		# build-modules.sh: "name kmod-path devnode type major minor"
		# per device node, in load order; "- - - -" for a module that
		# is only required by another.  init.c's list: one line per
		# module, "name /stand/name.kmod [devnode ...]".
		declare -A nodes=()
		order=()
		while read -r name _ dev type maj min; do
			[[ -z $name || $name == \#* ]] && continue
			[[ -v nodes[$name] ]] || { order+=("$name"); nodes[$name]=; }
			[[ $dev == - ]] && continue
			node "${dev#/dev/}" "$type" "$maj" "$min"
			nodes[$name]+=" $dev"
		done < "$mods/real-modules.txt"
		for name in "${order[@]}"; do
			echo "$name /stand/$name.kmod${nodes[$name]}"
		done > "$stage/etc/ktest/real-modules"
	fi
	echo "./etc type=dir"
	echo "./etc/ktest type=dir"
	echo "./etc/ktest/real-modules type=file mode=0644"
	echo "./sbin type=dir"
	echo "./sbin/init type=file mode=0755"
	echo "./stand type=dir"
	for k in "$mods"/*.kmod; do
		[[ -f $k ]] || continue
		cp "$k" "$stage/stand/"
		echo "./stand/$(basename "$k") type=file mode=0644"
	done
} > "$spec"
makefs -t ffs -B le -o version=1 -M 8m -F "$spec" "$img.new" "$stage" >/dev/null ||
	die "makefs failed"
mv "$img.new" "$img"
$keep || rm -rf "$stage" "$spec"
