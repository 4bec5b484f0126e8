#!/bin/sh
# header-symbols.sh HEADER: the functions and extern globals that a
# cbindgen-generated header declares, one per line.
sed -n \
	-e 's/^[a-z][a-z0-9_ *]*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' \
	-e 's/^extern [a-z0-9_ *]*[ *]\([a-z_][a-z0-9_]*\);$/\1/p' "$1"
