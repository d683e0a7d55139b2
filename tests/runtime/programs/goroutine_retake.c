/* goroutine_retake.c — a goroutine of usgc_go blocked in a library call does not keep its P.
 * With 2 Ps, five goroutines block, unbracketed, in read(2) on a pipe, pthread_cond_wait,
 * pthread_mutex_lock, poll(2) without a timeout and nanosleep (2 s, with a remainder pointer);
 * then WORKERS goroutines that allocate and yield must all run to completion while every one of
 * those calls is still blocked (the runtime retakes each blocked thread's P). Only then does the
 * test write the pipes, signal the condition and unlock the mutex; each blocked goroutine must
 * get the result it would get without usgc (errno untouched on success, the call ending on the
 * thread that began it), get a P back and go on allocating and yielding correctly.
 * Prints "goroutine retake ok workers=N threads=T" and exits 0; 1 on failure, 2 on setup error.
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

#define WORKERS 400
#define BLOCKERS 5
#define ERRNO_SENTINEL 4141

static int g_read_pipe[2], g_poll_pipe[2];
static pthread_mutex_t g_cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_cond_posted; /* under g_cond_mutex */
static pthread_mutex_t g_held_mutex = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_blocking, g_returned, g_finished, g_workers_done, g_failures;
static atomic_int g_sleep_may_end; /* set once the workers are done: the sleep must outlast them */

#define FAIL(...)                     \
  do {                                \
    fprintf(stderr, __VA_ARGS__);     \
    fputc('\n', stderr);              \
    atomic_fetch_add(&g_failures, 1); \
  } while (0)

static uint64_t now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* After its call returned: the goroutine has a P again and runs normally. */
static void work_after_return(const char* who) {
  for (int i = 0; i < 200; ++i) {
    unsigned char* bytes = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64, USGC_GOROUTINE_PRIVATE);
    if (bytes == NULL) {
      FAIL("%s: allocation after the call failed", who);
      return;
    }
    bytes[63] = (unsigned char)i;
    if (i % 50 == 0) usgc_yield();
  }
  atomic_fetch_add(&g_finished, 1);
}

static void check_same_thread(const char* who, pthread_t before) {
  if (!pthread_equal(before, pthread_self())) FAIL("%s: the call ended on another thread", who);
}

static void reader(void* unused) {
  (void)unused;
  char byte = 0;
  pthread_t self = pthread_self();
  atomic_fetch_add(&g_blocking, 1);
  errno = ERRNO_SENTINEL;
  ssize_t got = read(g_read_pipe[0], &byte, 1);
  int saved = errno;
  check_same_thread("read", self);
  if (got != 1 || byte != 'r' || saved != ERRNO_SENTINEL)
    FAIL("read: returned %zd byte '%c' errno %d", got, byte, saved);
  atomic_fetch_add(&g_returned, 1);
  work_after_return("read");
}

static void cond_waiter(void* unused) {
  (void)unused;
  pthread_t self = pthread_self();
  pthread_mutex_lock(&g_cond_mutex);
  atomic_fetch_add(&g_blocking, 1);
  while (g_cond_posted == 0) {
    errno = ERRNO_SENTINEL;
    int result = pthread_cond_wait(&g_cond, &g_cond_mutex);
    check_same_thread("pthread_cond_wait", self);
    if (result != 0 || errno != ERRNO_SENTINEL)
      FAIL("pthread_cond_wait: %d errno %d", result, errno);
  }
  pthread_mutex_unlock(&g_cond_mutex); /* owned by this thread: it must be the same one */
  atomic_fetch_add(&g_returned, 1);
  work_after_return("pthread_cond_wait");
}

static void mutex_waiter(void* unused) {
  (void)unused;
  pthread_t self = pthread_self();
  atomic_fetch_add(&g_blocking, 1);
  int result = pthread_mutex_lock(&g_held_mutex);
  check_same_thread("pthread_mutex_lock", self);
  if (result != 0) FAIL("pthread_mutex_lock: %d", result);
  result = pthread_mutex_unlock(&g_held_mutex);
  if (result != 0) FAIL("pthread_mutex_unlock: %d (the lock moved threads?)", result);
  atomic_fetch_add(&g_returned, 1);
  work_after_return("pthread_mutex_lock");
}

