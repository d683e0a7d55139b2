// safepoint/fault_handler.cpp — usgc's SIGSEGV/SIGBUS handler; see fault_handler.hpp for what it
// does with each kind of fault, and trampoline_x86_64.S for the other half of a poll fault.
//
// The poll fault, step by step (a poll is `testb $0, (%reg)` on usgc_current_poll.poll_page; gcc 12
// -O2 compiles usgc_safepoint_poll to 3 instructions, 14 bytes, alike with -fPIC, -fPIE and
// -fno-pic: mov usgc_current_poll@gottpoff(%rip),%rax (7 bytes), mov %fs:(%rax),%rax (4),
// testb $0,(%rax) (3, the only one that can fault)):
//   1. The kernel delivers SIGSEGV with si_addr in a poll page (poll_page.hpp) and si_code > 0
//      (a real fault, not kill(2)).
//   2. hooks.thread_runs_goroutine() says the thread is a goroutine, and the bytes at the
//      interrupted RIP decode as a poll (poll_instruction.hpp) of length L.
//   3. The handler leaves the trampoline two words: the resume address RIP + L, and
//      T = interrupted RSP - 136 (128 bytes of red zone, then the slot the trampoline returns
//      through). Where it writes them follows the live-frame rule (kernel_iface/signals.hpp):
//      - the signal frame is on an alternate stack: at T-16 on the interrupted stack, and the
//        trampoline starts with RSP = T-16;
//      - the signal frame is on the interrupted stack itself, right below the red zone (a thread
//        without an alternate stack): writing at T-16 could overwrite the end of the saved XSAVE
//        image and its magic word (sigreturn would then restore only x87/SSE and reset AVX), so
//        the words go into the 64 bytes of the frame sigreturn ignores, and RSP points there.
//      Then RIP = usgc_safepoint_trampoline, and the handler returns.
//   4. sigreturn restores everything else as it was; the trampoline moves the resume address to
//      [T], sets RSP = T, saves 136 bytes of registers and flags plus the XSAVE area, calls
//      hooks.poll_slow_path(), restores, and `ret $128` resumes after the poll with the red zone
//      intact. Its header counts the bytes saved and the instructions run.
//
// Globals and who writes them:
//   usgc_trampoline_slow_path: constant, trampoline_dispatch.
//   g_thread_runs_goroutine, g_stack_overflow_goroutine, g_poll_slow_path,
//     g_poll_fault_in_handler: the hooks;
//     stored (release) by install_fault_handler, loaded (acquire) by the handler and the
//     trampoline. Replacing them while a poll page is armed is the caller's bug ("hooks are set
//     before any poll page is armed"); each pointer is still read whole.
//   usgc_trampoline_save_bytes, usgc_trampoline_uses_xsave: measured from CPUID by the first
//     install (or trampoline_register_save_bytes), before any handler can run; the same values
//     for the life of the process (use_fxsave_trampoline_for_testing excepted, before install).
//   g_previous_actions[i], g_ours[i]: written only inside the install state's kBusy section, by
//     install (before our handler becomes the disposition) and uninstall; read by the handler.
//   g_previous_reset_used[i]: the SA_RESETHAND emulation, exchanged by the handler.
//
// Execution context: fault_signal_handler and everything it calls run in a signal handler: no
// allocation, no lock, errno preserved; output only through kernel::print_message.
#include "safepoint/fault_handler.hpp"

#include <cpuid.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <span>
#include <thread>

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/signals.hpp"
#include "safepoint/poll_instruction.hpp"
#include "safepoint/poll_page.hpp"
#include "safepoint/stop_trace.hpp"

namespace usgc::safepoint {
namespace {
void trampoline_dispatch(TrampolineFrame* frame);
}
}  // namespace usgc::safepoint

