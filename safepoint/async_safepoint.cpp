// safepoint/async_safepoint.cpp — the asynchronous safepoint signal; see async_safepoint.hpp for
// the table of what the handler does where.
//
// Globals and who writes them:
//   g_hooks, g_enabled, g_running_code_preemptible: written by async_safepoints_initialize before
//     the handler is installed (g_enabled release-stored last), read by the handler (acquire).
//   g_previous_action: idem; the handler chains signals that usgc did not send to it.
//   t_reissue_pending: the handler's choice for this thread, read by the slow path it redirects
//     to on the same thread.
//   statistics: relaxed counters.
#include "safepoint/async_safepoint.hpp"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/library_call_scope.hpp"
#include "kernel_iface/signals.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/code_ranges.hpp"
#include "safepoint/fault_handler.hpp"
#include "safepoint/stop_state.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::safepoint {
namespace {

AsyncSafepointHooks g_hooks{};
std::atomic<bool> g_enabled{false};
bool g_running_code_preemptible = true;  // USGC_ASYNC_PREEMPT=0 limits it to blocked threads
bool g_installed = false;
kernel::SignalAction g_previous_action{};

std::atomic<uint64_t> g_signals_sent{0};
std::atomic<uint64_t> g_safepoints_taken{0};
std::atomic<uint64_t> g_system_calls_reissued{0};
std::atomic<uint64_t> g_declined{0};
std::atomic<uint64_t> g_handed_off_after_eintr{0};

constexpr uint8_t kSyscallOpcode0 = 0x0F;
constexpr uint8_t kSyscallOpcode1 = 0x05;
constexpr uint64_t kMinusEintr = static_cast<uint64_t>(-EINTR);

// ---- slow paths (normal context, from the trampoline) ----------------------------------------

// Cancellation. glibc runs a cancellable call (read, nanosleep, poll, ...) with asynchronous
// cancellation enabled around its `syscall` instruction (Debian 12's 2.36 does), and a slow path
// the handler redirects to from there still runs in that window: a pthread_cancel unwound the
// thread from whatever instruction of usgc it was at. Found in attached_thread_exit.c (once in
// about a hundred runs): a thread cancelled in reach_safepoint between storing its slot's
// acked_epoch and acknowledging left the stop waiting for an acknowledgement that never came; one
// cancelled in a futex lock's constructor (noexcept) aborted the program. So every slow path holds
// cancellation off and lets it in only where the runtime's state is whole: around a re-issued
// call (the P given up, the goroutine in native: as a cancel in the original call) and at its end
// (the P back, as before the signal). A cancel that came meanwhile acts there: the unwinding
// leaves by the trampoline's CFI into the library call, and the thread's exit detaches it
// (runtime/native.cpp). The type goes to deferred, because glibc's SIGCANCEL handler acts on a
// signal already sent whatever the state says; the state to disabled, because usgc's own code may
// reach a cancellation point. Before the first statement here nothing has changed yet, so a
// cancel in the trampoline is one in the original call. Never let in from a destructor: a forced
// unwind out of one (noexcept) terminates the program. Not covered: a glibc whose SIGCANCEL
// handler decides by the interrupted address (its own cancellable-syscall bracket) rather than by
// the asynchronous type would not cancel a thread inside the re-issued call (a plain `syscall`)
// until that call returns; this machine's 2.36 cannot show it.
struct CancellationSetting {
  int type;
  int state;
};

CancellationSetting hold_off_cancellation() {
  CancellationSetting previous{PTHREAD_CANCEL_DEFERRED, PTHREAD_CANCEL_ENABLE};
  (void)::pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, &previous.type);
  (void)::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &previous.state);
  return previous;
}

// May not return: a pending cancel unwinds the thread from here when the setting lets it act.
void let_cancellation_in(CancellationSetting previous) {
  int ignored;
  (void)::pthread_setcanceltype(previous.type, &ignored);  // still disabled: acts on nothing
  (void)::pthread_setcancelstate(previous.state, &ignored);
}

