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
#include "kernel_iface/fatal.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::gc {

GcConfig g_config;
GcHooks g_hooks;
GcCounters g_counters;

namespace {

thread_local char t_last_error[256] = "";

// "123", "64k", "512M", "2g" -> bytes; false when malformed.
bool parse_bytes(const char* text, size_t* bytes) {
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text) return false;
  unsigned shift = 0;
  switch (*end) {
    case 'k':
    case 'K':
      shift = 10;
      ++end;
      break;
    case 'm':
    case 'M':
      shift = 20;
      ++end;
      break;
    case 'g':
    case 'G':
      shift = 30;
      ++end;
      break;
    default:
      break;
  }
  if (*end == 'i' || *end == 'b' || *end == 'B') ++end;  // "MiB", "MB"
  if (*end == 'B') ++end;
  if (*end != '\0') return false;
  *bytes = static_cast<size_t>(value) << shift;
  return true;
}

void read_environment() {
  GcConfig config;
#if defined(USGC_DEBUG) && USGC_DEBUG
  config.verify = true;
#endif
  if (const char* percent = std::getenv("USGC_GC_PERCENT")) {
    if (std::strcmp(percent, "off") == 0) {
      config.gc_percent = -1;
    } else {
      char* end = nullptr;
      long value = std::strtol(percent, &end, 10);
      if (end == percent || *end != '\0' || value < 1 || value > 100000) {
        kernel::print_message(
            "USGC_GC_PERCENT=%s is not a percentage from 1 to 100000 or \"off\": using 100",
            percent);
      } else {
        config.gc_percent = static_cast<int>(value);
      }
    }
  }
  if (const char* generational = std::getenv("USGC_GC_GENERATIONAL"))
    config.generational = std::strcmp(generational, "0") != 0;
  if (const char* verify = std::getenv("USGC_VERIFY"))
    config.verify = std::strcmp(verify, "0") != 0;
  if (const char* trace = std::getenv("USGC_TRACE"))
    config.trace = std::strstr(trace, "gc") != nullptr;
  size_t limit = 0;
  if (const char* heap_max = std::getenv("USGC_HEAP_MAX")) {
    if (!parse_bytes(heap_max, &limit)) {
      kernel::print_message(
          "USGC_HEAP_MAX=%s is not a size (bytes, or with a k/m/g suffix): no heap limit",
          heap_max);
      limit = 0;
    }
  }
  set_heap_limit_bytes(limit);
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

}  // namespace usgc::gc
