/* jitgen/wasm/runtime/runtime.h — what the three files of the wasm runtime share: the mutator
 * record and frame layouts (wasm_abi.h's, checked here), the heap's internal entry points
 * (usgc_wasm_runtime.c), the goroutine record and the scheduler's (goroutines.c), the channel
 * operations' (channels.c), the unknown world's (unknown_world.c). Internal to the runtime: the
 * lowered program sees only the exports.
 *
 * Execution: single-threaded (one wasm instance, one thread); goroutines are coroutines switched
 * only where one blocks or ends, so nothing here needs a lock or an atomic. Whatever one
 * goroutine was running with (the mutator record) is saved into its goroutine record at a
 * switch and loaded back when it resumes.
 */
#ifndef USGC_JITGEN_WASM_RUNTIME_H
#define USGC_JITGEN_WASM_RUNTIME_H

#include <stdint.h>

#include "jitgen/wasm/wasm_abi.h"

#define EXPORT(name) __attribute__((export_name(#name))) name

#define PAGE 65536u

#define HEADER(object) (*(uint64_t*)(uintptr_t)((object)-8u))
#define WORD(address) (*(uint64_t*)(uintptr_t)(address))

typedef struct run {
  uint32_t next, limit;
} run;

typedef struct mutator {
  uint64_t heap_id;
  uint32_t frames, arena_top, arena_limit, poll;
  run runs[USGC_WASM_CLASS_COUNT];
} mutator;

typedef struct frame {
  uint32_t previous, slots, count, arena_mark;
} frame;

/* ---- the heap and the collector (usgc_wasm_runtime.c) ------------------------------------ */
/* The running goroutine's allocation state; written by the lowered code's inline sequences and
 * by this runtime, saved/loaded by goroutine switches (goroutines.c). */
extern mutator the_mutator;
/* Where the running goroutine's stack arena starts (its objects are roots). */
extern uint32_t running_arena_base;

uint32_t allocate_pages(uint32_t pages, int may_collect); /* zeroed; 0 when memory is full */
void release_pages(uint32_t address, uint32_t pages);
/* Makes `object` and the private objects it reaches `ownership` (2 shared, 3 global); 1 when a
 * STACK_LOCAL object is reached (an escape analysis bug the caller reports). */
int publish(uint32_t object, uint32_t ownership);
uint32_t class_of_object(uint32_t object); /* the header's ownership bits */
uint32_t kind_of_object(uint32_t object);  /* USGC_WASM_KIND_* of its registered type */
uint64_t header_word(uint32_t type, uint32_t ownership, uint64_t flags);
uint32_t allocate_object(uint32_t type, uint32_t payload, uint32_t ownership); /* 0: no memory */

/* Roots, for goroutines.c's part of a collection. */
void mark_root(uint32_t object);
void mark_frames(uint32_t frames);
void mark_arena(uint32_t base, uint32_t top);

/* ---- goroutines (goroutines.c) ----------------------------------------------------------- */
enum goroutine_state {
  GOROUTINE_NEW = 0,      /* spawned, not yet queued (inputs are roots until `started`) */
  GOROUTINE_RUNNABLE = 1, /* in the run queue */
  GOROUTINE_RUNNING = 2,
  GOROUTINE_BLOCKED = 3, /* in a channel's wait queue, or forever on a nil channel */
  GOROUTINE_DEAD = 4
};

typedef struct goroutine {
  uint32_t target;                          /* ABI: the go target index (usgc_wasm_go) */
  uint32_t input_count;                     /* inputs written by the lowered `go` */
  uint64_t inputs[USGC_WASM_GO_MAX_INPUTS]; /* ABI */
  uint64_t reference_inputs;                /* bit i: input i is a reference */
  uint64_t heap_id;
  /* A channel operation's hand-over: the value to send while a sender waits; the value
   * received (or the resumed send's status) once a partner completed the operation. */
  uint64_t transfer;
  uint32_t transfer_is_reference;
  uint32_t state;
  uint32_t id;
  uint32_t started;                /* entered once: resuming it is an asyncify rewind */
  uint32_t next;                   /* the run queue or a channel's wait queue */
  uint32_t all_next, all_previous; /* every goroutine not dead */
  uint32_t wait_channel;           /* blocked: the channel (0: a nil channel, forever) */
  /* Saved while it does not run (the running one's are in the_mutator): */
  uint32_t frames, arena_top, arena_limit;
  run runs[USGC_WASM_CLASS_COUNT];
  uint32_t arena_base;
  uint32_t shadow_base, shadow_top, shadow_sp; /* its shadow stack; sp saved by the host */
  uint32_t asyncify_data;                      /* {current, end} then the buffer */
  uint32_t region, region_pages;
} goroutine;

extern goroutine* running_goroutine;
void make_runnable(goroutine* g);  /* appends to the run queue */
void goroutines_mark_roots(void);  /* every goroutine's roots but the running one's */
void goroutines_forget_runs(void); /* a sweep restarted the block cursors */
uint32_t goroutines_init(void);    /* the main goroutine; 0 when memory is full */

/* ---- the unknown world (unknown_world.c) -------------------------------------------------- */
void unknown_world_mark_roots(void);

/* ---- channels (channels.c) --------------------------------------------------------------- */
void trace_channel(uint32_t channel, void (*visit)(uint32_t));
uint32_t channel_payload_bytes(uint32_t channel);

#endif /* USGC_JITGEN_WASM_RUNTIME_H */
