// tests/safepoint/register_loops_x86_64.cpp — the register loops and clobber functions of
// tests/safepoint/register_loops.hpp (which says what they keep and check), in assembly.
// Invariant: the offsets into RegisterLoopState used here are the header's static_asserts.
#include "tests/safepoint/register_loops.hpp"

// clang-format off
__asm__(R"(
	.text
# ---- the loop, in pieces: rdi = state on entry; frame: 0 state, 8 iterations, 16 rax_lost,
#      24 direction_flag_lost, 32 this iteration's page, 40 schedule cursor, 48 rsp before the
#      stack offset; red zone pattern at -128..-24(%rsp) (pushfq uses -8)
.macro RL_PROLOGUE
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rax
	sub 184(%rdi), %rsp
	sub $56, %rsp
	mov %rax, 48(%rsp)
	mov %rdi, 0(%rsp)
	movq $0, 8(%rsp)
	movq $0, 16(%rsp)
	movq $0, 24(%rsp)
	movq $0, 32(%rsp)
	mov 112(%rdi), %rax
	mov %rax, 40(%rsp)
	.set rl_i, 0
	.rept 14
	movq $(0x5a5a0000 + rl_i), (-128 + 8 * rl_i)(%rsp)
	.set rl_i, rl_i + 1
	.endr
.endm

.macro RL_LOAD_GPRS
	mov 0(%rdi), %rbx
	mov 8(%rdi), %rcx
	mov 16(%rdi), %rdx
	mov 24(%rdi), %rsi
	mov 40(%rdi), %rbp
	mov 48(%rdi), %r8
	mov 56(%rdi), %r9
	mov 64(%rdi), %r10
	mov 72(%rdi), %r11
	mov 80(%rdi), %r12
	mov 88(%rdi), %r13
	mov 96(%rdi), %r14
	mov 104(%rdi), %r15
	mov 32(%rdi), %rdi
.endm

.macro RL_MIX_GPRS
	add %rcx, %rbx
	rol $5, %rbx
	add %rdx, %rcx
	rol $7, %rcx
	add %rsi, %rdx
	rol $11, %rdx
	add %rdi, %rsi
	rol $13, %rsi
	add %rbp, %rdi
	rol $17, %rdi
	add %r8, %rbp
	rol $19, %rbp
	add %r9, %r8
	rol $23, %r8
	add %r10, %r9
	rol $29, %r9
	add %r11, %r10
	rol $31, %r10
	add %r12, %r11
	rol $37, %r11
	add %r13, %r12
	rol $41, %r12
	add %r14, %r13
	rol $43, %r13
	add %r15, %r14
	rol $47, %r14
	add %rbx, %r15
	rol $53, %r15
.endm

# The loop proper; \mix mixes the vector registers.
.macro RL_LOOP mix
1:
	mov 0(%rsp), %rax
	mov 120(%rax), %rax
	cmp %rax, 8(%rsp)
	jae 2f
	mov 40(%rsp), %rax
	addq $8, 40(%rsp)
	mov (%rax), %rax
	mov %rax, 32(%rsp)
	std
	testb $0, (%rax)                # the poll
	pushfq
	cld
	testq $0x400, (%rsp)
	jnz 3f
	incq 24+8(%rsp)
3:
	lea 8(%rsp), %rsp
	cmp 32(%rsp), %rax
	je 4f
	incq 16(%rsp)
4:
	RL_MIX_GPRS
	\mix
	incq 8(%rsp)
	jmp 1b
2:
.endm

.macro RL_EPILOGUE store_vectors
	mov 0(%rsp), %rax
	mov %rbx, 0(%rax)
	mov %rcx, 8(%rax)
	mov %rdx, 16(%rax)
	mov %rsi, 24(%rax)
	mov %rdi, 32(%rax)
	mov %rbp, 40(%rax)
	mov %r8, 48(%rax)
	mov %r9, 56(%rax)
	mov %r10, 64(%rax)
	mov %r11, 72(%rax)
	mov %r12, 80(%rax)
	mov %r13, 88(%rax)
	mov %r14, 96(%rax)
	mov %r15, 104(%rax)
	\store_vectors
	mov 8(%rsp), %rcx
	mov %rcx, 128(%rax)
	mov 16(%rsp), %rcx
	mov %rcx, 136(%rax)
	mov 24(%rsp), %rcx
	mov %rcx, 144(%rax)
	stmxcsr 160(%rax)
	fnstcw 164(%rax)
	xor %ecx, %ecx
	.set rl_i, 0
	.rept 14
	cmpq $(0x5a5a0000 + rl_i), (-128 + 8 * rl_i)(%rsp)
	setne %dl
	movzbl %dl, %edx
	add %rdx, %rcx
	.set rl_i, rl_i + 1
	.endr
	mov %rcx, 152(%rax)
	mov 48(%rsp), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
.endm

# ---- SSE: xmm0-15
.macro RL_SSE_LOAD
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu (192 + 64 * \n)(%rdi), %xmm\n
	.endr
.endm
.macro RL_SSE_STORE
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu %xmm\n, (192 + 64 * \n)(%rax)
	.endr
.endm
.macro RL_SSE_PAIR a, b
	paddq %xmm\b, %xmm\a
.endm
.macro RL_SSE_MIX
	RL_SSE_PAIR 0,1
	RL_SSE_PAIR 1,2
	RL_SSE_PAIR 2,3
	RL_SSE_PAIR 3,4
	RL_SSE_PAIR 4,5
	RL_SSE_PAIR 5,6
	RL_SSE_PAIR 6,7
	RL_SSE_PAIR 7,8
	RL_SSE_PAIR 8,9
	RL_SSE_PAIR 9,10
	RL_SSE_PAIR 10,11
	RL_SSE_PAIR 11,12
	RL_SSE_PAIR 12,13
	RL_SSE_PAIR 13,14
	RL_SSE_PAIR 14,15
	RL_SSE_PAIR 15,0
.endm

	.globl usgc_test_register_loop_sse
	.type usgc_test_register_loop_sse, @function
	.p2align 4
usgc_test_register_loop_sse:
	RL_PROLOGUE
	RL_SSE_LOAD
	RL_LOAD_GPRS
	RL_LOOP RL_SSE_MIX
	RL_EPILOGUE RL_SSE_STORE
	ret
	.size usgc_test_register_loop_sse, .-usgc_test_register_loop_sse

# ---- AVX: ymm0-15
.macro RL_AVX_LOAD
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu (192 + 64 * \n)(%rdi), %ymm\n
	.endr
.endm
.macro RL_AVX_STORE
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu %ymm\n, (192 + 64 * \n)(%rax)
	.endr
.endm
.macro RL_AVX_PAIR a, b
	vpaddq %ymm\b, %ymm\a, %ymm\a
.endm
.macro RL_AVX_MIX
	RL_AVX_PAIR 0,1
	RL_AVX_PAIR 1,2
	RL_AVX_PAIR 2,3
	RL_AVX_PAIR 3,4
	RL_AVX_PAIR 4,5
	RL_AVX_PAIR 5,6
	RL_AVX_PAIR 6,7
	RL_AVX_PAIR 7,8
	RL_AVX_PAIR 8,9
	RL_AVX_PAIR 9,10
	RL_AVX_PAIR 10,11
	RL_AVX_PAIR 11,12
	RL_AVX_PAIR 12,13
	RL_AVX_PAIR 13,14
	RL_AVX_PAIR 14,15
	RL_AVX_PAIR 15,0
.endm

	.globl usgc_test_register_loop_avx
	.type usgc_test_register_loop_avx, @function
	.p2align 4
usgc_test_register_loop_avx:
	RL_PROLOGUE
	RL_AVX_LOAD
	RL_LOAD_GPRS
	RL_LOOP RL_AVX_MIX
	RL_EPILOGUE RL_AVX_STORE
	vzeroupper
	ret
	.size usgc_test_register_loop_avx, .-usgc_test_register_loop_avx

# ---- AVX-512: zmm0-31, k1-k7 (held, not changed)
.macro RL_AVX512_LOAD
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 (192 + 64 * \n)(%rdi), %zmm\n
	.endr
	.irp n, 1,2,3,4,5,6,7
	kmovw (166 + 2 * \n)(%rdi), %k\n
	.endr
.endm
.macro RL_AVX512_STORE
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 %zmm\n, (192 + 64 * \n)(%rax)
	.endr
	.irp n, 1,2,3,4,5,6,7
	kmovw %k\n, (166 + 2 * \n)(%rax)
	.endr
.endm
.macro RL_AVX512_PAIR a, b
	vpaddq %zmm\b, %zmm\a, %zmm\a
.endm
.macro RL_AVX512_MIX
	RL_AVX512_PAIR 0,1
	RL_AVX512_PAIR 1,2
	RL_AVX512_PAIR 2,3
	RL_AVX512_PAIR 3,4
	RL_AVX512_PAIR 4,5
	RL_AVX512_PAIR 5,6
	RL_AVX512_PAIR 6,7
	RL_AVX512_PAIR 7,8
	RL_AVX512_PAIR 8,9
	RL_AVX512_PAIR 9,10
	RL_AVX512_PAIR 10,11
	RL_AVX512_PAIR 11,12
	RL_AVX512_PAIR 12,13
	RL_AVX512_PAIR 13,14
	RL_AVX512_PAIR 14,15
	RL_AVX512_PAIR 15,16
	RL_AVX512_PAIR 16,17
	RL_AVX512_PAIR 17,18
	RL_AVX512_PAIR 18,19
	RL_AVX512_PAIR 19,20
	RL_AVX512_PAIR 20,21
	RL_AVX512_PAIR 21,22
	RL_AVX512_PAIR 22,23
	RL_AVX512_PAIR 23,24
	RL_AVX512_PAIR 24,25
	RL_AVX512_PAIR 25,26
	RL_AVX512_PAIR 26,27
	RL_AVX512_PAIR 27,28
	RL_AVX512_PAIR 28,29
	RL_AVX512_PAIR 29,30
	RL_AVX512_PAIR 30,31
	RL_AVX512_PAIR 31,0
.endm

	.globl usgc_test_register_loop_avx512
	.type usgc_test_register_loop_avx512, @function
	.p2align 4
usgc_test_register_loop_avx512:
	RL_PROLOGUE
	RL_AVX512_LOAD
	RL_LOAD_GPRS
	RL_LOOP RL_AVX512_MIX
	RL_EPILOGUE RL_AVX512_STORE
	vzeroupper
	ret
	.size usgc_test_register_loop_avx512, .-usgc_test_register_loop_avx512

# ---- the slow path's clobbers: caller-saved GPRs, vectors, MXCSR, x87 CW, flags (DF stays 0)
.macro CLOBBER_COMMON
	movabs $0xbad0bad0bad00001, %rax
	movabs $0xbad0bad0bad00002, %rcx
	movabs $0xbad0bad0bad00003, %rdx
	movabs $0xbad0bad0bad00004, %rsi
	movabs $0xbad0bad0bad00005, %rdi
	movabs $0xbad0bad0bad00006, %r8
	movabs $0xbad0bad0bad00007, %r9
	movabs $0xbad0bad0bad00008, %r10
	movabs $0xbad0bad0bad00009, %r11
	sub $8, %rsp
	movl $0xffc0, (%rsp)            # FTZ, round toward zero, all exceptions masked, DAZ
	ldmxcsr (%rsp)
	movw $0x0c7f, (%rsp)            # round toward zero, single precision
	fldcw (%rsp)
	add $8, %rsp
	pushq $0x8d5                    # CF PF AF ZF SF OF set, DF clear
	popfq
.endm

	.globl usgc_test_clobber_sse
	.type usgc_test_clobber_sse, @function
usgc_test_clobber_sse:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	pcmpeqd %xmm\n, %xmm\n
	.endr
	CLOBBER_COMMON
	ret
	.size usgc_test_clobber_sse, .-usgc_test_clobber_sse

	.globl usgc_test_clobber_avx
	.type usgc_test_clobber_avx, @function
usgc_test_clobber_avx:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vpcmpeqd %ymm\n, %ymm\n, %ymm\n
	.endr
	CLOBBER_COMMON
	ret
	.size usgc_test_clobber_avx, .-usgc_test_clobber_avx

	.globl usgc_test_clobber_avx512
	.type usgc_test_clobber_avx512, @function
usgc_test_clobber_avx512:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vpternlogd $0xff, %zmm\n, %zmm\n, %zmm\n
	.endr
	.irp n, 1,2,3,4,5,6,7
	kxnorw %k0, %k0, %k\n
	.endr
	CLOBBER_COMMON
	ret
	.size usgc_test_clobber_avx512, .-usgc_test_clobber_avx512

	.purgem RL_PROLOGUE
	.purgem RL_LOAD_GPRS
	.purgem RL_MIX_GPRS
	.purgem RL_LOOP
	.purgem RL_EPILOGUE
	.purgem RL_SSE_LOAD
	.purgem RL_SSE_STORE
	.purgem RL_SSE_PAIR
	.purgem RL_SSE_MIX
	.purgem RL_AVX_LOAD
	.purgem RL_AVX_STORE
	.purgem RL_AVX_PAIR
	.purgem RL_AVX_MIX
	.purgem RL_AVX512_LOAD
	.purgem RL_AVX512_STORE
	.purgem RL_AVX512_PAIR
	.purgem RL_AVX512_MIX
	.purgem CLOBBER_COMMON
)");
// clang-format on
