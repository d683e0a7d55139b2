// tests/preload/operator_new_test.cpp — every C++ operator new/delete under LD_PRELOAD.
//
// libusgc_preload.so replaces all replaceable global allocation functions ([new.delete]): plain,
// array, nothrow, sized delete, aligned (std::align_val_t), aligned nothrow, aligned sized. These
// tests call each form explicitly (so the compiler cannot elide the pair) and check the standard's
// and libstdc++'s behaviour: a usable, suitably aligned block; std::bad_alloc from the throwing
// forms and nullptr from the nothrow forms when memory cannot be had; the new_handler is called
// before throwing. All of them pass on glibc/libstdc++ without the preload as well.
#include <malloc.h>
#include <string.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <set>
#include <vector>
#include "tests/support/memory_patterns.hpp"

// The sized forms are declared by <new> only with -fsized-deallocation (g++'s default in C++14
// and later, not clang 14's); they are defined by libstdc++ and replaced by the preload library.
#if !defined(__cpp_sized_deallocation)
void operator delete(void* pointer, std::size_t size) noexcept;
void operator delete[](void* pointer, std::size_t size) noexcept;
void operator delete(void* pointer, std::size_t size, std::align_val_t alignment) noexcept;
void operator delete[](void* pointer, std::size_t size, std::align_val_t alignment) noexcept;
#endif

namespace {

using usgc_test::is_aligned;

inline void escape(void* pointer) {
  asm volatile("" : : "g"(pointer) : "memory");
}

volatile size_t g_absurd_size = size_t{1} << 62;

// Writes the whole block and reads it back: proves the block is at least `size` bytes.
bool write_and_verify(void* pointer, size_t size, unsigned char value) {
  memset(pointer, value, size);
  escape(pointer);
  const auto* p = static_cast<const unsigned char*>(pointer);
  for (size_t i = 0; i < size; ++i)
    if (p[i] != value) return false;
  return true;
}

const size_t kSizes[] = {
    0, 1, 8, 16, 24, 100, 1000, 4096, 20000, 200000, size_t{2} << 20, size_t{9} << 20};

struct alignas(64) CacheLineObject {
  unsigned char bytes[64];
};
struct alignas(4096) PageObject {
  unsigned char bytes[100];
};

}  // namespace

TEST(PreloadOperatorNew, PlainNewAndDeleteGiveAlignedUsableBlocks) {
  for (size_t size : kSizes) {
    void* p = ::operator new(size);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, __STDCPP_DEFAULT_NEW_ALIGNMENT__)) << "size " << size;
    EXPECT_TRUE(write_and_verify(p, size, 0x21)) << "size " << size;
    ::operator delete(p);
  }
}

TEST(PreloadOperatorNew, ZeroSizeNewReturnsUniquePointers) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    void* p = ::operator new(0);
    EXPECT_TRUE(seen.insert(p).second);
    blocks.push_back(p);
  }
  for (void* p : blocks) ::operator delete(p);
}

TEST(PreloadOperatorNew, ArrayNewAndDeleteGiveAlignedUsableBlocks) {
  for (size_t size : kSizes) {
    void* p = ::operator new[](size);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, __STDCPP_DEFAULT_NEW_ALIGNMENT__));
    EXPECT_TRUE(write_and_verify(p, size, 0x22)) << "size " << size;
    ::operator delete[](p);
  }
  auto* numbers = new long[1000];
  for (int i = 0; i < 1000; ++i) numbers[i] = i;
  escape(numbers);
  long sum = 0;
  for (int i = 0; i < 1000; ++i) sum += numbers[i];
  EXPECT_EQ(sum, 999L * 1000 / 2);
  delete[] numbers;
}

TEST(PreloadOperatorNew, NothrowNewAndDeleteGiveUsableBlocks) {
  for (size_t size : kSizes) {
    void* p = ::operator new(size, std::nothrow);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(write_and_verify(p, size, 0x23));
    ::operator delete(p, std::nothrow);
    void* a = ::operator new[](size, std::nothrow);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(write_and_verify(a, size, 0x24));
    ::operator delete[](a, std::nothrow);
  }
}

TEST(PreloadOperatorNew, SizedDeleteAcceptsTheAllocatedSize) {
  for (size_t size : kSizes) {
    void* p = ::operator new(size);
    EXPECT_TRUE(write_and_verify(p, size, 0x25));
    ::operator delete(p, size);
    void* a = ::operator new[](size);
    EXPECT_TRUE(write_and_verify(a, size, 0x26));
    ::operator delete[](a, size);
  }
}

