/*
 * Stand-in for the kernel's <sys/types.h> when the generated header is
 * compiled on the host (ABI tests): only the fixed-width types and dev_t it uses.
 */
#ifndef _TEST_SYS_TYPES_H_
#define _TEST_SYS_TYPES_H_
#include <stddef.h>
#include <stdint.h>
typedef uint64_t dev_t;
#endif
