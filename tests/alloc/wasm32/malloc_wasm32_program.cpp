// tests/alloc/wasm32/malloc_wasm32_program.cpp — usgc's malloc built for wasm32-wasi, exercised
// from the public header only (include/usgc/usgc.h) as an embedder's WebAssembly program would,
// run in node by tests/alloc/wasm32_malloc.test.sh.
//
// With no argument it runs every check and prints `ok: N checks`, or the first failing check
// (exit 1): many sizes (small, medium, large, huge) written and read back while others are
// freed, calloc's zeroes (also of reused memory), realloc growing and shrinking in place and by
// moving, posix_memalign and aligned_alloc at every alignment up to 4 MiB, the usable size,
// the errors (overflow, too large, a bad alignment) with their errno, the C library's malloc
// being usgc's (one allocator for the module), trim, and that memory is reused: many rounds of
// allocating and freeing the same amounts leave linear memory (memory.grow) where one round did.
// With `double-free` or `bad-pointer` it makes that mistake; the test checks the message.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usgc/usgc.h"

namespace {

int g_checks = 0;

void check(bool condition, const char* what, long long value = 0) {
  ++g_checks;
  if (!condition) {
    printf("FAILED: %s (value %lld)\n", what, value);
    exit(1);
  }
}

// A byte pattern that depends on the block and the offset, so blocks that overlap show.
unsigned char pattern(uintptr_t seed, size_t offset) {
  return static_cast<unsigned char>((seed * 131 + offset * 7 + (offset >> 8)) & 0xff);
}

void fill(void* pointer, size_t bytes, uintptr_t seed) {
  auto* p = static_cast<unsigned char*>(pointer);
  for (size_t i = 0; i < bytes; ++i) p[i] = pattern(seed, i);
}

bool holds(const void* pointer, size_t bytes, uintptr_t seed) {
  const auto* p = static_cast<const unsigned char*>(pointer);
  for (size_t i = 0; i < bytes; ++i)
    if (p[i] != pattern(seed, i)) return false;
  return true;
}

size_t memory_bytes() {
  return __builtin_wasm_memory_size(0) * size_t{65536};
}

// Sizes across every kind: each small class boundary region, medium, large, huge.
size_t size_at(uint32_t i) {
  static const size_t kSizes[] = {0,     1,     8,      15,     16,     17,     24,      100,
                                  255,   256,   1000,   1024,   1025,   4000,   8192,    8193,
                                  12000, 65536, 100000, 131072, 131073, 300000, 1 << 20, 5 << 20};
  return kSizes[i % (sizeof(kSizes) / sizeof(kSizes[0]))];
}

void check_sizes() {
  constexpr uint32_t kLive = 240;
  void* live[kLive];
  size_t sizes[kLive];
  for (uint32_t i = 0; i < kLive; ++i) {
    sizes[i] = size_at(i);
    live[i] = usgc_malloc(sizes[i]);
    check(live[i] != nullptr, "malloc of each size", static_cast<long long>(sizes[i]));
    check(reinterpret_cast<uintptr_t>(live[i]) % 16 == 0, "malloc: 16-byte alignment",
          static_cast<long long>(sizes[i]));
    check(usgc_malloc_usable_size(live[i]) >= sizes[i], "usable size >= size",
          static_cast<long long>(sizes[i]));
    fill(live[i], sizes[i], i);
  }
  // Free every third, allocate them again with other sizes, then read everything back.
  for (uint32_t i = 0; i < kLive; i += 3) usgc_free(live[i]);
  for (uint32_t i = 0; i < kLive; i += 3) {
    sizes[i] = size_at(i + 7);
    live[i] = usgc_malloc(sizes[i]);
    check(live[i] != nullptr, "malloc after frees", static_cast<long long>(sizes[i]));
    fill(live[i], sizes[i], i + 1000);
  }
  for (uint32_t i = 0; i < kLive; ++i)
    check(holds(live[i], sizes[i], i % 3 == 0 ? i + 1000 : i), "contents kept",
          static_cast<long long>(i));
  for (uint32_t i = 0; i < kLive; ++i) usgc_free(live[i]);
}

void check_calloc() {
  for (uint32_t round = 0; round < 2; ++round) {
    for (uint32_t i = 0; i < 24; ++i) {
      size_t bytes = size_at(i);
      // Dirty memory of that size first, so calloc must clear reused blocks.
      void* dirty = usgc_malloc(bytes);
      memset(dirty, 0xa5, bytes);
      usgc_free(dirty);
      auto* zero = static_cast<unsigned char*>(usgc_calloc(1, bytes));
      check(zero != nullptr, "calloc", static_cast<long long>(bytes));
      bool all_zero = true;
      for (size_t b = 0; b < bytes; ++b) all_zero = all_zero && zero[b] == 0;
      check(all_zero, "calloc returns zeroes (reused memory too)", static_cast<long long>(bytes));
      usgc_free(zero);
    }
  }
  errno = 0;
  check(usgc_calloc(SIZE_MAX / 2, 3) == nullptr && errno == ENOMEM, "calloc overflow: ENOMEM",
        errno);
}

void check_realloc() {
  void* p = usgc_realloc(nullptr, 10);
  check(p != nullptr, "realloc(NULL, n) allocates");
  fill(p, 10, 1);
  size_t previous = 10;
  static const size_t kSteps[] = {24,      200,    5000, 9000, 70000, 200000, 2 << 20,
                                  6 << 20, 300000, 4000, 40,   16,    1};
  for (size_t bytes : kSteps) {
    p = usgc_realloc(p, bytes);
    check(p != nullptr, "realloc to each size", static_cast<long long>(bytes));
    size_t kept = previous < bytes ? previous : bytes;
    check(holds(p, kept, 1), "realloc keeps the contents", static_cast<long long>(bytes));
    fill(p, bytes, 1);
    previous = bytes;
  }
  check(usgc_realloc(p, 0) == nullptr, "realloc(p, 0) frees");
  errno = 0;
  void* q = usgc_malloc(64);
  check(usgc_reallocarray(q, SIZE_MAX / 4, 8) == nullptr && errno == ENOMEM,
        "reallocarray overflow: ENOMEM, the block kept", errno);
  usgc_free(q);
}

void check_alignment() {
  for (size_t alignment = sizeof(void*); alignment <= (size_t{4} << 20); alignment *= 2) {
    static const size_t kBytes[] = {1, 100, 5000, 200000};
    for (size_t bytes : kBytes) {
      void* p = nullptr;
      int result = usgc_posix_memalign(&p, alignment, bytes);
      check(result == 0 && p != nullptr, "posix_memalign", static_cast<long long>(alignment));
      check(reinterpret_cast<uintptr_t>(p) % alignment == 0, "posix_memalign is aligned",
            static_cast<long long>(alignment));
      fill(p, bytes, alignment);
      void* q = usgc_aligned_alloc(alignment, bytes);
      check(q != nullptr && reinterpret_cast<uintptr_t>(q) % alignment == 0,
            "aligned_alloc is aligned", static_cast<long long>(alignment));
      check(holds(p, bytes, alignment), "aligned block kept", static_cast<long long>(alignment));
      usgc_free(q);
      usgc_free(p);
    }
  }
  void* p = nullptr;
  check(usgc_posix_memalign(&p, 24, 10) == EINVAL, "posix_memalign(24): EINVAL");
  check(usgc_posix_memalign(&p, 2, 10) == EINVAL, "posix_memalign(2): EINVAL");
}

void check_limits() {
  errno = 0;
  check(usgc_malloc(SIZE_MAX - 64) == nullptr && errno == ENOMEM, "malloc(SIZE_MAX - 64): ENOMEM",
        errno);
  errno = 0;
  check(usgc_malloc(size_t{3} << 30) == nullptr && errno == ENOMEM, "malloc(3 GiB): ENOMEM", errno);
  check(usgc_malloc_usable_size(nullptr) == 0, "usable size of NULL");
  usgc_free(nullptr);
}

// The C library's allocator is usgc's: a block from malloc is one usgc knows and frees.
void check_libc_is_usgc() {
  void* p = malloc(40);
  check(p != nullptr && usgc_malloc_usable_size(p) == malloc_usable_size(p),
        "libc malloc's block has usgc's usable size");
  usgc_free(p);
  void* q = usgc_malloc(40);
  free(q);
  char* text = strdup("usgc on wasm32");
  check(text != nullptr && strcmp(text, "usgc on wasm32") == 0, "strdup through usgc");
  usgc_free(text);
}

// Memory is reused: the same work again and again grows linear memory no further than once.
void check_reuse() {
  auto round = [] {
    void* blocks[64];
    for (uint32_t i = 0; i < 64; ++i) {
      blocks[i] = usgc_malloc(size_at(i));
      fill(blocks[i], size_at(i), i);
    }
    for (uint32_t i = 0; i < 64; ++i) usgc_free(blocks[i]);
  };
  round();
  round();
  size_t after_two = memory_bytes();
  for (int i = 0; i < 40; ++i) round();
  check(memory_bytes() == after_two, "40 more rounds grow memory no further",
        static_cast<long long>(memory_bytes() - after_two));
  check(usgc_malloc_trim(0) >= 0, "trim");
  round();
  check(memory_bytes() == after_two, "a round after trim reuses the memory",
        static_cast<long long>(memory_bytes() - after_two));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "double-free") == 0) {
    void* p = usgc_malloc(48);
    usgc_free(p);
    usgc_free(p);
    printf("not stopped\n");
    return 0;
  }
  if (argc > 1 && strcmp(argv[1], "bad-pointer") == 0) {
    auto* p = static_cast<char*>(usgc_malloc(4000));
    usgc_free(p + 48);  // the owner's fast path checks it when the free list is next walked:
    (void)usgc_malloc_trim(0);  // trim walks it
    printf("not stopped\n");
    return 0;
  }
  check_sizes();
  check_calloc();
  check_realloc();
  check_alignment();
  check_limits();
  check_libc_is_usgc();
  check_reuse();
  printf("ok: %d checks\n", g_checks);
  return 0;
}
