/* tools/usgc-process-data.cpp — `make run`, second part: the seed's processData example on the
 * garbage-collected heap, written against the C API (usgc/usgc.h) only. The file is C++ so the
 * Makefile builds it like every tool, but it is written in the common subset of C11 and C++
 * (tests/gc/c_api.test.sh compiles it as C): it is what a C runtime or a JIT's output does.
 *
 * processData(n) (tests/escape/process_data.usir has its IR and its escape decisions):
 *   - n scratch Points that never leave their frame: STACK_LOCAL, each in its own USGC_ROOTS
 *     frame, released when the frame pops (a bump of the stack arena, reset at the pop);
 *   - n kept Points in a private array under a private Result that the caller gets back:
 *     GOROUTINE_PRIVATE, freed by the goroutine's own private collections once dropped;
 *   - one shared Result (GOROUTINE_SHARED) holding every 4th kept Point, handed to a spawned
 *     goroutine (usgc_go_object) that sums it: storing a private Point into the shared array
 *     publishes it (the private-heap invariant), and shared collections free the shared Results.
 * Several goroutines call processData in a loop, keeping their last few private Results alive, so
 * private collections (many at once) and shared collections (the world stopped) both run, all
 * triggered by allocation (USGC_GC_PERCENT). Every result is checked; the collection statistics
 * are printed at the end. USGC_TRACE=gc prints one line per collection as it happens.
 * Exit status: 0 when every result was right, 1 otherwise, 2 when the runtime could not start.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "usgc/usgc.h"

enum {
  kGoroutines = 4,  /* goroutines calling processData */
  kCalls = 250,     /* calls per goroutine */
  kPoints = 2000,   /* n */
  kSampleEvery = 4, /* every 4th kept Point also goes into the shared Result */
  kBatch = 10,      /* calls between waits for the spawned accumulators */
  kKeep = 8         /* private Results each goroutine keeps alive (a ring) */
};

typedef struct Point {
  int64_t x;
  int64_t y;
} Point;

typedef struct Result {
  int64_t sum;
  int64_t count;
  void* points;  /* a reference array of Point* */
  uint64_t done; /* shared Results: the usgc_waitgroup* the accumulator signals (not a reference) */
} Result;

static usgc_type_id g_point_type;
static usgc_type_id g_result_type;
static const size_t kResultReferences[] = {offsetof(Result, points)};

static int64_t g_private_right[kGoroutines], g_shared_right[kGoroutines], g_wrong[kGoroutines];

static int64_t expected_sample_sum(void) {
  int64_t sum = 0;
  for (int64_t i = 0; i < kPoints; i += kSampleEvery) sum += i;
  return sum;
}

/* The spawned goroutine: sums the y of the shared Result's Points, as the seed's accumulate. */
static void accumulate(void* object) {
  USGC_ROOTS(roots, 1);
  roots[0] = object;
  Result* shared = (Result*)object;
  void* samples = usgc_read(shared, (void* const*)&shared->points);
  int64_t sum = 0;
  for (size_t i = 0; i < usgc_array_length(samples); ++i) {
    const Point* point = (const Point*)usgc_array_read(samples, i);
    if (point != NULL) sum += point->y;
  }
  shared->sum = sum;
  usgc_waitgroup_done((usgc_waitgroup*)(uintptr_t)shared->done);
}

/* processData(n): returns the private Result (the caller roots it before allocating again). */
static Result* process_data(int64_t n, usgc_waitgroup* accumulators, void* shared_results,
                            size_t slot) {
  USGC_ROOTS(roots, 4);
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, (size_t)n, USGC_GOROUTINE_PRIVATE);
  roots[1] = usgc_alloc(g_result_type, USGC_GOROUTINE_PRIVATE);
  roots[2] = usgc_alloc(g_result_type, USGC_GOROUTINE_SHARED);
  roots[3] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, (size_t)((n + kSampleEvery - 1) / kSampleEvery),
                              USGC_GOROUTINE_SHARED);
  void* points = roots[0];
  Result* result = (Result*)roots[1];
  Result* shared = (Result*)roots[2];
  void* samples = roots[3];
  if (points == NULL || result == NULL || shared == NULL || samples == NULL) {
    fprintf(stderr, "usgc-process-data: allocation failed: %s\n", usgc_last_error());
    return NULL;
  }
  usgc_write(shared, &shared->points, samples);
  for (int64_t i = 0; i < n; ++i) {
    USGC_ROOTS(frame, 1); /* a compiler would hoist it; here each scratch Point gets a frame */
    Point* scratch = (Point*)usgc_alloc(g_point_type, USGC_STACK_LOCAL);
    frame[0] = scratch;
    scratch->x = i;
    int64_t x = scratch->x;
    Point* kept = (Point*)usgc_alloc(g_point_type, USGC_GOROUTINE_PRIVATE);
    kept->y = x;
    usgc_array_write(points, (size_t)i, kept);
    if (i % kSampleEvery == 0) usgc_array_write(samples, (size_t)(i / kSampleEvery), kept);
    usgc_safepoint_poll();
  } /* each scratch Point is released here, when its frame pops */
  usgc_write(result, &result->points, points);
  result->count = n;
  shared->count = (n + kSampleEvery - 1) / kSampleEvery;
  shared->done = (uint64_t)(uintptr_t)accumulators;
  usgc_array_write(shared_results, slot, shared); /* the caller checks it after the batch */
  usgc_waitgroup_add(accumulators, 1);
  if (usgc_go_object(accumulate, shared) != 0) {
    usgc_waitgroup_done(accumulators);
    fprintf(stderr, "usgc-process-data: usgc_go_object failed\n");
  }
  return result;
}

