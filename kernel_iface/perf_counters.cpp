// kernel_iface/perf_counters.cpp — see perf_counters.hpp. perf_event_open has no glibc wrapper:
// syscall(SYS_perf_event_open, ...).
#include "kernel_iface/perf_counters.hpp"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernel_iface/uncancellable_io.hpp"

namespace usgc::kernel {
namespace {

struct EventCode {
  uint32_t type;
  uint64_t config;
};

EventCode code_of(PerfEvent event) {
  switch (event) {
    case PerfEvent::kInstructions:
      return {PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS};
    case PerfEvent::kCycles:
      return {PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES};
    case PerfEvent::kBranchMisses:
      return {PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES};
    case PerfEvent::kL1dReadMisses:
      return {PERF_TYPE_HW_CACHE, PERF_COUNT_HW_CACHE_L1D | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
                                      (PERF_COUNT_HW_CACHE_RESULT_MISS << 16)};
    case PerfEvent::kTaskClock:
      return {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK};
    case PerfEvent::kPageFaults:
      return {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS};
    case PerfEvent::kContextSwitches:
      return {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES};
  }
  return {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_DUMMY};
}

constexpr uint64_t kReadFormat =
    PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;

Result<int> open_event(PerfEvent event, int group_fd, PerfScope scope) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  EventCode code = code_of(event);
  attr.type = code.type;
  attr.config = code.config;
  attr.read_format = kReadFormat;
  attr.disabled = group_fd == -1 ? 1 : 0;  // members follow the leader
  attr.inherit = scope == PerfScope::kThreadAndNewThreads ? 1 : 0;
  if (perf_event_is_hardware(event)) {
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
  }
  long fd = ::syscall(SYS_perf_event_open, &attr, 0 /* this thread */, -1 /* any cpu */, group_fd,
                      PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return Result<int>::failure(errno);
  return Result<int>::success(static_cast<int>(fd));
}

}  // namespace

const char* perf_event_name(PerfEvent event) {
  switch (event) {
    case PerfEvent::kInstructions:
      return "instructions";
    case PerfEvent::kCycles:
      return "cycles";
    case PerfEvent::kBranchMisses:
      return "branch-misses";
    case PerfEvent::kL1dReadMisses:
      return "L1-dcache-load-misses";
    case PerfEvent::kTaskClock:
      return "task-clock";
    case PerfEvent::kPageFaults:
      return "page-faults";
    case PerfEvent::kContextSwitches:
      return "context-switches";
  }
  return "unknown";
}

bool perf_event_is_hardware(PerfEvent event) {
  return code_of(event).type != PERF_TYPE_SOFTWARE;
}

const char* describe_open_failure(PerfEvent event, int error_number) {
  bool hardware = perf_event_is_hardware(event);
  switch (error_number) {
    case ENOENT:
    case EOPNOTSUPP:
      return hardware ? "the CPU exposes no such hardware counter to this system (virtual "
                        "machines usually have no PMU): ENOENT/EOPNOTSUPP from perf_event_open"
                      : "the kernel has no such software event (ENOENT/EOPNOTSUPP)";
    case ENODEV:
      return "no PMU for this event on this CPU (ENODEV from perf_event_open)";
    case EACCES:
    case EPERM:
      return hardware ? "not permitted: /proc/sys/kernel/perf_event_paranoid forbids user-space "
                        "counting of this thread (EACCES/EPERM; needs <= 2 or CAP_PERFMON)"
                      : "not permitted: software events count kernel work, which "
                        "/proc/sys/kernel/perf_event_paranoid forbids (EACCES/EPERM; needs <= 1 "
                        "or CAP_PERFMON)";
    case ENOSYS:
      return "the kernel has no perf_event_open (ENOSYS: built without CONFIG_PERF_EVENTS or "
             "blocked by a seccomp filter)";
    case EINVAL:
      return "perf_event_open rejected the event's attributes (EINVAL)";
    case EMFILE:
    case ENFILE:
      return "out of file descriptors (EMFILE/ENFILE)";
    case ENOSPC:
      return "no room for the group on the PMU (ENOSPC: too many events at once)";
    default:
      return "perf_event_open failed";
  }
}

double PerfCounterValues::scaled(size_t i) const {
  if (time_running_ns == 0) return 0.0;
  if (!multiplexed()) return static_cast<double>(values[i]);
  return static_cast<double>(values[i]) * static_cast<double>(time_enabled_ns) /
         static_cast<double>(time_running_ns);
}

Status PerfCounterGroup::open(std::span<const PerfEvent> events, PerfScope scope) {
  if (is_open() || events.empty() || events.size() > kMaxPerfGroupEvents) {
    return Status::failure(EINVAL);
  }
  for (size_t i = 0; i < events.size(); ++i) {
    Result<int> opened = open_event(events[i], i == 0 ? -1 : fds_[0], scope);
    if (!opened.ok()) {
      failed_event_ = events[i];
      count_ = i;
      close();
      return opened.status();
    }
    fds_[i] = opened.value();
    events_[i] = events[i];
  }
  count_ = events.size();
  return Status::success();
}

Status PerfCounterGroup::enable() {
  if (!is_open()) return Status::failure(EBADF);
  if (::ioctl(fds_[0], PERF_EVENT_IOC_RESET, PERF_IOC_FLAG_GROUP) != 0) {
    return Status::failure(errno);
  }
  if (::ioctl(fds_[0], PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP) != 0) {
    return Status::failure(errno);
  }
  return Status::success();
}

Status PerfCounterGroup::disable() {
  if (!is_open()) return Status::failure(EBADF);
  if (::ioctl(fds_[0], PERF_EVENT_IOC_DISABLE, PERF_IOC_FLAG_GROUP) != 0) {
    return Status::failure(errno);
  }
  return Status::success();
}

Status PerfCounterGroup::read(PerfCounterValues& values) const {
  if (!is_open()) return Status::failure(EBADF);
  // PERF_FORMAT_GROUP | TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING:
  //   { u64 nr; u64 time_enabled; u64 time_running; u64 value[nr]; }
  uint64_t buffer[3 + kMaxPerfGroupEvents];
  ssize_t got;
  do {
    got = sys_read(fds_[0], buffer, sizeof(buffer));
  } while (got < 0 && errno == EINTR);
  if (got < 0) return Status::failure(errno);
  if (got < static_cast<ssize_t>(3 * sizeof(uint64_t)) || buffer[0] != count_ ||
      static_cast<size_t>(got) < (3 + count_) * sizeof(uint64_t)) {
    return Status::failure(EIO);
  }
  values.count = count_;
  values.time_enabled_ns = buffer[1];
  values.time_running_ns = buffer[2];
  for (size_t i = 0; i < count_; ++i) values.values[i] = buffer[3 + i];
  return Status::success();
}

void PerfCounterGroup::close() {
  // Members first, the leader last.
  for (size_t i = count_; i-- > 0;) {
    sys_close(fds_[i]);
    fds_[i] = -1;
  }
  count_ = 0;
}

}  // namespace usgc::kernel