extern "C" {
// Read by trampoline_x86_64.S; see "Globals and who writes them" above. Always the dispatcher,
// which calls the poll hook or the asynchronous slow path the signal handler chose.
[[gnu::visibility("hidden")]] void (*usgc_trampoline_slow_path)(usgc::safepoint::TrampolineFrame*) =
    usgc::safepoint::trampoline_dispatch;
[[gnu::visibility("hidden")]] uint32_t usgc_trampoline_save_bytes = 512;
[[gnu::visibility("hidden")]] uint32_t usgc_trampoline_uses_xsave = 0;
[[gnu::visibility("hidden")]] void usgc_safepoint_trampoline();
}

namespace usgc::safepoint {
namespace {

constexpr uintptr_t kRedZoneBytes = 128;
// T = interrupted rsp - kRedZoneBytes - 8: the slot `ret $128` pops the resume address from.
constexpr uintptr_t kReturnSlotBelowStackPointer = kRedZoneBytes + 8;

constexpr int kHandledSignals[] = {SIGSEGV, SIGBUS};
constexpr int kHandledSignalCount = 2;

int slot_of(int signal_number) {
  return signal_number == SIGSEGV ? 0 : 1;
}

enum InstallState : uint32_t { kIdle, kBusy };

std::atomic<bool (*)()> g_thread_runs_goroutine{nullptr};
std::atomic<void (*)()> g_poll_slow_path{nullptr};
std::atomic<void (*)()> g_poll_fault_in_handler{nullptr};
// Set by the asynchronous signal handler right before it redirects this thread to the
// trampoline, taken (and cleared) by trampoline_dispatch on the same thread: no other reader.
[[gnu::tls_model("initial-exec")]] thread_local void (*t_async_slow_path)(TrampolineFrame*) =
    nullptr;

void trampoline_dispatch(TrampolineFrame* frame) {
  void (*async_slow_path)(TrampolineFrame*) = t_async_slow_path;
  if (async_slow_path != nullptr) {
    t_async_slow_path = nullptr;  // before the call: the goroutine may move to another thread
    async_slow_path(frame);
    return;
  }
  // Acquire: pairs with publish_hooks' release store (what the hook reads was set up before).
  void (*poll_slow_path)() = g_poll_slow_path.load(std::memory_order_acquire);
  if (poll_slow_path != nullptr) poll_slow_path();
}
std::atomic<uint64_t (*)(const void*)> g_stack_overflow_goroutine{nullptr};

std::atomic<uint32_t> g_install_state{kIdle};
kernel::SignalAction g_previous_actions[kHandledSignalCount];
bool g_ours[kHandledSignalCount];
std::atomic<bool> g_previous_reset_used[kHandledSignalCount];

std::atomic<bool> g_save_area_measured{false};
std::atomic<bool> g_force_fxsave{false};

// ---- the register save area ------------------------------------------------------------------

void measure_register_save_area() {
  // Acquire: pairs with the release store at the end: the sizes are written.
  if (g_save_area_measured.load(std::memory_order_acquire)) return;
  uint32_t bytes = 512;  // FXSAVE
  uint32_t uses_xsave = 0;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool has_xsave = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_XSAVE) != 0 &&
                         (ecx & bit_OSXSAVE) != 0 && __get_cpuid_max(0, nullptr) >= 0xD;
  if (has_xsave && !g_force_fxsave.load(std::memory_order_relaxed)) {
    // CPUID.(EAX=0Dh,ECX=0):EBX = the XSAVE area size for the components XCR0 enables now.
    __cpuid_count(0xD, 0, eax, ebx, ecx, edx);
    if (ebx >= 512 + 64) {
      bytes = ebx;
      uses_xsave = 1;
    }
  }
  bytes = (bytes + 63) & ~uint32_t{63};
  __atomic_store_n(&usgc_trampoline_save_bytes, bytes, __ATOMIC_RELAXED);
  __atomic_store_n(&usgc_trampoline_uses_xsave, uses_xsave, __ATOMIC_RELAXED);
  // Release: the values above before the flag (callers that see it read them).
  g_save_area_measured.store(true, std::memory_order_release);
}

// ---- the handler -----------------------------------------------------------------------------

// What the handler made of a fault on a poll page.
enum class PollFault {
  kNotAPoll,     // chain it
  kRedirected,   // the context now resumes in the trampoline
  kNoStackRoom,  // a poll, but the goroutine's stack has no room for the two words: overflow
};

// Points the interrupted context at the trampoline, which will resume at resume_pc.
PollFault enter_trampoline(kernel::InterruptedContext& context, uintptr_t resume_pc,
                           uint64_t* overflowing_goroutine) {
  const uintptr_t return_slot = context.stack_pointer() - kReturnSlotBelowStackPointer;
  uint64_t* words;
  if (context.frame_is_on_interrupted_stack()) {
    // The live-frame rule: the frame's sigreturn-ignored words, not the stack below the red zone.
    words = context.sigreturn_ignored_words();
  } else {
    words = reinterpret_cast<uint64_t*>(return_slot - 16);
    // Acquire: pairs with publish_hooks' release store.
    uint64_t (*overflow)(const void*) = g_stack_overflow_goroutine.load(std::memory_order_acquire);
    if (overflow != nullptr) {
      // A write into the guard page here would fault with the signal blocked: the kernel would
      // kill the process without a word. Say what happened instead.
      uint64_t goroutine = overflow(words);
      if (goroutine == 0) goroutine = overflow(reinterpret_cast<const void*>(return_slot));
      if (goroutine != 0) {
        *overflowing_goroutine = goroutine;
        return PollFault::kNoStackRoom;
      }
    }
  }
  words[0] = resume_pc;    // the resume address
  words[1] = return_slot;  // T
  context.set_stack_pointer(reinterpret_cast<uintptr_t>(words));
  context.set_instruction_pointer(reinterpret_cast<uintptr_t>(&usgc_safepoint_trampoline));
  return PollFault::kRedirected;
}

PollFault redirect_poll_to_trampoline(const void* fault_address,
                                      kernel::InterruptedContext& context,
                                      uint64_t* overflowing_goroutine) {
  if (!is_poll_page_address(fault_address)) return PollFault::kNotAPoll;
  // Acquire: pairs with publish_hooks' release store.
  bool (*runs_goroutine)() = g_thread_runs_goroutine.load(std::memory_order_acquire);
  if (runs_goroutine == nullptr || !runs_goroutine()) return PollFault::kNotAPoll;
  const uintptr_t pc = context.instruction_pointer();
  // Executing the poll page itself is no poll (and its bytes are not readable).
  if (is_poll_page_address(reinterpret_cast<const void*>(pc))) return PollFault::kNotAPoll;
  // "Decode within the instruction": only the instruction's own bytes are read.
  const size_t length = poll_instruction_length(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pc), kMaxInstructionBytes));
  if (length == 0) return PollFault::kNotAPoll;
  return enter_trampoline(context, pc + length, overflowing_goroutine);
}

