// runtime/context_switch.hpp — switching between goroutine stacks on x86-64
// (runtime/context_switch_x86_64.S).
//
// A context is a stack pointer. usgc_context_switch(&save, load) pushes the System V callee-saved
// state (rbp, rbx, r12-r15, MXCSR and the x87 control word) on the current stack, stores the
// stack pointer in *save, loads `load` and pops the same state from there: 17 instructions each
// way, no system call (the signal mask and the FS base are per OS thread and stay with it).
// Everything else a goroutine's code keeps in registers was spilled by the compiler before the
// call, as for any call. The safepoint trampoline saves the rest itself.
//
// context_prepare() builds the first frame of a new stack so that the first switch to it calls
// entry(argument) on it; entry must never return (a goroutine ends by switching away for good).
#pragma once

#include <cstdint>

extern "C" void usgc_context_switch(void** save_stack_pointer, void* load_stack_pointer);

namespace usgc::runtime {

// Returns the initial stack pointer of a context that runs entry(argument) on the stack whose
// highest address is stack_top (16-byte aligned).
void* context_prepare(uint8_t* stack_top, void (*entry)(void*), void* argument);

}  // namespace usgc::runtime
