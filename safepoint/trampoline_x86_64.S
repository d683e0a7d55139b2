/* safepoint/trampoline_x86_64.S — usgc_safepoint_trampoline: where a goroutine whose poll
 * faulted resumes after the fault handler returns (safepoint/fault_handler.cpp). It saves every
 * register, calls the safepoint slow path on the goroutine's own stack outside signal context,
 * restores every register and continues after the poll.
 *
 * Entry (set up by the fault handler in the interrupted context):
 *   rip        = usgc_safepoint_trampoline
 *   [rsp]      = the resume address: the instruction after the poll
 *   [rsp+8]    = T, the interrupted stack pointer minus 136 (128 red zone + 8)
 *   all other registers, flags and vector state as the poll left them.
 * rsp itself is either T-16 (the handler ran on an alternate stack and wrote these two words
 * itself) or points into the dead signal frame (the handler's frame lay on this stack, where the
 * live-frame rule of kernel_iface/signals.hpp kept it from writing below the red zone). The first
 * twelve instructions move the resume address to [T] and switch to rsp = T, touching no flags
 * and no register for good (mov, lea, push, pop only), so the rest sees one layout:
 *
 *   [T+8 .. T+136)  the interrupted code's red zone: never written
 *   [T]             resume address                              <- `ret $128` pops it, rsp += 128
 *   [T-8]           rflags                                       (pushfq)
 *   [T-16..T-128]   rax rbx rcx rdx rsi rdi rbp r8 .. r15        (15 pushes; rbp = T-128 after)
 *   below, aligned to 64: the XSAVE area (usgc_trampoline_save_bytes, from CPUID leaf 0xD; the
 *   64-byte XSAVE header zeroed first, then xsave64 with EDX:EAX = all ones), or the 512-byte
 *   FXSAVE area when the CPU or OS has no XSAVE (usgc_trampoline_uses_xsave == 0).
 * The slow path is called with rsp 64-byte aligned (so 16-byte aligned, as the ABI asks), DF
 * clear and rdi = rbp = T-128: the saved registers, which it may read and change (the layout is
 * safepoint::TrampolineFrame, fault_handler.hpp; an asynchronous safepoint that re-issues an
 * interrupted system call writes its result into the saved rax and moves the resume address). It may block, and may switch this goroutine to another OS thread and back (a user-level
 * context switch): after the call the trampoline uses only rbp, rsp, the stack and two
 * process-wide globals, nothing thread-local.
 *
 * Saved per safepoint: 8 (resume address) + 8 (flags) + 15 * 8 (GPRs) = 136 bytes on the
 * goroutine stack, plus up to 63 bytes of alignment, plus the XSAVE area (2432 bytes with
 * XCR0 = x87|SSE|AVX|AVX-512, 832 with x87|SSE|AVX, 512 with FXSAVE). Instructions run on the
 * XSAVE path, excluding the slow path: 12 to normalize the entry, 16 pushes, 21 from there to
 * the call (alignment, header zeroing, xsave64, the argument), 1 call, 6 to xrstor64 and past
 * it, 1 + 16 to restore rsp and pop, 1 ret: 74 in all (59 on the FXSAVE path). 246 bytes of code.
 *
 * CFI: at entry the caller's frame is described with DWARF expressions (CFA = [rsp+8] + 136,
 * return address at [rsp]); from rsp = T on, with ordinary offsets (CFA = T + 136, which is the
 * interrupted stack pointer). gdb shows slow path <- usgc_safepoint_trampoline <- the function
 * that polled.
 */
	.text
	.globl	usgc_safepoint_trampoline
	.hidden	usgc_safepoint_trampoline
	.type	usgc_safepoint_trampoline, @function
	.hidden	usgc_trampoline_slow_path
	.hidden	usgc_trampoline_save_bytes
	.hidden	usgc_trampoline_uses_xsave
	.p2align 4