TEST(PreloadOperatorNew, AlignedNewHonours64And4096AndLargerAlignments) {
  for (size_t alignment :
       {size_t{32}, size_t{64}, size_t{256}, size_t{4096}, size_t{65536}, size_t{1} << 21}) {
    for (size_t size : kSizes) {
      const std::align_val_t align{alignment};
      void* p = ::operator new(size, align);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, alignment)) << "alignment " << alignment << " size " << size;
      EXPECT_TRUE(write_and_verify(p, size, 0x27));
      ::operator delete(p, align);
      void* a = ::operator new[](size, align);
      ASSERT_NE(a, nullptr);
      EXPECT_TRUE(is_aligned(a, alignment)) << "alignment " << alignment << " size " << size;
      EXPECT_TRUE(write_and_verify(a, size, 0x28));
      ::operator delete[](a, align);
    }
  }
}

TEST(PreloadOperatorNew, AlignedNothrowNewAndDeleteHonourAlignment) {
  for (size_t alignment : {size_t{64}, size_t{4096}}) {
    for (size_t size : kSizes) {
      const std::align_val_t align{alignment};
      void* p = ::operator new(size, align, std::nothrow);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, alignment));
      EXPECT_TRUE(write_and_verify(p, size, 0x29));
      ::operator delete(p, align, std::nothrow);
      void* a = ::operator new[](size, align, std::nothrow);
      ASSERT_NE(a, nullptr);
      EXPECT_TRUE(is_aligned(a, alignment));
      EXPECT_TRUE(write_and_verify(a, size, 0x2A));
      ::operator delete[](a, align, std::nothrow);
    }
  }
}

TEST(PreloadOperatorNew, AlignedSizedDeleteAcceptsSizeAndAlignment) {
  for (size_t alignment : {size_t{64}, size_t{4096}}) {
    for (size_t size : kSizes) {
      const std::align_val_t align{alignment};
      void* p = ::operator new(size, align);
      EXPECT_TRUE(write_and_verify(p, size, 0x2B));
      ::operator delete(p, size, align);
      void* a = ::operator new[](size, align);
      EXPECT_TRUE(write_and_verify(a, size, 0x2C));
      ::operator delete[](a, size, align);
    }
  }
}

TEST(PreloadOperatorNew, OverAlignedTypesUseAlignedNew) {
  std::vector<std::unique_ptr<CacheLineObject>> lines;
  for (int i = 0; i < 200; ++i) {
    lines.push_back(std::make_unique<CacheLineObject>());
    EXPECT_TRUE(is_aligned(lines.back().get(), 64));
  }
  auto* pages = new PageObject[7];
  EXPECT_TRUE(is_aligned(pages, 4096));
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(is_aligned(&pages[i], 4096));
  delete[] pages;
  std::vector<CacheLineObject> vector(1000);
  EXPECT_TRUE(is_aligned(vector.data(), 64));
}

TEST(PreloadOperatorNew, ThrowingNewOfAbsurdSizeThrowsBadAlloc) {
  EXPECT_THROW(escape(::operator new(g_absurd_size)), std::bad_alloc);
  EXPECT_THROW(escape(::operator new[](g_absurd_size)), std::bad_alloc);
  EXPECT_THROW(escape(::operator new (g_absurd_size, std::align_val_t{64})), std::bad_alloc);
  EXPECT_THROW(escape(::operator new[](g_absurd_size, std::align_val_t{4096})), std::bad_alloc);
  void* p = ::operator new(64);  // still works
  ::operator delete(p);
}

TEST(PreloadOperatorNew, NothrowNewOfAbsurdSizeReturnsNullptr) {
  EXPECT_EQ(::operator new(g_absurd_size, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](g_absurd_size, std::nothrow), nullptr);
  EXPECT_EQ(::operator new (g_absurd_size, std::align_val_t{64}, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](g_absurd_size, std::align_val_t{4096}, std::nothrow), nullptr);
}

namespace {
int g_new_handler_calls = 0;
void counting_new_handler() {
  ++g_new_handler_calls;
  std::set_new_handler(nullptr);  // the next failure throws
}
}  // namespace

TEST(PreloadOperatorNew, FailingNewCallsTheNewHandlerBeforeThrowing) {
  g_new_handler_calls = 0;
  std::set_new_handler(counting_new_handler);
  EXPECT_THROW(escape(::operator new(g_absurd_size)), std::bad_alloc);
  EXPECT_EQ(g_new_handler_calls, 1);
  std::set_new_handler(nullptr);
}
