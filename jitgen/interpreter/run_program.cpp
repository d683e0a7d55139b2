// jitgen/interpreter/run_program.cpp — one run of a program (interpreter.hpp): checks the entry,
// lays the program out, starts the runtime if it is not running, runs the entry goroutine
// beside a watchdog thread, and gathers the outcome and the counts.
//
// The deadlock watchdog (a plain thread, not a goroutine: it never holds up a stop-the-world)
// samples every kWatchInterval: when every live goroutine of the run is blocked in a channel
// operation (blocked_goroutines >= live_goroutines) and no channel operation completed
// (channel_progress unchanged) for RunOptions::deadlock_ms, the run is a deadlock. A goroutine
// that was woken but has not run yet still counts as blocked, so the detection is by time, not
// exact as Go's scheduler-level check: a false alarm needs a runnable goroutine left unscheduled
// for the whole window. The watchdog also enforces time_limit_ms.
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "jitgen/interpreter/executor.hpp"
#include "jitgen/interpreter/interpreter.hpp"
#include "jitgen/interpreter/run_state.hpp"
#include "jitgen/interpreter/unknown_world.hpp"
#include "kernel_iface/environment.hpp"

namespace usgc::jitgen::interpreter {
namespace {

constexpr auto kWatchInterval = std::chrono::milliseconds(10);
// The interpreter needs more stack per .usir call than compiled code: unless USGC_STACK_SIZE
// says otherwise, the goroutines of a run it starts get this much.
constexpr size_t kDefaultStackBytes = 1024 * 1024;

class Watchdog {
 public:
  explicit Watchdog(RunState& run) : run_(run), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> guard(lock_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void watch() {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    Clock::time_point quiet_since = start;
    uint64_t last_progress = UINT64_MAX;
    std::unique_lock<std::mutex> guard(lock_);
    while (!wake_.wait_for(guard, kWatchInterval, [this] { return done_; })) {
      if (run_.is_stopping()) continue;
      const Clock::time_point now = Clock::now();
      const RunOptions& options = run_.options;
      if (options.time_limit_ms != 0 &&
          now - start >= std::chrono::milliseconds(options.time_limit_ms)) {
        run_.stop(RunStatus::kLimitExceeded, run_.module.file_name +
                                                 ": time limit: still running after " +
                                                 std::to_string(options.time_limit_ms) + " ms");
        continue;
      }
      int64_t live = run_.live_goroutines.load(std::memory_order_relaxed);
      int64_t blocked = run_.blocked_goroutines.load(std::memory_order_relaxed);
      uint64_t progress = run_.channel_progress.load(std::memory_order_relaxed);
      if (live <= 0 || blocked < live || progress != last_progress) {
        last_progress = progress;
        quiet_since = now;
        continue;
      }
      if (now - quiet_since >= std::chrono::milliseconds(options.deadlock_ms)) {
        run_.stop(RunStatus::kDeadlock,
                  run_.module.file_name + ": all goroutines are asleep - deadlock! (" +
                      std::to_string(live) + " goroutine" + (live == 1 ? "" : "s") +
                      " blocked in channel operations for " + std::to_string(options.deadlock_ms) +
                      " ms)");
      }
    }
  }

  RunState& run_;
  std::mutex lock_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

// What the entry goroutine runs: the interpreter's executor, or another engine (run_program_with).
struct EntryGoroutine {
  RunState* run;
  EntryRunner runner;
  void* context;
};

// The entry goroutine: globals and the unknown world become roots, the program runs, the other
// goroutines are stopped and awaited, the roots go away.
void entry_goroutine(void* argument) {
  const EntryGoroutine& entry = *static_cast<const EntryGoroutine*>(argument);
  RunState& run = *entry.run;
  run.live_goroutines.store(1, std::memory_order_relaxed);
  bool ready = create_unknown_world(run);
  for (size_t g = 0; ready && g < run.module.globals.size(); ++g)
    if (run.global_is_reference[g])
      ready = usgc_global_root_add(&run.reference_globals[run.slot_of_global[g]]) == 0;
  if (!ready) {
    run.stop(RunStatus::kSetupError,
             run.module.file_name + ": cannot set up the run: " + usgc_last_error());
  } else {
    entry.runner(run, entry.context);
  }
  run.stop(RunStatus::kCompleted);  // no-op after a failure; stops the others after a return
  usgc_waitgroup_wait(&run.goroutines);
  run.live_goroutines.fetch_sub(1, std::memory_order_relaxed);
  for (size_t g = 0; g < run.module.globals.size(); ++g)
    if (run.global_is_reference[g])
      usgc_global_root_remove(&run.reference_globals[run.slot_of_global[g]]);
  destroy_unknown_world(run);
}

RunResult setup_error(std::string message) {
  RunResult result;
  result.status = RunStatus::kSetupError;
  result.message = std::move(message);
  return result;
}

std::string check_entry(const ir::Module& module, const RunOptions& options) {
  const ir::Function* entry = module.find_function(options.entry);
  if (entry == nullptr) return module.file_name + ": no function '" + options.entry + "' to run";
  if (options.arguments.size() > entry->parameter_count)
    return module.file_name + ": " + options.entry + " takes " +
           std::to_string(entry->parameter_count) + " parameter(s), " +
           std::to_string(options.arguments.size()) + " argument(s) given";
  if (entry->capture_count != 0)
    return module.file_name + ": " + options.entry + " has captures and cannot be the entry";
  for (uint32_t i = 0; i < options.arguments.size(); ++i)
    if (module.types.is_reference(entry->locals[i].type))
      return module.file_name + ": parameter %" + entry->locals[i].name + " of " + options.entry +
             " is a reference: only int and bool parameters take arguments (references start null)";
  return "";
}

usgc_gc_stats gc_stats_now() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  usgc_gc_get_stats(&stats);
  return stats;
}

}  // namespace

const char* run_status_name(RunStatus status) {
  switch (status) {
    case RunStatus::kCompleted:
      return "completed";
    case RunStatus::kRuntimeError:
      return "runtime error";
    case RunStatus::kCheckViolation:
      return "check violation";
    case RunStatus::kDeadlock:
      return "deadlock";
    case RunStatus::kLimitExceeded:
      return "limit exceeded";
    case RunStatus::kSetupError:
      return "setup error";
  }
  return "?";
}

uint64_t RunResult::total_allocations() const {
  uint64_t total = 0;
  for (uint64_t count : allocations_per_class) total += count;
  return total;
}

namespace {

// Up to 10 s for every goroutine of the run to finish once it is stopping.
bool wait_for_goroutines_to_leave() {
  for (int waited_ms = 0; waited_ms < 10000; ++waited_ms) {
    if (usgc_goroutine_count() == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return usgc_goroutine_count() == 0;
}

RunResult run_counted(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                      const RunOptions& options, EntryRunner runner, void* context) {
  if (std::string problem = check_entry(module, options); !problem.empty())
    return setup_error(problem);
  if (usgc_goroutine_self() != 0)
    return setup_error(module.file_name +
                       ": run_program must be called from a thread that is not a goroutine");

  usgc_config config;
  if (usgc_config_from_environment(&config) != 0)
    return setup_error("usgc: bad USGC_* environment (see above)");
  if (usgc::kernel::environment_text(usgc::kernel::EnvironmentVariableId::kStackSize) == nullptr)
    config.stack_bytes = kDefaultStackBytes;
  if (options.procs != 0) config.procs = options.procs;
  int started = usgc_init(&config);
  bool own_runtime = started == 0;
  if (!own_runtime && started != EALREADY)
    return setup_error(std::string("usgc_init failed: ") + std::strerror(started));
  if (!own_runtime) {  // someone else's runtime: its stacks are what the environment said
    usgc_config_from_environment(&config);
  }

  RunResult result;
  std::string error;
  std::optional<ProgramLayout> layout =
      ProgramLayout::build(module, analysis, &error, options.checked);
  if (!layout) {
    result = setup_error(module.file_name + ": " + error);
  } else {
    RunState run(module, analysis, *layout, options);
    run.stack_bytes = config.stack_bytes;
    run.stop_channel = usgc_chan_make(0, 0);
    usgc_gc_stats before = gc_stats_now();
    if (run.stop_channel == nullptr) {
      result = setup_error("usgc: no memory for the run's stop channel");
    } else {
      {
        Watchdog watchdog(run);
        EntryGoroutine entry{&run, runner, context};
        int status = usgc_run_main(entry_goroutine, &entry);
        if (status != 0)
          run.stop(RunStatus::kSetupError,
                   std::string("usgc_run_main failed: ") + std::strerror(status));
      }
      // The entry returned and the run is stopping: goroutines it did not wait for leave at their
      // next checkpoint or channel operation. Their channels are freed, and the runtime is shut
      // down, only when none is left (a shutdown with goroutines alive fails, EBUSY).
      bool all_left = wait_for_goroutines_to_leave();
      if (all_left) {
        run.channels.destroy_all();
        usgc_chan_destroy(run.stop_channel);
      }
      if (!all_left) own_runtime = false;  // leave it running: something still uses it
      usgc_gc_stats after = gc_stats_now();
      result.status = run.outcome_status;
      result.message = run.outcome_message;
      result.violation = run.outcome_violation;
      result.returned_value = run.returned_value;
      result.private_collections = after.private_collections - before.private_collections;
      result.shared_collections = after.shared_collections - before.shared_collections;
    }
    result.allocations_per_site.resize(run.allocations_per_site.size());
    for (size_t site = 0; site < run.allocations_per_site.size(); ++site)
      result.allocations_per_site[site] =
          run.allocations_per_site[site].load(std::memory_order_relaxed);
    for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
      result.allocations_per_class[c] =
          run.allocations_per_class[c].load(std::memory_order_relaxed);
    result.caller_frame_allocations = run.caller_frame_allocations.load(std::memory_order_relaxed);
    result.stack_substitutes = run.stack_substitutes.load(std::memory_order_relaxed);
    result.goroutines_started = run.goroutines_started.load(std::memory_order_relaxed);
    result.steps = run.steps.load(std::memory_order_relaxed);
  }
  if (own_runtime) usgc_shutdown();
  return result;
}

}  // namespace

RunResult run_program_with(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                           const RunOptions& options, EntryRunner runner, void* context) {
  RunResult result = run_counted(module, analysis, options, runner, context);
  result.allocations_per_site.resize(analysis.sites.size());  // zeros when it never ran
  return result;
}

RunResult run_program(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                      const RunOptions& options) {
  RunResult result = run_counted(
      module, analysis, options, [](RunState& run, void*) { run_entry_function(run); }, nullptr);
  result.allocations_per_site.resize(analysis.sites.size());  // zeros when it never ran
  return result;
}

}  // namespace usgc::jitgen::interpreter