// After a blocking call a signal interrupted, with a P again: this thread blocks in the kernel
// outside usgc, where no poll comes from it, so the next stop signals it early even on a loaded
// machine (SafepointSlot::blocking_holder_tid). A hint, forgotten at its next poll.
void note_blocking_holder() {
  if (SafepointSlot* slot = current_slot())
    slot->blocking_holder_tid.store(slot->owner_tid.load(std::memory_order_relaxed),
                                    std::memory_order_relaxed);
}

// The interrupted code may hold object pointers only in registers (saved by the trampoline: the
// general registers in its frame, the vector registers in the XSAVE area below it) and in
// unrooted stack slots above them: while it is stopped there, shared collections scan all of it
// conservatively, from this slow path's own frame (below everything the trampoline saved) up
// (the runtime's hooks record the bound in the goroutine's GC record). Objects never move, so a
// conservative root only keeps an object alive.
struct InterruptedStateExposed {
  [[gnu::noinline]] InterruptedStateExposed() {
    if (g_hooks.async_stop_begin != nullptr) g_hooks.async_stop_begin(__builtin_frame_address(0));
  }
  ~InterruptedStateExposed() {
    if (g_hooks.async_stop_end != nullptr) g_hooks.async_stop_end();
  }
  InterruptedStateExposed(const InterruptedStateExposed&) = delete;
  InterruptedStateExposed& operator=(const InterruptedStateExposed&) = delete;
};

// In program code: stops in place, and a preemption in place (the header's "Preempted in
// place"): the goroutine never leaves this thread here, so the errno restored below is this
// thread's, the one the interrupted code may hold the address of.
void safepoint_slow_path(TrampolineFrame*) {
  const int saved_errno = errno;
  const CancellationSetting cancellation = hold_off_cancellation();
  g_safepoints_taken.fetch_add(1, std::memory_order_relaxed);
  SafepointSlot* slot = current_slot();
  if (slot != nullptr) {
    InterruptedStateExposed exposed;
    stop_trace::set_next_ack_kind(AckKind::kAsyncSignal);
    reach_safepoint(slot, false);
    if (g_hooks.preempt_in_place != nullptr && take_preemption_request(slot, true))
      g_hooks.preempt_in_place();
  }
  let_cancellation_in(cancellation);
  errno = saved_errno;
}

// Inside a system library, just after a blocking call returned EINTR to a stop's signal and could
// not be re-issued (nanosleep without a remainder, poll with a timeout): stops only, never a
// preemption (the call finishes on this thread). The thread was blocked in the kernel, so when
// goroutines or threads wait for a P (others_wait_for_processor) it hands its P off as around a
// re-issued call instead of keeping it through the stop: releasing the slot acknowledges the stop
// (slot_release), the P goes to the waiting work, and the thread takes a P back in the pinned
// waiters' line, after the resume, before the EINTR returns to its caller. Keeping the P here
// (the policy before, and still when nobody waits: Go's retake leaves a system call's P alone
// too when its run queue is empty) left a goroutine that sleeps in a loop of such calls holding
// its P for good: the monitor never retakes a call that cannot be re-issued (it would see EINTR),
// and every stop found it blocked again and let it keep the P, so a runnable collector goroutine
// waited for the other Ps (docs/benchmarks.md, "A stop hands off the P of a sleep it cannot
// re-issue").
void after_eintr_slow_path(TrampolineFrame*) {
  const int saved_errno = errno;
  const CancellationSetting cancellation = hold_off_cancellation();
  g_safepoints_taken.fetch_add(1, std::memory_order_relaxed);
  SafepointSlot* slot = current_slot();
  if (slot != nullptr) {
    InterruptedStateExposed exposed;
    if (g_hooks.others_wait_for_processor != nullptr && g_hooks.others_wait_for_processor()) {
      g_handed_off_after_eintr.fetch_add(1, std::memory_order_relaxed);
      g_hooks.release_processor();  // acknowledges the stop on the way out (AckKind::kReleased)
      g_hooks.reacquire_processor();
    } else {
      stop_trace::set_next_ack_kind(AckKind::kAsyncSignal);
      reach_safepoint(slot, false);
    }
  }
  note_blocking_holder();
  let_cancellation_in(cancellation);
  errno = saved_errno;
}

