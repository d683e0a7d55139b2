/* jitgen/wasm/runtime/goroutines.c — goroutines of lowered .usir programs in WebAssembly: records,
 * the run queue, the switch of the mutator record, their roots.
 *
 * Mechanism (docs/wasm.md, "Goroutines"): wasm has one thread and no stack switching, so a
 * goroutine is a coroutine made by binaryen's asyncify, applied to the lowered module. A
 * blocking channel operation (channels.c) queues the running goroutine on the channel and
 * returns USGC_WASM_CHAN_BLOCK; the lowered code then calls the host's `suspend`, which unwinds
 * the goroutine's wasm frames into its asyncify buffer and returns to the host's scheduling loop
 * (tools/usgc-wasm-host.mjs). The loop asks usgc_wasm_next_goroutine() which goroutine runs next,
 * usgc_wasm_switch_to() loads it, and the host enters it: a new one through the program's
 * `go_entry(g)`, a suspended one by an asyncify rewind. Scheduling decisions are all here; the
 * host only performs the unwind and rewind. Switches happen only where a goroutine blocks or
 * ends (cooperative, as Go before asynchronous preemption): a goroutine that loops forever
 * without a channel operation keeps the thread.
 *
 * Invariants:
 *  - Exactly one goroutine runs (running_goroutine); its mutator state (frames, arena, runs) is
 *    in the_mutator, every other live goroutine's in its record. usgc_wasm_switch_to saves and
 *    loads, so a goroutine's private objects carry its own heap id and come from its own runs.
 *  - Every live goroutine's roots are scanned by a collection (goroutines_mark_roots): its
 *    shadow-stack frames and arena objects, its inputs until it is entered, the value it holds
 *    for a channel operation, the channel it waits on.
 *  - The inputs of `go` are published (GOROUTINE_SHARED) before the goroutine can run, as a native
 *    spawn publishes its arguments and captures.
 * Memory: the main goroutine has a 1 MiB stack arena and a 1 MiB shadow stack; a spawned one a
 * region of 4 pages (record and asyncify buffer, 64 KiB arena, 128 KiB shadow stack), reused
 * after it ends. Hot path: none (spawn and switch are slow paths).
 */
#include <string.h>

#include "jitgen/wasm/runtime/runtime.h"

_Static_assert(__builtin_offsetof(goroutine, target) == USGC_WASM_GOROUTINE_TARGET, "ABI");
_Static_assert(__builtin_offsetof(goroutine, inputs) == USGC_WASM_GOROUTINE_INPUTS, "ABI");
_Static_assert(sizeof(goroutine) <= 1024, "a goroutine record fits before its asyncify buffer");

#define RECORD_BYTES 1024u
#define MAIN_ARENA_PAGES 16u
#define MAIN_SHADOW_PAGES 16u
#define REGION_PAGES 4u /* record + asyncify buffer, arena, shadow stack (2 pages) */

goroutine* running_goroutine;
static goroutine* main_goroutine;
static uint32_t run_queue_head, run_queue_tail;
static uint32_t all_goroutines;
static uint32_t free_regions; /* regions of ended goroutines, linked through their first word */
static uint32_t live_count, next_id = 1;
static uint64_t started_count, next_heap_id = 2;

static goroutine* at(uint32_t address) {
  return (goroutine*)(uintptr_t)address;
}
static uint32_t address_of(const goroutine* g) {
  return (uint32_t)(uintptr_t)g;
}

/* A zeroed record at `region`: asyncify buffer up to `buffer_end`, linked in the live list. */
static goroutine* new_record(uint32_t region, uint32_t pages, uint32_t buffer_end) {
  goroutine* g = at(region);
  memset(g, 0, sizeof(goroutine));
  g->region = region;
  g->region_pages = pages;
  g->id = next_id++;
  g->heap_id = next_heap_id++;
  g->asyncify_data = region + RECORD_BYTES;
  uint32_t* data = (uint32_t*)(uintptr_t)g->asyncify_data;
  data[0] = g->asyncify_data + 8;
  data[1] = buffer_end;
  g->all_next = all_goroutines;
  if (all_goroutines != 0) at(all_goroutines)->all_previous = region;
  all_goroutines = region;
  ++live_count;
  return g;
}

