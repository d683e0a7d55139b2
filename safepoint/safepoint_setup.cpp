// safepoint/safepoint_setup.cpp — the safepoint layer's setup and its knobs: initialization
// (poll pages, slots, the fault and asynchronous-safepoint handlers, the configuration read from
// the environment) and shutdown, the configuration's getters and setters (tests and benchmarks
// change them between stops), and the statistics.
//
// Invariants: the configuration fields of stop_state.hpp's State are read relaxed everywhere, so
// a setter called between stops takes effect at the next request and a request sees one value or
// the other, both valid; slots, slot_count and hooks are written once, before `initialized`, and
// never while a thread holds a slot. Statistics are relaxed counters (no ordering promised among
// them). Nothing here is on a hot path.
#include <cerrno>
#include <cstdint>

#include <new>

#include "kernel_iface/cpu.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/fault_handler.hpp"
#include "safepoint/fork_child.hpp"
#include "safepoint/poll_page.hpp"
#include "safepoint/stop_state.hpp"

namespace usgc::safepoint {

namespace {

bool thread_holds_slot() {
  return t_current_slot != nullptr;
}

// USGC_SAFEPOINT_ARMING (kernel_iface/environment.hpp: the words mprotect, swap in this order);
// swap unless set.
SafepointArming arming_from_environment() {
  return kernel::read_environment_choice(kernel::EnvironmentVariableId::kSafepointArming, 1) == 0
             ? SafepointArming::kProtectGlobalPage
             : SafepointArming::kSwapPollPointers;
}

// USGC_SAFEPOINT_ACK (the words trampoline, handler in this order); handler unless set.
SafepointAck ack_from_environment() {
  return kernel::read_environment_choice(kernel::EnvironmentVariableId::kSafepointAck, 1) == 0
             ? SafepointAck::kTrampoline
             : SafepointAck::kHandler;
}

// USGC_SAFEPOINT_CLAIM (a boolean); on unless set.
bool claim_from_environment() {
  return kernel::read_environment_number(kernel::EnvironmentVariableId::kSafepointClaim, 1) != 0;
}

// USGC_SAFEPOINT_WAIT (the words sleep, spin in this order); spin unless set.
SafepointWait wait_from_environment() {
  return kernel::read_environment_choice(kernel::EnvironmentVariableId::kSafepointWait, 1) == 0
             ? SafepointWait::kSleep
             : SafepointWait::kSpin;
}

}  // namespace

kernel::Status safepoint_initialize(uint32_t slot_count, const SafepointHooks& hooks) {
  if (g_state.initialized || slot_count == 0) return kernel::Status::failure(EINVAL);
  kernel::Status pages = poll_pages_initialize(slot_count);
  if (!pages.ok()) return pages;
  if (!stop_trace::initialize(slot_count)) return kernel::Status::failure(ENOMEM);
  auto* slots = new (std::nothrow) SafepointSlot[slot_count];
  if (slots == nullptr) return kernel::Status::failure(ENOMEM);
  for (uint32_t i = 0; i < slot_count; ++i) slots[i].index = i;
  g_state.hooks = hooks;
  g_state.arming.store(arming_from_environment(), std::memory_order_relaxed);
  g_state.wait.store(wait_from_environment(), std::memory_order_relaxed);
  g_state.ack.store(ack_from_environment(), std::memory_order_relaxed);
  set_scheduler_claim(claim_from_environment());
  g_state.online_cpus = kernel::online_cpu_count();
  FaultHandlerHooks fault_hooks{};
  fault_hooks.thread_runs_goroutine =
      hooks.thread_runs_goroutine != nullptr ? hooks.thread_runs_goroutine : thread_holds_slot;
  fault_hooks.poll_slow_path = poll_fault_slow_path;
  fault_hooks.poll_fault_in_handler = poll_fault_in_handler;
  fault_hooks.stack_overflow_goroutine = hooks.stack_overflow_goroutine;
  kernel::Status handler = install_fault_handler(fault_hooks);
  if (!handler.ok()) {
    delete[] slots;
    return handler;
  }
  if (hooks.runs_goroutine_code != nullptr && hooks.blocked_call_release_processor != nullptr &&
      hooks.blocked_call_reacquire_processor != nullptr) {
    AsyncSafepointHooks async_hooks{hooks.runs_goroutine_code,
                                    hooks.blocked_call_release_processor,
                                    hooks.blocked_call_reacquire_processor,
                                    hooks.async_stop_begin,
                                    hooks.async_stop_end,
                                    hooks.preempt_current_in_place,
                                    hooks.others_wait_for_processor};
    kernel::Status async = async_safepoints_initialize(async_hooks);
    if (!async.ok())
      kernel::print_message(
          "asynchronous safepoints are off: installing the SIGURG handler failed (errno %d)",
          async.error());
  }
  g_state.slots = slots;
  g_state.slot_count = slot_count;
  uint32_t epoch = g_state.epoch.load(std::memory_order_relaxed);
  g_state.resumed_epoch.store(epoch, std::memory_order_relaxed);
  g_state.initialized = true;
  watch_for_fork();
  return kernel::Status::success();
}

void safepoint_shutdown() {
  if (!g_state.initialized) return;
  async_safepoints_shutdown();
  uninstall_fault_handler();
  if (stop_trace_enabled()) print_stop_attribution_totals();
  g_state.initialized = false;
  delete[] g_state.slots;
  g_state.slots = nullptr;
  g_state.slot_count = 0;
}

uint32_t slot_count() {
  return g_state.slot_count;
}
SafepointArming safepoint_arming() {
  return g_state.arming.load(std::memory_order_relaxed);
}
void set_safepoint_arming(SafepointArming arming) {
  g_state.arming.store(arming, std::memory_order_relaxed);
}
void set_requester_spin_for_benchmark(int64_t spin_ns) {
  g_state.fixed_spin_ns.store(spin_ns < 0 ? -1 : spin_ns, std::memory_order_relaxed);
}
SafepointAck safepoint_ack() {
  return g_state.ack.load(std::memory_order_relaxed);
}
void set_safepoint_ack(SafepointAck ack) {
  g_state.ack.store(ack, std::memory_order_relaxed);
}
SafepointWait safepoint_wait() {
  return g_state.wait.load(std::memory_order_relaxed);
}
void set_safepoint_wait(SafepointWait wait) {
  g_state.wait.store(wait, std::memory_order_relaxed);
}
void set_spin_caps_for_test(int64_t requester_cap_ns, int64_t resume_cap_ns,
                            bool ignore_machine_load) {
  g_state.requester_cap_ns.store(requester_cap_ns < 0 ? -1 : requester_cap_ns,
                                 std::memory_order_relaxed);
  g_state.resume_cap_ns.store(resume_cap_ns < 0 ? -1 : resume_cap_ns, std::memory_order_relaxed);
  g_state.ignore_machine_load.store(ignore_machine_load, std::memory_order_relaxed);
}
void set_machine_loaded_for_test(bool loaded) {
  g_state.machine_loaded_for_test.store(loaded, std::memory_order_relaxed);
}
void set_scheduler_claim(bool enabled) {
  detail::g_scheduler_claim.store(enabled, std::memory_order_relaxed);
}
bool stop_in_flight() {
  // Relaxed: a hint for the monitor (it only decides whether to skip one round of its work).
  return g_state.epoch.load(std::memory_order_relaxed) !=
         g_state.resumed_epoch.load(std::memory_order_relaxed);
}
bool monitor_quiet_during_stops() {
  return g_state.monitor_quiet.load(std::memory_order_relaxed);
}
void set_monitor_quiet_during_stops(bool quiet) {
  g_state.monitor_quiet.store(quiet, std::memory_order_relaxed);
}

SafepointStatistics safepoint_statistics() {
  SafepointStatistics statistics{};
  statistics.stops = g_state.stops.load(std::memory_order_relaxed);
  statistics.handshakes = g_state.handshakes.load(std::memory_order_relaxed);
  statistics.preemptions = g_state.preemptions.load(std::memory_order_relaxed);
  statistics.slot_visits = g_state.slot_visits.load(std::memory_order_relaxed);
  statistics.time_to_safepoint_last_ns = g_state.ttsp_last_ns.load(std::memory_order_relaxed);
  statistics.time_to_safepoint_max_ns = g_state.ttsp_max_ns.load(std::memory_order_relaxed);
  statistics.time_to_safepoint_total_ns = g_state.ttsp_total_ns.load(std::memory_order_relaxed);
  for (int i = 0; i < 20; ++i)
    statistics.time_to_safepoint_histogram[i] =
        g_state.ttsp_histogram[i].load(std::memory_order_relaxed);
  statistics.requester_futex_waits = g_state.requester_futex_waits.load(std::memory_order_relaxed);
  statistics.resume_futex_wakes = g_state.resume_futex_wakes.load(std::memory_order_relaxed);
  statistics.stops_requester_kept_slot = g_state.stops_kept_slot.load(std::memory_order_relaxed);
  statistics.acknowledger_futex_wakes =
      g_state.acknowledger_futex_wakes.load(std::memory_order_relaxed);
  statistics.handler_acknowledgements =
      g_state.handler_acknowledgements.load(std::memory_order_relaxed);
  statistics.scheduler_claims = g_state.scheduler_claims.load(std::memory_order_relaxed);
  statistics.claimed_holder_waits = g_state.claimed_holder_waits.load(std::memory_order_relaxed);
  statistics.stopped_claims = g_state.stopped_claims.load(std::memory_order_relaxed);
  statistics.stopped_holder_waits = g_state.stopped_holder_waits.load(std::memory_order_relaxed);
  statistics.stale_claims = g_state.stale_claims.load(std::memory_order_relaxed);
  statistics.resume_spins_ceded = g_state.resume_spins_ceded.load(std::memory_order_relaxed);
  statistics.early_signal_rounds = g_state.early_signal_rounds.load(std::memory_order_relaxed);
  statistics.resume_spinners_now = g_state.resume_spinners.load(std::memory_order_relaxed);
  return statistics;
}

}  // namespace usgc::safepoint
