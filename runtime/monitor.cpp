// runtime/monitor.cpp — the monitor thread (Go's sysmon): sleeping goroutines' timers,
// preemption of goroutines that run too long, the periodic statistics publication, and the
// moment the GC block pool's free pages are due to go back (Go's sysmon wakes its scavenger too).
//
// Timers: a binary min-heap of parked goroutines ordered by sleep_deadline_ns, under
// timer_lock. A sleeping goroutine pushes itself and parks with a commit that releases the lock
// (the parking protocol of goroutine.hpp), so the monitor can only pop it once it is parked.
// The monitor pops what expired, releases the lock, then readies them.
//
// Preemption: for each P the monitor remembers the switch count it saw and when; a P whose
// count has not moved for preempt_after_us runs one goroutine that long, and gets a preemption
// request (safepoint/stop_the_world.hpp: its poll pointer is swapped to its bad page, no system
// call), so the goroutine yields at its next poll, within microseconds when it polls. Only a
// request still pending at the monitor's next look (kBusyIntervalNs later, the same goroutine
// still running) is followed by the asynchronous safepoint signal, so the goroutine yields at the
// interrupted instruction when it does not poll. A goroutine that polls never gets the signal,
// its /proc probe or the signal's delivery (Go signals at once; here a poll fault already costs
// a signal's delivery, and a second one would only slow the yield down). A preempted goroutine
// with nothing else runnable on its P runs on at once (runtime/scheduler.cpp,
// keep_running_after_preemption).
//
// Retake: a P whose count has not moved for kRetakeAfterNs is probed; a holder blocked in a
// system call outside usgc loses the P (maybe_retake) — an attached thread or a goroutine of
// usgc_go alike (runtime/blocked_call.cpp: the goroutine stays on its thread, the P moves). A
// probe first reads the holder thread's CPU clock (holder_computed): one that gained CPU time
// since the last reading is computing, and only one that did not gets the /proc probe (the
// procfs reads were three quarters of the monitor's CPU in a binary-trees run with two
// computing goroutines). A goroutine kept running after its preemption keeps its probe backoff.
// While any P is busy the monitor ticks every kBusyIntervalNs. A P stopped at a safepoint, or that
// acknowledged a stop since the monitor's last look, counts as not blocked: it is not probed
// (USGC_SAFEPOINT_ACK=handler, the default; safepoint/stop_the_world.hpp).
//
// Stops: while a stop-the-world or handshake is in flight the monitor does no work that makes a
// system call or wakes a thread (no timer fires, no probe, no signal;
// safepoint::monitor_quiet_during_stops, default on): the stop's attribution trace found the
// monitor at work in most stops slower than 50 us, its timers waking idle Ps' threads onto the
// CPUs the stopping Ps needed. It keeps the time slices though (request_due_preemptions_quietly):
// a P whose goroutine has run a full period gets its preemption request in the stop — a pointer
// swap and a flag under the slot's arm lock, nothing else — and the goroutine, stopped at a poll
// or an asynchronous safepoint, yields as the world resumes (safepoint serve_requests; at an
// asynchronous safepoint its thread gives the P up in place, preempt_current_in_place). Without
// that, stops back to back (an embedder's loop; a stop is in flight nearly all the time) left
// the monitor's looks to the rare moments between two stops: a goroutine spinning without polls
// kept its P for seconds while a runnable collector goroutine waited for one (4-8 collections per
// second in bench/stops_collector.cpp). It looks again kQuietRetryNs later,
// then twice as long at each look that still finds a stop in flight, up to kQuietBackoffCapNs
// (safepoint::monitor_backs_off_during_stops, default on; off: every kQuietRetryNs, the policy
// before): a stop of a few milliseconds on a loaded machine woke it tens of times, each wake-up
// on a CPU a stopping P's thread was waiting for; now about log2(stop / 100 us) times. A stop's
// resume does not wake it (the resume stays one store when no stopped thread sleeps): it is late
// after a stop by at most its last sleep, which is at most as long as the stop had lasted.
//
// The GC block pool's free pages: each round that works asks the pool when its oldest resident
// free block will have been free for the decay, and wakes the scavenger thread once it has
// (runtime/stack_scavenger.cpp returns the pages); that moment counts as a deadline, like a
// timer's, so an idle runtime wakes once for it (and not again once nothing free is resident).
//
// Idle: with no timer, no such deadline and no busy P the monitor sleeps without a timeout (an
// idle runtime costs no CPU); acquire_processor wakes it (monitor_notify_busy). Dekker between the
// two: the monitor stores sleeping_indefinitely, then re-reads the busy count; a machine marks
// itself busy (seq_cst slot CAS and idle count), then reads sleeping_indefinitely.
#include <pthread.h>

