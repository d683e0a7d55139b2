/* goroutine_blocked_stops.c — thousands of stop-the-worlds and shared collections while goroutines
 * of usgc_go (2 Ps, more blockers than Ps) block, unbracketed, in read(2) on a pipe,
 * pthread_cond_wait, pthread_mutex_lock, poll(2) without a timeout and nanosleep. Each stop and the
 * monitor's retake make the blocked threads give their P up and take one back around the
 * interrupted call, thousands of times; every call must give the result it would give without
 * usgc: reads get every message in order with errno untouched, condition waits and mutex locks
 * return 0 and see every post, and the lock is unlocked by the thread that took it (same thread
 * before and after each call); poll and nanosleep return ready/0, or -1 with errno EINTR when a
 * signal caught them where the call could not be re-issued (counted). A collector goroutine
 * allocates and collects meanwhile. Prints "stops=N collections=C ..." and exits 0.
 * Public headers only. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usgc/usgc.h"

#define STOPS 3000
/* The stops go on past STOPS until the collector has finished this many collections (at most
 * for COLLECTION_WAIT_NS): with 2 Ps held by blocked goroutines the collector may not get a P
 * before 3000 stops are over (they take well under a second), so a fixed count of stops made
 * the test's "a collection ran" a race. */
#define MIN_COLLECTIONS 3
#define COLLECTION_WAIT_NS 60000000000ull
#define MESSAGES 1500
#define ERRNO_SENTINEL 4343

static int g_read_pipe[2], g_poll_pipe[2];
static pthread_mutex_t g_cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static uint64_t g_cond_posted; /* under g_cond_mutex */
static pthread_mutex_t g_contended = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_contended_count; /* under g_contended */
static atomic_int g_done, g_finished, g_failures;
static atomic_long g_poll_ready, g_poll_eintr, g_sleep_eintr, g_sleeps, g_collections;

#define FAIL(...)                     \
  do {                                \
    fprintf(stderr, __VA_ARGS__);     \
    fputc('\n', stderr);              \
    atomic_fetch_add(&g_failures, 1); \
  } while (0)

static void same_thread(const char* who, pthread_t before) {
  if (!pthread_equal(before, pthread_self())) FAIL("%s: the call ended on another thread", who);
}

static void reader(void* unused) {
  (void)unused;
  for (uint64_t expected = 0; expected < MESSAGES; ++expected) {
    uint64_t value = ~0ull;
    pthread_t self = pthread_self();
    errno = ERRNO_SENTINEL;
    ssize_t got = read(g_read_pipe[0], &value, sizeof value);
    same_thread("read", self);
    if (got != (ssize_t)sizeof value || errno != ERRNO_SENTINEL || value != expected) {
      FAIL("read: %zd errno %d value %lu, expected message %lu", got, errno, (unsigned long)value,
           (unsigned long)expected);
      break;
    }
  }
  atomic_fetch_add(&g_finished, 1);
}

static void cond_waiter(void* unused) {
  (void)unused;
  uint64_t seen = 0;
  pthread_mutex_lock(&g_cond_mutex);
  while (seen < MESSAGES) {
    while (g_cond_posted == seen) {
      pthread_t self = pthread_self();
      int result = pthread_cond_wait(&g_cond, &g_cond_mutex);
      same_thread("pthread_cond_wait", self);
      if (result != 0) FAIL("pthread_cond_wait: %d", result);
    }
    if (g_cond_posted < seen) FAIL("pthread_cond_wait: posts went backwards");
    seen = g_cond_posted;
  }
  if (pthread_mutex_unlock(&g_cond_mutex) != 0) FAIL("cond mutex: unlock failed");
  atomic_fetch_add(&g_finished, 1);
}

/* Contends with the main thread, which holds the lock across stops. */
static void mutex_taker(void* unused) {
  (void)unused;
  while (!atomic_load(&g_done)) {
    pthread_t self = pthread_self();
    int result = pthread_mutex_lock(&g_contended);
    same_thread("pthread_mutex_lock", self);
    if (result != 0) FAIL("pthread_mutex_lock: %d", result);
    ++g_contended_count;
    result = pthread_mutex_unlock(&g_contended);
    if (result != 0) FAIL("pthread_mutex_unlock: %d (not the locking thread?)", result);
  }
  atomic_fetch_add(&g_finished, 1);
}

static void poller(void* unused) {
  (void)unused;
  while (!atomic_load(&g_done)) {
    struct pollfd fd = {g_poll_pipe[0], POLLIN, 0};
    pthread_t self = pthread_self();
    errno = ERRNO_SENTINEL;
    int result = poll(&fd, 1, -1);
    same_thread("poll", self);
    if (result == 1) {
      char byte;
      if (!(fd.revents & POLLIN) || errno != ERRNO_SENTINEL || read(g_poll_pipe[0], &byte, 1) != 1)
        FAIL("poll: ready with revents %x errno %d", fd.revents, errno);
      atomic_fetch_add(&g_poll_ready, 1);
    } else if (result == -1 && errno == EINTR) {
      atomic_fetch_add(&g_poll_eintr, 1);
    } else {
      FAIL("poll: %d errno %d", result, errno);
    }
  }
  atomic_fetch_add(&g_finished, 1);
}

