// binary_trees: the classic binary-trees benchmark (the Benchmarks Game's) on usgc's garbage
// collector and its peers — the program of suite=binary_trees (bench/run_gc.sh runs it once per
// implementation and repetition, beside bench/go/binarytrees.go, which does the same work in Go).
//
// The work, for a depth N and G workers:
//   1. a stretch tree of depth N+1 is built, checked and dropped;
//   2. a long-lived tree of depth N is built and kept alive for the whole run;
//   3. for d = 4, 6, ..., N: 2^(N-d+4) trees of depth d are built, checked and dropped, the
//      iterations of each depth split among G workers (worker w takes iterations w, w+G, ...);
//      the main thread or goroutine waits for them;
//   4. the long-lived tree is checked.
// A tree of depth d has 2^(d+1)-1 nodes of two references each, and its check is its node count,
// so every check is known in advance: a wrong one is an ERROR line and exit status 1. The check
// printed in the RESULT line is the sum of all of them (the same for every implementation).
//
// Implementations (--impl):
//   usgc         nodes are usgc objects of a registered type with two reference fields, allocated
//                GOROUTINE_PRIVATE with usgc_alloc, children stored with usgc_write; every
//                reference held across an allocation is in a shadow-stack root (USGC_ROOTS), the
//                long-lived tree too (a collection may run inside any allocation and the collector
//                is precise). Workers are goroutines (usgc_go) joined by a usgc_waitgroup inside
//                usgc_run_main; the number of Ps is USGC_PROCS (the caller sets it) or the cores.
//   usgc-inline  the same with the inline fast path a JIT emits: usgc_alloc_private_fast with the
//                type's usgc_type_layout.
//   boehm        Boehm GC (Debian's libgc): GC_MALLOC, workers are std::threads registered with
//                GC_register_my_thread; marker threads: GC_MARKERS (the caller sets it).
//   shared_ptr   std::shared_ptr<Node> built with make_shared (atomic reference counts).
//   malloc       malloc per node, free of the whole tree after its check (glibc's malloc).
// The stretch and long-lived trees are built by the main thread or goroutine, the iterations by
// the G workers (with G = 1, one worker), the same for every implementation and for Go.
//
// Output (one process per implementation: peak RSS is per process):
//   the Benchmarks Game's lines ("stretch tree of depth 19	 check: 1048575", ...), then
//   RESULT suite=binary_trees case=depth<N>-g<G> impl=<impl> metric=wall_ms value=<ms> unit=ms
//   RESULT ... metric=peak_rss_kib value=<VmHWM> unit=KiB
//   RESULT ... metric=check value=<sum of the checks> unit=count
//   NOTE ... with the collector's statistics (usgc, boehm).
// wall_ms runs from before the stretch tree to after the last check (runtime start-up excluded).
//
// Usage: binary_trees --impl=usgc|usgc-inline|boehm|shared_ptr|malloc [--depth=N] [--goroutines=G]
// (the "--flag value" form works too).

// Boehm GC: threads are registered explicitly (std::thread does not go through its
// pthread_create redirection), so the redirection macros are not wanted.
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS
#include <gc/gc.h>

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

// The executable's data and bss (from the linker), for Boehm's root exclusion below.
extern "C" char __data_start[];
extern "C" char _end[];

