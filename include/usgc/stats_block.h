/* usgc/stats_block.h — the live statistics block: the ABI between a process using usgc (the
 * writer) and the programs that watch it (usgc-top, scripts). C (C11 for the size checks) and C++.
 *
 * Where: every process using usgc, linked or under LD_PRELOAD, publishes one block in the file
 * /dev/shm/usgc-<uid>-<pid> (decimal uid and pid; mode 0600), created on its first publication
 * and removed when it exits normally. USGC_STATS=0 turns publication off; USGC_STATS_INTERVAL_MS
 * (default 100) sets how often the figures are refreshed (the allocator refreshes them from its
 * slow path, so a process that does not allocate keeps its last figures; see update_time_*).
 *
 * Reading (the seqlock protocol): the writer makes `sequence` odd, writes the figures, then
 * makes it even again. A reader copies the whole block and accepts the copy only if `sequence`
 * was even and the same before and after the copy; otherwise it retries (a few times; a block
 * that never stabilizes is skipped). alloc/stats_reader.hpp implements this in C++.
 *
 * Compatibility: `magic` identifies the file; `version` changes when a field's meaning or offset
 * changes; `size_bytes` is the size the writer wrote (fields are only ever appended, taken from
 * reserved_for_later, so a reader may accept a larger size with the same version). All figures
 * are little-endian host integers; there are no raw addresses anywhere in the block.
 *
 * The GC section is filled by the goroutine runtime and the collector (zero in a process that
 * never started the runtime, e.g. under LD_PRELOAD).
 */
#ifndef USGC_STATS_BLOCK_H
#define USGC_STATS_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#define USGC_STATS_BLOCK_MAGIC \
  UINT64_C(0x5441545343475355) /* the bytes "USGCSTAT", little-endian */
#define USGC_STATS_BLOCK_VERSION 1
#define USGC_STATS_BLOCK_BYTES 1024
/* The file's name is USGC_STATS_BLOCK_NAME_PREFIX "<uid>-<pid>" in USGC_STATS_BLOCK_DIRECTORY. */
#define USGC_STATS_BLOCK_DIRECTORY "/dev/shm"
#define USGC_STATS_BLOCK_NAME_PREFIX "usgc-"

#define USGC_STATS_COMMAND_BYTES 16 /* TASK_COMM_LEN: 15 characters and a NUL */
#define USGC_STATS_MAX_NODES 8      /* nodes beyond the 8th are summed into the last entry */
#define USGC_STATS_GC_KINDS 4
#define USGC_STATS_HISTOGRAM_BUCKETS 20

/* flags */
#define USGC_STATS_FLAG_NODE_BYTES 1u /* node_bytes_reserved holds figures (else unknown) */
#define USGC_STATS_FLAG_HEAP_PROFILE \
  2u /* the process samples its heap (USGC_PROF=1) and answers profile requests */
#define USGC_STATS_FLAG_PROFILE_NAME_ONLY \
  4u /* profile_file is the last component of a path too long for the field */

#define USGC_STATS_PROFILE_FILE_BYTES 48

/* Index of collections[] (GC). */
enum usgc_stats_gc_kind {
  USGC_STATS_GC_PRIVATE = 0,      /* a goroutine's private collection (nobody else stops) */
  USGC_STATS_GC_SHARED = 1,       /* a stop-the-world shared collection (minor or full) */
  USGC_STATS_GC_SHARED_MINOR = 2, /* of the shared ones, the minor (generational) collections */
  USGC_STATS_GC_EXPLICIT = 3      /* of the above, requested by the program (usgc_gc_collect) */
};

/* Histogram buckets (pause_histogram, time_to_safepoint_histogram), in microseconds:
 * bucket 0 counts durations below 1 us; bucket i, 1 <= i <= 18, counts [2^(i-1), 2^i) us;
 * bucket 19 counts 2^18 us (262 ms) and above. */

