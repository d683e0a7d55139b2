// jitgen/interpreter/run_state.hpp — what the goroutines of one interpreter run share: the
// program and its layout, globals, the channel registry, the unknown world, the counters, and the
// run's outcome with the stop protocol.
//
// The stop protocol (how every goroutine of a run ends):
//   * anything that ends the run — the entry returning, the first runtime error or check
//     violation, a deadlock, a limit — calls stop() (one error per run, like a Go panic);
//   * stop() sets `stopping` (release) and closes the stop channel once; the first call sets the
//     outcome, whatever it is (a goroutine failing after the entry returned changes nothing);
//   * every goroutine checks `stopping` at each call, back edge and after each channel
//     operation, and every blocking channel operation also waits on the stop channel
//     (channel_ops.hpp), so each goroutine returns promptly, popping its frames; compiled code
//     (jitgen/x86_64) sees it at calls through its stack limit, which the stop hook moves
//     above every stack (the hook runs after `stopping` is set);
//   * the entry goroutine waits for the others (the `goroutines` wait group) before it returns.
// Who writes what:
//   * `outcome_*`: under outcome_lock, once; read by run_program after every goroutine ended.
//   * `live_goroutines`, `blocked_goroutines`, `channel_progress`: atomics (relaxed: the deadlock
//     watchdog only compares snapshots over time, deadlock_watchdog in run_program.cpp).
//   * `allocations_per_site` and the other totals: each goroutine adds its own counts when it
//     ends (relaxed fetch_add); read after the run.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/interpreter/program_layout.hpp"
#include "usgc/usgc.h"

namespace usgc::jitgen::interpreter {

// Channels made by the run, freed when it ends (usgc channels are not GC objects yet: the wrapper
// object of a `makechan` site holds the usgc_chan*). Lock-free push; walked once, at the end.
class ChannelRegistry {
 public:
  ~ChannelRegistry();
  void add(usgc_chan* channel);
  void destroy_all();  // after every goroutine of the run ended

 private:
  struct Entry {
    usgc_chan* channel;
    Entry* next;
  };
  std::atomic<Entry*> head_{nullptr};
};

struct RunState {
  RunState(const ir::Module& module_in, const escape::EscapeAnalysis& analysis_in,
           const ProgramLayout& layout_in, const RunOptions& options_in);

  const ir::Module& module;
  const escape::EscapeAnalysis& analysis;
  const ProgramLayout& layout;
  const RunOptions& options;
  std::vector<const escape::SiteDecision*> decision_of_site;  // by site index

  // Globals: reference globals are global roots (usgc_global_root_add, stores through
  // usgc_global_store); scalar globals are relaxed atomics (racy programs must not crash us).
  std::unique_ptr<void*[]> reference_globals;
  std::unique_ptr<std::atomic<int64_t>[]> scalar_globals;
  std::vector<uint32_t> slot_of_global;
  std::vector<bool> global_is_reference;

  ChannelRegistry channels;
  usgc_chan* stop_channel = nullptr;  // closed by stop(); every blocking operation waits on it
  void* unknown_world = nullptr;      // a global root: GLOBAL_SHARED array (unknown_world.hpp)
  std::atomic<uint64_t> unknown_world_next{0};

  std::atomic<bool> stopping{false};
  std::atomic<bool> stop_channel_closed{false};
  // Called by every stop() after `stopping` is set, on the stopping thread (the JIT's: it makes
  // compiled prologues fail their stack check, jit_runtime.cpp). Set (release) by the runner
  // before it runs code that relies on it; read (acquire) by stop() on any thread.
  struct StopHook {
    void (*call)(void* context) = nullptr;
    void* context = nullptr;
  };
  std::atomic<const StopHook*> stop_hook{nullptr};
  usgc_waitgroup goroutines = USGC_WAITGROUP_INIT;  // the spawned ones, not the entry goroutine
  std::atomic<int64_t> live_goroutines{0};          // including the entry goroutine
  std::atomic<int64_t> blocked_goroutines{0};       // in a blocking channel operation
  std::atomic<uint64_t> channel_progress{0};        // channel operations completed
  std::atomic<uint64_t> steps{0};
  size_t stack_bytes = 0;  // of each goroutine: the call-depth guard (executor.cpp)

  std::vector<std::atomic<uint64_t>> allocations_per_site;
  std::atomic<uint64_t> allocations_per_class[escape::kOwnershipClassCount] =
      {};  // by the class used
  std::atomic<uint64_t> caller_frame_allocations{0};
  std::atomic<uint64_t> stack_substitutes{0};
  std::atomic<uint64_t> goroutines_started{0};

  std::mutex outcome_lock;
  bool outcome_set = false;
  RunStatus outcome_status = RunStatus::kCompleted;
  std::string outcome_message;
  std::optional<CheckViolation> outcome_violation;
  std::optional<int64_t> returned_value;

  // Ends the run (the stop protocol). `status` kCompleted: the entry returned, no failure.
  void stop(RunStatus status, std::string message = {},
            std::optional<CheckViolation> violation = std::nullopt);
  bool is_stopping() const { return stopping.load(std::memory_order_acquire); }
  // "f.usir:12:5" for an instruction's position.
  std::string where(ir::SourcePosition position) const;
};

// Runs `runner(run, context)` on the entry goroutine in place of the interpreter's executor, with
// everything else of run_program around it (the runtime, globals, the unknown world, the watchdog,
// the stop protocol and the counts): how the JIT (jitgen/x86_64) runs a compiled module. The
// runner records the entry's result in run.returned_value and calls run.stop(kCompleted) when it
// returns normally, as run_entry_function does.
using EntryRunner = void (*)(RunState& run, void* context);
RunResult run_program_with(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                           const RunOptions& options, EntryRunner runner, void* context);

}  // namespace usgc::jitgen::interpreter