namespace {

using usgc::bench::now_ns;

constexpr int kMinDepth = 4;

struct Options {
  std::string impl;
  int depth = 16;
  int workers = 1;
  std::string case_name() const {
    return "depth" + std::to_string(depth) + "-g" + std::to_string(workers);
  }
};

// The iterations of step 3: one entry per depth 4, 6, ..., N.
struct DepthStep {
  int depth;
  uint64_t iterations;
};

std::vector<DepthStep> depth_steps(int max_depth) {
  std::vector<DepthStep> steps;
  for (int depth = kMinDepth; depth <= max_depth; depth += 2)
    steps.push_back({depth, uint64_t{1} << (max_depth - depth + kMinDepth)});
  return steps;
}

uint64_t nodes_of_depth(int depth) {
  return (uint64_t{2} << depth) - 1;
}

// What a run computed; `per_step[k]` sums the checks of step k over every worker.
struct Checks {
  uint64_t stretch = 0;
  uint64_t long_lived = 0;
  std::vector<uint64_t> per_step;
  uint64_t elapsed_ns = 0;
  uint64_t total() const {
    uint64_t sum = stretch + long_lived;
    for (uint64_t value : per_step) sum += value;
    return sum;
  }
};

Options g_options;  // set once in main, read by everything below

[[noreturn]] void fail(const std::string& reason) {
  std::printf("ERROR suite=binary_trees case=%s impl=%s reason=\"%s\"\n",
              g_options.case_name().c_str(), g_options.impl.c_str(), reason.c_str());
  std::fflush(stdout);
  std::exit(1);
}

// Worker w's share of step `step`: iterations w, w+G, ... of the step.
template <class Body>
void for_my_iterations(const DepthStep& step, int worker, int workers, Body body) {
  for (uint64_t i = static_cast<uint64_t>(worker); i < step.iterations;
       i += static_cast<uint64_t>(workers))
    body();
}

// ---- the std::thread implementations: boehm, shared_ptr, malloc ------------------------------
// Each is a policy: Tree, build(depth), check(tree), release(tree) and a ThreadScope that a
// worker thread holds while it runs (Boehm's thread registration).

struct NoThreadScope {};

struct MallocTrees {
  struct Node {
    Node* left;
    Node* right;
  };
  using Tree = Node*;
  using ThreadScope = NoThreadScope;
  static Tree build(int depth) {
    auto* node = static_cast<Node*>(std::malloc(sizeof(Node)));
    if (node == nullptr) fail("malloc: out of memory");
    if (depth == 0) {
      node->left = node->right = nullptr;
    } else {
      node->left = build(depth - 1);
      node->right = build(depth - 1);
    }
    return node;
  }
  static uint64_t check(const Node* node) {
    if (node->left == nullptr) return 1;
    return 1 + check(node->left) + check(node->right);
  }
  static void release(Node* node) {
    if (node->left != nullptr) {
      release(node->left);
      release(node->right);
    }
    std::free(node);
  }
};

struct SharedPtrTrees {
  struct Node {
    std::shared_ptr<Node> left;
    std::shared_ptr<Node> right;
  };
  using Tree = std::shared_ptr<Node>;
  using ThreadScope = NoThreadScope;
  static Tree build(int depth) {
    auto node = std::make_shared<Node>();
    if (depth > 0) {
      node->left = build(depth - 1);
      node->right = build(depth - 1);
    }
    return node;
  }
  static uint64_t check(const Tree& tree) { return check_node(tree.get()); }
  static uint64_t check_node(const Node* node) {
    if (!node->left) return 1;
    return 1 + check_node(node->left.get()) + check_node(node->right.get());
  }
  static void release(Tree& tree) { tree.reset(); }  // the reference counts free the nodes
};

struct BoehmTrees {
  struct Node {
    Node* left;
    Node* right;
  };
  using Tree = Node*;
  // A worker thread registers itself with the collector (GC_allow_register_threads was called
  // by main after GC_INIT), so its stack is scanned and it takes part in stop-the-world.
  struct ThreadScope {
    ThreadScope() {
      GC_stack_base base{};
      if (GC_get_stack_base(&base) != GC_SUCCESS) fail("GC_get_stack_base failed");
      int status = GC_register_my_thread(&base);
      if (status != GC_SUCCESS) fail("GC_register_my_thread failed: " + std::to_string(status));
    }
    ~ThreadScope() { GC_unregister_my_thread(); }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;
  };
  static Tree build(int depth) {
    auto* node = static_cast<Node*>(GC_MALLOC(sizeof(Node)));  // zeroed
    if (node == nullptr) fail("GC_MALLOC: out of memory");
    if (depth > 0) {
      node->left = build(depth - 1);
      node->right = build(depth - 1);
    }
    return node;
  }
  static uint64_t check(const Node* node) {
    if (node->left == nullptr) return 1;
    return 1 + check(node->left) + check(node->right);
  }
  static void release(Node*&) {}  // garbage: the collector frees it
};

template <class Trees>
Checks run_with_threads(const Options& options) {
  std::vector<DepthStep> steps = depth_steps(options.depth);
  Checks checks;
  checks.per_step.assign(steps.size(), 0);
  // worker_sums[w][k]: worker w's checks of step k (each worker writes only its own row).
  std::vector<std::vector<uint64_t>> worker_sums(static_cast<size_t>(options.workers),
                                                 std::vector<uint64_t>(steps.size(), 0));
  uint64_t start_ns = now_ns();
  {
    typename Trees::Tree stretch = Trees::build(options.depth + 1);
    checks.stretch = Trees::check(stretch);
    Trees::release(stretch);
  }
  typename Trees::Tree long_lived = Trees::build(options.depth);
  std::vector<std::thread> threads;
  for (int worker = 0; worker < options.workers; ++worker) {
    threads.emplace_back([&, worker] {
      [[maybe_unused]] typename Trees::ThreadScope scope;
      for (size_t k = 0; k < steps.size(); ++k) {
        uint64_t sum = 0;
        for_my_iterations(steps[k], worker, options.workers, [&] {
          typename Trees::Tree tree = Trees::build(steps[k].depth);
          sum += Trees::check(tree);
          Trees::release(tree);
        });
        worker_sums[static_cast<size_t>(worker)][k] = sum;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  checks.long_lived = Trees::check(long_lived);
  Trees::release(long_lived);
  checks.elapsed_ns = now_ns() - start_ns;
  for (const auto& row : worker_sums)
    for (size_t k = 0; k < steps.size(); ++k) checks.per_step[k] += row[k];
  return checks;
}

// ---- usgc ------------------------------------------------------------------------------------
// Node type: two reference fields. Trees are built bottom-up (both children first, then the
// parent), so only the children need roots while the parent is allocated; a child returned by
// build lands in a root before the next allocation.

struct UsgcNode {
  void* left;
  void* right;
};

usgc_type_id g_node_type = 0;      // registered in main before usgc_run_main, then read-only
usgc_type_layout g_node_layout{};  // its layout, for usgc-inline

[[noreturn]] void fail_usgc(const char* what) {
  int error = errno;
  fail(std::string(what) + " failed: " + std::strerror(error) + ": " + usgc_last_error());
}

template <bool kInline>
inline void* new_usgc_node() {
  void* node = kInline ? usgc_alloc_private_fast(&g_node_layout)
                       : usgc_alloc(g_node_type, USGC_GOROUTINE_PRIVATE);
  if (node == nullptr) fail_usgc(kInline ? "usgc_alloc_private_fast" : "usgc_alloc");
  return node;  // zeroed: both children null
}

template <bool kInline>
void* usgc_build(int depth) {
  if (depth == 0) return new_usgc_node<kInline>();
  USGC_ROOTS(children, 2);
  children[0] = usgc_build<kInline>(depth - 1);
  children[1] = usgc_build<kInline>(depth - 1);
  auto* node = static_cast<UsgcNode*>(new_usgc_node<kInline>());
  usgc_write(node, &node->left, children[0]);
  usgc_write(node, &node->right, children[1]);
  return node;
}

// No allocation here, so no roots; a poll per inner node keeps stops prompt (a 4M-node check
// runs for tens of milliseconds), as a compiler's poll in every function prologue would.
uint64_t usgc_check(const void* tree) {
  const auto* node = static_cast<const UsgcNode*>(tree);
  const void* left = usgc_read(node, &node->left);
  if (left == nullptr) return 1;
  usgc_safepoint_poll();
  return 1 + usgc_check(left) + usgc_check(usgc_read(node, &node->right));
}

struct UsgcRun;

struct UsgcWorker {
  UsgcRun* run = nullptr;
  int index = 0;
  std::vector<uint64_t> sums;  // per step; written only by this worker's goroutine
};

struct UsgcRun {
  Options options;
  std::vector<DepthStep> steps;
  std::vector<UsgcWorker> workers;
  usgc_waitgroup workers_done = USGC_WAITGROUP_INIT;
  Checks checks;
};

void check_call(int error, const char* what) {
  if (error != 0) fail(std::string(what) + " failed: " + std::strerror(error));
}

template <bool kInline>
void usgc_worker_goroutine(void* argument) {
  auto* worker = static_cast<UsgcWorker*>(argument);
  UsgcRun* run = worker->run;
  {
    USGC_ROOTS(tree, 1);
    for (size_t k = 0; k < run->steps.size(); ++k) {
      uint64_t sum = 0;
      for_my_iterations(run->steps[k], worker->index, run->options.workers, [&] {
        tree[0] = usgc_build<kInline>(run->steps[k].depth);
        sum += usgc_check(tree[0]);
        tree[0] = nullptr;
        usgc_safepoint_poll();
      });
      worker->sums[k] = sum;
    }
  }
  check_call(usgc_waitgroup_done(&run->workers_done), "usgc_waitgroup_done");
}

template <bool kInline>
void usgc_main_goroutine(void* argument) {
  auto* run = static_cast<UsgcRun*>(argument);
  uint64_t start_ns = now_ns();
  USGC_ROOTS(trees, 1);  // the stretch tree, then the long-lived tree for the whole run
  trees[0] = usgc_build<kInline>(run->options.depth + 1);
  run->checks.stretch = usgc_check(trees[0]);
  trees[0] = nullptr;
  trees[0] = usgc_build<kInline>(run->options.depth);
  check_call(usgc_waitgroup_add(&run->workers_done, run->options.workers), "usgc_waitgroup_add");
  for (UsgcWorker& worker : run->workers)
    check_call(usgc_go(usgc_worker_goroutine<kInline>, &worker, nullptr), "usgc_go");
  check_call(usgc_waitgroup_wait(&run->workers_done), "usgc_waitgroup_wait");
  run->checks.long_lived = usgc_check(trees[0]);
  run->checks.elapsed_ns = now_ns() - start_ns;
}

// Waits until the workers' exits, still in flight when usgc_run_main returns, are done.
void wait_for_goroutines() {
  for (int i = 0; i < 100000 && usgc_goroutine_count() != 0; ++i) {
    timespec pause{0, 100000};
    nanosleep(&pause, nullptr);
  }
}

void print_usgc_stats(const Options& options) {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  if (usgc_gc_get_stats(&stats) != 0) return;
  std::printf("NOTE suite=binary_trees case=%s impl=%s private_collections=%" PRIu64
              " shared_collections=%" PRIu64
              " private_pause_max_us=%.1f shared_pause_max_us=%.1f"
              " private_pause_total_ms=%.1f shared_pause_total_ms=%.1f bytes_committed=%" PRIu64
              " barrier_slow_paths=%" PRIu64 " objects_published=%" PRIu64 "\n",
              options.case_name().c_str(), options.impl.c_str(), stats.private_collections,
              stats.shared_collections, static_cast<double>(stats.private_pause_max_ns) / 1e3,
              static_cast<double>(stats.shared_pause_max_ns) / 1e3,
              static_cast<double>(stats.private_pause_total_ns) / 1e6,
              static_cast<double>(stats.shared_pause_total_ns) / 1e6, stats.bytes_committed,
              stats.barrier_slow_paths, stats.objects_published);
}

Checks run_usgc(const Options& options, bool inline_alloc) {
  usgc_config config;
  check_call(usgc_config_from_environment(&config), "usgc_config_from_environment");
  check_call(usgc_init(&config), "usgc_init");

  static const size_t kNodeReferenceOffsets[] = {offsetof(UsgcNode, left),
                                                 offsetof(UsgcNode, right)};
  usgc_type_info info{};
  info.name = "binary_trees.Node";
  info.kind = USGC_KIND_OBJECT;
  info.size = sizeof(UsgcNode);
  info.pointer_offsets = kNodeReferenceOffsets;
  info.pointer_count = 2;
  g_node_type = usgc_register_type(&info);
  if (g_node_type == 0) fail_usgc("usgc_register_type");
  if (inline_alloc) {
    check_call(usgc_type_layout_of(g_node_type, &g_node_layout), "usgc_type_layout_of");
    if (g_node_layout.size_class == UINT32_MAX)
      fail("usgc_type_layout_of: a 16-byte node is too large to inline (size_class UINT32_MAX)");
  }

  UsgcRun run;
  run.options = options;
  run.steps = depth_steps(options.depth);
  run.checks.per_step.assign(run.steps.size(), 0);
  run.workers.resize(static_cast<size_t>(options.workers));
  for (int w = 0; w < options.workers; ++w) {
    run.workers[static_cast<size_t>(w)].run = &run;
    run.workers[static_cast<size_t>(w)].index = w;
    run.workers[static_cast<size_t>(w)].sums.assign(run.steps.size(), 0);
  }
  check_call(
      usgc_run_main(inline_alloc ? usgc_main_goroutine<true> : usgc_main_goroutine<false>, &run),
      "usgc_run_main");
  wait_for_goroutines();
  print_usgc_stats(options);
  check_call(usgc_shutdown(), "usgc_shutdown");
  for (const UsgcWorker& worker : run.workers)
    for (size_t k = 0; k < run.steps.size(); ++k) run.checks.per_step[k] += worker.sums[k];
  return run.checks;
}

// ---- output ----------------------------------------------------------------------------------

// VmHWM of /proc/self/status: the process's peak resident set, KiB (0 when unreadable).
uint64_t peak_rss_kib() {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof line, status) != nullptr)
    if (std::strncmp(line, "VmHWM:", 6) == 0) kib = std::strtoull(line + 6, nullptr, 10);
  std::fclose(status);
  return kib;
}

// Prints the Benchmarks Game's lines and compares every check with the node count it must be;
// returns false (after ERROR lines) on a mismatch.
bool report_checks(const Options& options, const Checks& checks) {
  bool ok = true;
  auto expect = [&](const std::string& what, uint64_t got, uint64_t want) {
    if (got == want) return;
    std::printf("ERROR suite=binary_trees case=%s impl=%s reason=\"%s: check %" PRIu64
                ", expected %" PRIu64 "\"\n",
                options.case_name().c_str(), options.impl.c_str(), what.c_str(), got, want);
    ok = false;
  };
  std::vector<DepthStep> steps = depth_steps(options.depth);
  std::printf("stretch tree of depth %d\t check: %" PRIu64 "\n", options.depth + 1, checks.stretch);
  expect("stretch tree", checks.stretch, nodes_of_depth(options.depth + 1));
  for (size_t k = 0; k < steps.size(); ++k) {
    std::printf("%" PRIu64 "\t trees of depth %d\t check: %" PRIu64 "\n", steps[k].iterations,
                steps[k].depth, checks.per_step[k]);
    expect("trees of depth " + std::to_string(steps[k].depth), checks.per_step[k],
           steps[k].iterations * nodes_of_depth(steps[k].depth));
  }
  std::printf("long lived tree of depth %d\t check: %" PRIu64 "\n", options.depth,
              checks.long_lived);
  expect("long lived tree", checks.long_lived, nodes_of_depth(options.depth));
  return ok;
}

int usage() {
  std::fprintf(stderr,
               "usage: binary_trees --impl=usgc|usgc-inline|boehm|shared_ptr|malloc [--depth=N]"
               " [--goroutines=G]\n  N >= %d (default 16), G >= 1 (default 1)\n",
               kMinDepth);
  return 2;
}

// "--name=value" or "--name value"; true when argv[i] is the flag (i advances past its value).
bool flag_value(int argc, char** argv, int& i, const char* name, std::string& value) {
  std::string arg = argv[i];
  std::string prefix = std::string("--") + name;
  if (arg.rfind(prefix + "=", 0) == 0) {
    value = arg.substr(prefix.size() + 1);
    return true;
  }
  if (arg == prefix && i + 1 < argc) {
    value = argv[++i];
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options& options = g_options;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    if (flag_value(argc, argv, i, "impl", value))
      options.impl = value;
    else if (flag_value(argc, argv, i, "depth", value))
      options.depth = std::atoi(value.c_str());
    else if (flag_value(argc, argv, i, "goroutines", value))
      options.workers = std::atoi(value.c_str());
    else
      return usage();
  }
  if (options.depth < kMinDepth || options.depth > 30 || options.workers < 1) return usage();

  Checks checks;
  if (options.impl == "usgc" || options.impl == "usgc-inline") {
    checks = run_usgc(options, options.impl == "usgc-inline");
  } else if (options.impl == "boehm") {
    // The executable's static data hold no reference to a Boehm object (the trees live on
    // thread stacks), but they hold usgc's (libusgc.a is linked in for the usgc impls), among
    // them a 32 MiB segment map in .bss: scanned as a root at every collection it would add its
    // size to Boehm's peak RSS and its scan to every mark. A program without usgc has no such
    // table, so it is excluded (libc's and libstdc++'s data stay roots, as usual), before the
    // first collection (Boehm's documented use of GC_set_dont_precollect).
    GC_set_dont_precollect(1);
    GC_INIT();
    GC_exclude_static_roots(__data_start, _end);
    GC_allow_register_threads();
    checks = run_with_threads<BoehmTrees>(options);
    std::printf(
        "NOTE suite=binary_trees case=%s impl=boehm collections=%zu heap_bytes=%zu"
        " markers=%d\n",
        options.case_name().c_str(), static_cast<size_t>(GC_get_gc_no()), GC_get_heap_size(),
        GC_get_parallel() + 1);
  } else if (options.impl == "shared_ptr") {
    checks = run_with_threads<SharedPtrTrees>(options);
  } else if (options.impl == "malloc") {
    checks = run_with_threads<MallocTrees>(options);
  } else {
    return usage();
  }

  if (!report_checks(options, checks)) return 1;  // a wrong check yields no figures
  const char* impl = options.impl.c_str();
  std::string name = options.case_name();
  std::printf("RESULT suite=binary_trees case=%s impl=%s metric=wall_ms value=%.1f unit=ms\n",
              name.c_str(), impl, static_cast<double>(checks.elapsed_ns) / 1e6);
  std::printf("RESULT suite=binary_trees case=%s impl=%s metric=peak_rss_kib value=%" PRIu64
              " unit=KiB\n",
              name.c_str(), impl, peak_rss_kib());
  std::printf("RESULT suite=binary_trees case=%s impl=%s metric=check value=%" PRIu64
              " unit=count\n",
              name.c_str(), impl, checks.total());
  return 0;
}
