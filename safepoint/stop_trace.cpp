// safepoint/stop_trace.cpp — the attribution trace of stop_trace.hpp (read it first). Who writes
// what is said there; here: the records, the TSC clock, the histograms.
#include "safepoint/stop_trace.hpp"

#include <x86intrin.h>

#include <atomic>
#include <new>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::safepoint {
namespace {

constexpr int kActivities = static_cast<int>(ProcessorActivity::kCount);
constexpr int kKinds = static_cast<int>(AckKind::kCount);

// One slot's record of the current request. Relaxed atomics: see the header for the order.
struct alignas(64) SlotRecord {
  std::atomic<uint32_t> epoch{0};  // the request the ack fields belong to (0: none yet)
  std::atomic<uint64_t> armed_tsc{0};
  std::atomic<uint64_t> fault_tsc{0};
  std::atomic<uint64_t> ack_tsc{0};
  std::atomic<uint64_t> wake_call_tsc{0};
  std::atomic<uint32_t> ack_cpu{0};
  std::atomic<ProcessorActivity> activity{ProcessorActivity::kNone};
  std::atomic<uint8_t> status{0};
  std::atomic<AckKind> kind{AckKind::kNone};
};

}  // namespace

// A slot's spawn steps (stop_trace.hpp, spawn_step): the last kEntries changes, each a TSC stamp
// and the step entered. Written by the slot's holder thread only, while it spawns (relaxed stores,
// `count` last); read by a requester for the last P of a stop after its acquire of remaining == 0
// (a holder stopped at its poll wrote everything before its acknowledgement; one that goes on,
// a claimed slot's, may be read mid-write: a hint, as the activity byte).
struct stop_trace::SpawnRing {
  static constexpr uint32_t kEntries = 16;
  std::atomic<uint32_t> count{0};
  std::atomic<uint64_t> tsc[kEntries] = {};
  std::atomic<SpawnStep> step[kEntries] = {};
};

