// tests/kernel_iface/signals_test.cpp — the signal wrappers (kernel_iface/signals.hpp).
//
// Proves: install_signal_handler sets SA_SIGINFO|SA_ONSTACK|SA_RESTART and hands back the action
// it replaced, which restore_signal_action puts back; reset_signal_to_default; block_signals and
// set_blocked_signals; AlternateSignalStack installs a 64 KiB stack with an unreadable guard page
// below it, handlers with SA_ONSTACK run on it, and release puts back exactly what was there
// before (nothing, or an outer AlternateSignalStack); InterruptedContext reads the interrupted
// registers and knows whether the signal frame lies on the interrupted stack.
// Every test runs on a thread of its own (alternate stacks are per thread) and restores the
// dispositions it changed (SIGUSR1/SIGUSR2, which nothing else in the binary uses).
#include "kernel_iface/signals.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <thread>

#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

// Readable without faulting: write(2) reports EFAULT for an unreadable source.
bool readable_without_fault(const void* address) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const ssize_t written = write(fds[1], address, 1);
  close(fds[0]);
  close(fds[1]);
  return written == 1;
}

stack_t current_alternate_stack() {
  stack_t current{};
  EXPECT_EQ(sigaltstack(nullptr, &current), 0);
  return current;
}

// Runs fn on a new thread (alternate stacks and masks are per thread) and waits for it.
template <class Fn>
void on_new_thread(Fn fn) {
  std::thread thread(fn);
  thread.join();
}

std::atomic<int> g_handler_calls{0};
std::atomic<uintptr_t> g_handler_local_address{0};
std::atomic<bool> g_frame_on_interrupted_stack{false};
std::atomic<uintptr_t> g_interrupted_stack_pointer{0};

void recording_handler(int, siginfo_t*, void* context) {
  int local = 0;
  g_handler_local_address.store(reinterpret_cast<uintptr_t>(&local), std::memory_order_relaxed);
  InterruptedContext interrupted(context);
  g_frame_on_interrupted_stack.store(interrupted.frame_is_on_interrupted_stack(),
                                     std::memory_order_relaxed);
  g_interrupted_stack_pointer.store(interrupted.stack_pointer(), std::memory_order_relaxed);
  // Words sigreturn ignores: writing them must change nothing of the interrupted context.
  uint64_t* ignored = interrupted.sigreturn_ignored_words();
  for (size_t i = 0; i < InterruptedContext::kSigreturnIgnoredWords; ++i)
    ignored[i] = 0xdeadbeefdeadbeef;
  g_handler_calls.fetch_add(1, std::memory_order_relaxed);
}

void other_handler(int, siginfo_t*, void*) {}

TEST(SignalHandler, InstallReturnsThePreviousActionAndRestorePutsItBack) {
  Result<SignalAction> original = current_signal_action(SIGUSR1);
  ASSERT_TRUE(original.ok());

  Result<SignalAction> first = install_signal_handler(SIGUSR1, recording_handler);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first.value().sa_handler, original.value().sa_handler);
  Result<SignalAction> now = current_signal_action(SIGUSR1);
  ASSERT_TRUE(now.ok());
  EXPECT_TRUE(signal_action_runs(now.value(), recording_handler));
  EXPECT_FALSE(signal_action_runs(now.value(), other_handler));
  EXPECT_EQ(now.value().sa_flags & (SA_SIGINFO | SA_ONSTACK | SA_RESTART),
            SA_SIGINFO | SA_ONSTACK | SA_RESTART);

  Result<SignalAction> second = install_signal_handler(SIGUSR1, other_handler);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(signal_action_runs(second.value(), recording_handler));
  ASSERT_TRUE(restore_signal_action(SIGUSR1, second.value()).ok());
  EXPECT_TRUE(signal_action_runs(current_signal_action(SIGUSR1).value(), recording_handler));

  const int calls = g_handler_calls.load();
  on_new_thread([] { raise(SIGUSR1); });
  EXPECT_EQ(g_handler_calls.load(), calls + 1);

  ASSERT_TRUE(restore_signal_action(SIGUSR1, original.value()).ok());
  EXPECT_EQ(current_signal_action(SIGUSR1).value().sa_handler, original.value().sa_handler);
}

