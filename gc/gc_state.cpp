// gc/gc_state.cpp — configuration from the environment, counters, pause records, the C API's
// error text, and the start and stop of the collector (see gc_state.hpp).
#include "gc/gc_state.hpp"

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "gc/block.hpp"
#include "gc/parallel_mark.hpp"
#include "gc/shared_heap.hpp"
#include "gc/type_registry.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "safepoint/fork_child.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::gc {

GcConfig g_config;
GcHooks g_hooks;
GcCounters g_counters;

namespace {
std::atomic<uint32_t> g_next_counter_stripe{0};  // relaxed: any distinct-enough spread will do
}  // namespace

uint32_t assign_counter_stripe() {
  return g_next_counter_stripe.fetch_add(1, std::memory_order_relaxed) % kCounterStripes;
}

namespace {

thread_local char t_last_error[256] = "";

void read_environment() {
  GcConfig config;
#if defined(USGC_DEBUG) && USGC_DEBUG
  config.verify = true;
#endif
  // kernel_iface/environment.hpp checks every value against its documented range (the gc percent
  // is 1..100000, the heap limit 1M..64T) before the narrowing below.
  using kernel::EnvironmentVariableId;
  uint64_t percent = kernel::read_environment_number(EnvironmentVariableId::kGcPercent,
                                                     static_cast<uint64_t>(config.gc_percent));
  config.gc_percent = percent == kernel::kEnvironmentOff ? -1 : static_cast<int>(percent);
  config.generational = kernel::read_environment_number(EnvironmentVariableId::kGcGenerational,
                                                        config.generational ? 1 : 0) != 0;
  config.concurrent_mark = kernel::read_environment_number(EnvironmentVariableId::kGcConcurrent,
                                                           config.concurrent_mark ? 1 : 0) != 0;
  config.incremental_private =
      kernel::read_environment_number(EnvironmentVariableId::kGcIncremental,
                                      config.incremental_private ? 1 : 0) != 0;
  config.verify =
      kernel::read_environment_number(EnvironmentVariableId::kVerify, config.verify ? 1 : 0) != 0;
  config.trace =
      kernel::read_environment_choice(EnvironmentVariableId::kTrace, 0) == kernel::kTraceGc;
  constexpr uint64_t kTracedPauseDefaultUs = 1000;  // USGC_TRACE=gc without USGC_TRACE_PAUSE_US
  config.pause_trace_ns =
      kernel::read_environment_number(EnvironmentVariableId::kTracePauseUs,
                                      config.trace ? kTracedPauseDefaultUs : 0) *
      1000;
  // 0: no limit (the default).
  set_heap_limit_bytes(
      static_cast<size_t>(kernel::read_environment_number(EnvironmentVariableId::kHeapMax, 0)));
  g_config = config;
}

}  // namespace

int gc_initialize(uint32_t processor_count, const GcHooks& hooks) {
  read_environment();
  g_hooks = hooks;
  // One marker per P, but never more than the CPUs that can run them at once.
  uint32_t online = kernel::online_cpu_count();
  uint32_t markers = processor_count == 0 ? 1 : processor_count;
  if (markers > online) markers = online;
  g_config.marker_count = markers;
  register_builtin_types();
  int error = shared_heap_initialize(processor_count);
  if (error != 0) return error;
  return parallel_mark_initialize(g_config.marker_count);
}

void gc_shutdown() {
  parallel_mark_shutdown();
  shared_heap_shutdown();
}

void record_pause(bool shared, uint64_t pause_ns) {
  auto& total = shared ? g_counters.shared_pause_total_ns : g_counters.private_pause_total_ns;
  auto& max = shared ? g_counters.shared_pause_max_ns : g_counters.private_pause_max_ns;
  auto* histogram = shared ? g_counters.shared_pause_histogram : g_counters.private_pause_histogram;
  total.fetch_add(pause_ns, std::memory_order_relaxed);
  uint64_t previous = max.load(std::memory_order_relaxed);
  while (pause_ns > previous &&
         !max.compare_exchange_weak(previous, pause_ns, std::memory_order_relaxed)) {
  }
  histogram[safepoint::histogram_bucket_of(pause_ns)].fetch_add(1, std::memory_order_relaxed);
  g_counters.last_pause_ns.store(pause_ns, std::memory_order_relaxed);
}

void* fail(int error_number, const char* format, ...) {
  va_list args;
  va_start(args, format);
  kernel::format_message(t_last_error, sizeof t_last_error, format, args);
  va_end(args);
  errno = error_number;
  return nullptr;
}

const char* last_error() {
  return t_last_error;
}

void* fail_in_fork_child(const char* operation) {
  int error = safepoint::refuse_in_fork_child(operation);
  return fail(error, "%s in a fork() child: %s", operation, safepoint::fork_child_reason());
}

int error_in_fork_child(const char* operation) {
  fail_in_fork_child(operation);
  return ENOTRECOVERABLE;
}

}  // namespace usgc::gc