#include <cstdlib>
#include <new>

#include "alloc/stats_export.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/stack_scavenger.hpp"
#include "safepoint/async_safepoint.hpp"
#include "safepoint/code_ranges.hpp"

namespace usgc::runtime {
namespace {

// How often the monitor looks while Ps are busy and switching goroutines: often enough to retake
// the P of a blocked thread within a few hundred microseconds (Go's sysmon starts at 20 us and
// backs off to 10 ms). A P that runs the same goroutine look after look needs a look only when
// something about it falls due (its next retake probe, whose wait doubles; the end of its time
// slice; a preemption request to check): the monitor then sleeps until the earliest such moment,
// at most kBusyLookCapNs while some P runs no goroutine (a P that turns busy meanwhile waits at
// most that for its first look), at most kProbeBackoffMaxNs when every P runs one.
// A fixed 250 us tick woke it 12 663 times in a 5.3 s binary-trees run with two CPU-bound
// goroutines (4.5 % of a CPU), and each wake-up preempted a goroutine's thread: on a loaded
// machine 90 of the 472 run-queue waits of 1 ms or more of those threads began that way, the CPU
// going to another process when the monitor slept again (docs/benchmarks.md).
constexpr uint64_t kBusyIntervalNs = 250'000;
constexpr uint64_t kBusyLookCapNs = 2'000'000;
// A P whose goroutine has not switched for this long is probed (/proc) for a blocking call.
constexpr uint64_t kRetakeAfterNs = 250'000;
// A probe that found the thread running (or in a call it cannot re-issue) doubles the wait
// before the next probe of that P, up to this.
constexpr uint64_t kProbeBackoffMaxNs = 10'000'000;
// A monitor that woke during a stop skips its work and looks again after this (stops last tens of
// microseconds; the collector's longest a few milliseconds).
constexpr uint64_t kQuietRetryNs = 100'000;
constexpr uint64_t kQuietBackoffCapNs = 2'000'000;

struct Monitor {
  kernel::FutexMutex<kernel::LockRank::kTimers> timer_lock;
  Goroutine** heap = nullptr;  // timer_lock
  uint32_t heap_size = 0;      // timer_lock
  uint32_t heap_capacity = 0;  // timer_lock

  std::atomic<uint32_t> wake_word{0};
  std::atomic<bool> sleeping_indefinitely{false};
  std::atomic<bool> stop{false};
  bool running = false;
  pthread_t thread{};

