// kernel_iface/signals.cpp — see signals.hpp. Plain system calls; nothing here allocates.
#include "kernel_iface/signals.hpp"

#include <signal.h>
#include <ucontext.h>

#include <cerrno>
#include <cstddef>

#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {

#if !defined(__x86_64__)
#error "InterruptedContext knows the x86-64 Linux signal frame only"
#endif

// The kernel's sigreturn copies the sigcontext only up to its reserved words
// (CONTEXT_COPY_SIZE = offsetof(struct sigcontext, reserved1)); glibc's mcontext_t mirrors that
// layout: gregs[23], fpregs, __reserved1[8].
static_assert(offsetof(mcontext_t, __reserved1) == 23 * 8 + 8,
              "mcontext_t is the kernel's sigcontext");
static_assert(sizeof(mcontext_t::__reserved1) == InterruptedContext::kSigreturnIgnoredWords * 8);

Result<SignalAction> install_signal_handler(int signal_number, SignalInfoHandler handler) {
  SignalAction action{};
  action.sa_sigaction = handler;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  SignalAction previous{};
  if (::sigaction(signal_number, &action, &previous) != 0)
    return Result<SignalAction>::failure(errno);
  return Result<SignalAction>::success(previous);
}

Result<SignalAction> current_signal_action(int signal_number) {
  SignalAction current{};
  int saved_errno = errno;
  if (::sigaction(signal_number, nullptr, &current) != 0) {
    int error = errno;
    errno = saved_errno;
    return Result<SignalAction>::failure(error);
  }
  return Result<SignalAction>::success(current);
}

Status restore_signal_action(int signal_number, const SignalAction& action) {
  int saved_errno = errno;
  if (::sigaction(signal_number, &action, nullptr) != 0) {
    int error = errno;
    errno = saved_errno;
    return Status::failure(error);
  }
  return Status::success();
}

Status reset_signal_to_default(int signal_number) {
  SignalAction action{};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  return restore_signal_action(signal_number, action);
}

bool signal_action_runs(const SignalAction& action, SignalInfoHandler handler) {
  return (action.sa_flags & SA_SIGINFO) != 0 && action.sa_sigaction == handler;
}

Status block_signals(const sigset_t& signals, sigset_t* previous) {
  int saved_errno = errno;
  // pthread_sigmask returns the error instead of setting errno.
  int error = ::pthread_sigmask(SIG_BLOCK, &signals, previous);
  errno = saved_errno;
  return error == 0 ? Status::success() : Status::failure(error);
}

Status unblock_signals(const sigset_t& signals, sigset_t* previous) {
  int saved_errno = errno;
  // pthread_sigmask returns the error instead of setting errno.
  int error = ::pthread_sigmask(SIG_UNBLOCK, &signals, previous);
  errno = saved_errno;
  return error == 0 ? Status::success() : Status::failure(error);
}

Status set_blocked_signals(const sigset_t& signals) {
  int saved_errno = errno;
  int error = ::pthread_sigmask(SIG_SETMASK, &signals, nullptr);
  errno = saved_errno;
  return error == 0 ? Status::success() : Status::failure(error);
}

Status raise_signal_in_calling_thread(int signal_number) {
  int saved_errno = errno;
  // raise(3) is tgkill(getpid(), gettid(), sig): the calling thread, async-signal-safe.
  if (::raise(signal_number) != 0) {
    int error = errno;
    errno = saved_errno;
    return Status::failure(error);
  }
  return Status::success();
}

// ---- InterruptedContext ----------------------------------------------------------------------

namespace {

ucontext_t* as_ucontext(void* context) {
  return static_cast<ucontext_t*>(context);
}

// Linux's SS_AUTODISARM (<linux/signal.h>, not exported by glibc's <signal.h>).
constexpr int kStackAutoDisarm = static_cast<int>(1u << 31);

bool address_in(uintptr_t address, const stack_t& stack) {
  uintptr_t base = reinterpret_cast<uintptr_t>(stack.ss_sp);
  return address >= base && address - base < stack.ss_size;
}

}  // namespace

uintptr_t InterruptedContext::instruction_pointer() const {
  return static_cast<uintptr_t>(as_ucontext(context_)->uc_mcontext.gregs[REG_RIP]);
}

