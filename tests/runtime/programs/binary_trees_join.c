/* binary_trees_join.c — binary-trees from the public C API with two attached worker pthreads,
 * while the attached main thread waits in a plain pthread_join (no usgc_enter_native bracket).
 * With 2 Ps the main thread's P must be retaken while it blocks, so both workers hold a P at once:
 * each worker counts itself "active" between its attach and its detach, and the program fails
 * unless both were active together at some moment. Prints "overlap=1 seconds=S check=C".
 * Usage: binary_trees_join [depth] [bracketed]  ("bracketed": the join inside
 * usgc_enter_native/usgc_leave_native, the documented contract, for comparison). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usgc/usgc.h"

typedef struct Node {
  struct Node* left;
  struct Node* right;
} Node;

static usgc_type_id g_node_type;
static atomic_int g_active;
static atomic_int g_max_active;
static int g_depth = 16;

static Node* make_tree(int depth) {
  USGC_ROOTS(roots, 1);
  Node* node = usgc_alloc(g_node_type, USGC_GOROUTINE_PRIVATE);
  roots[0] = node;
  if (depth > 0) {
    Node* left = make_tree(depth - 1);
    USGC_WRITE(node, node->left, left);
    Node* right = make_tree(depth - 1);
    USGC_WRITE(node, node->right, right);
  }
  return node;
}

static long check_tree(const Node* node) {
  return node->left == NULL ? 1 : 1 + check_tree(node->left) + check_tree(node->right);
}

static void* worker(void* out) {
  if (usgc_attach_thread() != 0) return NULL;
  int active = atomic_fetch_add(&g_active, 1) + 1;
  int seen = atomic_load(&g_max_active);
  while (active > seen && !atomic_compare_exchange_weak(&g_max_active, &seen, active)) {
  }
  long check = 0;
  for (int round = 0; round < 8; ++round) {
    for (int depth = 4; depth <= g_depth; depth += 2) {
      int iterations = 1 << (g_depth - depth + 4);
      for (int i = 0; i < iterations; ++i) check += check_tree(make_tree(depth));
      usgc_safepoint_poll();
    }
  }
  *(long*)out = check;
  atomic_fetch_sub(&g_active, 1);
  usgc_detach_thread();
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1) g_depth = atoi(argv[1]);
  int bracketed = argc > 2 && strcmp(argv[2], "bracketed") == 0;
  usgc_config config;
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0 || usgc_attach_thread() != 0) return 2;
  size_t offsets[2] = {0, sizeof(void*)};
  usgc_type_info info = {"Node", USGC_KIND_OBJECT, sizeof(Node), offsets, 2};
  g_node_type = usgc_register_type(&info);
  if (g_node_type == 0) return 2;

  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  pthread_t threads[2];
  long checks[2] = {0, 0};
  for (int i = 0; i < 2; ++i) pthread_create(&threads[i], NULL, worker, &checks[i]);
  if (bracketed) usgc_enter_native();
  for (int i = 0; i < 2; ++i) pthread_join(threads[i], NULL);
  if (bracketed) usgc_leave_native();
  clock_gettime(CLOCK_MONOTONIC, &end);
  double seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
  usgc_detach_thread();
  int overlap = atomic_load(&g_max_active) >= 2;
  printf("overlap=%d seconds=%.3f check=%ld\n", overlap, seconds, checks[0] + checks[1]);
  if (checks[0] != checks[1] || checks[0] == 0) return 1;
  return overlap ? 0 : 1;
}