namespace {

using stop_trace::SpawnRing;

struct Trace {
  std::atomic<bool> enabled{false};
  SlotRecord* records = nullptr;     // initialize(); room for `capacity` slots
  SpawnRing* spawn_rings = nullptr;  // initialize(); one per slot, as records
  uint32_t capacity = 0;
  // The current request (requester, operation lock held).
  bool request_traced = false;
  uint32_t epoch = 0, first = 0, count = 0;
  bool handshake = false;
  uint64_t requested_tsc = 0;
  uint64_t requester_slept_tsc = 0, requester_woke_tsc = 0;
  uint32_t requester_sleeps = 0;
  uint32_t requester_cpu = 0;
  uint32_t monitor_work_at_request = 0;
  // TSC to ns: a calibration point taken when the trace was turned on, refined at every
  // observation (the ratio over the whole interval since).
  uint64_t calibration_tsc = 0, calibration_ns = 0;
  double ns_per_tick = 0;
  StopAttribution last{};
  // Totals: requester (operation lock) for the stops' cells, acknowledgers for the per-kind
  // counts; relaxed.
  std::atomic<uint64_t> stops{0}, slow_stops{0};
  std::atomic<uint64_t> last_cells[kActivities][kKinds]{};
  std::atomic<uint64_t> slow_last_cells[kActivities][kKinds]{};
  std::atomic<uint64_t> last_on_requester_cpu{0}, slow_last_on_requester_cpu{0};
  std::atomic<uint64_t> monitor_worked{0}, slow_monitor_worked{0};
  std::atomic<uint64_t> acknowledgements[kKinds]{};
  std::atomic<uint64_t> poll_faults{0};
  // The monitor's work counter: odd while it works (monitor_work_begin/end).
  std::atomic<uint32_t> monitor_work{0};
};
Trace g_trace;

// The poll fault's handler entry on this thread (signal context writes, the same thread's
// acknowledgement reads and clears: no other reader).
[[gnu::tls_model("initial-exec")]] thread_local uint64_t t_fault_tsc = 0;
[[gnu::tls_model("initial-exec")]] thread_local AckKind t_next_ack_kind = AckKind::kSchedulerPoint;

inline uint64_t read_tsc(uint32_t* cpu) {
  unsigned aux = 0;
  uint64_t tsc = __rdtscp(&aux);
  if (cpu != nullptr) *cpu = aux & 0xfff;  // Linux puts the CPU number in the low 12 bits
  return tsc;
}

void calibrate() {
  // Two points 2 ms apart give the first ratio; later observations refine it.
  uint64_t tsc0 = read_tsc(nullptr);
  uint64_t ns0 = kernel::monotonic_ns();
  while (kernel::monotonic_ns() - ns0 < 2'000'000) {
  }
  uint64_t tsc1 = read_tsc(nullptr);
  uint64_t ns1 = kernel::monotonic_ns();
  g_trace.calibration_tsc = tsc0;
  g_trace.calibration_ns = ns0;
  g_trace.ns_per_tick = tsc1 > tsc0 ? static_cast<double>(ns1 - ns0) / (tsc1 - tsc0) : 1.0;
}

uint64_t ticks_to_ns(uint64_t ticks) {
  return static_cast<uint64_t>(static_cast<double>(ticks) * g_trace.ns_per_tick);
}

uint64_t since_request_ns(uint64_t tsc) {
  return tsc > g_trace.requested_tsc ? ticks_to_ns(tsc - g_trace.requested_tsc) : 0;
}

// The last P's [begin_tsc, end_tsc) (its arming to its fault or acknowledgement) split by the
// spawn step its thread was in, from the slot's ring (StopAttribution::spawn_step_ns).
void split_by_spawn_step(uint32_t slot_index, uint64_t begin_tsc, uint64_t end_tsc,
                         StopAttribution* result) {
  result->spawn_step_at_arm = SpawnStep::kOutside;
  result->spawn_steps_known = false;
  if (begin_tsc == 0 || end_tsc <= begin_tsc) return;
  const SpawnRing& ring = g_trace.spawn_rings[slot_index];
  const uint32_t count = ring.count.load(std::memory_order_relaxed);
  const uint32_t first = count > SpawnRing::kEntries ? count - SpawnRing::kEntries : 0;
  // The step in force at the arming: the newest entry stamped at or before it (none in a ring that
  // never wrapped: the thread was in no spawn).
  result->spawn_steps_known = first == 0;
  for (uint32_t i = first; i < count; ++i) {
    const uint32_t at = i % SpawnRing::kEntries;
    const uint64_t from = ring.tsc[at].load(std::memory_order_relaxed);
    const SpawnStep step = ring.step[at].load(std::memory_order_relaxed);
    if (from <= begin_tsc) {
      result->spawn_step_at_arm = step;
      result->spawn_steps_known = true;
    }
    const uint64_t next =
        i + 1 < count ? ring.tsc[(i + 1) % SpawnRing::kEntries].load(std::memory_order_relaxed)
                      : end_tsc;
    const uint64_t lo = from > begin_tsc ? from : begin_tsc, hi = next < end_tsc ? next : end_tsc;
    if (hi > lo && static_cast<int>(step) < static_cast<int>(SpawnStep::kCount))
      result->spawn_step_ns[static_cast<int>(step)] += ticks_to_ns(hi - lo);
  }
  // Before the oldest entry (a ring that never wrapped): no spawn yet, outside.
  if (first == 0) {
    const uint64_t oldest = count != 0 ? ring.tsc[0].load(std::memory_order_relaxed) : end_tsc;
    const uint64_t hi = oldest < end_tsc ? oldest : end_tsc;
    if (hi > begin_tsc)
      result->spawn_step_ns[static_cast<int>(SpawnStep::kOutside)] += ticks_to_ns(hi - begin_tsc);
  }
}

}  // namespace

const char* processor_activity_name(ProcessorActivity activity) {
  switch (activity) {
    case ProcessorActivity::kNone:
      return "none";
    case ProcessorActivity::kGoroutine:
      return "goroutine";
    case ProcessorActivity::kScheduler:
      return "scheduler";
    case ProcessorActivity::kSwitching:
      return "switching";
    case ProcessorActivity::kSpinning:
      return "spinning";
    case ProcessorActivity::kSpawning:
      return "spawning";
    case ProcessorActivity::kCount:
      break;
  }
  return "?";
}

