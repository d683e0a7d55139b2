// tools/usgc-top.cpp — top for usgc processes: lists the calling user's processes that use usgc
// (linked or under LD_PRELOAD) from their live statistics blocks in /dev/shm
// (include/usgc/stats_block.h), with a detail view of one process.
//
//   usgc-top [-d SECONDS] [-n ITERATIONS] [-p PID] [--once | --json]
//
// Interactive (ncurses, when stdout is a terminal): ↑/↓ select, Enter opens the detail view of
// the selected process (Esc, Backspace or Enter goes back), sort keys m (heap in use: malloc and
// GC heap together), a (allocation rate), p (pid), c (command), q quits. -d is the refresh delay
// (default 1 s), -n stops after N refreshes, -p opens the detail view of PID.
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
#include <ncurses.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "alloc/stats_reader.hpp"
#include "kernel_iface/process_info.hpp"
#include "usgc/object.h"
#include "usgc/stats_block.h"

namespace {

using usgc::alloc::StatsBlockEntry;

struct Options {
  double delay_seconds = 1.0;
  bool delay_given = false;
  long iterations = -1;  // -1: until q
  int detail_pid = 0;
  bool once = false;
  bool json = false;
};

// Per-second rates of a process's counters between two updates of its block; -1: not known yet
// (one sample so far).
struct Rates {
  double allocations_per_s = -1;         // malloc_count
  double collections_per_s = -1;         // collections[PRIVATE] + collections[SHARED]
  double barrier_slow_paths_per_s = -1;  // barrier_slow_paths
  double publications_per_s = -1;        // publications
};

struct Process {
  usgc_stats_block block;
  Rates rates;
};

struct Snapshot {
  std::vector<Process> processes;
  std::vector<std::string> notes;
};

// The collections GC/s counts: private and shared (explicit ones are a subset of these; minor
// shared collections are reserved and counted in neither).
uint64_t rated_collections(const usgc_stats_block& block) {
  return block.collections[USGC_STATS_GC_PRIVATE] + block.collections[USGC_STATS_GC_SHARED];
}

// The counters behind Rates, in the same order.
struct RatedCounters {
  uint64_t allocations;
  uint64_t collections;
  uint64_t barrier_slow_paths;
  uint64_t publications;
};

RatedCounters rated_counters_of(const usgc_stats_block& block) {
  return {block.malloc_count, rated_collections(block), block.barrier_slow_paths,
          block.publications};
}

// Previous figures per process, for rates: keyed by pid, checked by start time.
struct RateSample {
  uint64_t start_time_ticks;
  uint64_t update_monotonic_ns;
  RatedCounters counters;
  Rates rates;
};

// The GC heap in use: the sum over the ownership classes (usgc/object.h, usgc_ownership).
uint64_t gc_heap_bytes_in_use(const usgc_stats_block& block) {
  uint64_t total = 0;
  for (uint64_t bytes : block.gc_bytes_in_use) total += bytes;
  return total;
}

// The process's heap in use: the malloc heap and the GC heap (separate mappings, no overlap).
uint64_t heap_bytes_in_use(const usgc_stats_block& block) {
  return block.bytes_in_use + gc_heap_bytes_in_use(block);
}

// (now - before) / seconds, or -1 if the counter went backwards (it never should).
double rate_between(uint64_t before, uint64_t now, double seconds) {
  return now >= before ? static_cast<double>(now - before) / seconds : -1;
}

// The text with every byte outside printable ASCII (0x20..0x7e), and the backslash itself, as
// \xNN: safe to print on a terminal whoever chose the bytes (no escape sequence, no C1 control,
// no invalid UTF-8), and unambiguous (a literal "\x1b" in the input prints as "\x5cx1b").
std::string printable_text(const char* bytes, size_t length) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length);
  for (size_t i = 0; i < length; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string printable_text(const std::string& text) {
  return printable_text(text.data(), text.size());
}

enum class SortKey { kMemory, kAllocRate, kPid, kCommand };

const char* sort_key_name(SortKey key) {
  switch (key) {
    case SortKey::kMemory:
      return "memory";
    case SortKey::kAllocRate:
      return "alloc rate";
    case SortKey::kPid:
      return "pid";
    case SortKey::kCommand:
      return "command";
  }
  return "?";
}

class Sampler {
 public:
  Snapshot sample() {
    Snapshot snapshot;
    ScanOutput output{&snapshot};
    usgc::kernel::Status status = usgc::alloc::scan_stats_blocks(usgc::kernel::current_user_id(),
                                                                 true, &Sampler::visit, &output);
    if (!status.ok()) {
      snapshot.notes.push_back(std::string("cannot list ") + USGC_STATS_BLOCK_DIRECTORY + ": " +
                               std::strerror(status.error()));
    }
    std::map<int, RateSample> next;
    for (Process& process : snapshot.processes) {
      const usgc_stats_block& block = process.block;
      RateSample current{block.start_time_ticks, block.update_monotonic_ns,
                         rated_counters_of(block), Rates{}};
      auto previous = previous_.find(block.pid);
      if (previous != previous_.end() &&
          previous->second.start_time_ticks == block.start_time_ticks) {
        const RateSample& before = previous->second;
        if (block.update_monotonic_ns > before.update_monotonic_ns) {
          double seconds =
              static_cast<double>(block.update_monotonic_ns - before.update_monotonic_ns) / 1e9;
          const RatedCounters& was = before.counters;
          const RatedCounters& now = current.counters;
          current.rates.allocations_per_s = rate_between(was.allocations, now.allocations, seconds);
          current.rates.collections_per_s = rate_between(was.collections, now.collections, seconds);
          current.rates.barrier_slow_paths_per_s =
              rate_between(was.barrier_slow_paths, now.barrier_slow_paths, seconds);
          current.rates.publications_per_s =
              rate_between(was.publications, now.publications, seconds);
        } else {
          // No new update in between: the process has not refilled since (idle, or allocating
          // only from warm pages). Keep the figures of the last interval it published.
          current = before;
        }
      }
      process.rates = current.rates;
      next[block.pid] = current;
    }
    previous_ = std::move(next);
    return snapshot;
  }

 private:
  struct ScanOutput {
    Snapshot* snapshot;
  };

  static void visit(const StatsBlockEntry& entry, void* context) {
    Snapshot* snapshot = static_cast<ScanOutput*>(context)->snapshot;
    // The name is anyone's choice (any user may create files in /dev/shm): escaped.
    std::string path = std::string(USGC_STATS_BLOCK_DIRECTORY) + "/" +
                       printable_text(entry.name, strnlen(entry.name, sizeof(entry.name)));
    if (entry.read.error != usgc::alloc::StatsReadError::kNone) {
      std::string note =
          "skipped " + path + ": " + usgc::alloc::stats_read_error_text(entry.read.error);
      switch (entry.read.error) {
        case usgc::alloc::StatsReadError::kBadVersion:
          note += " " + std::to_string(entry.read.detail) + " (this usgc-top reads version " +
                  std::to_string(USGC_STATS_BLOCK_VERSION) + ")";
          break;
        case usgc::alloc::StatsReadError::kShortFile:
          note += " (" + std::to_string(entry.read.detail) + " bytes, want " +
                  std::to_string(sizeof(usgc_stats_block)) + ")";
          break;
        case usgc::alloc::StatsReadError::kOpenFailed:
        case usgc::alloc::StatsReadError::kReadFailed:
          note += std::string(" (") + std::strerror(static_cast<int>(entry.read.detail)) + ")";
          break;
        default:
          break;
      }
      snapshot->notes.push_back(note);
      return;
    }
    if (usgc::alloc::writer_state_is_stale(entry.writer)) {
      snapshot->notes.push_back(
          std::string(entry.removed ? "removed stale " : "stale (could not remove) ") + path +
          " (" + usgc::alloc::writer_state_text(entry.writer) + ")");
      return;
    }
    snapshot->processes.push_back(Process{entry.block, Rates{}});
  }

  std::map<int, RateSample> previous_;
};

void sort_processes(std::vector<Process>& processes, SortKey key) {
  std::stable_sort(processes.begin(), processes.end(), [key](const Process& a, const Process& b) {
    switch (key) {
      case SortKey::kMemory:
        if (heap_bytes_in_use(a.block) != heap_bytes_in_use(b.block)) {
          return heap_bytes_in_use(a.block) > heap_bytes_in_use(b.block);
        }
        break;
      case SortKey::kAllocRate:
        if (a.rates.allocations_per_s != b.rates.allocations_per_s) {
          return a.rates.allocations_per_s > b.rates.allocations_per_s;
        }
        break;
      case SortKey::kCommand: {
        int order = std::strncmp(a.block.command, b.block.command, sizeof(a.block.command));
        if (order != 0) return order < 0;
        break;
      }
      case SortKey::kPid:
        break;
    }
    return a.block.pid < b.block.pid;
  });
}

// ---- formatting ------------------------------------------------------------------------------

// The command name of the block's process (its comm, up to 15 bytes, chosen by that process),
// escaped with printable_text.
std::string command_of(const usgc_stats_block& block) {
  return printable_text(block.command, strnlen(block.command, sizeof(block.command)));
}

std::string human_bytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "K", "M", "G", "T"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof(text), "%" PRIu64 "B", bytes);
  } else {
    std::snprintf(text, sizeof(text), "%.1f%s", value, kUnits[unit]);
  }
  return text;
}

