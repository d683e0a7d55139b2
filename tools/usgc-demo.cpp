// tools/usgc-demo.cpp — `make run`: a short tour of usgc's malloc mode that prints, for a
// person, what each step did and what the allocator's statistics say about it.
//
// `usgc-demo --self-test [SECONDS]` runs usgc_self_test (usgc/validate.h) instead and exits 0 when
// it passed.
//
// Steps: small objects in one thread; objects handed between threads (remote frees); a large
// buffer grown in place by realloc; aligned allocations; the decay returning empty pages to
// the OS (through io_uring where the kernel allows); and a double free caught in a child
// process, to show the message a user gets instead of a corrupted heap. Then the goroutine
// runtime: a channel pipeline of thousands of goroutines, and stop-the-world requests while
// goroutines spin in polling loops, with the time each stop took to reach its safepoints.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "kernel_iface/decommit_queue.hpp"
#include "numa/numa.hpp"
#include "usgc/usgc.h"

namespace {

usgc_malloc_stats snapshot() {
  usgc_malloc_stats stats{};
  stats.version = USGC_MALLOC_STATS_VERSION;
  usgc_malloc_get_stats(&stats);
  return stats;
}

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// ---- the goroutine part ----

constexpr int kStages = 3;
constexpr int kWorkersPerStage = 1000;
constexpr long kItems = 100000;

struct Pipeline {
  usgc_chan* channels[kStages + 1];
  usgc_waitgroup stage_done[kStages] = {};  // zero: empty wait groups
  long sum = 0;
};

// A stage worker: receives numbers, adds 1, passes them on until its input closes.
void stage_worker(void* argument) {
  auto* stage = static_cast<usgc_chan**>(argument);
  long value;
  bool ok;
  while (usgc_chan_recv(stage[0], &value, &ok) == 0 && ok) {
    value += 1;
    usgc_chan_send(stage[1], &value);
  }
}

struct StageWorkers {
  Pipeline* pipeline;
  int stage;
};

void run_stage(void* argument) {
  auto* workers = static_cast<StageWorkers*>(argument);
  stage_worker(&workers->pipeline->channels[workers->stage]);
  usgc_waitgroup_done(&workers->pipeline->stage_done[workers->stage]);
}

// Closes a stage's output once every worker of the stage has seen its input closed.
void close_stage_output(void* argument) {
  auto* workers = static_cast<StageWorkers*>(argument);
  usgc_waitgroup_wait(&workers->pipeline->stage_done[workers->stage]);
  usgc_chan_close(workers->pipeline->channels[workers->stage + 1]);
}

void pipeline_main(void* argument) {
  auto* pipeline = static_cast<Pipeline*>(argument);
  for (auto& channel : pipeline->channels) channel = usgc_chan_make(sizeof(long), 64);
  static StageWorkers stages[kStages];
  for (int stage = 0; stage < kStages; ++stage) {
    stages[stage] = {pipeline, stage};
    usgc_waitgroup_add(&pipeline->stage_done[stage], kWorkersPerStage);
    for (int i = 0; i < kWorkersPerStage; ++i) usgc_go(run_stage, &stages[stage], nullptr);
    usgc_go(close_stage_output, &stages[stage], nullptr);
  }
  // The source feeds stage 0 and closes it; each stage's closer closes the next channel once the
  // stage drained; this goroutine is the sink.
  struct Source {
    usgc_chan* out;
  } source{pipeline->channels[0]};
  usgc_go(
      [](void* argument) {
        auto* out = static_cast<Source*>(argument)->out;
        for (long i = 0; i < kItems; ++i) usgc_chan_send(out, &i);
        usgc_chan_close(out);
      },
      &source, nullptr);
  long value;
  bool ok;
  while (usgc_chan_recv(pipeline->channels[kStages], &value, &ok) == 0 && ok)
    pipeline->sum += value;
}

void goroutine_tour() {
  usgc_config config;
  usgc_config_from_environment(&config);
  if (usgc_init(&config) != 0) {
    std::printf("\n7. goroutines: usgc_init failed\n");
    return;
  }
  std::printf(
      "\n7. goroutines: a pipeline of %d stages x %d goroutines passes %ld numbers over channels\n",
      kStages, kWorkersPerStage, kItems);
  auto start = std::chrono::steady_clock::now();
  static Pipeline pipeline;
  usgc_run_main(pipeline_main, &pipeline);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long expected = kItems * (kItems - 1) / 2 + kItems * kStages;
  std::printf("   sum of the outputs %ld (expected %ld: %s) in %.3f s on %u Ps\n", pipeline.sum,
              expected, pipeline.sum == expected ? "right" : "WRONG", seconds, config.procs);

  std::printf("\n8. stop-the-world while 4 goroutines spin in polling loops and 8 sleep\n");
  static std::atomic<bool> stop{false};
  for (int i = 0; i < 4; ++i)
    usgc_go(
        [](void*) {
          while (!stop.load(std::memory_order_relaxed)) usgc_safepoint_poll();
        },
        nullptr, nullptr);
  for (int i = 0; i < 8; ++i)
    usgc_go(
        [](void*) {
          while (!stop.load()) usgc_sleep_ns(1'000'000);
        },
        nullptr, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<uint64_t> ttsp;
  for (int i = 0; i < 200; ++i) {
    usgc_stop_info info{};
    usgc_stop_the_world(&info);
    ttsp.push_back(info.time_to_safepoint_ns);
    usgc_start_the_world();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  stop = true;
  while (usgc_goroutine_count() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::sort(ttsp.begin(), ttsp.end());
  std::printf(
      "   200 stops: time to safepoint median %.1f us, 99th percentile %.1f us, worst %.1f us\n",
      ttsp[ttsp.size() / 2] / 1e3, ttsp[ttsp.size() * 99 / 100] / 1e3, ttsp.back() / 1e3);
  usgc_runtime_stats stats{};
  stats.version = USGC_RUNTIME_STATS_VERSION;
  usgc_runtime_get_stats(&stats);
  std::printf(
      "   runtime: %lu goroutines created, %lu context switches, %lu steals, %lu worker threads, "
      "%lu preemptions\n",
      static_cast<unsigned long>(stats.goroutines_created),
      static_cast<unsigned long>(stats.context_switches), static_cast<unsigned long>(stats.steals),
      static_cast<unsigned long>(stats.worker_threads),
      static_cast<unsigned long>(stats.preemptions));
  for (auto* channel : pipeline.channels) usgc_chan_destroy(channel);
  usgc_shutdown();
}

void print_stats(const char* when) {
  usgc_malloc_stats s = snapshot();
  std::printf(
      "   stats %-28s in use %8.2f MiB | committed %7.2f MiB | reserved %7.2f MiB | "
      "mallocs %lu frees %lu (remote %lu) | threads %lu\n",
      when, mib(s.bytes_in_use), mib(s.bytes_committed), mib(s.bytes_reserved),
      static_cast<unsigned long>(s.malloc_count), static_cast<unsigned long>(s.free_count),
      static_cast<unsigned long>(s.remote_free_count), static_cast<unsigned long>(s.threads));
}

}  // namespace

namespace {

// ---- --self-test ----

struct SelfTestRun {
  double seconds;
  int status;  // usgc_self_test's return
  usgc_self_test_result result;
};

void self_test_goroutine(void* argument) {
  auto* run = static_cast<SelfTestRun*>(argument);
  run->result.version = USGC_SELF_TEST_VERSION;
  run->status = usgc_self_test(run->seconds, &run->result);
}

// `usgc-demo --self-test [SECONDS]`: usgc_self_test on a fresh runtime; exit 0 when it passed.
int run_self_test(double seconds) {
  if (int error = usgc_init(nullptr); error != 0) {
    std::fprintf(stderr, "usgc-demo: usgc_init failed: %s\n", std::strerror(error));
    return 1;
  }
  SelfTestRun run{seconds, 0, {}};
  usgc_run_main(self_test_goroutine, &run);
  usgc_shutdown();
  if (run.status != 0) {
    std::fprintf(stderr, "usgc-demo: usgc_self_test: %s\n", std::strerror(run.status));
    return 1;
  }
  const usgc_self_test_result& r = run.result;
  std::printf(
      "self test %s: %llu rounds, %llu objects allocated, %llu published, %llu messages, %llu "
      "collections, %llu checks, %llu failures\n",
      r.passed ? "passed" : "FAILED", static_cast<unsigned long long>(r.rounds),
      static_cast<unsigned long long>(r.objects_allocated),
      static_cast<unsigned long long>(r.objects_published),
      static_cast<unsigned long long>(r.messages), static_cast<unsigned long long>(r.collections),
      static_cast<unsigned long long>(r.checks), static_cast<unsigned long long>(r.failures));
  std::printf(
      "heap verified: %llu objects, %llu bytes, %llu references, %llu roots, %llu goroutines\n",
      static_cast<unsigned long long>(r.heap.objects_checked),
      static_cast<unsigned long long>(r.heap.bytes_checked),
      static_cast<unsigned long long>(r.heap.references_checked),
      static_cast<unsigned long long>(r.heap.roots_checked),
      static_cast<unsigned long long>(r.heap.goroutines_checked));
  if (!r.passed) std::printf("first failure: %s\n", r.first_failure);
  return r.passed ? 0 : 1;
}

int run_demo();  // the tour, below

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--self-test") == 0) {
    double seconds = 2;
    if (argc >= 3) {
      char* end = nullptr;
      seconds = std::strtod(argv[2], &end);
      if (*end != '\0' || !(seconds > 0 && seconds <= 3600)) {
        std::fprintf(stderr, "usgc-demo: --self-test takes seconds in (0, 3600], not '%s'\n",
                     argv[2]);
        return 2;
      }
    }
    return run_self_test(seconds);
  }
  if (argc >= 2) {
    std::fprintf(stderr, "usage: usgc-demo [--self-test [SECONDS]]\n");
    return 2;
  }
  return run_demo();
}

namespace {

int run_demo() {
  const usgc::numa::Topology& topology = usgc::numa::topology();
  std::printf("usgc demo — malloc mode (NUMA nodes: %d, CPUs: %d)\n\n", topology.node_count,
              topology.cpu_count);
  print_stats("at start");

  std::printf("\n1. 200 000 small objects (16..1024 bytes) in this thread, then freed\n");
  std::vector<void*> objects;
  for (int i = 0; i < 200000; ++i) {
    size_t size = 16 + static_cast<size_t>(i * 37 % 1009);
    void* p = usgc_malloc(size);
    std::memset(p, i & 0xff, size);
    objects.push_back(p);
  }
  print_stats("after allocating");
  for (void* p : objects) usgc_free(p);
  objects.clear();
  print_stats("after freeing");

  std::printf("\n2. a producer thread allocates 100 000 objects, a consumer thread frees them\n");
  std::vector<void*> handoff(100000);
  std::thread producer([&] {
    for (void*& p : handoff) p = usgc_malloc(64);
  });
  producer.join();
  std::thread consumer([&] {
    for (void* p : handoff) usgc_free(p);
  });
  consumer.join();
  print_stats("after the hand-off");

  std::printf("\n3. a 256 KiB buffer grown by realloc to 3 MiB\n");
  char* buffer = static_cast<char*>(usgc_malloc(256 * 1024));
  char* original = buffer;
  std::memset(buffer, 'u', 256 * 1024);
  for (size_t size = 512 * 1024; size <= 3 * 1024 * 1024; size += 512 * 1024) {
    buffer = static_cast<char*>(usgc_realloc(buffer, size));
  }
  std::printf("   grown %s (first byte still '%c', usable %zu bytes)\n",
              buffer == original ? "in place, no copy" : "by moving", buffer[0],
              usgc_malloc_usable_size(buffer));
  usgc_free(buffer);

  std::printf("\n4. aligned allocations\n");
  for (size_t alignment : {64u, 4096u, 65536u, 2u * 1024 * 1024}) {
    void* p = usgc_aligned_alloc(alignment, 1000);
    std::printf("   aligned_alloc(%7zu, 1000) = %p  (address %% alignment = %zu)\n", alignment, p,
                reinterpret_cast<uintptr_t>(p) % alignment);
    usgc_free(p);
  }

  std::printf("\n5. returning empty memory to the OS\n");
  for (int i = 0; i < 100000; ++i) objects.push_back(usgc_malloc(512));
  for (void* p : objects) usgc_free(p);
  objects.clear();
  print_stats("50 MiB allocated and freed");
  usgc_malloc_trim(0);
  print_stats("after malloc_trim");
  const usgc::kernel::DecommitMode active = usgc::kernel::DecommitQueue::process().active_mode();
  const char* mode = active == usgc::kernel::DecommitMode::kProcessMadvise
                         ? "process_madvise batches"
                     : active == usgc::kernel::DecommitMode::kIoUring ? "io_uring"
                                                                      : "madvise";
  usgc_malloc_stats s = snapshot();
  std::printf(
      "   pages go back through %s: %lu io_uring operations, %lu ranges by madvise or "
      "process_madvise, %.2f MiB so far\n",
      mode, static_cast<unsigned long>(s.decommits_io_uring),
      static_cast<unsigned long>(s.decommits_madvise), mib(s.bytes_decommitted));

  std::printf(
      "\n6. a double free in a child process (usgc stops it instead of corrupting the heap):\n   ");
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    dup2(STDOUT_FILENO, STDERR_FILENO);
    void* p = usgc_malloc(48);
    usgc_free(p);
    usgc_free(p);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  std::printf("   the child %s\n",
              WIFSIGNALED(status)
                  ? (WTERMSIG(status) == SIGABRT ? "was stopped with SIGABRT" : "died")
                  : "exited normally (unexpected)");
  goroutine_tour();
  std::printf("\ndone. Use it for any program: LD_PRELOAD=build/libusgc_preload.so <program>\n");
  return 0;
}

}  // namespace
