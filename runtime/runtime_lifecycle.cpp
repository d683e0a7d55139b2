// runtime/runtime_lifecycle.cpp — starting and stopping the runtime: usgc_init, usgc_shutdown,
// the configuration from USGC_* variables, and the worker threads.
//
// usgc_init makes the Ps (all idle), the safepoint slots and poll pages, installs the fault
// handler and starts the monitor; worker threads start lazily, when goroutines need a P
// (wake_idle_processor), so an idle runtime has one sleeping monitor thread and nothing else.
// usgc_shutdown refuses while goroutines live (EBUSY), then wakes and joins every worker,
// frees what usgc_init made, and leaves the runtime ready for another usgc_init.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "alloc/stats_export.hpp"
#include "gc/gc_state.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/signals.hpp"
#include "kernel_iface/thread_control.hpp"
#include "runtime/context_switch.hpp"
#include "runtime/scheduler.hpp"
#include "runtime/stack_scavenger.hpp"
#include "safepoint/thread_signals.hpp"

namespace usgc::runtime {

namespace {

// The bounds of a usgc_config, whether it comes from the caller or the environment (where
// kernel_iface/environment.cpp states the same bounds for USGC_PROCS, USGC_STACK_SIZE and
// USGC_STACK_GUARD).
constexpr size_t kMinimumStackBytes = 8 * 1024;
constexpr size_t kMaximumStackBytes = size_t{1} << 30;
constexpr size_t kMaximumGuardBytes = size_t{64} << 20;
constexpr uint32_t kMaximumProcs = 1024;

uint32_t online_cores() {
  return kernel::online_cpu_count();
}

void* worker_thread_main(void* argument) {
  auto* machine = static_cast<Machine*>(argument);
  set_current_machine(machine);
  char name[16];
  std::snprintf(name, sizeof name, "usgc-m%u", machine->id);
  (void)kernel::name_current_thread(name);  // a name for ps, top and perf only
  machine->scheduler_fiber = sanitizer_fiber_of_thread();
  (void)machine->signal_stack.install();  // without one, a stack overflow dies without the message
  // It inherited its creator's mask, perhaps every signal blocked (safepoint/thread_signals.hpp).
  (void)safepoint::unblock_goroutine_signals(nullptr);
  worker_loop(machine);
  sanitizer_fiber_destroy(machine->scheduler_fiber, true);
  machine->scheduler_fiber = nullptr;
  g_scheduler.live_worker_threads.fetch_sub(1, std::memory_order_relaxed);
  (void)machine->signal_stack.release();
  set_current_machine(nullptr);
  return nullptr;
}

// The rules of every preemption: a goroutine with nothing else to run keeps its P
// (keep_running_after_preemption). True: it gives way. A goroutine locked to its machine (an
// attached thread) gives way too, as Go preempts a locked goroutine (its M hands the P off and
// sleeps until the goroutine is scheduled again): it goes to the global queue and its thread waits
// for the worker that dequeues it to hand it a P (runtime/native.cpp, locked_scheduler_loop), or,
// preempted in place, waits in the pinned waiters' line. Before, it was never preempted: an
// attached thread that computed with polls held its P for good, and a goroutine queued on that P
// (another thread attaching, say) waited as long.
bool preemption_gives_way(Machine* machine) {
  if (machine == nullptr || machine->current == nullptr) return false;
  return !keep_running_after_preemption(machine);
}

void preempt_current_goroutine() {
  if (preemption_gives_way(current_machine())) switch_to_scheduler(SwitchRequest::kPreempt);
}

// An asynchronous preemption in the program's code (safepoint/async_safepoint.hpp, "Preempted
// in place"): the goroutine keeps its thread, the P goes to other work and one comes back as
// after a blocked call (runtime/blocked_call.cpp: the thread waits in the pinned line, served in
// turns with the run queues).
void preempt_current_goroutine_in_place() {
  if (!preemption_gives_way(current_machine())) return;
  g_scheduler.preemptions_in_place.fetch_add(1, std::memory_order_relaxed);
  blocked_call_release_processor();
  blocked_call_reacquire_processor();
}

// Signal context: the thread executes its goroutine's code, not its scheduler's.
bool runs_goroutine_code() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->processor == nullptr) return false;
  Goroutine* goroutine = machine->current;
  return goroutine != nullptr &&
         goroutine->state.load(std::memory_order_relaxed) == safepoint::GoroutineState::kRunning;
}