std::string human_rate(double rate) {
  if (rate < 0) return "-";
  char text[32];
  if (rate >= 1e9) {
    std::snprintf(text, sizeof(text), "%.1fG", rate / 1e9);
  } else if (rate >= 1e6) {
    std::snprintf(text, sizeof(text), "%.1fM", rate / 1e6);
  } else if (rate >= 1e3) {
    std::snprintf(text, sizeof(text), "%.1fk", rate / 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.0f", rate);
  }
  return text;
}

std::string human_duration_ns(uint64_t ns) {
  char text[32];
  if (ns >= 1000000000ull) {
    std::snprintf(text, sizeof(text), "%.2fs", static_cast<double>(ns) / 1e9);
  } else if (ns >= 1000000) {
    std::snprintf(text, sizeof(text), "%.2fms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.1fus", static_cast<double>(ns) / 1e3);
  }
  return text;
}

uint64_t total_collections(const usgc_stats_block& block) {
  uint64_t total = 0;
  for (uint64_t count : block.collections) total += count;
  return total;
}

// The GC exists for this process once it reports a collection; until then its columns are "-".
bool has_gc_figures(const usgc_stats_block& block) {
  return total_collections(block) != 0;
}

// The process has used the GC heap (allocated in it or collected); else its GC heap shows "-".
bool uses_gc_heap(const usgc_stats_block& block) {
  return has_gc_figures(block) || gc_heap_bytes_in_use(block) != 0 || block.gc_bytes_committed != 0;
}

// The worst pause of either kind.
uint64_t worst_pause_ns(const usgc_stats_block& block) {
  return std::max(block.max_pause_ns, block.private_max_pause_ns);
}

uint64_t histogram_total(const uint64_t* buckets) {
  uint64_t total = 0;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i) total += buckets[i];
  return total;
}

