/* usgc/object.h — the GC object ABI: the header word, the ownership classes, the mutator record
 * (shadow-stack top, stack arena, allocation runs). JIT-emitted code and the inline fast paths of
 * usgc/gc.h depend on every constant and offset here; each one is checked by a static assertion
 * at the end of this file (and again in C++ by gc/object_header.hpp).
 *
 * Object layout: a GC object is a pointer p to its payload; the header is the 8-byte word at
 * p - 8, so it is read with one load from the object pointer. Objects are 8-byte aligned.
 *   plain object:  [header][payload: the registered type's size]
 *   array:         [header][uint64 length][elements]   (p points at the length word;
 *                  usgc_array_data(p) = p + 8; the header's type is the element type)
 *
 * Header word (little-endian uint64):
 *   bits  0..1   ownership class (usgc_ownership)
 *   bit   2      private mark (written only by the owning goroutine's private collector)
 *   bit   3      array
 *   bit   4      published: was private, made shared by a publication (statistics, tracing)
 *   bit   5      pinned (reserved: usgc never moves objects today)
 *   bit   6      stack substitute: a GOROUTINE_PRIVATE object made in place of a STACK_LOCAL one
 *                because the goroutine's arena was full. It may refer to the goroutine's
 *                STACK_LOCAL objects (the barrier lets such stores through), because the escape
 *                analysis decided it never outlives its frame either.
 *   bit   7      reserved, zero
 *   bits  8..23  type id (usgc_type_id, 1..65535)
 *   bits 24..31  collector-private bits of a PRIVATE object (its owner's remembered-set flags);
 *                zero in every header code writes
 *   bits 32..63  owner: the heap id of the owning goroutine for STACK_LOCAL and GOROUTINE_PRIVATE
 * objects (heap ids are even; an object that survived a private collection carries heap_id | 1,
 * its goroutine's old-generation id, so stores into it take the barrier's slow path); 0 for
 * GOROUTINE_SHARED and GLOBAL_SHARED objects. A header of 0 is a free slot (no object). "Is this
 * mine and young?" is one compare of the high half with the running goroutine's heap id
 * (usgc_mutator.heap_id), and heap ids are never 0, so a shared or global object is never "mine".
 *
 * The private-heap invariant (docs/gc.md): nothing outside goroutine G refers to an object whose
 * owner is G. The write barrier, usgc_go_object, reference channels and global roots keep it.
 */
#ifndef USGC_OBJECT_H
#define USGC_OBJECT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum usgc_ownership {
  USGC_STACK_LOCAL = 0,       /* in the goroutine's stack arena; freed when its frame is popped */
  USGC_GOROUTINE_PRIVATE = 1, /* only the allocating goroutine may refer to it */
  USGC_GOROUTINE_SHARED = 2,  /* any goroutine; freed by shared collections */
  USGC_GLOBAL_SHARED = 3      /* reachable from globals; global space */
} usgc_ownership;

typedef uint32_t usgc_type_id; /* 0 is "no type" */

#define USGC_HEADER_CLASS_MASK UINT64_C(0x3)
#define USGC_HEADER_PRIVATE_MARK UINT64_C(0x4)
#define USGC_HEADER_ARRAY UINT64_C(0x8)
#define USGC_HEADER_PUBLISHED UINT64_C(0x10)
#define USGC_HEADER_PINNED UINT64_C(0x20)
#define USGC_HEADER_STACK_SUBSTITUTE UINT64_C(0x40)
#define USGC_HEADER_TYPE_SHIFT 8
#define USGC_HEADER_TYPE_MASK UINT64_C(0xFFFF)
#define USGC_HEADER_VISIT_SHIFT 24
#define USGC_HEADER_VISIT_MASK UINT64_C(0xFF)
#define USGC_HEADER_OWNER_SHIFT 32
/* The bits the barrier compares with usgc_mutator.old_private_key: the owner and the class. */
#define USGC_HEADER_OLD_KEY_MASK UINT64_C(0xFFFFFFFF00000003)
#define USGC_MAX_TYPES 65535u

/* The header word of an object. */
#define USGC_HEADER_OF(object) (((const uint64_t*)(object))[-1])

/* A shadow-stack frame: `count` reference slots of the calling function, linked to the frame
 * below. Push and pop through usgc/gc.h (USGC_ROOTS, usgc::Roots). Popping a frame also frees the
 * STACK_LOCAL objects allocated since it was pushed (arena_mark).
 * A compact frame (compiled code's, jitgen/x86_64/register_convention.hpp) is only the first two
 * words: `previous`, then (count << 1) | USGC_FRAME_COMPACT where `slots` would be (a slots
 * pointer is word-aligned: its low bit is 0). Its `count` slots follow those two words (they
 * start where `count` would be), and it has no arena_mark: the code that pushed it restores
 * arena_top itself. The collector tells the two forms apart by that bit. */
