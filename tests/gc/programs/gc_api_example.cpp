// tests/gc/programs/gc_api_example.cpp — the program of gc_api_example.c written in C++ through
// <usgc/gc.hpp>: usgc::Roots instead of USGC_ROOTS, usgc::Type registration from offsetof,
// typed usgc::alloc / write / read, usgc::Handle and usgc::GlobalHandle (RAII, move-only).
// Run by tests/gc/c_api.test.sh (linked against libusgc.a).
//
// Proves the same behaviour as the C program: allocation in the four classes, STACK_LOCAL space
// released by the frame's destructor, publication by a store, by a reference channel, by
// usgc_go_object, by a global root and by a global handle; live structures unchanged across
// private and shared collections (checksums); garbage freed. Last line:
// "gc_api_example_cpp: N checks, all passed"; exit 0 only then.
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <utility>

#include <usgc/gc.hpp>

namespace {

int g_checks = 0;
int g_failures = 0;

template <class... Args>
void check(bool condition, int line, const char* format, Args... args) {
  ++g_checks;
  if (condition) return;
  ++g_failures;
  std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, line);
  if constexpr (sizeof...(Args) == 0) {
    std::fputs(format, stderr);
  } else {
    std::fprintf(stderr, format, args...);
  }
  std::fputc('\n', stderr);
}
#define CHECK(condition, ...) check((condition), __LINE__, __VA_ARGS__)

struct Node {
  Node* left;
  Node* right;
  int64_t value;
};
struct Point {
  int64_t x;
  int64_t y;
};
struct Holder {  // the argument of the consumer goroutine
  Node* greeting;
  usgc_chan* requests;  // not GC objects: plain (non-reference) fields
  usgc_chan* replies;
  int64_t greeting_checksum;
};
struct Reply {
  Node* rebuilt;
  int64_t checksum_sum;
  int64_t trees;
};

usgc::Type<Node> g_node;
usgc::Type<Point> g_point;
usgc::Type<int64_t> g_numbers;
usgc::Type<Holder> g_holder;
usgc::Type<Reply> g_reply;

void register_types() {
  g_node = usgc::Type<Node>::object<offsetof(Node, left), offsetof(Node, right)>("Node");
  g_point = usgc::Type<Point>::object<>("Point");
  g_numbers = usgc::Type<int64_t>::scalar_array("int64[]");
  g_holder = usgc::Type<Holder>::object<offsetof(Holder, greeting)>("Holder");
  g_reply = usgc::Type<Reply>::object<offsetof(Reply, rebuilt)>("Reply");
  CHECK(g_node && g_point && g_numbers && g_holder && g_reply, "usgc::Type registration");
}

Node* make_tree(int depth, int64_t value, usgc_ownership ownership) {
  usgc::Roots<1> roots;
  Node* node = usgc::alloc(g_node, ownership);
  roots[0] = node;
  if (node == nullptr) return nullptr;
  node->value = value;
  if (depth > 0) {
    usgc::write(node, &node->left, make_tree(depth - 1, 2 * value + 1, ownership));
    usgc::write(node, &node->right, make_tree(depth - 1, 2 * value + 2, ownership));
  }
  return node;
}

int64_t checksum(const Node* node) {
  if (node == nullptr) return 0;
  return node->value * 7 + 31 * checksum(usgc::read(node, &node->left)) +
         17 * checksum(usgc::read(node, &node->right)) + 1;
}

int64_t tree_nodes(int depth) {
  return (int64_t{1} << (depth + 1)) - 1;
}

int64_t count_in_class(const Node* node, usgc_ownership ownership) {
  if (node == nullptr) return 0;
  return (usgc_ownership_of(node) == ownership) + count_in_class(node->left, ownership) +
         count_in_class(node->right, ownership);
}

void churn(long nodes) {
  usgc::Roots<1> roots;
  for (long i = 0; i < nodes; ++i) {
    Node* node = usgc::alloc(g_node, USGC_GOROUTINE_PRIVATE);
    if (node == nullptr) return;
    node->value = i;
    if (i % 64 != 0) usgc::write(node, &node->left, roots.get<Node>(0));
    roots[0] = node;
    if (i % 1024 == 0) usgc_safepoint_poll();
  }
}

void check_allocation() {
  usgc::Roots<8> roots;
  for (int c = 0; c < 4; ++c) {
    auto ownership = static_cast<usgc_ownership>(c);
    Node* node = usgc::alloc(g_node, ownership);
    roots[c] = node;
    CHECK(node != nullptr && usgc_ownership_of(node) == ownership &&
              usgc_type_of(node) == g_node.id() && node->left == nullptr && node->value == 0,
          "Node in class %d: allocated, zeroed, right class and type", c);
    void* numbers = usgc::alloc_array(g_numbers, 100, ownership);
    roots[4 + c] = numbers;
    CHECK(numbers != nullptr && usgc::array_length(numbers) == 100 &&
              usgc::array_data<int64_t>(numbers)[99] == 0,
          "int64[100] in class %d", c);
  }
  errno = 0;
  CHECK(
      usgc::alloc<Node>(g_node.id(), static_cast<usgc_ownership>(5)) == nullptr && errno == EINVAL,
      "bad class: EINVAL");
}