uint64_t total_stops(const usgc_stats_block& block) {
  return histogram_total(block.time_to_safepoint_histogram);
}

// The bucket of a histogram (usgc/stats_block.h: pause and time-to-safepoint buckets) that holds
// the given quantile, or -1 when the histogram is empty.
int histogram_quantile_bucket(const uint64_t* buckets, double quantile) {
  uint64_t total = histogram_total(buckets);
  if (total == 0) return -1;
  uint64_t rank = static_cast<uint64_t>(quantile * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i) {
    seen += buckets[i];
    if (seen >= rank) return i;
  }
  return -1;
}

// The bound of a bucket in nanoseconds: its upper bound (durations are below it), except for the
// last bucket, which has none: its lower bound (durations are at or above it).
uint64_t histogram_bucket_bound_ns(int bucket) {
  if (bucket == USGC_STATS_HISTOGRAM_BUCKETS - 1) return (1ull << (bucket - 1)) * 1000;
  return (1ull << bucket) * 1000;
}

// The bound of the bucket holding the given quantile ("< 1 us", "< 2^i us", ">= 262.14ms"), or "-".
std::string histogram_quantile_text(const uint64_t* buckets, double quantile) {
  int bucket = histogram_quantile_bucket(buckets, quantile);
  if (bucket < 0) return "-";
  if (bucket == 0) return "< 1 us";
  std::string bound = human_duration_ns(histogram_bucket_bound_ns(bucket));
  return (bucket == USGC_STATS_HISTOGRAM_BUCKETS - 1 ? ">= " : "< ") + bound;
}

// "p50 / p99 / max" of a pause histogram and its exact maximum, or "-" when it is empty.
std::string pause_summary_text(const uint64_t* buckets, uint64_t max_pause_ns) {
  uint64_t pauses = histogram_total(buckets);
  if (pauses == 0) return "-";
  return histogram_quantile_text(buckets, 0.5) + " / " + histogram_quantile_text(buckets, 0.99) +
         " / " + human_duration_ns(max_pause_ns) + " (" + std::to_string(pauses) + " pauses)";
}

std::string gc_rate_text(const Process& process) {
  if (!has_gc_figures(process.block)) return "-";
  return human_rate(process.rates.collections_per_s);
}

