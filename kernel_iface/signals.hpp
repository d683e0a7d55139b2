// kernel_iface/signals.hpp — signal dispositions, signal masks, alternate signal stacks and the
// interrupted register context, for usgc's fault handler (safepoint/fault_handler.cpp).
//
// The only place in usgc that calls sigaction, sigaltstack, sigprocmask and raise, and the only
// one that knows the layout of the kernel's signal frame (ucontext_t, x86-64 Linux).
//
// Dispositions: install_signal_handler() always asks for SA_SIGINFO|SA_ONSTACK|SA_RESTART with
// an empty mask and hands back the action it replaced, so the caller can chain to it and put it
// back (restore_signal_action). reset_signal_to_default() is what a fault handler does before
// returning to let a real crash kill the process by the signal, with a core.
//
// Alternate signal stacks: every worker thread of the runtime installs one (AlternateSignalStack,
// once per thread: one mapping, one mprotect, one sigaltstack), so a fault on a goroutine's guard
// page still finds a stack to run the handler on. The stack has a PROT_NONE guard page below it:
// a handler that overflows it faults instead of writing over whatever lies below.
//
// Signal frames (InterruptedContext): the kernel pushes the frame for a signal onto the
// interrupted stack, 128 bytes (the red zone) below its stack pointer, unless the handler runs on
// an alternate stack the interrupted code was not already on. On the interrupted stack, the top of
// the frame is the saved XSAVE image followed by a 4-byte magic word; both are read back by
// sigreturn, so a handler must not write just below the red zone while its own frame is there
// ("the live-frame rule"; frame_is_on_interrupted_stack() says when it is).
//
// Execution context: everything marked signal-safe may run in a signal handler (they are plain
// system calls); the rest is for normal code.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

using SignalAction = struct sigaction;
using SignalInfoHandler = void (*)(int signal_number, siginfo_t* info, void* context);

// Makes `handler` the handler of signal_number with SA_SIGINFO|SA_ONSTACK|SA_RESTART and an empty
// mask; returns the action it replaced.
Result<SignalAction> install_signal_handler(int signal_number, SignalInfoHandler handler);

// The current action of signal_number (signal-safe).
Result<SignalAction> current_signal_action(int signal_number);

// Puts back an action returned by install_signal_handler or current_signal_action (signal-safe).
Status restore_signal_action(int signal_number, const SignalAction& action);

// SIG_DFL for signal_number (signal-safe).
Status reset_signal_to_default(int signal_number);

// True when `action` calls `handler` (SA_SIGINFO form).
bool signal_action_runs(const SignalAction& action, SignalInfoHandler handler);

// Adds `signals` to the calling thread's blocked set; stores the previous set in *previous
// (signal-safe).
Status block_signals(const sigset_t& signals, sigset_t* previous);
// Takes `signals` out of the calling thread's blocked set; the previous set in *previous unless
// null (signal-safe).
Status unblock_signals(const sigset_t& signals, sigset_t* previous);
// Replaces the calling thread's blocked set (signal-safe).
Status set_blocked_signals(const sigset_t& signals);

// Sends signal_number to the calling thread (signal-safe). Used to re-deliver a signal that did
// not come from a fault (kill(2), raise(3)) once its disposition is back to the default.
Status raise_signal_in_calling_thread(int signal_number);

// The registers of the interrupted code, in the context argument of an SA_SIGINFO handler.
// Changes take effect when the handler returns (sigreturn reloads them).
class InterruptedContext {
 public:
  explicit InterruptedContext(void* signal_context) : context_(signal_context) {}

  uintptr_t instruction_pointer() const;
  void set_instruction_pointer(uintptr_t value);
  uintptr_t stack_pointer() const;
  void set_stack_pointer(uintptr_t value);
  // rax: a system call's number before it runs (and when the kernel restarts it), its result
  // (-errno on failure) after.
  uint64_t accumulator() const;
  // The six system call argument registers: rdi, rsi, rdx, r10, r8, r9 (a `syscall` leaves them
  // unchanged).
  void system_call_arguments(uint64_t arguments[6]) const;

  // True when the kernel put this signal frame on the interrupted stack, right below its red
  // zone (no alternate stack, or the interrupted code was already on it): the live-frame rule
  // then forbids writing below the red zone until the handler returns.
  bool frame_is_on_interrupted_stack() const;

  // 64 bytes inside this signal frame that sigreturn does not read (the reserved words at the end
  // of the saved sigcontext, which the kernel leaves out of CONTEXT_COPY_SIZE), so a handler may
  // write them despite the live-frame rule. When frame_is_on_interrupted_stack(), they lie on the
  // interrupted stack below the red zone and keep their contents after the handler returns,
  // until that stack grows over them: a handler can leave the interrupted code a few words there
  // by pointing its stack pointer at them.
  uint64_t* sigreturn_ignored_words() const;
  static constexpr size_t kSigreturnIgnoredWords = 8;

 private:
  void* context_;
};

// A thread's alternate signal stack: kStackBytes of stack above a PROT_NONE guard page, made
// the calling thread's sigaltstack by install(); release() (or the destructor) puts back the
// thread's previous one and unmaps ours. install() and release() must run on the same thread,
// not inside a handler running on this stack (the kernel refuses: EPERM).
class AlternateSignalStack {
 public:
  static constexpr size_t kStackBytes = 64 * 1024;

  AlternateSignalStack() = default;
  ~AlternateSignalStack();
  AlternateSignalStack(const AlternateSignalStack&) = delete;
  AlternateSignalStack& operator=(const AlternateSignalStack&) = delete;

  // Maps and installs. EBUSY when this object already holds an installed stack.
  Status install();
  // Restores the previous alternate stack of the calling thread and unmaps ours. A no-op when
  // nothing is installed.
  Status release();

  bool installed() const { return mapping_ != nullptr; }
  // The usable stack (without the guard page); nullptr when not installed.
  void* stack_base() const;
  // The guard page below the stack; nullptr when not installed.
  void* guard_page() const { return mapping_; }

 private:
  void* mapping_ = nullptr;  // guard page, then kStackBytes of stack
  size_t mapping_bytes_ = 0;
  stack_t previous_{};  // what sigaltstack reported before install()
};

}  // namespace usgc::kernel