  // Monitor thread only.
  uint64_t* seen_switch_count = nullptr;
  uint64_t* seen_since_ns = nullptr;
  uint64_t* next_probe_ns = nullptr;
  uint64_t* probe_backoff_ns = nullptr;
  uint32_t* seen_acked_epoch = nullptr;
  // Per P: a preemption request made at this switch count and not yet signalled (the second
  // step, watch_processors); UINT64_MAX: none.
  uint64_t* preempt_requested_at_switch = nullptr;
  // Per P: the goroutine it ran at the last look (a P whose switch count moved but which runs the
  // same goroutine again, kept running after a preemption, keeps its probe backoff), and the
  // holder thread's CPU clock at the monitor's last reading (holder_computed).
  struct HolderWatch {
    Goroutine* seen_goroutine = nullptr;
    int cpu_read_tid = 0;         // the thread read (0: none)
    uint64_t cpu_read_ns = 0;     // its CPU time then
    uint64_t cpu_read_at_ns = 0;  // when
    bool computed = false;        // what that reading said
  };
  HolderWatch* holders = nullptr;
  // Retake probes made (a holder's CPU clock, then /proc when it did not compute), and the /proc
  // reads among all probes, for tests: monitor thread writes, relaxed.
  std::atomic<uint64_t> retake_probes{0};
  std::atomic<uint64_t> procfs_probes{0};
  std::atomic<uint64_t> looks{0};  // watch_processors calls, for tests: likewise
  // Rounds skipped because a stop was in flight (monitor_main): likewise.
  std::atomic<uint64_t> skipped_during_stops{0};
  // Preemptions requested in such rounds (request_due_preemptions_quietly): likewise.
  std::atomic<uint64_t> preemptions_requested_during_stops{0};
};
Monitor g_monitor;

bool earlier(const Goroutine* a, const Goroutine* b) {
  return a->sleep_deadline_ns < b->sleep_deadline_ns;
}

void heap_swap(uint32_t i, uint32_t j) {
  Goroutine* t = g_monitor.heap[i];
  g_monitor.heap[i] = g_monitor.heap[j];
  g_monitor.heap[j] = t;
  g_monitor.heap[i]->timer_heap_index = i;
  g_monitor.heap[j]->timer_heap_index = j;
}

bool heap_push_locked(Goroutine* goroutine) {
  if (g_monitor.heap_size == g_monitor.heap_capacity) {
    uint32_t capacity = g_monitor.heap_capacity == 0 ? 256 : g_monitor.heap_capacity * 2;
    auto* grown =
        static_cast<Goroutine**>(std::realloc(g_monitor.heap, capacity * sizeof(Goroutine*)));
    if (grown == nullptr) return false;
    g_monitor.heap = grown;
    g_monitor.heap_capacity = capacity;
  }
  uint32_t i = g_monitor.heap_size++;
  g_monitor.heap[i] = goroutine;
  goroutine->timer_heap_index = i;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!earlier(g_monitor.heap[i], g_monitor.heap[parent])) break;
    heap_swap(i, parent);
    i = parent;
  }
  return true;
}

Goroutine* heap_pop_locked() {
  Goroutine* top = g_monitor.heap[0];
  uint32_t last = --g_monitor.heap_size;
  if (last > 0) {
    g_monitor.heap[0] = g_monitor.heap[last];
    g_monitor.heap[0]->timer_heap_index = 0;
    uint32_t i = 0;
    for (;;) {
      uint32_t smallest = i;
      uint32_t left = 2 * i + 1;
      uint32_t right = left + 1;
      if (left < last && earlier(g_monitor.heap[left], g_monitor.heap[smallest])) smallest = left;
      if (right < last && earlier(g_monitor.heap[right], g_monitor.heap[smallest]))
        smallest = right;
      if (smallest == i) break;
      heap_swap(i, smallest);
      i = smallest;
    }
  }
  return top;
}

void wake_monitor() {
  // Release: what the waker queued (a timer, a stop) before the word (pairs with monitor_main's
  // acquire load of wake_word).
  g_monitor.wake_word.store(1, std::memory_order_release);
  kernel::futex_wake(&g_monitor.wake_word, 1);
}

bool any_processor_busy() {
  // Seq_cst: the monitor's half of the Dekker pair (file comment): pairs with the seq_cst stores
  // of idle_processor_count in take_idle_processor_locked / put_idle_processor_locked.
  return g_scheduler.idle_processor_count.load(std::memory_order_seq_cst) <
         g_scheduler.processor_count;
}

// Returns the earliest remaining deadline (0: none).
uint64_t fire_expired_timers(uint64_t now_ns) {
  Goroutine* expired = nullptr;
  uint64_t next_deadline = 0;
  {
    kernel::FutexMutexGuard guard(g_monitor.timer_lock);
    while (g_monitor.heap_size > 0 && g_monitor.heap[0]->sleep_deadline_ns <= now_ns) {
      Goroutine* goroutine = heap_pop_locked();
      goroutine->next_in_queue = expired;
      expired = goroutine;
    }
    if (g_monitor.heap_size > 0) next_deadline = g_monitor.heap[0]->sleep_deadline_ns;
  }
  while (expired != nullptr) {
    Goroutine* next = expired->next_in_queue;
    expired->next_in_queue = nullptr;
    ready(expired);
    expired = next;
  }
  return next_deadline;
}

