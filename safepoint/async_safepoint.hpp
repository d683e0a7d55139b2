// safepoint/async_safepoint.hpp — asynchronous safepoints: a signal stops a thread that holds a
// P but does not poll — blocked in the kernel outside usgc, or running code that never polls —
// so stops, handshakes and time slices never wait for it (Boehm GC's signal stops, Go 1.14's
// asynchronous preemption, HotSpot's "in native").
//
// Who signals: a stop-the-world or handshake whose slot has not acknowledged after
// kFirstSignalAfterNs (then every kResignalEveryNs; on a loaded machine the first after
// kResignalEveryNs, stop_waits.cpp); the monitor for a P whose goroutine is blocked in a system
// call (retake) or still runs one look after its preemption request (it does not poll). The signal
// (kAsyncSignal, SIGURG: ignored by default, rarely used, Go's choice) goes to the thread holding
// the slot, sent under the slot's arm_lock so the holder cannot change meanwhile.
//
// What the handler does (on the signalled thread), by where the interrupted program counter is
// (code_ranges.hpp) and what is pending for the thread's slot:
//
//   interrupted at                         pending            action
//   -------------------------------------  -----------------  ----------------------------------
//   nothing pending / no slot / not in a   -                  nothing (a stale signal)
//     goroutine's code
//   usgc's code, or a system library       any                nothing: it polls soon; retried
//     usgc called inside a LibraryCallScope
//     (kernel_iface/library_call_scope.hpp)
//   a blocking system call (one of         stop, handshake,   re-issue the call without the P:
//     system_call_may_block) about to run    preemption,        the trampoline gives the P up
//     or being restarted (RIP at `syscall`,  retake             (release_processor), makes the
//     rax = its number), in system-library                      call, takes a P back
//     or program code, not called from usgc                     (reacquire_processor). The
//                                                               runtime keeps the goroutine on
//                                                               this thread meanwhile (it is
//                                                               inside a library call)
//   just after a `syscall` that returned   stop, handshake,   the call the prober saw (PC and
//     -EINTR (a call the kernel does not     preemption,        argument registers must match)
//     restart)                               retake             is re-issued
//                                                               (reissue_arguments_after_eintr),
//                                                               without the P; when it cannot
//                                                               be: in a system library, a
//                                                               stop only; when work waits for
//                                                               a P the thread hands its P off
//                                                               (release_processor, which
//                                                               acknowledges the stop) and takes
//                                                               one back before the caller sees
//                                                               EINTR, else it stops there
//                                                               keeping its P; in program code, an
//                                                               asynchronous safepoint and the
//                                                               caller sees EINTR
//   running in a system library (also at   any                nothing: it may hold the
//     a `syscall` that does not block)                          library's locks; retried
//   running in the program's code          stop, handshake,   an asynchronous safepoint at the
//                                            preemption         PC, a preemption served in place
//                                                               (USGC_ASYNC_PREEMPT=0: nothing)
//
// "Not called from usgc": usgc blocks through libc's syscall(3) wrapper, a leaf whose return
// address is at [rsp]; a call from usgc's code there is left alone.
// Inside a system library a goroutine is never preempted (only stopped): it must finish the
// library call on the thread that began it.
//
// Preempted in place: an asynchronous safepoint never moves the goroutine to another thread. The
// interrupted code was compiled for a thread that does not change under it: glibc declares
// __errno_location const, so a compiler keeps errno's address in a register across a libc call
// (`errno = 0; poll(...); if (errno ...)`), and the same holds for any thread-local address.
// So a preemption there gives the P up on this thread and takes one back, as around a re-issued
// call (the runtime's preempt_in_place hook: blocked_call release and reacquire; the thread waits
// in the pinned line while other goroutines run), instead of switching to the scheduler (which
// resumes the goroutine on whichever thread runs its P next). The errno restored at the end is
// then this thread's. (Before, the slow path's own restore, its address computed before the
// switch, wrote the preempted goroutine's errno into the old thread's, under whichever goroutine
// ran there next.) Goroutines move between threads only at usgc calls that switch.
// An asynchronous safepoint runs the usual slow path (reach_safepoint: acknowledge, wait for the
// resume, or yield for a preemption) from the trampoline, with every register, the flags, the
// vector state and errno preserved; the signal mask is the interrupted code's (sigreturn).
//
// System calls: the handler is installed with SA_RESTART, so a call the kernel restarts under
// SA_RESTART (read/write on pipes and sockets without timeouts, futex waits under
// pthread_cond_wait / pthread_join / sem_wait / mutexes, wait4, open of a FIFO, flock) is
// re-issued exactly as the kernel would have restarted it: the program sees no difference. A call
// the kernel never restarts after a handler (poll, ppoll, select, epoll_wait, nanosleep,
// clock_nanosleep, pause, sigsuspend, socket calls with SO_RCVTIMEO) is re-issued after the
// EINTR when reissue_arguments_after_eintr can keep its meaning (the signaller probed the call
// first); otherwise it returns -1/EINTR, as under any SA_RESTART handler (Go 1.14+, Boehm GC),
// and the monitor never signals a thread blocked in such a call, only a stop does. Caveat: a
// program signal that interrupts the same call at the same moment as usgc's has its EINTR
// absorbed by the re-issue (its handler still runs), as any SA_RESTART handler's restart would.
//
// Execution context: handle_async_signal runs in a signal handler (no allocation, no lock);
// the slow paths run on the goroutine's stack from the trampoline (may block, may switch).
#pragma once