// From the asynchronous slow paths (normal context): the current goroutine's interrupted state
// lies from saved_state up its stack until async_stop_end; shared collections scan it
// conservatively meanwhile (gc/conservative_roots.hpp). The goroutine stays on its thread
// throughout (a preemption there is served in place); the end looks it up again all the same.
void async_stop_begin(const void* saved_state) {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->current == nullptr) return;
  // Release: the interrupted words are written before a marker that sees the bound reads them.
  machine->current->mutator.conservative_low.store(reinterpret_cast<uintptr_t>(saved_state),
                                                   std::memory_order_release);
}

void async_stop_end() {
  Machine* machine = current_machine();
  if (machine == nullptr || machine->current == nullptr) return;
  machine->current->mutator.conservative_low.store(0, std::memory_order_relaxed);
}

bool thread_runs_goroutine() {
  Machine* machine = current_machine();
  return machine != nullptr && machine->current != nullptr && machine->processor != nullptr;
}

// The stats block's runtime figures (alloc/stats_export.hpp: allocator context, atomics only).
void contribute_runtime_figures(usgc_stats_block* block) {
  block->goroutines = g_scheduler.live_goroutines.load(std::memory_order_relaxed);
  safepoint::SafepointStatistics safepoints = safepoint::safepoint_statistics();
  for (int i = 0; i < USGC_STATS_HISTOGRAM_BUCKETS; ++i)
    block->time_to_safepoint_histogram[i] = safepoints.time_to_safepoint_histogram[i];
  gc::contribute_statistics(block);
}

void free_goroutine_list(Goroutine* goroutine) {
  while (goroutine != nullptr) {
    Goroutine* next = goroutine->next_in_queue;
    goroutine_destroy(goroutine);
    goroutine = next;
  }
}

}  // namespace