// Lets the signal's default action happen: a fault re-executes the instruction on return and
// dies by the signal (with a core where the system allows); a sent signal is sent again.
void die_by_default_action(int signal_number, bool from_fault) {
  (void)kernel::reset_signal_to_default(signal_number);
  if (!from_fault) (void)kernel::raise_signal_in_calling_thread(signal_number);
}

void report_stack_overflow(uint64_t goroutine, const void* fault_address,
                           const kernel::InterruptedContext& context) {
  kernel::print_message(
      "goroutine %lu: stack overflow (fault address %p, stack pointer %p): the goroutine's stack "
      "reached its guard "
      "page; look for unbounded recursion or give goroutines larger stacks",
      static_cast<unsigned long>(goroutine), fault_address,
      reinterpret_cast<void*>(context.stack_pointer()));
}

// The inline GC fast paths (usgc/gc.h) read an object's header 8 bytes before it, so NULL given
// to one faults just below the top of the address space: name the likely calls, then chain as
// for any other fault (the message only; what happens next is unchanged).
void report_null_object_header(const void* fault_address) {
  if (reinterpret_cast<uintptr_t>(fault_address) < UINTPTR_MAX - 4095) return;
  kernel::print_message(
      "fault at %p: the header of a NULL object was read: a GC call (usgc_write, "
      "usgc_ownership_of, usgc_type_of, usgc_array_length) was given NULL (build with "
      "-DUSGC_CHECKED to have usgc_write check its target)",
      fault_address);
}

