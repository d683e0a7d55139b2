/* usgc/runtime.h — goroutines, channels and the embedding API of usgc's M:N runtime.
 *
 * Usable from C (C99 or later) and C++. Model (Go's): goroutines are cheap user-level threads
 * multiplexed on a few worker threads, one per "P" (processor slot; one per online core, or
 * USGC_PROCS). A goroutine that blocks on a channel, a wait group or a sleep parks; its worker
 * thread runs another goroutine. A goroutine about to block in the OS (read(2), a lock of a
 * C library, ...) brackets the call with usgc_enter_native / usgc_leave_native so its P goes on
 * running other goroutines meanwhile. Unbracketed, the P is taken back by the runtime after about
 * 250 us when the call blocks in the kernel in a call it can re-issue (docs/runtime.md, "Retake");
 * the goroutine finishes the call on the thread that began it either way.
 *
 * Threads: a goroutine may go on on another worker thread only after a usgc call that parks or
 * yields it (channel operations and select, wait groups, usgc_sleep_ns, usgc_yield, a
 * usgc_safepoint_poll that yields). A goroutine preempted while it runs C code without polls is
 * preempted in place: it goes on on its own thread, so errno (whose address a C compiler keeps in
 * a register across ordinary calls) and thread-locals stay the thread's. Do not keep a
 * thread-local address, or a lock bound to its thread, across a call that parks or yields.
 *
 * Errors: functions that can fail return 0 or an errno value (never -1 and errno):
 *   EINVAL   a bad argument (NULL channel, zero-sized stack, ...)
 *   ENOMEM   no memory for a goroutine, stack or channel
 *   EPERM    the runtime is not initialized, or the call needs a goroutine and the caller is
 *            not one (attach the thread with usgc_attach_thread first)
 *   EPIPE    send on a closed channel, close of a closed channel (Go panics; usgc reports)
 *   EAGAIN   a non-blocking channel operation or select found nothing ready
 *   EALREADY usgc_init on an initialized runtime, usgc_attach_thread on an attached thread
 *   EBUSY    usgc_shutdown while goroutines are still alive
 */
#ifndef USGC_RUNTIME_H
#define USGC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define USGC_RUNTIME_API __attribute__((visibility("default")))
#else
#define USGC_RUNTIME_API
#endif

/* ---- configuration and lifetime ---- */

#define USGC_CONFIG_VERSION 1
typedef struct usgc_config {
  uint32_t version; /* USGC_CONFIG_VERSION */
  uint32_t procs;   /* Ps (worker threads running goroutines); USGC_PROCS, default: online cores */
  size_t stack_bytes; /* usable bytes of each goroutine stack, 8 KiB..1 GiB; USGC_STACK_SIZE,
                         default 64 KiB */
  size_t guard_bytes; /* guard below each stack (a guard region, or PROT_NONE before Linux 6.13),
                         at most 64 MiB, at least one page (less is rounded up); USGC_STACK_GUARD,
                         default 16 KiB */
  uint32_t preempt_after_us; /* a goroutine running this long is asked to yield at its next poll;
                                USGC_PREEMPT_US, default 10000 (Go's 10 ms); 0 = never */
  uint32_t reserved;
} usgc_config;

/* Fills *config with the defaults, taken from the USGC_* environment variables where set (read
 * with secure_getenv). A value that does not parse or is out of its documented range is refused
 * with one line on stderr naming the variable, the value and the range, and the default is used.
 * Returns 0, or EINVAL when config is NULL. */
USGC_RUNTIME_API int usgc_config_from_environment(usgc_config* config);

/* Starts the runtime: Ps, worker threads, the safepoint signal handler. config NULL = defaults
 * from the environment. Returns 0, EALREADY, EINVAL or ENOMEM. */
USGC_RUNTIME_API int usgc_init(const usgc_config* config);

/* Stops the worker threads and releases the runtime. EBUSY while goroutines other than the
 * caller are alive; EPERM when not initialized. After it returns usgc_init may be called again. */
USGC_RUNTIME_API int usgc_shutdown(void);

/* Runs fn(arg) as a new goroutine and waits (blocking the calling OS thread) until it returns.
 * The usual entry of a program: usgc_init(NULL); usgc_run_main(main_goroutine, NULL). */
