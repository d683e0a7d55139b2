// runtime/context_switch_x86_64.S — usgc_context_switch and the first frame of a new context.
// See runtime/context_switch.hpp for the contract.
//
// Frame saved on the old stack, from the stack pointer up (context_prepare builds the same):
//   0: MXCSR (4 bytes), 4: x87 control word (2 bytes, 2 bytes padding)
//   8: r15  16: r14  24: r13  32: r12  40: rbx  48: rbp  56: return address

    .text
    .globl usgc_context_switch
    .hidden usgc_context_switch
    .type usgc_context_switch, @function
    .p2align 4
usgc_context_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size usgc_context_switch, .-usgc_context_switch

// The first "return address" of a new context: r12 = entry, r13 = argument (from the frame
// context_prepare wrote). The stack is 16-byte aligned here, as a call requires. entry never
// returns; ud2 makes a bug loud.
    .globl usgc_context_start
    .hidden usgc_context_start
    .type usgc_context_start, @function
    .p2align 4
usgc_context_start:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %r13, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size usgc_context_start, .-usgc_context_start

    .section .note.GNU-stack,"",@progbits
