// tests/alloc/stack_walk_test.cpp — the heap profile's stack walk (alloc/stack_walk.hpp) against
// libgcc's _Unwind_Backtrace on real stacks, frame by frame: deep recursion in code built without
// frame pointers (this file: -O2, GCC's default -fomit-frame-pointer) through libc's frames (qsort
// calling back into it); a frame whose rule the cache cannot express (a realigned stack) goes to
// the fallback and still matches; a frame in code no object describes (JIT-like code) ends both
// walks at that frame; a made-up stack of random words never makes the walk fault; a second walk
// of the same stack computes no rule again (the cache).
#include <gtest/gtest.h>
#include <pthread.h>
#include <ucontext.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include "alloc/stack_walk.hpp"
#include "kernel_iface/code_memory.hpp"
#include "kernel_iface/mapping_lookup.hpp"
#include "kernel_iface/virtual_memory.hpp"

using namespace usgc::alloc;

namespace {

constexpr uint32_t kMaxFrames = 200;

struct Walks {
  uintptr_t frames[2][kMaxFrames];
  uint32_t depth[2];
  uint32_t max_frames = kMaxFrames;
};

volatile int g_method_count = 2;  // the loop below is not unrolled into two call sites

// Both walks from one call site, so their frames must agree from the first.
[[gnu::noinline]] void capture_both(Walks* walks) {
  for (int i = 0; i < g_method_count; ++i) {
    walks->depth[i] =
        stack_walk_capture(walks->frames[i], walks->max_frames,
                           i == 0 ? StackWalkMethod::kCachedRules : StackWalkMethod::kLibgcc);
  }
  asm volatile("" ::: "memory");
}

void expect_same_walks(const Walks& walks, uint32_t at_least) {
  ASSERT_EQ(walks.depth[0], walks.depth[1]);
  EXPECT_GE(walks.depth[0], at_least);
  for (uint32_t i = 0; i < walks.depth[0]; ++i)
    ASSERT_EQ(walks.frames[0][i], walks.frames[1][i]) << "frame " << i << " of " << walks.depth[0];
}

// ---- deep recursion through qsort's callbacks ----
int recurse(int depth, Walks* walks);

struct QsortContext {
  int depth;
  Walks* walks;
  bool recursed;
};
thread_local QsortContext* t_context = nullptr;

int compare_and_recurse(const void* a, const void* b) {
  QsortContext* context = t_context;
  if (!context->recursed) {
    context->recursed = true;
    QsortContext* saved = t_context;
    int result = recurse(context->depth - 1, context->walks);
    t_context = saved;
    if (result < 0) return 0;
  }
  return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}

[[gnu::noinline]] int recurse(int depth, Walks* walks) {
  if (depth == 0) {
    capture_both(walks);
    return 1;
  }
  if (depth % 3 == 0) {  // every third level through libc's qsort
    int values[4] = {depth, 3, 1, 2};
    QsortContext context{depth, walks, false};
    t_context = &context;
    std::qsort(values, 4, sizeof(int), compare_and_recurse);
    return values[0] + 1;
  }
  volatile int keep = depth;  // not a tail call: work after the recursion
  int result = recurse(depth - 1, walks);
  return result + keep;
}

TEST(StackWalk, DeepRecursionThroughLibcMatchesLibgccFrameByFrame) {
  StackWalkCounters before = stack_walk_counters();
  for (int depth : {1, 10, 45, 120}) {
    Walks walks{};
    recurse(depth, &walks);
    SCOPED_TRACE(depth);
    expect_same_walks(walks, static_cast<uint32_t>(depth));
  }
  StackWalkCounters after = stack_walk_counters();
  EXPECT_EQ(after.walks, before.walks + 4);
  EXPECT_EQ(after.fallbacks, before.fallbacks) << "every frame's rule was cached-expressible";
  EXPECT_EQ(after.ended_early, before.ended_early);
}

TEST(StackWalk, AnotherThreadsStackIsLookedUpOnceAndMatchesLibgcc) {
  std::thread([] {
    StackWalkCounters before = stack_walk_counters();
    for (int depth : {20, 50}) {
      Walks walks{};
      recurse(depth, &walks);
      SCOPED_TRACE(depth);
      expect_same_walks(walks, static_cast<uint32_t>(depth));
    }
    StackWalkCounters after = stack_walk_counters();
    EXPECT_EQ(after.stack_lookups, before.stack_lookups + 1) << "the thread's own stack, cached";
    EXPECT_EQ(after.fallbacks, before.fallbacks);
  }).join();
}

// A coroutine's stack (makecontext): not the thread's own, so its mapping is looked up for each
// walk and not kept; the walk still matches libgcc's.
ucontext_t g_main_context;
ucontext_t g_coroutine_context;
Walks g_coroutine_walks;

void coroutine_body() {
  recurse(12, &g_coroutine_walks);
}

TEST(StackWalk, CoroutineStackIsLookedUpForEachWalk) {
  size_t bytes = 256 << 10;
  usgc::kernel::Result<void*> stack =
      usgc::kernel::map_aligned(bytes, usgc::kernel::os_page_size());
  ASSERT_TRUE(stack.ok()) << stack.error();
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(getcontext(&g_coroutine_context), 0);
    g_coroutine_context.uc_stack.ss_sp = stack.value();
    g_coroutine_context.uc_stack.ss_size = bytes;
    g_coroutine_context.uc_link = &g_main_context;
    makecontext(&g_coroutine_context, coroutine_body, 0);
    g_coroutine_walks = Walks{};
    StackWalkCounters before = stack_walk_counters();
    ASSERT_EQ(swapcontext(&g_main_context, &g_coroutine_context), 0);
    StackWalkCounters after = stack_walk_counters();
    EXPECT_EQ(after.stack_lookups, before.stack_lookups + 1);
    expect_same_walks(g_coroutine_walks, 12);
  }
  ASSERT_TRUE(usgc::kernel::unmap(stack.value(), bytes).ok());
}