void chain_to_previous(int signal_number, siginfo_t* info, void* signal_context, bool from_fault) {
  const int slot = slot_of(signal_number);
  const kernel::SignalAction& previous = g_previous_actions[slot];
  if (previous.sa_handler == SIG_IGN && !from_fault) return;  // a sent signal the program ignores
  bool use_default = previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN;
  // SA_RESETHAND: the kernel would have run that handler once, then the default action.
  if (!use_default && (previous.sa_flags & SA_RESETHAND) != 0 &&
      g_previous_reset_used[slot].exchange(true, std::memory_order_relaxed)) {
    use_default = true;
  }
  if (use_default) {
    die_by_default_action(signal_number, from_fault);
    return;
  }
  // Run it with the mask it asked for, as the kernel would have.
  sigset_t saved_mask;
  const bool masked = kernel::block_signals(previous.sa_mask, &saved_mask).ok();
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    previous.sa_sigaction(signal_number, info, signal_context);
  } else {
    previous.sa_handler(signal_number);
  }
  if (masked) (void)kernel::set_blocked_signals(saved_mask);
}

void handle_fault(int signal_number, siginfo_t* info, void* signal_context) {
  kernel::InterruptedContext context(signal_context);
  // si_code > 0: raised by the kernel for a fault; <= 0: sent (kill, tgkill, sigqueue), and then
  // si_addr means nothing.
  const bool from_fault = info != nullptr && info->si_code > 0;
  if (from_fault) {
    uint64_t goroutine = 0;
    switch (redirect_poll_to_trampoline(info->si_addr, context, &goroutine)) {
      case PollFault::kRedirected: {
        stop_trace::poll_fault_entered();
        // Acquire: pairs with publish_hooks' release store.
        void (*in_handler)() = g_poll_fault_in_handler.load(std::memory_order_acquire);
        if (in_handler != nullptr) in_handler();
        return;
      }
      case PollFault::kNoStackRoom:
        report_stack_overflow(goroutine, info->si_addr, context);
        die_by_default_action(signal_number, from_fault);
        return;
      case PollFault::kNotAPoll:
        break;
    }
    // Acquire: pairs with publish_hooks' release store.
    uint64_t (*overflow)(const void*) = g_stack_overflow_goroutine.load(std::memory_order_acquire);
    goroutine = overflow != nullptr ? overflow(info->si_addr) : 0;
    if (goroutine != 0) {
      report_stack_overflow(goroutine, info->si_addr, context);
      die_by_default_action(signal_number, from_fault);
      return;
    }
    report_null_object_header(info->si_addr);
  }
  chain_to_previous(signal_number, info, signal_context, from_fault);
}

void fault_signal_handler(int signal_number, siginfo_t* info, void* signal_context) {
  const int saved_errno = errno;
  handle_fault(signal_number, info, signal_context);
  errno = saved_errno;
}

// ---- install / uninstall ---------------------------------------------------------------------

