/* tests/runtime/programs/attached_thread_exit.c — embedder threads that end while attached, as a
 * program written from the public headers would let them: a thread attaches, allocates, and then
 * returns from its start routine without usgc_detach_thread, calls pthread_exit, or is cancelled
 * (blocked in read(2) unbracketed, bracketed by usgc_enter_native, or before the monitor retook its
 * P), while another thread stops the world back to back. Before usgc detached such threads at
 * their exit, each kept its P: the next stop waited forever (a warning every second) and
 * usgc_shutdown said EBUSY for good. Passes when every stop, the collection and the shutdown after
 * the threads are gone succeed; prints "attached exit ok threads=N stops=M". Run by
 * tests/runtime/c_api.test.sh. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <usgc/usgc.h>

enum ending { RETURNS, PTHREAD_EXIT, CANCEL_BLOCKED, CANCEL_BRACKETED, CANCEL_AT_ONCE, DETACHES };
#define ENDINGS 6
#define ROUNDS 8

static int g_pipe[2];
static atomic_int g_stop = 0;
static atomic_long g_stops = 0;
static atomic_int g_attached = 0;

static void* attached_thread(void* arg) {
  enum ending how = (enum ending)(long)arg;
  if (usgc_attach_thread() != 0) {
    fprintf(stderr, "attach failed\n");
    exit(2);
  }
  USGC_ROOTS(roots, 1);
  for (int i = 0; i < 1000; i++) {
    roots[0] = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64,
                                i % 4 ? USGC_GOROUTINE_PRIVATE : USGC_GOROUTINE_SHARED);
    if (roots[0] == NULL) exit(2);
  }
  atomic_fetch_add(&g_attached, 1);
  char c;
  switch (how) {
    case RETURNS:
      return NULL; /* still attached */
    case PTHREAD_EXIT:
      pthread_exit(NULL);
    case CANCEL_BLOCKED:
    case CANCEL_AT_ONCE:
      for (;;) (void)read(g_pipe[0], &c, 1); /* a cancellation point, not bracketed */
    case CANCEL_BRACKETED:
      usgc_enter_native();
      for (;;) (void)read(g_pipe[0], &c, 1);
    case DETACHES:
      usgc_detach_thread();
      return NULL;
  }
  return NULL;
}

static void* stopper(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) == 0) {
      usgc_start_the_world();
      atomic_fetch_add(&g_stops, 1);
    }
  }
  return NULL;
}

int main(void) {
  alarm(120); /* a hang becomes SIGALRM */
  if (pipe(g_pipe) != 0) return 2;
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0) return 2;
  pthread_t stop_thread;
  pthread_create(&stop_thread, NULL, stopper, NULL);
  int threads = 0;
  for (int round = 0; round < ROUNDS; round++) {
    pthread_t t[ENDINGS];
    int before = atomic_load(&g_attached);
    for (int how = 0; how < ENDINGS; how++)
      pthread_create(&t[how], NULL, attached_thread, (void*)(long)how);
    while (atomic_load(&g_attached) < before + ENDINGS) usleep(100);
    usleep(round % 2 ? 2000 : 0); /* 2 ms: the monitor retakes the blocked threads' Ps first */
    pthread_cancel(t[CANCEL_AT_ONCE]);
    pthread_cancel(t[CANCEL_BLOCKED]);
    pthread_cancel(t[CANCEL_BRACKETED]);
    for (int how = 0; how < ENDINGS; how++) pthread_join(t[how], NULL);
    threads += ENDINGS;
  }
  atomic_store(&g_stop, 1);
  pthread_join(stop_thread, NULL);
  usgc_stop_info info;
  if (usgc_stop_the_world(&info) != 0 || usgc_start_the_world() != 0) {
    printf("a stop after the threads ended failed\n");
    return 1;
  }
  if (usgc_attach_thread() != 0 || usgc_gc_collect(USGC_GC_SHARED) != 0 ||
      usgc_detach_thread() != 0) {
    printf("a collection after the threads ended failed\n");
    return 1;
  }
  if (usgc_goroutine_count() != 0) {
    printf("%llu goroutines still live after every attached thread ended\n",
           (unsigned long long)usgc_goroutine_count());
    return 1;
  }
  int status = usgc_shutdown();
  if (status != 0) {
    printf("usgc_shutdown: %s\n", strerror(status));
    return 1;
  }
  printf("attached exit ok threads=%d stops=%ld\n", threads, (long)atomic_load(&g_stops));
  return 0;
}