std::string row_header() {
  char text[200];
  std::snprintf(text, sizeof(text), "%7s %-15s %9s %9s %9s %9s %9s %7s %9s %6s %8s %8s", "PID",
                "COMMAND", "IN USE", "GC HEAP", "COMMITTED", "RSS", "ALLOC/s", "THREADS",
                "DECOMMITS", "GC/s", "PAUSE", "MAXPAUSE");
  return text;
}

std::string row_text(const Process& process) {
  const usgc_stats_block& b = process.block;
  char text[240];
  bool gc = has_gc_figures(b);
  std::snprintf(text, sizeof(text),
                "%7d %-15s %9s %9s %9s %9s %9s %7" PRIu64 " %9" PRIu64 " %6s %8s %8s", b.pid,
                command_of(b).c_str(), human_bytes(b.bytes_in_use).c_str(),
                uses_gc_heap(b) ? human_bytes(gc_heap_bytes_in_use(b)).c_str() : "-",
                human_bytes(b.bytes_committed).c_str(), human_bytes(b.rss_bytes).c_str(),
                human_rate(process.rates.allocations_per_s).c_str(), b.threads,
                b.decommits_io_uring + b.decommits_madvise, gc_rate_text(process).c_str(),
                gc ? human_duration_ns(b.last_pause_ns).c_str() : "-",
                gc ? human_duration_ns(worst_pause_ns(b)).c_str() : "-");
  return text;
}

std::string age_text(uint64_t unix_ns) {
  if (unix_ns == 0) return "-";
  auto now_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  if (now_ns < unix_ns) return "0.0s ago";
  char text[48];
  double seconds = static_cast<double>(now_ns - unix_ns) / 1e9;
  std::snprintf(text, sizeof(text), "%.1fs ago", seconds);
  return text;
}

