/* usgc/safepoint.h — safepoint polls, stop-the-world and per-P handshakes.
 *
 * Managed code (JIT output, or C/C++ written against usgc) calls usgc_safepoint_poll() in every
 * loop and long straight-line run. Normally a poll is a load that hits; when a collector asks
 * for a safepoint the polled page is PROT_NONE, the load faults, and usgc's SIGSEGV handler
 * sends the goroutine through a trampoline that saves every register, stops it until the world
 * resumes, restores every register and continues after the poll. Code that cannot take signals
 * (WebAssembly) polls a flag word instead: usgc_safepoint_poll_flag().
 *
 * The poll ABI (emitted code depends on it; offsets are checked below):
 *   usgc_current_poll (initial-exec TLS, one per thread) mirrors the P the thread runs on; the
 *   safepoint requester writes it (safepoint/stop_the_world.hpp). On a thread that runs no
 *   goroutine it points at an always-readable page and its flag stays 0.
 *     poll_page  offset 0: load one byte from it; it faults when a safepoint is requested
 *     poll_flag  offset 8: nonzero when a safepoint is requested; then call
 *                usgc_safepoint_flag_slow_path()
 *   Page poll on x86-64:  mov %fs:usgc_current_poll@tpoff, %rax
 *                         testb $0, (%rax)        <- the poll: the only load that can fault
 *   The handler steps over the faulting instruction when it resumes, so the poll instruction
 *   must be exactly `test byte ptr [base + disp], imm8` (F6 /0 ib, a base register, no index,
 *   disp 0/8/32, no prefix but REX.B): any other faulting load from a poll page is a crash.
 *
 * A poll is also a compiler barrier: memory may change at a safepoint (the collector runs).
 */
#ifndef USGC_SAFEPOINT_H
#define USGC_SAFEPOINT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define USGC_SAFEPOINT_API __attribute__((visibility("default")))
#else
#define USGC_SAFEPOINT_API
#endif

typedef struct usgc_poll_slot {
  const volatile uint8_t* poll_page; /* written by the safepoint requester; read by the poll */
  volatile uint32_t poll_flag;       /* nonzero while a safepoint is requested for this thread */
  uint32_t slot_index;               /* the P's index; UINT32_MAX while the thread holds no P */
} usgc_poll_slot;

extern USGC_SAFEPOINT_API __thread usgc_poll_slot usgc_current_poll
    __attribute__((tls_model("initial-exec")));

/* Code generated at run time that polls (a JIT's output: a poll at every function entry and loop
 * back edge), registered here, is never stopped by an asynchronous safepoint between two of its
 * instructions (an allocation between its bump and its header store, a new object held only in a
 * register): a stop or a preemption waits for its next poll instead, as for usgc's own code.
 * Register before the code first runs; unregister before it is unmapped. Returns 0, EINVAL (an
 * empty or wrapping range; a begin that is not registered, for unregister) or ENOSPC (more than
 * USGC_MAX_POLLING_CODE_RANGES ranges registered at once). */
#define USGC_MAX_POLLING_CODE_RANGES 1024
USGC_SAFEPOINT_API int usgc_safepoint_register_polling_code(const void* begin, size_t bytes);
USGC_SAFEPOINT_API int usgc_safepoint_unregister_polling_code(const void* begin);

/* The slow path of the flag poll (also safe to call at any time from a goroutine). */
USGC_SAFEPOINT_API void usgc_safepoint_flag_slow_path(void);

#if defined(__x86_64__) && defined(__GNUC__)
static inline __attribute__((always_inline)) void usgc_safepoint_poll(void) {
  /* A relaxed atomic load: the same single mov, and race-free for ThreadSanitizer (the
   * safepoint requester writes this pointer from another thread). */
  const volatile uint8_t* page = __atomic_load_n(&usgc_current_poll.poll_page, __ATOMIC_RELAXED);
  __asm__ volatile("testb $0, (%0)" : : "r"(page) : "cc", "memory");
}
#endif

static inline __attribute__((always_inline)) void usgc_safepoint_poll_flag(void) {
  if (__builtin_expect(__atomic_load_n(&usgc_current_poll.poll_flag, __ATOMIC_RELAXED) != 0, 0))
    usgc_safepoint_flag_slow_path();
  __asm__ volatile("" : : : "memory");
}

/* ---- requesting safepoints ---- */

typedef struct usgc_stop_info {
  uint64_t time_to_safepoint_ns; /* from the request to the last P's acknowledgement: the world
                                    is stopped from then on */
  uint64_t requester_wake_ns;    /* from then until the requester ran again (it sleeps after a
                                    short spin: this is the OS waking it, not the safepoint) */
  uint32_t procs;                /* Ps stopped */
  uint32_t procs_running; /* of them, Ps that were running goroutines (had to reach a poll) */
} usgc_stop_info;

/* Stops every goroutine at a safepoint (goroutines in native calls and parked ones count as
 * stopped; their re-entry waits). Returns with the world stopped: 0, or EPERM (runtime not
 * initialized), EDEADLK (the caller already holds a stop). Concurrent requests are served one
 * after the other. Callable from a goroutine (it gives up its P meanwhile) or any thread.
 * info may be NULL. */
USGC_SAFEPOINT_API int usgc_stop_the_world(usgc_stop_info* info);
/* Resumes the world the caller stopped (EPERM when it holds no stop). */
USGC_SAFEPOINT_API int usgc_start_the_world(void);

/* Stops one P at a safepoint, runs fn(proc, arg) in the caller while that P is stopped, and
 * resumes it: HotSpot's handshake. Arming it is a pointer swap, no system call. Returns 0,
 * EINVAL (no such P), EPERM, EDEADLK (the caller holds a stop). info may be NULL. */
USGC_SAFEPOINT_API int usgc_handshake(uint32_t proc, void (*fn)(uint32_t proc, void* arg),
                                      void* arg, usgc_stop_info* info);

#ifdef __cplusplus
}
#define USGC_POLL_SLOT_ABI_CHECK(condition, message) static_assert(condition, message)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define USGC_POLL_SLOT_ABI_CHECK(condition, message) _Static_assert(condition, message)
#else
#define USGC_POLL_SLOT_ABI_CHECK(condition, message)
#endif
USGC_POLL_SLOT_ABI_CHECK(offsetof(usgc_poll_slot, poll_page) == 0,
                         "poll ABI: poll_page at offset 0");
#if defined(__wasm32__) /* 4-byte pointers: the flag-word poll of the WebAssembly target */
USGC_POLL_SLOT_ABI_CHECK(offsetof(usgc_poll_slot, poll_flag) == 4,
                         "poll ABI (wasm32): poll_flag at offset 4");
USGC_POLL_SLOT_ABI_CHECK(sizeof(usgc_poll_slot) == 12, "poll ABI (wasm32): slot size");
#else
USGC_POLL_SLOT_ABI_CHECK(offsetof(usgc_poll_slot, poll_flag) == 8,
                         "poll ABI: poll_flag at offset 8");
USGC_POLL_SLOT_ABI_CHECK(sizeof(usgc_poll_slot) == 16, "poll ABI: slot size");
#endif
#undef USGC_POLL_SLOT_ABI_CHECK

#endif /* USGC_SAFEPOINT_H */
