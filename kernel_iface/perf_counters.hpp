// kernel_iface/perf_counters.hpp — counter groups through perf_event_open(2): the hardware's
// count of instructions, cycles, branch misses and L1D read misses around a measured region,
// and the kernel's software counts (task clock, page faults, context switches).
//
// Used by the stub benchmarks and tests (per-operation instructions and cycles of the JIT's
// allocation, barrier, poll and frame stubs) and by anything that wants counts of a region.
// Not on any hot path: every call is a system call.
//
// A group is opened for the calling thread (pid 0, cpu -1), disabled, with the first event as
// leader; enable()/disable() switch the whole group at once (PERF_IOC_FLAG_GROUP) and read()
// returns every member in one read of the leader (PERF_FORMAT_GROUP), with the times the group
// was enabled and running, so all values describe the same interval. When the PMU had to
// multiplex (time_running < time_enabled) the values are partial; read() reports both times and
// PerfCounterValues::scaled() extrapolates, as `perf stat` does.
//
// Scope: hardware events count user space only (exclude_kernel, exclude_hv): the stubs are user
// code, and it is what an unprivileged process may count under perf_event_paranoid = 2.
// Software events count what the kernel accounts to the task (a context switch and a page fault
// are kernel work; with exclude_kernel a context switch is never counted), so they need
// perf_event_paranoid <= 1 or CAP_PERFMON for an unprivileged user (EACCES otherwise).
// Scope: a group counts the calling thread, and with PerfScope::kThreadAndNewThreads also every
// thread it (or they) start after open() (inherit = 1; the kernel adds the children's counts to
// each read): the way to count a runtime whose goroutines run on worker threads it starts later.
//
// Errors: open() fails with the errno of the first event that could not be opened, and
// failed_event() names it; describe_open_failure() turns that into a sentence a test can print
// when it skips (virtual machines usually have no hardware counters: ENOENT / EOPNOTSUPP).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

enum class PerfEvent : uint8_t {
  kInstructions,     // retired instructions (hardware)
  kCycles,           // core cycles (hardware)
  kBranchMisses,     // mispredicted branches (hardware)
  kL1dReadMisses,    // L1 data cache read misses (hardware cache event)
  kTaskClock,        // ns the thread ran on a CPU (software)
  kPageFaults,       // page faults of the thread (software)
  kContextSwitches,  // times the thread was switched out (software)
};
inline constexpr size_t kPerfEventKinds = 7;

// "instructions", "cycles", "branch-misses", "L1-dcache-load-misses", "task-clock",
// "page-faults", "context-switches" (perf's names).
const char* perf_event_name(PerfEvent event);
bool perf_event_is_hardware(PerfEvent event);

// Why opening `event` failed with `error_number`, one sentence (static storage).
const char* describe_open_failure(PerfEvent event, int error_number);

inline constexpr size_t kMaxPerfGroupEvents = 8;

enum class PerfScope : uint8_t {
  kCallingThread,        // this thread only
  kThreadAndNewThreads,  // this thread and the threads started after open() (inherit)
};

struct PerfCounterValues {
  size_t count = 0;                        // members read, in the order of open()
  uint64_t values[kMaxPerfGroupEvents]{};  // raw counts
  uint64_t time_enabled_ns = 0;
  uint64_t time_running_ns = 0;
  // values[i] extrapolated to the whole enabled time when the group was multiplexed.
  double scaled(size_t i) const;
  bool multiplexed() const { return time_running_ns < time_enabled_ns; }
};

class PerfCounterGroup {
 public:
  PerfCounterGroup() = default;
  ~PerfCounterGroup() { close(); }
  PerfCounterGroup(const PerfCounterGroup&) = delete;
  PerfCounterGroup& operator=(const PerfCounterGroup&) = delete;

  // Opens `events` (1 to kMaxPerfGroupEvents, the first is the leader) for the calling thread,
  // disabled. EINVAL for an empty or too large list or a group already open; otherwise the
  // errno of the first event that failed (failed_event() says which), and nothing stays open.
  [[nodiscard]] Status open(std::span<const PerfEvent> events,
                            PerfScope scope = PerfScope::kCallingThread);
  // Resets every member to zero and starts counting.
  [[nodiscard]] Status enable();
  // Stops counting (values keep).
  [[nodiscard]] Status disable();
  // Reads every member at once. EBADF when not open.
  [[nodiscard]] Status read(PerfCounterValues& values) const;
  void close();

  bool is_open() const { return count_ != 0; }
  size_t size() const { return count_; }
  PerfEvent event(size_t i) const { return events_[i]; }
  // The event whose open failed last (meaningful after open() failed).
  PerfEvent failed_event() const { return failed_event_; }

 private:
  int fds_[kMaxPerfGroupEvents]{};
  PerfEvent events_[kMaxPerfGroupEvents]{};
  size_t count_ = 0;
  PerfEvent failed_event_ = PerfEvent::kInstructions;
};

}  // namespace usgc::kernel