static bool private_result_right(const Result* result) {
  if (result == NULL || result->count != kPoints) return false;
  void* points = usgc_read(result, (void* const*)&result->points);
  if (usgc_array_length(points) != kPoints) return false;
  int64_t sum = 0;
  for (size_t i = 0; i < kPoints; ++i) {
    const Point* point = (const Point*)usgc_array_read(points, i);
    if (point == NULL) return false;
    sum += point->y;
  }
  return sum == (int64_t)kPoints * (kPoints - 1) / 2;
}

static void worker(void* argument) {
  int index = (int)(intptr_t)argument;
  USGC_ROOTS(roots, 2);
  roots[0] =
      usgc_alloc_array(USGC_TYPE_REF_ARRAY, kKeep, USGC_GOROUTINE_PRIVATE); /* kept Results */
  roots[1] =
      usgc_alloc_array(USGC_TYPE_REF_ARRAY, kBatch, USGC_GOROUTINE_PRIVATE); /* shared ones */
  if (roots[0] == NULL || roots[1] == NULL) return;
  const int64_t sample_sum = expected_sample_sum();
  for (int calls = 0; calls < kCalls;) {
    usgc_waitgroup accumulators = USGC_WAITGROUP_INIT;
    int batch = kCalls - calls < kBatch ? kCalls - calls : kBatch;
    for (int b = 0; b < batch; ++b, ++calls) {
      Result* result = process_data(kPoints, &accumulators, roots[1], (size_t)b);
      usgc_array_write(roots[0], (size_t)calls % kKeep, result); /* the oldest becomes garbage */
      if (private_result_right(result))
        ++g_private_right[index];
      else
        ++g_wrong[index];
    }
    usgc_waitgroup_wait(&accumulators);
    for (int b = 0; b < batch; ++b) {
      const Result* shared = (const Result*)usgc_array_read(roots[1], (size_t)b);
      if (shared != NULL && shared->sum == sample_sum)
        ++g_shared_right[index];
      else
        ++g_wrong[index];
      usgc_array_write(roots[1], (size_t)b, NULL); /* garbage now, for a shared collection */
    }
  }
  /* The kept Results lived through every collection of this goroutine: still right? */
  for (size_t k = 0; k < kKeep; ++k)
    if (!private_result_right((const Result*)usgc_array_read(roots[0], k))) ++g_wrong[index];
}

static usgc_waitgroup g_workers = USGC_WAITGROUP_INIT;

static void run_worker(void* argument) {
  worker(argument);
  usgc_waitgroup_done(&g_workers);
}

static void main_goroutine(void* unused) {
  (void)unused;
  usgc_type_info point = {"Point", USGC_KIND_OBJECT, sizeof(Point), NULL, 0};
  usgc_type_info result = {"Result", USGC_KIND_OBJECT, sizeof(Result), kResultReferences, 1};
  g_point_type = usgc_register_type(&point);
  g_result_type = usgc_register_type(&result);
  if (g_point_type == 0 || g_result_type == 0) {
    fprintf(stderr, "usgc-process-data: usgc_register_type failed: %s\n", usgc_last_error());
    g_wrong[0] = 1;
    return;
  }
  usgc_waitgroup_add(&g_workers, kGoroutines);
  for (intptr_t i = 0; i < kGoroutines; ++i) usgc_go(run_worker, (void*)i, NULL);
  usgc_waitgroup_wait(&g_workers);
  while (usgc_goroutine_count() > 1) usgc_yield(); /* the last accumulators return */
}

/* Upper bound of the histogram bucket holding the given quantile (usgc/gc.h's buckets). */
static double quantile_bound_us(const uint64_t* histogram, double quantile) {
  uint64_t total = 0, seen = 0;
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) total += histogram[i];
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) {
    seen += histogram[i];
    if (total > 0 && (double)seen >= quantile * (double)total) return (double)((uint64_t)1 << i);
  }
  return 0;
}

