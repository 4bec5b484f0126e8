/*	$NetBSD$	*/

/*
 * Process entry point and NetBSD ident note of the userland suite's
 * /sbin/init (init.c): no libc, no dynamic linker.
 *
 * The kernel enters _start with %rsp at argc; init.c takes no
 * arguments.  execve(2) accepts the ELF only with the NetBSD ident note
 * (a PT_NOTE; GNU ld makes one for an allocated SHT_NOTE section):
 * name "NetBSD\0", descsz 4, type 1 (ELF_NOTE_TYPE_NETBSD_TAG), desc
 * the kernel's __NetBSD_Version__ (passed as -DNETBSD_VERSION).
 */

	.text
	.globl	_start
	.type	_start, @function
_start:
	xorl	%ebp, %ebp
	andq	$-16, %rsp
	call	main
	movl	%eax, %edi
	movl	$1, %eax		/* SYS_exit; not reached for pid 1 */
	syscall
	hlt
	.size	_start, . - _start

	.section .note.netbsd.ident, "a", @note
	.p2align 2
	.long	7			/* namesz */
	.long	4			/* descsz */
	.long	1			/* type: NetBSD tag */
	.ascii	"NetBSD\0\0"		/* name, padded to 4 */
	.long	NETBSD_VERSION

	.section .note.GNU-stack, "", @progbits
