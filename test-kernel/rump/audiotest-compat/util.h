/*	$NetBSD$	*/

/*-
 * <util.h> for audiotest.c on a Linux host (ktest-rump.sh): the one
 * function of NetBSD's libutil it calls, snprintb(3), for its debug
 * output (poll events), in the new format ("\177\020", 'b' fields only).
 */

#ifndef _KTEST_UTIL_H_
#define _KTEST_UTIL_H_

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * snprintb(buf, size, fmt, val)
 *
 *	"0x<val><NAME,NAME>" for the bits of val that fmt's 'b' fields
 *	name; the other fields are not used by audiotest and end the
 *	decoding.
 */
static inline int
snprintb(char *buf, size_t size, const char *fmt, uint64_t val)
{
	const char *sep = "<";
	size_t n;
	int bit;

	n = (size_t)snprintf(buf, size, "%#jx", (uintmax_t)val);
	if (fmt[0] != '\177' || val == 0)
		return (int)n;
	for (fmt += 2; *fmt == 'b'; fmt += strlen(fmt) + 1) {
		bit = (unsigned char)fmt[1];
		fmt += 2;
		if ((val >> bit) & 1 && n < size) {
			n += (size_t)snprintf(buf + n, size - n, "%s%s", sep,
			    fmt);
			sep = ",";
		}
	}
	if (*sep == ',' && n < size)
		n += (size_t)snprintf(buf + n, size - n, ">");
	return (int)n;
}

#endif	/* _KTEST_UTIL_H_ */