TEST(StackWalk, CapsAtMaxFramesLikeLibgcc) {
  Walks walks{};
  walks.max_frames = 32;  // the heap profile's cap
  recurse(60, &walks);
  expect_same_walks(walks, 32);
  EXPECT_EQ(walks.depth[0], 32u);
}

TEST(StackWalk, SecondWalkOfTheSameStackComputesNoRule) {
  Walks walks{};
  StackWalkCounters before{};
  for (int i = 0; i < g_method_count; ++i) {  // the same call site twice
    before = stack_walk_counters();
    recurse(30, &walks);
  }
  StackWalkCounters after = stack_walk_counters();
  EXPECT_EQ(after.walks, before.walks + 1);
  // The cache is direct-mapped: two of the walk's return addresses that hash to one entry (with
  // address-space randomization this happens in a rare run) evict each other on every walk. A walk
  // that computed its rules again would miss on each of its 30-odd frames.
  EXPECT_LE(after.rule_misses - before.rule_misses, 2u) << "the rules were not kept in the cache";
  EXPECT_EQ(after.fallbacks, before.fallbacks);
  expect_same_walks(walks, 30);
}

// ---- frames the cache cannot express: hand-written functions whose CFI defines the CFA from
// rbx (as stack-realigning prologues do from r10), and by a DWARF expression. Each calls
// fn(argument) (rdi, rsi). ----
extern "C" void stack_walk_test_cfa_in_rbx(void (*fn)(Walks*), Walks* walks);
extern "C" void stack_walk_test_cfa_expression(void (*fn)(Walks*), Walks* walks);
asm(R"(
    .text
    .p2align 4
    .type stack_walk_test_cfa_in_rbx, @function
stack_walk_test_cfa_in_rbx:
    .cfi_startproc
    push %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_offset rbx, -16
    mov %rsp, %rbx
    .cfi_def_cfa_register rbx
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    mov %rbx, %rsp
    .cfi_def_cfa_register rsp
    pop %rbx
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size stack_walk_test_cfa_in_rbx, .-stack_walk_test_cfa_in_rbx

    .p2align 4
    .type stack_walk_test_cfa_expression, @function
stack_walk_test_cfa_expression:
    .cfi_startproc
    push %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_offset rbx, -16
    /* DW_CFA_def_cfa_expression, 2 bytes: DW_OP_breg7 (rsp) 16 */
    .cfi_escape 0x0f, 0x02, 0x77, 0x10
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    pop %rbx
    .cfi_def_cfa rsp, 8
    ret
    .cfi_endproc
    .size stack_walk_test_cfa_expression, .-stack_walk_test_cfa_expression
)");

void capture_through(Walks* walks) {
  recurse(4, walks);
}

