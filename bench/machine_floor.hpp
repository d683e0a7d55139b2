// bench/machine_floor.hpp — what this machine's kernel and hypervisor cost, measured with plain
// threads before the runtime starts (`safepoint --cases floor`, case=machine-floor impl=threads).
// A stop's time to safepoint is made of these steps, so its figures are read against them:
//
//   futex_wake_p50/p99     one-way wake-up latency: thread A stamps the time, stores a word and
//                          futex-wakes B, which sleeps in futex_wait on it; B's latency is now -
//                          stamp. A busy-waits 20 us before each wake so that B is really asleep.
//                          (A sleeping requester's wake-up, a stopped thread's resume.)
//   heartbeat_gap_*        vCPU availability: thread W stores the time in a tight loop; thread R
//                          reads it once a microsecond and records now - stored. While both run
//                          the gap is well under a microsecond; a gap of g us means W was off
//                          its CPU for g us while R ran. both_running_percent: the share of R's
//                          samples with a gap under 5 us.
//   mprotect_p50/p99       one mprotect(PROT_NONE) of a touched page while another thread of the
//                          process spins on the other CPU: the arming system call of
//                          kProtectGlobalPage, with its TLB shoot-down.
//   fault_delivery_p50/p99 from a store that points a running thread's loop at a PROT_NONE page
//                          (as the swap arming does to a P's poll pointer) to the entry of that
//                          thread's SIGSEGV handler: the hardware fault, the kernel's signal
//                          delivery and nothing of usgc. The floor of a poll fault's
//                          acknowledgement, so of every stop that waits for a running P.
//
// Invariant: nothing here touches the runtime (usgc_init has not run; the SIGSEGV disposition is
// put back before machine_floor returns). Header-only: bench/safepoint.cpp is its one user.
#pragma once

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/signals.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::bench {

struct MachineFloorOptions {
  int futex_round_trips = 5000;
  uint64_t heartbeat_ns = 2000000000ull;
  int mprotects = 2000;
  int faults = 2000;
};

// How the caller prints a figure (RESULT line) and stops on a failed system call (errno).
using FloorResult = void (*)(const char* case_name, const char* impl, const char* metric,
                             double value, const char* unit);
using FloorFail = void (*)(const char* case_name, const char* what, int error);

namespace floor_detail {

struct FutexSide {
  std::atomic<uint32_t> word{0};
  std::atomic<uint64_t> stamp_ns{0};
  std::vector<uint64_t> latencies_ns;
};

// Waits (asleep) for the word and records the one-way latency since the waker's stamp.
inline void futex_receive(FutexSide* self) {
  while (self->word.load(std::memory_order_acquire) == 0) usgc::kernel::futex_wait(&self->word, 0);
  self->latencies_ns.push_back(now_ns() - self->stamp_ns.load(std::memory_order_relaxed));
  self->word.store(0, std::memory_order_relaxed);
}

// Wakes the peer after 20 us of busy waiting (so that the peer is asleep in futex_wait by then).
inline void futex_send(FutexSide* peer) {
  busy_wait_ns(20000);
  peer->stamp_ns.store(now_ns(), std::memory_order_relaxed);
  peer->word.store(1, std::memory_order_release);  // release: the stamp is visible with the 1
  usgc::kernel::futex_wake(&peer->word, 1);
}

// One side of the futex ping-pong: round_trips sends and as many receives each.
inline void futex_side(FutexSide* self, FutexSide* peer, int round_trips, bool starts) {
  for (int i = 0; i < round_trips; ++i) {
    if (!(starts && i == 0)) futex_receive(self);
    futex_send(peer);
  }
  if (starts) futex_receive(self);
}

inline void print_percentiles(FloorResult result, const char* name, const char* metric_prefix,
                              std::vector<uint64_t> ns) {
  std::sort(ns.begin(), ns.end());
  std::string p50 = std::string(metric_prefix) + "_p50", p99 = std::string(metric_prefix) + "_p99";
  result(name, "threads", p50.c_str(), static_cast<double>(percentile(ns, 0.50)) / 1000.0, "us");
  result(name, "threads", p99.c_str(), static_cast<double>(percentile(ns, 0.99)) / 1000.0, "us");
}

// The fault-delivery measurement's shared words. The reader thread loops loading through
// `target`; the measuring thread points it at the next page of a PROT_NONE region (relaxed: the
// delay until the reader sees it is part of what is measured, as with a P's poll pointer). The
// handler (on the reader's thread) stamps its entry, makes that page readable (the faulting load is
// restarted on return and must succeed), points `target` back at the readable page and raises
// `faulted` (release: the stamp is visible with it). Each fault uses a page of its own that is
// never protected again: a page re-protected while the reader was still returning from its
// handler would fault a second time, out of turn.
struct FaultProbe {
  std::atomic<const volatile uint8_t*> target{nullptr};
  const volatile uint8_t* readable = nullptr;
  uint8_t* faulting_page = nullptr;
  size_t page_bytes = 0;
  std::atomic<uint64_t> handler_entry_ns{0};
  std::atomic<uint32_t> faulted{0};
  std::atomic<bool> done{false};
};

inline FaultProbe g_fault_probe;

inline void fault_probe_handler(int, siginfo_t*, void*) {
  FaultProbe& probe = g_fault_probe;
  probe.handler_entry_ns.store(now_ns(), std::memory_order_relaxed);
  (void)usgc::kernel::protect(probe.faulting_page, probe.page_bytes, usgc::kernel::Access::kRead);
  probe.target.store(probe.readable, std::memory_order_relaxed);
  probe.faulted.store(1, std::memory_order_release);
}

inline void fault_delivery(const char* name, int faults, FloorResult result, FloorFail fail) {
  FaultProbe& probe = g_fault_probe;
  probe.page_bytes = usgc::kernel::os_page_size();
  const size_t region_bytes = static_cast<size_t>(faults) * probe.page_bytes;
  usgc::kernel::Result<void*> readable =
      usgc::kernel::map_aligned(probe.page_bytes, probe.page_bytes);
  if (!readable.ok()) fail(name, "map_aligned", readable.error());
  usgc::kernel::Result<void*> region = usgc::kernel::map_aligned(region_bytes, probe.page_bytes);
  if (!region.ok()) fail(name, "map_aligned", region.error());
  usgc::kernel::Status guarded =
      usgc::kernel::protect(region.value(), region_bytes, usgc::kernel::Access::kNone);
  if (!guarded.ok()) fail(name, "protect", guarded.error());
  probe.readable = static_cast<const volatile uint8_t*>(readable.value());
  probe.target.store(probe.readable, std::memory_order_relaxed);
  usgc::kernel::Result<usgc::kernel::SignalAction> previous =
      usgc::kernel::install_signal_handler(SIGSEGV, fault_probe_handler);
  if (!previous.ok()) fail(name, "install_signal_handler", previous.error());
  std::thread reader([&probe] {
    while (!probe.done.load(std::memory_order_relaxed))
      (void)*probe.target.load(std::memory_order_relaxed);
  });
  std::vector<uint64_t> delivery_ns;
  uint32_t jitter = 0x2545f491u;
  for (int i = 0; i < faults; ++i) {
    busy_wait_ns(20000 + xorshift32(&jitter) % 20000);  // the reader is back in its loop
    probe.faulting_page = static_cast<uint8_t*>(region.value()) + i * probe.page_bytes;
    probe.faulted.store(0, std::memory_order_relaxed);
    uint64_t armed_ns = now_ns();
    probe.target.store(probe.faulting_page, std::memory_order_relaxed);
    while (probe.faulted.load(std::memory_order_acquire) == 0) __builtin_ia32_pause();
    delivery_ns.push_back(probe.handler_entry_ns.load(std::memory_order_relaxed) - armed_ns);
  }
  probe.done.store(true, std::memory_order_relaxed);
  reader.join();
  usgc::kernel::Status restored = usgc::kernel::restore_signal_action(SIGSEGV, previous.value());
  if (!restored.ok()) fail(name, "restore_signal_action", restored.error());
  (void)usgc::kernel::unmap(readable.value(), probe.page_bytes);
  (void)usgc::kernel::unmap(region.value(), region_bytes);
  print_percentiles(result, name, "fault_delivery", delivery_ns);
}

}  // namespace floor_detail

inline void machine_floor(const MachineFloorOptions& options, FloorResult result, FloorFail fail) {
  using namespace floor_detail;
  const char* name = "machine-floor";
  {
    FutexSide a, b;
    std::thread other([&] { futex_side(&b, &a, options.futex_round_trips, false); });
    futex_side(&a, &b, options.futex_round_trips, true);
    other.join();
    std::vector<uint64_t> all = a.latencies_ns;
    all.insert(all.end(), b.latencies_ns.begin(), b.latencies_ns.end());
    print_percentiles(result, name, "futex_wake", all);
  }
  {
    std::atomic<uint64_t> heartbeat{now_ns()};
    std::atomic<bool> done{false};
    std::thread writer([&] {
      while (!done.load(std::memory_order_relaxed))
        heartbeat.store(now_ns(), std::memory_order_relaxed);
    });
    while (now_ns() - heartbeat.load(std::memory_order_relaxed) > 1000000) {
    }  // the writer runs
    std::vector<uint32_t> gaps_ns;
    gaps_ns.reserve(options.heartbeat_ns / 1000 + 16);
    uint64_t start = now_ns(), next_sample = start;
    for (;;) {
      uint64_t now = now_ns();
      if (now - start >= options.heartbeat_ns) break;
      if (now < next_sample) continue;
      uint64_t seen = heartbeat.load(std::memory_order_relaxed);
      uint64_t gap = now > seen ? now - seen : 0;
      gaps_ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(gap, UINT32_MAX)));
      next_sample = now + 1000;
    }
    done.store(true, std::memory_order_relaxed);
    writer.join();
    size_t together = static_cast<size_t>(
        std::count_if(gaps_ns.begin(), gaps_ns.end(), [](uint32_t g) { return g < 5000; }));
    std::sort(gaps_ns.begin(), gaps_ns.end());
    result(name, "threads", "heartbeat_gap_p50", percentile(gaps_ns, 0.50) / 1000.0, "us");
    result(name, "threads", "heartbeat_gap_p99", percentile(gaps_ns, 0.99) / 1000.0, "us");
    result(name, "threads", "heartbeat_gap_max", (gaps_ns.empty() ? 0 : gaps_ns.back()) / 1000.0,
           "us");
    result(name, "threads", "both_running_percent",
           gaps_ns.empty()
               ? 0.0
               : 100.0 * static_cast<double>(together) / static_cast<double>(gaps_ns.size()),
           "percent");
  }
  {
    size_t page = usgc::kernel::os_page_size();
    usgc::kernel::Result<void*> mapping = usgc::kernel::map_aligned(page, page);
    if (!mapping.ok()) fail(name, "map_aligned", mapping.error());
    auto* bytes = static_cast<volatile uint8_t*>(mapping.value());
    std::atomic<bool> done{false};
    std::thread spinner([&] {
      while (!done.load(std::memory_order_relaxed)) {
      }
    });
    std::vector<uint64_t> costs_ns;
    uint32_t jitter = 0x9e3779b9u;
    for (int i = 0; i < options.mprotects; ++i) {
      (void)bytes[0];  // a present PTE: changing it needs a TLB flush on every CPU running this mm
      uint64_t start = now_ns();
      usgc::kernel::Status armed =
          usgc::kernel::protect(mapping.value(), page, usgc::kernel::Access::kNone);
      costs_ns.push_back(now_ns() - start);
      usgc::kernel::Status disarmed =
          usgc::kernel::protect(mapping.value(), page, usgc::kernel::Access::kRead);
      if (!armed.ok() || !disarmed.ok())
        fail(name, "protect", armed.ok() ? disarmed.error() : armed.error());
      busy_wait_ns(20000 + xorshift32(&jitter) % 20000);
    }
    done.store(true, std::memory_order_relaxed);
    spinner.join();
    (void)usgc::kernel::unmap(mapping.value(), page);
    print_percentiles(result, name, "mprotect", costs_ns);
  }
  fault_delivery(name, options.faults, result, fail);
}

}  // namespace usgc::bench