static void sleeper(void* unused) {
  (void)unused;
  while (!atomic_load(&g_done)) {
    struct timespec request = {0, 500000}, remaining = {0, 0};
    pthread_t self = pthread_self();
    errno = ERRNO_SENTINEL;
    int result = nanosleep(&request, &remaining);
    same_thread("nanosleep", self);
    if (result == -1 && errno == EINTR) {
      /* the kernel reports what is left, its timer slack included */
      if (remaining.tv_sec != 0 || remaining.tv_nsec > request.tv_nsec + 1000000)
        FAIL("nanosleep: remaining %ld ns of %ld", remaining.tv_nsec, request.tv_nsec);
      atomic_fetch_add(&g_sleep_eintr, 1);
    } else if (result != 0 || errno != ERRNO_SENTINEL) {
      FAIL("nanosleep: %d errno %d", result, errno);
    }
    atomic_fetch_add(&g_sleeps, 1);
  }
  atomic_fetch_add(&g_finished, 1);
}

/* Allocates shared and private objects and runs shared collections. */
static void collector(void* unused) {
  (void)unused;
  void* keep = NULL;
  usgc_handle handle = usgc_handle_new(NULL);
  while (!atomic_load(&g_done)) {
    for (int i = 0; i < 100; ++i) {
      unsigned char* shared = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 96, USGC_GOROUTINE_SHARED);
      unsigned char* private_ = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 48, USGC_GOROUTINE_PRIVATE);
      if (shared == NULL || private_ == NULL) {
        FAIL("collector: allocation failed");
        break;
      }
      shared[95] = 7;
      keep = shared;
    }
    usgc_handle_delete(handle);
    handle = usgc_handle_new(keep);
    if (usgc_gc_collect(USGC_GC_SHARED) != 0) FAIL("usgc_gc_collect failed");
    unsigned char* kept = usgc_handle_get(handle);
    if (kept == NULL || kept[95] != 7) FAIL("collector: a rooted object changed");
    atomic_fetch_add(&g_collections, 1);
  }
  usgc_handle_delete(handle);
  atomic_fetch_add(&g_finished, 1);
}

static uint64_t now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void post_message(uint64_t message) {
  if (write(g_read_pipe[1], &message, sizeof message) != sizeof message) FAIL("write");
  pthread_mutex_lock(&g_cond_mutex);
  ++g_cond_posted;
  pthread_cond_signal(&g_cond);
  pthread_mutex_unlock(&g_cond_mutex);
}

int main(void) {
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0 || pipe(g_read_pipe) != 0 || pipe(g_poll_pipe) != 0) return 2;
  void (*bodies[])(void*) = {reader, cond_waiter, mutex_taker, poller, sleeper, collector};
  const int goroutines = (int)(sizeof bodies / sizeof bodies[0]);
  for (int i = 0; i < goroutines; ++i)
    if (usgc_go(bodies[i], NULL, NULL) != 0) return 2;

  uint64_t message = 0;
  const uint64_t collections_deadline = now_ns() + COLLECTION_WAIT_NS;
  for (int i = 0; i < STOPS || (atomic_load(&g_collections) < MIN_COLLECTIONS &&
                                now_ns() < collections_deadline);
       ++i) {
    int hold = i % 3 == 0; /* the mutex taker blocks in the kernel across this stop */
    if (hold) pthread_mutex_lock(&g_contended);
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) != 0) FAIL("stop %d failed", i);
    if (usgc_start_the_world() != 0) FAIL("start %d failed", i);
    if (hold) pthread_mutex_unlock(&g_contended);
    if (message < MESSAGES && i % 2 == 0) post_message(message++);
    if (i % 5 == 0 && write(g_poll_pipe[1], "x", 1) != 1) FAIL("write");
  }
  while (message < MESSAGES) post_message(message++);
  atomic_store(&g_done, 1);
  if (write(g_poll_pipe[1], "x", 1) != 1) FAIL("write");
  uint64_t deadline = now_ns() + 120000000000ull;
  while (atomic_load(&g_finished) < goroutines || usgc_goroutine_count() != 0) {
    if (now_ns() > deadline) {
      FAIL("only %d of %d goroutines finished", atomic_load(&g_finished), goroutines);
      return 1;
    }
    if (write(g_poll_pipe[1], "x", 1) != 1) FAIL("write"); /* wakes a poller that re-polled */
    usleep(2000);
  }
  usgc_runtime_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_RUNTIME_STATS_VERSION;
  usgc_runtime_get_stats(&stats);
  if (stats.stops < STOPS) FAIL("only %lu stops", (unsigned long)stats.stops);
  if (atomic_load(&g_collections) < MIN_COLLECTIONS)
    FAIL("only %ld collections ran in %llu s of stops", atomic_load(&g_collections),
         COLLECTION_WAIT_NS / 1000000000ull);
  printf(
      "stops=%lu collections=%ld poll_ready=%ld poll_eintr=%ld sleeps=%ld sleep_eintr=%ld "
      "mutex=%lu threads=%lu ttsp_max_us=%lu\n",
      (unsigned long)stats.stops, atomic_load(&g_collections), atomic_load(&g_poll_ready),
      atomic_load(&g_poll_eintr), atomic_load(&g_sleeps), atomic_load(&g_sleep_eintr),
      (unsigned long)g_contended_count, (unsigned long)stats.worker_threads,
      (unsigned long)(stats.time_to_safepoint_max_ns / 1000));
  if (usgc_shutdown() != 0) FAIL("usgc_shutdown refused");
  return atomic_load(&g_failures) == 0 ? 0 : 1;
}
