/* jitgen/wasm/runtime/runtime.h — what the files of the wasm runtime share: the heap's entry
 * points (gc_bridge.cpp: usgc's collector built for wasm32), the goroutine record and the
 * scheduler's (goroutines.c), the channel operations' (channels.c), the unknown world's
 * (unknown_world.c). Internal to the runtime: the
 * lowered program sees only the exports.
 *
 * Execution: single-threaded (one wasm instance, one thread); goroutines are coroutines switched
 * only where one blocks or ends, so nothing here needs a lock or an atomic. Each goroutine has
 * its own gc::Mutator (the collector's per-goroutine state); a switch points the collector and
 * the lowered code (the host's `mutator` global) at the new one's.
 */
#ifndef USGC_JITGEN_WASM_RUNTIME_H
#define USGC_JITGEN_WASM_RUNTIME_H

#include <stdint.h>

#include "jitgen/wasm/wasm_abi.h"

#define EXPORT(name) __attribute__((export_name(#name))) name

#define PAGE 65536u

#define HEADER(object) (*(uint64_t*)(uintptr_t)((object)-8u))
#define WORD(address) (*(uint64_t*)(uintptr_t)(address))

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the heap: usgc's collector built for wasm32 (gc_bridge.cpp) ---------------------------- */
/* Zeroed 64 KiB pages for goroutine records, asyncify buffers and shadow stacks (not GC heap);
 * 0 when memory cannot grow. */
uint32_t allocate_pages(uint32_t pages);
void release_pages(uint32_t address, uint32_t pages);
/* An object of site type `type` with `payload` bytes in class `ownership` (0 stack-local in the
 * running goroutine's arena, or its private substitute when the arena is full), zeroed, header
 * written; 0 when out of memory. */
uint32_t allocate_object(uint32_t type, uint32_t payload, uint32_t ownership);
/* Makes `object` and the private objects it reaches `ownership` (2 shared, 3 global); 1 when
 * `object` is a STACK_LOCAL object (an escape analysis bug the caller reports). `site` is the
 * lowered operation's publication site (publication_site.cpp): a STACK_LOCAL object deeper in
 * the graph stops the run with the collector's message at that site's position. */
int publish(uint32_t object, uint32_t ownership, uint32_t site);
/* The publication site being served (publication_site.cpp): set around the collector's
 * publication and barrier calls, 0 outside them. */
void publication_site_enter(uint32_t site);
void publication_site_leave(void);
/* Makes the collector's fatal messages inside a publication positioned (usgc_wasm_init). */
void publication_site_install_reporter(void);
uint32_t class_of_object(uint32_t object); /* the header's ownership bits */
uint32_t kind_of_object(uint32_t object);  /* USGC_WASM_KIND_* of its registered type */
/* The type of a channel of site type `type` with `capacity` buffer words (its buffer traced when
 * the site's channel carries references); 0 when the registry is full. */
uint32_t channel_type(uint32_t type, uint64_t capacity);

/* A goroutine's gc::Mutator: registered with the collector (a heap id, roots from now on), its
 * address, 0 when out of memory; at exit its private objects are freed and its blocks pass to
 * the shared heap. */
uint32_t mutator_new(uint32_t goroutine_id);
void mutator_exit(uint32_t mutator);
void mutator_switch_to(uint32_t mutator); /* the running goroutine's, for the collector */
uint64_t mutator_heap_id(uint32_t mutator);

/* Roots a shared collection takes from the runtime (besides every goroutine's frames and arena,
 * which the collector reads from the mutators): visit(slot, context) per reference slot. The
 * slots are 8-byte words or 4-byte pointers; on wasm32 a reference is the low half. */
typedef void (*root_visitor)(void** slot, void* context);

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
  uint32_t mutator; /* its gc::Mutator (frames, stack arena, private runs, heap id) */
  uint32_t shadow_base, shadow_top, shadow_sp; /* its shadow stack; sp saved by the host */
  uint32_t asyncify_data;                      /* {current, end} then the buffer */
  uint32_t region, region_pages;
} goroutine;

extern goroutine* running_goroutine;
void make_runnable(goroutine* g);                               /* appends to the run queue */
void goroutines_visit_roots(root_visitor visit, void* context); /* what goroutines hold */
uint32_t goroutines_init(void); /* the main goroutine; 0 when memory is full */

/* ---- the unknown world (unknown_world.c) -------------------------------------------------- */
void unknown_world_visit_roots(root_visitor visit, void* context);
void unknown_world_alias_type(uint32_t type, uint32_t site_type);

#ifdef __cplusplus
}
#endif

#endif /* USGC_JITGEN_WASM_RUNTIME_H */
