/* tests/runtime/programs/blocked_signals.c — a program that blocks every signal before it starts
 * usgc and its threads, as servers that take signals in one sigwait thread do: every thread it
 * creates (and every thread usgc creates from them) inherits the mask. Goroutines and an attached
 * thread allocate and poll, and another attached thread blocks in read(2) unbracketed, while the
 * main thread stops the world over and over. Before usgc unblocked the signals its threads need
 * (SIGSEGV for the poll fault, SIGURG for asynchronous safepoints), the first armed poll killed
 * the process with SIGSEGV and a stop waited for good on the blocked reader. Each attached thread
 * must get its own mask back when it detaches. Prints "blocked signals ok stops=N". Run by
 * tests/runtime/c_api.test.sh. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <usgc/usgc.h>

static atomic_int g_stop = 0;
static atomic_int g_goroutines_done = 0;
static atomic_int g_ready = 0;
static int g_pipe[2];

static void allocate_and_poll(void) {
  USGC_ROOTS(roots, 1);
  while (!atomic_load(&g_stop)) {
    roots[0] = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64, USGC_GOROUTINE_PRIVATE);
    if (roots[0] == NULL) exit(2);
    usgc_safepoint_poll();
  }
}

static void goroutine(void* arg) {
  (void)arg;
  allocate_and_poll();
  atomic_fetch_add(&g_goroutines_done, 1);
}

/* 1 when the calling thread still blocks every signal the test looks at (its mask is its own). */
static int mask_is_the_programs(void) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, NULL, &mask);
  return sigismember(&mask, SIGSEGV) && sigismember(&mask, SIGURG) && sigismember(&mask, SIGUSR1);
}

static void* attached_allocator(void* arg) {
  (void)arg;
  if (usgc_attach_thread() != 0) exit(2);
  atomic_fetch_add(&g_ready, 1);
  allocate_and_poll();
  if (usgc_detach_thread() != 0) exit(2);
  return (void*)(long)mask_is_the_programs();
}

static void* attached_reader(void* arg) {
  (void)arg;
  if (usgc_attach_thread() != 0) exit(2);
  atomic_fetch_add(&g_ready, 1);
  char byte;
  if (read(g_pipe[0], &byte, 1) != 1) exit(2); /* blocked, not bracketed */
  if (usgc_detach_thread() != 0) exit(2);
  return (void*)(long)mask_is_the_programs();
}

int main(void) {
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGALRM); /* all but the test's own alarm: a hang becomes SIGALRM */
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  alarm(120);
  if (pipe(g_pipe) != 0) return 2;
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0) return 2;
  for (int i = 0; i < 2; i++)
    if (usgc_go(goroutine, NULL, NULL) != 0) return 2;
  pthread_t allocator, reader;
  pthread_create(&allocator, NULL, attached_allocator, NULL);
  pthread_create(&reader, NULL, attached_reader, NULL);
  while (atomic_load(&g_ready) < 2) usleep(1000);
  usleep(20000); /* the reader is inside read(2) */
  int stops = 0;
  for (int i = 0; i < 300; i++) {
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) != 0 || usgc_start_the_world() != 0) {
      printf("stop %d failed\n", i);
      return 1;
    }
    stops++;
  }
  atomic_store(&g_stop, 1);
  if (write(g_pipe[1], "x", 1) != 1) return 2;
  void* allocator_mask;
  void* reader_mask;
  pthread_join(allocator, &allocator_mask);
  pthread_join(reader, &reader_mask);
  while (atomic_load(&g_goroutines_done) < 2) usleep(1000);
  if (!allocator_mask || !reader_mask) {
    printf("an attached thread did not get its signal mask back when it detached\n");
    return 1;
  }
  int status = usgc_shutdown();
  if (status != 0) {
    printf("usgc_shutdown: %d\n", status);
    return 1;
  }
  printf("blocked signals ok stops=%d\n", stops);
  return 0;
}
