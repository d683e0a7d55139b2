// gc/trace.cpp — see trace.hpp. Lines are formatted on the stack and written with one write(2)
// (kernel::print_message), so concurrent collections never interleave within a line.
#include "gc/trace.hpp"

#include <cstdio>

#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::gc {
namespace {

const uint64_t g_start_ns = kernel::monotonic_ns();

double mib(size_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}
double ms(uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}
double seconds_since_start() {
  return static_cast<double>(kernel::monotonic_ns() - g_start_ns) / 1e9;
}

}  // namespace

void trace_private_collection(uint64_t number, uint64_t goroutine_id, const char* reason,
                              bool minor, size_t before_bytes, size_t after_bytes,
                              size_t objects_marked, uint64_t pause_ns, uint64_t mark_ns) {
  char line[256];
  std::snprintf(line, sizeof line,
                "gc P%lu @%.3fs private%s g%lu (%s): %.3f->%.3f MiB, %zu marked, pause %.3f ms "
                "(mark %.3f)",
                static_cast<unsigned long>(number), seconds_since_start(), minor ? "-minor" : "",
                static_cast<unsigned long>(goroutine_id), reason, mib(before_bytes),
                mib(after_bytes), objects_marked, ms(pause_ns), ms(mark_ns));
  kernel::print_message("%s", line);
}

void trace_private_old_cycle(uint64_t goroutine_id, size_t after_bytes, size_t objects_marked,
                             size_t freed_bytes, uint64_t work_ns, uint64_t elapsed_ns) {
  char line[256];
  std::snprintf(line, sizeof line,
                "gc @%.3fs private-incremental g%lu: %zu marked, %.3f MiB freed, %.3f MiB old, "
                "work %.3f ms in slices over %.3f ms",
                seconds_since_start(), static_cast<unsigned long>(goroutine_id), objects_marked,
                mib(freed_bytes), mib(after_bytes), ms(work_ns), ms(elapsed_ns));
  kernel::print_message("%s", line);
}

void trace_shared_collection(const SharedTrace& t) {
  char line[400];
  std::snprintf(line, sizeof line,
                "gc S%lu @%.3fs shared%s g%lu (%s): %.3f->%.3f MiB, %zu goroutines, %zu marked by "
                "%u markers, "
                "pause %.3f ms (start %.3f, end %.3f, of which wake %.3f, resume %.3f), "
                "concurrent mark %.3f ms, ttsp %.3f, "
                "handoff %.3f, rejoin %.3f, sweep %.3f ms",
                static_cast<unsigned long>(t.number), seconds_since_start(),
                t.minor ? "-minor" : "", static_cast<unsigned long>(t.goroutine_id), t.reason,
                mib(t.before_bytes), mib(t.after_bytes), t.goroutines, t.objects_marked, t.markers,
                ms(t.pause_ns), ms(t.start_pause_ns), ms(t.end_pause_ns), ms(t.wake_ns),
                ms(t.resume_ns), ms(t.mark_ns), ms(t.time_to_safepoint_ns), ms(t.handoff_ns),
                ms(t.rejoin_ns), ms(t.sweep_ns));
  kernel::print_message("%s", line);
}

}  // namespace usgc::gc
