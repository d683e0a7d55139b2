/* jitgen/wasm/runtime/usgc_wasm_runtime.c — the runtime of lowered .usir programs in WebAssembly:
 * the slow paths of the inline allocation, barrier and poll sequences, and the collector. Built
 * with clang for wasm32-wasi (tools/build-wasm-runtime.sh) into usgc-wasm-runtime.wasm, which the
 * node host instantiates first; the program's module imports its memory and functions.
 *
 * What this is, honestly: a smaller runtime written for wasm, NOT usgc's alloc/ and gc/ compiled
 * for wasm32 (those need threads, futexes, signals and mmap; their wasm back end is future work).
 * It keeps usgc's ABI so the inline sequences are the native ones: the 64-bit header word and its
 * ownership bits, the mutator record (heap id, shadow-stack frames, stack arena, one allocation
 * run per size class), usgc_frame-shaped shadow-stack frames, the flag-word poll. Goroutines are
 * coroutines on the one thread (goroutines.c), so a collection stops nobody: it is a full
 * non-moving mark-sweep from every goroutine's roots (both the private and the shared one).
 *
 * Memory: 64 KiB wasm pages from memory.grow (the "reserve" of this platform; nothing is ever
 * decommitted). A block is one page of equal slots of one size class; free slots are all zero
 * (fresh pages are, sweeping zeroes what it frees), so "free" is "header word 0" and a run is a
 * maximal range of free slots. Objects over the largest class get pages of their own.
 *
 * Invariants: every reference the program holds across a call into this file is in a
 * shadow-stack frame slot, a global slot or an arena object (the lowering stores each reference
 * result into its frame slot at once), so any slow path may collect. Hot path: none here; these are
 * the out-of-line paths the inline sequences call.
 */
#include <stdint.h>
#include <string.h>

#include "jitgen/wasm/runtime/runtime.h"

#define BLOCK_HEADER 16u
#define MAX_TYPES 65536u
#define MAX_REFERENCE_WORDS 65536u

_Static_assert(__builtin_offsetof(mutator, heap_id) == USGC_WASM_MUTATOR_HEAP_ID, "ABI");
_Static_assert(__builtin_offsetof(mutator, frames) == USGC_WASM_MUTATOR_FRAMES, "ABI");
_Static_assert(__builtin_offsetof(mutator, arena_top) == USGC_WASM_MUTATOR_ARENA_TOP, "ABI");
_Static_assert(__builtin_offsetof(mutator, arena_limit) == USGC_WASM_MUTATOR_ARENA_LIMIT, "ABI");
_Static_assert(__builtin_offsetof(mutator, poll) == USGC_WASM_MUTATOR_POLL, "ABI");
_Static_assert(__builtin_offsetof(mutator, runs) == USGC_WASM_MUTATOR_RUNS, "ABI");
_Static_assert(sizeof(run) == USGC_WASM_RUN_BYTES, "ABI");
_Static_assert(sizeof(frame) == USGC_WASM_FRAME_BYTES, "ABI");
_Static_assert(__builtin_offsetof(frame, arena_mark) == USGC_WASM_FRAME_ARENA_MARK, "ABI");

/* A block: one page; its header, then slots. */
typedef struct block {
  uint32_t next; /* the next block of the same pool and class */
  uint32_t size_class;
  uint32_t slot_size;
  uint32_t slot_count;
} block;

/* A large object: its own pages; this header, then the object's header word and payload. */
typedef struct large {
  uint32_t next, pages, bytes, unused;
} large;

/* A free range of pages (large objects freed), reused first fit. */
typedef struct free_pages {
  uint32_t next, pages;
} free_pages;

enum { POOL_PRIVATE = 0, POOL_SHARED = 1, POOL_COUNT = 2 };

typedef struct pool {
  uint32_t first[USGC_WASM_CLASS_COUNT];
  uint32_t cursor_block[USGC_WASM_CLASS_COUNT];
  uint32_t cursor_slot[USGC_WASM_CLASS_COUNT];
} pool;

typedef struct type_info {
  uint32_t kind, payload, references_begin, references_count;
} type_info;

