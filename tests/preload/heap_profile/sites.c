/* tests/preload/heap_profile/sites.c — a program with known allocation sites, run under
 * LD_PRELOAD=libusgc_preload.so by heap_profile.test.sh. Each site is its own non-inlined
 * function (the test finds them by name: build with -rdynamic); the figures the test expects
 * are the constants below. No stdio: nothing but the sites allocates on purpose.
 *   profile   keeps site_live_large's and site_live_small's blocks (and a thread's) live at exit,
 *             frees everything site_freed made, forks a child that allocates and _exits
 *   churn     site_churn allocates and frees 64 KiB blocks, 1 GiB in all
 *   leaks     site_leak drops 10 blocks of 1234 bytes; everything else is freed
 *   dump      like profile, then usgc_heap_profile_write(argv[2]) before exit: exit 5 when it
 *             says ENOTSUP (USGC_PROF off) */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <usgc/usgc.h>
/* Resolved from the preloaded library at run time: the program links without usgc. */
#pragma weak usgc_heap_profile_write

enum {
  kLargeCount = 2000,
  kLargeSize = 4000, /* 8 000 000 bytes live */
  kSmallCount = 40000,
  kSmallSize = 100, /* 4 000 000 bytes live */
  kFreedCount = 50000,
  kFreedSize = 200, /* 10 000 000 bytes allocated, none live */
  kThreadCount = 1000,
  kThreadSize = 3000, /* 3 000 000 bytes live, from a thread that exited */
  kChurnCount = 16384,
  kChurnSize = 65536, /* 1 GiB allocated, none live */
  kLeakCount = 10,
  kLeakSize = 1234, /* 12 340 bytes leaked */
};

void* large_blocks[kLargeCount];
void* small_blocks[kSmallCount];
void* thread_blocks[kThreadCount];
void* volatile g_sink;

__attribute__((noinline)) void site_live_large(void) {
  for (int i = 0; i < kLargeCount; ++i) large_blocks[i] = malloc(kLargeSize);
}
__attribute__((noinline)) void site_live_small(void) {
  for (int i = 0; i < kSmallCount; ++i) small_blocks[i] = malloc(kSmallSize);
}
__attribute__((noinline)) void site_freed(void) {
  static void* volatile blocks[kFreedCount];
  for (int i = 0; i < kFreedCount; ++i) blocks[i] = malloc(kFreedSize);
  for (int i = 0; i < kFreedCount; ++i) free(blocks[i]);
}
__attribute__((noinline)) void site_thread(void) {
  for (int i = 0; i < kThreadCount; ++i) thread_blocks[i] = malloc(kThreadSize);
}
__attribute__((noinline)) void site_churn(void) {
  for (int i = 0; i < kChurnCount; ++i) {
    void* p = malloc(kChurnSize);
    memset(p, 1, 64);
    g_sink = p;
    free(p);
  }
}
__attribute__((noinline)) void site_leak(void) {
  for (int i = 0; i < kLeakCount; ++i) {
    void* p = malloc(kLeakSize);
    memset(p, 0, kLeakSize);
    g_sink = p; /* dropped: the next iteration overwrites it */
  }
  g_sink = NULL;
}

static void* thread_main(void* unused) {
  (void)unused;
  site_thread();
  return NULL;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "profile";
  if (strcmp(mode, "churn") == 0) {
    site_churn();
    return 0;
  }
  if (strcmp(mode, "leaks") == 0) {
    site_leak();
    site_freed();
    site_live_small();
    for (int i = 0; i < kSmallCount; ++i) free(small_blocks[i]);
    return 0;
  }
  site_live_large();
  site_live_small();
  site_freed();
  pthread_t thread;
  if (pthread_create(&thread, NULL, thread_main, NULL) != 0) return 2;
  pthread_join(thread, NULL);
  pid_t child = fork(); /* the child allocates through the profiler's state and exits */
  if (child == 0) {
    site_freed();
    _exit(0);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || status != 0) return 3;
  if (strcmp(mode, "dump") == 0 && argc > 2) {
    if (usgc_heap_profile_write == NULL) return 6; /* not run under usgc */
    int error = usgc_heap_profile_write(argv[2]);
    return error == 0 ? 0 : error == ENOTSUP ? 5 : 4;
  }
  return 0;
}