typedef struct usgc_stats_block {
  /* ---- header: same offsets in every version ---- */
  uint64_t magic;               /* USGC_STATS_BLOCK_MAGIC */
  uint32_t version;             /* USGC_STATS_BLOCK_VERSION */
  uint32_t size_bytes;          /* bytes the writer defines (USGC_STATS_BLOCK_BYTES today) */
  uint64_t sequence;            /* seqlock: odd while the writer writes; even = stable */
  int32_t pid;                  /* the writer's process id (as in the file name) */
  uint32_t uid;                 /* the writer's user id (as in the file name) */
  uint64_t start_time_ticks;    /* the writer's start, /proc/<pid>/stat field 22: with pid, the
                                   process's identity (a reused pid has another start time) */
  uint64_t start_time_unix_ns;  /* the same start as wall-clock time */
  uint64_t update_time_unix_ns; /* when these figures were taken (wall clock) */
  uint64_t update_monotonic_ns; /* the same on CLOCK_MONOTONIC (rates between two updates) */
  char command[USGC_STATS_COMMAND_BYTES]; /* /proc/<pid>/comm when the block was created */
  uint32_t publish_interval_ms;           /* USGC_STATS_INTERVAL_MS of the writer */
  uint32_t flags;                         /* USGC_STATS_FLAG_* */
  uint64_t publish_count;                 /* updates since the block was created */

  /* ---- allocator (malloc mode), as usgc_malloc_get_stats reports them ---- */
  uint64_t bytes_reserved;     /* address space mapped for the heap */
  uint64_t bytes_committed;    /* of that, not returned to the OS */
  uint64_t bytes_in_use;       /* handed to the program and not freed */
  uint64_t bytes_large_in_use; /* of that, objects above the size classes (heap class "large") */
  uint64_t malloc_count;       /* allocations since start */
  uint64_t free_count;         /* frees since start */
  uint64_t remote_free_count;  /* frees by a thread other than the allocating one */
  uint64_t segments;           /* live segments */
  uint64_t decommits_io_uring; /* ranges returned to the OS through io_uring */
  uint64_t decommits_madvise;  /* ranges returned by madvise(2) or process_madvise(2) */
  uint64_t bytes_decommitted;  /* total returned to the OS since start */
  uint64_t threads;            /* threads with a live heap */
  uint64_t rss_bytes;          /* resident set size of the whole process (/proc/self/statm) */
  uint32_t numa_nodes;         /* nodes the allocator places memory on */
  uint32_t reserved_0;
  uint64_t node_bytes_reserved[USGC_STATS_MAX_NODES]; /* bytes_reserved per node (see flags) */

  /* ---- goroutine runtime and collector (GC) ---- */
  uint64_t goroutines;                       /* live goroutines */
  uint64_t collections[USGC_STATS_GC_KINDS]; /* completed collections per kind */
  uint64_t gc_time_ns;                       /* total pause time of all collections */
  uint64_t last_pause_ns;                    /* the latest pause (either kind) */
  uint64_t max_pause_ns;                     /* the worst stop-the-world (shared) pause */
  uint64_t pause_histogram[USGC_STATS_HISTOGRAM_BUCKETS]; /* shared (stop-the-world) pauses */
  uint64_t time_to_safepoint_histogram[USGC_STATS_HISTOGRAM_BUCKETS];
  uint64_t barrier_slow_paths; /* write-barrier slow-path entries */
  uint64_t publications;       /* publication events (closures published) */
  /* Taken from the reserved words (zero in blocks of writers before the collector): */
  uint64_t gc_bytes_in_use[4]; /* per ownership class (usgc/object.h) */
  uint64_t gc_bytes_committed; /* GC blocks and large objects mapped, less the pages of free
                                  blocks returned to the OS (the sum of gc_node_committed_kib) */
  uint64_t private_pause_histogram[USGC_STATS_HISTOGRAM_BUCKETS]; /* private collections */
  uint64_t private_max_pause_ns;                                  /* the worst private collection */
  uint64_t objects_published; /* objects made shared by publications */
  /* The GC heap per NUMA node (usgc_gc_get_node_stats), in KiB (saturating at UINT32_MAX), for
   * the first numa_nodes entries; nodes beyond the 8th are summed into the last entry: */
  uint32_t gc_node_committed_kib[USGC_STATS_MAX_NODES]; /* mapped and not returned to the OS */
  uint32_t gc_node_in_use_kib[USGC_STATS_MAX_NODES];    /* blocks taken and large objects */

  /* Heap-profile requests (processes with USGC_PROF=1, flag USGC_STATS_FLAG_HEAP_PROFILE). A
   * watcher of the same user (usgc-top --heap-profile) writes profile_request (4 bytes, pwrite)
   * with a number other than profile_answer; the process notices it at its next publication (its
   * allocator's slow path, not a signal handler), writes a profile to a file whose name it chooses
   * itself (nothing but the number is taken from the block), and answers: profile_answer = the
   * request, profile_error and profile_file, under the seqlock. A request is answered when
   * (int32_t)(profile_answer - request) >= 0 (a later request answers an earlier one). */
  uint32_t profile_request; /* written by watchers only, never by the process */
  uint32_t profile_answer;  /* the last request answered (0: none yet) */
  int32_t profile_error;    /* 0: profile_file was written; else an errno */
  uint32_t profile_files;   /* profiles written on request so far */
  /* The path of the last one, NUL-terminated, as the process opened it: relative paths are
   * relative to the process's working directory (/proc/<pid>/cwd); see the NAME_ONLY flag. */
  char profile_file[USGC_STATS_PROFILE_FILE_BYTES];

  uint64_t reserved_for_later[1]; /* zero; new fields are taken from here */
} usgc_stats_block;

