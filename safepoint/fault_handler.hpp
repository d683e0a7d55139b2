// safepoint/fault_handler.hpp — usgc's SIGSEGV/SIGBUS handler: poll faults become safepoint
// calls through the trampoline; goroutine stack overflows get a message; everything else goes
// to whoever handled the signal before usgc (or the default action, with a core dump).
//
// Poll fault: si_addr is a poll page (poll_page.hpp) and hooks.thread_runs_goroutine() says the
// faulting thread is a usgc goroutine. The handler decodes the faulting instruction
// (poll_instruction.hpp), then rewrites the interrupted context: it leaves the trampoline the
// address of the instruction after the poll and the slot below the 128-byte red zone to return
// through, and sets the program counter to usgc_safepoint_trampoline (trampoline_x86_64.S; the
// exact hand-over, and why it avoids the stack below the red zone while the signal frame lies
// there, is in fault_handler.cpp). On return from the signal the trampoline saves every register
// (general purpose, flags, the x87/SSE/AVX/AVX-512 state with XSAVE), calls hooks.poll_slow_path()
// on the goroutine's own stack outside signal context (it may block or even switch goroutines),
// restores everything, and returns past the poll with the red zone untouched.
//
// Stack overflow: a fault that is not a poll, for which hooks.stack_overflow_goroutine(si_addr)
// names a goroutine N, prints "usgc: goroutine N: stack overflow (fault address ..., ...)" and
// then dies by the signal's default action (SIG_DFL is restored and the fault re-executes).
//
// Chaining: the handler installed before usgc's (saved at install) gets every other fault,
// called as it asked to be (SA_SIGINFO or not, SA_RESETHAND honoured). If it was SIG_DFL (or
// SIG_IGN, which the kernel would not honour for a fault either), usgc restores SIG_DFL and
// returns: the instruction faults again and the process dies by the signal, with a core.
// A program that installs its own handler later and chains to usgc's (calls the sa_sigaction
// it got back) keeps safepoints working, since the context rewrite is done on the context it
// passes.
//
// Stack room: a poll fault needs, below the goroutine's red zone, 136 bytes plus up to 63 of
// alignment plus trampoline_register_save_bytes() (2432 with AVX-512), plus what poll_slow_path
// uses; a thread without an alternate signal stack also needs room for the kernel's signal
// frame there (about 3.5 KiB with AVX-512). Goroutine stacks must keep that much above their guard.
//
// Execution context: signal handler, on the thread's alternate signal stack (SA_ONSTACK) when
// it has one (every usgc worker thread has). The hooks are called in signal context except
// poll_slow_path; they must be async-signal-safe.
#pragma once

#include <cstdint>

#include "kernel_iface/result.hpp"
#include "kernel_iface/signals.hpp"

namespace usgc::safepoint {

struct FaultHandlerHooks {
  // Signal context. True when the calling thread is a goroutine that may stop at a safepoint.
  bool (*thread_runs_goroutine)();
  // Normal context, on the goroutine's stack, every register saved by the trampoline.
  void (*poll_slow_path)();
  // Signal context. The id of the calling thread's current goroutine when address lies in that
  // goroutine's stack guard (a stack overflow); 0 otherwise.
  uint64_t (*stack_overflow_goroutine)(const void* address);
  // Signal context, after a poll fault was redirected to the trampoline (may be null): the stop
  // protocol may acknowledge a pending stop here, before sigreturn (stop_the_world.cpp).
  void (*poll_fault_in_handler)();
};

// The registers the trampoline saved, as the slow path sees them (rdi points here; the layout is
// trampoline_x86_64.S's): it may change them, and the trampoline restores them and resumes at
// resume_address.
struct TrampolineFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t rflags;
  uint64_t resume_address;
};
static_assert(sizeof(TrampolineFrame) == 17 * 8, "TrampolineFrame: the trampoline's layout");

// Signal context, for asynchronous safepoints (async_safepoint.cpp): makes the interrupted
// context resume in the trampoline, which calls slow_path(frame) instead of the poll slow path
// and then continues at resume_pc (or wherever slow_path moved frame->resume_address). False
// when the goroutine's stack has no room below its red zone (the context is left alone).
bool redirect_to_trampoline(kernel::InterruptedContext& context, uintptr_t resume_pc,
                            void (*slow_path)(TrampolineFrame* frame));

// Installs the handler for SIGSEGV and SIGBUS (once; later calls only replace the hooks).
// thread_runs_goroutine and poll_slow_path must be set (EINVAL); stack_overflow_goroutine may be
// null (no goroutine stacks to report on).
kernel::Status install_fault_handler(const FaultHandlerHooks& hooks);

// Puts back the handlers that were installed before usgc's, if usgc's are still the installed
// ones (a program's later handler is left alone). For usgc_shutdown.
void uninstall_fault_handler();

// The XSAVE area size the trampoline reserves (CPUID leaf 0xD, rounded up to 64), or 512 when it
// falls back to FXSAVE on a CPU without XSAVE. For tests and the documentation.
uint32_t trampoline_register_save_bytes();

// Tests only, before the first install_fault_handler of the process: makes the trampoline use the
// FXSAVE fallback (x87 and SSE state only) even where XSAVE exists.
void use_fxsave_trampoline_for_testing();

}  // namespace usgc::safepoint
