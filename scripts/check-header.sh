#!/usr/bin/env bash
# check-header.sh -- the committed include/sys/localcount.h is what cbindgen
# (a build dependency, run by build.rs) generates from the Rust source (no
# drift), and it compiles as C with the kernel's warning flags and
# -Werror: LP64 and ILP32 (-m32), with and without DEBUG+LOCKDEBUG, as a built-in and as a module (_MODULE:
# DEVSW_MODULE_INIT in a devsw initializer), with the size and alignment
# NetBSD's struct localcount has on each.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
CC=${CC_HEADER:-clang-19}

# build.rs generates the header with the cbindgen build dependency and,
# with LOCALCOUNT_HEADER=check, fails on any difference.
LOCALCOUNT_HEADER=check cargo build --quiet --features host ||
	{ echo "check-header: include/sys/localcount.h is stale: run" \
		"LOCALCOUNT_HEADER=write cargo build --features host" >&2; exit 1; }
echo "check-header: build.rs (cbindgen): header matches the Rust source"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/t.c" <<'C'
#include <sys/localcount.h>

/* A devsw-like struct with the seed's d_localcount member. */
struct test_cdevsw {
	int			(*d_open)(void);
	struct localcount	*d_localcount;
	int			d_flag;
};

/*
 * struct bdevsw and struct cdevsw as netbsd-patches/0002 makes them
 * (<sys/conf.h> plus d_localcount last): the offsets the library reads
 * must be the header's, on LP64 and ILP32 (the kernel glue checks the
 * real <sys/conf.h> the same way).
 */
typedef int fn_t(void);
struct bdevsw {
	fn_t	*d_open, *d_cancel, *d_close, *d_strategy, *d_ioctl, *d_dump,
		*d_psize, *d_discard, *d_devtounit;
	struct cfdriver		*d_cfdriver;
	int			d_flag;
	struct localcount	*d_localcount;
};
struct cdevsw {
	fn_t	*d_open, *d_cancel, *d_close, *d_read, *d_write, *d_ioctl,
		*d_stop, *d_tty, *d_poll, *d_mmap, *d_kqfilter, *d_discard,
		*d_devtounit;
	struct cfdriver		*d_cfdriver;
	int			d_flag;
	struct localcount	*d_localcount;
};
_Static_assert(__builtin_offsetof(struct bdevsw, d_localcount) ==
    BDEVSW_D_LOCALCOUNT_OFFSET, "bdevsw d_localcount offset");
_Static_assert(__builtin_offsetof(struct cdevsw, d_localcount) ==
    CDEVSW_D_LOCALCOUNT_OFFSET, "cdevsw d_localcount offset");

static int test_open(void);

const struct test_cdevsw test_cdevsw = {
	DEVSW_MODULE_INIT
	.d_open = test_open,
	.d_flag = 0,
};

_Static_assert(sizeof(struct localcount) == (sizeof(void *) == 8 ? 24 : 12),
    "sizeof(struct localcount)");
_Static_assert(_Alignof(struct localcount) == sizeof(void *),
    "alignof(struct localcount)");

/*
 * The library's per-CPU slot must fit what percpu(9) guarantees on this
 * ABI (PERCPU_QUANTUM_SIZE, ALIGNBYTES + 1): sizeof(long) on amd64,
 * sizeof(int) on i386 (the kernel glue CTASSERTs the same against the
 * real ALIGNBYTES).
 */
#if defined(__i386__)
_Static_assert(LOCALCOUNT_SLOT_ALIGN <= sizeof(int), "i386 percpu slot");
#else
_Static_assert(LOCALCOUNT_SLOT_ALIGN <= sizeof(long), "percpu slot");
#endif

void	test_use(struct localcount *, struct kcondvar *, struct kmutex *);
int	test_seed_api(dev_t, struct cfdriver *);

static int
test_open(void)
{

	return 0;
}

void
test_use(struct localcount *lc, struct kcondvar *cv, struct kmutex *mtx)
{

	localcount_init(lc);
	localcount_acquire(lc);
	localcount_release(lc, cv, mtx);
	localcount_drain(lc, cv, mtx);
	localcount_fini(lc);
	(void)localcount_debug_refcnt(lc);
#if defined(DEBUG) && defined(LOCKDEBUG)
	_Static_assert(LOCALCOUNT_DEBUG_REFCNT == 1, "debug mirror");
#else
	_Static_assert(LOCALCOUNT_DEBUG_REFCNT == 0, "debug mirror");
#endif
}

int
test_seed_api(dev_t dev, struct cfdriver *cd)
{
	const struct bdevsw *b;
	const struct cdevsw *c;
	struct device *dv;
	void *sc;

	if ((b = bdevsw_lookup_acquire(dev)) != NULL)
		bdevsw_release(b);
	if ((c = cdevsw_lookup_acquire(dev)) != NULL)
		cdevsw_release(c);
	if ((dv = device_lookup_acquire(cd, 0)) != NULL) {
		device_acquire(dv);
		device_release(dv);
		device_release(dv);
	}
	if ((sc = device_lookup_private_acquire(cd, 0)) == NULL)
		return -1;
	if ((dv = device_find_by_driver_unit_acquire("test", 0)) == NULL)
		return -1;
	return device_detach_release(dv, 0);
}
C
flags=(-ffreestanding -std=gnu99 -D_KERNEL -Iinclude -Itests/c/kernel-stub
	-Wall -Wextra -Wno-unused-parameter -Wno-sign-compare
	-Wmissing-prototypes -Wstrict-prototypes -Wold-style-definition
	-Wpointer-arith -Wcast-qual -Wshadow -Werror -fsyntax-only)
n=0
for m in -m64 -m32; do
	for dbg in "" "-DDEBUG -DLOCKDEBUG"; do
		for mod in "" "-D_MODULE"; do
			# shellcheck disable=SC2086
			$CC "${flags[@]}" $m $dbg $mod "$tmp/t.c"
			n=$((n + 1))
		done
	done
done
# Without _KERNEL the header must refuse.
if $CC "${flags[@]}" -U_KERNEL -m64 "$tmp/t.c" 2>/dev/null; then
	echo "check-header: header compiled without _KERNEL" >&2; exit 1
fi
echo "check-header: $n C configurations compile with -Werror (LP64/ILP32 x DEBUG x _MODULE), devsw offsets agree; non-_KERNEL refused"
