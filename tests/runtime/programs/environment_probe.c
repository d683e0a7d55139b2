/* tests/runtime/programs/environment_probe.c — prints the configuration usgc took from the
 * environment, through the public headers only (as an embedder sees it). Run by
 * tests/runtime/environment_matrix.test.sh with one USGC_* variable set at a time.
 *
 * It touches every reader: usgc_malloc (USGC_DECAY_MS, USGC_STATS, USGC_STATS_INTERVAL_MS), a
 * trim (USGC_DECOMMIT), usgc_init (USGC_PROCS, USGC_STACK_*, USGC_PREEMPT_US,
 * USGC_SAFEPOINT_ARMING, the USGC_GC_* and USGC_HEAP_MAX, USGC_TRACE, USGC_VERIFY), a goroutine and
 * a collection; then prints one line: procs=N stack_bytes=N guard_bytes=N preempt_after_us=N
 * heap_limit_bytes=N and exits 0, or 1 naming what failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <usgc/usgc.h>

static int g_collected;

static void main_goroutine(void* arg) {
  (void)arg;
  void* bytes = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64, USGC_GOROUTINE_PRIVATE);
  g_collected = bytes != NULL && usgc_gc_collect(USGC_GC_PRIVATE) == 0;
}

int main(void) {
  /* usgc's malloc (this program is linked, not preloaded): pages to return, then a trim. */
  void* blocks[128];
  for (int i = 0; i < 128; ++i) {
    blocks[i] = usgc_malloc(64 << 10);
    if (blocks[i] == NULL) return 1;
    memset(blocks[i], 1, 64 << 10);
  }
  for (int i = 0; i < 128; ++i) usgc_free(blocks[i]);
  usgc_malloc_trim(0);
  usgc_config config;
  if (usgc_config_from_environment(&config) != 0) {
    fprintf(stderr, "environment-probe: usgc_config_from_environment failed\n");
    return 1;
  }
  int error = usgc_init(NULL);
  if (error != 0) {
    fprintf(stderr, "environment-probe: usgc_init: %s\n", strerror(error));
    return 1;
  }
  usgc_run_main(main_goroutine, NULL);
  usgc_gc_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_GC_STATS_VERSION;
  if (!g_collected || usgc_gc_get_stats(&stats) != 0) {
    fprintf(stderr, "environment-probe: the goroutine or the stats failed: %s\n",
            usgc_last_error());
    return 1;
  }
  printf("procs=%u stack_bytes=%zu guard_bytes=%zu preempt_after_us=%u heap_limit_bytes=%llu\n",
         config.procs, config.stack_bytes, config.guard_bytes, config.preempt_after_us,
         (unsigned long long)stats.heap_limit_bytes);
  return usgc_shutdown() == 0 ? 0 : 1;
}