static const uint32_t kSlotSizes[USGC_WASM_CLASS_COUNT] = USGC_WASM_CLASS_SLOT_SIZES;
mutator the_mutator;
uint32_t running_arena_base;
static pool pools[POOL_COUNT];
static run shared_runs[USGC_WASM_CLASS_COUNT];
static type_info types[MAX_TYPES];
static uint32_t reference_words[MAX_REFERENCE_WORDS];
static uint32_t reference_words_used;
static uint32_t large_objects;
static uint32_t free_page_ranges;
static uint32_t global_roots, global_root_count;
static uint32_t mark_stack, mark_stack_capacity, mark_stack_size; /* in entries */
static uint32_t stress_every, stress_count;
static uint32_t pages_in_use;
/* Bytes handed out (runs, large objects) since the last collection; a collection is requested at
 * the next poll when they reach the threshold: the live bytes of the last one, at least 2 MiB. */
static uint64_t bytes_since_collection, live_bytes, collection_threshold = 2u << 20;
static uint64_t collections, freed_objects;

/* ---- pages -------------------------------------------------------------------------------- */
static uint32_t grow(uint32_t pages) {
  size_t old = __builtin_wasm_memory_grow(0, pages);
  if (old == (size_t)-1) return 0;
  return (uint32_t)(old * PAGE);
}

static void collect(void);

/* `pages` zeroed pages: a freed range first, else memory.grow, else a collection and retry. */
uint32_t allocate_pages(uint32_t pages, int may_collect) {
  for (uint32_t* link = &free_page_ranges; *link != 0;
       link = &((free_pages*)(uintptr_t)*link)->next) {
    free_pages* range = (free_pages*)(uintptr_t)*link;
    if (range->pages < pages) continue;
    uint32_t address = *link;
    if (range->pages == pages) {
      *link = range->next;
    } else {
      free_pages* rest = (free_pages*)(uintptr_t)(address + pages * PAGE);
      rest->next = range->next;
      rest->pages = range->pages - pages;
      *link = address + pages * PAGE;
    }
    memset((void*)(uintptr_t)address, 0, sizeof(free_pages));
    pages_in_use += pages;
    return address;
  }
  uint32_t address = grow(pages);
  if (address == 0 && may_collect) {
    collect();
    return allocate_pages(pages, 0);
  }
  if (address != 0) pages_in_use += pages;
  return address;
}

void release_pages(uint32_t address, uint32_t pages) {
  memset((void*)(uintptr_t)address, 0, (size_t)pages * PAGE);
  free_pages* range = (free_pages*)(uintptr_t)address;
  range->next = free_page_ranges;
  range->pages = pages;
  free_page_ranges = address;
  pages_in_use -= pages;
}

/* Counts `bytes` handed out; when a collection is due, requests it at the next safepoint (the
 * poll's flag word): the allocation itself goes on. */
static void account(uint64_t bytes) {
  bytes_since_collection += bytes;
  if (bytes_since_collection >= collection_threshold) the_mutator.poll = 1;
}

/* ---- runs ---------------------------------------------------------------------------------- */
static uint32_t slot_at(const block* b, uint32_t index) {
  return (uint32_t)(uintptr_t)b + BLOCK_HEADER + index * b->slot_size;
}

/* The next run of free slots of class `c` in pool `p`, or 0 when every block is full. */
static int next_run(uint32_t p, uint32_t c, run* out) {
  pool* pl = &pools[p];
  while (pl->cursor_block[c] != 0) {
    block* b = (block*)(uintptr_t)pl->cursor_block[c];
    uint32_t i = pl->cursor_slot[c];
    while (i < b->slot_count && WORD(slot_at(b, i)) != 0) ++i;
    if (i < b->slot_count) {
      uint32_t end = i;
      while (end < b->slot_count && WORD(slot_at(b, end)) == 0) ++end;
      out->next = slot_at(b, i);
      out->limit = slot_at(b, end);
      pl->cursor_slot[c] = end;
      account((uint64_t)(end - i) * b->slot_size);
      return 1;
    }
    pl->cursor_block[c] = b->next;
    pl->cursor_slot[c] = 0;
  }
  uint32_t address = allocate_pages(1, 1);
  if (address == 0) return 0;
  /* A collection may have run: a free run may exist again, but a fresh block is as good. */
  block* b = (block*)(uintptr_t)address;
  b->size_class = c;
  b->slot_size = kSlotSizes[c];
  b->slot_count = (PAGE - BLOCK_HEADER) / kSlotSizes[c];
  b->next = pl->first[c];
  pl->first[c] = address;
  out->next = slot_at(b, 0);
  out->limit = slot_at(b, b->slot_count);
  account((uint64_t)b->slot_count * b->slot_size);
  return 1;
}

