// kernel_iface/cpu.hpp — how many CPUs this machine has, which one a thread is on, and giving the
// CPU away.
//
// The layers above never call sysconf(3) or sched_yield(2) themselves (the OS stays in
// kernel_iface/): they ask here. Neither function allocates, takes a lock or touches errno in a
// way a caller sees, so both are safe on allocator slow paths and in spin loops.
#pragma once

#include <cstdint>

namespace usgc::kernel {

// CPUs online now (sysconf(_SC_NPROCESSORS_ONLN)); 1 when the kernel cannot say.
uint32_t online_cpu_count();

// CPUs configured, online or not (sysconf(_SC_NPROCESSORS_CONF)); 1 when the kernel cannot say.
uint32_t configured_cpu_count();

// Threads runnable on the whole machine right now, the caller included (the kernel's nr_running:
// the fourth field of /proc/loadavg, "R/T"), read through a descriptor kept open (one pread, about
// 2 us); 0 when the kernel cannot say. For spin-or-sleep decisions: when it exceeds the online
// CPUs, a spinning thread takes a CPU from a thread that waits for one.
uint32_t runnable_thread_count();

// The calling thread's CPU word as the kernel keeps it for restartable sequences (rseq(2): glibc
// registers an area for every thread): the CPU the thread runs on, or the one it last ran on
// while it is off every CPU (preempted and waiting on that CPU's run queue, or asleep). Any thread
// may read another thread's word (cpu_word_value, a relaxed 32-bit load) while that thread lives:
// if it equals the reader's current_cpu(), the owner is not running now. nullptr when the area is
// not registered (GLIBC_TUNABLES=glibc.pthread.rseq=0, a kernel without rseq).
const uint32_t* current_thread_cpu_word();
inline uint32_t cpu_word_value(const uint32_t* word) {
  return __atomic_load_n(word, __ATOMIC_RELAXED);
}
// The CPU the calling thread runs on now (its own rseq word; sched_getcpu(3) without one).
uint32_t current_cpu();

// sched_yield(2): lets another runnable thread have this CPU. For spin loops whose holder may
// have been preempted (more threads than CPUs).
void yield_cpu();

// One step of a spin-wait: x86's `pause` (tells the core a spin loop runs); nothing on targets
// without such an instruction (wasm32, where nothing spins: one thread).
[[gnu::always_inline]] inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace usgc::kernel
