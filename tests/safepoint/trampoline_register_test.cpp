// tests/safepoint/trampoline_register_test.cpp — the trampoline restores every register.
//
// A loop written in assembly (below) keeps distinct values in rbx, rcx, rdx, rsi, rdi, rbp,
// r8-r15, in xmm0-15 (SSE loop), ymm0-15 (AVX loop) or zmm0-31 and k1-k7 (AVX-512 loop), polls
// once per iteration with rax as the base, and mixes the registers arithmetically after every
// poll. It also checks, at every poll, that rax (the page) and DF (set before each poll)
// survived, and at the end that the 112 bytes of its red zone below rsp were not written and what
// MXCSR and the x87 control word hold. The slow path deliberately clobbers every caller-saved
// general register, every vector register the CPU has, the k registers, MXCSR, the x87 control
// word and the arithmetic flags.
// The page polled at iteration i is schedule[i]: a seeded random mix of the always-readable page
// and two unreadable ones (the armed global page and a slot's bad page), so about half of the
// 6000 iterations are safepoints, in runs and gaps of every length, with no timing involved. A
// second run of the same loop with every entry readable gives the reference; final values must
// be equal, and the slow path must have run once per unreadable entry. Each variant repeats this
// at the 8 stack pointers an 8-byte-aligned loop can have modulo 64.
// Variants: with and without an alternate signal stack on the loop thread (the two hand-overs of
// fault_handler.cpp), XSAVE and the FXSAVE fallback; and one run that must differ: the AVX loop
// under FXSAVE, whose upper ymm halves are not saved — proof the comparison sees a lost register.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "kernel_iface/signals.hpp"
#include "safepoint/fault_handler.hpp"
#include "safepoint/poll_page.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"

