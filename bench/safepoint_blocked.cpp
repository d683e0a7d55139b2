// bench/safepoint_blocked.cpp — time to safepoint when threads that hold a P do not poll: attached
// threads blocked in read(2) on a pipe, in pthread_cond_wait, and one spinning without polls
// (asynchronous safepoints, docs/runtime.md), beside the same stops with goroutines that poll
// (the figure bench/safepoint.cpp measures); and binary-trees with two attached workers whose
// main thread waits in a plain pthread_join against the same join bracketed by
// usgc_enter_native/usgc_leave_native (the P retake).
//
// Output: RESULT lines, suite=safepoint_blocked:
//   case=polling|blocked|blocked_goroutines|spinning metric=ttsp_median_us / ttsp_p99_us
//   case=blocked|blocked_goroutines|spinning metric=ratio_to_polling
// "blocked": attached threads (their Ps are retaken, so most stops find the Ps idle);
// "blocked_goroutines": goroutines of usgc_go blocked in the same calls (the monitor retakes
// their Ps too, the goroutine staying on its thread: runtime/blocked_call.cpp).
//   case=binary_trees impl=plain_join|bracketed_join metric=seconds, and the ratio.
// Usage: safepoint_blocked [stops] [depth]
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/bench_support.hpp"
#include "usgc/usgc.h"

