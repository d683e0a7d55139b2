/* stop_warning.c — when nothing can stop a thread, the stop says so: an attached thread blocks
 * SIGURG after attaching (attaching unblocks it, so blocking it then is the one way to keep
 * asynchronous safepoints from reaching the thread) and spins without polling for 1.5 s; a
 * stop-the-world requested meanwhile prints, after one second, one line naming the thread (its
 * kernel id and name) and a remedy, and completes once the thread polls. Public headers only.
 * Prints "stopped after_ms=N tid=T"; the test checks stderr for the warning. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "usgc/usgc.h"

static atomic_int g_spinning;
static atomic_int g_tid;

static double now_seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + now.tv_nsec / 1e9;
}

static void* stubborn(void* unused) {
  (void)unused;
  pthread_setname_np(pthread_self(), "stubborn-spin");
  if (usgc_attach_thread() != 0) return NULL;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGURG);
  pthread_sigmask(SIG_BLOCK, &mask, NULL);
  atomic_store(&g_tid, (int)syscall(SYS_gettid));
  atomic_store(&g_spinning, 1);
  double until = now_seconds() + 1.5;
  while (now_seconds() < until) {
  }
  usgc_safepoint_poll();
  usgc_detach_thread();
  return NULL;
}

int main(void) {
  if (usgc_init(NULL) != 0) return 2;
  pthread_t thread;
  pthread_create(&thread, NULL, stubborn, NULL);
  while (!atomic_load(&g_spinning)) usleep(1000);
  usleep(20000);
  double start = now_seconds();
  if (usgc_stop_the_world(NULL) != 0) return 1;
  double waited = now_seconds() - start;
  usgc_start_the_world();
  pthread_join(thread, NULL);
  printf("stopped after_ms=%d tid=%d\n", (int)(waited * 1000), atomic_load(&g_tid));
  return usgc_shutdown() == 0 ? 0 : 1;
}
