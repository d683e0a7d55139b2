/* usgc.h — the public C API of usgc, UltraScript's memory system.
 *
 * This header is usable from C (C99 or later) and C++. It declares the malloc-mode API:
 * explicit allocation and free on usgc's NUMA-aware allocator, with the semantics of the C
 * library's malloc family (glibc's, where the C standard leaves a choice):
 *
 *   - usgc_malloc(0) returns a unique pointer that must be freed;
 *   - every pointer is aligned to at least 16 bytes;
 *   - on failure the functions return NULL and set errno to ENOMEM (EINVAL for a bad alignment);
 *   - usgc_calloc and usgc_reallocarray check n * size for overflow;
 *   - usgc_realloc(NULL, n) is usgc_malloc(n); usgc_realloc(p, 0) frees p and returns NULL (glibc);
 *   - usgc_free(NULL) does nothing;
 *   - freeing a pointer twice, or a pointer inside usgc's memory that it never returned, prints
 *     one line naming the call and the pointer and aborts; a pointer usgc does not own at all is
 *     reported once and left alone.
 *
 * The same functions serve as malloc, free, ... when libusgc_preload.so is preloaded.
 * Configuration (read once at start): USGC_DECAY_MS — how long an empty page (or a free GC
 * block) stays committed before it is returned to the OS (default 250);
 * USGC_DECOMMIT=auto|io_uring|madvise — how (malloc's pages).
 */
#ifndef USGC_USGC_H
#define USGC_USGC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define USGC_API __attribute__((visibility("default")))
#define USGC_MALLOC_ATTRS __attribute__((malloc, warn_unused_result))
#else
#define USGC_API
#define USGC_MALLOC_ATTRS
#endif

USGC_API void* usgc_malloc(size_t size) USGC_MALLOC_ATTRS;
USGC_API void* usgc_calloc(size_t count, size_t size) USGC_MALLOC_ATTRS;
USGC_API void* usgc_realloc(void* pointer, size_t size);
USGC_API void* usgc_reallocarray(void* pointer, size_t count, size_t size);
USGC_API void usgc_free(void* pointer);
/* Frees with a size hint (C23 free_sized, C++ sized delete); the size is checked in debug builds.
 */
USGC_API void usgc_free_sized(void* pointer, size_t size);
/* alignment: a power of two; size need not be a multiple of it (glibc's leniency). */
USGC_API void* usgc_aligned_alloc(size_t alignment, size_t size) USGC_MALLOC_ATTRS;
/* Returns 0, EINVAL (alignment not a power of two multiple of sizeof(void*)) or ENOMEM. */
USGC_API int usgc_posix_memalign(void** result, size_t alignment, size_t size);
/* Bytes usable at pointer (>= the size asked for); 0 for NULL. */
USGC_API size_t usgc_malloc_usable_size(const void* pointer);
/* Returns free memory to the OS now (what the decay would return later); 1 if any was. */
USGC_API int usgc_malloc_trim(size_t pad);
/* Writes the heap profile (live and allocated bytes of the sampled allocations by call stack,
 * gzip'd pprof profile.proto) to path, or to USGC_PROF_FILE's file when path is NULL, and prints
 * the summary of its top sites on stderr. Returns 0, ENOTSUP when USGC_PROF is off, or the errno
 * of the failed open/write. It is also written at exit. */
USGC_API int usgc_heap_profile_write(const char* path);

/* Statistics of the whole process, summed over all threads. Versioned: set `version` to
 * USGC_MALLOC_STATS_VERSION before the call; fields are added only at the end. */
#define USGC_MALLOC_STATS_VERSION 1
typedef struct usgc_malloc_stats {
  uint32_t version;
  uint32_t numa_nodes;         /* nodes the allocator places memory on */
  uint64_t bytes_reserved;     /* address space mapped for the heap */
  uint64_t bytes_committed;    /* of that, not returned to the OS */
  uint64_t bytes_in_use;       /* handed to the program and not freed (block sizes) */
  uint64_t bytes_large_in_use; /* of that, in objects above the size classes */
  uint64_t malloc_count;       /* allocations since start */
  uint64_t free_count;         /* frees since start */
  uint64_t remote_free_count;  /* frees by a thread other than the allocating one */
  uint64_t segments;           /* live segments (4 MiB units of address space) */
  uint64_t decommits_io_uring; /* ranges returned through io_uring */
  uint64_t decommits_madvise;  /* ranges returned through madvise(2) or process_madvise(2) */
  uint64_t bytes_decommitted;  /* total returned to the OS since start */
  uint64_t threads;            /* threads with a live heap */
} usgc_malloc_stats;

/* Fills *stats; returns 0, or EINVAL for NULL or an unknown version. */
USGC_API int usgc_malloc_get_stats(usgc_malloc_stats* stats);

#ifdef __cplusplus
}
#endif

/* The goroutine runtime, safepoints and the garbage-collected heap. */
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"
#include "usgc/validate.h"

#endif /* USGC_USGC_H */