// Lines of the detail view (also printed by --once -p PID). Every piece of text from the block is
// a number or went through printable_text (command_of).
std::vector<std::string> detail_lines(const Process& process) {
  const usgc_stats_block& b = process.block;
  std::vector<std::string> lines;
  auto add = [&lines](const char* label, const std::string& value) {
    char text[200];
    std::snprintf(text, sizeof(text), "  %-26s %s", label, value.c_str());
    lines.push_back(text);
  };
  auto number = [](uint64_t value) { return std::to_string(value); };
  auto per_second = [](double rate) { return human_rate(rate) + (rate >= 0 ? "/s" : ""); };
  lines.push_back("process " + std::to_string(b.pid) + " (" + command_of(b) + "), uid " +
                  std::to_string(b.uid));
  add("started", age_text(b.start_time_unix_ns));
  add("figures taken", age_text(b.update_time_unix_ns) + " (update " + number(b.publish_count) +
                           ", every " + number(b.publish_interval_ms) + " ms while allocating)");
  lines.push_back("malloc heap");
  add("bytes reserved", human_bytes(b.bytes_reserved) + " (" + number(b.bytes_reserved) + ")");
  add("bytes committed", human_bytes(b.bytes_committed) + " (" + number(b.bytes_committed) + ")");
  add("bytes in use", human_bytes(b.bytes_in_use) + " (" + number(b.bytes_in_use) + ")");
  uint64_t small =
      b.bytes_in_use >= b.bytes_large_in_use ? b.bytes_in_use - b.bytes_large_in_use : 0;
  add("  small and medium", human_bytes(small));
  add("  large", human_bytes(b.bytes_large_in_use));
  add("resident (RSS)", human_bytes(b.rss_bytes));
  add("segments", number(b.segments));
  lines.push_back("allocation");
  add("mallocs", number(b.malloc_count));
  add("frees", number(b.free_count) + " (remote " + number(b.remote_free_count) + ")");
  add("allocation rate", per_second(process.rates.allocations_per_s));
  add("threads with a heap", number(b.threads));
  lines.push_back("return to the OS");
  add("decommits io_uring", number(b.decommits_io_uring));
  add("decommits madvise", number(b.decommits_madvise));
  add("bytes decommitted", human_bytes(b.bytes_decommitted));
  lines.push_back("NUMA (" + number(b.numa_nodes) + (b.numa_nodes == 1 ? " node)" : " nodes)"));
  uint32_t shown = std::min<uint32_t>(std::max<uint32_t>(b.numa_nodes, 1), USGC_STATS_MAX_NODES);
  for (uint32_t node = 0; node < shown; ++node) {
    std::string label = "node " + std::to_string(node) + " reserved";
    add(label.c_str(), (b.flags & USGC_STATS_FLAG_NODE_BYTES) != 0
                           ? human_bytes(b.node_bytes_reserved[node])
                           : std::string("unknown"));
  }
  lines.push_back("GC heap");
  if (!uses_gc_heap(b)) {
    add("bytes in use", "- (no GC objects: the goroutine runtime's collector is not in use)");
  } else {
    uint64_t gc_in_use = gc_heap_bytes_in_use(b);
    add("bytes in use", human_bytes(gc_in_use) + " (" + number(gc_in_use) + ")");
    add("  stack-local", human_bytes(b.gc_bytes_in_use[USGC_STACK_LOCAL]));
    add("  goroutine-private", human_bytes(b.gc_bytes_in_use[USGC_GOROUTINE_PRIVATE]));
    add("  goroutine-shared", human_bytes(b.gc_bytes_in_use[USGC_GOROUTINE_SHARED]));
    add("  global", human_bytes(b.gc_bytes_in_use[USGC_GLOBAL_SHARED]));
    add("GC bytes committed",
        human_bytes(b.gc_bytes_committed) + " (" + number(b.gc_bytes_committed) + ")");
    for (uint32_t node = 0; node < shown; ++node) {  // beside the allocator's per-node figures
      std::string label = "GC node " + std::to_string(node) + " committed/in use";
      add(label.c_str(), human_bytes(uint64_t{b.gc_node_committed_kib[node]} * 1024) + " / " +
                             human_bytes(uint64_t{b.gc_node_in_use_kib[node]} * 1024));
    }
    add("malloc + GC in use", human_bytes(heap_bytes_in_use(b)));
    add("barrier slow paths", number(b.barrier_slow_paths) + " (" +
                                  per_second(process.rates.barrier_slow_paths_per_s) + ")");
    add("publications", number(b.publications) + " (" +
                            per_second(process.rates.publications_per_s) + "), " +
                            number(b.objects_published) + " objects published");
  }
  lines.push_back("runtime and GC");
  bool gc = has_gc_figures(b);
  add("goroutines", gc || b.goroutines != 0 ? number(b.goroutines) : "-");
  add("collections", gc ? number(b.collections[USGC_STATS_GC_PRIVATE]) + " private, " +
                              number(b.collections[USGC_STATS_GC_SHARED]) + " shared, " +
                              number(b.collections[USGC_STATS_GC_SHARED_MINOR]) +
                              " shared minor; " + number(b.collections[USGC_STATS_GC_EXPLICIT]) +
                              " of them explicit"
                        : "-");
  add("collections per second", gc ? per_second(process.rates.collections_per_s) : "-");
  add("last / worst pause",
      gc ? human_duration_ns(b.last_pause_ns) + " / " + human_duration_ns(worst_pause_ns(b)) : "-");
  add("private pauses p50/p99/max",
      pause_summary_text(b.private_pause_histogram, b.private_max_pause_ns));
  add("shared pauses p50/p99/max", pause_summary_text(b.pause_histogram, b.max_pause_ns));
  add("time in GC", gc ? human_duration_ns(b.gc_time_ns) : "-");
  uint64_t stops = total_stops(b);
  add("stops of the world", stops != 0 ? number(stops) : "-");
  add("time to safepoint p50/p99",
      stops != 0 ? histogram_quantile_text(b.time_to_safepoint_histogram, 0.5) + " / " +
                       histogram_quantile_text(b.time_to_safepoint_histogram, 0.99)
                 : "-");
  return lines;
}

// A JSON string body. The callers pass printable_text output, so only '"' and '\\' need escaping;
// the control-character branch keeps the output valid JSON for any input all the same.
std::string json_escape(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// JSON pieces; each prints `"name": value, `.
void print_json_rate(const char* name, double rate) {
  if (rate >= 0) {
    std::printf("\"%s\": %.1f, ", name, rate);
  } else {
    std::printf("\"%s\": null, ", name);
  }
}

void print_json_histogram(const char* name, const uint64_t* buckets) {
  std::printf("\"%s\": [", name);
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i)
    std::printf("%s%" PRIu64, i ? ", " : "", buckets[i]);
  std::printf("], ");
}

// The bucket bound of a quantile in ns (see histogram_bucket_bound_ns), null when empty.
void print_json_quantile(const char* name, const uint64_t* buckets, double quantile) {
  int bucket = histogram_quantile_bucket(buckets, quantile);
  if (bucket < 0) {
    std::printf("\"%s\": null, ", name);
  } else {
    std::printf("\"%s\": %" PRIu64 ", ", name, histogram_bucket_bound_ns(bucket));
  }
}

