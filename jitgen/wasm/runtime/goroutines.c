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
 *  - Exactly one goroutine runs (running_goroutine). Each has its own gc::Mutator (usgc's
 *    collector built for wasm32: frames, stack arena, private runs, heap id), registered while
 *    the goroutine lives; usgc_wasm_switch_to makes the new one's current and the host points
 *    the lowered code's `mutator` global at it, so a goroutine's private objects carry its own
 *    heap id and come from its own runs, and its private collections are its own.
 *  - A shared collection reads every goroutine's frames and arena through its mutator, and the
 *    rest from goroutines_visit_roots: its inputs until it is entered, the value it holds for a
 *    channel operation, the channel it waits on.
 *  - The inputs of `go` are published (GOROUTINE_SHARED) before the goroutine can run, as a native
 *    spawn publishes its arguments and captures.
 * Memory: the main goroutine has a 1 MiB shadow stack; a spawned one a region of 3 pages (record
 * and asyncify buffer, 128 KiB shadow stack), reused after it ends. Stack arenas are the
 * collector's (one block per goroutine, gc/stack_arena.cpp). Hot path: none (spawn and switch are
 * slow paths).
 */
#include <string.h>

#include "jitgen/wasm/runtime/runtime.h"

_Static_assert(__builtin_offsetof(goroutine, target) == USGC_WASM_GOROUTINE_TARGET, "ABI");
_Static_assert(__builtin_offsetof(goroutine, inputs) == USGC_WASM_GOROUTINE_INPUTS, "ABI");
_Static_assert(sizeof(goroutine) <= 1024, "a goroutine record fits before its asyncify buffer");

#define RECORD_BYTES 1024u
#define MAIN_SHADOW_PAGES 16u
#define REGION_PAGES 3u /* record + asyncify buffer, shadow stack (2 pages) */

goroutine* running_goroutine;
static goroutine* main_goroutine;
static uint32_t run_queue_head, run_queue_tail;
static uint32_t all_goroutines;
static uint32_t free_regions; /* regions of ended goroutines, linked through their first word */
static uint32_t live_count, next_id = 1;
static uint64_t started_count;

static goroutine* at(uint32_t address) {
  return (goroutine*)(uintptr_t)address;
}
static uint32_t address_of(const goroutine* g) {
  return (uint32_t)(uintptr_t)g;
}

/* A zeroed record at `region` with its registered mutator: asyncify buffer up to `buffer_end`,
 * linked in the live list. 0 when the mutator cannot be made. */
static goroutine* new_record(uint32_t region, uint32_t pages, uint32_t buffer_end) {
  goroutine* g = at(region);
  memset(g, 0, sizeof(goroutine));
  g->region = region;
  g->region_pages = pages;
  g->id = next_id++;
  g->mutator = mutator_new(g->id);
  if (g->mutator == 0) return 0;
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
  uint32_t record = allocate_pages(1);
  uint32_t shadow = allocate_pages(MAIN_SHADOW_PAGES);
  if (record == 0 || shadow == 0) return 0;
  goroutine* g = new_record(record, 1, record + PAGE);
  if (g == 0) return 0;
  g->shadow_base = shadow;
  g->shadow_top = g->shadow_sp = shadow + MAIN_SHADOW_PAGES * PAGE;
  g->state = GOROUTINE_RUNNING;
  main_goroutine = running_goroutine = g;
  mutator_switch_to(g->mutator);
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
    region = allocate_pages(REGION_PAGES);
    if (region == 0) return 0;
  }
  goroutine* g = new_record(region, REGION_PAGES, region + PAGE);
  if (g == 0) {
    *(uint32_t*)(uintptr_t)region = free_regions;
    free_regions = region;
    return 0;
  }
  g->target = target;
  g->input_count = count;
  g->reference_inputs = references;
  g->shadow_base = region + PAGE;
  g->shadow_top = g->shadow_sp = region + REGION_PAGES * PAGE;
  g->state = GOROUTINE_NEW;
  return region;
}

/* Publishes the reference inputs (a spawn is a publication point) and queues the goroutine.
 * USGC_WASM_CHAN_STACK_VALUE when an input is a STACK_LOCAL object; `site`: the `go`'s publication
 * site. */
uint32_t EXPORT(usgc_wasm_go_ready)(uint32_t address, uint32_t site) {
  goroutine* g = at(address);
  for (uint32_t i = 0; i < g->input_count; ++i) {
    uint32_t value = (uint32_t)g->inputs[i];
    if ((g->reference_inputs >> i & 1) && value != 0 && class_of_object(value) < 2 &&
        publish(value, 2, site))
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

/* Makes `address` the running goroutine: its mutator becomes the collector's current one. The
 * host then sets the mutator, heap id and shadow-stack globals from the getters below. */
void EXPORT(usgc_wasm_switch_to)(uint32_t address) {
  goroutine* g = at(address);
  g->state = GOROUTINE_RUNNING;
  if (running_goroutine == g) return;
  mutator_switch_to(g->mutator);
  running_goroutine = g;
}

/* The running goroutine returned: its mutator exits (its private objects are freed, its blocks
 * pass to the shared heap: nothing else refers to them, the private-heap invariant), its region
 * is reused. */
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
  mutator_exit(g->mutator);
  g->mutator = 0;
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
  return (uint32_t)mutator_heap_id(at(g)->mutator);
}
/* The address of its mutator record (usgc_mutator first): the lowered code's `mutator`. */
uint32_t EXPORT(usgc_wasm_goroutine_mutator)(uint32_t g) {
  return at(g)->mutator;
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
void goroutines_visit_roots(root_visitor visit, void* context) {
  for (uint32_t a = all_goroutines; a != 0; a = at(a)->all_next) {
    goroutine* g = at(a);
    if (g->transfer_is_reference && g->transfer != 0) visit((void**)&g->transfer, context);
    if (g->wait_channel != 0) visit((void**)&g->wait_channel, context);
    if (!g->started) { /* its inputs are not in its frame yet */
      for (uint32_t i = 0; i < g->input_count; ++i)
        if ((g->reference_inputs >> i & 1) && g->inputs[i] != 0)
          visit((void**)&g->inputs[i], context);
    }
  }
}