static int class_of_size(uint32_t bytes) {
  for (int c = 0; c < USGC_WASM_CLASS_COUNT; ++c)
    if (bytes <= kSlotSizes[c]) return c;
  return -1;
}

/* A zeroed slot of `bytes` (header included) from pool `p`; 0 when memory is exhausted. */
static uint32_t allocate_slot(uint32_t p, uint32_t bytes) {
  int c = class_of_size(bytes);
  if (c < 0) {
    uint32_t pages = (uint32_t)(((uint64_t)bytes + sizeof(large) + PAGE - 1) / PAGE);
    if (bytes > 0x7fffffffu) return 0;
    uint32_t address = allocate_pages(pages, 1);
    if (address == 0) return 0;
    large* l = (large*)(uintptr_t)address;
    l->next = large_objects;
    l->pages = pages;
    l->bytes = bytes;
    large_objects = address;
    account((uint64_t)pages * PAGE);
    return address + (uint32_t)sizeof(large);
  }
  run* r = p == POOL_PRIVATE ? &the_mutator.runs[c] : &shared_runs[c];
  if (r->next == 0 || r->next + kSlotSizes[c] > r->limit) {
    if (!next_run(p, (uint32_t)c, r)) return 0;
  }
  uint32_t slot = r->next;
  r->next += kSlotSizes[c];
  return slot;
}

uint64_t header_word(uint32_t type, uint32_t ownership, uint64_t flags) {
  uint64_t owner = ownership <= 1 ? the_mutator.heap_id : 0;
  uint64_t array = types[type].kind == USGC_WASM_KIND_STRUCT ? 0 : 0x8;
  return (uint64_t)ownership | array | flags | ((uint64_t)type << 8) | (owner << 32);
}

/* ---- the exported slow paths --------------------------------------------------------------- */
/* The runtime and its main goroutine (its stack arena and shadow stack loaded in the mutator
 * record); the mutator record's address, 0 when memory cannot grow. */
uint32_t EXPORT(usgc_wasm_init)(uint32_t gc_stress_every) {
  stress_every = gc_stress_every;
  if (goroutines_init() == 0) return 0;
  return (uint32_t)(uintptr_t)&the_mutator;
}

/* Zeroed memory for the program's own tables (global slots, counters); never freed. */
uint32_t EXPORT(usgc_wasm_reserve)(uint32_t bytes) {
  return allocate_pages((bytes + PAGE - 1) / PAGE + (bytes == 0), 0);
}

void EXPORT(usgc_wasm_set_global_roots)(uint32_t slots, uint32_t count) {
  global_roots = slots;
  global_root_count = count;
}

/* Type `id`: a struct of `payload` bytes, or an array of scalars or references. 0 on success. */
uint32_t EXPORT(usgc_wasm_register_type)(uint32_t id, uint32_t kind, uint32_t payload) {
  if (id == 0 || id >= MAX_TYPES || kind > USGC_WASM_KIND_REFERENCE_CHANNEL) return 1;
  types[id].kind = kind;
  types[id].payload = payload;
  types[id].references_begin = reference_words_used;
  types[id].references_count = 0;
  return 0;
}
/* Word `word` of the struct type registered last holds a reference. */
uint32_t EXPORT(usgc_wasm_type_reference_word)(uint32_t id, uint32_t word) {
  if (id == 0 || id >= MAX_TYPES || reference_words_used >= MAX_REFERENCE_WORDS) return 1;
  reference_words[reference_words_used++] = word;
  types[id].references_count++;
  return 0;
}

/* The inline private path's refill: the next run of class `c`; returns the slot it takes (the
 * caller writes the header) or 0 when memory is exhausted. */
