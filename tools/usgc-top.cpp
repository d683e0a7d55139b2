// tools/usgc-top.cpp — top for usgc processes: lists the calling user's processes that use usgc
// (linked or under LD_PRELOAD) from their live statistics blocks in /dev/shm
// (include/usgc/stats_block.h), with a detail view of one process.
//
//   usgc-top [-d SECONDS] [-n ITERATIONS] [-p PID] [--once | --json]
//   usgc-top --heap-profile PID [--timeout SECONDS]
//
// Interactive (ncurses, when stdout is a terminal): ↑/↓ select, Enter opens the detail view of
// the selected process (Esc, Backspace or Enter goes back), sort keys m (heap in use: malloc and
// GC heap together), a (allocation rate), p (pid), c (command), q quits. -d is the refresh delay
// (default 1 s), -n stops after N refreshes, -p opens the detail view of PID.
// Heap profile on request: `h` (interactive, the selected process) and --heap-profile PID ask a
// process running with USGC_PROF=1 to write its heap profile now, through its statistics block
// (tools/usgc_top/profile_request.hpp); the process picks the file, usgc-top prints where it is.
// Scripts: --once prints one plain-text table, --json a JSON array of the processes; the same
// happens (as --once) when stdout is not a terminal. Both take two samples -d apart (at most
// 0.5 s by default) so that rates are known. Both show the GC figures of the views below; JSON
// keys are only ever added (GC keys that need a collection are null until the first one).
//
// Trust: blocks are read by alloc/stats_reader.hpp, which accepts only the calling user's
// well-formed blocks; anything else becomes a note ("skipped /dev/shm/usgc-...: bad version"),
// on stderr in the script modes and at the bottom of the screen in the interactive one. Blocks of
// dead processes (killed, so their exit did not remove them) are removed, with a note.
// Text that others control (a file name in /dev/shm: anyone can create one; a command name: any
// process sets its own with prctl; every byte of a block) never reaches the terminal raw: each
// byte outside printable ASCII, and the backslash, is printed as \xNN (printable_text), in every
// mode. --json carries the same escaped text (so "\x1b" in a command is the four characters
// backslash, x, 1, b, written as "\\x1b" in JSON): a script printing a JSON field is as safe as
// the table.
//
// Memory: IN USE is the malloc heap (bytes_in_use), GC HEAP the garbage-collected heap (the sum of
// gc_bytes_in_use over the ownership classes); they are separate mappings, so the process's heap
// in use is their sum (what `m` sorts by). GC HEAP shows "-" in a process that never used the GC
// heap (e.g. under LD_PRELOAD).
// GC columns (collections per second, last and worst pause) show "-" until the collector reports a
// collection. GC/s counts private and shared collections (explicit ones are among them); the worst
// pause is the larger of the worst shared (max_pause_ns) and worst private (private_max_pause_ns).
// Rates (allocations, collections, barrier slow paths, publications per second) are taken between
// two updates of a block, on the writer's CLOCK_MONOTONIC (update_monotonic_ns).
// Pause and time-to-safepoint percentiles come from the histograms, so they are bucket bounds: the
// detail view prints "< 128.0us" (the upper bound of the bucket holding the percentile; the last
// bucket prints ">= 262.14ms", its lower bound) and --json gives the same bound in nanoseconds
// (*_p50_ns, *_p99_ns). Maxima are exact.
//
// Files: this one (the --once/--json run and main); tools/usgc_top/: model (sampling, rates,
// derived figures, sorting), text (escaping, units), views (table row, detail lines), json,
// screen (ncurses), options (command line), profile_request (--heap-profile and `h`).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tools/usgc_top/json.hpp"
#include "tools/usgc_top/model.hpp"
#include "tools/usgc_top/options.hpp"
#include "tools/usgc_top/profile_request.hpp"
#include "tools/usgc_top/screen.hpp"
#include "tools/usgc_top/views.hpp"

namespace usgc::top {
namespace {

// Notes are built from escaped names (Sampler::visit) and the reader's fixed texts.
void print_notes(const Snapshot& snapshot) {
  for (const std::string& note : snapshot.notes)
    std::fprintf(stderr, "usgc-top: %s\n", note.c_str());
}

// Two samples (rates), then one table, one detail or one JSON array.
int run_once(const Options& options) {
  Sampler sampler;
  Snapshot first = sampler.sample();
  double gap = options.delay_given ? options.delay_seconds : std::min(options.delay_seconds, 0.5);
  std::this_thread::sleep_for(std::chrono::duration<double>(gap));
  Snapshot snapshot = sampler.sample();
  // The first sample's notes (a stale block it removed) are not repeated by the second.
  for (const std::string& note : first.notes) {
    if (std::find(snapshot.notes.begin(), snapshot.notes.end(), note) == snapshot.notes.end()) {
      snapshot.notes.insert(snapshot.notes.begin(), note);
    }
  }
  sort_processes(snapshot.processes, SortKey::kMemory);
  print_notes(snapshot);
  if (options.detail_pid != 0) {
    auto found = std::find_if(snapshot.processes.begin(), snapshot.processes.end(),
                              [&](const Process& p) { return p.block.pid == options.detail_pid; });
    if (found == snapshot.processes.end()) {
      std::fprintf(
          stderr,
          "usgc-top: no usgc statistics block for pid %d (not a usgc process of this user, or "
          "USGC_STATS=0, or it has not allocated for 100 ms yet)\n",
          options.detail_pid);
      return 1;
    }
    if (options.json) {
      Snapshot one;
      one.processes.push_back(*found);
      print_json(one);
    } else {
      for (const std::string& line : detail_lines(*found)) std::printf("%s\n", line.c_str());
    }
    return 0;
  }
  if (options.json) {
    print_json(snapshot);
    return 0;
  }
  std::printf("%s\n", row_header().c_str());
  for (const Process& process : snapshot.processes) std::printf("%s\n", row_text(process).c_str());
  return 0;
}

}  // namespace
}  // namespace usgc::top

int main(int argc, char** argv) {
  using namespace usgc::top;
  Options options;
  if (!parse_options(argc, argv, &options)) return 2;
  if (options.heap_profile_pid != 0) return run_heap_profile_request(options);
  if (options.once || options.json || !isatty(STDOUT_FILENO)) return run_once(options);
  return run_screen(options);
}