TEST(StackWalk, FrameWhoseCfaIsNotRspOrRbpBasedFallsBackToLibgcc) {
  for (auto* frame : {stack_walk_test_cfa_in_rbx, stack_walk_test_cfa_expression}) {
    Walks walks{};
    StackWalkCounters before = stack_walk_counters();
    frame(capture_through, &walks);
    StackWalkCounters after = stack_walk_counters();
    EXPECT_EQ(after.fallbacks, before.fallbacks + 1) << "the frame went to libgcc";
    expect_same_walks(walks, 7);
    // The hand-written frame is in the stack (its call's address), and frames beyond it too.
    auto start = reinterpret_cast<uintptr_t>(frame);
    bool found = false;
    for (uint32_t i = 0; i + 1 < walks.depth[0]; ++i)
      found = found || (walks.frames[0][i] > start && walks.frames[0][i] < start + 32);
    EXPECT_TRUE(found);
  }
}

// ---- code that no loaded object describes (as JIT-compiled code): both walks stop there ----
void capture_from_jit(Walks* walks) {
  capture_both(walks);
}

TEST(StackWalk, FrameInCodeWithoutUnwindInfoEndsTheWalkCleanly) {
  // sub $8,%rsp; mov %rsi,%rax; mov %rsi... : calls the function in rdi with the argument in rsi.
  static const uint8_t kCode[] = {
      0x48, 0x83, 0xec, 0x08,  // sub $8, %rsp   (keeps the call 16-byte aligned)
      0x48, 0x89, 0xf8,        // mov %rdi, %rax
      0x48, 0x89, 0xf7,        // mov %rsi, %rdi
      0xff, 0xd0,              // call *%rax
      0x48, 0x83, 0xc4, 0x08,  // add $8, %rsp
      0xc3,                    // ret
  };
  size_t page = usgc::kernel::os_page_size();
  usgc::kernel::Result<void*> code = usgc::kernel::map_code_writable(page);
  ASSERT_TRUE(code.ok()) << code.error();
  std::memcpy(code.value(), kCode, sizeof(kCode));
  ASSERT_TRUE(usgc::kernel::seal_code_executable(code.value(), page).ok());
  auto* jit = reinterpret_cast<void (*)(void (*)(Walks*), Walks*)>(code.value());
  Walks walks{};
  StackWalkCounters before = stack_walk_counters();
  jit(capture_from_jit, &walks);
  StackWalkCounters after = stack_walk_counters();
  expect_same_walks(walks, 2);
  uintptr_t last = walks.frames[0][walks.depth[0] - 1];
  auto start = reinterpret_cast<uintptr_t>(code.value());
  EXPECT_EQ(last, start + 12 - 1) << "the last frame is the call in the JIT code";
  EXPECT_EQ(after.ended_early, before.ended_early + 1);
  EXPECT_EQ(after.fallbacks, before.fallbacks);
  ASSERT_TRUE(usgc::kernel::unmap_code(code.value(), page).ok());
}

// ---- code inside an object but without CFI (as the loader's _dl_start_user): libgcc ends the
// walk there (it is no signal trampoline); so does this one, without falling back ----
extern "C" void stack_walk_test_without_cfi(void (*fn)(Walks*), Walks* walks);
asm(R"(
    .text
    .p2align 4
    .type stack_walk_test_without_cfi, @function
stack_walk_test_without_cfi:
    sub $8, %rsp
    mov %rdi, %rax
    mov %rsi, %rdi
    call *%rax
    add $8, %rsp
    ret
    .size stack_walk_test_without_cfi, .-stack_walk_test_without_cfi
)");

TEST(StackWalk, FrameWithoutCfiInAnObjectEndsTheWalkLikeLibgcc) {
  Walks walks{};
  StackWalkCounters before = stack_walk_counters();
  stack_walk_test_without_cfi(capture_from_jit, &walks);
  StackWalkCounters after = stack_walk_counters();
  expect_same_walks(walks, 2);
  uintptr_t last = walks.frames[0][walks.depth[0] - 1];
  auto start = reinterpret_cast<uintptr_t>(&stack_walk_test_without_cfi);
  EXPECT_TRUE(last > start && last < start + 16) << "the last frame is the call without CFI";
  EXPECT_EQ(after.fallbacks, before.fallbacks);
}

// ---- made-up stacks ----
[[gnu::noinline]] int leaf_function(int x) {
  return x * 3 + 1;
}

