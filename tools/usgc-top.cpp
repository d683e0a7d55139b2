// tools/usgc-top.cpp — top for usgc processes: lists the calling user's processes that use usgc
// (linked or under LD_PRELOAD) from their live statistics blocks in /dev/shm
// (include/usgc/stats_block.h), with a detail view of one process.
//
//   usgc-top [-d SECONDS] [-n ITERATIONS] [-p PID] [--once | --json]
//
// Interactive (ncurses, when stdout is a terminal): ↑/↓ select, Enter opens the detail view of
// the selected process (Esc, Backspace or Enter goes back), sort keys m (heap in use), a
// (allocation rate), p (pid), c (command), q quits. -d is the refresh delay (default 1 s), -n
// stops after N refreshes, -p opens the detail view of PID.
// Scripts: --once prints one plain-text table, --json a JSON array of the processes; the same
// happens (as --once) when stdout is not a terminal. Both take two samples -d apart (at most
// 0.5 s by default) so that rates are known.
//
// Trust: blocks are read by alloc/stats_reader.hpp, which accepts only the calling user's
// well-formed blocks; anything else becomes a note ("skipped /dev/shm/usgc-...: bad version"),
// on stderr in the script modes and at the bottom of the screen in the interactive one. Blocks of
// dead processes (killed, so their exit did not remove them) are removed, with a note.
//
// GC columns (collections per second, last and worst pause) show "-" until the collector
// publishes figures (version 1 blocks have them zero).
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

struct Process {
  usgc_stats_block block;
  double alloc_rate_per_s = -1;  // -1: not known yet (one sample)
};

struct Snapshot {
  std::vector<Process> processes;
  std::vector<std::string> notes;
};

// Previous figures per process, for rates: keyed by pid, checked by start time.
struct RateSample {
  uint64_t start_time_ticks;
  uint64_t malloc_count;
  uint64_t update_monotonic_ns;
  double rate;
};

enum class SortKey { kMemory, kAllocRate, kPid, kCommand };

const char* sort_key_name(SortKey key) {
  switch (key) {
    case SortKey::kMemory: return "memory";
    case SortKey::kAllocRate: return "alloc rate";
    case SortKey::kPid: return "pid";
    case SortKey::kCommand: return "command";
  }
  return "?";
}

