// bench/decommit_batch.cpp — what returning a page range to the kernel costs through each path of
// the decommit queue (kernel_iface/decommit_queue.hpp): process_madvise batches, io_uring
// IORING_OP_MADVISE, madvise per range.
//
// Each round writes --ranges ranges of --range-kib KiB (64 KiB apart, as the allocator's purges
// and the GC pool's blocks are), then enqueues them all and waits for the last ticket, and checks
// that every range reads zero (an ERROR line otherwise). The cost of a MADV_DONTNEED is mostly
// the TLB flush, and a flush is cheap when no other CPU runs the process: case "with-thread"
// keeps a second thread of the process writing its own buffer throughout (as in any
// multi-threaded program), case "alone" does not. Per mode, each figure is the median of
// --rounds rounds:
//   RESULT suite=decommit case=<case> impl=<mode> metric=cpu_us_per_range value=<us> unit=us
//     the process's CPU time during the decommit phase (every thread, io_uring's kernel workers
//     included), less the writer thread's own CPU time, per range
//   RESULT suite=decommit case=<case> impl=<mode> metric=wall_us_per_range value=<us> unit=us
//   RESULT suite=decommit case=<case> impl=<mode> metric=cpu_ratio_vs_madvise value=<x> unit=ratio
// A mode the kernel refuses prints a NOTE and no figures.
// Usage: decommit_batch [--ranges N] [--range-kib K] [--rounds R]
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace {

using usgc::kernel::DecommitMode;
using usgc::kernel::DecommitQueue;

constexpr size_t kStride = 64 * 1024;
size_t g_ranges = 1024;
size_t g_range_bytes = 60 * 1024;
int g_rounds = 5;

double clock_us(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) * 1e6 + static_cast<double>(now.tv_nsec) / 1e3;
}

// The second thread: writes its own buffer until told to stop, and reports its CPU time.
struct Writer {
  std::atomic<bool> stop{false};
  std::atomic<clockid_t> clock{CLOCK_THREAD_CPUTIME_ID};
  std::atomic<bool> ready{false};
  std::thread thread;

  void start() {
    thread = std::thread([this] {
      clockid_t own;
      pthread_getcpuclockid(pthread_self(), &own);
      clock.store(own);
      ready.store(true);
      std::vector<unsigned char> buffer(1 << 20);
      while (!stop.load(std::memory_order_relaxed))
        for (size_t i = 0; i < buffer.size(); i += 4096) buffer[i]++;
    });
    while (!ready.load()) std::this_thread::yield();
  }
  void finish() {
    stop.store(true);
    thread.join();
  }
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Figures {
  double cpu_us_per_range;
  double wall_us_per_range;
};

// Runs the rounds in one mode; false when the mode is refused (NOTE printed) or a range kept data.
bool measure(const char* case_name, DecommitMode mode, const char* mode_name, bool with_thread,
             unsigned char* base, Figures* figures) {
  DecommitQueue& queue = DecommitQueue::process();
  usgc::kernel::Status status = queue.init(mode);
  if (!status.ok()) {
    std::printf("NOTE suite=decommit case=%s impl=%s refused by the kernel (errno %d, %s)\n",
                case_name, mode_name, status.error(), std::strerror(status.error()));
    return false;
  }
  Writer writer;
  if (with_thread) writer.start();
  std::vector<double> cpu, wall;
  for (int round = 0; round < g_rounds; ++round) {
    for (size_t i = 0; i < g_ranges; ++i) std::memset(base + i * kStride, 0x5a, g_range_bytes);
    const double writer_before = with_thread ? clock_us(writer.clock.load()) : 0;
    const double cpu_before = clock_us(CLOCK_PROCESS_CPUTIME_ID);
    const double wall_before = clock_us(CLOCK_MONOTONIC);
    uint64_t last = 0;
    for (size_t i = 0; i < g_ranges; ++i) last = queue.enqueue(base + i * kStride, g_range_bytes);
    queue.wait(last);
    const double wall_after = clock_us(CLOCK_MONOTONIC);
    const double cpu_after = clock_us(CLOCK_PROCESS_CPUTIME_ID);
    const double writer_after = with_thread ? clock_us(writer.clock.load()) : 0;
    for (size_t i = 0; i < g_ranges; ++i) {
      if (base[i * kStride] != 0 || base[i * kStride + g_range_bytes - 1] != 0) {
        std::printf("ERROR suite=decommit case=%s impl=%s range %zu kept its data\n", case_name,
                    mode_name, i);
        if (with_thread) writer.finish();
        return false;
      }
    }
    const double n = static_cast<double>(g_ranges);
    cpu.push_back(((cpu_after - cpu_before) - (writer_after - writer_before)) / n);
    wall.push_back((wall_after - wall_before) / n);
  }
  if (with_thread) writer.finish();
  figures->cpu_us_per_range = median(cpu);
  figures->wall_us_per_range = median(wall);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ranges") == 0 && i + 1 < argc) {
      g_ranges = std::strtoul(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--range-kib") == 0 && i + 1 < argc) {
      g_range_bytes = std::strtoul(argv[++i], nullptr, 10) * 1024;
    } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      g_rounds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: decommit_batch [--ranges N] [--range-kib K] [--rounds R]\n");
      return 2;
    }
  }
  const size_t page = usgc::kernel::os_page_size();
  if (g_ranges == 0 || g_rounds <= 0 || g_range_bytes == 0 || g_range_bytes > kStride ||
      g_range_bytes % page != 0) {
    std::fprintf(stderr,
                 "decommit_batch: --range-kib must be a page multiple up to 64; "
                 "--ranges and --rounds positive\n");
    return 2;
  }
  usgc::kernel::Result<void*> mapping = usgc::kernel::map_aligned(g_ranges * kStride, kStride);
  if (!mapping.ok()) {
    std::fprintf(stderr, "decommit_batch: mapping %zu bytes: %s\n", g_ranges * kStride,
                 std::strerror(mapping.error()));
    return 1;
  }
  auto* base = static_cast<unsigned char*>(mapping.value());
  const struct {
    DecommitMode mode;
    const char* name;
  } modes[] = {{DecommitMode::kMadvise, "madvise"},
               {DecommitMode::kIoUring, "io_uring"},
               {DecommitMode::kProcessMadvise, "process_madvise"}};
  int status = 0;
  for (bool with_thread : {true, false}) {
    const char* case_name = with_thread ? "with-thread" : "alone";
    double madvise_cpu = 0;
    for (const auto& mode : modes) {
      Figures figures{};
      if (!measure(case_name, mode.mode, mode.name, with_thread, base, &figures)) {
        if (mode.mode == DecommitMode::kMadvise) status = 1;
        continue;
      }
      if (mode.mode == DecommitMode::kMadvise) madvise_cpu = figures.cpu_us_per_range;
      std::printf(
          "RESULT suite=decommit case=%s impl=%s metric=cpu_us_per_range value=%.2f unit=us\n",
          case_name, mode.name, figures.cpu_us_per_range);
      std::printf(
          "RESULT suite=decommit case=%s impl=%s metric=wall_us_per_range value=%.2f unit=us\n",
          case_name, mode.name, figures.wall_us_per_range);
      if (madvise_cpu > 0)
        std::printf(
            "RESULT suite=decommit case=%s impl=%s metric=cpu_ratio_vs_madvise "
            "value=%.3f unit=ratio\n",
            case_name, mode.name, figures.cpu_us_per_range / madvise_cpu);
    }
  }
  (void)usgc::kernel::unmap(base, g_ranges * kStride);
  return status;
}
