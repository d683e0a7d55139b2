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
// The sanitizers must be told about every switch, or they see one thread's stack change under
// them. Each context therefore has a "sanitizer fiber" (nullptr in other builds, where all of
// this compiles to nothing), and every switch goes through switch_context():
// - ThreadSanitizer (make tsan) keeps a shadow stack and a clock per context: the fiber is
//   TSan's own (__tsan_create_fiber), and switch_context tells it which one runs next.
// - AddressSanitizer (make asan) must know the bounds of the stack that runs (it unpoisons the
//   current stack at a noreturn call, and keeps a fake stack per context when
//   detect_stack_use_after_return is on): the fiber is a SanitizerStack (below; for a thread's
//   own stack, pthread's bounds), and switch_context brackets the switch with
//   __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber. A context's first run
//   begins in its entry function, which calls sanitizer_fiber_entered() first; a context that
//   switches away for good says so (kEnds), and ASan drops its fake stack.
#pragma once

#include <cstddef>
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
#if defined(__SANITIZE_ADDRESS__)
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
}
#endif

namespace usgc::runtime {

#if defined(__SANITIZE_ADDRESS__)
// An ASan build's fiber: the context's stack and its fake stack while it is switched out. Written
// only by the context's owner (created with it, fake_stack by the context itself around a switch).
struct SanitizerStack {
  const void* lowest = nullptr;
  size_t bytes = 0;
  void* fake_stack = nullptr;
};
void* sanitizer_stack_create(const void* lowest, size_t bytes);  // context_switch.cpp
void* sanitizer_stack_of_thread();
void sanitizer_stack_destroy(void* fiber);
#endif

// A new context's fiber, for the stack [lowest, lowest + bytes) / the calling thread's own one /
// the end of a fiber made by either.
inline void* sanitizer_fiber_create([[maybe_unused]] const void* lowest,
                                    [[maybe_unused]] size_t bytes) {
#if defined(__SANITIZE_THREAD__)
  return __tsan_create_fiber(0);
#elif defined(__SANITIZE_ADDRESS__)
  return sanitizer_stack_create(lowest, bytes);
#else
  return nullptr;
#endif
}
inline void* sanitizer_fiber_of_thread() {
#if defined(__SANITIZE_THREAD__)
  return __tsan_get_current_fiber();
#elif defined(__SANITIZE_ADDRESS__)
  return sanitizer_stack_of_thread();
#else
  return nullptr;
#endif
}
// TSan: only fibers from sanitizer_fiber_create (the thread's own dies with the thread).
inline void sanitizer_fiber_destroy(void* fiber, [[maybe_unused]] bool of_thread = false) {
#if defined(__SANITIZE_THREAD__)
  if (fiber != nullptr && !of_thread) __tsan_destroy_fiber(fiber);
#elif defined(__SANITIZE_ADDRESS__)
  sanitizer_stack_destroy(fiber);
#else
  (void)fiber;
#endif
}

// First thing in a context's entry function (its first run begins there, not in switch_context).
inline void sanitizer_fiber_entered() {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

enum class ContextEnd : uint8_t { kResumes, kEnds };  // kEnds: the saved context never runs again

// Saves the current context (whose fiber is save_fiber) into *save and runs the one at load
// (whose fiber is load_fiber); returns when some context switches back to the saved one.
inline void switch_context(void** save, [[maybe_unused]] void* save_fiber, void* load,
                           [[maybe_unused]] void* load_fiber,
                           [[maybe_unused]] ContextEnd end = ContextEnd::kResumes) {
#if defined(__SANITIZE_THREAD__)
  __tsan_switch_to_fiber(load_fiber, 0);
#elif defined(__SANITIZE_ADDRESS__)
  auto* from = static_cast<SanitizerStack*>(save_fiber);
  auto* to = static_cast<SanitizerStack*>(load_fiber);
  __sanitizer_start_switch_fiber(end == ContextEnd::kEnds ? nullptr : &from->fake_stack, to->lowest,
                                 to->bytes);
#endif
  usgc_context_switch(save, load);
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(from->fake_stack, nullptr, nullptr);
#endif
}

// Returns the initial stack pointer of a context that runs entry(argument) on the stack whose
// highest address is stack_top (16-byte aligned).
void* context_prepare(uint8_t* stack_top, void (*entry)(void*), void* argument);

}  // namespace usgc::runtime