uint32_t EXPORT(usgc_wasm_alloc_private_slow)(uint32_t c) {
  if (c >= USGC_WASM_CLASS_COUNT) return 0;
  run* r = &the_mutator.runs[c];
  if (!next_run(POOL_PRIVATE, c, r)) return 0;
  uint32_t slot = r->next;
  r->next += kSlotSizes[c];
  return slot;
}

/* An object of `type`, `payload` bytes, in class `ownership`, header written; 0 when out of
 * memory. Private objects too large for a size class come here too. */
uint32_t EXPORT(usgc_wasm_alloc)(uint32_t type, uint32_t payload, uint32_t ownership) {
  if (type >= MAX_TYPES || ownership < 1 || ownership > 3 || payload > 0x7ffffff0u) return 0;
  uint32_t slot = allocate_slot(ownership == 1 ? POOL_PRIVATE : POOL_SHARED, payload + 8);
  if (slot == 0) return 0;
  WORD(slot) = header_word(type, ownership, 0);
  return slot + 8;
}

/* Any class: STACK_LOCAL in the running goroutine's arena (a private substitute, header bit 6,
 * when it is full), the others as usgc_wasm_alloc. Zeroed payload; 0 when out of memory. */
uint32_t allocate_object(uint32_t type, uint32_t payload, uint32_t ownership) {
  if (ownership != 0) return usgc_wasm_alloc(type, payload, ownership);
  if (payload > 0x7ffffff0u) return 0;
  uint32_t size = (payload + 8 + 7) & ~7u;
  uint32_t top = the_mutator.arena_top;
  if (top + size > top && top + size <= the_mutator.arena_limit) {
    memset((void*)(uintptr_t)top, 0, size);
    WORD(top) = header_word(type, 0, 0);
    the_mutator.arena_top = top + size;
    return top + 8;
  }
  uint32_t slot = allocate_slot(POOL_PRIVATE, payload + 8);
  if (slot == 0) return 0;
  WORD(slot) = header_word(type, 1, 0x40);
  return slot + 8;
}

uint32_t class_of_object(uint32_t object) {
  return (uint32_t)(HEADER(object) & 3);
}
uint32_t kind_of_object(uint32_t object) {
  return types[(HEADER(object) >> 8) & 0xffff].kind;
}

/* The stack arena is full: a GOROUTINE_PRIVATE substitute (header bit 6), as usgc's
 * usgc_alloc_stack_slow makes. */
uint32_t EXPORT(usgc_wasm_alloc_stack_slow)(uint32_t type, uint32_t payload) {
  uint32_t slot = allocate_slot(POOL_PRIVATE, payload + 8);
  if (slot == 0) return 0;
  WORD(slot) = header_word(type, 1, 0x40);
  return slot + 8;
}

/* An array of `length` 8-byte elements: [length][elements]. */
uint32_t EXPORT(usgc_wasm_alloc_array)(uint32_t type, uint64_t length, uint32_t ownership) {
  if (length > (0x7ffffff0u - 16) / 8) return 0;
  if (ownership == 0) ownership = 1; /* a dynamic array is never on the stack */
  uint32_t object = usgc_wasm_alloc(type, 8 + (uint32_t)length * 8, ownership);
  if (object != 0) WORD(object) = length;
  return object;
}

/* ---- publication and the barrier ----------------------------------------------------------- */
static int push_mark(uint32_t object);

static void push_mark_nonzero(uint32_t object) {
  if (object != 0) push_mark(object);
}

/* Calls visit(r) for every reference word r of `object` (null ones included). */
static void for_each_reference(uint32_t object, void (*visit)(uint32_t)) {
  type_info* t = &types[(HEADER(object) >> 8) & 0xffff];
  if (t->kind == USGC_WASM_KIND_REFERENCE_ARRAY) {
    uint64_t n = WORD(object);
    for (uint64_t i = 0; i < n; ++i) visit((uint32_t)WORD(object + 8 + 8 * i));
  } else if (t->kind == USGC_WASM_KIND_STRUCT) {
    for (uint32_t k = 0; k < t->references_count; ++k)
      visit((uint32_t)WORD(object + 8 * reference_words[t->references_begin + k]));
  } else if (t->kind == USGC_WASM_KIND_REFERENCE_CHANNEL) {
    trace_channel(object, visit);
  }
}

