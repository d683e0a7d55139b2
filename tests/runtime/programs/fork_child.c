/* tests/runtime/programs/fork_child.c — fork() while the runtime runs, as an embedder would write
 * it from the public headers: goroutines allocate and a plain thread stops the world back to back
 * while the program forks, from a goroutine (bracketed by usgc_enter_native / usgc_leave_native,
 * and not) and from a plain thread. Each child must get a refusal for every usgc call that needs
 * the runtime's threads (ENOTRECOVERABLE, NULL for allocations, usgc_last_error naming the call)
 * within seconds — before usgc handled fork() the first collection or stop in a child waited
 * forever for threads and locks the child does not have — and may still malloc, poll, sleep and
 * exec. The parent must go on as if nothing happened. Run by tests/runtime/c_api.test.sh.
 *
 *   fork_child           the refusals; prints "fork child ok forks=N collections=M"
 *   fork_child returns   the forking goroutine returns in the child: the child must end with the
 *                        one-line message and SIGABRT (no scheduler to go back to), not hang */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <usgc/usgc.h>

#define FORKS_PER_KIND 6

static atomic_int g_stop = 0;
static atomic_long g_stops_done = 0;
static int g_failures = 0;
static int g_forks = 0;
static usgc_type_id g_node_type;

typedef struct node {
  struct node* next;
  long value;
} node;

static void fail(const char* what) {
  fprintf(stderr, "FAIL %s\n", what);
  g_failures++;
}

/* Goroutines that keep the heap and the scheduler busy: private lists, some published. */
static void allocator(void* arg) {
  (void)arg;
  USGC_ROOTS(roots, 1); /* the list's head: a root while the next node is allocated */
  while (!atomic_load(&g_stop)) {
    roots[0] = NULL;
    for (int i = 0; i < 200; i++) {
      node* n =
          usgc_alloc(g_node_type, i % 8 == 0 ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE);
      if (n == NULL) abort();
      n->value = i;
      USGC_WRITE(n, n->next, (node*)roots[0]);
      roots[0] = n;
    }
    usgc_yield();
  }
}

static void* stopper(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    usgc_stop_info info;
    if (usgc_stop_the_world(&info) == 0) {
      usgc_start_the_world();
      atomic_fetch_add(&g_stops_done, 1);
    }
  }
  return NULL;
}

/* In the child: every call that needs the runtime refuses at once; what needs no runtime works.
 * Exit status 0 only if everything held; an alarm turns a hang into SIGALRM. */
static int child_checks(void) {
  alarm(10);
  int bad = 0;
#define EXPECT(cond, what)                                     \
  do {                                                         \
    if (!(cond)) {                                             \
      fprintf(stderr, "child (pid %d): %s\n", getpid(), what); \
      bad++;                                                   \
    }                                                          \
  } while (0)
  char* text = malloc(4096);
  EXPECT(text != NULL, "malloc failed");
  memset(text, 'x', 4096);
  free(text);
  EXPECT(usgc_gc_collect(USGC_GC_SHARED) == ENOTRECOVERABLE, "usgc_gc_collect did not refuse");
  EXPECT(strstr(usgc_last_error(), "usgc_gc_collect in a fork() child") != NULL,
         "usgc_last_error does not name usgc_gc_collect");
  usgc_stop_info info;
  EXPECT(usgc_stop_the_world(&info) == ENOTRECOVERABLE, "usgc_stop_the_world did not refuse");
  EXPECT(usgc_go(allocator, NULL, NULL) == ENOTRECOVERABLE, "usgc_go did not refuse");
  errno = 0;
  EXPECT(usgc_alloc(g_node_type, USGC_GOROUTINE_SHARED) == NULL && errno == ENOTRECOVERABLE,
         "a shared allocation did not refuse");
  EXPECT(usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 1 << 20, USGC_GOROUTINE_PRIVATE) == NULL,
         "a private allocation did not refuse");
  EXPECT(usgc_chan_make(sizeof(long), 1) == NULL && errno == ENOTRECOVERABLE,
         "usgc_chan_make did not refuse");
  usgc_waitgroup group = USGC_WAITGROUP_INIT;
  EXPECT(usgc_waitgroup_add(&group, 1) == ENOTRECOVERABLE, "usgc_waitgroup_add did not refuse");
  EXPECT(usgc_init(NULL) == ENOTRECOVERABLE, "usgc_init did not refuse");
  EXPECT(usgc_shutdown() == ENOTRECOVERABLE, "usgc_shutdown did not refuse");
  static void* global_slot;
  EXPECT(usgc_global_root_add(&global_slot) == ENOTRECOVERABLE,
         "usgc_global_root_add did not refuse");
  EXPECT(usgc_global_root_remove(&global_slot) == ENOTRECOVERABLE,
         "usgc_global_root_remove did not refuse");
  /* A poll armed by a stop in flight at fork() must not fault into a stop nobody serves. */
  for (int i = 0; i < 1000; i++) usgc_safepoint_poll();
  usgc_yield(); /* returns: nothing else runs here */
  EXPECT(usgc_sleep_ns(1000000) == 0, "usgc_sleep_ns failed");
  usgc_enter_native();
  usgc_leave_native();
  /* exec still works: a shell that exits with our verdict. */
  char code[16];
  snprintf(code, sizeof code, "exit %d", bad > 0 ? 1 : 0);
  execl("/bin/sh", "sh", "-c", code, (char*)NULL);
  _exit(3);
