/* usgc/gc.h — the garbage-collected heap: types, allocation by ownership class, roots, barriers,
 * publication, collection and statistics. Object layout and the mutator ABI: usgc/object.h.
 *
 * Every call below is made from a goroutine (usgc_run_main, usgc_go, or a thread attached with
 * usgc_attach_thread), except usgc_register_type, usgc_gc_get_stats and the global handles,
 * which any thread may call. A call from a thread that runs no goroutine fails with EPERM.
 *
 * Rules a mutator follows (a JIT emits them; C and C++ code writes them):
 *   - every reference the collector must see lives in a shadow-stack slot (USGC_ROOTS,
 *     usgc::Roots), a handle, a global root, a GC object, or a STACK_LOCAL object;
 *   - every store of a reference into a GC object goes through usgc_write (or a bulk form);
 *   - loops and long runs call usgc_safepoint_poll() (usgc/safepoint.h);
 *   - raw references held across an allocation are in a root (collections run inside allocation).
 * The collector is precise and never moves objects.
 *
 * Errors: allocation returns NULL with errno set (ENOMEM: heap limit or no memory; EINVAL: bad
 * type, class or length; EPERM: not a goroutine) and usgc_last_error() says why in words. A
 * STACK_LOCAL object stored into a heap object stops the process with a message naming the store
 * (a compiler bug upstream), in every build.
 *
 * Configuration (read at usgc_init): USGC_GC_PERCENT (like GOGC, default 100; "off" disables
 * automatic collection), USGC_HEAP_MAX (bytes, with an optional k/m/g suffix; like GOMEMLIMIT),
 * USGC_TRACE=gc (one line per collection on stderr), USGC_VERIFY=1 (verify the heap after each
 * collection; always on in debug builds), USGC_GC_GENERATIONAL=0 (every shared collection full).
 */
#ifndef USGC_GC_H
#define USGC_GC_H

#include <stddef.h>
#include <stdint.h>

#include "usgc/object.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define USGC_GC_API __attribute__((visibility("default")))
#define USGC_GC_INLINE static inline __attribute__((always_inline))
#else
#define USGC_GC_API
#define USGC_GC_INLINE static inline
#endif

/* ---- types ---- */
typedef enum usgc_type_kind {
  USGC_KIND_OBJECT = 0,       /* `size` bytes; references at pointer_offsets */
  USGC_KIND_SCALAR_ARRAY = 1, /* arrays of `size`-byte elements with no references */
  USGC_KIND_POINTER_ARRAY = 2 /* arrays of references (size must be sizeof(void*)) */
} usgc_type_kind;

typedef struct usgc_type_info {
  const char* name; /* copied (47 bytes kept); for messages and tracing */
  usgc_type_kind kind;
  size_t size;                   /* object payload, or element size for arrays */
  const size_t* pointer_offsets; /* byte offsets of reference fields, each 8-aligned (copied) */
  size_t pointer_count;
} usgc_type_info;

/* Returns a new type id (1..65535), or 0 with errno EINVAL (bad layout) or ENOSPC (table full). */
USGC_GC_API usgc_type_id usgc_register_type(const usgc_type_info* info);

/* Built in: arrays of references and arrays of bytes. */
#define USGC_TYPE_REF_ARRAY ((usgc_type_id)1)
#define USGC_TYPE_BYTE_ARRAY ((usgc_type_id)2)

/* ---- allocation ---- */
/* A zeroed object of `type` in `ownership`; NULL + errno + usgc_last_error() on failure. */
USGC_GC_API void* usgc_alloc(usgc_type_id type, usgc_ownership ownership);
/* A zeroed array of `length` elements of an array type (USGC_KIND_*_ARRAY). */
USGC_GC_API void* usgc_alloc_array(usgc_type_id type, size_t length, usgc_ownership ownership);
/* The reason of the calling thread's last failed call, or "" (never NULL). */
USGC_GC_API const char* usgc_last_error(void);

USGC_GC_INLINE size_t usgc_array_length(const void* array) {
  return *(const uint64_t*)array;
}
USGC_GC_INLINE void* usgc_array_data(void* array) {
  return (char*)array + 8;
}
USGC_GC_INLINE usgc_ownership usgc_ownership_of(const void* object) {
  return (usgc_ownership)(USGC_HEADER_OF(object) & USGC_HEADER_CLASS_MASK);
}
USGC_GC_INLINE usgc_type_id usgc_type_of(const void* object) {
  return (usgc_type_id)((USGC_HEADER_OF(object) >> USGC_HEADER_TYPE_SHIFT) & USGC_HEADER_TYPE_MASK);
}