/* Makes `object` and every private object it reaches `ownership` (2 shared, 3 global), in place:
 * the ownership bits flip, the owner becomes 0. Returns 1 if a STACK_LOCAL object is reached. */
int publish(uint32_t object, uint32_t ownership) {
  uint32_t base = mark_stack_size;
  int stack_reached = 0;
  if (object != 0 && !push_mark(object)) return 0;
  while (mark_stack_size > base) {
    uint32_t o = ((uint32_t*)(uintptr_t)mark_stack)[--mark_stack_size];
    uint64_t h = HEADER(o);
    uint32_t c = (uint32_t)(h & 3);
    if (c == 0 && !(h & 0x40)) {
      stack_reached = 1;
      continue;
    }
    if (c >= ownership) continue;
    HEADER(o) = (h & ~(uint64_t)3 & 0xffffffffu) | ownership | 0x10;
    for_each_reference(o, push_mark_nonzero);
  }
  return stack_reached;
}

/* The barrier's slow path: store `value` into the reference word `field` of `object`, which is
 * not a young object of this goroutine (or `value` may be STACK_LOCAL). */
uint32_t EXPORT(usgc_wasm_barrier_slow)(uint32_t object, uint32_t field, uint32_t value) {
  if (value != 0) {
    uint64_t th = HEADER(object), vh = HEADER(value);
    uint32_t tc = (uint32_t)(th & 3), vc = (uint32_t)(vh & 3);
    if (vc == 0 && !(vh & 0x40) && tc != 0 && !(th & 0x40))
      return USGC_WASM_BARRIER_STACK_INTO_HEAP;
    if (tc >= 2 && vc < tc && vc != 0 && publish(value, tc))
      return USGC_WASM_BARRIER_STACK_INTO_HEAP;
  }
  WORD(field) = value;
  return 0;
}

/* A store into a reference global: what it refers to becomes GLOBAL_SHARED. */
uint32_t EXPORT(usgc_wasm_global_store)(uint32_t slot, uint32_t value) {
  if (value != 0 && publish(value, 3)) return USGC_WASM_BARRIER_STACK_INTO_HEAP;
  WORD(slot) = value;
  return 0;
}

/* ---- the collector ------------------------------------------------------------------------- */
static int push_mark(uint32_t object) {
  if (mark_stack_size == mark_stack_capacity) {
    uint32_t capacity = mark_stack_capacity == 0 ? PAGE / 4 : mark_stack_capacity * 2;
    uint32_t pages = capacity * 4 / PAGE;
    uint32_t bigger = allocate_pages(pages, 0);
    if (bigger == 0) return 0;
    if (mark_stack != 0) {
      memcpy((void*)(uintptr_t)bigger, (void*)(uintptr_t)mark_stack, mark_stack_size * 4u);
      release_pages(mark_stack, mark_stack_capacity * 4 / PAGE);
    }
    mark_stack = bigger;
    mark_stack_capacity = capacity;
  }
  ((uint32_t*)(uintptr_t)mark_stack)[mark_stack_size++] = object;
  return 1;
}

static void mark(uint32_t object) {
  if (object == 0) return;
  uint64_t h = HEADER(object);
  if ((h & 3) == 0 || (h & 0x4)) return; /* arena objects are roots; marked already */
  HEADER(object) = h | 0x4;
  push_mark(object);
}

static void trace(uint32_t object) {
  for_each_reference(object, mark);
}

static uint32_t payload_of(uint32_t object) {
  uint64_t h = HEADER(object);
  type_info* t = &types[(h >> 8) & 0xffff];
  if (t->kind == USGC_WASM_KIND_STRUCT) return t->payload;
  if (t->kind >= USGC_WASM_KIND_SCALAR_CHANNEL) return channel_payload_bytes(object);
  return 8 + 8 * (uint32_t)WORD(object);
}

static void drain(void) {
  while (mark_stack_size > 0) trace(((uint32_t*)(uintptr_t)mark_stack)[--mark_stack_size]);
}