// The install state: kBusy while one thread installs or uninstalls (a once-per-process moment,
// not a lock of the lock table: nothing else is taken inside, and the wait is a yield loop).
void enter_install_section() {
  for (;;) {
    uint32_t expected = kIdle;
    // Acquire: see the previous section's writes of g_previous_actions and g_ours (pairs with
    // leave_install_section's release store).
    if (g_install_state.compare_exchange_weak(expected, kBusy, std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
      return;
    }
    std::this_thread::yield();
  }
}

void leave_install_section() {
  // Release: publish this section's writes to the next one.
  g_install_state.store(kIdle, std::memory_order_release);
}

// Release: a handler that loads a hook (acquire: trampoline_dispatch, enter_trampoline,
// redirect_poll_to_trampoline, handle_fault) sees what the installer set up before calling this.
void publish_hooks(const FaultHandlerHooks& hooks) {
  g_thread_runs_goroutine.store(hooks.thread_runs_goroutine, std::memory_order_release);
  g_stack_overflow_goroutine.store(hooks.stack_overflow_goroutine, std::memory_order_release);
  g_poll_slow_path.store(hooks.poll_slow_path, std::memory_order_release);
  g_poll_fault_in_handler.store(hooks.poll_fault_in_handler, std::memory_order_release);
}

void restore_previous(int slot) {
  (void)kernel::restore_signal_action(kHandledSignals[slot], g_previous_actions[slot]);
  g_ours[slot] = false;
}

}  // namespace

bool redirect_to_trampoline(kernel::InterruptedContext& context, uintptr_t resume_pc,
                            void (*slow_path)(TrampolineFrame* frame)) {
  uint64_t goroutine = 0;
  t_async_slow_path = slow_path;
  if (enter_trampoline(context, resume_pc, &goroutine) == PollFault::kRedirected) return true;
  t_async_slow_path = nullptr;
  return false;
}

kernel::Status install_fault_handler(const FaultHandlerHooks& hooks) {
  if (hooks.thread_runs_goroutine == nullptr || hooks.poll_slow_path == nullptr) {
    return kernel::Status::failure(EINVAL);
  }
  measure_register_save_area();
  publish_hooks(hooks);
  enter_install_section();
  for (int slot = 0; slot < kHandledSignalCount; ++slot) {
    if (g_ours[slot]) continue;
    const int signal_number = kHandledSignals[slot];
    kernel::Result<kernel::SignalAction> current = kernel::current_signal_action(signal_number);
    kernel::Status status = current.status();
    if (status.ok() && kernel::signal_action_runs(current.value(), fault_signal_handler)) {
      // Ours already, put back by a program that had saved it after uninstall: keep the previous
      // action we had, or non-poll faults would chain to ourselves for ever.
      g_ours[slot] = true;
      continue;
    }
    if (status.ok()) {
      // The previous action must be in place before our handler can run and chain to it.
      g_previous_actions[slot] = current.value();
      g_previous_reset_used[slot].store(false, std::memory_order_relaxed);
      status = kernel::install_signal_handler(signal_number, fault_signal_handler).status();
    }
    if (!status.ok()) {
      for (int undo = 0; undo < slot; ++undo) {
        if (g_ours[undo]) restore_previous(undo);
      }
      leave_install_section();
      return status;
    }
    g_ours[slot] = true;
  }
  leave_install_section();
  return kernel::Status::success();
}

void uninstall_fault_handler() {
  enter_install_section();
  for (int slot = 0; slot < kHandledSignalCount; ++slot) {
    if (!g_ours[slot]) continue;
    kernel::Result<kernel::SignalAction> current =
        kernel::current_signal_action(kHandledSignals[slot]);
    // A program's handler installed over ours may chain to it: leave both in place then.
    if (current.ok() && kernel::signal_action_runs(current.value(), fault_signal_handler))
      restore_previous(slot);
  }
  leave_install_section();
}

uint32_t trampoline_register_save_bytes() {
  measure_register_save_area();
  return __atomic_load_n(&usgc_trampoline_save_bytes, __ATOMIC_RELAXED);
}

void use_fxsave_trampoline_for_testing() {
  g_force_fxsave.store(true, std::memory_order_relaxed);
  g_save_area_measured.store(false, std::memory_order_relaxed);
  measure_register_save_area();
}

}  // namespace usgc::safepoint
