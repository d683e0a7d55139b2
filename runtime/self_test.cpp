// runtime/self_test.cpp — usgc_self_test (usgc/validate.h): a bounded built-in stress of the
// caller's runtime, written against the public API only, as an embedder would.
//
// kWorkers goroutines run rounds until the deadline. Each round allocates in every ownership
// class (a STACK_LOCAL node in a popped frame, a private tree, a shared tree, a GLOBAL_SHARED node
// in the test's global root), publishes a private tree by sending it on a reference channel to
// the checker goroutine, collects its private heap every few rounds (worker 0 the shared heap
// too), and checks its long-lived private and shared trees after every collection. The checker
// checks every tree it receives. A tree is checkable without a side table: the node at position p
// of a tree with seed s holds s * 64 + p (positions in heap order, root 1). At the end the heap
// verifier runs once (usgc_heap_validate). Not on any hot path.
//
// Shared state: SelfTest (one per call, on the caller's stack) — counters are atomics (relaxed:
// read after the wait group says every goroutine is done, which orders them); first_failure is
// written once under the failure_reported exchange.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "usgc/usgc.h"

namespace {

constexpr int kWorkers = 4;
constexpr int kTreeDepth = 5;               // 63 nodes
constexpr int kPrivateCollectEvery = 4;     // rounds
constexpr int kSharedCollectEvery = 16;     // rounds, worker 0
constexpr uint64_t kRoundSleepNs = 200000;  // 0.2 ms: the machine may be busy

struct Node {
  Node* left;
  Node* right;
  int64_t value;
};

usgc_type_id node_type() {
  static const usgc_type_id type = [] {
    static const size_t offsets[] = {offsetof(Node, left), offsetof(Node, right)};
    usgc_type_info info = {"usgc_self_test.Node", USGC_KIND_OBJECT, sizeof(Node), offsets, 2};
    return usgc_register_type(&info);
  }();
  return type;
}

struct SelfTest {
  std::chrono::steady_clock::time_point deadline;
  usgc_chan* trees = nullptr;   // workers -> checker, references
  void* global_slot = nullptr;  // a global root the workers store GLOBAL_SHARED nodes into
  usgc_waitgroup done = USGC_WAITGROUP_INIT;  // the workers
  usgc_waitgroup* checker_done = nullptr;
  std::atomic<uint64_t> rounds{0}, allocated{0}, published{0}, messages{0}, collections{0},
      checks{0}, failures{0};
  std::atomic<bool> failure_reported{false};
  char first_failure[128] = "";