namespace {

std::atomic<bool> g_stop_workers{false};
int g_pipe[2];
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;

void result(const char* case_name, const char* impl, const char* metric, double value,
            const char* unit) {
  std::printf("RESULT suite=safepoint_blocked case=%s impl=%s metric=%s value=%.3f unit=%s\n",
              case_name, impl, metric, value, unit);
}

void polling_goroutine(void*) {
  while (!g_stop_workers.load(std::memory_order_relaxed)) usgc_safepoint_poll();
}

void* blocked_reader(void*) {
  usgc_attach_thread();
  char byte;
  while (read(g_pipe[0], &byte, 1) == 1 && byte != 'q') {
  }
  usgc_detach_thread();
  return nullptr;
}

void* blocked_waiter(void*) {
  usgc_attach_thread();
  pthread_mutex_lock(&g_mutex);
  while (!g_stop_workers.load()) pthread_cond_wait(&g_cond, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
  usgc_detach_thread();
  return nullptr;
}

// The same blocking calls in goroutines of usgc_go: their Ps are retaken as well (each goroutine
// stays on its thread, which ends the library call), so most stops find those Ps idle.
void goroutine_reader(void*) {
  char byte;
  while (read(g_pipe[0], &byte, 1) == 1 && byte != 'q') {
  }
}

void goroutine_waiter(void*) {
  pthread_mutex_lock(&g_mutex);
  while (!g_stop_workers.load()) pthread_cond_wait(&g_cond, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
}

void* spinner(void*) {
  usgc_attach_thread();
  volatile uint64_t sink = 0;
  while (!g_stop_workers.load(std::memory_order_relaxed)) sink = sink + 1;
  usgc_detach_thread();
  return nullptr;
}

// Median and p99 time to safepoint over `stops` stops, with what `start` set up running.
std::pair<double, double> measure(int stops) {
  std::vector<double> ttsp_us;
  for (int i = 0; i < stops; ++i) {
    usgc_stop_info info{};
    usgc_stop_the_world(&info);
    usgc_start_the_world();
    ttsp_us.push_back(static_cast<double>(info.time_to_safepoint_ns) / 1000.0);
    usleep(200);
  }
  std::sort(ttsp_us.begin(), ttsp_us.end());
  return {usgc::bench::median(ttsp_us), usgc::bench::percentile(ttsp_us, 0.99)};
}

std::pair<double, double> run_case(const char* name, int stops) {
  usgc_config config{};
  usgc_config_from_environment(&config);
  config.procs = 4;
  if (usgc_init(&config) != 0) std::exit(2);
  g_stop_workers = false;
  std::vector<pthread_t> threads;
  auto start_thread = [&](void* (*body)(void*)) {
    pthread_t thread;
    pthread_create(&thread, nullptr, body, nullptr);
    threads.push_back(thread);
  };
  std::string which = name;
  if (which == "polling") {
    usgc_go(polling_goroutine, nullptr, nullptr);
    usgc_go(polling_goroutine, nullptr, nullptr);
  } else if (which == "blocked") {
    if (pipe(g_pipe) != 0) std::exit(2);
    start_thread(blocked_reader);
    start_thread(blocked_waiter);
  } else if (which == "blocked_goroutines") {
    if (pipe(g_pipe) != 0) std::exit(2);
    usgc_go(goroutine_reader, nullptr, nullptr);
    usgc_go(goroutine_waiter, nullptr, nullptr);
  } else {
    start_thread(spinner);
  }
  usleep(100000);
  std::pair<double, double> figures = measure(stops);
  g_stop_workers = true;
  const bool piped = which == "blocked" || which == "blocked_goroutines";
  if (piped) {
    if (write(g_pipe[1], "q", 1) != 1) std::exit(2);
    pthread_mutex_lock(&g_mutex);
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_mutex);
  }
  for (pthread_t thread : threads) pthread_join(thread, nullptr);
  while (usgc_goroutine_count() != 0) usleep(1000);
  usgc_shutdown();
  if (piped) {
    close(g_pipe[0]);
    close(g_pipe[1]);
  }
  result(name, "usgc", "ttsp_median_us", figures.first, "us");
  result(name, "usgc", "ttsp_p99_us", figures.second, "us");
  return figures;
}

// ---- binary-trees with a plain or bracketed join -----------------------------------------------

struct Node {
  Node* left;
  Node* right;
};
usgc_type_id g_node_type = 0;
int g_depth = 16;

Node* make_tree(int depth) {
  USGC_ROOTS(roots, 1);
  auto* node = static_cast<Node*>(usgc_alloc(g_node_type, USGC_GOROUTINE_PRIVATE));
  roots[0] = node;
  if (depth > 0) {
    Node* left = make_tree(depth - 1);
    USGC_WRITE(node, node->left, left);
    Node* right = make_tree(depth - 1);
    USGC_WRITE(node, node->right, right);
  }
  return node;
}

long check_tree(const Node* node) {
  return node->left == nullptr ? 1 : 1 + check_tree(node->left) + check_tree(node->right);
}

void* tree_worker(void*) {
  usgc_attach_thread();
  long check = 0;
  for (int depth = 4; depth <= g_depth; depth += 2) {
    int iterations = 1 << (g_depth - depth + 4);
    for (int i = 0; i < iterations; ++i) check += check_tree(make_tree(depth));
  }
  usgc_detach_thread();
  return reinterpret_cast<void*>(check);
}

double binary_trees(bool bracketed) {
  usgc_config config{};
  usgc_config_from_environment(&config);
  config.procs = 2;
  if (usgc_init(&config) != 0 || usgc_attach_thread() != 0) std::exit(2);
  size_t offsets[2] = {0, sizeof(void*)};
  usgc_type_info info = {"Node", USGC_KIND_OBJECT, sizeof(Node), offsets, 2};
  g_node_type = usgc_register_type(&info);
  uint64_t start = usgc::bench::now_ns();
  pthread_t threads[2];
  for (pthread_t& thread : threads) pthread_create(&thread, nullptr, tree_worker, nullptr);
  if (bracketed) usgc_enter_native();
  for (pthread_t thread : threads) pthread_join(thread, nullptr);
  if (bracketed) usgc_leave_native();
  double seconds = static_cast<double>(usgc::bench::now_ns() - start) / 1e9;
  usgc_detach_thread();
  usgc_shutdown();
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int stops = argc > 1 ? std::atoi(argv[1]) : 500;
  g_depth = argc > 2 ? std::atoi(argv[2]) : 18;
  std::printf("NOTE procs=4 for the stops (the requester is a plain thread); %d stops per case\n",
              stops);
  std::pair<double, double> polling = run_case("polling", stops);
  std::pair<double, double> blocked = run_case("blocked", stops);
  std::pair<double, double> blocked_goroutines = run_case("blocked_goroutines", stops);
  std::pair<double, double> spinning = run_case("spinning", stops);
  result("blocked", "usgc", "ratio_to_polling", blocked.first / polling.first, "x");
  result("blocked_goroutines", "usgc", "ratio_to_polling", blocked_goroutines.first / polling.first,
         "x");
  result("spinning", "usgc", "ratio_to_polling", spinning.first / polling.first, "x");
  double plain = binary_trees(false);
  double bracketed = binary_trees(true);
  result("binary_trees", "plain_join", "seconds", plain, "s");
  result("binary_trees", "bracketed_join", "seconds", bracketed, "s");
  result("binary_trees", "plain_join", "ratio_to_bracketed", plain / bracketed, "x");
  return 0;
}
