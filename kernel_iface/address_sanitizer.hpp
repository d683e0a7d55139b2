// kernel_iface/address_sanitizer.hpp — telling AddressSanitizer about usgc's own memory.
//
// usgc takes its heaps from the kernel (virtual_memory.hpp), so ASan's shadow memory says nothing
// about their blocks unless usgc tells it. In a build with -fsanitize=address (`make asan`:
// USGC_ASAN is 1) the functions below poison and unpoison ranges of the shadow through
// <sanitizer/asan_interface.h>, as mimalloc's ASan tracking does; in every other build they are
// empty inline functions and UncheckedWord is a plain word: no instruction on any path, hot or
// cold (the fast paths' instruction counts are tested in release builds).
//
// Who poisons what:
//   - the malloc heap (alloc/asan_tracking.hpp): a block handed out is addressable for exactly
//     the bytes asked for, a freed block and never-used blocks are poisoned;
//   - the GC heap (gc/block_sweep.hpp): a slot the sweep freed is poisoned until it is allocated
//     again;
//   - this layer: memory given back to the kernel (unmap, move_mapping's old range) is unpoisoned
//     first, so whatever is mapped there later (by usgc or anyone) starts addressable.
//
// The allocator must still read and write its own links inside poisoned (free) memory: those
// words are UncheckedWord<T>, whose loads and stores are not instrumented (no_sanitize_address on
// out-of-line accessors; GCC and Clang do not inline a function with other sanitizer attributes
// into an instrumented one). Code that reads poisoned memory wholesale (the conservative scan,
// marking) is itself no_sanitize_address (USGC_NO_SANITIZE_ADDRESS).
//
// Reports say "use-after-poison" (ASan's word for user-poisoned shadow; the public interface has
// no way to mark shadow as "heap" or "freed"); kernel_iface has a hook to add what usgc knows of
// the address (set_asan_report_describer).
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define USGC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USGC_ASAN 1
#endif
#endif
#if !defined(USGC_ASAN)
#define USGC_ASAN 0
#endif

#if USGC_ASAN
#include <sanitizer/asan_interface.h>
#define USGC_NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#else
#define USGC_NO_SANITIZE_ADDRESS
#endif

namespace usgc::kernel {

inline constexpr bool kAsanTracking = USGC_ASAN != 0;

// [address, address + bytes) becomes unaddressable (a later access is reported) / addressable.
// ASan's granule is 8 bytes: a range that ends inside a granule leaves its first bytes
// addressable (unpoison) or is rounded to the granule (poison); usgc's blocks start 16-aligned.
inline void asan_poison(const void* address, size_t bytes) {
#if USGC_ASAN
  __asan_poison_memory_region(address, bytes);
#else
  (void)address;
  (void)bytes;
#endif
}

inline void asan_unpoison(const void* address, size_t bytes) {
#if USGC_ASAN
  __asan_unpoison_memory_region(address, bytes);
#else
  (void)address;
  (void)bytes;
#endif
}

// A word the allocator keeps inside memory that may be poisoned (a free block's link and marker,
// an aligned allocation's marker word): loads and stores through it are never reported. The same
// layout as T (standard layout, trivially copyable), so ABI structs keep their offsets.
template <class T>
struct UncheckedWord {
  T value;

  UncheckedWord() = default;
  // Not copyable: a copy of the wrapper would be an instrumented load (read it as a T instead).
  UncheckedWord(const UncheckedWord&) = delete;
  UncheckedWord& operator=(const UncheckedWord&) = delete;
  USGC_NO_SANITIZE_ADDRESS operator T() const { return value; }
  USGC_NO_SANITIZE_ADDRESS UncheckedWord& operator=(T stored) {
    value = stored;
    return *this;
  }
};

// A load or store of a T at `address` that is never reported (for a word that is not a field).
template <class T>
USGC_NO_SANITIZE_ADDRESS inline T unchecked_load(const T* address) {
  return *address;
}
template <class T>
USGC_NO_SANITIZE_ADDRESS inline void unchecked_store(T* address, T value) {
  *address = value;
}

// An ASan report about `address` is about to be printed: a describer prints what usgc knows of it
// (the block, its size class, whether it is free) with print_message. Set once at startup (by
// alloc/asan_tracking.cpp in the asan build); called from ASan's report, never allocates.
using AsanReportDescriber = void (*)(const void* address);
void set_asan_report_describer(AsanReportDescriber describer);

}  // namespace usgc::kernel
