/* preempted_goroutine_keeps_thread.c — goroutines of usgc_go that spin in plain C code (no usgc
 * call, no poll) are preempted asynchronously and must come back on the thread they were running
 * on: the C compiler keeps errno's address (and any thread-local address) in a register across
 * code it sees no switch in, so a goroutine moved to another thread there would read and write
 * the old thread's errno. Three spinners on 2 Ps: none can finish before all three have started,
 * which takes preemptions; meanwhile the main thread stops the world over and over. Each spinner
 * checks, after about 300 ms of spinning, that it still runs on the thread it began on and that
 * the errno it set is still there. Prints "keeps thread ok preemptions=N stops=M" and exits 0.
 * Public headers only. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "usgc/usgc.h"

#define SPINNERS 3
#define SPIN_NS 300000000ull
#define ERRNO_BASE 5150

static atomic_int g_started, g_finished, g_failures;

static uint64_t now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void spinner(void* argument) {
  const int index = (int)(intptr_t)argument;
  const long thread = syscall(SYS_gettid);
  errno = ERRNO_BASE + index;
  atomic_fetch_add(&g_started, 1);
  /* Three spinners, two Ps: the third starts only after one of these was preempted. */
  while (atomic_load(&g_started) < SPINNERS) {
  }
  const uint64_t until = now_ns() + SPIN_NS;
  uint64_t rounds = 0;
  while (now_ns() < until) ++rounds;
  const long thread_after = syscall(SYS_gettid);
  const int errno_after = errno;
  if (thread_after != thread || errno_after != ERRNO_BASE + index) {
    fprintf(stderr,
            "spinner %d: began on thread %ld with errno %d, ended on thread %ld with errno %d "
            "(%lu rounds)\n",
            index, thread, ERRNO_BASE + index, thread_after, errno_after, (unsigned long)rounds);
    atomic_fetch_add(&g_failures, 1);
  }
  atomic_fetch_add(&g_finished, 1);
}

int main(void) {
  alarm(120); /* a hang ends the test (SIGALRM's default action) */
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0) return 2;
  for (int i = 0; i < SPINNERS; ++i)
    if (usgc_go(spinner, (void*)(intptr_t)i, NULL) != 0) return 2;
  unsigned long stops = 0;
  while (atomic_load(&g_finished) < SPINNERS) {
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) != 0 || usgc_start_the_world() != 0) {
      fprintf(stderr, "stop %lu failed\n", stops);
      return 1;
    }
    ++stops;
    usleep(1000);
  }
  while (usgc_goroutine_count() != 0) usleep(1000);
  usgc_runtime_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_RUNTIME_STATS_VERSION;
  usgc_runtime_get_stats(&stats);
  if (stats.preemptions == 0) {
    fprintf(stderr, "no goroutine was preempted\n");
    return 1;
  }
  if (usgc_shutdown() != 0) return 1;
  if (atomic_load(&g_failures) != 0) return 1;
  printf("keeps thread ok preemptions=%lu stops=%lu\n", (unsigned long)stats.preemptions, stops);
  return 0;
}