USGC_RUNTIME_API int usgc_run_main(void (*fn)(void* arg), void* arg);

/* ---- goroutines ---- */

typedef uint64_t usgc_goroutine_id; /* 1, 2, 3, ... in creation order; 0 is "not a goroutine" */

/* Starts fn(arg) as a new goroutine. Callable from goroutines and from any thread while the
 * runtime is initialized. *id (if not NULL) receives the new goroutine's id.
 * Called from a goroutine it may yield the processor first (a scheduling point, like a poll):
 * when half a run queue of goroutines waits on the caller's processor and no ended goroutine's
 * stack is left to reuse, the queued goroutines run before a new stack is made (spawn
 * back-pressure). A thread attached with usgc_attach_thread never yields here. */
USGC_RUNTIME_API int usgc_go(void (*fn)(void* arg), void* arg, usgc_goroutine_id* id);

/* The calling goroutine's id, 0 when the caller is not a goroutine. */
USGC_RUNTIME_API usgc_goroutine_id usgc_goroutine_self(void);

/* Lets other runnable goroutines run (Go's runtime.Gosched). A no-op outside goroutines. */
USGC_RUNTIME_API void usgc_yield(void);

/* Parks the calling goroutine for at least ns nanoseconds (an OS sleep outside goroutines). */
USGC_RUNTIME_API int usgc_sleep_ns(uint64_t ns);

/* Live goroutines (created and not finished). */
USGC_RUNTIME_API uint64_t usgc_goroutine_count(void);

/* ---- wait groups (Go's sync.WaitGroup) ---- */

/* Zero-initialized storage is an empty wait group (USGC_WAITGROUP_INIT, or memset 0). */
typedef struct usgc_waitgroup {
  uint64_t opaque[4];
} usgc_waitgroup;
#define USGC_WAITGROUP_INIT \
  {                         \
    { 0, 0, 0, 0 }          \
  }

/* Adds delta (may be negative) to the counter; at zero every waiter wakes. EINVAL when the
 * counter would go negative (Go panics; the counter is left unchanged). */
USGC_RUNTIME_API int usgc_waitgroup_add(usgc_waitgroup* group, int64_t delta);
USGC_RUNTIME_API int usgc_waitgroup_done(usgc_waitgroup* group);
/* Blocks until the counter is zero. From a goroutine it parks; from any other thread it sleeps. */
USGC_RUNTIME_API int usgc_waitgroup_wait(usgc_waitgroup* group);

/* ---- channels ---- */

typedef struct usgc_chan usgc_chan;

/* A channel of elements of elem_bytes bytes (0 allowed: signals only) with room for capacity
 * buffered elements (0 = unbuffered: a send waits for its receiver). NULL + errno on failure. */
USGC_RUNTIME_API usgc_chan* usgc_chan_make(size_t elem_bytes, size_t capacity);
/* A channel of GC references (elements are void*, usgc/gc.h): a send publishes the object and its
 * private closure (the private-heap invariant), and the buffered values and the values of waiting
 * senders are roots of shared collections. Otherwise like usgc_chan_make(sizeof(void*), capacity).
 * A value is published when it is offered, even if the send does not happen (try_send's EAGAIN, a
 * select whose other case wins). Offer select send values and receive into root slots
 * (USGC_ROOTS): a losing select send is no longer the channel's once the select returns. */
USGC_RUNTIME_API usgc_chan* usgc_chan_make_refs(size_t capacity);
/* Frees a channel no goroutine uses any more. EBUSY (and nothing freed) while goroutines wait on
 * it. */
USGC_RUNTIME_API int usgc_chan_destroy(usgc_chan* chan);

/* Sends *elem: 0, or EPIPE when the channel is (or becomes, while waiting) closed. */
USGC_RUNTIME_API int usgc_chan_send(usgc_chan* chan, const void* elem);
/* Receives into *elem. *ok (if not NULL) is true for a sent value, false when the channel is
 * closed and drained, in which case *elem is zeroed (Go's "v, ok := <-c"). Returns 0. */