const char* spawn_step_name(SpawnStep step) {
  switch (step) {
    case SpawnStep::kOutside:
      return "outside";
    case SpawnStep::kCache:
      return "cache";
    case SpawnStep::kPoolLock:
      return "pool_lock";
    case SpawnStep::kDecommitWait:
      return "decommit_wait";
    case SpawnStep::kChunkMap:
      return "chunk_map";
    case SpawnStep::kGuardInstall:
      return "guard_install";
    case SpawnStep::kPopulate:
      return "populate";
    case SpawnStep::kFirstTouch:
      return "first_touch";
    case SpawnStep::kRecord:
      return "record";
    case SpawnStep::kRegister:
      return "register";
    case SpawnStep::kQueue:
      return "queue";
    case SpawnStep::kWakeIdle:
      return "wake_idle";
    case SpawnStep::kCount:
      break;
  }
  return "?";
}

const char* ack_kind_name(AckKind kind) {
  switch (kind) {
    case AckKind::kNone:
      return "none";
    case AckKind::kPollFault:
      return "poll-fault";
    case AckKind::kFlagPoll:
      return "flag-poll";
    case AckKind::kSchedulerPoint:
      return "scheduler-point";
    case AckKind::kAsyncSignal:
      return "async-signal";
    case AckKind::kReleased:
      return "released";
    case AckKind::kClaimedIdle:
      return "claimed-idle";
    case AckKind::kRequesterOwn:
      return "requester-own";
    case AckKind::kClaimedScheduler:
      return "claimed-scheduler";
    case AckKind::kClaimedStopped:
      return "claimed-stopped";
    case AckKind::kCount:
      break;
  }
  return "?";
}

void set_stop_trace_enabled(bool enabled) {
  if (enabled && g_trace.records == nullptr) return;  // not initialized: nothing to record into
  if (enabled && !g_trace.enabled.load(std::memory_order_relaxed)) calibrate();
  g_trace.enabled.store(enabled, std::memory_order_relaxed);
}

bool stop_trace_enabled() {
  return g_trace.enabled.load(std::memory_order_relaxed);
}

StopAttribution stop_attribution_last() {
  return g_trace.last;
}

StopAttributionTotals stop_attribution_totals() {
  StopAttributionTotals totals{};
  totals.stops = g_trace.stops.load(std::memory_order_relaxed);
  totals.slow_stops = g_trace.slow_stops.load(std::memory_order_relaxed);
  for (int a = 0; a < kActivities; ++a) {
    for (int k = 0; k < kKinds; ++k) {
      totals.last[a][k] = g_trace.last_cells[a][k].load(std::memory_order_relaxed);
      totals.slow_last[a][k] = g_trace.slow_last_cells[a][k].load(std::memory_order_relaxed);
    }
  }
  totals.last_on_requester_cpu = g_trace.last_on_requester_cpu.load(std::memory_order_relaxed);
  totals.slow_last_on_requester_cpu =
      g_trace.slow_last_on_requester_cpu.load(std::memory_order_relaxed);
  totals.monitor_worked = g_trace.monitor_worked.load(std::memory_order_relaxed);
  totals.slow_monitor_worked = g_trace.slow_monitor_worked.load(std::memory_order_relaxed);
  for (int k = 0; k < kKinds; ++k)
    totals.acknowledgements[k] = g_trace.acknowledgements[k].load(std::memory_order_relaxed);
  totals.poll_faults = g_trace.poll_faults.load(std::memory_order_relaxed);
  return totals;
}

void reset_stop_attribution_totals() {
  g_trace.stops.store(0, std::memory_order_relaxed);
  g_trace.slow_stops.store(0, std::memory_order_relaxed);
  for (int a = 0; a < kActivities; ++a) {
    for (int k = 0; k < kKinds; ++k) {
      g_trace.last_cells[a][k].store(0, std::memory_order_relaxed);
      g_trace.slow_last_cells[a][k].store(0, std::memory_order_relaxed);
    }
  }
  g_trace.last_on_requester_cpu.store(0, std::memory_order_relaxed);
  g_trace.slow_last_on_requester_cpu.store(0, std::memory_order_relaxed);
  g_trace.monitor_worked.store(0, std::memory_order_relaxed);
  g_trace.slow_monitor_worked.store(0, std::memory_order_relaxed);
  for (int k = 0; k < kKinds; ++k) g_trace.acknowledgements[k].store(0, std::memory_order_relaxed);
  g_trace.poll_faults.store(0, std::memory_order_relaxed);
}