typedef struct usgc_frame {
  struct usgc_frame* previous;
  void** slots;
  size_t count;
  char* arena_mark;
} usgc_frame;
#define USGC_FRAME_COMPACT 1u

/* One allocation run: a range of free slots of one size class in a block owned by the goroutine
 * (its TLAB for that class). Allocation bumps `next` by the class's slot size while it stays at
 * or below `limit`; the slow path takes the next run. Slots in a run are zero. */
typedef struct usgc_alloc_run {
  char* next;
  char* limit;
} usgc_alloc_run;

#define USGC_SIZE_CLASS_COUNT 35

/* The mutator record of a goroutine: what its inline fast paths touch. The runtime points
 * usgc_current_mutator at the running goroutine's record on every switch (one store). */
typedef struct usgc_mutator {
  uint64_t heap_id;   /* offset 0: owner field of this goroutine's objects; never 0 */
  usgc_frame* frames; /* offset 8: top shadow-stack frame */
  char* arena_top;    /* offset 16: stack arena bump pointer */
  char* arena_limit;  /* offset 24 */
  usgc_alloc_run runs[USGC_SIZE_CLASS_COUNT]; /* offset 32: private allocation, per size class */
  /* After runs: the header of an OLD private object of this goroutine under
   * USGC_HEADER_OLD_KEY_MASK (owner heap_id | 1, class GOROUTINE_PRIVATE), so the barrier stores
   * an old object or null into an old object of mine without its slow path (nothing to
   * remember); UINT64_MAX (matches no header) while the goroutine's old-generation cycle marks,
   * when every store into an old object must shade what it overwrites. Written by the owner. */
  uint64_t old_private_key;
} usgc_mutator;

#if defined(__GNUC__)
/* On a thread that runs no goroutine this points at a placeholder record whose heap_id
 * (UINT64_MAX) is nobody's, so barriers take their slow path and allocation fails with EPERM.
 * Shadow-stack frames (USGC_ROOTS) belong on goroutines only. */
extern __attribute__((visibility("default"))) __thread usgc_mutator* usgc_current_mutator
    __attribute__((tls_model("initial-exec")));
#endif

#if defined(__wasm32__)
/* wasm32 (the WebAssembly runtime, docs/wasm.md): the same records with 4-byte pointers; a
 * frame's slots and every reference field stay 8-byte words (the low half is the address). */
_Static_assert(sizeof(usgc_frame) == 16, "usgc_frame ABI (wasm32)");
_Static_assert(offsetof(usgc_mutator, frames) == 8, "usgc_mutator ABI (wasm32)");
_Static_assert(offsetof(usgc_mutator, arena_top) == 12, "usgc_mutator ABI (wasm32)");
_Static_assert(offsetof(usgc_mutator, arena_limit) == 16, "usgc_mutator ABI (wasm32)");
_Static_assert(offsetof(usgc_mutator, runs) == 20, "usgc_mutator ABI (wasm32)");
_Static_assert(offsetof(usgc_mutator, old_private_key) == 304, "usgc_mutator ABI (wasm32)");
_Static_assert(sizeof(usgc_alloc_run) == 8, "usgc_alloc_run ABI (wasm32)");
#elif defined(__cplusplus)
static_assert(sizeof(usgc_frame) == 32, "usgc_frame ABI");
static_assert(offsetof(usgc_mutator, heap_id) == 0, "usgc_mutator ABI");
static_assert(offsetof(usgc_mutator, frames) == 8, "usgc_mutator ABI");
static_assert(offsetof(usgc_mutator, arena_top) == 16, "usgc_mutator ABI");
static_assert(offsetof(usgc_mutator, arena_limit) == 24, "usgc_mutator ABI");
static_assert(offsetof(usgc_mutator, runs) == 32, "usgc_mutator ABI");
static_assert(offsetof(usgc_mutator, old_private_key) == 592, "usgc_mutator ABI");
static_assert(sizeof(usgc_alloc_run) == 16, "usgc_alloc_run ABI");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(usgc_frame) == 32, "usgc_frame ABI");
_Static_assert(offsetof(usgc_mutator, heap_id) == 0, "usgc_mutator ABI");
_Static_assert(offsetof(usgc_mutator, frames) == 8, "usgc_mutator ABI");
_Static_assert(offsetof(usgc_mutator, arena_top) == 16, "usgc_mutator ABI");
_Static_assert(offsetof(usgc_mutator, arena_limit) == 24, "usgc_mutator ABI");
_Static_assert(offsetof(usgc_mutator, runs) == 32, "usgc_mutator ABI");
_Static_assert(offsetof(usgc_mutator, old_private_key) == 592, "usgc_mutator ABI");
#endif

#ifdef __cplusplus
}
#endif

#endif /* USGC_OBJECT_H */