TEST(SignalHandler, ResetToDefaultAndErrors) {
  Result<SignalAction> original = install_signal_handler(SIGUSR2, recording_handler);
  ASSERT_TRUE(original.ok());
  ASSERT_TRUE(reset_signal_to_default(SIGUSR2).ok());
  EXPECT_EQ(current_signal_action(SIGUSR2).value().sa_handler, SIG_DFL);
  ASSERT_TRUE(restore_signal_action(SIGUSR2, original.value()).ok());

  Result<SignalAction> bad = install_signal_handler(SIGKILL, recording_handler);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), EINVAL);
  EXPECT_EQ(current_signal_action(1000).error(), EINVAL);
  EXPECT_EQ(reset_signal_to_default(SIGSTOP).error(), EINVAL);
}

TEST(SignalHandler, BlockSignalsAddsToTheMaskAndSetRestoresIt) {
  on_new_thread([] {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigset_t previous;
    ASSERT_TRUE(block_signals(usr1, &previous).ok());
    EXPECT_EQ(sigismember(&previous, SIGUSR1), 0);
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    EXPECT_EQ(sigismember(&now, SIGUSR1), 1);
    ASSERT_TRUE(set_blocked_signals(previous).ok());
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    EXPECT_EQ(sigismember(&now, SIGUSR1), 0);
  });
}

bool same_stack(const stack_t& a, const stack_t& b) {
  if ((a.ss_flags & SS_DISABLE) != 0 || (b.ss_flags & SS_DISABLE) != 0)
    return a.ss_flags == b.ss_flags;
  return a.ss_sp == b.ss_sp && a.ss_size == b.ss_size && a.ss_flags == b.ss_flags;
}

// New threads normally start without an alternate stack (sanitizer runtimes give them one).
TEST(AlternateSignalStack, InstallMapsAGuardedStackAndReleaseRestoresTheThreadsOwn) {
  on_new_thread([] {
    const stack_t original = current_alternate_stack();
    AlternateSignalStack stack;
    EXPECT_FALSE(stack.installed());
    ASSERT_TRUE(stack.install().ok());
    EXPECT_TRUE(stack.installed());
    const stack_t installed = current_alternate_stack();
    EXPECT_EQ(installed.ss_sp, stack.stack_base());
    EXPECT_EQ(installed.ss_size, AlternateSignalStack::kStackBytes);
    EXPECT_EQ(installed.ss_flags, 0);
    EXPECT_EQ(static_cast<char*>(stack.guard_page()) + os_page_size(), stack.stack_base());
    EXPECT_FALSE(readable_without_fault(stack.guard_page()));
    EXPECT_TRUE(readable_without_fault(stack.stack_base()));
    EXPECT_TRUE(readable_without_fault(static_cast<char*>(stack.stack_base()) +
                                       AlternateSignalStack::kStackBytes - 1));

    const Status again = stack.install();
    EXPECT_FALSE(again.ok());
    EXPECT_EQ(again.error(), EBUSY);

    void* base = stack.stack_base();
    ASSERT_TRUE(stack.release().ok());
    EXPECT_FALSE(stack.installed());
    EXPECT_TRUE(same_stack(current_alternate_stack(), original));
    EXPECT_FALSE(readable_without_fault(base)) << "released stacks are unmapped";
    EXPECT_TRUE(stack.release().ok()) << "releasing twice is a no-op";
  });
}