#undef EXPECT
}

static void wait_for_child(pid_t pid, const char* kind) {
  int status = 0;
  if (pid < 0) {
    fail("fork failed");
    return;
  }
  if (waitpid(pid, &status, 0) != pid) {
    fail("waitpid failed");
    return;
  }
  g_forks++;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  char what[160];
  if (WIFSIGNALED(status))
    snprintf(what, sizeof what, "%s: child killed by signal %d%s", kind, WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
  else
    snprintf(what, sizeof what, "%s: child exited %d", kind, WEXITSTATUS(status));
  fail(what);
}

static void* plain_thread_forks(void* arg) {
  (void)arg;
  for (int i = 0; i < FORKS_PER_KIND; i++) {
    pid_t pid = fork();
    if (pid == 0) child_checks();
    wait_for_child(pid, "fork from a plain thread");
  }
  return NULL;
}

static const char* g_mode = "";

static void main_goroutine(void* arg) {
  (void)arg;
  for (int i = 0; i < 3; i++) usgc_go(allocator, NULL, NULL);
  pthread_t stop_thread;
  pthread_create(&stop_thread, NULL, stopper, NULL);
  usleep(50000);
  if (strcmp(g_mode, "returns") == 0) {
    usgc_enter_native();
    pid_t pid = fork();
    usgc_leave_native();
    if (pid == 0) {
      alarm(10);
      return; /* the child's goroutine returns: must end with the message, not hang */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child %s %d\n", WIFSIGNALED(status) ? "signal" : "exit",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  } else {
    for (int i = 0; i < FORKS_PER_KIND; i++) {
      usgc_enter_native(); /* the documented bracket around a blocking call */
      pid_t pid = fork();
      usgc_leave_native();
      if (pid == 0) child_checks();
      wait_for_child(pid, "bracketed fork from a goroutine");
      pid = fork(); /* unbracketed: the goroutine keeps its P across the call */
      if (pid == 0) child_checks();
      wait_for_child(pid, "unbracketed fork from a goroutine");
    }
    pthread_t forker;
    usgc_enter_native();
    pthread_create(&forker, NULL, plain_thread_forks, NULL);
    pthread_join(forker, NULL);
    usgc_leave_native();
  }
  atomic_store(&g_stop, 1);
  usgc_enter_native();
  pthread_join(stop_thread, NULL);
  usgc_leave_native();
  /* The parent is unaffected: a collection still runs. */
  if (usgc_gc_collect(USGC_GC_SHARED) != 0) fail("the parent's collection after the forks failed");
}

int main(int argc, char** argv) {
  if (argc > 1) g_mode = argv[1];
  if (usgc_init(NULL) != 0) return 2;
  static const size_t offsets[] = {offsetof(node, next)};
  usgc_type_info info = {"fork_node", USGC_KIND_OBJECT, sizeof(node), offsets, 1};
  g_node_type = usgc_register_type(&info);
  if (g_node_type == 0) return 2;
  if (usgc_run_main(main_goroutine, NULL) != 0) return 3;
  while (usgc_goroutine_count() > 0) usleep(1000);
  if (strcmp(g_mode, "returns") != 0) {
    usgc_gc_stats stats = {.version = USGC_GC_STATS_VERSION};
    usgc_gc_get_stats(&stats);
    printf("fork child %s forks=%d stops=%ld\n", g_failures == 0 ? "ok" : "FAILED", g_forks,
           (long)atomic_load(&g_stops_done));
  }
  if (usgc_shutdown() != 0) return 4;
  return g_failures == 0 ? 0 : 1;
}
