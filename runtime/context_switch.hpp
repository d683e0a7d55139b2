// runtime/context_switch.hpp — switching between goroutine stacks on x86-64
// (runtime/context_switch_x86_64.S).
//
// A context is a stack pointer. usgc_context_switch(&save, load) pushes the System V callee-saved
// state (rbp, rbx, r12-r15, MXCSR and the x87 control word) on the current stack, stores the
// stack pointer in *save, loads `load` and pops the same state from there: 21 instructions for a
// whole switch, no system call (the signal mask and the FS base are per OS thread and stay with
// it). Everything else a goroutine's code keeps in registers was spilled by the compiler before the
// call, as for any call. The safepoint trampoline saves the rest itself.
//
// context_prepare() builds the first frame of a new stack so that the first switch to it calls
// entry(argument) on it; entry must never return (a goroutine ends by switching away for good).
//
// ThreadSanitizer (make tsan) keeps a shadow stack and a clock per context; without being told,
// it sees one thread's stack change under it and reports nonsense. Each context therefore has a
// "sanitizer fiber" (nullptr in other builds, where all of this compiles to nothing), and every
// switch goes through switch_context(), which tells TSan which fiber runs next.
#pragma once

#include <cstdint>

extern "C" void usgc_context_switch(void** save_stack_pointer, void* load_stack_pointer);

#if defined(__SANITIZE_THREAD__)
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif

namespace usgc::runtime {

// A new context's fiber / the calling thread's own one / the end of a fiber we created.
inline void* sanitizer_fiber_create() {
#if defined(__SANITIZE_THREAD__)
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}
inline void* sanitizer_fiber_of_thread() {
#if defined(__SANITIZE_THREAD__)
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}
inline void sanitizer_fiber_destroy(void* fiber) {
#if defined(__SANITIZE_THREAD__)
  if (fiber != nullptr) __tsan_destroy_fiber(fiber);
#else
  (void)fiber;
#endif
}

// Saves the current context into *save and runs the one at load (whose fiber is load_fiber).
inline void switch_context(void** save, void* load, void* load_fiber) {
#if defined(__SANITIZE_THREAD__)
  __tsan_switch_to_fiber(load_fiber, 0);
#else
  (void)load_fiber;
#endif
  usgc_context_switch(save, load);
}

// Returns the initial stack pointer of a context that runs entry(argument) on the stack whose
// highest address is stack_top (16-byte aligned).
void* context_prepare(uint8_t* stack_top, void (*entry)(void*), void* argument);

}  // namespace usgc::runtime