// A figure that is null until the process reports a collection (like the existing GC keys).
void print_json_gc_figure(const char* name, bool known, uint64_t value) {
  if (known) {
    std::printf("\"%s\": %" PRIu64 ", ", name, value);
  } else {
    std::printf("\"%s\": null, ", name);
  }
}

void print_json_gc_fields(const Process& process) {
  const usgc_stats_block& b = process.block;
  bool gc = has_gc_figures(b);
  std::printf("\"gc_bytes_in_use\": {\"stack_local\": %" PRIu64 ", \"private\": %" PRIu64
              ", \"shared\": %" PRIu64 ", \"global\": %" PRIu64 "}, ",
              b.gc_bytes_in_use[USGC_STACK_LOCAL], b.gc_bytes_in_use[USGC_GOROUTINE_PRIVATE],
              b.gc_bytes_in_use[USGC_GOROUTINE_SHARED], b.gc_bytes_in_use[USGC_GLOBAL_SHARED]);
  std::printf("\"gc_heap_bytes_in_use\": %" PRIu64 ", \"heap_bytes_in_use\": %" PRIu64
              ", \"gc_bytes_committed\": %" PRIu64 ", ",
              gc_heap_bytes_in_use(b), heap_bytes_in_use(b), b.gc_bytes_committed);
  std::printf("\"collections_by_kind\": ");
  if (gc) {
    std::printf("{\"private\": %" PRIu64 ", \"shared\": %" PRIu64 ", \"shared_minor\": %" PRIu64
                ", \"explicit\": %" PRIu64 "}, ",
                b.collections[USGC_STATS_GC_PRIVATE], b.collections[USGC_STATS_GC_SHARED],
                b.collections[USGC_STATS_GC_SHARED_MINOR], b.collections[USGC_STATS_GC_EXPLICIT]);
  } else {
    std::printf("null, ");
  }
  print_json_rate("collections_per_s", gc ? process.rates.collections_per_s : -1);
  print_json_gc_figure("gc_time_ns", gc, b.gc_time_ns);
  print_json_gc_figure("private_max_pause_ns", gc, b.private_max_pause_ns);
  print_json_gc_figure("worst_pause_ns", gc, worst_pause_ns(b));
  print_json_histogram("private_pause_histogram_us", b.private_pause_histogram);
  print_json_histogram("pause_histogram_us", b.pause_histogram);
  print_json_quantile("private_pause_p50_ns", b.private_pause_histogram, 0.5);
  print_json_quantile("private_pause_p99_ns", b.private_pause_histogram, 0.99);
  print_json_quantile("shared_pause_p50_ns", b.pause_histogram, 0.5);
  print_json_quantile("shared_pause_p99_ns", b.pause_histogram, 0.99);
  std::printf("\"barrier_slow_paths\": %" PRIu64 ", ", b.barrier_slow_paths);
  print_json_rate("barrier_slow_paths_per_s", process.rates.barrier_slow_paths_per_s);
  std::printf("\"publications\": %" PRIu64 ", ", b.publications);
  print_json_rate("publications_per_s", process.rates.publications_per_s);
  std::printf("\"objects_published\": %" PRIu64 ", ", b.objects_published);
}