// The call a handler decided to re-issue, for the slow path it redirects to on the same thread.
struct ReissuePlan {
  long number;
  uint64_t arguments[6];
  bool from_registers;  // the call at the `syscall` instruction: number and arguments in frame
};
thread_local ReissuePlan t_plan [[gnu::tls_model("initial-exec")]];

// Makes the planned system call as the `syscall` instruction would have (rax = result, rcx =
// the next RIP, r11 = the flags), without the P: the runtime's hooks give it up before and take
// one back after, keeping the goroutine on this thread (it is inside a library call).
void reissue_system_call_slow_path(TrampolineFrame* frame) {
  const int saved_errno = errno;
  const CancellationSetting cancellation = hold_off_cancellation();
  const ReissuePlan plan = t_plan;
  g_system_calls_reissued.fetch_add(1, std::memory_order_relaxed);
  long number = plan.number;
  uint64_t a[6];
  std::memcpy(a, plan.arguments, sizeof a);
  if (plan.from_registers) {
    number = static_cast<long>(frame->rax);
    const uint64_t registers[6] = {frame->rdi, frame->rsi, frame->rdx,
                                   frame->r10, frame->r8,  frame->r9};
    std::memcpy(a, registers, sizeof a);
    frame->resume_address += 2;  // past the `syscall` instruction
  }
  long result;
  {
    InterruptedStateExposed exposed;
    g_hooks.release_processor();
    let_cancellation_in(cancellation);  // a cancel here or in the call: as in the original call
    result = kernel::raw_system_call(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    (void)hold_off_cancellation();
    g_hooks.reacquire_processor();
  }
  note_blocking_holder();
  frame->rax = static_cast<uint64_t>(result);
  frame->rcx = frame->resume_address;
  frame->r11 = frame->rflags;
  let_cancellation_in(cancellation);
  errno = saved_errno;
}

// After an EINTR: the call the prober saw, if the PC and the argument registers still match.
bool plan_reissue_after_eintr(SafepointSlot* slot, const kernel::InterruptedContext& context,
                              uintptr_t pc, ReissuePlan* plan) {
  const long number = static_cast<long>(slot->probed_system_call.load(std::memory_order_relaxed));
  if (number < 0 || slot->probed_instruction_pointer.load(std::memory_order_relaxed) != pc)
    return false;
  uint64_t registers[6];
  context.system_call_arguments(registers);
  for (int i = 0; i < 6; ++i) {
    if (slot->probed_arguments[i].load(std::memory_order_relaxed) != registers[i]) return false;
  }
  plan->number = number;
  plan->from_registers = false;
  // Used once: a later signal must be matched against a new probe, not this one.
  slot->probed_system_call.store(-1, std::memory_order_relaxed);
  return reissue_arguments_after_eintr(number, registers, plan->arguments);
}

// ---- the handler (signal context) --------------------------------------------------------------

bool bytes_are_syscall(uintptr_t address) {
  const auto* code = reinterpret_cast<const uint8_t*>(address);
  return code[0] == kSyscallOpcode0 && code[1] == kSyscallOpcode1;
}

void chain_to_previous(int signal_number, siginfo_t* info, void* context) {
  const kernel::SignalAction& previous = g_previous_action;
  if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN) return;  // SIGURG: ignore
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    previous.sa_sigaction(signal_number, info, context);
  } else {
    previous.sa_handler(signal_number);
  }
}

