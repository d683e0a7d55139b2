// tests/jitgen/interpreter_safepoint_test.cpp — the interpreter reaches stops without a poll fault:
// its checkpoint is usgc's own C++ loop and polls the flag word (an explicit branch), so another
// thread's stops are acknowledged by the flag poll (the stop's attribution trace,
// safepoint/stop_trace.hpp, counts every acknowledgement by kind) and none by a fault. The loop
// ends when the stopper sets a global it reads, so every stop happens while it runs.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "jitgen/escape/escape.hpp"
#include "jitgen/interpreter/executor.hpp"
#include "jitgen/interpreter/run_state.hpp"
#include "jitgen/ir/ir.hpp"
#include "safepoint/stop_trace.hpp"
#include "usgc/usgc.h"

namespace usgc::jitgen::interpreter {
namespace {

constexpr const char* kProgram = R"(global done: int

func main() -> int {
  var %k: int
  var %flag: int
  var %more: bool
entry:
  jmp spin
spin:
  %k = add %k, 1
  %flag = load @done
  %more = eq %flag, 0
  br %more, spin, finished
finished:
  ret 7
}
)";

struct Shared {
  std::atomic<RunState*> run{nullptr};
  // Set (release) once the stopper no longer touches the run; the run's body waits for it
  // (acquire) before it returns, so the RunState outlives the stopper's last store into it.
  std::atomic<bool> stopper_done{false};
};

TEST(InterpreterSafepoint, StopsAreAcknowledgedByTheFlagPollWithoutAFault) {
  ir::ParseResult parsed = ir::parse_module(kProgram, "spin.usir");
  ASSERT_TRUE(parsed.ok()) << ir::format_diagnostics(parsed.diagnostics);
  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  Shared shared;
  safepoint::StopAttributionTotals totals{};
  uint32_t stops_with_running_p = 0;
  std::thread stopper([&] {
    RunState* run = nullptr;
    while ((run = shared.run.load(std::memory_order_acquire)) == nullptr) std::this_thread::yield();
    safepoint::set_stop_trace_enabled(true);
    safepoint::reset_stop_attribution_totals();
    for (int i = 0; i < 200; ++i) {
      usgc_stop_info info{};
      if (usgc_stop_the_world(&info) != 0) continue;
      stops_with_running_p += info.procs_running >= 1;
      usgc_start_the_world();
    }
    totals = safepoint::stop_attribution_totals();
    safepoint::set_stop_trace_enabled(false);
    run->scalar_globals[0].store(1, std::memory_order_relaxed);  // @done: the loop may end
    shared.stopper_done.store(true, std::memory_order_release);
  });
  RunOptions options;
  options.procs = 1;
  options.checked = false;
  RunResult result = run_program_with(
      parsed.module, analysis, options,
      [](RunState& run, void* context) {
        auto* shared_state = static_cast<Shared*>(context);
        shared_state->run.store(&run, std::memory_order_release);
        run_entry_function(run);
        while (!shared_state->stopper_done.load(std::memory_order_acquire))
          std::this_thread::yield();
      },
      &shared);
  stopper.join();
  ASSERT_EQ(result.status, RunStatus::kCompleted) << result.message;
  EXPECT_EQ(result.returned_value, 7);
  ASSERT_GT(stops_with_running_p, 0u) << "no stop found the interpreter's P running";
  EXPECT_EQ(totals.poll_faults, 0u);
  EXPECT_EQ(totals.acknowledgements[static_cast<int>(safepoint::AckKind::kPollFault)], 0u);
  EXPECT_GT(totals.acknowledgements[static_cast<int>(safepoint::AckKind::kFlagPoll)], 0u);
}

}  // namespace
}  // namespace usgc::jitgen::interpreter