void print_json(const Snapshot& snapshot) {
  std::printf("[");
  bool first = true;
  for (const Process& process : snapshot.processes) {
    const usgc_stats_block& b = process.block;
    std::printf("%s\n  {\"pid\": %d, \"uid\": %u, \"command\": \"%s\", ", first ? "" : ",", b.pid,
                b.uid, json_escape(command_of(b)).c_str());
    first = false;
    std::printf("\"start_time_unix_ns\": %" PRIu64 ", \"update_time_unix_ns\": %" PRIu64
                ", \"publish_count\": %" PRIu64 ", ",
                b.start_time_unix_ns, b.update_time_unix_ns, b.publish_count);
    std::printf("\"bytes_reserved\": %" PRIu64 ", \"bytes_committed\": %" PRIu64
                ", \"bytes_in_use\": %" PRIu64 ", \"bytes_large_in_use\": %" PRIu64
                ", \"rss_bytes\": %" PRIu64 ", ",
                b.bytes_reserved, b.bytes_committed, b.bytes_in_use, b.bytes_large_in_use,
                b.rss_bytes);
    std::printf("\"malloc_count\": %" PRIu64 ", \"free_count\": %" PRIu64
                ", \"remote_free_count\": %" PRIu64 ", ",
                b.malloc_count, b.free_count, b.remote_free_count);
    print_json_rate("alloc_rate_per_s", process.rates.allocations_per_s);
    std::printf("\"segments\": %" PRIu64 ", \"threads\": %" PRIu64
                ", \"decommits_io_uring\": %" PRIu64 ", \"decommits_madvise\": %" PRIu64
                ", \"bytes_decommitted\": %" PRIu64 ", \"numa_nodes\": %u, ",
                b.segments, b.threads, b.decommits_io_uring, b.decommits_madvise,
                b.bytes_decommitted, b.numa_nodes);
    std::printf("\"node_bytes_reserved\": ");
    if ((b.flags & USGC_STATS_FLAG_NODE_BYTES) == 0) {
      std::printf("null, ");
    } else {
      uint32_t shown =
          std::min<uint32_t>(std::max<uint32_t>(b.numa_nodes, 1), USGC_STATS_MAX_NODES);
      std::printf("[");
      for (uint32_t node = 0; node < shown; ++node)
        std::printf("%s%" PRIu64, node ? ", " : "", b.node_bytes_reserved[node]);
      std::printf("], ");
    }
    print_json_histogram("time_to_safepoint_histogram_us", b.time_to_safepoint_histogram);
    print_json_gc_fields(process);
    if (has_gc_figures(b)) {
      std::printf("\"goroutines\": %" PRIu64 ", \"collections\": [%" PRIu64 ", %" PRIu64
                  ", %" PRIu64 ", %" PRIu64 "], \"last_pause_ns\": %" PRIu64
                  ", \"max_pause_ns\": %" PRIu64 "}",
                  b.goroutines, b.collections[0], b.collections[1], b.collections[2],
                  b.collections[3], b.last_pause_ns, b.max_pause_ns);
    } else {
      std::printf("\"goroutines\": %" PRIu64
                  ", \"collections\": null, \"last_pause_ns\": null, \"max_pause_ns\": null}",
                  b.goroutines);
    }
  }
  std::printf("%s]\n", first ? "" : "\n");
}

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

// ---- interactive -----------------------------------------------------------------------------

