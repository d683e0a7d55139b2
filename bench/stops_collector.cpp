// bench/stops_collector.cpp — how often a collector goroutine completes a shared collection while
// an embedder thread stops the world back to back and the 2 Ps are mostly held by goroutines
// that block in the kernel and return over and over (a sleeper in nanosleep, a poller in poll(2),
// a reader in read(2) fed by the stopping thread), with or without one that spins without polls:
// the situation of tests/runtime/programs/goroutine_blocked_stops.c, as a rate.
//
// Four cases, in interleaved halves of the time so a load change hits all alike:
//   unbracketed  the blocking calls are plain library calls: the monitor or a stop takes the P
//                from the blocked thread, which takes one back in the pinned waiters' line
//                (runtime/blocked_call.cpp, runtime/scheduler.cpp "Turns"); the sleeper's
//                nanosleep has no remainder pointer, so it cannot be re-issued after a signal:
//                the monitor never takes that P, only a stop whose signal interrupts the sleep
//                (safepoint/async_safepoint.cpp, after_eintr_slow_path);
//   bracketed    the same calls between usgc_enter_native and usgc_leave_native: a goroutine
//                back from one with no P queues like any runnable goroutine (Go's exitsyscall),
//                the peer the unbracketed figure is compared with;
//   ..._spinner  the same with a fifth goroutine that spins in C code without polls (it is
//                preempted asynchronously, when it is at all: see docs/benchmarks.md).
// Output: RESULT suite=stops_collector case=<case> metric=collections_per_s, stops_per_s and
// sleeps_per_s (the sleeper's completed nanosleep calls: whether it ran at all — a sleeper kept
// stopped at a safepoint by back-to-back stops makes no progress, and its P none either);
// case=unbracketed|unbracketed_spinner metric=ratio_to_bracketed (collections per second).
// Usage: stops_collector [seconds per case, default 2] [a case's name: that case alone]
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench_support.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::bench::now_ns;

std::atomic<bool> g_done{false};
std::atomic<bool> g_bracketed{false};
std::atomic<int> g_running{0};
std::atomic<uint64_t> g_collections{0};
std::atomic<uint64_t> g_sleeps{0};
int g_read_pipe[2], g_poll_pipe[2];

// A blocking call, bracketed or not as the case says.
template <typename Call>
auto blocking(Call&& call) {
  bool bracketed = g_bracketed.load(std::memory_order_relaxed);
  if (bracketed) usgc_enter_native();
  auto result = call();
  if (bracketed) usgc_leave_native();
  return result;
}

void sleeper(void*) {
  while (!g_done.load(std::memory_order_relaxed)) {
    timespec request{0, 500000};
    blocking([&] { return nanosleep(&request, nullptr); });
    g_sleeps.fetch_add(1, std::memory_order_relaxed);
  }
  g_running.fetch_sub(1);
}

void poller(void*) {
  while (!g_done.load(std::memory_order_relaxed)) {
    pollfd fd{g_poll_pipe[0], POLLIN, 0};
    if (blocking([&] { return poll(&fd, 1, -1); }) == 1) {
      char byte;
      if (read(g_poll_pipe[0], &byte, 1) != 1) std::abort();
    }
  }
  g_running.fetch_sub(1);
}

void reader(void*) {
  char byte = 0;
  while (byte != 'q') {
    if (blocking([&] { return read(g_read_pipe[0], &byte, 1); }) != 1) std::abort();
  }
  g_running.fetch_sub(1);
}

void spinner(void*) {  // C code that never polls: preempted asynchronously
  volatile uint64_t spins = 0;
  while (!g_done.load(std::memory_order_relaxed)) spins = spins + 1;
  g_running.fetch_sub(1);
}

void collector(void*) {
  while (!g_done.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 100; ++i)
      if (usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 96, USGC_GOROUTINE_SHARED) == nullptr)
        std::abort();
    if (usgc_gc_collect(USGC_GC_SHARED) != 0) std::abort();
    g_collections.fetch_add(1, std::memory_order_relaxed);
  }
  g_running.fetch_sub(1);
}

