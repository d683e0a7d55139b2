/* retake_blocked.c — a blocked thread does not keep a P. With one P, attached thread A sleeps
 * 400 ms in nanosleep (a call the kernel does not restart after a signal handler) and attached
 * thread B then blocks in read(2) on a pipe (one it restarts), neither bracketed by
 * usgc_enter_native. Threads B and C must still attach and run while A sleeps: the runtime retakes
 * each blocked thread's P. A's nanosleep must return 0 after its full time (re-issued, not EINTR),
 * B's read its byte. Prints "retake ok"; exits 1 on any failure. Public headers only. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "usgc/usgc.h"

static atomic_int g_a_attached, g_a_done, g_b_attached, g_c_done, g_a_done_when_c_ran;
static int g_pipe[2];
static int g_failures;

static uint64_t now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void* sleeper(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  atomic_store(&g_a_attached, 1);
  struct timespec request = {0, 400000000}, remaining = {0, 0};
  uint64_t start = now_ns();
  errno = 0;
  int result = nanosleep(&request, &remaining);
  uint64_t slept = now_ns() - start;
  if (result != 0 || errno != 0) {
    fprintf(stderr, "nanosleep: %d errno %d\n", result, errno);
    g_failures++;
  }
  if (slept < 400000000u) {
    fprintf(stderr, "nanosleep returned 0 after only %lu ns of 400 ms\n", (unsigned long)slept);
    g_failures++;
  }
  atomic_store(&g_a_done, 1);
  usgc_detach_thread();
  return NULL;
}

static void* reader(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  atomic_store(&g_b_attached, 1);
  char byte = 0;
  ssize_t got = read(g_pipe[0], &byte, 1);
  if (got != 1 || byte != 'b') {
    fprintf(stderr, "read: %zd errno %d\n", got, errno);
    g_failures++;
  }
  usgc_detach_thread();
  return NULL;
}

static void* worker(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  void* array = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 128, USGC_GOROUTINE_PRIVATE);
  if (array == NULL) g_failures++;
  atomic_store(&g_a_done_when_c_ran, atomic_load(&g_a_done));
  usgc_detach_thread();
  atomic_store(&g_c_done, 1);
  return NULL;
}

int main(void) {
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 1;
  if (usgc_init(&config) != 0 || pipe(g_pipe) != 0) return 2;
  pthread_t a, b, c;
  pthread_create(&a, NULL, sleeper, NULL);
  while (!atomic_load(&g_a_attached)) usleep(100);
  pthread_create(&b, NULL, reader, NULL);
  while (!atomic_load(&g_b_attached)) usleep(100);
  int a_done_when_b_attached = atomic_load(&g_a_done);
  pthread_create(&c, NULL, worker, NULL);
  while (!atomic_load(&g_c_done)) usleep(100);
  if (write(g_pipe[1], "b", 1) != 1) return 2;
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  pthread_join(c, NULL);
  if (a_done_when_b_attached || atomic_load(&g_a_done_when_c_ran)) {
    fprintf(stderr, "B or C ran only after A's sleep ended: A kept the only P while blocked\n");
    g_failures++;
  }
  if (usgc_shutdown() != 0) g_failures++;
  if (g_failures == 0) printf("retake ok\n");
  return g_failures == 0 ? 0 : 1;
}