uint32_t goroutines_init(void) {
  uint32_t record = allocate_pages(1, 0);
  uint32_t arena = allocate_pages(MAIN_ARENA_PAGES, 0);
  uint32_t shadow = allocate_pages(MAIN_SHADOW_PAGES, 0);
  if (record == 0 || arena == 0 || shadow == 0) return 0;
  goroutine* g = new_record(record, 1, record + PAGE);
  g->arena_base = g->arena_top = arena;
  g->arena_limit = arena + MAIN_ARENA_PAGES * PAGE;
  g->shadow_base = shadow;
  g->shadow_top = g->shadow_sp = shadow + MAIN_SHADOW_PAGES * PAGE;
  g->state = GOROUTINE_RUNNING;
  main_goroutine = running_goroutine = g;
  the_mutator.heap_id = g->heap_id;
  the_mutator.frames = 0;
  the_mutator.arena_top = g->arena_top;
  the_mutator.arena_limit = g->arena_limit;
  running_arena_base = g->arena_base;
  return 1;
}

void make_runnable(goroutine* g) {
  g->state = GOROUTINE_RUNNABLE;
  g->next = 0;
  if (run_queue_tail != 0) {
    at(run_queue_tail)->next = address_of(g);
  } else {
    run_queue_head = address_of(g);
  }
  run_queue_tail = address_of(g);
}

/* ---- spawning ------------------------------------------------------------------------------ */
/* A new goroutine for go target `target` with `count` inputs (bit i of `references`: input i is
 * a reference); the lowered code writes the inputs at USGC_WASM_GOROUTINE_INPUTS, then calls
 * usgc_wasm_go_ready. 0 when memory is full or count is over the limit. */
uint32_t EXPORT(usgc_wasm_go)(uint32_t target, uint32_t count, uint64_t references) {
  if (count > USGC_WASM_GO_MAX_INPUTS) return 0;
  uint32_t region = free_regions;
  if (region != 0) {
    free_regions = *(uint32_t*)(uintptr_t)region;
  } else {
    region = allocate_pages(REGION_PAGES, 1);
    if (region == 0) return 0;
  }
  goroutine* g = new_record(region, REGION_PAGES, region + PAGE);
  g->target = target;
  g->input_count = count;
  g->reference_inputs = references;
  g->arena_base = g->arena_top = region + PAGE;
  g->arena_limit = region + 2 * PAGE;
  g->shadow_base = region + 2 * PAGE;
  g->shadow_top = g->shadow_sp = region + REGION_PAGES * PAGE;
  g->state = GOROUTINE_NEW;
  return region;
}

/* Publishes the reference inputs (a spawn is a publication point) and queues the goroutine.
 * USGC_WASM_CHAN_STACK_VALUE when an input reaches a STACK_LOCAL object. */
uint32_t EXPORT(usgc_wasm_go_ready)(uint32_t address) {
  goroutine* g = at(address);
  for (uint32_t i = 0; i < g->input_count; ++i) {
    uint32_t value = (uint32_t)g->inputs[i];
    if ((g->reference_inputs >> i & 1) && value != 0 && class_of_object(value) < 2 &&
        publish(value, 2))
      return USGC_WASM_CHAN_STACK_VALUE;
  }
  ++started_count;
  make_runnable(g);
  return USGC_WASM_CHAN_DONE;
}

/* ---- scheduling (called by the host's loop) ------------------------------------------------ */
/* The next runnable goroutine, taken off the run queue; 0 when none is (every live goroutine
 * is blocked: with the main goroutine not finished, a deadlock). */
uint32_t EXPORT(usgc_wasm_next_goroutine)(void) {
  uint32_t g = run_queue_head;
  if (g == 0) return 0;
  run_queue_head = at(g)->next;
  if (run_queue_head == 0) run_queue_tail = 0;
  at(g)->next = 0;
  return g;
}

/* Makes `address` the running goroutine: the mutator state of the one running before (unless it
 * ended) goes to its record, the new one's is loaded. The host then sets the heap id and
 * shadow-stack globals from the getters below. */