// Retake (Go's sysmon): the thread holding P i has not switched goroutines for kRetakeAfterNs.
// "Blocked" is the kernel's word, not a guess from lack of progress: /proc says the thread is in
// a system call (and which, with its arguments and PC). If that call is outside usgc's code and
// the handler can re-issue it (the kernel restarts it transparently, or it is re-issuable after
// EINTR), the thread is signalled to re-issue it without its P (async_safepoint.hpp,
// blocked_call.cpp); the P goes to runnable work at once and the thread takes one back when the
// call returns. Lack of progress alone is not enough: a goroutine computing for 250 us is not
// blocked, and a signal would only cost it a trip through the handler.
// Whether P i's holder thread `tid` computed since the monitor's last reading of its CPU time: it
// gained at least 1/kComputedShare of the wall time in between. A thread blocked in a system call
// all that time gains none; one that computes gains about the wall time, or its share of a loaded
// machine's CPUs. One clock read (a system call, ~3 us on this VM) where a procfs probe opens,
// reads and closes a file (~30 us, and it sometimes waits on the kernel's locks). The first
// reading of a thread, and an error, say "not known to have computed". Read once per look.
constexpr uint64_t kComputedShare = 8;
bool holder_computed(uint32_t i, int tid, uint64_t now_ns) {
  Monitor::HolderWatch& holder = g_monitor.holders[i];
  if (holder.cpu_read_tid == tid && holder.cpu_read_at_ns == now_ns)
    return holder.computed;  // already read in this look
  kernel::Result<uint64_t> cpu = kernel::thread_cpu_time_ns(tid);
  if (!cpu.ok()) {
    holder.cpu_read_tid = 0;
    return false;
  }
  const bool known = holder.cpu_read_tid == tid && now_ns > holder.cpu_read_at_ns &&
                     cpu.value() >= holder.cpu_read_ns;
  holder.computed = known && (cpu.value() - holder.cpu_read_ns) * kComputedShare >=
                                 now_ns - holder.cpu_read_at_ns;
  holder.cpu_read_tid = tid;
  holder.cpu_read_ns = cpu.value();
  holder.cpu_read_at_ns = now_ns;
  return holder.computed;
}

// Retake probes cost a procfs read only for a holder that did not compute since the last reading
// (holder_computed): one that did is not blocked throughout, and is probed again after the
// doubled wait, as one that /proc found running. A holder that blocked after computing part of
// the interval is so found one probe later (at most kProbeBackoffMaxNs).
void maybe_retake(uint32_t i, Processor* processor, uint64_t now_ns) {
  if (now_ns < g_monitor.next_probe_ns[i]) return;
  bool signalled = false;
  const int tid = processor->slot->owner_tid.load(std::memory_order_relaxed);
  if (tid != 0 && holder_computed(i, tid, now_ns)) {
    g_monitor.retake_probes.fetch_add(1, std::memory_order_relaxed);
  } else if (tid != 0) {
    g_monitor.retake_probes.fetch_add(1, std::memory_order_relaxed);
    g_monitor.procfs_probes.fetch_add(1, std::memory_order_relaxed);
    kernel::Result<kernel::ThreadProbe> probe =
        kernel::probe_thread(tid, kernel::ProbeDetail::kBlockedCall);
    uint64_t unused[6];
    if (probe.ok() && probe.value().in_system_call &&
        (safepoint::system_call_restarts_transparently(probe.value().system_call,
                                                       probe.value().system_call_arguments) ||
         safepoint::reissue_arguments_after_eintr(probe.value().system_call,
                                                  probe.value().system_call_arguments, unused)) &&
        safepoint::classify_code_address(probe.value().instruction_pointer) !=
            safepoint::CodeOwner::kUsgc) {
      signalled = safepoint::request_retake(processor->slot, tid, probe.value());
    }
  }
  if (!signalled && g_monitor.probe_backoff_ns[i] < kProbeBackoffMaxNs)
    g_monitor.probe_backoff_ns[i] *= 2;
  g_monitor.next_probe_ns[i] = now_ns + g_monitor.probe_backoff_ns[i];
}