static double mib(uint64_t bytes) {
  return (double)bytes / (1024.0 * 1024.0);
}

static void print_pauses(const char* kind, uint64_t collections, uint64_t total_ns, uint64_t max_ns,
                         const uint64_t* histogram, uint64_t freed_bytes) {
  if (collections == 0) {
    printf("   %-7s   0 collections\n", kind);
    return;
  }
  printf(
      "   %-7s %3lu collection%s: pause p50 < %.0f us, p99 < %.0f us, mean %.1f us, max %.1f us; "
      "freed %.1f MiB\n",
      kind, (unsigned long)collections, collections == 1 ? "" : "s",
      quantile_bound_us(histogram, 0.5), quantile_bound_us(histogram, 0.99),
      (double)total_ns / (double)collections / 1e3, (double)max_ns / 1e3, mib(freed_bytes));
}

int main(void) {
  usgc_config config;
  if (usgc_config_from_environment(&config) != 0 || usgc_init(&config) != 0) {
    fprintf(stderr, "usgc-process-data: usgc_init failed\n");
    return 2;
  }
  printf(
      "usgc processData — the seed's example on the garbage-collected heap, through the C API\n");
  printf(
      "   %d goroutines x %d calls of processData(n = %d) on %u Ps; each call: %d stack-local\n"
      "   scratch Points, %d private Points under a private Result, a shared Result with every\n"
      "   %dth Point summed by a goroutine started with usgc_go_object\n",
      kGoroutines, kCalls, kPoints, config.procs, kPoints, kPoints, kSampleEvery);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int status = usgc_run_main(main_goroutine, NULL);
  clock_gettime(CLOCK_MONOTONIC, &end);
  double seconds =
      (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;

  int64_t private_right = 0, shared_right = 0, wrong = 0;
  for (int i = 0; i < kGoroutines; ++i) {
    private_right += g_private_right[i];
    shared_right += g_shared_right[i];
    wrong += g_wrong[i];
  }
  const int64_t calls = (int64_t)kGoroutines * kCalls;
  bool all_right = status == 0 && wrong == 0 && private_right == calls && shared_right == calls;
  printf(
      "   results: %ld/%ld private Results right, %ld/%ld shared sums right, %ld wrong, in %.3f s"
      " — %s\n",
      (long)private_right, (long)calls, (long)shared_right, (long)calls, (long)wrong, seconds,
      all_right ? "all right" : "WRONG");

  usgc_gc_stats s;
  memset(&s, 0, sizeof s);
  s.version = USGC_GC_STATS_VERSION;
  if (usgc_gc_get_stats(&s) != 0) {
    printf("   usgc_gc_get_stats failed\n");
    usgc_shutdown();
    return 1;
  }
  printf(
      "\n   collections, all triggered by allocation (USGC_GC_PERCENT; USGC_TRACE=gc lists "
      "them):\n");
  print_pauses("private", s.private_collections, s.private_pause_total_ns, s.private_pause_max_ns,
               s.private_pause_histogram, s.bytes_freed_private);
  print_pauses("shared", s.shared_collections, s.shared_pause_total_ns, s.shared_pause_max_ns,
               s.shared_pause_histogram, s.bytes_freed_shared);
  printf("   objects allocated: stack-local %lu, private %lu, shared %lu, global %lu\n",
         (unsigned long)s.objects_allocated[USGC_STACK_LOCAL],
         (unsigned long)s.objects_allocated[USGC_GOROUTINE_PRIVATE],
         (unsigned long)s.objects_allocated[USGC_GOROUTINE_SHARED],
         (unsigned long)s.objects_allocated[USGC_GLOBAL_SHARED]);
  printf(
      "   in use now: stack-local %.2f MiB, private %.2f MiB, shared %.2f MiB, global %.2f MiB; "
      "committed %.2f MiB\n",
      mib(s.bytes_in_use[USGC_STACK_LOCAL]), mib(s.bytes_in_use[USGC_GOROUTINE_PRIVATE]),
      mib(s.bytes_in_use[USGC_GOROUTINE_SHARED]), mib(s.bytes_in_use[USGC_GLOBAL_SHARED]),
      mib(s.bytes_committed));
  printf("   publications: %lu (%lu objects made shared), write-barrier slow paths %lu\n",
         (unsigned long)s.publications, (unsigned long)s.objects_published,
         (unsigned long)s.barrier_slow_paths);
  int shutdown = usgc_shutdown();
  if (shutdown != 0) printf("   usgc_shutdown: error %d\n", shutdown);
  return all_right && shutdown == 0 ? 0 : 1;
}