#include <signal.h>

#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::safepoint {

struct SafepointSlot;

inline constexpr int kAsyncSignal = SIGURG;
inline constexpr uint64_t kFirstSignalAfterNs = 50'000;
inline constexpr uint64_t kResignalEveryNs = 1'000'000;

struct AsyncSafepointHooks {
  // Signal context: the calling thread is running a goroutine's code (not its scheduler).
  bool (*runs_goroutine_code)();
  // Normal context, from the trampoline, inside the interrupted library call: give the P up
  // around a re-issued call / take one back after it, the goroutine staying on this thread
  // throughout (it must finish the library call on the thread that began it).
  void (*release_processor)();
  void (*reacquire_processor)();
  // Normal context, from the trampoline: around the part of a slow path where the goroutine is
  // stopped, preempted or without its P (SafepointHooks::async_stop_begin). May be null.
  void (*async_stop_begin)(const void* saved_state);
  void (*async_stop_end)();
  // Normal context, from the trampoline, in program code: serve a preemption without moving the
  // goroutine to another thread (SafepointHooks::preempt_current_in_place). May be null.
  void (*preempt_in_place)();
  // Normal context, from the trampoline: runnable work waits for a P (SafepointHooks::
  // others_wait_for_processor). May be null: nobody waits.
  bool (*others_wait_for_processor)();
};

// Installs the handler (once) unless USGC_ASYNC_PREEMPT=0 or the build cannot rewrite a signal
// context (ThreadSanitizer delivers asynchronous signals later, on a copy). Normal context.
kernel::Status async_safepoints_initialize(const AsyncSafepointHooks& hooks);
void async_safepoints_shutdown();
// True when the signal is installed: stops, the monitor and tests may rely on it.
bool async_safepoints_enabled();

// Under slot->arm_lock: sends the signal to the thread holding slot (no-op without a holder or
// when disabled). Returns true when a signal went out.
bool signal_slot_holder_locked(SafepointSlot* slot);

// True when a blocked thread's system call (from probe_thread) is one the kernel restarts under
// SA_RESTART, so signalling the thread is invisible to the program.
bool system_call_restarts_transparently(long number, const uint64_t arguments[6]);

// The calls the handler may re-issue from the trampoline: those that block and depend on nothing
// but their arguments (read, write, readv, writev, pread64, pwrite64, poll, ppoll, select,
// pselect6, nanosleep, clock_nanosleep, futex, wait4, waitid, accept, accept4, connect,
// sendto, recvfrom, sendmsg, recvmsg, ioctl, fcntl, flock, open, openat, epoll_wait,
// epoll_pwait). Never clone, fork, rt_sigreturn, exit or the like. Signal-safe.
bool system_call_may_block(long number);

// For a call the kernel does not restart (it returns EINTR to the signal): the arguments that
// re-issue it with the same meaning, from the arguments it was made with after the kernel
// updated what it updates on EINTR; false when that is impossible (a relative timeout the
// kernel does not report back). Signal-safe.
//   nanosleep(req, rem)            rem != NULL: nanosleep(rem, rem) (the kernel stored the rest)
//   clock_nanosleep(c, f, req, rem) TIMER_ABSTIME: the same; else rem != NULL: (c, f, rem, rem)
//   poll, epoll_wait, epoll_pwait  only without a timeout (-1)
//   ppoll, select, pselect6        the same (Linux writes the remaining time back)
//   futex FUTEX_WAIT_BITSET        the same (its timeout is absolute)
bool reissue_arguments_after_eintr(long number, const uint64_t arguments[6], uint64_t reissued[6]);

struct AsyncSafepointStatistics {
  uint64_t signals_sent;           // by stops, handshakes and the monitor
  uint64_t safepoints_taken;       // asynchronous safepoints at an interrupted PC
  uint64_t system_calls_reissued;  // blocked calls re-issued without the P (retake)
  uint64_t declined;               // signals that found the thread in usgc or a system library
  // Stops that found a library call just returned EINTR that cannot be re-issued while work
  // waited for a P: the thread handed its P off and took one back before returning the EINTR
  // (async_safepoint.cpp after_eintr_slow_path).
  uint64_t handed_off_after_eintr;
};
AsyncSafepointStatistics async_safepoint_statistics();

}  // namespace usgc::safepoint