Machine* start_worker_machine(Processor* processor, bool spinning) {
  // The bound (Go's maxmcount): reached only with that many threads blocked in library calls.
  if (g_scheduler.live_worker_threads.fetch_add(1, std::memory_order_relaxed) >=
      g_scheduler.max_worker_threads) {
    g_scheduler.live_worker_threads.fetch_sub(1, std::memory_order_relaxed);
    static std::atomic<bool> said{false};
    if (!said.exchange(true, std::memory_order_relaxed))
      kernel::print_message(
          "the runtime has %u worker threads (its bound) while goroutines block in library "
          "calls: runnable goroutines wait for one of those calls to return (said once)",
          g_scheduler.max_worker_threads);
    return nullptr;
  }
  auto* machine = new (std::nothrow) Machine();
  if (machine == nullptr) {
    g_scheduler.live_worker_threads.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  machine->next_processor = processor;
  machine->spinning = spinning;
  machine->wake_word.store(1, std::memory_order_relaxed);  // starts with its P handed
  if (!register_machine(machine)) {
    delete machine;
    g_scheduler.live_worker_threads.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  int error = pthread_create(&machine->thread, &attributes, worker_thread_main, machine);
  pthread_attr_destroy(&attributes);
  if (error != 0) {
    unregister_machine(machine);
    delete machine;
    g_scheduler.live_worker_threads.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  g_scheduler.worker_threads.fetch_add(1, std::memory_order_relaxed);
  return machine;
}

int config_from_environment(usgc_config* config) {
  if (config == nullptr) return EINVAL;
  std::memset(config, 0, sizeof *config);
  config->version = USGC_CONFIG_VERSION;
  config->procs = online_cores();
  // 64 KiB: a parked goroutine costs one page at 8K..256K alike; the page tables and room for C
  // code decide (docs/runtime.md, "Stacks").
  config->stack_bytes = 64 * 1024;
  config->guard_bytes = 16 * 1024;
  config->preempt_after_us = 10000;
  // Each value is checked against its range (kernel_iface/environment.hpp: procs 1..1024, stack
  // 8K..1G, guard 4K..64M, preemption 0..60000000 us) before the narrowing below; a bad one is
  // refused with a message and the default stays.
  using kernel::EnvironmentVariableId;
  using kernel::read_environment_number;
  config->procs =
      static_cast<uint32_t>(read_environment_number(EnvironmentVariableId::kProcs, config->procs));
  config->stack_bytes = static_cast<size_t>(
      read_environment_number(EnvironmentVariableId::kStackSize, config->stack_bytes));
  config->guard_bytes = static_cast<size_t>(
      read_environment_number(EnvironmentVariableId::kStackGuard, config->guard_bytes));
  config->preempt_after_us = static_cast<uint32_t>(
      read_environment_number(EnvironmentVariableId::kPreemptUs, config->preempt_after_us));
  return 0;
}

int runtime_init(const usgc_config* requested) {
  if (g_scheduler.initialized) return EALREADY;
  usgc_config config;
  if (requested == nullptr) {
    int error = config_from_environment(&config);
    if (error != 0) return error;
  } else {
    config = *requested;
  }
  if (config.version != USGC_CONFIG_VERSION) {
    kernel::print_message("usgc_init: config.version is %u, this usgc understands %u",
                          config.version, USGC_CONFIG_VERSION);
    return EINVAL;
  }
  if (config.procs == 0 || config.procs > kMaximumProcs) {
    kernel::print_message("usgc_init: procs (USGC_PROCS) must be 1..%u, got %u", kMaximumProcs,
                          config.procs);
    return EINVAL;
  }
  if (config.stack_bytes < kMinimumStackBytes || config.stack_bytes > kMaximumStackBytes) {
    kernel::print_message("usgc_init: stack_bytes (USGC_STACK_SIZE) must be %zu..%zu, got %zu",
                          kMinimumStackBytes, kMaximumStackBytes, config.stack_bytes);
    return EINVAL;
  }
  // Below one page (0 included) the guard is one page: stack_pool_configure rounds up.
  if (config.guard_bytes > kMaximumGuardBytes) {
    kernel::print_message("usgc_init: guard_bytes (USGC_STACK_GUARD) must be at most %zu, got %zu",
                          kMaximumGuardBytes, config.guard_bytes);
    return EINVAL;
  }
  stack_pool_configure(config.stack_bytes, config.guard_bytes);

  safepoint::SafepointHooks hooks{};
  hooks.preempt_current = preempt_current_goroutine;
  hooks.preempt_current_in_place = preempt_current_goroutine_in_place;
  hooks.requester_enter_native = enter_native_for_stop;
  hooks.requester_leave_native = leave_native;
  hooks.requester_hand_off_held = hand_off_held_processor;
  hooks.stack_overflow_goroutine = stack_overflow_goroutine_id;
  hooks.thread_runs_goroutine = thread_runs_goroutine;
  hooks.runs_goroutine_code = runs_goroutine_code;
  hooks.blocked_call_release_processor = blocked_call_release_processor;
  hooks.blocked_call_reacquire_processor = blocked_call_reacquire_processor;
  hooks.others_wait_for_processor = others_wait_for_processor;
  hooks.async_stop_begin = async_stop_begin;
  hooks.async_stop_end = async_stop_end;
  hooks.resumed_from_stop = resumed_from_stop;
  kernel::Status safepoints = safepoint::safepoint_initialize(config.procs, hooks);
  if (!safepoints.ok()) return safepoints.error();

  auto* processors = new (std::nothrow) Processor[config.procs];
  if (processors == nullptr) {
    safepoint::safepoint_shutdown();
    return ENOMEM;
  }
  g_scheduler.config = config;
  g_scheduler.processors = processors;
  g_scheduler.processor_count = config.procs;
  g_scheduler.shutting_down.store(false, std::memory_order_relaxed);
  for (uint32_t i = config.procs; i-- > 0;) {
    processors[i].index = i;
    processors[i].slot = safepoint::slot_at(i);
    processors[i].next_idle = g_scheduler.idle_processors;
    g_scheduler.idle_processors = &processors[i];
  }
  g_scheduler.idle_processor_count.store(config.procs, std::memory_order_relaxed);
  gc::GcHooks gc_hooks{};
  gc_hooks.enter_native = enter_native;
  gc_hooks.leave_native = leave_native;
  gc_hooks.enter_native_for_stop = enter_native_for_stop;
  gc_hooks.hand_off_held_processor = hand_off_held_processor;
  gc_hooks.visit_runtime_roots = visit_reference_channel_roots;
  gc_hooks.resume_scans_goroutines = true;  // resumed_from_stop, leave_native, blocked calls
  if (int error = gc::gc_initialize(config.procs, gc_hooks); error != 0) {
    delete[] processors;
    g_scheduler.processors = nullptr;
    g_scheduler.processor_count = 0;
    g_scheduler.idle_processors = nullptr;
    safepoint::safepoint_shutdown();
    return error;
  }
  monitor_start();
  scavenger_start();
  alloc::stats_export_set_contributor(contribute_runtime_figures);
  g_scheduler.initialized = true;
  return 0;
}

int runtime_shutdown() {
  if (!g_scheduler.initialized) return EPERM;
  // Acquire (live_goroutines): pairs with the acq_rel decrement of an exiting goroutine.
  if (current_machine() != nullptr ||
      g_scheduler.live_goroutines.load(std::memory_order_acquire) != 0)
    return EBUSY;
  // Seq_cst: pairs with the acquire loads in find_runnable and wake_idle_processor, and is
  // ordered before the idle machines' wake-ups below.
  g_scheduler.shutting_down.store(true, std::memory_order_seq_cst);
  alloc::stats_export_set_contributor(nullptr);
  monitor_stop();
  scavenger_stop();
  Machine* machines;
  {
    kernel::FutexMutexGuard guard(g_scheduler.lock);
    while (Machine* idle = g_scheduler.idle_machines) {
      g_scheduler.idle_machines = idle->next_idle;
      idle->next_processor = nullptr;
      // Release: next_processor (nullptr: exit) before the word (pairs with wait_for_processor's
      // acquire load).
      idle->wake_word.store(1, std::memory_order_release);
      kernel::futex_wake(&idle->wake_word, 1);
    }
    machines = g_scheduler.all_machines;
    g_scheduler.all_machines = nullptr;
  }
  while (machines != nullptr) {
    Machine* next = machines->next_all;
    if (!machines->attached) pthread_join(machines->thread, nullptr);
    delete machines;
    machines = next;
  }
  for (uint32_t i = 0; i < g_scheduler.processor_count; ++i)
    free_goroutine_list(g_scheduler.processors[i].free_goroutines);
  free_goroutine_list(g_scheduler.free_goroutines);
  delete[] g_scheduler.processors;
  g_scheduler.processors = nullptr;
  g_scheduler.processor_count = 0;
  g_scheduler.idle_processors = nullptr;
  g_scheduler.idle_processor_count.store(0, std::memory_order_relaxed);
  g_scheduler.idle_machines = nullptr;
  g_scheduler.global_head = g_scheduler.global_tail = nullptr;
  g_scheduler.global_size.store(0, std::memory_order_relaxed);
  g_scheduler.free_goroutines = nullptr;
  g_scheduler.free_goroutine_count = 0;
  g_scheduler.spinning_machines.store(0, std::memory_order_relaxed);
  stack_pool_drain();
  gc::gc_shutdown();
  safepoint::safepoint_shutdown();
  g_scheduler.initialized = false;
  return 0;
}

}  // namespace usgc::runtime