usgc_safepoint_trampoline:
	.cfi_startproc
	/* DW_CFA_def_cfa_expression: CFA = *(rsp + 8) + 136 (DW_OP_breg7 8; DW_OP_deref; DW_OP_plus_uconst 136) */
	.cfi_escape 0x0f, 0x06, 0x77, 0x08, 0x06, 0x23, 0x88, 0x01
	/* DW_CFA_expression: return address (column 16) at rsp + 0 */
	.cfi_escape 0x10, 0x10, 0x02, 0x77, 0x00

	/* ---- normalize the entry: [T] = resume address, rsp = T ---- */
	pushq	%rax
	.cfi_escape 0x0f, 0x06, 0x77, 0x10, 0x06, 0x23, 0x88, 0x01
	.cfi_escape 0x10, 0x10, 0x02, 0x77, 0x08
	pushq	%rbx
	.cfi_escape 0x0f, 0x06, 0x77, 0x18, 0x06, 0x23, 0x88, 0x01
	.cfi_escape 0x10, 0x10, 0x02, 0x77, 0x10
	.cfi_escape 0x10, 0x03, 0x02, 0x77, 0x00	/* rbx at rsp + 0 */
	movq	16(%rsp), %rax		/* the resume address */
	movq	24(%rsp), %rbx		/* T */
	.cfi_def_cfa %rbx, 136
	/* Read both words before writing anything: when rsp = T-16 they are [T-16] and [T-8]. */
	movq	%rax, (%rbx)
	.cfi_offset %rip, -136
	movq	8(%rsp), %rax		/* the interrupted rax */
	movq	%rax, -8(%rbx)
	movq	(%rsp), %rax		/* the interrupted rbx */
	movq	%rax, -16(%rbx)
	leaq	-16(%rbx), %rsp
	.cfi_def_cfa %rsp, 152
	.cfi_offset %rip, -136
	.cfi_offset %rbx, -152
	popq	%rbx
	.cfi_def_cfa_offset 144
	.cfi_restore %rbx
	popq	%rax
	.cfi_def_cfa_offset 136

	/* ---- save the general-purpose registers and flags ---- */
	pushfq
	.cfi_adjust_cfa_offset 8
	pushq	%rax
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rax, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbx, 0
	pushq	%rcx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rcx, 0
	pushq	%rdx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rdx, 0
	pushq	%rsi
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rsi, 0
	pushq	%rdi
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rdi, 0
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %rbp, 0
	pushq	%r8
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r8, 0
	pushq	%r9
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r9, 0
	pushq	%r10
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r10, 0
	pushq	%r11
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r11, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset %r15, 0
	movq	%rsp, %rbp		/* rbp = T - 128; callee-saved, so it survives the call */
	.cfi_def_cfa_register %rbp
	cld				/* the ABI's DF = 0 for the slow path; popfq restores DF */

	/* ---- save the x87/SSE/AVX/... state ---- */
	andq	$-64, %rsp
	movl	usgc_trampoline_save_bytes(%rip), %eax	/* a multiple of 64 */
	subq	%rax, %rsp
	cmpl	$0, usgc_trampoline_uses_xsave(%rip)
	je	.Lsave_with_fxsave
	xorl	%eax, %eax		/* XSAVE header (bytes 512..575) must be zero for xrstor */
	movq	%rax, 512(%rsp)
	movq	%rax, 520(%rsp)
	movq	%rax, 528(%rsp)
	movq	%rax, 536(%rsp)
	movq	%rax, 544(%rsp)
	movq	%rax, 552(%rsp)
	movq	%rax, 560(%rsp)
	movq	%rax, 568(%rsp)
	movl	$-1, %eax		/* every component XCR0 enables */
	movl	$-1, %edx
	xsave64	(%rsp)
	jmp	.Lstate_saved
.Lsave_with_fxsave:
	fxsave64 (%rsp)
.Lstate_saved:

	movq	%rbp, %rdi		/* the slow path's argument: the saved registers (TrampolineFrame) */
	call	*usgc_trampoline_slow_path(%rip)

	/* ---- restore, in reverse; possibly on another CPU or OS thread than before the call ---- */
	cmpl	$0, usgc_trampoline_uses_xsave(%rip)
	je	.Lrestore_with_fxrstor
	movl	$-1, %eax
	movl	$-1, %edx
	xrstor64 (%rsp)
	jmp	.Lstate_restored
.Lrestore_with_fxrstor:
	fxrstor64 (%rsp)
.Lstate_restored:
	movq	%rbp, %rsp
	.cfi_def_cfa_register %rsp
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r12
	popq	%r11
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r11
	popq	%r10
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r10
	popq	%r9
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r9
	popq	%r8
	.cfi_adjust_cfa_offset -8
	.cfi_restore %r8
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbp
	popq	%rdi
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rdi
	popq	%rsi
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rsi
	popq	%rdx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rdx
	popq	%rcx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rcx
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rbx
	popq	%rax
	.cfi_adjust_cfa_offset -8
	.cfi_restore %rax
	popfq
	.cfi_adjust_cfa_offset -8
	ret	$128			/* pops the resume address, then frees the red zone: rsp = T + 136 */
	.cfi_endproc
	.size	usgc_safepoint_trampoline, .-usgc_safepoint_trampoline

	.section .note.GNU-stack,"",@progbits