// Preemption: the poll pointer swap always; the signal (asynchronous preemption) only for a
// thread that is running, not one blocked in a call (a signal would only interrupt the call):
// one that computed since the last reading (holder_computed), else what /proc says.
bool holder_is_running(uint32_t i, Processor* processor, uint64_t now_ns) {
  const int tid = processor->slot->owner_tid.load(std::memory_order_relaxed);
  if (tid == 0) return false;
  if (holder_computed(i, tid, now_ns)) return true;
  g_monitor.procfs_probes.fetch_add(1, std::memory_order_relaxed);
  kernel::Result<kernel::ThreadProbe> probe =
      kernel::probe_thread(tid, kernel::ProbeDetail::kBlockedCall);
  return probe.ok() && !probe.value().in_system_call && probe.value().state == 'R';
}

// P i runs the goroutine it ran at the last look (its switch count has not moved): true, and
// *switches is that count. Otherwise its period and pending request start again, and its probe
// backoff too unless it runs the same goroutine as at the last look (kept running after its
// preemption, runtime/scheduler.cpp keep_running_after_preemption, or back on it): that one is
// true as well, with its new time slice (each slice used to restart the probes at 250 us: six
// probes and looks per 10 ms slice of a goroutine that only computes).
bool same_goroutine_since_last_look(uint32_t i, uint64_t now_ns, uint64_t* switches) {
  Processor* processor = &g_scheduler.processors[i];
  *switches = processor->switch_count.load(std::memory_order_relaxed);
  Goroutine* running = processor->current_goroutine.load(std::memory_order_relaxed);
  if (*switches == g_monitor.seen_switch_count[i] && running != nullptr) return true;
  const bool same_again = running != nullptr && running == g_monitor.holders[i].seen_goroutine;
  g_monitor.holders[i].seen_goroutine = running;
  g_monitor.seen_switch_count[i] = *switches;
  g_monitor.seen_since_ns[i] = now_ns;
  g_monitor.preempt_requested_at_switch[i] = UINT64_MAX;
  if (same_again) return true;
  g_monitor.probe_backoff_ns[i] = kRetakeAfterNs;
  g_monitor.next_probe_ns[i] = now_ns + kRetakeAfterNs;
  return false;
}

// P i's goroutine has run a full period (limit_ns, 0: preemption off): the preemption request
// (the poll pointer swap, no system call), and the period starts again. True when requested.
bool request_preemption_when_due(uint32_t i, uint64_t now_ns, uint64_t limit_ns,
                                 uint64_t switches) {
  if (limit_ns == 0 || now_ns - g_monitor.seen_since_ns[i] < limit_ns) return false;
  safepoint::request_preemption(g_scheduler.processors[i].slot, /*signal_thread=*/false);
  g_monitor.preempt_requested_at_switch[i] = switches;
  g_monitor.seen_since_ns[i] = now_ns;  // ask again only after another full period
  return true;
}

// A round while a stop is in flight (file comment, "Stops"): the time slices only. A request made
// here is signalled, if still pending, by the first look after the stops (watch_processors), as
// any request one look old.
void request_due_preemptions_quietly(uint64_t now_ns) {
  uint64_t limit_ns = uint64_t{g_scheduler.config.preempt_after_us} * 1000;
  if (limit_ns == 0) return;
  for (uint32_t i = 0; i < g_scheduler.processor_count; ++i) {
    uint64_t switches = 0;
    if (same_goroutine_since_last_look(i, now_ns, &switches) &&
        request_preemption_when_due(i, now_ns, limit_ns, switches))
      g_monitor.preemptions_requested_during_stops.fetch_add(1, std::memory_order_relaxed);
  }
}

