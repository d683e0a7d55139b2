// tests/safepoint/register_loops.hpp — the register loops of the trampoline test
// (tests/safepoint/trampoline_register_test.cpp), written in assembly in
// tests/safepoint/register_loops_x86_64.cpp, and the functions that clobber every register.
//
// A loop keeps distinct values in rbx, rcx, rdx, rsi, rdi, rbp, r8-r15, in xmm0-15 (SSE loop),
// ymm0-15 (AVX loop) or zmm0-31 and k1-k7 (AVX-512 loop), polls once per iteration with rax as
// the base (the page polled at iteration i is schedule[i]), and mixes the registers
// arithmetically after every poll. It also checks, at every poll, that rax (the page) and DF (set
// before each poll) survived, and at the end that the 112 bytes of its red zone below rsp were
// not written and what MXCSR and the x87 control word hold. A clobber function destroys every
// caller-saved general register, every vector register of its width, the k registers, MXCSR, the
// x87 control word and the arithmetic flags.
// Invariant: RegisterLoopState is shared with the assembly, which addresses it by offset; every
// offset the assembly uses is a static_assert below (change both together).
#pragma once

#include <cstddef>
#include <cstdint>

namespace usgc::safepoint::register_loops {

// Shared with the assembly (register_loops_x86_64.cpp): every offset is checked.
struct alignas(64) RegisterLoopState {
  uint64_t gpr[14];  // rbx rcx rdx rsi rdi rbp r8 r9 r10 r11 r12 r13 r14 r15 (in and out)
  const volatile uint8_t* const* schedule;  // the page polled at each iteration
  uint64_t max_iterations;                  // the schedule's length
  uint64_t iterations;                      // out: iterations run
  uint64_t rax_lost;                        // out: polls after which rax was no longer the page
  uint64_t direction_flag_lost;             // out: polls after which DF was clear
  uint64_t red_zone_damaged;                // out: quadwords of the red zone changed
  uint32_t mxcsr;                           // out
  uint16_t x87_control;                     // out
  uint16_t mask_registers[8];               // k0..k7 (k1..k7 used by the AVX-512 loop, in and out)
  uint64_t stack_offset;    // bytes (a multiple of 8) the loop lowers its stack by first
  uint8_t vectors[32][64];  // register i at [i] (in and out)
};
static_assert(offsetof(RegisterLoopState, gpr) == 0);
static_assert(offsetof(RegisterLoopState, schedule) == 112);
static_assert(offsetof(RegisterLoopState, max_iterations) == 120);
static_assert(offsetof(RegisterLoopState, iterations) == 128);
static_assert(offsetof(RegisterLoopState, rax_lost) == 136);
static_assert(offsetof(RegisterLoopState, direction_flag_lost) == 144);
static_assert(offsetof(RegisterLoopState, red_zone_damaged) == 152);
static_assert(offsetof(RegisterLoopState, mxcsr) == 160);
static_assert(offsetof(RegisterLoopState, x87_control) == 164);
static_assert(offsetof(RegisterLoopState, mask_registers) == 166);
static_assert(offsetof(RegisterLoopState, stack_offset) == 184);
static_assert(offsetof(RegisterLoopState, vectors) == 192);

extern "C" {
void usgc_test_register_loop_sse(RegisterLoopState* state);
void usgc_test_register_loop_avx(RegisterLoopState* state);
void usgc_test_register_loop_avx512(RegisterLoopState* state);
void usgc_test_clobber_sse();
void usgc_test_clobber_avx();
void usgc_test_clobber_avx512();
}

enum class VectorWidth { kSse, kAvx, kAvx512 };

struct LoopKind {
  void (*loop)(RegisterLoopState*);
  size_t vector_registers;
  size_t vector_bytes;
  bool mask_registers;
};

inline LoopKind loop_of(VectorWidth width) {
  switch (width) {
    case VectorWidth::kSse:
      return LoopKind{usgc_test_register_loop_sse, 16, 16, false};
    case VectorWidth::kAvx:
      return LoopKind{usgc_test_register_loop_avx, 16, 32, false};
    case VectorWidth::kAvx512:
      return LoopKind{usgc_test_register_loop_avx512, 32, 64, true};
  }
  return LoopKind{};
}

inline bool cpu_has(VectorWidth width) {
  switch (width) {
    case VectorWidth::kSse:
      return true;
    case VectorWidth::kAvx:
      return __builtin_cpu_supports("avx");
    case VectorWidth::kAvx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
}

}  // namespace usgc::safepoint::register_loops