class Screen {
 public:
  explicit Screen(const Options& options) : options_(options) {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    if (options.detail_pid != 0) {
      selected_pid_ = options.detail_pid;
      in_detail_ = true;
    }
  }
  ~Screen() { endwin(); }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  int run() {
    Sampler sampler;
    snapshot_ = sampler.sample();
    auto next_sample = std::chrono::steady_clock::now() + delay();
    long refreshes = 0;
    for (;;) {
      sort_processes(snapshot_.processes, sort_key_);
      keep_selection_valid();
      draw();
      auto now = std::chrono::steady_clock::now();
      if (now >= next_sample) {
        snapshot_ = sampler.sample();
        next_sample = now + delay();
        if (options_.iterations > 0 && ++refreshes >= options_.iterations) return 0;
        continue;
      }
      int wait_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(next_sample - now).count());
      timeout(std::max(wait_ms, 1));
      int key = getch();
      if (key == ERR) continue;
      if (!handle_key(key)) return 0;
    }
  }

 private:
  std::chrono::steady_clock::duration delay() const {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(options_.delay_seconds));
  }

  // False to quit.
  bool handle_key(int key) {
    switch (key) {
      case 'q':
      case 'Q':
        return false;
      case 'm':
        sort_key_ = SortKey::kMemory;
        break;
      case 'a':
        sort_key_ = SortKey::kAllocRate;
        break;
      case 'p':
        sort_key_ = SortKey::kPid;
        break;
      case 'c':
        sort_key_ = SortKey::kCommand;
        break;
      case KEY_UP:
        move_selection(-1);
        break;
      case KEY_DOWN:
        move_selection(1);
        break;
      case KEY_ENTER:
      case '\n':
      case '\r':
        in_detail_ = !in_detail_;
        break;
      case 27:  // Esc
      case KEY_BACKSPACE:
      case 127:
      case 'b':
        in_detail_ = false;
        break;
      default:
        break;
    }
    return true;
  }

  int selected_index() const {
    for (size_t i = 0; i < snapshot_.processes.size(); ++i) {
      if (snapshot_.processes[i].block.pid == selected_pid_) return static_cast<int>(i);
    }
    return -1;
  }

  void move_selection(int step) {
    if (snapshot_.processes.empty()) return;
    int index = selected_index();
    index = std::clamp(index + step, 0, static_cast<int>(snapshot_.processes.size()) - 1);
    selected_pid_ = snapshot_.processes[static_cast<size_t>(index)].block.pid;
  }

  void keep_selection_valid() {
    if (in_detail_) return;  // the detail view keeps its pid, and says when it is gone
    if (selected_index() < 0 && !snapshot_.processes.empty())
      selected_pid_ = snapshot_.processes[0].block.pid;
  }

  void draw() {
    erase();
    int rows = LINES;
    mvprintw(0, 0, "usgc-top - %zu usgc process%s of uid %u, sorted by %s, every %.1fs",
             snapshot_.processes.size(), snapshot_.processes.size() == 1 ? "" : "es",
             usgc::kernel::current_user_id(), sort_key_name(sort_key_), options_.delay_seconds);
    mvprintw(1, 0, "%s",
             in_detail_ ? "Enter/Esc: back  q: quit"
                        : "Up/Down: select  Enter: detail  m/a/p/c: sort by memory/alloc "
                          "rate/pid/command  q: quit");
    int line = 3;
    int notes_room = std::min<int>(static_cast<int>(snapshot_.notes.size()), 4);
    int last_body_line = rows - 1 - notes_room;
    if (in_detail_) {
      int index = selected_index();
      if (index < 0) {
        mvprintw(line, 0,
                 "pid %d: no usgc statistics block (exited, USGC_STATS=0, or not a usgc process)",
                 selected_pid_);
      } else {
        for (const std::string& text :
             detail_lines(snapshot_.processes[static_cast<size_t>(index)])) {
          if (line > last_body_line) break;
          mvprintw(line++, 0, "%s", text.c_str());
        }
      }
    } else {
      attron(A_BOLD);
      mvprintw(line++, 0, "%s", row_header().c_str());
      attroff(A_BOLD);
      for (const Process& process : snapshot_.processes) {
        if (line > last_body_line) break;
        bool selected = process.block.pid == selected_pid_;
        if (selected) attron(A_REVERSE);
        mvprintw(line++, 0, "%s", row_text(process).c_str());
        if (selected) attroff(A_REVERSE);
      }
    }
    for (int i = 0; i < notes_room; ++i) {
      mvprintw(rows - notes_room + i, 0, "%s", snapshot_.notes[static_cast<size_t>(i)].c_str());
    }
    refresh();
  }

  const Options& options_;
  Snapshot snapshot_;
  SortKey sort_key_ = SortKey::kMemory;
  int selected_pid_ = 0;
  bool in_detail_ = false;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: usgc-top [-d SECONDS] [-n ITERATIONS] [-p PID] [--once | --json]\n"
               "  lists this user's processes using usgc from their statistics blocks in /dev/shm\n"
               "  -d SECONDS    refresh delay (default 1; with --once/--json: the gap between the "
               "two samples)\n"
               "  -n N          stop after N refreshes\n"
               "  -p PID        show the detail view of PID\n"
               "  --once        one plain-text snapshot (also when stdout is not a terminal)\n"
               "  --json        one JSON array of the processes\n"
               "  keys: Up/Down select, Enter detail, m/a/p/c sort, q quit\n");
}

bool parse_options(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "usgc-top: %s needs a value\n", what);
        return nullptr;
      }
      return argv[++i];
    };
    if (argument == "--once") {
      options->once = true;
    } else if (argument == "--json") {
      options->json = true;
    } else if (argument == "-h" || argument == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (argument == "-d") {
      const char* text = value("-d");
      char* end = nullptr;
      double seconds = text ? std::strtod(text, &end) : 0;
      if (text == nullptr || *end != '\0' || !(seconds >= 0.05 && seconds <= 3600)) {
        std::fprintf(stderr, "usgc-top: -d wants seconds between 0.05 and 3600\n");
        return false;
      }
      options->delay_seconds = seconds;
      options->delay_given = true;
    } else if (argument == "-n") {
      const char* text = value("-n");
      char* end = nullptr;
      long count = text ? std::strtol(text, &end, 10) : 0;
      if (text == nullptr || *end != '\0' || count <= 0) {
        std::fprintf(stderr, "usgc-top: -n wants a positive count\n");
        return false;
      }
      options->iterations = count;
    } else if (argument == "-p") {
      const char* text = value("-p");
      char* end = nullptr;
      long pid = text ? std::strtol(text, &end, 10) : 0;
      if (text == nullptr || *end != '\0' || pid <= 0 || pid > 0x7fffffff) {
        std::fprintf(stderr, "usgc-top: -p wants a process id\n");
        return false;
      }
      options->detail_pid = static_cast<int>(pid);
    } else {
      std::fprintf(stderr, "usgc-top: unknown argument %s\n", printable_text(argument).c_str());
      usage(stderr);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, &options)) return 2;
  if (options.once || options.json || !isatty(STDOUT_FILENO)) return run_once(options);
  Screen screen(options);
  return screen.run();
}