void handle_async_signal(int signal_number, siginfo_t* info, void* signal_context) {
  if (info == nullptr || info->si_code != SI_TKILL || info->si_pid != kernel::process_id()) {
    chain_to_previous(signal_number, info, signal_context);
    return;
  }
  // Acquire: pairs with async_safepoints_initialize's release store: g_hooks and the settings
  // are complete before the handler uses them.
  if (!g_enabled.load(std::memory_order_acquire)) return;
  SafepointSlot* slot = current_slot();
  if (slot == nullptr || !g_hooks.runs_goroutine_code()) return;
  const bool stop = safepoint_requested(slot);
  const bool preempt = slot->preempt_requested.load(std::memory_order_relaxed) != 0;
  const bool retake = slot->retake_requested.load(std::memory_order_relaxed) != 0;
  if (!stop && !preempt && !retake) return;

  kernel::InterruptedContext context(signal_context);
  const uintptr_t pc = context.instruction_pointer();
  const CodeOwner owner = classify_code_address(pc);
  if (owner == CodeOwner::kUsgc || owner == CodeOwner::kPollingCode ||
      kernel::in_library_call_for_usgc()) {
    g_declined.fetch_add(1, std::memory_order_relaxed);
    return;  // it polls soon: its inline sequences are not safe points; inside a library on
             // usgc's behalf it may hold usgc's locks (kernel_iface/library_call_scope.hpp)
  }
  // Only calls that block (and depend on nothing but their arguments) count: re-issuing clone,
  // fork, rt_sigreturn or exit from the trampoline would be wrong, and they do not block.
  const bool at_system_call =
      bytes_are_syscall(pc) && system_call_may_block(static_cast<long>(context.accumulator()));
  const bool after_interrupted_call =
      (pc & 4095) >= 2 && bytes_are_syscall(pc - 2) && context.accumulator() == kMinusEintr;
  if (owner == CodeOwner::kSystemLibrary) {
    if (!at_system_call && !after_interrupted_call) {
      g_declined.fetch_add(1, std::memory_order_relaxed);
      return;  // running library code: it may hold the library's locks
    }
    // usgc's own blocking calls go through libc's syscall(3), a leaf: its caller is at [rsp].
    const uintptr_t caller = *reinterpret_cast<const uintptr_t*>(context.stack_pointer());
    if (classify_code_address(caller) == CodeOwner::kUsgc) {
      g_declined.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  } else if (!g_running_code_preemptible && !at_system_call && !after_interrupted_call) {
    g_declined.fetch_add(1, std::memory_order_relaxed);
    return;
  }

  if (at_system_call) {
    slot->retake_requested.store(0, std::memory_order_relaxed);
    t_plan.from_registers = true;
    (void)redirect_to_trampoline(context, pc, reissue_system_call_slow_path);
    return;
  }
  if (after_interrupted_call && plan_reissue_after_eintr(slot, context, pc, &t_plan)) {
    slot->retake_requested.store(0, std::memory_order_relaxed);
    (void)redirect_to_trampoline(context, pc, reissue_system_call_slow_path);
    return;
  }
  if (owner == CodeOwner::kSystemLibrary) {  // after an EINTR: the only way here from a library
    if (stop) (void)redirect_to_trampoline(context, pc, after_eintr_slow_path);
    return;
  }
  if (!stop && !preempt) return;  // a retake, but the call returned meanwhile: keep the P
  (void)redirect_to_trampoline(context, pc, safepoint_slow_path);
}

void async_signal_handler(int signal_number, siginfo_t* info, void* signal_context) {
  const int saved_errno = errno;
  handle_async_signal(signal_number, info, signal_context);
  errno = saved_errno;
}

bool build_can_rewrite_async_contexts() {
#if defined(__SANITIZE_THREAD__)
  return false;  // TSan runs asynchronous handlers later, on a copy of the context
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  return false;
#else
  return true;
#endif
#else
  return true;
#endif
}

}  // namespace

kernel::Status async_safepoints_initialize(const AsyncSafepointHooks& hooks) {
  if (hooks.runs_goroutine_code == nullptr || hooks.release_processor == nullptr ||
      hooks.reacquire_processor == nullptr)
    return kernel::Status::failure(EINVAL);
  g_hooks = hooks;
  const char* setting = std::getenv("USGC_ASYNC_PREEMPT");
  g_running_code_preemptible = setting == nullptr || std::strcmp(setting, "0") != 0;
  if (!build_can_rewrite_async_contexts()) return kernel::Status::success();
  code_ranges_initialize();
  if (!g_installed) {
    kernel::Result<kernel::SignalAction> previous =
        kernel::install_signal_handler(kAsyncSignal, async_signal_handler);
    if (!previous.ok()) return previous.status();
    if (!kernel::signal_action_runs(previous.value(), async_signal_handler))
      g_previous_action = previous.value();
    g_installed = true;
  }
  // Release: the hooks and the settings above before any handler acts on them (pairs with the
  // acquire loads in handle_async_signal and async_safepoints_enabled).
  g_enabled.store(true, std::memory_order_release);
  return kernel::Status::success();
}