class Sampler {
 public:
  Snapshot sample() {
    Snapshot snapshot;
    ScanOutput output{&snapshot};
    usgc::kernel::Status status =
        usgc::alloc::scan_stats_blocks(usgc::kernel::current_user_id(), true, &Sampler::visit, &output);
    if (!status.ok()) {
      snapshot.notes.push_back(std::string("cannot list ") + USGC_STATS_BLOCK_DIRECTORY + ": " +
                               std::strerror(status.error()));
    }
    std::map<int, RateSample> next;
    for (Process& process : snapshot.processes) {
      const usgc_stats_block& block = process.block;
      RateSample current{block.start_time_ticks, block.malloc_count, block.update_monotonic_ns, -1};
      auto previous = previous_.find(block.pid);
      if (previous != previous_.end() && previous->second.start_time_ticks == block.start_time_ticks) {
        const RateSample& before = previous->second;
        if (block.update_monotonic_ns > before.update_monotonic_ns && block.malloc_count >= before.malloc_count) {
          double seconds = static_cast<double>(block.update_monotonic_ns - before.update_monotonic_ns) / 1e9;
          current.rate = static_cast<double>(block.malloc_count - before.malloc_count) / seconds;
        } else {
          // No new update in between: the process has not refilled since (idle, or allocating
          // only from warm pages). Keep the figures of the last interval it published.
          current = before;
        }
      }
      process.alloc_rate_per_s = current.rate;
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
    std::string path = std::string(USGC_STATS_BLOCK_DIRECTORY) + "/" + entry.name;
    if (entry.read.error != usgc::alloc::StatsReadError::kNone) {
      std::string note = "skipped " + path + ": " + usgc::alloc::stats_read_error_text(entry.read.error);
      switch (entry.read.error) {
        case usgc::alloc::StatsReadError::kBadVersion:
          note += " " + std::to_string(entry.read.detail) + " (this usgc-top reads version " +
                  std::to_string(USGC_STATS_BLOCK_VERSION) + ")";
          break;
        case usgc::alloc::StatsReadError::kShortFile:
          note += " (" + std::to_string(entry.read.detail) + " bytes, want " + std::to_string(sizeof(usgc_stats_block)) + ")";
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
      snapshot->notes.push_back(std::string(entry.removed ? "removed stale " : "stale (could not remove) ") + path +
                                " (" + usgc::alloc::writer_state_text(entry.writer) + ")");
      return;
    }
    snapshot->processes.push_back(Process{entry.block, -1});
  }

  std::map<int, RateSample> previous_;
};

void sort_processes(std::vector<Process>& processes, SortKey key) {
  std::stable_sort(processes.begin(), processes.end(), [key](const Process& a, const Process& b) {
    switch (key) {
      case SortKey::kMemory:
        if (a.block.bytes_in_use != b.block.bytes_in_use) return a.block.bytes_in_use > b.block.bytes_in_use;
        break;
      case SortKey::kAllocRate:
        if (a.alloc_rate_per_s != b.alloc_rate_per_s) return a.alloc_rate_per_s > b.alloc_rate_per_s;
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

std::string command_of(const usgc_stats_block& block) {
  return std::string(block.command, strnlen(block.command, sizeof(block.command)));
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
bool has_gc_figures(const usgc_stats_block& block) { return total_collections(block) != 0; }

uint64_t total_stops(const usgc_stats_block& block) {
  uint64_t stops = 0;
  for (uint64_t count : block.time_to_safepoint_histogram) stops += count;
  return stops;
}

// The upper bound of the histogram bucket holding the given quantile ("below 1 us", "< 2^i us").
std::string histogram_quantile_text(const uint64_t* buckets, double quantile) {
  uint64_t total = 0;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i) total += buckets[i];
  if (total == 0) return "-";
  uint64_t rank = static_cast<uint64_t>(quantile * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i) {
    seen += buckets[i];
    if (seen >= rank) {
      if (i == 0) return "< 1 us";
      if (i == USGC_STATS_HISTOGRAM_BUCKETS - 1) return ">= " + human_duration_ns((1ull << (i - 1)) * 1000);
      return "< " + human_duration_ns((1ull << i) * 1000);
    }
  }
  return "-";
}

std::string gc_rate_text(const usgc_stats_block& block) {
  if (!has_gc_figures(block) || block.update_monotonic_ns == 0) return "-";
  return "n/a";  // per-second GC rates need the collector's own time base; filled with the GC
}

std::string row_header() {
  char text[200];
  std::snprintf(text, sizeof(text), "%7s %-15s %9s %9s %9s %9s %7s %9s %6s %8s %8s", "PID", "COMMAND", "IN USE",
                "COMMITTED", "RSS", "ALLOC/s", "THREADS", "DECOMMITS", "GC/s", "PAUSE", "MAXPAUSE");
  return text;
}

std::string row_text(const Process& process) {
  const usgc_stats_block& b = process.block;
  char text[240];
  bool gc = has_gc_figures(b);
  std::snprintf(text, sizeof(text), "%7d %-15s %9s %9s %9s %9s %7" PRIu64 " %9" PRIu64 " %6s %8s %8s", b.pid,
                command_of(b).c_str(), human_bytes(b.bytes_in_use).c_str(), human_bytes(b.bytes_committed).c_str(),
                human_bytes(b.rss_bytes).c_str(), human_rate(process.alloc_rate_per_s).c_str(), b.threads,
                b.decommits_io_uring + b.decommits_madvise, gc_rate_text(b).c_str(),
                gc ? human_duration_ns(b.last_pause_ns).c_str() : "-",
                gc ? human_duration_ns(b.max_pause_ns).c_str() : "-");
  return text;
}

std::string age_text(uint64_t unix_ns) {
  if (unix_ns == 0) return "-";
  auto now_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (now_ns < unix_ns) return "0.0s ago";
  char text[48];
  double seconds = static_cast<double>(now_ns - unix_ns) / 1e9;
  std::snprintf(text, sizeof(text), "%.1fs ago", seconds);
  return text;
}

// Lines of the detail view (also printed by --once -p PID).
std::vector<std::string> detail_lines(const Process& process) {
  const usgc_stats_block& b = process.block;
  std::vector<std::string> lines;
  auto add = [&lines](const char* label, const std::string& value) {
    char text[200];
    std::snprintf(text, sizeof(text), "  %-26s %s", label, value.c_str());
    lines.push_back(text);
  };
  auto number = [](uint64_t value) { return std::to_string(value); };
  lines.push_back("process " + std::to_string(b.pid) + " (" + command_of(b) + "), uid " + std::to_string(b.uid));
  add("started", age_text(b.start_time_unix_ns));
  add("figures taken", age_text(b.update_time_unix_ns) + " (update " + number(b.publish_count) + ", every " +
                           number(b.publish_interval_ms) + " ms while allocating)");
  lines.push_back("heap");
  add("bytes reserved", human_bytes(b.bytes_reserved) + " (" + number(b.bytes_reserved) + ")");
  add("bytes committed", human_bytes(b.bytes_committed) + " (" + number(b.bytes_committed) + ")");
  add("bytes in use", human_bytes(b.bytes_in_use) + " (" + number(b.bytes_in_use) + ")");
  uint64_t small = b.bytes_in_use >= b.bytes_large_in_use ? b.bytes_in_use - b.bytes_large_in_use : 0;
  add("  small and medium", human_bytes(small));
  add("  large", human_bytes(b.bytes_large_in_use));
  add("resident (RSS)", human_bytes(b.rss_bytes));
  add("segments", number(b.segments));
  lines.push_back("allocation");
  add("mallocs", number(b.malloc_count));
  add("frees", number(b.free_count) + " (remote " + number(b.remote_free_count) + ")");
  add("allocation rate", human_rate(process.alloc_rate_per_s) + (process.alloc_rate_per_s >= 0 ? "/s" : ""));
  add("threads with a heap", number(b.threads));
  lines.push_back("return to the OS");
  add("decommits io_uring", number(b.decommits_io_uring));
  add("decommits madvise", number(b.decommits_madvise));
  add("bytes decommitted", human_bytes(b.bytes_decommitted));
  lines.push_back("NUMA (" + number(b.numa_nodes) + (b.numa_nodes == 1 ? " node)" : " nodes)"));
  uint32_t shown = std::min<uint32_t>(std::max<uint32_t>(b.numa_nodes, 1), USGC_STATS_MAX_NODES);
  for (uint32_t node = 0; node < shown; ++node) {
    std::string label = "node " + std::to_string(node) + " reserved";
    add(label.c_str(),
        (b.flags & USGC_STATS_FLAG_NODE_BYTES) != 0 ? human_bytes(b.node_bytes_reserved[node]) : std::string("unknown"));
  }
  lines.push_back("runtime and GC");
  bool gc = has_gc_figures(b);
  add("goroutines", gc || b.goroutines != 0 ? number(b.goroutines) : "-");
  add("collections young/old/full/explicit",
      gc ? number(b.collections[0]) + "/" + number(b.collections[1]) + "/" + number(b.collections[2]) + "/" +
               number(b.collections[3])
         : "-");
  add("last / worst pause", gc ? human_duration_ns(b.last_pause_ns) + " / " + human_duration_ns(b.max_pause_ns) : "-");
  add("time in GC", gc ? human_duration_ns(b.gc_time_ns) : "-");
  uint64_t stops = total_stops(b);
  add("stops of the world", stops != 0 ? number(stops) : "-");
  add("time to safepoint p50/p99",
      stops != 0 ? histogram_quantile_text(b.time_to_safepoint_histogram, 0.5) + " / " +
                       histogram_quantile_text(b.time_to_safepoint_histogram, 0.99)
                 : "-");
  return lines;
}

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

void print_json(const Snapshot& snapshot) {
  std::printf("[");
  bool first = true;
  for (const Process& process : snapshot.processes) {
    const usgc_stats_block& b = process.block;
    std::printf("%s\n  {\"pid\": %d, \"uid\": %u, \"command\": \"%s\", ", first ? "" : ",", b.pid, b.uid,
                json_escape(command_of(b)).c_str());
    first = false;
    std::printf("\"start_time_unix_ns\": %" PRIu64 ", \"update_time_unix_ns\": %" PRIu64 ", \"publish_count\": %" PRIu64
                ", ",
                b.start_time_unix_ns, b.update_time_unix_ns, b.publish_count);
    std::printf("\"bytes_reserved\": %" PRIu64 ", \"bytes_committed\": %" PRIu64 ", \"bytes_in_use\": %" PRIu64
                ", \"bytes_large_in_use\": %" PRIu64 ", \"rss_bytes\": %" PRIu64 ", ",
                b.bytes_reserved, b.bytes_committed, b.bytes_in_use, b.bytes_large_in_use, b.rss_bytes);
    std::printf("\"malloc_count\": %" PRIu64 ", \"free_count\": %" PRIu64 ", \"remote_free_count\": %" PRIu64 ", ",
                b.malloc_count, b.free_count, b.remote_free_count);
    if (process.alloc_rate_per_s >= 0) {
      std::printf("\"alloc_rate_per_s\": %.1f, ", process.alloc_rate_per_s);
    } else {
      std::printf("\"alloc_rate_per_s\": null, ");
    }
    std::printf("\"segments\": %" PRIu64 ", \"threads\": %" PRIu64 ", \"decommits_io_uring\": %" PRIu64
                ", \"decommits_madvise\": %" PRIu64 ", \"bytes_decommitted\": %" PRIu64 ", \"numa_nodes\": %u, ",
                b.segments, b.threads, b.decommits_io_uring, b.decommits_madvise, b.bytes_decommitted, b.numa_nodes);
    std::printf("\"node_bytes_reserved\": ");
    if ((b.flags & USGC_STATS_FLAG_NODE_BYTES) == 0) {
      std::printf("null, ");
    } else {
      uint32_t shown = std::min<uint32_t>(std::max<uint32_t>(b.numa_nodes, 1), USGC_STATS_MAX_NODES);
      std::printf("[");
      for (uint32_t node = 0; node < shown; ++node) std::printf("%s%" PRIu64, node ? ", " : "", b.node_bytes_reserved[node]);
      std::printf("], ");
    }
    std::printf("\"time_to_safepoint_histogram_us\": [");
    for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i)
      std::printf("%s%" PRIu64, i ? ", " : "", b.time_to_safepoint_histogram[i]);
    std::printf("], ");
    if (has_gc_figures(b)) {
      std::printf("\"goroutines\": %" PRIu64 ", \"collections\": [%" PRIu64 ", %" PRIu64 ", %" PRIu64 ", %" PRIu64
                  "], \"last_pause_ns\": %" PRIu64 ", \"max_pause_ns\": %" PRIu64 "}",
                  b.goroutines, b.collections[0], b.collections[1], b.collections[2], b.collections[3], b.last_pause_ns,
                  b.max_pause_ns);
    } else {
      std::printf("\"goroutines\": %" PRIu64 ", \"collections\": null, \"last_pause_ns\": null, \"max_pause_ns\": null}",
                  b.goroutines);
    }
  }
  std::printf("%s]\n", first ? "" : "\n");
}

void print_notes(const Snapshot& snapshot) {
  for (const std::string& note : snapshot.notes) std::fprintf(stderr, "usgc-top: %s\n", note.c_str());
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
      std::fprintf(stderr, "usgc-top: no usgc statistics block for pid %d (not a usgc process of this user, or "
                   "USGC_STATS=0, or it has not allocated for 100 ms yet)\n", options.detail_pid);
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
      int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_sample - now).count());
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
      case 'm': sort_key_ = SortKey::kMemory; break;
      case 'a': sort_key_ = SortKey::kAllocRate; break;
      case 'p': sort_key_ = SortKey::kPid; break;
      case 'c': sort_key_ = SortKey::kCommand; break;
      case KEY_UP: move_selection(-1); break;
      case KEY_DOWN: move_selection(1); break;
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
    if (selected_index() < 0 && !snapshot_.processes.empty()) selected_pid_ = snapshot_.processes[0].block.pid;
  }

  void draw() {
    erase();
    int rows = LINES;
    mvprintw(0, 0, "usgc-top - %zu usgc process%s of uid %u, sorted by %s, every %.1fs", snapshot_.processes.size(),
             snapshot_.processes.size() == 1 ? "" : "es", usgc::kernel::current_user_id(), sort_key_name(sort_key_),
             options_.delay_seconds);
    mvprintw(1, 0, "%s", in_detail_ ? "Enter/Esc: back  q: quit"
                                    : "Up/Down: select  Enter: detail  m/a/p/c: sort by memory/alloc rate/pid/command  q: quit");
    int line = 3;
    int notes_room = std::min<int>(static_cast<int>(snapshot_.notes.size()), 4);
    int last_body_line = rows - 1 - notes_room;
    if (in_detail_) {
      int index = selected_index();
      if (index < 0) {
        mvprintw(line, 0, "pid %d: no usgc statistics block (exited, USGC_STATS=0, or not a usgc process)",
                 selected_pid_);
      } else {
        for (const std::string& text : detail_lines(snapshot_.processes[static_cast<size_t>(index)])) {
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
               "  -d SECONDS    refresh delay (default 1; with --once/--json: the gap between the two samples)\n"
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
      std::fprintf(stderr, "usgc-top: unknown argument %s\n", argument.c_str());
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
