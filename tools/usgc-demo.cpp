// tools/usgc-demo.cpp — `make run`: a short tour of usgc's malloc mode that prints, for a
// person, what each step did and what the allocator's statistics say about it.
//
// Steps: small objects in one thread; objects handed between threads (remote frees); a large
// buffer grown in place by realloc; aligned allocations; the decay returning empty pages to
// the OS (through io_uring where the kernel allows); and a double free caught in a child
// process, to show the message a user gets instead of a corrupted heap.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void print_stats(const char* when) {
  usgc_malloc_stats s = snapshot();
  std::printf("   stats %-28s in use %8.2f MiB | committed %7.2f MiB | reserved %7.2f MiB | "
              "mallocs %lu frees %lu (remote %lu) | threads %lu\n",
              when, mib(s.bytes_in_use), mib(s.bytes_committed), mib(s.bytes_reserved),
              static_cast<unsigned long>(s.malloc_count), static_cast<unsigned long>(s.free_count),
              static_cast<unsigned long>(s.remote_free_count), static_cast<unsigned long>(s.threads));
}

}  // namespace

int main() {
  const usgc::numa::Topology& topology = usgc::numa::topology();
  std::printf("usgc demo — malloc mode (NUMA nodes: %d, CPUs: %d)\n\n", topology.node_count, topology.cpu_count);
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
              buffer == original ? "in place, no copy" : "by moving", buffer[0], usgc_malloc_usable_size(buffer));
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
  const char* mode =
      usgc::kernel::DecommitQueue::process().active_mode() == usgc::kernel::DecommitMode::kIoUring ? "io_uring" : "madvise";
  usgc_malloc_stats s = snapshot();
  std::printf("   pages go back through %s: %lu io_uring operations, %lu madvise calls, %.2f MiB so far\n", mode,
              static_cast<unsigned long>(s.decommits_io_uring), static_cast<unsigned long>(s.decommits_madvise),
              mib(s.bytes_decommitted));

  std::printf("\n6. a double free in a child process (usgc stops it instead of corrupting the heap):\n   ");
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
  std::printf("   the child %s\n", WIFSIGNALED(status) ? (WTERMSIG(status) == SIGABRT ? "was stopped with SIGABRT" : "died")
                                                       : "exited normally (unexpected)");
  std::printf("\ndone. Use it for any program: LD_PRELOAD=build/libusgc_preload.so <program>\n");
  return 0;
}