USGC_RUNTIME_API int usgc_chan_recv(usgc_chan* chan, void* elem, bool* ok);
/* Non-blocking forms: EAGAIN when the operation would block. */
USGC_RUNTIME_API int usgc_chan_try_send(usgc_chan* chan, const void* elem);
USGC_RUNTIME_API int usgc_chan_try_recv(usgc_chan* chan, void* elem, bool* ok);
/* Closes: blocked receivers get the zero value and false, blocked senders EPIPE. EPIPE when
 * already closed. */
USGC_RUNTIME_API int usgc_chan_close(usgc_chan* chan);
USGC_RUNTIME_API size_t usgc_chan_len(const usgc_chan* chan);
USGC_RUNTIME_API size_t usgc_chan_cap(const usgc_chan* chan);

enum usgc_select_direction { USGC_SELECT_SEND = 1, USGC_SELECT_RECV = 2 };
typedef struct usgc_select_case {
  usgc_chan* chan;  /* NULL: the case is never ready (Go's nil channel) */
  int direction;    /* USGC_SELECT_SEND or USGC_SELECT_RECV */
  void* elem;       /* send: the value; receive: where the value goes (may be NULL) */
  bool received_ok; /* receive: set like usgc_chan_recv's *ok */
} usgc_select_case;

/* Go's select: waits until one case can proceed, chooses uniformly at random among the ready
 * ones, performs it and stores its index in *chosen. block = false is select with a default:
 * EAGAIN when none is ready. Returns 0, or EPIPE when the chosen case is a send on a closed
 * channel (*chosen names it). */
USGC_RUNTIME_API int usgc_select(usgc_select_case* cases, size_t count, bool block, size_t* chosen);

/* ---- native code and foreign threads ---- */

/* Bracket a call that may block in the OS or run long without polling: between them the
 * goroutine holds no P (other goroutines run) and counts as stopped for stop-the-world; it must
 * not touch GC objects. usgc_leave_native waits while the world is stopped. No-ops outside
 * goroutines. Nest properly (one level). */
USGC_RUNTIME_API void usgc_enter_native(void);
USGC_RUNTIME_API void usgc_leave_native(void);

/* Makes the calling OS thread (not created by usgc) a goroutine, so it can use channels, wait
 * groups and GC objects; it then polls like any goroutine, is preempted at its polls like one, and
 * takes part in stop-the-world. While it is attached usgc keeps SIGSEGV, SIGBUS and SIGURG
 * unblocked in it (its safepoints need them), whatever mask the program gave it; its own mask
 * comes back when it detaches. EALREADY when it already is one. usgc_detach_thread undoes it
 * (EPERM if not attached); a thread that ends attached (returns, pthread_exit, cancellation) is
 * detached on its way out. */
USGC_RUNTIME_API int usgc_attach_thread(void);
USGC_RUNTIME_API int usgc_detach_thread(void);

/* ---- statistics ---- */

#define USGC_RUNTIME_STATS_VERSION 1
/* Same buckets as the stats block (usgc/stats_block.h). */
#define USGC_RUNTIME_HISTOGRAM_BUCKETS 20
typedef struct usgc_runtime_stats {
  uint32_t version; /* set to USGC_RUNTIME_STATS_VERSION before the call */
  uint32_t procs;
  uint64_t goroutines;         /* live now */
  uint64_t goroutines_created; /* since usgc_init */
  uint64_t context_switches;
  uint64_t steals;         /* goroutines taken from another P's run queue */
  uint64_t worker_threads; /* OS threads the runtime started (more than procs when goroutines are in
                              native calls) */
  uint64_t stops;          /* stop-the-world operations completed */
  uint64_t handshakes;     /* single-P stops completed */
  uint64_t preemptions;    /* goroutines asked to yield after preempt_after_us */
  uint64_t time_to_safepoint_last_ns;
  uint64_t time_to_safepoint_max_ns;
  uint64_t time_to_safepoint_total_ns;
  uint64_t time_to_safepoint_histogram[USGC_RUNTIME_HISTOGRAM_BUCKETS];
} usgc_runtime_stats;
USGC_RUNTIME_API int usgc_runtime_get_stats(usgc_runtime_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* USGC_RUNTIME_H */