// The frame's destructor releases its STACK_LOCAL objects: the next frame gets the same space.
const void* stack_local_frame(int64_t mark) {
  usgc::Roots<1> roots;
  Point* first = nullptr;
  for (int i = 0; i < 500; ++i) {
    Point* point = usgc::alloc(g_point, USGC_STACK_LOCAL);
    if (point == nullptr || point->x != 0 || usgc_ownership_of(point) != USGC_STACK_LOCAL) {
      CHECK(false, "stack-local point %d zeroed and STACK_LOCAL", i);
      return nullptr;
    }
    point->x = mark;
    if (first == nullptr) first = point;
  }
  roots[0] = first;
  return first;
}

void check_stack_local_and_barriers() {
  const void* first = stack_local_frame(1);
  const void* again = stack_local_frame(2);
  CHECK(first != nullptr && first == again, "stack-local space reused after the frame pops");

  usgc::Roots<3> roots;
  Node* shared = usgc::alloc(g_node, USGC_GOROUTINE_SHARED);
  roots[0] = shared;
  Node* tree = make_tree(8, 1, USGC_GOROUTINE_PRIVATE);
  roots[1] = tree;
  int64_t sum = checksum(tree);
  usgc::write(shared, &shared->right, tree);
  CHECK(count_in_class(tree, USGC_GOROUTINE_SHARED) == tree_nodes(8),
        "a store into a shared object publishes the private closure");
  usgc::write(shared, &shared->left, nullptr);
  void* refs = usgc::alloc_array(usgc::kRefArray, 4, USGC_GOROUTINE_PRIVATE);
  roots[2] = refs;
  usgc::array_write(refs, 3, make_tree(2, 8, USGC_GOROUTINE_PRIVATE));
  int64_t leaf_sum = checksum(usgc::array_read<Node>(refs, 3));
  churn(100000);
  CHECK(usgc::collect(USGC_GC_PRIVATE) == 0 && usgc::collect(USGC_GC_SHARED) == 0, "collections");
  CHECK(checksum(usgc::read(shared, &shared->right)) == sum &&
            checksum(usgc::array_read<Node>(refs, 3)) == leaf_sum &&
            usgc_ownership_of(usgc::array_read<Node>(refs, 3)) == USGC_GOROUTINE_PRIVATE,
        "shared and private structures survive both collections unchanged");
}

constexpr int kTrees = 6;

void consumer(void* object) {
  usgc::Roots<3> roots;
  auto* holder = static_cast<Holder*>(object);
  roots[0] = holder;
  CHECK(usgc_ownership_of(holder) == USGC_GOROUTINE_SHARED &&
            checksum(holder->greeting) == holder->greeting_checksum,
        "usgc_go_object: the argument arrives published and intact");
  Reply* reply = usgc::alloc(g_reply, USGC_GOROUTINE_PRIVATE);
  roots[1] = reply;
  bool ok = false;
  while (usgc_chan_recv(holder->requests, &roots[2], &ok) == 0 && ok) {
    reply->checksum_sum += checksum(roots.get<Node>(2));
    reply->trees += 1;
    churn(5000);
  }
  roots[2] = nullptr;
  usgc::write(reply, &reply->rebuilt, make_tree(6, 3, USGC_GOROUTINE_PRIVATE));
  CHECK(usgc_chan_send(holder->replies, &roots[1]) == 0, "send the reply");
}

void check_channel_and_go() {
  usgc::Roots<3> roots;
  usgc_chan* requests = usgc_chan_make_refs(kTrees);
  usgc_chan* replies = usgc_chan_make_refs(1);
  if (requests == nullptr || replies == nullptr) {
    CHECK(false, "usgc_chan_make_refs");
    return;
  }
  int64_t expected = 0;
  for (int i = 0; i < kTrees; ++i) {
    roots[0] = make_tree(6, i, USGC_GOROUTINE_PRIVATE);
    expected += checksum(roots.get<Node>(0));
    CHECK(usgc_chan_send(requests, &roots[0]) == 0 &&
              usgc_ownership_of(roots[0]) == USGC_GOROUTINE_SHARED,
          "send tree %d: published", i);
  }
  roots[0] = nullptr;
  usgc_chan_close(requests);
  churn(30000);
  CHECK(usgc::collect(USGC_GC_SHARED) == 0, "shared collection while trees are buffered");

  Holder* holder = usgc::alloc(g_holder, USGC_GOROUTINE_PRIVATE);
  roots[1] = holder;
  usgc::write(holder, &holder->greeting, make_tree(4, 5, USGC_GOROUTINE_PRIVATE));
  holder->greeting_checksum = checksum(holder->greeting);
  holder->requests = requests;
  holder->replies = replies;
  CHECK(usgc_go_object(consumer, holder) == 0, "usgc_go_object");
  bool ok = false;
  CHECK(usgc_chan_recv(replies, &roots[2], &ok) == 0 && ok, "receive the reply");
  if (auto* reply = roots.get<Reply>(2)) {
    int64_t rebuilt = checksum(reply->rebuilt);
    churn(30000);
    CHECK(usgc::collect(USGC_GC_SHARED) == 0, "shared collection");
    CHECK(reply->trees == kTrees && reply->checksum_sum == expected &&
              checksum(reply->rebuilt) == rebuilt &&
              usgc_ownership_of(reply->rebuilt) == USGC_GOROUTINE_SHARED,
          "reply: %" PRId64 " trees, checksums %" PRId64 " (expected %d, %" PRId64 ")",
          reply->trees, reply->checksum_sum, kTrees, expected);
  }
  while (usgc_goroutine_count() > 1) usgc_yield();
  CHECK(usgc_chan_destroy(requests) == 0 && usgc_chan_destroy(replies) == 0, "destroy channels");
}

