// process_counters: runs one command under the project's perf_event counter groups
// (kernel_iface/perf_counters.hpp) and prints what the kernel counted for the whole command —
// every thread and every process it starts (the groups are opened with inherit before the fork,
// so the command, its threads and its children are counted). A benchmark helper, used by
// bench/run_wasm.sh to count node's process-wide events around a WebAssembly run and its peers.
//
// Usage: process_counters SUITE CASE IMPL -- COMMAND [ARGS...]
// Prints, after the command ends (its stdout and stderr pass through):
//   RESULT suite=SUITE case=CASE impl=IMPL metric=<event> value=<n> unit=count|ns
// for the software events (task-clock in ns, page-faults, context-switches) and the hardware
// events (instructions, cycles, branch-misses) as two groups, each read in one go; a group that
// cannot be opened here (a VM without a PMU, perf_event_paranoid) prints instead
//   NOTE suite=SUITE case=CASE impl=IMPL <hardware|software> counters skipped: <why>
// Values scaled as `perf stat` does when the PMU multiplexed (a NOTE says so). Exit status: the
// command's (128 + signal when killed), 2 when it could not be started.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kernel_iface/perf_counters.hpp"

namespace {

using usgc::kernel::PerfCounterGroup;
using usgc::kernel::PerfCounterValues;
using usgc::kernel::PerfEvent;
using usgc::kernel::PerfScope;

constexpr PerfEvent kSoftware[] = {PerfEvent::kTaskClock, PerfEvent::kPageFaults,
                                   PerfEvent::kContextSwitches};
constexpr PerfEvent kHardware[] = {PerfEvent::kInstructions, PerfEvent::kCycles,
                                   PerfEvent::kBranchMisses};

struct Labels {
  const char* suite;
  const char* case_name;
  const char* impl;
};

// Opens and enables `events` for this thread and everything started after (inherit); false with
// a NOTE line when the kernel refuses.
bool start(PerfCounterGroup& group, std::span<const PerfEvent> events, const char* kind,
           const Labels& labels) {
  usgc::kernel::Status opened = group.open(events, PerfScope::kThreadAndNewThreads);
  if (!opened.ok()) {
    std::printf("NOTE suite=%s case=%s impl=%s %s counters skipped: %s\n", labels.suite,
                labels.case_name, labels.impl, kind,
                usgc::kernel::describe_open_failure(group.failed_event(), opened.error()));
    return false;
  }
  if (!group.enable().ok()) {
    std::printf("NOTE suite=%s case=%s impl=%s %s counters skipped: enable failed\n", labels.suite,
                labels.case_name, labels.impl, kind);
    group.close();
    return false;
  }
  return true;
}

void report(const PerfCounterGroup& group, const Labels& labels) {
  if (!group.is_open()) return;
  PerfCounterValues values;
  if (!group.read(values).ok()) return;
  if (values.multiplexed())
    std::printf("NOTE suite=%s case=%s impl=%s the PMU multiplexed: values scaled\n", labels.suite,
                labels.case_name, labels.impl);
  for (size_t i = 0; i < values.count; ++i) {
    PerfEvent event = group.event(i);
    std::printf("RESULT suite=%s case=%s impl=%s metric=%s value=%.0f unit=%s\n", labels.suite,
                labels.case_name, labels.impl, usgc::kernel::perf_event_name(event),
                values.scaled(i), event == PerfEvent::kTaskClock ? "ns" : "count");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || std::strcmp(argv[4], "--") != 0) {
    std::fprintf(stderr, "usage: process_counters SUITE CASE IMPL -- COMMAND [ARGS...]\n");
    return 2;
  }
  const Labels labels{argv[1], argv[2], argv[3]};
  PerfCounterGroup software, hardware;
  start(software, kSoftware, "software", labels);
  start(hardware, kHardware, "hardware", labels);
  std::fflush(stdout);
  pid_t child = fork();
  if (child < 0) {
    std::perror("process_counters: fork");
    return 2;
  }
  if (child == 0) {
    execvp(argv[5], argv + 5);
    std::fprintf(stderr, "process_counters: cannot run %s: %s\n", argv[5], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // The children's counts are added to the leaders' when they exit (inherit): read after wait.
  (void)software.disable();
  (void)hardware.disable();
  report(software, labels);
  report(hardware, labels);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
