// alloc/wasm32/heap_profile_wasm32.cpp — the heap profile (heap_profile.hpp) on the WebAssembly
// target (wasm32-wasi, built only by tools/build-wasm-runtime.sh): not available.
//
// The profile records the call stack of each sampled allocation by unwinding the native stack
// (libgcc's unwinder, dl_iterate_phdr); wasm code cannot walk its own call stack (the wasm stack
// is the engine's) and has no program headers, so the profile stays off: heap_profile_active()
// is false, no page is cut or sampled, and the functions that run only while it is on
// (heap_profile.cpp: sampling, recording, forgetting a sample) are never reached. Asking for it
// (USGC_PROF=1, USGC_LEAKS=1) says so once, at the first allocation, and the program runs
// unprofiled. Hot path: none.
#include <cerrno>
#include <cstdint>

#include "alloc/heap_profile.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "usgc/usgc.h"

namespace usgc::alloc {

HeapProfileOptions g_heap_profile_options;  // all off, never written

void heap_profile_initialize() {
  using kernel::EnvironmentVariableId;
  if (kernel::read_environment_number(EnvironmentVariableId::kProf, 0) == 1 ||
      kernel::read_environment_number(EnvironmentVariableId::kLeaks, 0) == 1) {
    kernel::print_message(
        "USGC_PROF / USGC_LEAKS: the heap profile is not available on the WebAssembly target "
        "(wasm code cannot unwind its stack); the program runs unprofiled");
  }
}

int64_t heap_profile_next_countdown() {
  return INT64_MAX;
}

// Reached only while the profile is on (sampled pages, cut lists): never here.
void heap_profile_sample(Heap*, void*, size_t) {
  kernel::fatal("usgc (wasm32): heap_profile_sample with the heap profile off");
}
void heap_profile_record(void*, size_t, size_t) {
  kernel::fatal("usgc (wasm32): heap_profile_record with the heap profile off");
}
void heap_profile_forget(const void*) {
  kernel::fatal("usgc (wasm32): heap_profile_forget with the heap profile off");
}
void heap_profile_moved(const void*, const void*, size_t) {
  kernel::fatal("usgc (wasm32): heap_profile_moved with the heap profile off");
}

}  // namespace usgc::alloc

extern "C" int usgc_heap_profile_write(const char*) {
  return ENOTSUP;
}