void EXPORT(usgc_wasm_switch_to)(uint32_t address) {
  goroutine* g = at(address);
  goroutine* old = running_goroutine;
  g->state = GOROUTINE_RUNNING;
  if (old == g) return;
  if (old != 0 && old->state != GOROUTINE_DEAD) {
    old->frames = the_mutator.frames;
    old->arena_top = the_mutator.arena_top;
    old->arena_limit = the_mutator.arena_limit;
    memcpy(old->runs, the_mutator.runs, sizeof(old->runs));
  }
  the_mutator.heap_id = g->heap_id;
  the_mutator.frames = g->frames;
  the_mutator.arena_top = g->arena_top;
  the_mutator.arena_limit = g->arena_limit;
  memcpy(the_mutator.runs, g->runs, sizeof(g->runs));
  running_arena_base = g->arena_base;
  running_goroutine = g;
}

/* The running goroutine returned: its region is reused, its private objects left for the next
 * collection (nothing else refers to them: the private-heap invariant). */
void EXPORT(usgc_wasm_goroutine_exit)(uint32_t address) {
  goroutine* g = at(address);
  g->state = GOROUTINE_DEAD;
  if (g->all_previous != 0) {
    at(g->all_previous)->all_next = g->all_next;
  } else {
    all_goroutines = g->all_next;
  }
  if (g->all_next != 0) at(g->all_next)->all_previous = g->all_previous;
  --live_count;
  if (running_goroutine == g) running_goroutine = 0;
  if (g != main_goroutine) {
    *(uint32_t*)(uintptr_t)g->region = free_regions;
    free_regions = g->region;
  }
}

uint32_t EXPORT(usgc_wasm_main_goroutine)(void) {
  return address_of(main_goroutine);
}
uint32_t EXPORT(usgc_wasm_live_goroutines)(void) {
  return live_count;
}
uint64_t EXPORT(usgc_wasm_goroutines_started)(void) {
  return started_count;
}
uint32_t EXPORT(usgc_wasm_goroutine_heap_id)(uint32_t g) {
  return (uint32_t)at(g)->heap_id;
}
uint32_t EXPORT(usgc_wasm_goroutine_shadow_sp)(uint32_t g) {
  return at(g)->shadow_sp;
}
void EXPORT(usgc_wasm_goroutine_set_shadow_sp)(uint32_t g, uint32_t sp) {
  at(g)->shadow_sp = sp;
}
uint32_t EXPORT(usgc_wasm_goroutine_shadow_limit)(uint32_t g) {
  return at(g)->shadow_base;
}
/* 1 when `g` was entered before (resume it by a rewind); marks it entered. */
uint32_t EXPORT(usgc_wasm_goroutine_enter)(uint32_t g) {
  uint32_t started = at(g)->started;
  at(g)->started = 1;
  return started;
}
/* The asyncify buffer for an unwind, its cursor reset to the start. */
uint32_t EXPORT(usgc_wasm_goroutine_unwind_buffer)(uint32_t g) {
  uint32_t data = at(g)->asyncify_data;
  *(uint32_t*)(uintptr_t)data = data + 8;
  return data;
}
uint32_t EXPORT(usgc_wasm_goroutine_rewind_buffer)(uint32_t g) {
  return at(g)->asyncify_data;
}
/* What a channel operation handed to the running goroutine (channels.c). */
uint64_t EXPORT(usgc_wasm_transfer)(void) {
  uint64_t value = running_goroutine->transfer;
  running_goroutine->transfer = 0;
  running_goroutine->transfer_is_reference = 0;
  return value;
}

/* ---- the collector's part ------------------------------------------------------------------ */
void goroutines_mark_roots(void) {
  for (uint32_t a = all_goroutines; a != 0; a = at(a)->all_next) {
    goroutine* g = at(a);
    if (g->transfer_is_reference && g->transfer != 0) mark_root((uint32_t)g->transfer);
    if (g->wait_channel != 0) mark_root(g->wait_channel);
    if (!g->started) { /* its inputs are not in its frame yet */
      for (uint32_t i = 0; i < g->input_count; ++i)
        if ((g->reference_inputs >> i & 1) && g->inputs[i] != 0) mark_root((uint32_t)g->inputs[i]);
    }
    if (g == running_goroutine) continue; /* its frames and arena are the mutator's */
    mark_frames(g->frames);
    mark_arena(g->arena_base, g->arena_top);
  }
}

void goroutines_forget_runs(void) {
  for (uint32_t a = all_goroutines; a != 0; a = at(a)->all_next)
    memset(at(a)->runs, 0, sizeof(at(a)->runs));
}