/* What a JIT needs to inline the private allocation of one type (usgc_alloc_private_fast). */
typedef struct usgc_type_layout {
  uint32_t size_class;  /* index into usgc_mutator.runs; UINT32_MAX: too large to inline */
  uint32_t slot_bytes;  /* header + payload, rounded to the class */
  uint64_t header_bits; /* type and class bits; the owner is or'ed in from heap_id */
} usgc_type_layout;
/* 0, or EINVAL for an unknown or array type. */
USGC_GC_API int usgc_type_layout_of(usgc_type_id type, usgc_type_layout* layout);
/* The allocation slow path behind usgc_alloc_private_fast (takes a run, may collect). */
USGC_GC_API void* usgc_alloc_private_slow(const usgc_type_layout* layout);

/* The private allocation fast path: a bump in the running goroutine's run of the class. */
USGC_GC_INLINE void* usgc_alloc_private_fast(const usgc_type_layout* layout) {
  usgc_mutator* mutator = usgc_current_mutator;
  usgc_alloc_run* run = &mutator->runs[layout->size_class];
  char* slot = run->next;
  char* end = slot + layout->slot_bytes;
  if (__builtin_expect(end > run->limit, 0)) return usgc_alloc_private_slow(layout);
  run->next = end;
  *(uint64_t*)slot = layout->header_bits | (mutator->heap_id << USGC_HEADER_OWNER_SHIFT);
  return slot + 8;
}

/* The STACK_LOCAL fast path: a bump in the running goroutine's arena (layout->slot_bytes, zeroed).
 * The slow path makes the arena, or a private object when the arena is full. */
USGC_GC_API void* usgc_alloc_stack_slow(const usgc_type_layout* layout);
USGC_GC_INLINE void* usgc_alloc_stack_fast(const usgc_type_layout* layout) {
  usgc_mutator* mutator = usgc_current_mutator;
  char* slot = mutator->arena_top;
  if (__builtin_expect(slot == 0 || (size_t)(mutator->arena_limit - slot) < layout->slot_bytes,
                       0)) {
    return usgc_alloc_stack_slow(layout);
  }
  mutator->arena_top = slot + layout->slot_bytes;
  __builtin_memset(slot + 8, 0, layout->slot_bytes - 8);
  *(uint64_t*)slot = (layout->header_bits & ~(uint64_t)USGC_HEADER_CLASS_MASK) |
                     (mutator->heap_id << USGC_HEADER_OWNER_SHIFT);
  return slot + 8;
}

/* ---- roots ---- */
USGC_GC_INLINE void usgc_frame_push(usgc_frame* frame) {
  usgc_mutator* mutator = usgc_current_mutator;
  frame->previous = mutator->frames;
  frame->arena_mark = mutator->arena_top;
  __atomic_signal_fence(__ATOMIC_SEQ_CST); /* slots are initialized before the frame is visible */
  mutator->frames = frame;
}
/* Pops `frame` (the top one) and frees the STACK_LOCAL objects allocated since it was pushed. */
USGC_GC_INLINE void usgc_frame_pop(usgc_frame* frame) {
  usgc_mutator* mutator = usgc_current_mutator;
  mutator->frames = frame->previous;
  mutator->arena_top = frame->arena_mark;
}
/* Pops `frame` (the top one) but keeps the STACK_LOCAL objects allocated since it was pushed:
 * they now belong to the frame below and are freed when that one is popped. For a callee that
 * allocates in its caller's frame (an object it returns to a caller that keeps it there, as an
 * inlined callee would). */
USGC_GC_INLINE void usgc_frame_pop_keeping_arena(usgc_frame* frame) {
  usgc_current_mutator->frames = frame->previous;
}
USGC_GC_INLINE void usgc_frame_pop_at_scope_exit(usgc_frame* frame) {
  usgc_frame_pop(frame);
}

