// tests/safepoint/trampoline_register_test.cpp — the trampoline restores every register.
//
// A loop written in assembly (tests/safepoint/register_loops.hpp says what it keeps and checks)
// polls once per iteration; the slow path installed here clobbers every register it may.
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
#include "tests/safepoint/register_loops.hpp"
#include "tests/safepoint/safepoint_test_support.hpp"

namespace usgc::safepoint {
namespace {

using namespace usgc::safepoint::register_loops;

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