/* The layout is the ABI: its size and every offset another process relies on are checked. */
#if defined(__cplusplus)
#define USGC_STATS_STATIC_ASSERT(condition, message) static_assert(condition, message)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define USGC_STATS_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#else
#define USGC_STATS_STATIC_ASSERT(condition, message)
#endif
USGC_STATS_STATIC_ASSERT(sizeof(usgc_stats_block) == USGC_STATS_BLOCK_BYTES,
                         "stats block size is ABI");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, magic) == 0, "stats block ABI: magic");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, version) == 8, "stats block ABI: version");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, size_bytes) == 12,
                         "stats block ABI: size_bytes");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, sequence) == 16, "stats block ABI: sequence");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, pid) == 24, "stats block ABI: pid");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, uid) == 28, "stats block ABI: uid");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, start_time_ticks) == 32,
                         "stats block ABI: start_time_ticks");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, update_monotonic_ns) == 56,
                         "stats block ABI: update_monotonic_ns");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, command) == 64, "stats block ABI: command");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, publish_count) == 88,
                         "stats block ABI: publish_count");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, bytes_reserved) == 96,
                         "stats block ABI: allocator figures");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, rss_bytes) == 192,
                         "stats block ABI: rss_bytes");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, numa_nodes) == 200,
                         "stats block ABI: numa_nodes");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, node_bytes_reserved) == 208,
                         "stats block ABI: node_bytes_reserved");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, goroutines) == 272,
                         "stats block ABI: goroutines");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, pause_histogram) == 336,
                         "stats block ABI: pause_histogram");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, time_to_safepoint_histogram) == 496,
                         "stats block ABI: time_to_safepoint_histogram");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, gc_bytes_in_use) == 672,
                         "stats block ABI: gc_bytes_in_use");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, gc_bytes_committed) == 704,
                         "stats block ABI: gc_bytes_committed");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, private_pause_histogram) == 712,
                         "stats block ABI: private_pause_histogram");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, private_max_pause_ns) == 872,
                         "stats block ABI: private_max_pause_ns");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, objects_published) == 880,
                         "stats block ABI: objects_published");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, gc_node_committed_kib) == 888,
                         "stats block ABI: gc_node_committed_kib");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, gc_node_in_use_kib) == 920,
                         "stats block ABI: gc_node_in_use_kib");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, profile_request) == 952,
                         "stats block ABI: profile_request");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, profile_answer) == 956,
                         "stats block ABI: profile_answer");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, profile_error) == 960,
                         "stats block ABI: profile_error");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, profile_file) == 968,
                         "stats block ABI: profile_file");
USGC_STATS_STATIC_ASSERT(offsetof(usgc_stats_block, reserved_for_later) == 1016,
                         "stats block ABI: reserved_for_later");
#undef USGC_STATS_STATIC_ASSERT

#endif /* USGC_STATS_BLOCK_H */