/* C (GCC/Clang): `USGC_ROOTS(r, 3);` declares void* r[3] (zeroed) as roots until scope exit. */
#define USGC_ROOTS(name, n)                              \
  void* name[n] = {0};                                   \
  __attribute__((cleanup(usgc_frame_pop_at_scope_exit))) \
  usgc_frame name##_usgc_frame = {0, name, (n), 0};      \
  usgc_frame_push(&name##_usgc_frame)

/* Global roots: a static or heap slot the collector reads. Stores into it go through
 * usgc_global_store, which publishes the value: a private value and its private closure become
 * GLOBAL_SHARED. usgc_global_root_add publishes what the slot holds. 0, EINVAL or ENOMEM. */
USGC_GC_API int usgc_global_root_add(void** slot);
USGC_GC_API int usgc_global_root_remove(void** slot);
USGC_GC_API void usgc_global_store(void** slot, void* value);

/* Handles: references held by native code. A local handle is a root of the calling goroutine
 * (it may hold a private object) and is valid only on it; a global handle publishes its object
 * and may be used from any thread. Handles are never 0. */
typedef uint64_t usgc_handle;
USGC_GC_API usgc_handle usgc_handle_new(void* object);
USGC_GC_API void* usgc_handle_get(usgc_handle handle);
USGC_GC_API void usgc_handle_delete(usgc_handle handle);
USGC_GC_API usgc_handle usgc_global_handle_new(void* object);
USGC_GC_API void* usgc_global_handle_get(usgc_handle handle);
USGC_GC_API void usgc_global_handle_delete(usgc_handle handle);

/* ---- barriers ---- */
/* The slow path: target not the running goroutine's, or value STACK_LOCAL (fatal into the heap).
 * It stops the process with a message naming the call when the target is NULL, is no GC object
 * (misaligned, or its header names no registered type) or the field is outside it; so do
 * usgc_write_bulk and usgc_array_write. */
USGC_GC_API void usgc_write_slow(void* object, void** field, void* value);
/* usgc_write with those checks on every store (what usgc_write is under USGC_CHECKED). */
USGC_GC_API void usgc_write_checked(void* object, void** field, void* value);

/* usgc_write's second path, off its fast path: `object` an old private object of the running
 * goroutine and `value` null or old private of it too (no reference to remember), outside its
 * old-generation cycle's mark: a plain store; anything else: usgc_write_slow. */
USGC_GC_INLINE void usgc_write_old_or_slow(void* object, void** field, void* value) {
  /* The header is read again, through a volatile read so the compiler cannot merge it with the
   * fast path's read: merged, the fast path would load the whole word and copy it, not load its
   * owner half alone (two instructions more, counted by the fast-path cost test). */
  const uint64_t header = ((const volatile uint64_t*)object)[-1];
  const uint64_t key = usgc_current_mutator->old_private_key;
  if ((header & USGC_HEADER_OLD_KEY_MASK) == key &&
      (value == 0 || (USGC_HEADER_OF(value) & USGC_HEADER_OLD_KEY_MASK) == key)) {
    *field = value;
    return;
  }
  usgc_write_slow(object, field, value);
}

/* Stores `value` into the reference field `field` of `object`. Fast path: `object` is a young
 * object of the running goroutine (private or stack-local) and `value` is null or not
 * stack-local: a plain store. Second path, taken when the first compare fails: `object` is an
 * old private object of the running goroutine and `value` null or old private of it too (no
 * reference to remember), outside its old-generation cycle's mark: a plain store as well. The
 * fast path reads the target's header before anything else, so a NULL target faults there
 * (SIGSEGV at address 0xfffffffffffffff8); define USGC_CHECKED before including usgc.h (a debug
 * build of the embedder) to have every store checked by usgc_write_checked, with a message. */
USGC_GC_INLINE void usgc_write(void* object, void** field, void* value) {
#ifdef USGC_CHECKED
  usgc_write_checked(object, field, value);
#else
  uint64_t header = USGC_HEADER_OF(object);
  if (__builtin_expect((header >> USGC_HEADER_OWNER_SHIFT) == usgc_current_mutator->heap_id, 1) &&
      (value == 0 || (USGC_HEADER_OF(value) & USGC_HEADER_CLASS_MASK) != USGC_STACK_LOCAL)) {
    *field = value;
    return;
  }
  usgc_write_old_or_slow(object, field, value);
#endif
}
/* Typed-field forms for C: USGC_WRITE(node, node->left, child) and USGC_READ(node, node->left)
 * take the field itself, so no cast to void** is written at each store. */
#define USGC_WRITE(object, field, value) usgc_write((object), (void**)&(field), (void*)(value))
#define USGC_READ(object, field) usgc_read((object), (void* const*)&(field))

/* Reads a reference field (an acquire load: a plain mov on x86-64). */
USGC_GC_INLINE void* usgc_read(const void* object, void* const* field) {
  (void)object;
  return __atomic_load_n((void**)field, __ATOMIC_ACQUIRE);
}
/* Array forms: element `index` of a USGC_KIND_POINTER_ARRAY array. usgc_array_write checks the
 * bounds (a violation stops the process with a message); the inline read does not. */
USGC_GC_API void usgc_array_write(void* array, size_t index, void* value);
USGC_GC_INLINE void* usgc_array_read(const void* array, size_t index) {
  return __atomic_load_n((void**)((const char*)array + 8) + index, __ATOMIC_ACQUIRE);
}
/* Bulk: stores values[0..count) into the consecutive reference fields first[0..count) of
 * `object`; the target is checked once and the values' publication is done in one pass. */
USGC_GC_API void usgc_write_bulk(void* object, void** first, void* const* values, size_t count);

/* ---- publication points (besides stores into shared objects) ---- */
/* Starts a goroutine running entry(object); `object` (may be NULL) is published and stays a root
 * of the new goroutine. 0, EPERM, ENOMEM or EAGAIN as usgc_go. */
USGC_GC_API int usgc_go_object(void (*entry)(void* object), void* object);
/* Makes `object` and its private closure GOROUTINE_SHARED now (what a send on a channel does). */
USGC_GC_API void usgc_publish(void* object);

/* ---- collection ---- */
typedef enum usgc_gc_kind {
  USGC_GC_PRIVATE = 0,     /* the calling goroutine's private heap */
  USGC_GC_SHARED = 1,      /* the whole shared and global heap, the world stopped */
  USGC_GC_SHARED_MINOR = 2 /* only what was allocated shared since the last collection (full when
                              USGC_GC_GENERATIONAL=0 or before the first full one) */
} usgc_gc_kind;
/* Runs a collection now: 0, EINVAL (kind) or EPERM (not a goroutine). */
USGC_GC_API int usgc_gc_collect(usgc_gc_kind kind);

#define USGC_GC_STATS_VERSION 1
#define USGC_GC_HISTOGRAM_BUCKETS 20 /* 0: < 1 us; i: [2^(i-1), 2^i) us; 19: >= 2^18 us */
typedef struct usgc_gc_stats {
  uint32_t version;
  uint32_t reserved;
  uint64_t bytes_in_use[4];      /* per usgc_ownership: slot bytes of live + unswept objects */
  uint64_t bytes_committed;      /* blocks and large objects mapped for the GC heap */
  uint64_t heap_limit_bytes;     /* USGC_HEAP_MAX, 0 = none */
  uint64_t objects_allocated[4]; /* per usgc_ownership, since start (STACK_LOCAL: those made by
                                    usgc_alloc and the slow path; the inline path counts none) */
  uint64_t private_collections;
  uint64_t shared_collections;
  uint64_t private_pause_total_ns;
  uint64_t private_pause_max_ns;
  uint64_t shared_pause_total_ns;
  uint64_t shared_pause_max_ns;
  uint64_t private_pause_histogram[USGC_GC_HISTOGRAM_BUCKETS];
  uint64_t shared_pause_histogram[USGC_GC_HISTOGRAM_BUCKETS];
  uint64_t barrier_slow_paths;
  uint64_t publications;      /* publication events */
  uint64_t objects_published; /* objects turned shared by them */
  uint64_t bytes_freed_private;
  uint64_t bytes_freed_shared;
  uint64_t heap_limit_failures; /* allocations refused at USGC_HEAP_MAX */
  uint64_t last_pause_ns;
  uint64_t shared_minor_collections; /* of shared_collections, the minor (generational) ones */
} usgc_gc_stats;
/* Set stats->version to USGC_GC_STATS_VERSION before the call. 0, or EINVAL for NULL or an
 * unknown version. */
USGC_GC_API int usgc_gc_get_stats(usgc_gc_stats* stats);

/* The GC heap per NUMA node: its blocks and large objects live on the node of the CPU that took
 * them (one node is the ordinary case: everything is node 0). */
typedef struct usgc_gc_node_stats {
  uint64_t
      bytes_committed;   /* the node's chunks and large mappings, less what went back to the OS */
  uint64_t bytes_in_use; /* blocks taken and large objects (the node's share of
                            usgc_gc_stats.bytes_committed) */
  uint64_t free_blocks;  /* 64 KiB blocks waiting in the node's pool */
} usgc_gc_node_stats;
/* Fills nodes[0..min(capacity, *node_count)) and sets *node_count to the number of nodes the GC
 * heap reports (the topology's nodes, or more if memory was placed on more before). Any thread.
 * 0, or EINVAL when node_count is NULL or nodes is NULL with capacity > 0. */
USGC_GC_API int usgc_gc_get_node_stats(usgc_gc_node_stats* nodes, uint32_t capacity,
                                       uint32_t* node_count);

#ifdef __cplusplus
}
#endif

#endif /* USGC_GC_H */