void* g_global_slot = nullptr;
usgc::GlobalHandle g_global_handle;  // destroyed after main returns: any thread may delete it
int64_t g_global_handle_checksum = 0;

void check_roots_and_handles() {
  CHECK(usgc_global_root_add(&g_global_slot) == 0, "usgc_global_root_add");
  int64_t global_sum = 0, local_sum = 0;
  usgc::Handle local;
  {
    usgc::Roots<1> roots;
    roots[0] = make_tree(5, 1, USGC_GOROUTINE_PRIVATE);
    global_sum = checksum(roots.get<Node>(0));
    usgc_global_store(&g_global_slot, roots[0]);
    roots[0] = make_tree(5, 2, USGC_GOROUTINE_PRIVATE);
    local_sum = checksum(roots.get<Node>(0));
    local = usgc::Handle(roots[0]);
    roots[0] = make_tree(5, 3, USGC_GOROUTINE_PRIVATE);
    g_global_handle_checksum = checksum(roots.get<Node>(0));
    g_global_handle = usgc::GlobalHandle(roots[0]);
  }
  CHECK(static_cast<bool>(local) && static_cast<bool>(g_global_handle), "handles made");
  usgc::Handle moved = std::move(local);
  CHECK(!local && moved.get() != nullptr, "a moved handle is empty, the target holds the object");
  churn(100000);
  CHECK(usgc::collect(USGC_GC_PRIVATE) == 0 && usgc::collect(USGC_GC_SHARED) == 0, "collections");
  CHECK(checksum(static_cast<Node*>(g_global_slot)) == global_sum &&
            usgc_ownership_of(g_global_slot) != USGC_GOROUTINE_PRIVATE,
        "global root: published and alive");
  CHECK(checksum(moved.get<Node>()) == local_sum &&
            count_in_class(moved.get<Node>(), USGC_GOROUTINE_PRIVATE) == tree_nodes(5),
        "local handle: alive and still private");
  CHECK(checksum(g_global_handle.get<Node>()) == g_global_handle_checksum &&
            count_in_class(g_global_handle.get<Node>(), USGC_GOROUTINE_PRIVATE) == 0,
        "global handle: published and alive");
}

void main_goroutine(void*) {
  register_types();
  check_allocation();
  check_stack_local_and_barriers();
  check_channel_and_go();
  check_roots_and_handles();
}

}  // namespace

int main() {
  if (usgc_init(nullptr) != 0) return 2;
  if (usgc_run_main(main_goroutine, nullptr) != 0) return 3;
  CHECK(checksum(g_global_handle.get<Node>()) == g_global_handle_checksum,
        "a global handle read from a thread that is no goroutine");
  g_global_handle.reset();
  usgc_gc_stats s = usgc::gc_stats();
  std::printf("stats: collections private %" PRIu64 " shared %" PRIu64
              "; pause max private %" PRIu64 " ns shared %" PRIu64 " ns\n",
              s.private_collections, s.shared_collections, s.private_pause_max_ns,
              s.shared_pause_max_ns);
  std::printf("stats: publications %" PRIu64 " (%" PRIu64 " objects); freed private %" PRIu64
              " shared %" PRIu64 " bytes\n",
              s.publications, s.objects_published, s.bytes_freed_private, s.bytes_freed_shared);
  CHECK(s.private_collections > 0 && s.shared_collections > 0 && s.bytes_freed_private > 0,
        "collections ran and freed garbage");
  for (int c = 0; c < 4; ++c)  // counts of this run: a few hundred thousand objects at most
    CHECK(s.objects_allocated[c] < 100'000'000, "objects_allocated[%d] = %" PRIu64 " is plausible",
          c, s.objects_allocated[c]);
  CHECK(usgc_shutdown() == 0, "usgc_shutdown");
  if (g_failures != 0) {
    std::printf("gc_api_example_cpp: %d of %d checks FAILED\n", g_failures, g_checks);
    return 1;
  }
  std::printf("gc_api_example_cpp: %d checks, all passed\n", g_checks);
  return 0;
}