void drain(int fd) {
  char bytes[4096];
  for (pollfd ready{fd, POLLIN, 0}; poll(&ready, 1, 0) == 1; ready = {fd, POLLIN, 0})
    if (read(fd, bytes, sizeof bytes) <= 0) break;
}

struct Figures {
  double seconds = 0;
  uint64_t collections = 0, stops = 0, sleeps = 0;
};

void run(bool bracketed, bool with_spinner, double seconds, Figures& figures) {
  g_done.store(false);
  g_bracketed.store(bracketed);
  g_collections.store(0);
  void (*bodies[])(void*) = {sleeper, poller, reader, collector, spinner};
  int count = with_spinner ? 5 : 4;
  g_running.store(count);
  for (int i = 0; i < count; ++i)
    if (usgc_go(bodies[i], nullptr, nullptr) != 0) std::abort();
  usleep(20000);  // every goroutine started
  uint64_t collections_before = g_collections.load();
  uint64_t sleeps_before = g_sleeps.load();
  uint64_t start = now_ns();
  uint64_t end = start + static_cast<uint64_t>(seconds * 1e9);
  uint64_t stops = 0;
  for (uint64_t now = start; now < end; now = now_ns(), ++stops) {
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) != 0 || usgc_start_the_world() != 0) std::abort();
    if (stops % 2 == 0 && write(g_read_pipe[1], "x", 1) != 1) std::abort();
    if (stops % 5 == 0 && write(g_poll_pipe[1], "x", 1) != 1) std::abort();
  }
  figures.seconds += static_cast<double>(now_ns() - start) / 1e9;
  figures.collections += g_collections.load() - collections_before;
  figures.stops += stops;
  figures.sleeps += g_sleeps.load() - sleeps_before;
  g_done.store(true);
  if (write(g_read_pipe[1], "q", 1) != 1) std::abort();
  while (g_running.load() != 0 || usgc_goroutine_count() != 0) {
    if (write(g_poll_pipe[1], "x", 1) != 1) std::abort();  // a poller that polled again
    usleep(2000);
  }
  drain(g_poll_pipe[0]);  // what the poller and the reader left
  drain(g_read_pipe[0]);
}

void result(const char* case_name, const char* metric, double value, const char* unit) {
  std::printf("RESULT suite=stops_collector case=%s impl=usgc metric=%s value=%.3f unit=%s\n",
              case_name, metric, value, unit);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::string only = argc > 2 ? argv[2] : "";  // one case's name: that case alone
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0 || pipe(g_read_pipe) != 0 || pipe(g_poll_pipe) != 0) return 2;
  struct Case {
    const char* name;
    bool bracketed, spinner;
    Figures figures;
  } cases[] = {{"unbracketed", false, false, {}},
               {"bracketed", true, false, {}},
               {"unbracketed_spinner", false, true, {}},
               {"bracketed_spinner", true, true, {}}};
  for (int half = 0; half < 2; ++half)
    for (Case& c : cases)
      if (only.empty() || only == c.name) run(c.bracketed, c.spinner, seconds / 2, c.figures);
  auto rate = [](uint64_t count, double seconds) {
    return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
  };
  for (int i = 0; i < 4; ++i) {
    const Case& c = cases[i];
    if (c.figures.seconds == 0) continue;
    double collections = rate(c.figures.collections, c.figures.seconds);
    result(c.name, "collections_per_s", collections, "1/s");
    result(c.name, "stops_per_s", rate(c.figures.stops, c.figures.seconds), "1/s");
    result(c.name, "sleeps_per_s", rate(c.figures.sleeps, c.figures.seconds), "1/s");
    const Case& peer = cases[i | 1];  // the bracketed case of the same kind
    double peer_rate = rate(peer.figures.collections, peer.figures.seconds);
    if (!c.bracketed && peer_rate > 0)
      result(c.name, "ratio_to_bracketed", collections / peer_rate, "ratio");
  }
  return usgc_shutdown() == 0 ? 0 : 1;
}