void print_stop_attribution_totals() {
  StopAttributionTotals totals = stop_attribution_totals();
  kernel::print_message(
      "safepoint trace: %lu stops traced, %lu slower than %lu us; last P on the requester's CPU "
      "in %lu (slow: %lu), monitor working during %lu (slow: %lu); poll faults %lu",
      static_cast<unsigned long>(totals.stops), static_cast<unsigned long>(totals.slow_stops),
      static_cast<unsigned long>(kSlowStopNs / 1000),
      static_cast<unsigned long>(totals.last_on_requester_cpu),
      static_cast<unsigned long>(totals.slow_last_on_requester_cpu),
      static_cast<unsigned long>(totals.monitor_worked),
      static_cast<unsigned long>(totals.slow_monitor_worked),
      static_cast<unsigned long>(totals.poll_faults));
  for (int a = 0; a < kActivities; ++a) {
    for (int k = 0; k < kKinds; ++k) {
      if (totals.last[a][k] == 0) continue;
      kernel::print_message("safepoint trace: last P was %s, acknowledged by %s: %lu (slow: %lu)",
                            processor_activity_name(static_cast<ProcessorActivity>(a)),
                            ack_kind_name(static_cast<AckKind>(k)),
                            static_cast<unsigned long>(totals.last[a][k]),
                            static_cast<unsigned long>(totals.slow_last[a][k]));
    }
  }
}

void monitor_work_begin() {
  g_trace.monitor_work.fetch_add(1, std::memory_order_relaxed);
}
void monitor_work_end() {
  g_trace.monitor_work.fetch_add(1, std::memory_order_relaxed);
}