// When P i, which ran the same goroutine at this look, next needs one (kBusyIntervalNs).
uint64_t next_look_for(uint32_t i, uint64_t now_ns, uint64_t limit_ns, bool retaking) {
  uint64_t due_ns = now_ns + kProbeBackoffMaxNs;
  auto earlier_of = [&due_ns](uint64_t at_ns) {
    if (at_ns < due_ns) due_ns = at_ns;
  };
  if (retaking) earlier_of(g_monitor.next_probe_ns[i]);
  if (limit_ns != 0) earlier_of(g_monitor.seen_since_ns[i] + limit_ns);
  if (g_monitor.preempt_requested_at_switch[i] != UINT64_MAX) earlier_of(now_ns + kBusyIntervalNs);
  return due_ns > now_ns ? due_ns : now_ns + 1;
}

// Returns when the next look is due (0: nothing to watch).
uint64_t watch_processors(uint64_t now_ns) {
  uint64_t limit_ns = uint64_t{g_scheduler.config.preempt_after_us} * 1000;
  const bool retaking = safepoint::async_safepoints_enabled();
  if (limit_ns == 0 && !retaking) return 0;
  g_monitor.looks.fetch_add(1, std::memory_order_relaxed);
  // The cap is for a P that may turn busy without waking the monitor (it wakes only a monitor
  // asleep for good): with every P running a goroutine none can, and each P's own due moments
  // (a probe at most kProbeBackoffMaxNs away, the slice's end) bound the sleep.
  bool every_p_runs = true;
  for (uint32_t i = 0; i < g_scheduler.processor_count && every_p_runs; ++i)
    every_p_runs =
        g_scheduler.processors[i].current_goroutine.load(std::memory_order_relaxed) != nullptr;
  uint64_t next_look_ns = now_ns + (every_p_runs ? kProbeBackoffMaxNs : kBusyLookCapNs);
  for (uint32_t i = 0; i < g_scheduler.processor_count; ++i) {
    Processor* processor = &g_scheduler.processors[i];
    uint64_t switches = 0;
    if (!same_goroutine_since_last_look(i, now_ns, &switches)) {
      // Switching goroutines: the next look comes at the usual tick. An idle P (or one between
      // goroutines) needs none: it turns busy through acquire_processor, which wakes a monitor
      // asleep for good (monitor_notify_busy), or is seen at the next look of another P's.
      if (processor->current_goroutine.load(std::memory_order_relaxed) != nullptr &&
          now_ns + kBusyIntervalNs < next_look_ns)
        next_look_ns = now_ns + kBusyIntervalNs;
      continue;
    }
    // A P stopped at a safepoint now, or that acknowledged a stop since the last look, is not
    // blocked in a system call outside usgc: its holder need not be probed (each probe is a /proc
    // read on a CPU the Ps share; the stop's attribution trace found the monitor at work in most
    // of the slow stops). USGC_SAFEPOINT_ACK=trampoline: the policy before (stops ignored).
    uint32_t acked = processor->slot->acked_epoch.load(std::memory_order_relaxed);
    bool stopped_lately = acked != g_monitor.seen_acked_epoch[i] ||
                          safepoint::slot_stopped_at_safepoint(processor->slot);
    g_monitor.seen_acked_epoch[i] = acked;
    if (stopped_lately && safepoint::safepoint_ack() == safepoint::SafepointAck::kHandler) {
      g_monitor.probe_backoff_ns[i] = kRetakeAfterNs;
      g_monitor.next_probe_ns[i] = now_ns + kRetakeAfterNs;
    }
    if (retaking) maybe_retake(i, processor, now_ns);
    if (g_monitor.preempt_requested_at_switch[i] == switches) {
      // Asked one look ago and the same goroutine still runs: it does not poll (file comment).
      g_monitor.preempt_requested_at_switch[i] = UINT64_MAX;
      if (retaking && processor->slot->preempt_requested.load(std::memory_order_relaxed) != 0 &&
          holder_is_running(i, processor, now_ns))
        (void)safepoint::signal_pending_preemption(processor->slot);
    }
    (void)request_preemption_when_due(i, now_ns, limit_ns, switches);
    const uint64_t due_ns = next_look_for(i, now_ns, limit_ns, retaking);
    if (due_ns < next_look_ns) next_look_ns = due_ns;
  }
  return next_look_ns;
}

