// tools/usgc-alloc-loop.cpp — a small long-running usgc program for tests of the statistics
// block and usgc-top (tests/tools/usgc_top.test.sh): allocates and frees through usgc_malloc
// for a while, keeping a working set, so that its block shows figures that move.
//
//   usgc-alloc-loop [--seconds S] [--working-set-bytes N] [--threads T] [--goroutines G]
//
// With --goroutines G it also starts the goroutine runtime with G goroutines that sleep and poll
// in a loop, and stops the world every 10 ms, so the block's goroutine count and
// time-to-safepoint histogram move too.
//
// Prints "ready <pid>" on stdout once it has allocated (the block appears one publication
// interval later) and exits 0 after S seconds (default 30) or at SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "usgc/usgc.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true, std::memory_order_relaxed);
}

// xorshift: deterministic sizes, no libc state shared between threads.
uint64_t next_random(uint64_t& state) {
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

void churn(size_t working_set_bytes, uint64_t seed, std::chrono::steady_clock::time_point end) {
  constexpr size_t kSlots = 4096;
  std::vector<void*> slots(kSlots, nullptr);  // libc's malloc here: only usgc_* goes to usgc
  size_t average = working_set_bytes / kSlots;
  if (average < 16) average = 16;
  uint64_t state = seed | 1;
  while (!g_stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < end) {
    for (int round = 0; round < 20000; ++round) {
      size_t slot = next_random(state) % kSlots;
      usgc_free(slots[slot]);
      size_t size = 1 + next_random(state) % (2 * average);
      slots[slot] = usgc_malloc(size);
      if (slots[slot] != nullptr) std::memset(slots[slot], 0xa5, size < 64 ? size : 64);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a busy but not spinning program
  }
  for (void* block : slots) usgc_free(block);
}

std::atomic<bool> g_goroutines_stop{false};

void sleeping_goroutine(void*) {
  while (!g_goroutines_stop.load(std::memory_order_relaxed)) {
    usgc_sleep_ns(2'000'000);
    usgc_safepoint_poll();
  }
}

// Starts the runtime and the goroutines; returns the thread that requests stops.
std::thread start_goroutines(int count, std::chrono::steady_clock::time_point end) {
  if (usgc_init(nullptr) != 0) {
    std::fprintf(stderr, "usgc-alloc-loop: usgc_init failed\n");
    std::exit(1);
  }
  for (int i = 0; i < count; ++i) usgc_go(sleeping_goroutine, nullptr, nullptr);
  return std::thread([end] {
    while (!g_stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < end) {
      if (usgc_stop_the_world(nullptr) == 0) usgc_start_the_world();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

void stop_goroutines(std::thread& requester) {
  requester.join();
  g_goroutines_stop.store(true);
  while (usgc_goroutine_count() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  usgc_shutdown();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 30;
  size_t working_set_bytes = 8u << 20;
  int threads = 1;
  int goroutines = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--working-set-bytes") == 0 && i + 1 < argc) {
      working_set_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--goroutines") == 0 && i + 1 < argc) {
      goroutines = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: usgc-alloc-loop [--seconds S] [--working-set-bytes N] [--threads T] "
                   "[--goroutines G]\n");
      return 2;
    }
  }
  if (threads < 1) threads = 1;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  auto end = std::chrono::steady_clock::now() +
             std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                 std::chrono::duration<double>(seconds));
  void* first = usgc_malloc(1);
  usgc_free(first);
  std::thread stop_requester;
  if (goroutines > 0) stop_requester = start_goroutines(goroutines, end);
  std::printf("ready %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) {
    workers.emplace_back(churn, working_set_bytes / static_cast<size_t>(threads),
                         0x9e3779b97f4a7c15ull * (t + 1), end);
  }
  churn(working_set_bytes / static_cast<size_t>(threads), 0x2545f4914f6cdd1dull, end);
  for (std::thread& worker : workers) worker.join();
  if (goroutines > 0) stop_goroutines(stop_requester);
  return 0;
}