namespace stop_trace {

void poll_fault_entered() {
  if (!g_trace.enabled.load(std::memory_order_relaxed)) return;
  t_fault_tsc = read_tsc(nullptr);
}

void set_next_ack_kind(AckKind kind) {
  t_next_ack_kind = kind;
}

AckKind take_next_ack_kind() {
  AckKind kind = t_next_ack_kind;
  t_next_ack_kind = AckKind::kSchedulerPoint;
  return kind;
}

void request_begun(uint32_t epoch, uint32_t first, uint32_t count, bool handshake) {
  g_trace.request_traced =
      g_trace.enabled.load(std::memory_order_relaxed) && first + count <= g_trace.capacity;
  if (!g_trace.request_traced) return;
  g_trace.epoch = epoch;
  g_trace.first = first;
  g_trace.count = count;
  g_trace.handshake = handshake;
  for (uint32_t i = first; i < first + count; ++i) {
    SlotRecord& record = g_trace.records[i];
    record.armed_tsc.store(0, std::memory_order_relaxed);
    record.fault_tsc.store(0, std::memory_order_relaxed);
    record.ack_tsc.store(0, std::memory_order_relaxed);
    record.wake_call_tsc.store(0, std::memory_order_relaxed);
    record.kind.store(AckKind::kNone, std::memory_order_relaxed);
    record.activity.store(ProcessorActivity::kNone, std::memory_order_relaxed);
    // The caller's seq_cst stores of requested_epoch follow: an acknowledger of this epoch sees
    // the reset before it writes.
    record.epoch.store(epoch, std::memory_order_relaxed);
  }
  g_trace.monitor_work_at_request = g_trace.monitor_work.load(std::memory_order_relaxed);
  g_trace.requester_slept_tsc = 0;
  g_trace.requester_woke_tsc = 0;
  g_trace.requester_sleeps = 0;
  g_trace.requested_tsc = read_tsc(&g_trace.requester_cpu);
}

void slot_armed(uint32_t slot_index, ProcessorActivity activity, uint8_t status) {
  if (!g_trace.request_traced) return;
  SlotRecord& record = g_trace.records[slot_index];
  record.activity.store(activity, std::memory_order_relaxed);
  record.status.store(status, std::memory_order_relaxed);
  record.armed_tsc.store(read_tsc(nullptr), std::memory_order_relaxed);
}

void slot_acknowledged(uint32_t slot_index, uint32_t epoch, AckKind kind) {
  uint64_t fault_tsc = t_fault_tsc;
  t_fault_tsc = 0;
  if (!g_trace.enabled.load(std::memory_order_relaxed)) return;
  g_trace.acknowledgements[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
  if (kind == AckKind::kPollFault) g_trace.poll_faults.fetch_add(1, std::memory_order_relaxed);
  if (slot_index >= g_trace.capacity) return;
  SlotRecord& record = g_trace.records[slot_index];
  if (record.epoch.load(std::memory_order_relaxed) != epoch) return;
  uint32_t cpu = 0;
  uint64_t tsc = read_tsc(&cpu);
  if (kind == AckKind::kPollFault) record.fault_tsc.store(fault_tsc, std::memory_order_relaxed);
  record.ack_cpu.store(cpu, std::memory_order_relaxed);
  record.kind.store(kind, std::memory_order_relaxed);
  record.ack_tsc.store(tsc, std::memory_order_relaxed);
}

void requester_wake_called(uint32_t slot_index, uint32_t epoch) {
  if (!g_trace.enabled.load(std::memory_order_relaxed) || slot_index >= g_trace.capacity) return;
  SlotRecord& record = g_trace.records[slot_index];
  if (record.epoch.load(std::memory_order_relaxed) != epoch) return;
  record.wake_call_tsc.store(read_tsc(nullptr), std::memory_order_relaxed);
}

void requester_sleep_begins() {
  if (!g_trace.request_traced) return;
  ++g_trace.requester_sleeps;
  if (g_trace.requester_slept_tsc == 0) g_trace.requester_slept_tsc = read_tsc(nullptr);
}

void requester_sleep_ended() {
  if (!g_trace.request_traced) return;
  g_trace.requester_woke_tsc = read_tsc(nullptr);
}

void request_observed() {
  if (!g_trace.request_traced) return;
  const uint64_t observed_tsc = read_tsc(nullptr);
  // Refine the ratio over the whole interval since the calibration point.
  const uint64_t now_ns = kernel::monotonic_ns();
  if (observed_tsc > g_trace.calibration_tsc + 1'000'000 && now_ns > g_trace.calibration_ns)
    g_trace.ns_per_tick = static_cast<double>(now_ns - g_trace.calibration_ns) /
                          static_cast<double>(observed_tsc - g_trace.calibration_tsc);
  StopAttribution result{};
  result.valid = true;
  result.handshake = g_trace.handshake;
  result.slots = g_trace.count;
  uint64_t last_tsc = 0, first_fault_tsc = 0;
  uint32_t last = g_trace.first;
  for (uint32_t i = g_trace.first; i < g_trace.first + g_trace.count; ++i) {
    SlotRecord& record = g_trace.records[i];
    if (record.kind.load(std::memory_order_relaxed) == AckKind::kPollFault) ++result.slots_faulted;
    const uint64_t fault = record.fault_tsc.load(std::memory_order_relaxed);
    if (fault != 0 && (first_fault_tsc == 0 || fault < first_fault_tsc)) first_fault_tsc = fault;
    uint64_t ack = record.ack_tsc.load(std::memory_order_relaxed);
    if (ack >= last_tsc) {
      last_tsc = ack;
      last = i;
    }
  }
  SlotRecord& record = g_trace.records[last];
  result.last_slot = last;
  result.last_activity = record.activity.load(std::memory_order_relaxed);
  result.last_status_at_arm = record.status.load(std::memory_order_relaxed);
  result.last_kind = record.kind.load(std::memory_order_relaxed);
  result.last_on_requester_cpu =
      record.ack_cpu.load(std::memory_order_relaxed) == g_trace.requester_cpu &&
      result.last_kind != AckKind::kClaimedIdle && result.last_kind != AckKind::kRequesterOwn &&
      result.last_kind != AckKind::kClaimedScheduler &&
      result.last_kind != AckKind::kClaimedStopped;
  const uint32_t monitor_now = g_trace.monitor_work.load(std::memory_order_relaxed);
  result.monitor_worked = monitor_now != g_trace.monitor_work_at_request || (monitor_now & 1) != 0;
  result.time_to_safepoint_ns = since_request_ns(last_tsc);
  result.last_armed_ns = since_request_ns(record.armed_tsc.load(std::memory_order_relaxed));
  const uint64_t fault_tsc = record.fault_tsc.load(std::memory_order_relaxed);
  result.last_fault_ns = fault_tsc != 0 ? since_request_ns(fault_tsc) : 0;
  result.last_ack_ns = result.time_to_safepoint_ns;
  result.observed_ns = since_request_ns(observed_tsc);
  result.first_fault_ns = first_fault_tsc != 0 ? since_request_ns(first_fault_tsc) : 0;
  result.requester_slept_ns =
      g_trace.requester_slept_tsc != 0 ? since_request_ns(g_trace.requester_slept_tsc) : 0;
  result.requester_woke_ns =
      g_trace.requester_woke_tsc != 0 ? since_request_ns(g_trace.requester_woke_tsc) : 0;
  result.requester_sleeps = g_trace.requester_sleeps;
  const uint64_t wake_call_tsc = record.wake_call_tsc.load(std::memory_order_relaxed);
  result.wake_call_ns = wake_call_tsc != 0 ? since_request_ns(wake_call_tsc) : 0;
  split_by_spawn_step(last, record.armed_tsc.load(std::memory_order_relaxed),
                      fault_tsc != 0 ? fault_tsc : last_tsc, &result);
  g_trace.last = result;

  const int a = static_cast<int>(result.last_activity);
  const int k = static_cast<int>(result.last_kind);
  const bool slow = result.time_to_safepoint_ns > kSlowStopNs;
  g_trace.stops.fetch_add(1, std::memory_order_relaxed);
  g_trace.last_cells[a][k].fetch_add(1, std::memory_order_relaxed);
  if (result.last_on_requester_cpu)
    g_trace.last_on_requester_cpu.fetch_add(1, std::memory_order_relaxed);
  if (result.monitor_worked) g_trace.monitor_worked.fetch_add(1, std::memory_order_relaxed);
  if (slow) {
    g_trace.slow_stops.fetch_add(1, std::memory_order_relaxed);
    g_trace.slow_last_cells[a][k].fetch_add(1, std::memory_order_relaxed);
    if (result.last_on_requester_cpu)
      g_trace.slow_last_on_requester_cpu.fetch_add(1, std::memory_order_relaxed);
    if (result.monitor_worked) g_trace.slow_monitor_worked.fetch_add(1, std::memory_order_relaxed);
  }
  g_trace.request_traced = false;
}

bool initialize(uint32_t slot_count) {
  if (slot_count > g_trace.capacity) {
    auto* records = new (std::nothrow) SlotRecord[slot_count];
    auto* rings = new (std::nothrow) SpawnRing[slot_count];
    if (records == nullptr || rings == nullptr) {
      delete[] records;
      delete[] rings;
      return false;
    }
    // No request in flight and no spawn at initialization (t_spawn_ring is null on every thread
    // between spawns).
    delete[] g_trace.records;
    delete[] g_trace.spawn_rings;
    g_trace.records = records;
    g_trace.spawn_rings = rings;
    g_trace.capacity = slot_count;
  }
  // USGC_TRACE=safepoint (the words off, gc, safepoint).
  if (kernel::read_environment_choice(kernel::EnvironmentVariableId::kTrace, 0) ==
      kernel::kTraceSafepoint)
    set_stop_trace_enabled(true);
  return true;
}

thread_local SpawnRing* t_spawn_ring [[gnu::tls_model("initial-exec")]] = nullptr;

void spawn_begin(uint32_t slot_index, SpawnStep first) {
  if (!g_trace.enabled.load(std::memory_order_relaxed) || slot_index >= g_trace.capacity) {
    t_spawn_ring = nullptr;
    return;
  }
  t_spawn_ring = &g_trace.spawn_rings[slot_index];
  spawn_step_slow(t_spawn_ring, first);
}

void spawn_step_slow(SpawnRing* ring, SpawnStep step) {
  const uint32_t count = ring->count.load(std::memory_order_relaxed);
  const uint32_t at = count % SpawnRing::kEntries;
  ring->tsc[at].store(read_tsc(nullptr), std::memory_order_relaxed);
  ring->step[at].store(step, std::memory_order_relaxed);
  ring->count.store(count + 1, std::memory_order_relaxed);
}

}  // namespace stop_trace
}  // namespace usgc::safepoint