void* monitor_main(void*) {
  (void)kernel::name_current_thread("usgc-monitor");  // a name for ps, top and perf only
  uint64_t quiet_retry_ns = kQuietRetryNs;  // the next sleep while stops are in flight (backoff)
  uint64_t next_look_ns = 0;                // when the busy Ps next need a look (0: the tick)
  // Acquire: pairs with monitor_stop's release store.
  while (!g_monitor.stop.load(std::memory_order_acquire)) {
    uint64_t now_ns = kernel::monotonic_ns();
    uint64_t timeout_ns = 0;
    const bool quiet = safepoint::monitor_quiet_during_stops() && safepoint::stop_in_flight();
    if (quiet) {
      // A stop is in flight: no timers fired (their goroutines would wake idle Ps' threads onto
      // the CPUs the stopping Ps need), no probes, no statistics; look again later.
      g_monitor.skipped_during_stops.fetch_add(1, std::memory_order_relaxed);
      request_due_preemptions_quietly(now_ns);
      timeout_ns = quiet_retry_ns;
      if (safepoint::monitor_backs_off_during_stops() && quiet_retry_ns < kQuietBackoffCapNs)
        quiet_retry_ns =
            quiet_retry_ns * 2 < kQuietBackoffCapNs ? quiet_retry_ns * 2 : kQuietBackoffCapNs;
    } else {
      quiet_retry_ns = kQuietRetryNs;
      safepoint::monitor_work_begin();  // the stop's attribution trace (safepoint/stop_trace.hpp)
      uint64_t next_deadline = fire_expired_timers(now_ns);
      next_look_ns = watch_processors(now_ns);
      alloc::stats_export_maybe_publish();
      const uint64_t pool_deadline = watch_block_pool_pages(now_ns);
      if (pool_deadline != 0 && (next_deadline == 0 || pool_deadline < next_deadline))
        next_deadline = pool_deadline;
      safepoint::monitor_work_end();
      timeout_ns = next_deadline != 0 ? (next_deadline > now_ns ? next_deadline - now_ns : 1) : 0;
    }
    bool preempting =
        g_scheduler.config.preempt_after_us != 0 || safepoint::async_safepoints_enabled();
    if (preempting) {
      // Seq_cst: store, then re-read the busy count (any_processor_busy); pairs with
      // monitor_notify_busy's seq_cst load after the machine marked itself busy (file comment).
      g_monitor.sleeping_indefinitely.store(true, std::memory_order_seq_cst);
      // (Not during a stop: the backoff's sleep is the point, and the Ps are not busy then.)
      if (!quiet && any_processor_busy()) {
        const uint64_t look_in_ns = next_look_ns > now_ns ? next_look_ns - now_ns : kBusyIntervalNs;
        if (timeout_ns == 0 || timeout_ns > look_in_ns) timeout_ns = look_in_ns;
      }
    }
    if (timeout_ns != 0) g_monitor.sleeping_indefinitely.store(false, std::memory_order_relaxed);
    // Acquire: pairs with wake_monitor's release store.
    if (g_monitor.wake_word.load(std::memory_order_acquire) == 0)
      kernel::futex_wait(&g_monitor.wake_word, 0, timeout_ns);
    // Consumed by an exchange, not a plain store of 0: a plain store could land after a waker's
    // store of 1 while this thread's next read of `stop` (or of the timer heap) was satisfied
    // before the waker's writes became visible (the store-buffer reordering x86 allows), and the
    // monitor then slept with the wake erased (usgc_shutdown hung in pthread_join). The exchange
    // reads the latest value: a 1 it reads makes the waker's writes visible (acquire, pairs with
    // wake_monitor's release store); a 1 written after it is seen by the next load above.
    (void)g_monitor.wake_word.exchange(0, std::memory_order_acquire);
    g_monitor.sleeping_indefinitely.store(false, std::memory_order_relaxed);
  }
  return nullptr;
}

struct SleepCommit {
  bool earliest;
};

bool release_timer_lock(Goroutine*, void* argument) {
  bool earliest = static_cast<SleepCommit*>(argument)->earliest;
  g_monitor.timer_lock.unlock();
  if (earliest) wake_monitor();
  return true;
}

}  // namespace

