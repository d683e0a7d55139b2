// kernel_iface/thread_control.hpp — acting on another thread of this process: its kernel id, a
// signal sent to exactly that thread, what the kernel says it is doing (/proc), and a raw system
// call for re-issuing one that a signal interrupted.
//
// Used by the safepoint layer's asynchronous safepoints (safepoint/async_safepoint.hpp): a stop
// or the monitor signals the thread that holds a P, and reads /proc to tell "blocked in the
// kernel" from "running" and to name the thread in the one-second warning.
//
// Execution context: thread_id, send_signal_to_thread and raw_system_call are signal-safe (plain
// system calls). probe_thread reads procfs files into stack buffers: normal context, no
// allocation, no lock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::kernel {

// The calling thread's kernel thread id (gettid), and the process id (getpid). Signal-safe.
int thread_id();
int process_id();

// The highest address of the calling thread's stack (pthread_getattr_np: for the main thread,
// the top of its stack mapping). Normal context (it may allocate). 0 when unknown.
uintptr_t current_thread_stack_top();
// The lowest address and the size of the calling thread's stack (as above; the sanitizer builds
// describe a thread's own stack to AddressSanitizer with it). Normal context. False when unknown.
bool current_thread_stack(uintptr_t* lowest, size_t* bytes);

// tgkill(getpid(), tid, signal_number): ESRCH when no such thread of this process exists.
Status send_signal_to_thread(int tid, int signal_number);

// What /proc/self/task/<tid>/{stat,syscall,comm} say about a thread of this process.
struct ThreadProbe {
  char state = '?';                   // R running, S sleeping, D disk wait, T stopped, ...
  bool in_system_call = false;        // blocked in (or entering) a system call
  long system_call = -1;              // its number when in_system_call
  uint64_t system_call_arguments[6];  // its arguments when in_system_call
  uintptr_t instruction_pointer = 0;  // user-space PC when not running (0: unknown)
  char name[16] = {};                 // the thread's name (comm), NUL-terminated
};
// How much probe_thread reads. kFull: all three files. kBlockedCall: what a signaller needs to
// tell "blocked in a system call" (and which) from "running": stat, then syscall only when the
// state is not R (a running thread's syscall file says "running": the same answer); no name.
// One file instead of three for a running thread: each costs an open, a read and a close, a few
// microseconds apiece on a VM, taken by a requester that may share a CPU with the thread.
enum class ProbeDetail : uint8_t { kFull, kBlockedCall };
// ENOENT: no such thread (it exited); other errno values from open/read.
Result<ThreadProbe> probe_thread(int tid, ProbeDetail detail = ProbeDetail::kFull);

// The CPU time (user and system) the kernel has charged thread `tid` of this process with, read
// through the thread's CPU clock (clock_gettime on the clock id pthread_getcpuclockid would give
// it: one system call, no procfs file to open, read and close). A thread blocked in a system call
// or waiting for a CPU gains none; one that computes gains about the wall time. EINVAL when no
// such thread of this process exists (or `tid` is not a thread id).
Result<uint64_t> thread_cpu_time_ns(int tid);

// Names the calling thread (its comm, at most 15 bytes: longer names are cut) so that ps, top,
// perf and /proc tell usgc's threads apart ("usgc-m3", "usgc-monitor"). Normal context. On
// wasm32 (one thread) a no-op.
Status name_current_thread(const char* name);

// syscall(2) without libc's errno translation: returns the kernel's raw result (-errno on
// failure). For re-issuing an interrupted call exactly as the interrupted code made it.
long raw_system_call(long number, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                     uint64_t a6);

}  // namespace usgc::kernel