void InterruptedContext::set_instruction_pointer(uintptr_t value) {
  as_ucontext(context_)->uc_mcontext.gregs[REG_RIP] = static_cast<greg_t>(value);
}

uint64_t InterruptedContext::accumulator() const {
  return static_cast<uint64_t>(as_ucontext(context_)->uc_mcontext.gregs[REG_RAX]);
}

void InterruptedContext::system_call_arguments(uint64_t arguments[6]) const {
  const greg_t* registers = as_ucontext(context_)->uc_mcontext.gregs;
  const int order[6] = {REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9};
  for (int i = 0; i < 6; ++i) arguments[i] = static_cast<uint64_t>(registers[order[i]]);
}

uintptr_t InterruptedContext::stack_pointer() const {
  return static_cast<uintptr_t>(as_ucontext(context_)->uc_mcontext.gregs[REG_RSP]);
}

void InterruptedContext::set_stack_pointer(uintptr_t value) {
  as_ucontext(context_)->uc_mcontext.gregs[REG_RSP] = static_cast<greg_t>(value);
}

bool InterruptedContext::frame_is_on_interrupted_stack() const {
  // uc_stack holds the thread's alternate stack as it was when the signal arrived (the kernel's
  // save_altstack), so this is exact even with SS_AUTODISARM: the frame went to the alternate
  // stack iff it lies there and the interrupted code did not.
  const ucontext_t* context = as_ucontext(context_);
  if ((context->uc_stack.ss_flags & SS_DISABLE) != 0) return true;
  bool frame_on_alternate = address_in(reinterpret_cast<uintptr_t>(context), context->uc_stack);
  bool interrupted_on_alternate = address_in(stack_pointer(), context->uc_stack);
  return !frame_on_alternate || interrupted_on_alternate;
}

uint64_t* InterruptedContext::sigreturn_ignored_words() const {
  return reinterpret_cast<uint64_t*>(as_ucontext(context_)->uc_mcontext.__reserved1);
}

// ---- AlternateSignalStack --------------------------------------------------------------------

AlternateSignalStack::~AlternateSignalStack() {
  // Nothing useful to do with an error here: the object is going away either way.
  (void)release();
}

Status AlternateSignalStack::install() {
  if (mapping_ != nullptr) return Status::failure(EBUSY);
  size_t page = os_page_size();
  size_t bytes = page + kStackBytes;
  Result<void*> mapped = map_aligned(bytes, page);
  if (!mapped.ok()) return mapped.status();
  void* mapping = mapped.value();
  Status guarded = protect(mapping, page, Access::kNone);
  if (!guarded.ok()) {
    (void)unmap(mapping, bytes);
    return guarded;
  }
  stack_t stack{};
  stack.ss_sp = static_cast<char*>(mapping) + page;
  stack.ss_size = kStackBytes;
  stack.ss_flags = 0;
  stack_t previous{};
  if (::sigaltstack(&stack, &previous) != 0) {
    int error = errno;
    (void)unmap(mapping, bytes);
    return Status::failure(error);
  }
  mapping_ = mapping;
  mapping_bytes_ = bytes;
  previous_ = previous;
  return Status::success();
}

Status AlternateSignalStack::release() {
  if (mapping_ == nullptr) return Status::success();
  stack_t previous = previous_;
  // sigaltstack reports SS_ONSTACK in ss_flags only while running on that stack; what may be
  // passed back is SS_DISABLE (and SS_AUTODISARM).
  previous.ss_flags &= SS_DISABLE | kStackAutoDisarm;
  if ((previous.ss_flags & SS_DISABLE) != 0) {
    previous.ss_sp = nullptr;
    previous.ss_size = 0;
  }
  if (::sigaltstack(&previous, nullptr) != 0) return Status::failure(errno);
  Status unmapped = unmap(mapping_, mapping_bytes_);
  mapping_ = nullptr;
  mapping_bytes_ = 0;
  return unmapped;
}

void* AlternateSignalStack::stack_base() const {
  return mapping_ == nullptr ? nullptr : static_cast<char*>(mapping_) + os_page_size();
}

}  // namespace usgc::kernel