  void fail(const char* what, int64_t detail) {
    failures.fetch_add(1, std::memory_order_relaxed);
    if (!failure_reported.exchange(true, std::memory_order_relaxed))
      std::snprintf(first_failure, sizeof first_failure, "%s (%lld)", what,
                    static_cast<long long>(detail));
  }
  void check(bool held, const char* what, int64_t detail) {
    checks.fetch_add(1, std::memory_order_relaxed);
    if (!held) fail(what, detail);
  }
};

struct WorkerArgument {
  SelfTest* test;
  int index;
};

Node* new_node(SelfTest& test, usgc_ownership ownership) {
  auto* node = static_cast<Node*>(usgc_alloc(node_type(), ownership));
  if (node == nullptr) {
    test.fail("usgc_alloc failed", errno);
    return nullptr;
  }
  test.allocated.fetch_add(1, std::memory_order_relaxed);
  return node;
}

// A complete tree: the node at position p holds seed * 64 + p. Children are rooted while their
// parent is allocated.
Node* build_tree(SelfTest& test, int depth, usgc_ownership ownership, int64_t seed,
                 int64_t position) {
  USGC_ROOTS(children, 2);
  if (depth > 0) {
    children[0] = build_tree(test, depth - 1, ownership, seed, position * 2);
    children[1] = build_tree(test, depth - 1, ownership, seed, position * 2 + 1);
    if (children[0] == nullptr || children[1] == nullptr) return nullptr;
  }
  Node* node = new_node(test, ownership);
  if (node == nullptr) return nullptr;
  usgc_write(node, reinterpret_cast<void**>(&node->left), children[0]);
  usgc_write(node, reinterpret_cast<void**>(&node->right), children[1]);
  node->value = seed * 64 + position;
  return node;
}

// True when the tree is complete to `depth` and every node holds its value.
bool tree_intact(const Node* node, int depth, int64_t seed, int64_t position) {
  if (node == nullptr || node->value != seed * 64 + position) return false;
  if (depth == 0) return node->left == nullptr && node->right == nullptr;
  return tree_intact(node->left, depth - 1, seed, position * 2) &&
         tree_intact(node->right, depth - 1, seed, position * 2 + 1);
}

// A STACK_LOCAL node in its own frame: zeroed, of its class, freed when the frame pops.
void stack_local_round(SelfTest& test) {
  USGC_ROOTS(frame, 1);
  Node* local = new_node(test, USGC_STACK_LOCAL);
  if (local == nullptr) return;
  frame[0] = local;
  test.check(local->left == nullptr && local->value == 0, "a STACK_LOCAL node is not zeroed",
             local->value);
  test.check(usgc_ownership_of(local) == USGC_STACK_LOCAL, "a STACK_LOCAL node has another class",
             usgc_ownership_of(local));
}

void worker_main(void* raw) {
  auto* argument = static_cast<WorkerArgument*>(raw);
  SelfTest& test = *argument->test;
  const int64_t base_seed = (argument->index + 1) * 1000000;
  // 0: long-lived private tree, 1: long-lived shared tree, 2: this round's garbage,
  // 3: the tree sent to the checker.
  USGC_ROOTS(roots, 4);
  roots[0] = build_tree(test, kTreeDepth, USGC_GOROUTINE_PRIVATE, base_seed, 1);
  roots[1] = build_tree(test, kTreeDepth, USGC_GOROUTINE_SHARED, base_seed + 1, 1);
  uint64_t round = 0;
  // failures: a default (seq_cst) load that pairs with nothing (a relaxed flag: a late stop
  // only runs one more round).
  while (roots[0] != nullptr && roots[1] != nullptr &&
         std::chrono::steady_clock::now() < test.deadline && test.failures.load() == 0) {
    ++round;
    stack_local_round(test);
    roots[2] = build_tree(test, kTreeDepth - 2, USGC_GOROUTINE_PRIVATE, 7, 1);
    Node* global = new_node(test, USGC_GLOBAL_SHARED);
    if (global != nullptr) {
      global->value = static_cast<int64_t>(round);
      usgc_global_store(&test.global_slot, global);
    }
    const int64_t seed = base_seed + 2 + static_cast<int64_t>(round);
    roots[3] = build_tree(test, kTreeDepth - 1, USGC_GOROUTINE_PRIVATE, seed, 1);
    if (roots[3] != nullptr) {
      if (usgc_chan_send(test.trees, &roots[3]) != 0) test.fail("usgc_chan_send failed", seed);
      test.check(usgc_ownership_of(roots[3]) == USGC_GOROUTINE_SHARED,
                 "a sent tree was not published", usgc_ownership_of(roots[3]));
      test.published.fetch_add(1, std::memory_order_relaxed);
    }
    if (round % kPrivateCollectEvery == 0) {
      usgc_gc_collect(USGC_GC_PRIVATE);
      test.collections.fetch_add(1, std::memory_order_relaxed);
    }
    if (argument->index == 0 && round % kSharedCollectEvery == 0) {
      usgc_gc_collect(USGC_GC_SHARED);
      test.collections.fetch_add(1, std::memory_order_relaxed);
    }
    test.check(tree_intact(static_cast<Node*>(roots[0]), kTreeDepth, base_seed, 1),
               "the long-lived private tree changed", argument->index);
    test.check(tree_intact(static_cast<Node*>(roots[1]), kTreeDepth, base_seed + 1, 1),
               "the long-lived shared tree changed", argument->index);
    test.rounds.fetch_add(1, std::memory_order_relaxed);
    usgc_sleep_ns(kRoundSleepNs);
  }
  usgc_waitgroup_done(&test.done);
}

// Receives every tree until the channel is closed and checks it.
void checker_main(void* raw) {
  SelfTest& test = *static_cast<SelfTest*>(raw);
  USGC_ROOTS(received, 1);
  for (;;) {
    bool ok = false;
    usgc_chan_recv(test.trees, &received[0], &ok);
    if (!ok) break;
    test.messages.fetch_add(1, std::memory_order_relaxed);
    const Node* tree = static_cast<const Node*>(received[0]);
    int64_t seed = tree != nullptr ? tree->value / 64 : -1;
    test.check(tree_intact(tree, kTreeDepth - 1, seed, 1), "a received tree is damaged", seed);
  }
  usgc_waitgroup_done(test.checker_done);
}

}  // namespace

