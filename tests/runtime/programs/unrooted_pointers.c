/* unrooted_pointers.c — C code keeps a freshly allocated shared array only in a register or an
 * unrooted local (here: an interior pointer to its bytes) while it spins without a single usgc
 * call, and another thread runs shared collections meanwhile. The spinner is stopped by a
 * signal (an asynchronous safepoint) for every collection; its registers and stack are scanned
 * conservatively, so the array survives, byte for byte. First as the attached main thread, then
 * as a goroutine of usgc_go. Prints "unrooted ok rounds=N collections=M". Public headers only. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "usgc/usgc.h"
#include "usgc/validate.h"

enum { kRounds = 12, kCollectionsPerRound = 2 };

static atomic_ulong g_collections;
static atomic_int g_stop_collecting;
static atomic_int g_failed;

static unsigned char pattern(size_t i, unsigned round) {
  return (unsigned char)(i * 7u + round * 13u + 1u);
}

/* One round: allocate, fill, spin until two collections have run, check every byte. */
static void spin_round(const char* who, unsigned round) {
  size_t length = 2000 + (size_t)round * 24;
  void* array = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, length, USGC_GOROUTINE_SHARED);
  if (array == NULL) {
    fprintf(stderr, "%s: usgc_alloc_array failed: %s\n", who, usgc_last_error());
    atomic_store(&g_failed, 1);
    return;
  }
  unsigned char* bytes = usgc_array_data(array);
  array = NULL; /* only the interior pointer is kept */
  for (size_t i = 0; i < length; ++i) bytes[i] = pattern(i, round);
  unsigned long seen = atomic_load(&g_collections);
  while (atomic_load_explicit(&g_collections, memory_order_relaxed) < seen + kCollectionsPerRound) {
    /* no usgc call, no poll: only a signal can stop this loop */
  }
  for (size_t i = 0; i < length; ++i) {
    if (bytes[i] != pattern(i, round)) {
      fprintf(stderr,
              "%s: round %u: byte %zu of %zu is 0x%02x, want 0x%02x: the array was freed while "
              "only a register or an unrooted local pointed to it\n",
              who, round, i, length, bytes[i], pattern(i, round));
      atomic_store(&g_failed, 1);
      return;
    }
  }
}

static void* collector(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  while (!atomic_load(&g_stop_collecting)) {
    for (int i = 0; i < 64; ++i) { /* garbage that would reuse a wrongly freed slot */
      void* garbage =
          usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 2000 + (size_t)i * 24, USGC_GOROUTINE_SHARED);
      if (garbage != NULL) memset(usgc_array_data(garbage), 0xEE, 2000);
    }
    if (usgc_gc_collect(USGC_GC_SHARED) != 0) atomic_store(&g_failed, 1);
    atomic_fetch_add(&g_collections, 1);
  }
  usgc_detach_thread();
  return NULL;
}

static usgc_waitgroup g_goroutine_done = USGC_WAITGROUP_INIT;

static void goroutine_rounds(void* unused) {
  (void)unused;
  for (unsigned round = 0; round < kRounds && !atomic_load(&g_failed); ++round)
    spin_round("goroutine", round);
  usgc_waitgroup_done(&g_goroutine_done);
}

int main(void) {
  if (usgc_init(NULL) != 0 || usgc_attach_thread() != 0) {
    fprintf(stderr, "init/attach failed\n");
    return 2;
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, collector, NULL) != 0) return 2;
  for (unsigned round = 0; round < kRounds && !atomic_load(&g_failed); ++round)
    spin_round("attached thread", round);
  usgc_waitgroup_add(&g_goroutine_done, 1);
  if (usgc_go(goroutine_rounds, NULL, NULL) != 0) return 2;
  usgc_waitgroup_wait(&g_goroutine_done);
  atomic_store(&g_stop_collecting, 1);
  usgc_enter_native();
  pthread_join(thread, NULL);
  usgc_leave_native();
  usgc_heap_report report;
  memset(&report, 0, sizeof report);
  report.version = USGC_HEAP_REPORT_VERSION;
  if (usgc_heap_validate(&report) != 0) {
    fprintf(stderr, "usgc_heap_validate failed\n");
    return 1;
  }
  usgc_detach_thread();
  if (atomic_load(&g_failed)) return 1;
  printf("unrooted ok rounds=%d collections=%lu\n", 2 * kRounds, atomic_load(&g_collections));
  return usgc_shutdown() == 0 ? 0 : 1;
}