static void poller(void* unused) {
  (void)unused;
  pthread_t self = pthread_self();
  struct pollfd fd = {g_poll_pipe[0], POLLIN, 0};
  atomic_fetch_add(&g_blocking, 1);
  errno = ERRNO_SENTINEL;
  int result = poll(&fd, 1, -1); /* re-issued after a signal's EINTR: never seen by us */
  int saved = errno;
  check_same_thread("poll", self);
  char byte = 0;
  if (result != 1 || !(fd.revents & POLLIN) || saved != ERRNO_SENTINEL ||
      read(g_poll_pipe[0], &byte, 1) != 1 || byte != 'p')
    FAIL("poll: returned %d revents %x errno %d byte '%c'", result, fd.revents, saved, byte);
  atomic_fetch_add(&g_returned, 1);
  work_after_return("poll");
}

static void sleeper(void* unused) {
  (void)unused;
  pthread_t self = pthread_self();
  atomic_fetch_add(&g_blocking, 1);
  for (;;) {
    struct timespec request = {0, 200000000}, remaining = {0, 0};
    uint64_t start = now_ns();
    errno = ERRNO_SENTINEL;
    int result = nanosleep(&request, &remaining); /* re-issued with what the kernel left */
    uint64_t slept = now_ns() - start;
    check_same_thread("nanosleep", self);
    if (result != 0 || errno != ERRNO_SENTINEL) FAIL("nanosleep: %d errno %d", result, errno);
    if (slept < 200000000u)
      FAIL("nanosleep: returned 0 after %lu ns of 200 ms", (unsigned long)slept);
    if (atomic_load(&g_sleep_may_end)) break;
  }
  atomic_fetch_add(&g_returned, 1);
  work_after_return("nanosleep");
}

static void worker(void* unused) {
  (void)unused;
  for (int i = 0; i < 20; ++i) {
    void* array = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 256, USGC_GOROUTINE_PRIVATE);
    if (array == NULL) FAIL("worker: allocation failed");
    usgc_yield();
  }
  atomic_fetch_add(&g_workers_done, 1);
}

static int wait_for(atomic_int* counter, int value, int seconds) {
  uint64_t deadline = now_ns() + (uint64_t)seconds * 1000000000u;
  while (atomic_load(counter) < value) {
    if (now_ns() > deadline) return 0;
    usleep(1000);
  }
  return 1;
}

int main(void) {
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0 || pipe(g_read_pipe) != 0 || pipe(g_poll_pipe) != 0) return 2;
  pthread_mutex_lock(&g_held_mutex);
  void (*blockers[BLOCKERS])(void*) = {reader, cond_waiter, mutex_waiter, poller, sleeper};
  for (int i = 0; i < BLOCKERS; ++i)
    if (usgc_go(blockers[i], NULL, NULL) != 0) return 2;
  /* Five goroutines blocked on two Ps: each blocker after the first two ran only because a P was
   * retaken from a blocked one. */
  if (!wait_for(&g_blocking, BLOCKERS, 120)) {
    FAIL("only %d of %d blocking goroutines started", atomic_load(&g_blocking), BLOCKERS);
    return 1;
  }
  for (int i = 0; i < WORKERS; ++i)
    if (usgc_go(worker, NULL, NULL) != 0) return 2;
  if (!wait_for(&g_workers_done, WORKERS, 120)) {
    FAIL("only %d of %d workers finished while the others blocked: a blocked goroutine kept its P",
         atomic_load(&g_workers_done), WORKERS);
    return 1;
  }
  if (atomic_load(&g_returned) != 0) FAIL("a blocked call returned before it was released");
  atomic_store(&g_sleep_may_end, 1);
  if (write(g_read_pipe[1], "r", 1) != 1 || write(g_poll_pipe[1], "p", 1) != 1) return 2;
  pthread_mutex_lock(&g_cond_mutex);
  g_cond_posted = 1;
  pthread_cond_signal(&g_cond);
  pthread_mutex_unlock(&g_cond_mutex);
  pthread_mutex_unlock(&g_held_mutex);
  if (!wait_for(&g_finished, BLOCKERS, 120))
    FAIL("only %d of %d released goroutines finished", atomic_load(&g_finished), BLOCKERS);
  for (uint64_t deadline = now_ns() + 60000000000ull; usgc_goroutine_count() != 0;) {
    if (now_ns() > deadline) break;
    usleep(1000);
  }
  usgc_runtime_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_RUNTIME_STATS_VERSION;
  usgc_runtime_get_stats(&stats);
  if (usgc_shutdown() != 0) FAIL("usgc_shutdown refused: a goroutine is still alive");
  if (atomic_load(&g_failures) != 0) return 1;
  printf("goroutine retake ok workers=%d threads=%lu\n", WORKERS,
         (unsigned long)stats.worker_threads);
  return 0;
}
