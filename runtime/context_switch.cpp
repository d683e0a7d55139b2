// runtime/context_switch.cpp — context_prepare: the first frame usgc_context_switch pops.
#include "runtime/context_switch.hpp"

#include <cstring>
#include <new>

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/thread_control.hpp"

extern "C" void usgc_context_start();

namespace usgc::runtime {

void* context_prepare(uint8_t* stack_top, void (*entry)(void*), void* argument) {
  // After the switch pops 56 bytes of state and returns (8 more), the stack pointer must be
  // 16-byte aligned at usgc_context_start (it calls entry). Leave 16 bytes of zeros on top as
  // the outermost frame's end.
  auto top = reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t{15};
  uintptr_t after_return = top - 16;
  auto* frame = reinterpret_cast<uint64_t*>(after_return - 64);
  std::memset(frame, 0, 64 + 16);
  uint32_t mxcsr = 0x1F80;  // all exceptions masked, round to nearest (the ABI's initial state)
  uint16_t x87_control = 0x037F;
  std::memcpy(reinterpret_cast<uint8_t*>(frame), &mxcsr, sizeof mxcsr);
  std::memcpy(reinterpret_cast<uint8_t*>(frame) + 4, &x87_control, sizeof x87_control);
  frame[1] = 0;                                                // r15
  frame[2] = 0;                                                // r14
  frame[3] = reinterpret_cast<uint64_t>(argument);             // r13
  frame[4] = reinterpret_cast<uint64_t>(entry);                // r12
  frame[5] = 0;                                                // rbx
  frame[6] = 0;                                                // rbp
  frame[7] = reinterpret_cast<uint64_t>(&usgc_context_start);  // return address
  return frame;
}

#if defined(__SANITIZE_ADDRESS__)
// ASan builds only: a context's stack bounds (a few per goroutine record, reused with it).
void* sanitizer_stack_create(const void* lowest, size_t bytes) {
  auto* stack = new (std::nothrow) SanitizerStack{lowest, bytes, nullptr};
  USGC_CHECK(stack != nullptr, "context switch: no memory for the AddressSanitizer stack record");
  return stack;
}

void* sanitizer_stack_of_thread() {
  uintptr_t lowest = 0;
  size_t bytes = 0;
  USGC_CHECK(kernel::current_thread_stack(&lowest, &bytes),
             "context switch: the bounds of this thread's stack are unknown (pthread_getattr_np)");
  return sanitizer_stack_create(reinterpret_cast<const void*>(lowest), bytes);
}

void sanitizer_stack_destroy(void* fiber) {
  delete static_cast<SanitizerStack*>(fiber);
}
#endif

}  // namespace usgc::runtime
