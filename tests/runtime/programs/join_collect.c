/* join_collect.c — an embedder's main thread attaches, starts a pthread that attaches and runs a
 * shared collection, and waits for it with a plain pthread_join (no usgc_enter_native bracket).
 * The collection must not wait for the blocked main thread: it finishes, and the program prints
 * "collected shared=N" (N >= 1). Public headers only. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "usgc/usgc.h"

static int g_collect_result = -1;

static void* collector(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  void* array = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64, USGC_GOROUTINE_SHARED);
  (void)array;
  g_collect_result = usgc_gc_collect(USGC_GC_SHARED);
  usgc_detach_thread();
  return NULL;
}

int main(void) {
  if (usgc_init(NULL) != 0 || usgc_attach_thread() != 0) {
    fprintf(stderr, "init/attach failed\n");
    return 2;
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, collector, NULL) != 0) return 2;
  int joined = pthread_join(thread, NULL); /* blocks in the kernel, holding the main thread's P */
  usgc_gc_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_GC_STATS_VERSION;
  usgc_gc_get_stats(&stats);
  usgc_detach_thread();
  if (joined != 0 || g_collect_result != 0) {
    fprintf(stderr, "join %d collect %d\n", joined, g_collect_result);
    return 1;
  }
  printf("collected shared=%lu\n", (unsigned long)stats.shared_collections);
  return usgc_shutdown() == 0 ? 0 : 1;
}
