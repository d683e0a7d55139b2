// tests/jitgen/jit_safepoint_test.cpp — a compiled loop reaches every safepoint: another thread
// stops the world 1000 times while main spins in compiled code (allocating, with a collection
// after every allocation in the second case), each stop finds the P running and parked at a
// poll, and afterwards the loop's live values — a list built before it, the counter and the
// object it keeps — are intact. The loop ends when the stopper sets a global the loop reads,
// so every stop happens while the loop runs, whatever the machine's speed. Between two stops the
// stopper waits until the loop's P has left its safepoint: a P still stopped by the previous
// stop is claimed by the next without running (safepoint/stop_the_world.hpp, kStoppedAtSafepoint),
// so stops back to back would find the loop at its poll only once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/run_state.hpp"
#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/compiled_module.hpp"
#include "safepoint/stop_the_world.hpp"
#include "usgc/usgc.h"

namespace usgc::jitgen::x86_64 {
namespace {

constexpr const char* kProgram = R"(type Cell { v: int, next: *Cell }
global done: int

func main() -> int {
  var %head: *Cell
  var %c: *Cell
  var %t: *Cell
  var %i: int
  var %k: int
  var %sum: int
  var %flag: int
  var %x: int
  var %more: bool
entry:
  %i = 1
  jmp build
build:
  %more = le %i, 100
  br %more, grow, spin
grow:
  %c = new Cell
  store %c.v, %i
  store %c.next, %head
  %head = %c
  %i = add %i, 1
  jmp build
spin:
  %k = add %k, 1
  %t = new Cell
  store %t.v, %k
  store %t.next, %head
  %flag = load @done
  %more = eq %flag, 0
  br %more, spin, check
check:
  %x = load %t.v
  %more = eq %x, %k
  br %more, walk, broken
walk:
  %more = ne %c, null
  br %more, visit, finished
visit:
  %x = load %c.v
  %sum = add %sum, %x
  %c = load %c.next
  jmp walk
finished:
  ret %sum
broken:
  ret -1
}
)";

struct Shared {
  JitRun jit;
  std::atomic<interpreter::RunState*> run{nullptr};
  // Set (release) once the stopper no longer touches the run; the run's body waits for it
  // (acquire) before it returns, so the RunState outlives the stopper's last store into it.
  std::atomic<bool> stopper_done{false};
};

void parked_loop(uint32_t gc_stress_every) {
  ir::ParseResult parsed = ir::parse_module(kProgram, "spin.usir");
  ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  CompileOptions compile_options;
  compile_options.gc_stress = gc_stress_every != 0;
  std::string error;
  auto compiled = CompiledModule::compile(parsed.module, analysis, compile_options, &error);
  ASSERT_NE(compiled, nullptr) << error;

  Shared shared;
  shared.jit.module = compiled.get();
  uint32_t stops = 0, stops_with_running_p = 0;
  std::thread stopper([&] {
    interpreter::RunState* run = nullptr;
    while ((run = shared.run.load(std::memory_order_acquire)) == nullptr) std::this_thread::yield();
    for (int i = 0; i < 1000; ++i) {
      usgc_stop_info info{};
      if (usgc_stop_the_world(&info) != 0) continue;
      ++stops;
      stops_with_running_p += info.procs_running >= 1;
      usgc_start_the_world();
      // The loop's P (the only one) back from this stop, or a second gone by.
      const usgc::safepoint::SafepointSlot* slot = usgc::safepoint::slot_at(0);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (slot != nullptr && usgc::safepoint::slot_stopped_at_safepoint(slot) &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    }
    run->scalar_globals[0].store(1, std::memory_order_relaxed);  // @done: the loop may end
    shared.stopper_done.store(true, std::memory_order_release);
  });
  interpreter::RunOptions options;
  options.procs = 1;
  options.gc_stress_every = gc_stress_every;
  options.checked = false;
  interpreter::RunResult result = interpreter::run_program_with(
      parsed.module, analysis, options,
      [](interpreter::RunState& run, void* context) {
        auto& shared = *static_cast<Shared*>(context);
        shared.run.store(&run, std::memory_order_release);
        run_compiled_entry(run, &shared.jit);
        while (!shared.stopper_done.load(std::memory_order_acquire)) std::this_thread::yield();
      },
      &shared);
  stopper.join();
  ASSERT_EQ(result.status, interpreter::RunStatus::kCompleted) << result.message;
  EXPECT_EQ(result.returned_value, 5050) << "the list and the loop's object survived every stop";
  EXPECT_EQ(stops, 1000u);
  if (gc_stress_every == 0) {
    // A loop that never polled would hang the first stop. Nearly every stop finds the P running
    // the loop; the few that do not came while the monitor's preemption had the goroutine
    // between two runs of its P (it is the only one, so it is back at once).
    EXPECT_GE(stops_with_running_p, 900u) << "stops had to reach the compiled loop's poll";
  } else {
    // Most stops now find the goroutine inside a collection (already stopped there). A shared
    // collection holds no P from its start stop to its termination stop (it marks concurrently,
    // as a native call) and asks for two stops, each waiting for this stopper's operation lock:
    // a stopper that stops back to back may find the goroutine there every time, so the stops
    // that catch it at a poll of the loop are not counted on. Every stop completed (above), the
    // live values survived, and collections ran.
    std::printf("[ info     ] %u of %u stops found the loop running\n", stops_with_running_p,
                stops);
    EXPECT_GT(result.private_collections + result.shared_collections, 0u);
  }
}

TEST(JitSafepoint, ACompiledLoopParksAtAThousandStopsAndKeepsItsLiveValues) {
  parked_loop(0);
}

TEST(JitSafepoint, AndUnderACollectionAfterEveryAllocation) {
  parked_loop(1);
}

}  // namespace
}  // namespace usgc::jitgen::x86_64