TEST(StackWalk, StackOfRandomWordsNeverFaults) {
  // The first frame is leaf_function at its entry (CFA = rsp + 8); every return address and
  // saved rbp after that is read from the made-up stack: pointers into it, into code, random.
  constexpr size_t kWords = 512;
  static uintptr_t stack[kWords];
  auto low = reinterpret_cast<uintptr_t>(&stack[0]);
  auto high = reinterpret_cast<uintptr_t>(&stack[kWords]);
  uintptr_t code_points[] = {
      reinterpret_cast<uintptr_t>(&leaf_function), reinterpret_cast<uintptr_t>(&recurse),
      reinterpret_cast<uintptr_t>(&std::qsort), reinterpret_cast<uintptr_t>(&std::memcpy)};
  uint64_t seed = 0x5eed5eedull;
  std::mt19937_64 random(seed);
  uintptr_t frames[64];
  for (int trial = 0; trial < 2000; ++trial) {
    for (uintptr_t& word : stack) {
      switch (random() % 4) {
        case 0:
          word = low + (random() % (kWords + 64)) * 8;
          break;
        case 1:
          word = code_points[random() % 4] + random() % 256;
          break;
        case 2:
          word = random();
          break;
        default:
          word = random() % 4096;
          break;
      }
    }
    StackWalkRegisters registers{reinterpret_cast<uintptr_t>(&leaf_function),
                                 low + (random() % kWords) * 8, stack[random() % kWords]};
    StackWalkEnd end;
    uint32_t depth = stack_walk_from(registers, low, high, frames, 64, &end);
    ASSERT_LE(depth, 64u) << "seed " << seed << " trial " << trial;
    ASSERT_GE(depth, 1u) << "seed " << seed << " trial " << trial;
  }
}

TEST(StackWalk, ReturnAddressOutsideTheStackEndsTheWalk) {
  alignas(16) static uintptr_t stack[4];
  auto low = reinterpret_cast<uintptr_t>(&stack[0]);
  uintptr_t frames[8];
  StackWalkEnd end;
  // At leaf_function's entry the return address is at rsp: with rsp at the last word, it is
  // read; one word higher the CFA is beyond the top.
  stack[3] = 0x10;  // a pc in no object: recorded, and the walk ends there
  StackWalkRegisters inside{reinterpret_cast<uintptr_t>(&leaf_function), low + 24, 0};
  uint32_t depth = stack_walk_from(inside, low, low + 32, frames, 8, &end);
  ASSERT_EQ(depth, 2u);
  EXPECT_EQ(frames[0], reinterpret_cast<uintptr_t>(&leaf_function) - 1);
  EXPECT_EQ(frames[1], 0x10u - 1);
  EXPECT_EQ(end, StackWalkEnd::kNoObject);
  StackWalkRegisters beyond{reinterpret_cast<uintptr_t>(&leaf_function), low + 24, 0};
  depth = stack_walk_from(beyond, low, low + 28, frames, 8, &end);
  EXPECT_EQ(depth, 1u);
  EXPECT_EQ(end, StackWalkEnd::kOutOfBounds);
}

TEST(MappingLookup, FindsTheStackMappingOfALocal) {
  int local = 0;
  auto address = reinterpret_cast<uintptr_t>(&local);
  usgc::kernel::Result<usgc::kernel::MappingRange> mapping =
      usgc::kernel::find_mapping_containing(address);
  ASSERT_TRUE(mapping.ok()) << mapping.error();
  EXPECT_LE(mapping.value().start, address);
  EXPECT_GT(mapping.value().end, address);
  EXPECT_TRUE(mapping.value().readable);
  EXPECT_TRUE(mapping.value().process_stack) << "gtest runs this on the main thread";
  EXPECT_EQ(usgc::kernel::find_mapping_containing(16).error(), ENOENT);
  // Another thread's stack: an anonymous mapping that also holds its thread descriptor.
  std::thread([] {
    int other = 0;
    usgc::kernel::Result<usgc::kernel::MappingRange> range =
        usgc::kernel::find_mapping_containing(reinterpret_cast<uintptr_t>(&other));
    ASSERT_TRUE(range.ok()) << range.error();
    EXPECT_FALSE(range.value().process_stack);
    auto descriptor = reinterpret_cast<uintptr_t>(pthread_self());
    EXPECT_TRUE(descriptor >= range.value().start && descriptor < range.value().end);
  }).join();
}

}  // namespace
