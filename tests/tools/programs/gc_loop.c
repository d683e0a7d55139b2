/* tests/tools/programs/gc_loop.c — a linked usgc program that keeps its garbage collector busy, so
 * that usgc-top has GC figures to show. Built and run by tests/tools/usgc_top.test.sh (linked
 * against libusgc.a, through <usgc/usgc.h> only, as a C runtime would use it).
 *
 *   usgc-gc-loop [SECONDS]    (default 60; exits 0 earlier at SIGTERM or SIGINT)
 *
 * What it does: usgc_run_main starts kWorkers goroutines. Each keeps a long-lived private tree and
 * a long-lived shared tree in its USGC_ROOTS slots (so goroutine-private and goroutine-shared bytes
 * stay in use), and in a loop allocates short-lived private and shared trees (garbage by the next
 * round), replaces a subtree of its shared tree with a new private one (a write-barrier slow path
 * and a publication), collects its private heap every few rounds and, for worker 0, the shared
 * heap now and then (usgc_gc_collect), and sleeps a little (the test machine runs other programs).
 * Every reference held across an allocation is in a root. At the end each worker checks that its
 * long-lived private tree survived every collection unchanged; the program prints
 * "usgc-gc-loop: N rounds, trees intact" and exits 0 only then.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <usgc/usgc.h>

enum {
  kWorkers = 4,
  kLongLivedDepth = 10,     /* 2047 nodes */
  kGarbageDepth = 7,        /* 255 nodes per round */
  kPrivateCollectEvery = 4, /* rounds */
  kSharedCollectEvery = 32, /* rounds, worker 0 */
  kRoundSleepNs = 2000000   /* 2 ms */
};

typedef struct Node {
  struct Node* left;
  struct Node* right;
  int64_t value;
} Node;

static const size_t kNodeReferences[] = {offsetof(Node, left), offsetof(Node, right)};
static usgc_type_id g_node_type;
static volatile sig_atomic_t g_stop_requested = 0;
static uint64_t g_deadline_ns;

typedef struct Worker {
  int index;
  uint64_t rounds;
  int tree_intact;
  usgc_waitgroup* done;
} Worker;

static void on_signal(int signal_number) {
  (void)signal_number;
  g_stop_requested = 1;
}

static uint64_t monotonic_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static Node* allocate_node(usgc_ownership ownership) {
  Node* node = (Node*)usgc_alloc(g_node_type, ownership);
  if (node == NULL) {
    fprintf(stderr, "usgc-gc-loop: usgc_alloc failed: %s\n", usgc_last_error());
    exit(1);
  }
  return node;
}

/* A complete tree of the given depth; values number the nodes in post-order from *next_value. The
 * children are rooted while their parent is allocated; the caller roots the result at once. */
static Node* build_tree(int depth, usgc_ownership ownership, int64_t* next_value) {
  USGC_ROOTS(children, 2);
  if (depth > 0) {
    children[0] = build_tree(depth - 1, ownership, next_value);
    children[1] = build_tree(depth - 1, ownership, next_value);
  }
  Node* node = allocate_node(ownership);
  usgc_write(node, (void**)&node->left, children[0]);
  usgc_write(node, (void**)&node->right, children[1]);
  node->value = (*next_value)++;
  return node;
}

static int64_t checksum(const Node* node) {
  if (node == NULL) return 0;
  return node->value * 31 + checksum(node->left) * 7 + checksum(node->right) * 13;
}

static void worker_main(void* argument) {
  Worker* worker = (Worker*)argument;
  /* roots: 0 long-lived private tree, 1 long-lived shared tree, 2 and 3 this round's garbage,
   * 4 the private subtree that is published into the shared tree */
  USGC_ROOTS(roots, 5);
  int64_t value = 0;
  roots[0] = build_tree(kLongLivedDepth, USGC_GOROUTINE_PRIVATE, &value);
  int64_t expected = checksum((Node*)roots[0]);
  roots[1] = build_tree(kLongLivedDepth - 2, USGC_GOROUTINE_SHARED, &value);
  while (!g_stop_requested && monotonic_ns() < g_deadline_ns) {
    roots[2] = build_tree(kGarbageDepth, USGC_GOROUTINE_PRIVATE, &value);
    roots[3] = build_tree(kGarbageDepth - 2, USGC_GOROUTINE_SHARED, &value);
    roots[4] = build_tree(3, USGC_GOROUTINE_PRIVATE, &value);
    Node* shared = (Node*)roots[1];
    /* a private value stored into a shared object: barrier slow path, publication */
    usgc_write(shared, (void**)((worker->rounds & 1) ? &shared->left : &shared->right), roots[4]);
    ++worker->rounds;
    if (worker->rounds % kPrivateCollectEvery == 0) usgc_gc_collect(USGC_GC_PRIVATE);
    if (worker->index == 0 && worker->rounds % kSharedCollectEvery == 0)
      usgc_gc_collect(USGC_GC_SHARED);
    usgc_safepoint_poll();
    usgc_sleep_ns(kRoundSleepNs);
  }
  worker->tree_intact = checksum((Node*)roots[0]) == expected;
  usgc_waitgroup_done(worker->done);
}

static void main_goroutine(void* argument) {
  Worker* workers = (Worker*)argument;
  usgc_waitgroup done = USGC_WAITGROUP_INIT;
  usgc_waitgroup_add(&done, kWorkers);
  for (int i = 0; i < kWorkers; ++i) {
    workers[i].done = &done;
    int status = usgc_go(worker_main, &workers[i], NULL);
    if (status != 0) {
      fprintf(stderr, "usgc-gc-loop: usgc_go failed (errno %d)\n", status);
      exit(1);
    }
  }
  usgc_waitgroup_wait(&done);
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 60;
  if (!(seconds > 0)) {
    fprintf(stderr, "usage: usgc-gc-loop [SECONDS]\n");
    return 2;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  g_deadline_ns = monotonic_ns() + (uint64_t)(seconds * 1e9);
  usgc_type_info node_type = {"Node", USGC_KIND_OBJECT, sizeof(Node), kNodeReferences, 2};
  g_node_type = usgc_register_type(&node_type);
  if (g_node_type == 0) {
    fprintf(stderr, "usgc-gc-loop: usgc_register_type failed\n");
    return 1;
  }
  int status = usgc_init(NULL);
  if (status != 0) {
    fprintf(stderr, "usgc-gc-loop: usgc_init failed (errno %d)\n", status);
    return 1;
  }
  Worker workers[kWorkers] = {{0}};
  for (int i = 0; i < kWorkers; ++i) workers[i].index = i;
  status = usgc_run_main(main_goroutine, workers);
  if (status != 0) {
    fprintf(stderr, "usgc-gc-loop: usgc_run_main failed (errno %d)\n", status);
    return 1;
  }
  uint64_t rounds = 0;
  int intact = 1;
  for (int i = 0; i < kWorkers; ++i) {
    rounds += workers[i].rounds;
    intact = intact && workers[i].tree_intact;
  }
  if (!intact) {
    fprintf(stderr, "usgc-gc-loop: a long-lived private tree changed across collections\n");
    return 1;
  }
  printf("usgc-gc-loop: %llu rounds, trees intact\n", (unsigned long long)rounds);
  return 0;
}
