/*
 * C side of the ABI tests: compiled against the generated
 * include/sys/localcount.h with the kernel's warning flags, twice (plain
 * and -DDEBUG -DLOCKDEBUG, with ABI_PREFIX abi_ and abi_debug_), linked into
 * the host tests, which compare these numbers with Rust's and call the
 * exported functions from C.
 */
#include <sys/localcount.h>

#include <stddef.h>

#define	ABI_CAT2(a, b)	a##b
#define	ABI_CAT(a, b)	ABI_CAT2(a, b)
#define	ABI(name)	ABI_CAT(ABI_PREFIX, name)

/* The ABI the kernel was built with (24/8 on LP64, 12/4 on ILP32). */
_Static_assert(sizeof(struct localcount) == 3 * sizeof(void *),
    "struct localcount size");
_Static_assert(_Alignof(struct localcount) == sizeof(void *),
    "struct localcount alignment");

size_t	ABI(sizeof_localcount)(void);
size_t	ABI(alignof_localcount)(void);
size_t	ABI(offsetof_totalp)(void);
size_t	ABI(offsetof_percpu)(void);
size_t	ABI(offsetof_refcnt)(void);
unsigned ABI(debug_refcnt_macro)(void);
uint32_t ABI(acquire_release)(struct localcount *, struct kcondvar *,
	    struct kmutex *, int, int);
void	ABI(drain_fini)(struct localcount *, struct kcondvar *,
	    struct kmutex *);

size_t
ABI(sizeof_localcount)(void)
{

	return sizeof(struct localcount);
}

size_t
ABI(alignof_localcount)(void)
{

	return _Alignof(struct localcount);
}

size_t
ABI(offsetof_totalp)(void)
{

	return offsetof(struct localcount, lc_totalp);
}

size_t
ABI(offsetof_percpu)(void)
{

	return offsetof(struct localcount, lc_percpu);
}

size_t
ABI(offsetof_refcnt)(void)
{

	return offsetof(struct localcount, lc_refcnt);
}

unsigned
ABI(debug_refcnt_macro)(void)
{

	return LOCALCOUNT_DEBUG_REFCNT;
}

/*
 * Initialize lc, take nacq references and drop nrel of them, all through
 * the C prototypes; return localcount_debug_refcnt().
 */
uint32_t
ABI(acquire_release)(struct localcount *lc, struct kcondvar *cv,
    struct kmutex *mtx, int nacq, int nrel)
{
	int i;

	localcount_init(lc);
	for (i = 0; i < nacq; i++)
		localcount_acquire(lc);
	for (i = 0; i < nrel; i++)
		localcount_release(lc, cv, mtx);
	return localcount_debug_refcnt(lc);
}

/* Drain (caller holds mtx) and finalize lc through the C prototypes. */
void
ABI(drain_fini)(struct localcount *lc, struct kcondvar *cv,
    struct kmutex *mtx)
{

	localcount_drain(lc, cv, mtx);
	localcount_fini(lc);
}
