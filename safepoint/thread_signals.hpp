// safepoint/thread_signals.hpp — the signals a thread that runs goroutines must be able to take,
// whatever mask it inherited or was given.
//
// They are SIGSEGV and SIGBUS (a poll page's fault, and the overflow message of a goroutine's
// guard page: fault_handler.hpp) and, with asynchronous safepoints on, SIGURG
// (async_safepoint.hpp). Blocked, a synchronous SIGSEGV kills the process at the first poll an
// armed stop faults (the kernel forces the default action), and a blocked SIGURG leaves every stop
// waiting for good on a thread blocked in the kernel outside usgc. Programs commonly block every
// signal before they start threads (signals then go to one thread that waits for them with
// sigwait), and threads inherit the mask: such a program crashed at its first stop of the world. Go
// unblocks the signals its runtime needs on each of its threads, and on a C thread while it runs Go
// code (minitSignalMask; dropm gives the thread its mask back): the same here.
//
// Invariants: a worker thread of the runtime unblocks them when it starts, for its life; an
// attached thread unblocks them in usgc_attach_thread and gets its own mask back when it detaches
// (usgc_detach_thread, or its exit attached: runtime/native.cpp). A program that blocks them again
// in a thread while it runs goroutine code is not covered (Go does not cover it either).
#pragma once

#include <signal.h>

#include "kernel_iface/result.hpp"

namespace usgc::safepoint {

// Unblocks the signals above in the calling thread; its previous mask in *previous unless null.
kernel::Status unblock_goroutine_signals(sigset_t* previous);

}  // namespace usgc::safepoint
