/* blocked_stops.c — thousands of stop-the-worlds and handshakes while attached threads and a
 * goroutine block, unbracketed, in read on a pipe, pthread_cond_wait, nanosleep and poll, and an
 * attached thread and a goroutine spin without ever polling. Every stop must complete (asynchronous
 * safepoints); every blocked call must give the result it would give without usgc: reads get every
 * byte in order, condition waits return 0 and see every signal, nanosleep and poll return 0/ready
 * or -1 with errno EINTR (they are never restarted after a signal handler); the spinning thread's
 * registers, errno and signal mask are intact. Prints "stops=N handshakes=H ..." and exits 0.
 * Public headers only. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usgc/usgc.h"

#define STOPS 3000
#define HANDSHAKES 1000
#define MESSAGES 2000

static atomic_int g_done;
static atomic_int g_failures;
static int g_read_pipe[2], g_goroutine_pipe[2], g_poll_pipe[2];
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static uint64_t g_cond_posted, g_cond_seen; /* under g_mutex */
static volatile uint64_t g_seed = 0x9e3779b97f4a7c15ull;
static atomic_long g_nanosleep_eintr, g_poll_eintr, g_poll_ready, g_spin_rounds;

#define FAIL(...)                     \
  do {                                \
    fprintf(stderr, __VA_ARGS__);     \
    fputc('\n', stderr);              \
    atomic_fetch_add(&g_failures, 1); \
  } while (0)

/* Reads MESSAGES sequence numbers from fd, in order, with plain read(2). */
static void read_messages(int fd, const char* who) {
  for (uint64_t expected = 0; expected < MESSAGES; ++expected) {
    uint64_t value = 0;
    ssize_t got = read(fd, &value, sizeof value);
    if (got != (ssize_t)sizeof value) {
      FAIL("%s: read returned %zd (errno %d) at message %lu", who, got, errno,
           (unsigned long)expected);
      return;
    }
    if (value != expected) {
      FAIL("%s: message %lu arrived as %lu", who, (unsigned long)expected, (unsigned long)value);
      return;
    }
  }
}

static void* reader_thread(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  read_messages(g_read_pipe[0], "attached reader");
  usgc_detach_thread();
  return NULL;
}

static void goroutine_reader(void* done) {
  read_messages(g_goroutine_pipe[0], "goroutine reader");
  atomic_store((atomic_int*)done, 1);
}

static void* cond_thread(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  pthread_mutex_lock(&g_mutex);
  while (g_cond_seen < MESSAGES) {
    while (g_cond_posted == g_cond_seen) {
      int result = pthread_cond_wait(&g_cond, &g_mutex);
      if (result != 0) FAIL("pthread_cond_wait returned %d", result);
    }
    g_cond_seen = g_cond_posted;
  }
  pthread_mutex_unlock(&g_mutex);
  usgc_detach_thread();
  return NULL;
}

static void* sleep_thread(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  while (!atomic_load(&g_done)) {
    struct timespec request = {0, 300000}, remaining = {0, 0};
    errno = 0;
    int result = nanosleep(&request, &remaining);
    if (result == -1) {
      if (errno != EINTR) FAIL("nanosleep: -1 with errno %d", errno);
      /* the kernel reports what is left of the timer, including its slack (50 us by default) */
      if (remaining.tv_sec != 0 || remaining.tv_nsec > request.tv_nsec + 1000000)
        FAIL("nanosleep: remaining %ld ns of %ld", remaining.tv_nsec, request.tv_nsec);
      atomic_fetch_add(&g_nanosleep_eintr, 1);
    } else if (result != 0) {
      FAIL("nanosleep returned %d", result);
    }
  }
  usgc_detach_thread();
  return NULL;
}

static void* poll_thread(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  while (!atomic_load(&g_done)) {
    struct pollfd fd = {g_poll_pipe[0], POLLIN, 0};
    errno = 0;
    int result = poll(&fd, 1, 2);
    if (result == -1) {
      if (errno != EINTR) FAIL("poll: -1 with errno %d", errno);
      atomic_fetch_add(&g_poll_eintr, 1);
    } else if (result == 1) {
      char byte;
      if (!(fd.revents & POLLIN) || read(g_poll_pipe[0], &byte, 1) != 1) FAIL("poll: bad ready");
      atomic_fetch_add(&g_poll_ready, 1);
    } else if (result != 0) {
      FAIL("poll returned %d", result);
    }
  }
  usgc_detach_thread();
  return NULL;
}

/* Spins without polling; every round checks that values kept in registers across the loop, the
 * thread's errno and its signal mask are what they were. */
static void spin_thread_body(int own_mask);

static void* spin_thread(void* unused) {
  (void)unused;
  if (usgc_attach_thread() != 0) return NULL;
  spin_thread_body(1);
  usgc_detach_thread();
  return NULL;
}

/* own_mask: an attached thread blocks SIGUSR2 itself (its mask is its own); a goroutine runs on
 * whichever worker holds its P, so it only checks that the workers' mask is unchanged. */