TEST(AlternateSignalStack, NestedStacksRestoreInReverse) {
  on_new_thread([] {
    const stack_t original = current_alternate_stack();
    AlternateSignalStack outer;
    ASSERT_TRUE(outer.install().ok());
    {
      AlternateSignalStack inner;
      ASSERT_TRUE(inner.install().ok());
      EXPECT_EQ(current_alternate_stack().ss_sp, inner.stack_base());
    }  // the destructor releases
    EXPECT_EQ(current_alternate_stack().ss_sp, outer.stack_base());
    EXPECT_EQ(current_alternate_stack().ss_size, AlternateSignalStack::kStackBytes);
    ASSERT_TRUE(outer.release().ok());
    EXPECT_TRUE(same_stack(current_alternate_stack(), original));
  });
}

TEST(AlternateSignalStack, HandlersRunOnItAndSeeTheFrameOffTheInterruptedStack) {
  Result<SignalAction> original = install_signal_handler(SIGUSR1, recording_handler);
  ASSERT_TRUE(original.ok());
  on_new_thread([] {
    int here = 0;
    const uintptr_t thread_stack = reinterpret_cast<uintptr_t>(&here);

    // Without an alternate stack: the frame is on the interrupted (this) stack, below it.
    stack_t disabled{};
    disabled.ss_flags = SS_DISABLE;
    stack_t original{};
    ASSERT_EQ(sigaltstack(&disabled, &original), 0);
    raise(SIGUSR1);
    EXPECT_TRUE(g_frame_on_interrupted_stack.load());
    EXPECT_LT(g_handler_local_address.load(), g_interrupted_stack_pointer.load());
    EXPECT_LT(thread_stack - g_interrupted_stack_pointer.load(), 64 * 1024u)
        << "the interrupted rsp is this stack's";

    AlternateSignalStack stack;
    ASSERT_TRUE(stack.install().ok());
    raise(SIGUSR1);
    const uintptr_t base = reinterpret_cast<uintptr_t>(stack.stack_base());
    const uintptr_t local = g_handler_local_address.load();
    EXPECT_TRUE(local >= base && local < base + AlternateSignalStack::kStackBytes)
        << "handler ran on the alt stack";
    EXPECT_FALSE(g_frame_on_interrupted_stack.load());
    EXPECT_LT(thread_stack - g_interrupted_stack_pointer.load(), 64 * 1024u);
    ASSERT_TRUE(stack.release().ok());
    original.ss_flags &= SS_DISABLE;
    ASSERT_EQ(sigaltstack(&original, nullptr), 0);
  });
  ASSERT_TRUE(restore_signal_action(SIGUSR1, original.value()).ok());
}

// A signal taken while already on the alternate stack puts its frame there too: on the
// interrupted stack again.
std::atomic<bool> g_nested_frame_on_interrupted_stack{false};
void nesting_handler(int signal_number, siginfo_t*, void*) {
  if (signal_number == SIGUSR2) {
    raise(SIGUSR1);  // taken at once (not blocked): interrupts this handler, on the alt stack
    g_nested_frame_on_interrupted_stack.store(g_frame_on_interrupted_stack.load());
  }
}

TEST(AlternateSignalStack, FrameOfASignalTakenOnTheAlternateStackIsOnTheInterruptedStack) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP()
      << "ThreadSanitizer delivers the raised signal after the handler returns, not inside it";
#endif
  Result<SignalAction> usr1 = install_signal_handler(SIGUSR1, recording_handler);
  Result<SignalAction> usr2 = install_signal_handler(SIGUSR2, nesting_handler);
  ASSERT_TRUE(usr1.ok() && usr2.ok());
  on_new_thread([] {
    AlternateSignalStack stack;
    ASSERT_TRUE(stack.install().ok());
    raise(SIGUSR2);
    EXPECT_TRUE(g_nested_frame_on_interrupted_stack.load());
    ASSERT_TRUE(stack.release().ok());
  });
  ASSERT_TRUE(restore_signal_action(SIGUSR1, usr1.value()).ok());
  ASSERT_TRUE(restore_signal_action(SIGUSR2, usr2.value()).ok());
}

}  // namespace
}  // namespace usgc::kernel