void monitor_start() {
  g_monitor.stop.store(false, std::memory_order_relaxed);
  g_monitor.wake_word.store(0, std::memory_order_relaxed);
  uint32_t count = g_scheduler.processor_count;
  g_monitor.seen_switch_count = new uint64_t[count]();
  g_monitor.seen_since_ns = new uint64_t[count]();
  g_monitor.next_probe_ns = new uint64_t[count]();
  g_monitor.probe_backoff_ns = new uint64_t[count]();
  g_monitor.seen_acked_epoch = new uint32_t[count]();
  g_monitor.preempt_requested_at_switch = new uint64_t[count];
  g_monitor.holders = new Monitor::HolderWatch[count]();
  for (uint32_t i = 0; i < count; ++i) {
    g_monitor.probe_backoff_ns[i] = kRetakeAfterNs;
    g_monitor.preempt_requested_at_switch[i] = UINT64_MAX;
  }
  int error = pthread_create(&g_monitor.thread, nullptr, monitor_main, nullptr);
  USGC_CHECK(error == 0, "usgc_init: cannot start the monitor thread (errno %d)", error);
  g_monitor.running = true;
}

void monitor_stop() {
  if (!g_monitor.running) return;
  // Release: pairs with monitor_main's acquire load of stop.
  g_monitor.stop.store(true, std::memory_order_release);
  wake_monitor();
  pthread_join(g_monitor.thread, nullptr);
  g_monitor.running = false;
  delete[] g_monitor.seen_switch_count;
  delete[] g_monitor.seen_since_ns;
  delete[] g_monitor.next_probe_ns;
  delete[] g_monitor.probe_backoff_ns;
  delete[] g_monitor.seen_acked_epoch;
  g_monitor.seen_acked_epoch = nullptr;
  delete[] g_monitor.preempt_requested_at_switch;
  g_monitor.preempt_requested_at_switch = nullptr;
  delete[] g_monitor.holders;
  g_monitor.holders = nullptr;
  g_monitor.next_probe_ns = nullptr;
  g_monitor.probe_backoff_ns = nullptr;
  g_monitor.seen_switch_count = nullptr;
  g_monitor.seen_since_ns = nullptr;
  std::free(g_monitor.heap);
  g_monitor.heap = nullptr;
  g_monitor.heap_size = 0;
  g_monitor.heap_capacity = 0;
}

uint64_t monitor_retake_probes() {
  return g_monitor.retake_probes.load(std::memory_order_relaxed);
}
uint64_t monitor_rounds_skipped_during_stops() {
  return g_monitor.skipped_during_stops.load(std::memory_order_relaxed);
}
uint64_t monitor_preemptions_requested_during_stops() {
  return g_monitor.preemptions_requested_during_stops.load(std::memory_order_relaxed);
}
uint64_t monitor_looks() {
  return g_monitor.looks.load(std::memory_order_relaxed);
}
uint64_t monitor_procfs_probes() {
  return g_monitor.procfs_probes.load(std::memory_order_relaxed);
}

void monitor_notify_busy() {
  // Seq_cst: the machine's half of the Dekker pair (file comment): after its seq_cst busy marks,
  // pairs with monitor_main's seq_cst store of sleeping_indefinitely.
  if (g_monitor.sleeping_indefinitely.load(std::memory_order_seq_cst)) wake_monitor();
}

void timer_sleep_until(uint64_t deadline_ns) {
  Goroutine* goroutine = current_goroutine();
  goroutine->sleep_deadline_ns = deadline_ns;
  g_monitor.timer_lock.lock();
  if (!heap_push_locked(goroutine)) {
    // No memory for the timer heap: sleep the thread instead (correct, just not cheap).
    g_monitor.timer_lock.unlock();
    uint64_t now_ns = kernel::monotonic_ns();
    if (deadline_ns > now_ns) kernel::sleep_for_ns(deadline_ns - now_ns);
    return;
  }
  SleepCommit commit{goroutine->timer_heap_index == 0};
  park(release_timer_lock, &commit, WaitReason::kSleep);
}

}  // namespace usgc::runtime