namespace usgc::safepoint {
namespace {

// Shared with the assembly below: every offset is checked.
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

// clang-format off
__asm__(R"(
	.text
# ---- the loop, in pieces: rdi = state on entry; frame: 0 state, 8 iterations, 16 rax_lost,
#      24 direction_flag_lost, 32 this iteration's page, 40 schedule cursor, 48 rsp before the
#      stack offset; red zone pattern at -128..-24(%rsp) (pushfq uses -8)
.macro RL_PROLOGUE
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rax
	sub 184(%rdi), %rsp
	sub $56, %rsp
	mov %rax, 48(%rsp)
	mov %rdi, 0(%rsp)
	movq $0, 8(%rsp)
	movq $0, 16(%rsp)
	movq $0, 24(%rsp)
	movq $0, 32(%rsp)
	mov 112(%rdi), %rax
	mov %rax, 40(%rsp)
	.set rl_i, 0
	.rept 14
	movq $(0x5a5a0000 + rl_i), (-128 + 8 * rl_i)(%rsp)
	.set rl_i, rl_i + 1
	.endr
.endm

.macro RL_LOAD_GPRS
	mov 0(%rdi), %rbx
	mov 8(%rdi), %rcx
	mov 16(%rdi), %rdx
	mov 24(%rdi), %rsi
	mov 40(%rdi), %rbp
	mov 48(%rdi), %r8
	mov 56(%rdi), %r9
	mov 64(%rdi), %r10
	mov 72(%rdi), %r11
	mov 80(%rdi), %r12
	mov 88(%rdi), %r13
	mov 96(%rdi), %r14
	mov 104(%rdi), %r15
	mov 32(%rdi), %rdi
.endm

.macro RL_MIX_GPRS
	add %rcx, %rbx
	rol $5, %rbx
	add %rdx, %rcx
	rol $7, %rcx
	add %rsi, %rdx
	rol $11, %rdx
	add %rdi, %rsi
	rol $13, %rsi
	add %rbp, %rdi
	rol $17, %rdi
	add %r8, %rbp
	rol $19, %rbp
	add %r9, %r8
	rol $23, %r8
	add %r10, %r9
	rol $29, %r9
	add %r11, %r10
	rol $31, %r10
	add %r12, %r11
	rol $37, %r11
	add %r13, %r12
	rol $41, %r12
	add %r14, %r13
	rol $43, %r13
	add %r15, %r14
	rol $47, %r14
	add %rbx, %r15
	rol $53, %r15
.endm

# The loop proper; \mix mixes the vector registers.
.macro RL_LOOP mix
1:
	mov 0(%rsp), %rax
	mov 120(%rax), %rax
	cmp %rax, 8(%rsp)
	jae 2f
	mov 40(%rsp), %rax
	addq $8, 40(%rsp)
	mov (%rax), %rax
	mov %rax, 32(%rsp)
	std
	testb $0, (%rax)                # the poll
	pushfq
	cld
	testq $0x400, (%rsp)
	jnz 3f
	incq 24+8(%rsp)
3:
	lea 8(%rsp), %rsp
	cmp 32(%rsp), %rax
	je 4f
	incq 16(%rsp)
4:
	RL_MIX_GPRS
	\mix
	incq 8(%rsp)
	jmp 1b
2:
.endm

.macro RL_EPILOGUE store_vectors
	mov 0(%rsp), %rax
	mov %rbx, 0(%rax)
	mov %rcx, 8(%rax)
	mov %rdx, 16(%rax)
	mov %rsi, 24(%rax)
	mov %rdi, 32(%rax)
	mov %rbp, 40(%rax)
	mov %r8, 48(%rax)
	mov %r9, 56(%rax)
	mov %r10, 64(%rax)
	mov %r11, 72(%rax)
	mov %r12, 80(%rax)
	mov %r13, 88(%rax)
	mov %r14, 96(%rax)
	mov %r15, 104(%rax)
	\store_vectors
	mov 8(%rsp), %rcx
	mov %rcx, 128(%rax)
	mov 16(%rsp), %rcx
	mov %rcx, 136(%rax)
	mov 24(%rsp), %rcx
	mov %rcx, 144(%rax)
	stmxcsr 160(%rax)
	fnstcw 164(%rax)
	xor %ecx, %ecx
	.set rl_i, 0
	.rept 14
	cmpq $(0x5a5a0000 + rl_i), (-128 + 8 * rl_i)(%rsp)
	setne %dl
	movzbl %dl, %edx
	add %rdx, %rcx
	.set rl_i, rl_i + 1
	.endr
	mov %rcx, 152(%rax)
	mov 48(%rsp), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
.endm

# ---- SSE: xmm0-15
.macro RL_SSE_LOAD
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu (192 + 64 * \n)(%rdi), %xmm\n
	.endr
.endm
.macro RL_SSE_STORE
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	movdqu %xmm\n, (192 + 64 * \n)(%rax)
	.endr
.endm
.macro RL_SSE_PAIR a, b
	paddq %xmm\b, %xmm\a
.endm
.macro RL_SSE_MIX
	RL_SSE_PAIR 0,1
	RL_SSE_PAIR 1,2
	RL_SSE_PAIR 2,3
	RL_SSE_PAIR 3,4
	RL_SSE_PAIR 4,5
	RL_SSE_PAIR 5,6
	RL_SSE_PAIR 6,7
	RL_SSE_PAIR 7,8
	RL_SSE_PAIR 8,9
	RL_SSE_PAIR 9,10
	RL_SSE_PAIR 10,11
	RL_SSE_PAIR 11,12
	RL_SSE_PAIR 12,13
	RL_SSE_PAIR 13,14
	RL_SSE_PAIR 14,15
	RL_SSE_PAIR 15,0
.endm

	.globl usgc_test_register_loop_sse
	.type usgc_test_register_loop_sse, @function
	.p2align 4
usgc_test_register_loop_sse:
	RL_PROLOGUE
	RL_SSE_LOAD
	RL_LOAD_GPRS
	RL_LOOP RL_SSE_MIX
	RL_EPILOGUE RL_SSE_STORE
	ret
	.size usgc_test_register_loop_sse, .-usgc_test_register_loop_sse

# ---- AVX: ymm0-15
.macro RL_AVX_LOAD
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu (192 + 64 * \n)(%rdi), %ymm\n
	.endr
.endm
.macro RL_AVX_STORE
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vmovdqu %ymm\n, (192 + 64 * \n)(%rax)
	.endr
.endm
.macro RL_AVX_PAIR a, b
	vpaddq %ymm\b, %ymm\a, %ymm\a
.endm
.macro RL_AVX_MIX
	RL_AVX_PAIR 0,1
	RL_AVX_PAIR 1,2
	RL_AVX_PAIR 2,3
	RL_AVX_PAIR 3,4
	RL_AVX_PAIR 4,5
	RL_AVX_PAIR 5,6
	RL_AVX_PAIR 6,7
	RL_AVX_PAIR 7,8
	RL_AVX_PAIR 8,9
	RL_AVX_PAIR 9,10
	RL_AVX_PAIR 10,11
	RL_AVX_PAIR 11,12
	RL_AVX_PAIR 12,13
	RL_AVX_PAIR 13,14
	RL_AVX_PAIR 14,15
	RL_AVX_PAIR 15,0
.endm

	.globl usgc_test_register_loop_avx
	.type usgc_test_register_loop_avx, @function
	.p2align 4
usgc_test_register_loop_avx:
	RL_PROLOGUE
	RL_AVX_LOAD
	RL_LOAD_GPRS
	RL_LOOP RL_AVX_MIX
	RL_EPILOGUE RL_AVX_STORE
	vzeroupper
	ret
	.size usgc_test_register_loop_avx, .-usgc_test_register_loop_avx

# ---- AVX-512: zmm0-31, k1-k7 (held, not changed)
.macro RL_AVX512_LOAD
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 (192 + 64 * \n)(%rdi), %zmm\n
	.endr
	.irp n, 1,2,3,4,5,6,7
	kmovw (166 + 2 * \n)(%rdi), %k\n
	.endr
.endm
.macro RL_AVX512_STORE
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vmovdqu64 %zmm\n, (192 + 64 * \n)(%rax)
	.endr
	.irp n, 1,2,3,4,5,6,7
	kmovw %k\n, (166 + 2 * \n)(%rax)
	.endr
.endm
.macro RL_AVX512_PAIR a, b
	vpaddq %zmm\b, %zmm\a, %zmm\a
.endm
.macro RL_AVX512_MIX
	RL_AVX512_PAIR 0,1
	RL_AVX512_PAIR 1,2
	RL_AVX512_PAIR 2,3
	RL_AVX512_PAIR 3,4
	RL_AVX512_PAIR 4,5
	RL_AVX512_PAIR 5,6
	RL_AVX512_PAIR 6,7
	RL_AVX512_PAIR 7,8
	RL_AVX512_PAIR 8,9
	RL_AVX512_PAIR 9,10
	RL_AVX512_PAIR 10,11
	RL_AVX512_PAIR 11,12
	RL_AVX512_PAIR 12,13
	RL_AVX512_PAIR 13,14
	RL_AVX512_PAIR 14,15
	RL_AVX512_PAIR 15,16
	RL_AVX512_PAIR 16,17
	RL_AVX512_PAIR 17,18
	RL_AVX512_PAIR 18,19
	RL_AVX512_PAIR 19,20
	RL_AVX512_PAIR 20,21
	RL_AVX512_PAIR 21,22
	RL_AVX512_PAIR 22,23
	RL_AVX512_PAIR 23,24
	RL_AVX512_PAIR 24,25
	RL_AVX512_PAIR 25,26
	RL_AVX512_PAIR 26,27
	RL_AVX512_PAIR 27,28
	RL_AVX512_PAIR 28,29
	RL_AVX512_PAIR 29,30
	RL_AVX512_PAIR 30,31
	RL_AVX512_PAIR 31,0
.endm

	.globl usgc_test_register_loop_avx512
	.type usgc_test_register_loop_avx512, @function
	.p2align 4
usgc_test_register_loop_avx512:
	RL_PROLOGUE
	RL_AVX512_LOAD
	RL_LOAD_GPRS
	RL_LOOP RL_AVX512_MIX
	RL_EPILOGUE RL_AVX512_STORE
	vzeroupper
	ret
	.size usgc_test_register_loop_avx512, .-usgc_test_register_loop_avx512

# ---- the slow path's clobbers: caller-saved GPRs, vectors, MXCSR, x87 CW, flags (DF stays 0)
.macro CLOBBER_COMMON
	movabs $0xbad0bad0bad00001, %rax
	movabs $0xbad0bad0bad00002, %rcx
	movabs $0xbad0bad0bad00003, %rdx
	movabs $0xbad0bad0bad00004, %rsi
	movabs $0xbad0bad0bad00005, %rdi
	movabs $0xbad0bad0bad00006, %r8
	movabs $0xbad0bad0bad00007, %r9
	movabs $0xbad0bad0bad00008, %r10
	movabs $0xbad0bad0bad00009, %r11
	sub $8, %rsp
	movl $0xffc0, (%rsp)            # FTZ, round toward zero, all exceptions masked, DAZ
	ldmxcsr (%rsp)
	movw $0x0c7f, (%rsp)            # round toward zero, single precision
	fldcw (%rsp)
	add $8, %rsp
	pushq $0x8d5                    # CF PF AF ZF SF OF set, DF clear
	popfq
.endm

	.globl usgc_test_clobber_sse
	.type usgc_test_clobber_sse, @function
usgc_test_clobber_sse:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	pcmpeqd %xmm\n, %xmm\n
	.endr
	CLOBBER_COMMON
	ret
	.size usgc_test_clobber_sse, .-usgc_test_clobber_sse

	.globl usgc_test_clobber_avx
	.type usgc_test_clobber_avx, @function
usgc_test_clobber_avx:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	vpcmpeqd %ymm\n, %ymm\n, %ymm\n
	.endr
	CLOBBER_COMMON
	ret
	.size usgc_test_clobber_avx, .-usgc_test_clobber_avx

	.globl usgc_test_clobber_avx512
	.type usgc_test_clobber_avx512, @function
usgc_test_clobber_avx512:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	vpternlogd $0xff, %zmm\n, %zmm\n, %zmm\n
	.endr
	.irp n, 1,2,3,4,5,6,7
	kxnorw %k0, %k0, %k\n
	.endr
	CLOBBER_COMMON
	ret
	.size usgc_test_clobber_avx512, .-usgc_test_clobber_avx512

	.purgem RL_PROLOGUE
	.purgem RL_LOAD_GPRS
	.purgem RL_MIX_GPRS
	.purgem RL_LOOP
	.purgem RL_EPILOGUE
	.purgem RL_SSE_LOAD
	.purgem RL_SSE_STORE
	.purgem RL_SSE_PAIR
	.purgem RL_SSE_MIX
	.purgem RL_AVX_LOAD
	.purgem RL_AVX_STORE
	.purgem RL_AVX_PAIR
	.purgem RL_AVX_MIX
	.purgem RL_AVX512_LOAD
	.purgem RL_AVX512_STORE
	.purgem RL_AVX512_PAIR
	.purgem RL_AVX512_MIX
	.purgem CLOBBER_COMMON
)");
// clang-format on

enum class VectorWidth { kSse, kAvx, kAvx512 };

struct LoopKind {
  void (*loop)(RegisterLoopState*);
  size_t vector_registers;
  size_t vector_bytes;
  bool mask_registers;
};

LoopKind loop_of(VectorWidth width) {
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

bool cpu_has(VectorWidth width) {
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

// ---- the hooks ----------------------------------------------------------------------------------

constinit thread_local bool t_runs_goroutine = false;
std::atomic<uint64_t> g_slow_path_calls{0};
void (*g_clobber)() = nullptr;

bool runs_goroutine() {
  return t_runs_goroutine;
}

// Clobbers everything on its way out (the control bits of MXCSR and the x87 control word too,
// which the ABI makes callee-saved: nothing after the call here uses floating point).
void slow_path_clobbering_everything() {
  g_slow_path_calls.fetch_add(1, std::memory_order_relaxed);
  g_clobber();
}

RegisterLoopState initial_state(const std::vector<const volatile uint8_t*>& schedule) {
  RegisterLoopState state;
  std::memset(&state, 0, sizeof(state));
  for (int i = 0; i < 14; ++i)
    state.gpr[i] = 0x0123456789abcdefull * static_cast<uint64_t>(i + 1) + 0x1111ull * i;
  for (int r = 0; r < 32; ++r) {
    for (int b = 0; b < 64; ++b) state.vectors[r][b] = static_cast<uint8_t>(r * 64 + b * 7 + 3);
  }
  for (int k = 1; k < 8; ++k) state.mask_registers[k] = static_cast<uint16_t>(0x1357 * k);
  state.schedule = schedule.data();
  state.max_iterations = schedule.size();
  return state;
}

// What must be equal between the run with safepoints and the reference; prints each difference.
int differences(const RegisterLoopState& with, const RegisterLoopState& reference,
                const LoopKind& kind, bool print) {
  static const char* const kNames[14] = {"rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                                         "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  int count = 0;
  auto report = [&](const char* what) {
    ++count;
    if (print) std::fprintf(stderr, "FAILED: %s differs from the reference\n", what);
  };
  for (int i = 0; i < 14; ++i) {
    if (with.gpr[i] != reference.gpr[i]) report(kNames[i]);
  }
  for (size_t r = 0; r < kind.vector_registers; ++r) {
    if (std::memcmp(with.vectors[r], reference.vectors[r], kind.vector_bytes) != 0) {
      char name[32];
      std::snprintf(name, sizeof(name), "%smm%zu",
                    kind.vector_bytes == 16   ? "x"
                    : kind.vector_bytes == 32 ? "y"
                                              : "z",
                    r);
      report(name);
    }
  }
  if (kind.mask_registers && std::memcmp(with.mask_registers, reference.mask_registers,
                                         sizeof(with.mask_registers)) != 0) {
    report("k1-k7");
  }
  if (with.mxcsr != reference.mxcsr) report("MXCSR");
  if (with.x87_control != reference.x87_control) report("the x87 control word");
  if (with.iterations != reference.iterations) report("the iteration count");
  return count;
}

struct RunOptions {
  VectorWidth width;
  bool alternate_stack;
  bool force_fxsave;
};

constexpr size_t kIterations = 6000;
constexpr uint64_t kSeed = 0x5eed2026;
// The loop runs once per stack offset: the 8-byte-aligned stack pointers modulo 64 decide where
// the kernel's signal frame ends below the red zone (see fault_handler.cpp, the live-frame rule).
constexpr uint64_t kStackOffsets = 8;

// Runs the loop over `schedule` on a goroutine-like thread.
RegisterLoopState run_loop(const LoopKind& kind,
                           const std::vector<const volatile uint8_t*>& schedule,
                           uint64_t stack_offset, bool alternate_stack) {
  RegisterLoopState state = initial_state(schedule);
  state.stack_offset = stack_offset;
  std::thread thread([&] {
    kernel::AlternateSignalStack stack;
    if (alternate_stack && !stack.install().ok()) std::abort();
    t_runs_goroutine = true;
    kind.loop(&state);
  });
  thread.join();
  return state;
}

// Runs of 1-8 unreadable or readable entries, alternating; counts the unreadable ones.
std::vector<const volatile uint8_t*> random_schedule(std::mt19937_64& random,
                                                     uint64_t* unreadable) {
  std::vector<const volatile uint8_t*> schedule;
  bool safepoints = random() % 2 == 0;
  while (schedule.size() < kIterations) {
    const size_t run = 1 + random() % 8;
    for (size_t i = 0; i < run && schedule.size() < kIterations; ++i) {
      if (safepoints) {
        schedule.push_back(random() % 2 == 0 ? global_poll_page() : slot_bad_page(0));
        ++*unreadable;
      } else {
        schedule.push_back(always_readable_page());
      }
    }
    safepoints = !safepoints;
  }
  return schedule;
}

// 0 when equal to the reference (expect_equal) or when different (otherwise).
int register_preservation(RunOptions options, bool expect_equal) {
  usgc_test::FreshProcessChecks checks;
  if (options.force_fxsave) use_fxsave_trampoline_for_testing();
  g_clobber = __builtin_cpu_supports("avx512f") ? usgc_test_clobber_avx512
              : __builtin_cpu_supports("avx")   ? usgc_test_clobber_avx
                                                : usgc_test_clobber_sse;
  if (!poll_pages_initialize(1).ok()) checks.abandon("poll_pages_initialize");
  if (!install_fault_handler(
           FaultHandlerHooks{runs_goroutine, slow_path_clobbering_everything, nullptr})
           .ok()) {
    checks.abandon("install_fault_handler");
  }
  if (!arm_global_poll_page().ok()) checks.abandon("arm_global_poll_page");
  const LoopKind kind = loop_of(options.width);
  const std::vector<const volatile uint8_t*> readable(kIterations, always_readable_page());
  std::mt19937_64 random(kSeed);
  int differing_runs = 0;

  for (uint64_t offset = 0; offset < 8 * kStackOffsets; offset += 8) {
    uint64_t unreadable = 0;
    const std::vector<const volatile uint8_t*> schedule = random_schedule(random, &unreadable);
    const uint64_t calls_before = g_slow_path_calls.load();
    const RegisterLoopState with = run_loop(kind, schedule, offset, options.alternate_stack);
    const uint64_t calls = g_slow_path_calls.load() - calls_before;
    checks.expect(calls == unreadable,
                  "stack offset %lu: %lu slow-path calls for %lu unreadable polls (seed %#lx)",
                  static_cast<unsigned long>(offset), static_cast<unsigned long>(calls),
                  static_cast<unsigned long>(unreadable), static_cast<unsigned long>(kSeed));
    const RegisterLoopState reference = run_loop(kind, readable, offset, options.alternate_stack);
    checks.expect(g_slow_path_calls.load() == calls_before + calls,
                  "the reference run took a safepoint");

    for (const RegisterLoopState* run : {&with, &reference}) {
      const char* which = run == &with ? "with safepoints" : "reference";
      checks.expect(run->iterations == kIterations, "%s: %lu iterations", which,
                    static_cast<unsigned long>(run->iterations));
      checks.expect(run->rax_lost == 0, "%s, stack offset %lu: rax changed across %lu polls", which,
                    static_cast<unsigned long>(offset), static_cast<unsigned long>(run->rax_lost));
      checks.expect(
          run->direction_flag_lost == 0, "%s, stack offset %lu: DF cleared across %lu polls", which,
          static_cast<unsigned long>(offset), static_cast<unsigned long>(run->direction_flag_lost));
      checks.expect(run->red_zone_damaged == 0,
                    "%s, stack offset %lu: %lu red zone quadwords overwritten", which,
                    static_cast<unsigned long>(offset),
                    static_cast<unsigned long>(run->red_zone_damaged));
    }
    const int differing = differences(with, reference, kind, expect_equal);
    if (differing != 0) ++differing_runs;
    if (expect_equal) {
      checks.expect(
          differing == 0,
          "stack offset %lu: %d register(s) not preserved over %lu safepoints (seed %#lx)",
          static_cast<unsigned long>(offset), differing, static_cast<unsigned long>(unreadable),
          static_cast<unsigned long>(kSeed));
    }
  }
  if (!expect_equal) {
    checks.expect(differing_runs == static_cast<int>(kStackOffsets),
                  "expected lost registers in every run, found them in %d", differing_runs);
  }
  return checks.failures();
}

void expect_preserved(RunOptions options) {
  if (!cpu_has(options.width)) GTEST_SKIP() << "the CPU lacks these vector registers";
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(register_preservation(options, /*expect_equal=*/true));
}

TEST(TrampolineRegisters, SseLoopOnAlternateStack) {
  expect_preserved({VectorWidth::kSse, true, false});
}
TEST(TrampolineRegisters, SseLoopWithoutAlternateStack) {
  expect_preserved({VectorWidth::kSse, false, false});
}
TEST(TrampolineRegisters, AvxLoopOnAlternateStack) {
  expect_preserved({VectorWidth::kAvx, true, false});
}
TEST(TrampolineRegisters, AvxLoopWithoutAlternateStack) {
  expect_preserved({VectorWidth::kAvx, false, false});
}
TEST(TrampolineRegisters, Avx512LoopOnAlternateStack) {
  expect_preserved({VectorWidth::kAvx512, true, false});
}
TEST(TrampolineRegisters, Avx512LoopWithoutAlternateStack) {
  expect_preserved({VectorWidth::kAvx512, false, false});
}
TEST(TrampolineRegisters, SseLoopWithFxsaveFallback) {
  expect_preserved({VectorWidth::kSse, true, true});
}
TEST(TrampolineRegisters, SseLoopWithFxsaveFallbackWithoutAlternateStack) {
  expect_preserved({VectorWidth::kSse, false, true});
}

// The FXSAVE fallback saves no upper ymm halves: the comparison must notice.
TEST(TrampolineRegisters, AvxUpperHalvesAreLostWithFxsaveSoTheComparisonSeesLostRegisters) {
  if (!cpu_has(VectorWidth::kAvx)) GTEST_SKIP() << "no AVX";
  USGC_EXPECT_PASSES_IN_FRESH_PROCESS(
      register_preservation({VectorWidth::kAvx, true, true}, /*expect_equal=*/false));
}

}  // namespace
}  // namespace usgc::safepoint