extern "C" USGC_RUNTIME_API int usgc_self_test(double seconds, usgc_self_test_result* result) {
  if (result == nullptr || result->version != USGC_SELF_TEST_VERSION || !(seconds > 0) ||
      seconds > 3600)
    return EINVAL;
  if (usgc_goroutine_self() == 0) return EPERM;
  if (node_type() == 0) return ENOMEM;
  SelfTest test;
  test.deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(seconds));
  test.trees = usgc_chan_make_refs(16);
  if (test.trees == nullptr) return ENOMEM;
  if (int error = usgc_global_root_add(&test.global_slot); error != 0) {
    usgc_chan_destroy(test.trees);
    return error;
  }
  // The checker first (workers block on a full channel until it receives), then the workers;
  // the channel is closed once every worker is done, which ends the checker.
  usgc_waitgroup checker_done = USGC_WAITGROUP_INIT;
  usgc_waitgroup_add(&checker_done, 1);
  test.checker_done = &checker_done;
  if (usgc_go(checker_main, &test, nullptr) != 0) {
    usgc_global_root_remove(&test.global_slot);
    usgc_chan_destroy(test.trees);
    return ENOMEM;
  }
  WorkerArgument arguments[kWorkers];
  usgc_waitgroup_add(&test.done, kWorkers);
  for (int i = 0; i < kWorkers; ++i) {
    arguments[i] = {&test, i};
    if (usgc_go(worker_main, &arguments[i], nullptr) != 0) {
      test.fail("usgc_go failed for worker", i);
      usgc_waitgroup_add(&test.done, -(kWorkers - i));
      break;
    }
  }
  usgc_waitgroup_wait(&test.done);
  usgc_chan_close(test.trees);
  usgc_waitgroup_wait(&checker_done);

  usgc_heap_report heap{};
  heap.version = USGC_HEAP_REPORT_VERSION;
  int validated = usgc_heap_validate(&heap);
  if (validated != 0) test.fail("usgc_heap_validate failed", validated);
  usgc_global_root_remove(&test.global_slot);
  usgc_chan_destroy(test.trees);

  std::memset(result, 0, sizeof *result);
  result->version = USGC_SELF_TEST_VERSION;
  // Default (seq_cst) loads that pair with nothing: every goroutine that counted is done, and
  // the wait groups above ordered its relaxed increments before these reads.
  result->rounds = test.rounds.load();
  result->objects_allocated = test.allocated.load();
  result->objects_published = test.published.load();
  result->messages = test.messages.load();
  result->collections = test.collections.load();
  result->checks = test.checks.load();
  result->failures = test.failures.load();
  result->heap = heap;
  result->passed = result->failures == 0 && result->messages == result->objects_published;
  std::memcpy(result->first_failure, test.first_failure, sizeof result->first_failure);
  if (result->messages != result->objects_published && result->first_failure[0] == '\0')
    std::snprintf(result->first_failure, sizeof result->first_failure,
                  "%llu trees sent, %llu received",
                  static_cast<unsigned long long>(result->objects_published),
                  static_cast<unsigned long long>(result->messages));
  return 0;
}