void mark_root(uint32_t object) {
  mark(object);
  drain();
}

void mark_frames(uint32_t frames) {
  for (uint32_t f = frames; f != 0; f = ((frame*)(uintptr_t)f)->previous) {
    const frame* fr = (const frame*)(uintptr_t)f;
    for (uint32_t s = 0; s < fr->count; ++s) mark((uint32_t)WORD(fr->slots + 8 * s));
    drain();
  }
}

/* Every object in the stack arena [base, top) is a root (arena objects carry no mark bit). */
void mark_arena(uint32_t base, uint32_t top) {
  for (uint32_t p = base; p < top;) {
    uint32_t object = p + 8;
    trace(object);
    drain();
    p = object + ((payload_of(object) + 7) & ~7u);
  }
}

/* A full collection: roots are every goroutine's shadow-stack frames and stack arena objects
 * (the running one's from the mutator record, the others' from their records, with what they
 * hold for a channel operation or a start), the reference globals and the unknown world (a
 * global root); then every block and
 * large object is swept. */
static void collect(void) {
  live_bytes = 0;
  mark_frames(the_mutator.frames);
  for (uint32_t g = 0; g < global_root_count; ++g) mark((uint32_t)WORD(global_roots + 8 * g));
  drain();
  mark_arena(running_arena_base, the_mutator.arena_top);
  goroutines_mark_roots();
  unknown_world_mark_roots();
  for (uint32_t p = 0; p < POOL_COUNT; ++p) {
    for (uint32_t c = 0; c < USGC_WASM_CLASS_COUNT; ++c) {
      for (uint32_t a = pools[p].first[c]; a != 0; a = ((block*)(uintptr_t)a)->next) {
        block* b = (block*)(uintptr_t)a;
        for (uint32_t i = 0; i < b->slot_count; ++i) {
          uint32_t slot = slot_at(b, i);
          uint64_t h = WORD(slot);
          if (h == 0) continue;
          if (h & 0x4) {
            WORD(slot) = h & ~(uint64_t)0x4;
            live_bytes += b->slot_size;
          } else {
            memset((void*)(uintptr_t)slot, 0, b->slot_size);
            ++freed_objects;
          }
        }
      }
      pools[p].cursor_block[c] = pools[p].first[c];
      pools[p].cursor_slot[c] = 0;
      if (p == POOL_PRIVATE) the_mutator.runs[c].next = the_mutator.runs[c].limit = 0;
      if (p == POOL_SHARED) shared_runs[c].next = shared_runs[c].limit = 0;
    }
  }
  goroutines_forget_runs();
  for (uint32_t* link = &large_objects; *link != 0;) {
    large* l = (large*)(uintptr_t)*link;
    uint32_t slot = *link + (uint32_t)sizeof(large);
    if (WORD(slot) & 0x4) {
      WORD(slot) &= ~(uint64_t)0x4;
      live_bytes += (uint64_t)l->pages * PAGE;
      link = &l->next;
    } else {
      uint32_t address = *link;
      *link = l->next;
      ++freed_objects;
      release_pages(address, l->pages);
    }
  }
  ++collections;
  bytes_since_collection = 0;
  collection_threshold = live_bytes > (2u << 20) ? live_bytes : (2u << 20);
  the_mutator.poll = 0;
}

/* The poll's slow path: the flag word was set (a collection is due). */
void EXPORT(usgc_wasm_poll_slow)(void) {
  if (the_mutator.poll != 0) collect();
}

/* Before each allocation under --gc-stress N: a collection every N allocations. */
void EXPORT(usgc_wasm_gc_stress)(void) {
  if (stress_every == 0 || ++stress_count < stress_every) return;
  stress_count = 0;
  collect();
}

void EXPORT(usgc_wasm_collect)(void) {
  collect();
}
uint64_t EXPORT(usgc_wasm_collections)(void) {
  return collections;
}
uint64_t EXPORT(usgc_wasm_freed_objects)(void) {
  return freed_objects;
}
uint32_t EXPORT(usgc_wasm_pages_in_use)(void) {
  return pages_in_use;
}