static void spin_thread_body(int own_mask) {
  sigset_t mask, now;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  if (own_mask) pthread_sigmask(SIG_BLOCK, &mask, NULL);
  pthread_sigmask(SIG_BLOCK, NULL, &mask);
  while (!atomic_load(&g_done)) {
    errno = 4242;
    uint64_t a = g_seed, b = 1, c = 0;
    double d = 1.0;
    for (int i = 0; i < 1000000; ++i) { /* no call, no poll */
      a ^= a << 13;
      a ^= a >> 7;
      a ^= a << 17;
      b += a & 0xff;
      c += i;
      d += 0.5;
    }
    uint64_t expect_a = g_seed, expect_b = 1;
    for (int i = 0; i < 1000000; ++i) {
      expect_a ^= expect_a << 13;
      expect_a ^= expect_a >> 7;
      expect_a ^= expect_a << 17;
      expect_b += expect_a & 0xff;
      __asm__ volatile("" : "+r"(expect_a), "+r"(expect_b));
    }
    if (a != expect_a || b != expect_b || c != 499999500000ull || d != 500001.0)
      FAIL("spin: registers changed under the stops");
    if (errno != 4242) FAIL("spin: errno %d", errno);
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    if (sigismember(&now, SIGUSR2) != sigismember(&mask, SIGUSR2) ||
        sigismember(&now, SIGURG) != sigismember(&mask, SIGURG))
      FAIL("spin: signal mask changed");
    atomic_fetch_add(&g_spin_rounds, 1);
  }
}

/* The same loop as a goroutine of usgc_go: stopped and preempted asynchronously, it may resume
 * on another worker thread; its errno must move with it. */
static void spin_goroutine(void* done) {
  spin_thread_body(0);
  atomic_store((atomic_int*)done, 1);
}

static void count_handshake(uint32_t proc, void* counter) {
  (void)proc;
  ++*(int*)counter;
}

int main(void) {
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 8; /* one P per blocking thread: the stops, not the P hand-off, are tested here */
  if (usgc_init(&config) != 0) return 2;
  if (pipe(g_read_pipe) || pipe(g_goroutine_pipe) || pipe(g_poll_pipe)) return 2;
  atomic_int goroutine_done = 0, spin_goroutine_done = 0;
  if (usgc_go(goroutine_reader, &goroutine_done, NULL) != 0) return 2;
  if (usgc_go(spin_goroutine, &spin_goroutine_done, NULL) != 0) return 2;
  pthread_t threads[5];
  void* (*bodies[5])(void*) = {reader_thread, cond_thread, sleep_thread, poll_thread, spin_thread};
  for (int i = 0; i < 5; ++i) pthread_create(&threads[i], NULL, bodies[i], NULL);
  struct timespec settle = {0, 50000000};
  nanosleep(&settle, NULL);

  int handshake_callbacks = 0;
  uint64_t message = 0;
  for (int i = 0; i < STOPS; ++i) {
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) != 0) FAIL("stop %d failed", i);
    if (usgc_start_the_world() != 0) FAIL("start %d failed", i);
    if (i < HANDSHAKES &&
        usgc_handshake((uint32_t)(i % 8), count_handshake, &handshake_callbacks, NULL) != 0)
      FAIL("handshake %d failed", i);
    if (i % (STOPS / MESSAGES + 1) == 0 || (STOPS - i) <= (int)(MESSAGES - message)) {
      if (message < MESSAGES) {
        if (write(g_read_pipe[1], &message, sizeof message) != sizeof message ||
            write(g_goroutine_pipe[1], &message, sizeof message) != sizeof message)
          FAIL("write");
        pthread_mutex_lock(&g_mutex);
        ++g_cond_posted;
        pthread_cond_signal(&g_cond);
        pthread_mutex_unlock(&g_mutex);
        ++message;
      }
      if (i % 7 == 0 && write(g_poll_pipe[1], "x", 1) != 1) FAIL("write");
    }
  }
  while (message < MESSAGES) {
    if (write(g_read_pipe[1], &message, sizeof message) != sizeof message ||
        write(g_goroutine_pipe[1], &message, sizeof message) != sizeof message)
      FAIL("write");
    pthread_mutex_lock(&g_mutex);
    ++g_cond_posted;
    pthread_cond_signal(&g_cond);
    pthread_mutex_unlock(&g_mutex);
    ++message;
  }
  atomic_store(&g_done, 1);
  for (int i = 0; i < 5; ++i) pthread_join(threads[i], NULL);
  while (!atomic_load(&goroutine_done) || !atomic_load(&spin_goroutine_done))
    nanosleep(&settle, NULL);

  usgc_runtime_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_RUNTIME_STATS_VERSION;
  usgc_runtime_get_stats(&stats);
  if (stats.stops < STOPS || stats.handshakes < HANDSHAKES || handshake_callbacks != HANDSHAKES)
    FAIL("stats: %lu stops, %lu handshakes, %d callbacks", (unsigned long)stats.stops,
         (unsigned long)stats.handshakes, handshake_callbacks);
  if (atomic_load(&g_spin_rounds) == 0) FAIL("the spinning thread never finished a round");
  printf(
      "stops=%lu handshakes=%lu nanosleep_eintr=%ld poll_eintr=%ld poll_ready=%ld "
      "spin_rounds=%ld ttsp_max_us=%lu\n",
      (unsigned long)stats.stops, (unsigned long)stats.handshakes, atomic_load(&g_nanosleep_eintr),
      atomic_load(&g_poll_eintr), atomic_load(&g_poll_ready), atomic_load(&g_spin_rounds),
      (unsigned long)(stats.time_to_safepoint_max_ns / 1000));
  if (usgc_shutdown() != 0) FAIL("shutdown");
  return atomic_load(&g_failures) == 0 ? 0 : 1;
}
