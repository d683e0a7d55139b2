// runtime/runtime_api.cpp — the C API of include/usgc/runtime.h over the scheduler (goroutines,
// native calls, attached threads, statistics). Channels, select and wait groups have their own
// files (channel.cpp, select.cpp, waitgroup.cpp). In a fork() child of a running runtime every
// entry that needs the runtime's other threads or locks refuses with ENOTRECOVERABLE, and the
// native brackets do nothing (safepoint/fork_child.hpp).
#include <pthread.h>

#include <cerrno>
#include <cstring>

#include "gc/private_old_cycle.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/futex.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/runtime.h"

using namespace usgc::runtime;
using usgc::safepoint::in_fork_child;
using usgc::safepoint::refuse_in_fork_child;

#define USGC_EXPORT extern "C" __attribute__((visibility("default")))

USGC_EXPORT int usgc_config_from_environment(usgc_config* config) {
  return config_from_environment(config);
}
USGC_EXPORT int usgc_init(const usgc_config* config) {
  if (in_fork_child()) return refuse_in_fork_child("usgc_init");
  return runtime_init(config);
}
USGC_EXPORT int usgc_shutdown(void) {
  if (in_fork_child()) return refuse_in_fork_child("usgc_shutdown");
  // The shutdown joins the runtime's threads in pthread_join, a cancellation point: a cancel
  // pending on the caller waits until the shutdown is whole (kernel_iface/uncancellable_io.hpp),
  // and acts at the caller's next cancellation point (restoring the state never acts on it with
  // the default, deferred type).
  int cancel_state = PTHREAD_CANCEL_ENABLE;
  (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  const int result = runtime_shutdown();
  (void)pthread_setcancelstate(cancel_state, &cancel_state);
  return result;
}

USGC_EXPORT int usgc_run_main(void (*fn)(void*), void* arg) {
  if (in_fork_child()) return refuse_in_fork_child("usgc_run_main");
  if (!g_scheduler.initialized) return EPERM;
  if (fn == nullptr) return EINVAL;
  std::atomic<uint32_t> finished{0};
  int error = spawn_goroutine(fn, arg, nullptr, &finished);
  if (error != 0) return error;
  // A goroutine may call this too: it waits in native, holding no P.
  enter_native();
  // Acquire: pairs with goroutine_main's release store of exit_notify (its work is seen).
  while (finished.load(std::memory_order_acquire) == 0) usgc::kernel::futex_wait(&finished, 0);
  leave_native();
  return 0;
}

USGC_EXPORT int usgc_go(void (*fn)(void*), void* arg, usgc_goroutine_id* id) {
  if (in_fork_child()) return refuse_in_fork_child("usgc_go");
  if (!g_scheduler.initialized) return EPERM;
  if (fn == nullptr) return EINVAL;
  return spawn_goroutine(fn, arg, id, nullptr);
}

USGC_EXPORT usgc_goroutine_id usgc_goroutine_self(void) {
  Goroutine* goroutine = current_goroutine();
  return goroutine != nullptr ? goroutine->id : 0;
}

USGC_EXPORT void usgc_yield(void) {
  if (in_fork_child()) return;  // nothing else can run here
  if (current_goroutine() != nullptr) switch_to_scheduler(SwitchRequest::kYield);
}

USGC_EXPORT int usgc_sleep_ns(uint64_t ns) {
  uint64_t deadline_ns = usgc::kernel::monotonic_ns() + ns;
  // A fork() child: the thread sleeps (it is the only one; nothing else could run meanwhile).
  if (current_goroutine() == nullptr || !g_scheduler.initialized || in_fork_child()) {
    usgc::kernel::sleep_for_ns(ns);
    return 0;
  }
  // Idle time for the goroutine's old-generation cycle (gc/private_old_cycle.hpp): bounded steps
  // while the deadline is ahead, each at most one slice or sweep step past it.
  while (usgc::kernel::monotonic_ns() < deadline_ns && usgc::gc::old_cycle_step_before_parking()) {
  }
  timer_sleep_until(deadline_ns);
  return 0;
}

// Acquire: pairs with the release in a goroutine's exit, so a caller that sees the count drop sees
// everything the finished goroutines wrote.
USGC_EXPORT uint64_t usgc_goroutine_count(void) {
  return g_scheduler.live_goroutines.load(std::memory_order_acquire);
}

// In a fork() child the thread simply goes on: there is no P to give up or take back (the
// common `usgc_enter_native(); pid = fork(); usgc_leave_native();` must not wait in the child).
USGC_EXPORT void usgc_enter_native(void) {
  if (!in_fork_child()) enter_native();
}
USGC_EXPORT void usgc_leave_native(void) {
  if (!in_fork_child()) leave_native();
}
USGC_EXPORT int usgc_attach_thread(void) {
  if (in_fork_child()) return refuse_in_fork_child("usgc_attach_thread");
  return attach_thread();
}
USGC_EXPORT int usgc_detach_thread(void) {
  if (in_fork_child()) return refuse_in_fork_child("usgc_detach_thread");
  return detach_thread();
}

USGC_EXPORT int usgc_runtime_get_stats(usgc_runtime_stats* stats) {
  if (stats == nullptr || stats->version != USGC_RUNTIME_STATS_VERSION) return EINVAL;
  std::memset(stats, 0, sizeof *stats);
  stats->version = USGC_RUNTIME_STATS_VERSION;
  stats->procs = g_scheduler.processor_count;
  stats->goroutines = g_scheduler.live_goroutines.load(std::memory_order_relaxed);
  stats->goroutines_created = g_scheduler.goroutines_created.load(std::memory_order_relaxed);
  stats->context_switches = g_scheduler.context_switches.load(std::memory_order_relaxed);
  stats->steals = g_scheduler.steals.load(std::memory_order_relaxed);
  stats->worker_threads = g_scheduler.worker_threads.load(std::memory_order_relaxed);
  usgc::safepoint::SafepointStatistics safepoints = usgc::safepoint::safepoint_statistics();
  stats->stops = safepoints.stops;
  stats->handshakes = safepoints.handshakes;
  stats->preemptions = safepoints.preemptions;
  stats->time_to_safepoint_last_ns = safepoints.time_to_safepoint_last_ns;
  stats->time_to_safepoint_max_ns = safepoints.time_to_safepoint_max_ns;
  stats->time_to_safepoint_total_ns = safepoints.time_to_safepoint_total_ns;
  static_assert(USGC_RUNTIME_HISTOGRAM_BUCKETS == 20, "histogram buckets");
  for (int i = 0; i < USGC_RUNTIME_HISTOGRAM_BUCKETS; ++i)
    stats->time_to_safepoint_histogram[i] = safepoints.time_to_safepoint_histogram[i];
  return 0;
}
