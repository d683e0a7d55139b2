/* tests/gc/programs/gc_node_stats.c — the GC heap's per-NUMA-node figures from a C11 program,
 * through <usgc/usgc.h> and <usgc/stats_block.h> only, as a monitoring embedder reads them. Run by
 * tests/gc/numa_stats.test.sh (linked against libusgc.a, USGC_STATS_INTERVAL_MS=1).
 *
 * Proves: usgc_gc_get_node_stats refuses bad arguments (EINVAL), reports at least one node and
 * per node committed >= in use; the nodes' in-use
 * bytes add up to usgc_gc_stats.bytes_committed while nothing allocates; a goroutine's private
 * and shared objects raise the in-use figures by at least their bytes; the process's own live
 * stats block (/dev/shm, seqlock protocol) shows the same per-node in-use figures in KiB once it
 * is refreshed. Prints "gc_node_stats: N checks, all passed" last; exits 0 only then.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <usgc/stats_block.h>
#include <usgc/usgc.h>

static int g_checks = 0;
static int g_failures = 0;
#define CHECK(condition, ...)                                              \
  do {                                                                     \
    ++g_checks;                                                            \
    if (!(condition)) {                                                    \
      ++g_failures;                                                        \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
    }                                                                      \
  } while (0)

#define MAX_NODES 64
#define OBJECTS 20000

typedef struct Item {
  struct Item* next;
  uint64_t value;
} Item;

static usgc_type_id g_item;

static uint64_t in_use_sum(uint32_t* count_out) {
  usgc_gc_node_stats nodes[MAX_NODES];
  uint32_t count = 0;
  if (usgc_gc_get_node_stats(nodes, MAX_NODES, &count) != 0) return 0;
  uint64_t sum = 0;
  for (uint32_t n = 0; n < count && n < MAX_NODES; ++n) sum += nodes[n].bytes_in_use;
  if (count_out) *count_out = count;
  return sum;
}

static uint64_t gc_bytes_committed(void) {
  usgc_gc_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_GC_STATS_VERSION;
  usgc_gc_get_stats(&stats);
  return stats.bytes_committed;
}

static void allocate(void* unused) {
  (void)unused;
  uint64_t before = in_use_sum(NULL);
  USGC_ROOTS(roots, 2);
  for (int i = 0; i < OBJECTS; ++i) {
    Item* item = usgc_alloc(g_item, USGC_GOROUTINE_PRIVATE);
    CHECK(item != NULL, "private allocation %d", i);
    if (item == NULL) break;
    usgc_write(item, (void**)&item->next, roots[0]);
    roots[0] = item;
    Item* shared = usgc_alloc(g_item, USGC_GOROUTINE_SHARED);
    CHECK(shared != NULL, "shared allocation %d", i);
    if (shared == NULL) break;
    usgc_write(shared, (void**)&shared->next, roots[1]);
    roots[1] = shared;
  }
  uint64_t after = in_use_sum(NULL);
  CHECK(after >= before + 2ull * OBJECTS * sizeof(Item),
        "in-use bytes grew by the objects: %llu -> %llu", (unsigned long long)before,
        (unsigned long long)after);
}

static int read_own_block(usgc_stats_block* copy) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s%u-%d", USGC_STATS_BLOCK_DIRECTORY,
           USGC_STATS_BLOCK_NAME_PREFIX, (unsigned)getuid(), (int)getpid());
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  void* mapped = mmap(NULL, USGC_STATS_BLOCK_BYTES, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (mapped == MAP_FAILED) return -1;
  const volatile usgc_stats_block* live = mapped;
  int ok = -1;
  for (int attempt = 0; attempt < 100 && ok != 0; ++attempt) {
    uint64_t sequence = __atomic_load_n(&live->sequence, __ATOMIC_ACQUIRE);
    if (sequence & 1) continue;
    memcpy(copy, (const void*)live, sizeof *copy);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&live->sequence, __ATOMIC_RELAXED) == sequence) ok = 0;
  }
  munmap(mapped, USGC_STATS_BLOCK_BYTES);
  return ok;
}

int main(void) {
  uint32_t count = 0;
  usgc_gc_node_stats one;
  CHECK(usgc_gc_get_node_stats(&one, 1, NULL) == EINVAL, "NULL node_count: EINVAL");
  CHECK(usgc_gc_get_node_stats(NULL, 1, &count) == EINVAL, "NULL nodes with capacity: EINVAL");
  CHECK(usgc_gc_get_node_stats(NULL, 0, &count) == 0 && count >= 1, "the count alone: %u", count);
  if (usgc_init(NULL) != 0) {
    fprintf(stderr, "usgc_init failed\n");
    return 2;
  }
  size_t offsets[] = {offsetof(Item, next)};
  usgc_type_info info = {"NodeStatsItem", USGC_KIND_OBJECT, sizeof(Item), offsets, 1};
  g_item = usgc_register_type(&info);
  CHECK(g_item != 0, "register the type");
  if (usgc_run_main(allocate, NULL) != 0) {
    fprintf(stderr, "usgc_run_main failed\n");
    return 3;
  }
  /* Nothing allocates now: the figures are stable. */
  usgc_gc_node_stats nodes[MAX_NODES];
  CHECK(usgc_gc_get_node_stats(nodes, MAX_NODES, &count) == 0 && count >= 1, "node stats");
  uint64_t in_use = 0;
  for (uint32_t n = 0; n < count && n < MAX_NODES; ++n) {
    CHECK(nodes[n].bytes_committed >= nodes[n].bytes_in_use,
          "node %u: committed %llu >= in use %llu", n, (unsigned long long)nodes[n].bytes_committed,
          (unsigned long long)nodes[n].bytes_in_use);
    in_use += nodes[n].bytes_in_use;
    printf("node %u: committed %llu in use %llu free blocks %llu\n", n,
           (unsigned long long)nodes[n].bytes_committed, (unsigned long long)nodes[n].bytes_in_use,
           (unsigned long long)nodes[n].free_blocks);
  }
  CHECK(in_use == gc_bytes_committed(), "nodes' in use %llu == the heap's %llu",
        (unsigned long long)in_use, (unsigned long long)gc_bytes_committed());

  /* The live stats block: refreshed from the allocator's slow path every interval. */
  usgc_stats_block block;
  int matched = 0;
  for (int attempt = 0; attempt < 4000 && !matched; ++attempt) {
    void* churn[64];
    for (int i = 0; i < 64; ++i) churn[i] = usgc_malloc(200000);
    for (int i = 0; i < 64; ++i) usgc_free(churn[i]);
    struct timespec pause = {0, 5000000};
    nanosleep(&pause, NULL);
    if (read_own_block(&block) != 0) continue;
    uint64_t kib = 0;
    for (int n = 0; n < USGC_STATS_MAX_NODES; ++n) kib += block.gc_node_in_use_kib[n];
    matched = block.version == USGC_STATS_BLOCK_VERSION && kib == in_use / 1024;
  }
  CHECK(matched, "the stats block's per-node in-use KiB add up to %llu KiB",
        (unsigned long long)(in_use / 1024));
  if (matched) {
    CHECK(block.numa_nodes >= 1, "numa_nodes %u", block.numa_nodes);
    for (uint32_t n = 0; n < count && n < USGC_STATS_MAX_NODES - 1; ++n) {
      CHECK(block.gc_node_in_use_kib[n] == nodes[n].bytes_in_use / 1024, "node %u in use KiB", n);
      CHECK(block.gc_node_committed_kib[n] >= block.gc_node_in_use_kib[n], "node %u committed", n);
    }
  }
  usgc_shutdown();
  if (g_failures != 0) {
    printf("gc_node_stats: %d of %d checks failed\n", g_failures, g_checks);
    return 1;
  }
  printf("gc_node_stats: %d checks, all passed\n", g_checks);
  return 0;
}