void async_safepoints_shutdown() {
  // The handler stays installed (a signal in flight must find it); it acts on nothing now.
  // Release, like the store that enabled it (same acquire readers); false publishes nothing: a
  // handler that still read true uses hooks that stay valid (g_hooks is never cleared).
  g_enabled.store(false, std::memory_order_release);
}

bool async_safepoints_enabled() {
  // Acquire: pairs with async_safepoints_initialize's release store (the handler is installed and
  // its hooks set before a caller signals a thread).
  return g_enabled.load(std::memory_order_acquire);
}

bool signal_slot_holder_locked(SafepointSlot* slot) {
  if (!async_safepoints_enabled()) return false;
  const int tid = slot->owner_tid.load(std::memory_order_relaxed);
  if (tid == 0) return false;
  if (!kernel::send_signal_to_thread(tid, kAsyncSignal).ok()) return false;
  g_signals_sent.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool system_call_restarts_transparently(long number, const uint64_t arguments[6]) {
  switch (number) {
    case 0:    // read
    case 1:    // write
    case 2:    // open (a FIFO)
    case 16:   // ioctl
    case 17:   // pread64
    case 18:   // pwrite64
    case 19:   // readv
    case 20:   // writev
    case 43:   // accept
    case 61:   // wait4
    case 72:   // fcntl (F_SETLKW)
    case 73:   // flock
    case 247:  // waitid
    case 257:  // openat
    case 288:  // accept4
      return true;
    case 202:                    // futex: restarted only without a timeout
      return arguments[3] == 0;  // the timeout argument (r10)
    default:
      return false;  // poll, select, epoll_wait, nanosleep, ...: EINTR; or unknown
  }
}

bool system_call_may_block(long number) {
  switch (number) {
    case 0:
    case 1:
    case 2:
    case 7:
    case 16:
    case 17:
    case 18:
    case 19:
    case 20:
    case 23:
    case 35:
    case 42:
    case 43:
    case 44:
    case 45:
    case 46:
    case 47:
    case 61:
    case 72:
    case 73:
    case 202:
    case 230:
    case 232:
    case 247:
    case 257:
    case 270:
    case 271:
    case 281:
    case 288:
      return true;
    default:
      return false;
  }
}

bool reissue_arguments_after_eintr(long number, const uint64_t arguments[6], uint64_t reissued[6]) {
  for (int i = 0; i < 6; ++i) reissued[i] = arguments[i];
  constexpr uint64_t kTimerAbstime = 1;
  constexpr uint64_t kFutexCommandMask = ~uint64_t{128 | 256};  // PRIVATE, CLOCK_REALTIME
  constexpr uint64_t kFutexWaitBitset = 9;
  switch (number) {
    case 35:  // nanosleep(req, rem)
      if (arguments[1] == 0) return false;
      reissued[0] = arguments[1];
      return true;
    case 230:  // clock_nanosleep(clock, flags, req, rem)
      if ((arguments[1] & kTimerAbstime) != 0) return true;
      if (arguments[3] == 0) return false;
      reissued[2] = arguments[3];
      return true;
    case 7:  // poll(fds, n, timeout)
      return static_cast<int>(arguments[2]) < 0;
    case 232:  // epoll_wait(fd, events, max, timeout)
    case 281:  // epoll_pwait
      return static_cast<int>(arguments[3]) < 0;
    case 23:   // select: Linux writes the remaining time back
    case 270:  // pselect6
    case 271:  // ppoll
      return true;
    case 202:  // futex
      return (arguments[1] & kFutexCommandMask) == kFutexWaitBitset;
    default:
      return false;
  }
}

AsyncSafepointStatistics async_safepoint_statistics() {
  AsyncSafepointStatistics statistics{};
  statistics.signals_sent = g_signals_sent.load(std::memory_order_relaxed);
  statistics.safepoints_taken = g_safepoints_taken.load(std::memory_order_relaxed);
  statistics.system_calls_reissued = g_system_calls_reissued.load(std::memory_order_relaxed);
  statistics.declined = g_declined.load(std::memory_order_relaxed);
  statistics.handed_off_after_eintr = g_handed_off_after_eintr.load(std::memory_order_relaxed);
  return statistics;
}

}  // namespace usgc::safepoint
