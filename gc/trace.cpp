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

void trace_private_collection(const PrivateTrace& t) {
  char line[600];
  std::snprintf(line, sizeof line,
                "gc P%lu @%.3fs private%s g%lu (%s): %.3f->%.3f MiB, %zu marked, pause %.3f ms "
                "(mark %.3f, sweep %.3f: %zu slots read, %zu by bitmap, large %.3f, cycle %.3f: "
                "mark %.3f, terminate %.3f, sweep %.3f of %zu blocks, start %.3f) [thread: cpu "
                "%.3f, run-queue wait %.3f, faults %lu/%lu, switches %lu/%lu, longest stretch "
                "%.3f of %u]",
                static_cast<unsigned long>(t.number), seconds_since_start(),
                t.minor ? "-minor" : "", static_cast<unsigned long>(t.goroutine_id), t.reason,
                mib(t.before_bytes), mib(t.after_bytes), t.objects_marked, ms(t.pause_ns),
                ms(t.mark_ns), ms(t.sweep_ns), t.slots_swept, t.bitmap_swept_slots, ms(t.large_ns),
                ms(t.cycle_ns), ms(t.cycle_mark_ns), ms(t.cycle_terminate_ns), ms(t.cycle_sweep_ns),
                t.cycle_blocks_swept, ms(t.cycle_start_ns), ms(t.usage.cpu_ns),
                ms(t.usage.run_queue_wait_ns), static_cast<unsigned long>(t.usage.minor_faults),
                static_cast<unsigned long>(t.usage.major_faults),
                static_cast<unsigned long>(t.usage.voluntary_switches),
                static_cast<unsigned long>(t.usage.involuntary_switches), ms(t.longest_stretch_ns),
                t.checkpoints);
  kernel::print_message("%s", line);
}

void trace_shared_stop(const SharedStopTrace& t) {
  const StopProbe& probe = *t.probe;
  char line[500];  // print_message writes at most 512 bytes a line
  size_t used = 0;
  auto append = [&](const char* format, auto... values) {
    if (used >= sizeof line) return;
    int written = std::snprintf(line + used, sizeof line - used, format, values...);
    if (written > 0) used += static_cast<size_t>(written);
  };
  append("gc S%lu %s stop (P %s) %.3f ms:", static_cast<unsigned long>(t.number), t.which,
         t.kept_p ? "kept" : "given up", ms(stop_probe_pause_ns(probe)));
  for (uint32_t i = 0; i <= probe.count; ++i)
    append(" %s %.3f%s", i == probe.count ? "resume" : probe.names[i],
           ms(stop_probe_stretch_ns(probe, i)), i == probe.count ? ";" : ",");
  uint32_t longest = stop_probe_longest(probe);
  append(" longest %s", longest == probe.count ? "resume" : probe.names[longest]);
  if (probe.usage_read) {
    append(
        " (%s); thread over %.3f ms from the request: cpu %.3f, run-queue wait %.3f, faults "
        "%lu/%lu, switches %lu/%lu",
        stop_probe_verdict(probe), ms(probe.window_end_ns - probe.window_begin_ns),
        ms(probe.usage.cpu_ns), ms(probe.usage.run_queue_wait_ns),
        static_cast<unsigned long>(probe.usage.minor_faults),
        static_cast<unsigned long>(probe.usage.major_faults),
        static_cast<unsigned long>(probe.usage.voluntary_switches),
        static_cast<unsigned long>(probe.usage.involuntary_switches));
    append("; requester %s, slot %s, %u signal rounds",
           probe.breakdown.requester_slept ? "slept" : "spun",
           probe.breakdown.requester_kept_slot ? "kept" : "given up",
           probe.breakdown.signal_rounds);
  }
  if (t.drained) {
    if (t.drain_markers <= 1)
      append("; drained %zu objects (solo)", t.drained_objects);
    else
      append("; drained %zu objects (%u markers)", t.drained_objects, t.drain_markers);
  }
  kernel::print_message("%s", line);
}

void trace_pool_return(const PoolReturnTrace& t) {
  char line[240];
  std::snprintf(line, sizeof line,
                "gc @%.3fs pool: returned %u free blocks' pages (%.3f MiB) in %u calls, %.3f ms; "
                "%.3f MiB committed, %zu of %zu free blocks resident",
                seconds_since_start(), t.blocks, mib(t.bytes), t.system_calls, ms(t.elapsed_ns),
                mib(t.committed_bytes), t.resident_free_blocks, t.free_blocks);
  kernel::print_message("%s", line);
}

void trace_private_old_cycle(const PrivateCycleTrace& t) {
  char line[320];
  std::snprintf(line, sizeof line,
                "gc @%.3fs private-incremental g%lu: %zu marked, %.3f MiB freed, %.3f MiB old, "
                "work %.3f ms in slices over %.3f ms (longest slice %.3f ms, %zu objects; longest "
                "sweep step %.3f ms, %u blocks)",
                seconds_since_start(), static_cast<unsigned long>(t.goroutine_id), t.objects_marked,
                mib(t.freed_bytes), mib(t.after_bytes), ms(t.work_ns), ms(t.elapsed_ns),
                ms(t.longest_slice_ns), t.longest_slice_objects, ms(t.longest_sweep_ns),
                t.longest_sweep_blocks);
  kernel::print_message("%s", line);
}

void trace_private_step(const PrivateStepTrace& t) {
  char line[360];
  std::snprintf(line, sizeof line,
                "gc @%.3fs private-step g%lu (%s): %s of %zu %s, pause %.3f ms [thread: cpu %.3f, "
                "run-queue wait %.3f, faults %lu/%lu, switches %lu/%lu, longest stretch %.3f "
                "of %u]",
                seconds_since_start(), static_cast<unsigned long>(t.goroutine_id), t.where,
                t.slice ? "mark slice" : "sweep", t.work, t.slice ? "objects" : "blocks",
                ms(t.pause_ns), ms(t.usage.cpu_ns), ms(t.usage.run_queue_wait_ns),
                static_cast<unsigned long>(t.usage.minor_faults),
                static_cast<unsigned long>(t.usage.major_faults),
                static_cast<unsigned long>(t.usage.voluntary_switches),
                static_cast<unsigned long>(t.usage.involuntary_switches), ms(t.longest_stretch_ns),
                t.checkpoints);
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
