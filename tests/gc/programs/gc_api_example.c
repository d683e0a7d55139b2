/* tests/gc/programs/gc_api_example.c — the garbage-collected heap from a C11 program, through
 * <usgc/usgc.h> only, as a language runtime written in C would use it. Run by
 * tests/gc/c_api.test.sh (linked against libusgc.a and libusgc.so).
 *
 * Proves: types register (objects with references, scalar arrays) and bad layouts are refused;
 * allocation in all four ownership classes gives zeroed objects of the right class and type;
 * STACK_LOCAL objects are released when their USGC_ROOTS frame pops; usgc_write publishes a
 * private value stored into a shared object together with its private closure; a reference
 * channel publishes what it sends and keeps buffered values alive through shared collections;
 * usgc_go_object publishes its argument; a global root and usgc_global_store publish and keep
 * alive; local handles keep private objects alive (and private), global handles work from a
 * thread that is no goroutine; private and shared collections free garbage and never change a
 * live structure (checksums before and after). Prints the GC statistics and, last,
 * "gc_api_example: N checks, all passed"; exits 0 only then. With the argument
 * store-stack-local-into-heap it stores a STACK_LOCAL object into a heap object, which must stop
 * the process with a message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <usgc/usgc.h>

/* ---- checks ---- */
static int g_checks = 0;
static int g_failures = 0;
#define CHECK(condition, ...)                                              \
  do {                                                                     \
    ++g_checks;                                                            \
    if (!(condition)) {                                                    \
      ++g_failures;                                                        \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
    }                                                                      \
  } while (0)

/* ---- the program's types ---- */
typedef struct Node {
  struct Node* left;
  struct Node* right;
  int64_t value;
} Node;

typedef struct Point {
  int64_t x;
  int64_t y;
} Point;

/* The argument of the consumer goroutine (started with usgc_go_object). The channels are not GC
 * objects: they are held in scalar fields. */
typedef struct ConsumerArgs {
  Node* greeting;    /* a tree the consumer verifies */
  uint64_t requests; /* usgc_chan*: reference channel of trees to verify */
  uint64_t replies;  /* usgc_chan*: reference channel the consumer answers on */
  int64_t expected_greeting_checksum;
} ConsumerArgs;

typedef struct Reply {
  Node* rebuilt;        /* a tree built by the consumer (private to it until sent) */
  int64_t checksum_sum; /* sum of the checksums of the trees it received */
  int64_t trees;
} Reply;

static usgc_type_id g_node_type, g_point_type, g_i64_array_type, g_args_type, g_reply_type;

static const size_t kNodeRefs[] = {offsetof(Node, left), offsetof(Node, right)};
static const size_t kArgsRefs[] = {offsetof(ConsumerArgs, greeting)};
static const size_t kReplyRefs[] = {offsetof(Reply, rebuilt)};

static void register_types(void) {
  usgc_type_info node = {"Node", USGC_KIND_OBJECT, sizeof(Node), kNodeRefs, 2};
  usgc_type_info point = {"Point", USGC_KIND_OBJECT, sizeof(Point), NULL, 0};
  usgc_type_info i64s = {"int64[]", USGC_KIND_SCALAR_ARRAY, sizeof(int64_t), NULL, 0};
  usgc_type_info args = {"ConsumerArgs", USGC_KIND_OBJECT, sizeof(ConsumerArgs), kArgsRefs, 1};
  usgc_type_info reply = {"Reply", USGC_KIND_OBJECT, sizeof(Reply), kReplyRefs, 1};
  g_node_type = usgc_register_type(&node);
  g_point_type = usgc_register_type(&point);
  g_i64_array_type = usgc_register_type(&i64s);
  g_args_type = usgc_register_type(&args);
  g_reply_type = usgc_register_type(&reply);
  CHECK(g_node_type != 0 && g_point_type != 0 && g_i64_array_type != 0 && g_args_type != 0 &&
            g_reply_type != 0,
        "register: ids %u %u %u %u %u", g_node_type, g_point_type, g_i64_array_type, g_args_type,
        g_reply_type);
  CHECK(g_node_type != g_point_type && g_node_type != USGC_TYPE_REF_ARRAY &&
            g_node_type != USGC_TYPE_BYTE_ARRAY,
        "register: ids must be distinct from each other and the built-in ones");

  static const size_t misaligned[] = {4};
  usgc_type_info bad = {"Bad", USGC_KIND_OBJECT, 16, misaligned, 1};
  errno = 0;
  CHECK(usgc_register_type(&bad) == 0 && errno == EINVAL, "misaligned offset: errno %d", errno);
  static const size_t outside[] = {16};
  usgc_type_info bad2 = {"Bad2", USGC_KIND_OBJECT, 16, outside, 1};
  errno = 0;
  CHECK(usgc_register_type(&bad2) == 0 && errno == EINVAL, "offset past the size: errno %d", errno);
}

/* ---- trees: built with roots, checked with checksums ---- */
static Node* make_tree(int depth, int64_t value, usgc_ownership ownership) {
  USGC_ROOTS(roots, 1);
  Node* node = usgc_alloc(g_node_type, ownership);
  roots[0] = node; /* the children's allocations may collect */
  if (node == NULL) return NULL;
  node->value = value;
  if (depth > 0) {
    Node* left = make_tree(depth - 1, 2 * value + 1, ownership);
    usgc_write(node, (void**)&node->left, left);
    Node* right = make_tree(depth - 1, 2 * value + 2, ownership);
    usgc_write(node, (void**)&node->right, right);
  }
  return node;
}

static int64_t checksum(const Node* node) {
  if (node == NULL) return 0;
  const Node* left = usgc_read(node, (void* const*)&node->left);
  const Node* right = usgc_read(node, (void* const*)&node->right);
  return node->value * 7 + 31 * checksum(left) + 17 * checksum(right) + 1;
}

static int64_t tree_nodes(int depth) {
  return ((int64_t)1 << (depth + 1)) - 1;
}

/* Every node of the tree has ownership class `ownership`; returns how many differ. */
static int64_t nodes_not_in_class(const Node* node, usgc_ownership ownership) {
  if (node == NULL) return 0;
  return (usgc_ownership_of(node) != ownership) + nodes_not_in_class(node->left, ownership) +
         nodes_not_in_class(node->right, ownership);
}

/* Private garbage: chains of nodes dropped at once. */
static void churn(long nodes) {
  USGC_ROOTS(roots, 1);
  for (long i = 0; i < nodes; ++i) {
    Node* node = usgc_alloc(g_node_type, USGC_GOROUTINE_PRIVATE);
    if (node == NULL) return;
    node->value = i;
    if (i % 64 != 0) usgc_write(node, (void**)&node->left, roots[0]);
    roots[0] = node;
    if (i % 1024 == 0) usgc_safepoint_poll();
  }
}

static usgc_gc_stats stats_now(void) {
  usgc_gc_stats stats;
  memset(&stats, 0, sizeof stats);
  stats.version = USGC_GC_STATS_VERSION;
  CHECK(usgc_gc_get_stats(&stats) == 0, "usgc_gc_get_stats");
  return stats;
}

/* ---- allocation in the four classes ---- */
static void check_allocation(void) {
  static const char* const kClassNames[] = {"STACK_LOCAL", "GOROUTINE_PRIVATE", "GOROUTINE_SHARED",
                                            "GLOBAL_SHARED"};
  USGC_ROOTS(roots, 4);
  for (int c = 0; c < 4; ++c) {
    Node* node = usgc_alloc(g_node_type, (usgc_ownership)c);
    roots[c] = node;
    CHECK(node != NULL, "usgc_alloc(Node, %s): %s", kClassNames[c], usgc_last_error());
    if (node == NULL) continue;
    CHECK(((uintptr_t)node & 7) == 0, "%s object %p is 8-aligned", kClassNames[c], (void*)node);
    CHECK(usgc_ownership_of(node) == (usgc_ownership)c, "%s: class %d", kClassNames[c],
          (int)usgc_ownership_of(node));
    CHECK(usgc_type_of(node) == g_node_type, "%s: type %u", kClassNames[c], usgc_type_of(node));
    CHECK(node->left == NULL && node->right == NULL && node->value == 0, "%s: zeroed",
          kClassNames[c]);
  }
  /* Arrays of both kinds in every class. */
  for (int c = 0; c < 4; ++c) {
    void* numbers = usgc_alloc_array(g_i64_array_type, 1000, (usgc_ownership)c);
    CHECK(numbers != NULL && usgc_array_length(numbers) == 1000, "int64[1000] in class %d", c);
    if (numbers == NULL) continue;
    const int64_t* data = usgc_array_data(numbers);
    int64_t nonzero = 0;
    for (int i = 0; i < 1000; ++i) nonzero += data[i] != 0;
    CHECK(nonzero == 0 && usgc_ownership_of(numbers) == (usgc_ownership)c,
          "int64[] zeroed (%ld nonzero) and in class %d", (long)nonzero, c);
    void* refs = usgc_alloc_array(USGC_TYPE_REF_ARRAY, 10, (usgc_ownership)c);
    CHECK(refs != NULL && usgc_array_length(refs) == 10 && usgc_array_read(refs, 9) == NULL,
          "ref[10] in class %d", c);
  }
  /* The errors of usgc/gc.h. */
  errno = 0;
  CHECK(usgc_alloc(g_node_type, (usgc_ownership)7) == NULL && errno == EINVAL, "bad class: %d",
        errno);
  errno = 0;
  CHECK(usgc_alloc(60000, USGC_GOROUTINE_PRIVATE) == NULL && errno == EINVAL,
        "unregistered type: errno %d", errno);
  errno = 0;
  CHECK(usgc_alloc_array(g_node_type, 4, USGC_GOROUTINE_PRIVATE) == NULL && errno == EINVAL,
        "array of an object type: errno %d", errno);
  CHECK(usgc_last_error()[0] != '\0', "a failed call leaves a reason");

  /* The inline private fast path of a JIT. */
  usgc_type_layout layout;
  CHECK(usgc_type_layout_of(g_point_type, &layout) == 0, "usgc_type_layout_of(Point)");
  CHECK(usgc_type_layout_of(g_i64_array_type, &layout) == EINVAL, "layout of an array type");
  CHECK(usgc_type_layout_of(g_point_type, &layout) == 0 && layout.size_class != UINT32_MAX,
        "Point is small enough to inline");
  for (int i = 0; i < 10000; ++i) {
    Point* point = usgc_alloc_private_fast(&layout);
    if (point == NULL || usgc_ownership_of(point) != USGC_GOROUTINE_PRIVATE ||
        usgc_type_of(point) != g_point_type || point->x != 0 || point->y != 0) {
      CHECK(false, "fast-path allocation %d: %p", i, (void*)point);
      break;
    }
    point->x = i;
  }
}

/* STACK_LOCAL: bump allocation in the goroutine's arena, released when the frame pops. */
static void* stack_locals_in_a_frame(int count, int64_t mark) {
  USGC_ROOTS(roots, 1);
  Point* first = NULL;
  for (int i = 0; i < count; ++i) {
    Point* point = usgc_alloc(g_point_type, USGC_STACK_LOCAL);
    if (point == NULL || point->x != 0 || usgc_ownership_of(point) != USGC_STACK_LOCAL) {
      CHECK(false, "stack-local %d: %p zeroed and STACK_LOCAL", i, (void*)point);
      return NULL;
    }
    point->x = mark;
    point->y = i;
    if (first == NULL) first = point;
  }
  roots[0] = first; /* stack-local objects may sit in roots like any other */
  return first;     /* for the address only: it is released now */
}

static void check_stack_local(void) {
  void* first = stack_locals_in_a_frame(1000, 11);
  void* again = stack_locals_in_a_frame(1000, 22); /* zeroed again, or it fails inside */
  CHECK(first != NULL && first == again, "a popped frame's stack-local space is reused: %p then %p",
        first, again);
  /* Stack-local objects may refer to anything; a stack-local node is a root of the collector. */
  USGC_ROOTS(roots, 1);
  Node* local = usgc_alloc(g_node_type, USGC_STACK_LOCAL);
  roots[0] = local;
  Node* tree = make_tree(6, 1, USGC_GOROUTINE_PRIVATE);
  usgc_write(local, (void**)&local->left, tree);
  int64_t before = checksum(tree);
  churn(50000);
  CHECK(usgc_gc_collect(USGC_GC_PRIVATE) == 0, "private collection");
  CHECK(checksum(local->left) == before && usgc_ownership_of(tree) == USGC_GOROUTINE_PRIVATE,
        "a private tree held only by a stack-local object survives, still private");
}

/* ---- barriers and publication by stores ---- */
static void check_barriers(void) {
  USGC_ROOTS(roots, 4);
  Node* shared = usgc_alloc(g_node_type, USGC_GOROUTINE_SHARED);
  roots[0] = shared;
  Node* tree = make_tree(8, 1, USGC_GOROUTINE_PRIVATE);
  roots[1] = tree;
  int64_t sum = checksum(tree);
  CHECK(nodes_not_in_class(tree, USGC_GOROUTINE_PRIVATE) == 0, "a fresh tree is private");
  usgc_gc_stats before = stats_now();
  usgc_write(shared, (void**)&shared->left, tree);
  usgc_gc_stats after = stats_now();
  CHECK(nodes_not_in_class(tree, USGC_GOROUTINE_SHARED) == 0,
        "storing a private tree into a shared object publishes all %ld nodes", (long)tree_nodes(8));
  CHECK(after.publications > before.publications &&
            after.objects_published - before.objects_published >= (uint64_t)tree_nodes(8),
        "publication counted: %lu events, %lu objects",
        (unsigned long)(after.publications - before.publications),
        (unsigned long)(after.objects_published - before.objects_published));
  CHECK(after.barrier_slow_paths > before.barrier_slow_paths, "the store took the slow path");
  CHECK(usgc_read(shared, (void* const*)&shared->left) == tree && checksum(tree) == sum,
        "the published tree is unchanged");

  /* A private-to-private store stays private. */
  Node* a = make_tree(0, 5, USGC_GOROUTINE_PRIVATE);
  roots[2] = a;
  Node* b = make_tree(0, 6, USGC_GOROUTINE_PRIVATE);
  usgc_write(a, (void**)&a->right, b);
  CHECK(usgc_ownership_of(a) == USGC_GOROUTINE_PRIVATE &&
            usgc_ownership_of(b) == USGC_GOROUTINE_PRIVATE,
        "private into private: no publication");

  /* Array and bulk forms. */
  void* array = usgc_alloc_array(USGC_TYPE_REF_ARRAY, 16, USGC_GOROUTINE_SHARED);
  roots[3] = array;
  for (size_t i = 0; i < 16; ++i) {
    Node* leaf = make_tree(1, (int64_t)i, USGC_GOROUTINE_PRIVATE);
    usgc_array_write(array, i, leaf);
  }
  int64_t published = 0, values = 0;
  for (size_t i = 0; i < 16; ++i) {
    Node* leaf = usgc_array_read(array, i);
    published += nodes_not_in_class(leaf, USGC_GOROUTINE_SHARED) == 0;
    values += leaf != NULL && leaf->value == (int64_t)i;
  }
  CHECK(published == 16 && values == 16, "usgc_array_write published %ld/16 (values %ld/16)",
        (long)published, (long)values);

  Node* target = usgc_alloc(g_node_type, USGC_GOROUTINE_SHARED);
  roots[2] = target;
  void* pair[2];
  pair[0] = make_tree(3, 100, USGC_GOROUTINE_PRIVATE);
  roots[1] = pair[0];
  pair[1] = make_tree(3, 200, USGC_GOROUTINE_PRIVATE);
  int64_t pair_sum = checksum(pair[0]) + checksum(pair[1]);
  usgc_write_bulk(target, (void**)&target->left, pair, 2);
  CHECK(target->left == pair[0] && target->right == pair[1] &&
            nodes_not_in_class(target->left, USGC_GOROUTINE_SHARED) == 0 &&
            nodes_not_in_class(target->right, USGC_GOROUTINE_SHARED) == 0,
        "usgc_write_bulk stores both and publishes them");
  churn(20000);
  CHECK(usgc_gc_collect(USGC_GC_SHARED) == 0, "shared collection");
  CHECK(checksum(target->left) + checksum(target->right) == pair_sum && checksum(tree) == sum,
        "published trees survive a shared collection unchanged");
}

/* ---- a reference channel and usgc_go_object ---- */
enum { kTrees = 8, kTreeDepth = 7 };

static void consumer(void* object) {
  USGC_ROOTS(roots, 3);
  ConsumerArgs* args = object;
  roots[0] = args;
  CHECK(usgc_ownership_of(args) == USGC_GOROUTINE_SHARED, "the go argument arrives shared");
  CHECK(checksum(args->greeting) == args->expected_greeting_checksum &&
            nodes_not_in_class(args->greeting, USGC_GOROUTINE_SHARED) == 0,
        "usgc_go_object published the argument's closure, unchanged");
  usgc_chan* requests = (usgc_chan*)(uintptr_t)args->requests;
  usgc_chan* replies = (usgc_chan*)(uintptr_t)args->replies;

  Reply* reply = usgc_alloc(g_reply_type, USGC_GOROUTINE_PRIVATE);
  roots[1] = reply;
  bool ok = false;
  while (usgc_chan_recv(requests, &roots[2], &ok) == 0 && ok) {
    Node* tree = roots[2];
    CHECK(nodes_not_in_class(tree, USGC_GOROUTINE_SHARED) == 0, "a received tree is shared");
    reply->checksum_sum += checksum(tree);
    reply->trees += 1;
    churn(5000); /* private garbage of this goroutine: its own collections */
  }
  roots[2] = NULL;
  CHECK(usgc_gc_collect(USGC_GC_PRIVATE) == 0, "private collection in the consumer");
  Node* rebuilt = make_tree(kTreeDepth, 3, USGC_GOROUTINE_PRIVATE);
  usgc_write(reply, (void**)&reply->rebuilt, rebuilt);
  CHECK(usgc_chan_send(replies, &roots[1]) == 0, "send the reply");
}

static void check_channels(void) {
  USGC_ROOTS(roots, 3);
  usgc_chan* requests = usgc_chan_make_refs(kTrees);
  usgc_chan* replies = usgc_chan_make_refs(0);
  CHECK(requests != NULL && replies != NULL, "usgc_chan_make_refs");
  if (requests == NULL || replies == NULL) return;

  /* Fill the buffer before the consumer exists: only the channel holds the trees. */
  int64_t expected = 0;
  for (int i = 0; i < kTrees; ++i) {
    roots[0] = make_tree(kTreeDepth, i, USGC_GOROUTINE_PRIVATE);
    expected += checksum(roots[0]);
    CHECK(usgc_chan_send(requests, &roots[0]) == 0, "send tree %d", i);
    CHECK(nodes_not_in_class(roots[0], USGC_GOROUTINE_SHARED) == 0,
          "a send publishes the tree it sends (tree %d)", i);
  }
  roots[0] = NULL;
  CHECK(usgc_chan_close(requests) == 0, "close");
  churn(50000);
  CHECK(usgc_gc_collect(USGC_GC_PRIVATE) == 0 && usgc_gc_collect(USGC_GC_SHARED) == 0,
        "collections while the trees are buffered");

  ConsumerArgs* args = usgc_alloc(g_args_type, USGC_GOROUTINE_PRIVATE);
  roots[1] = args;
  Node* greeting = make_tree(5, 9, USGC_GOROUTINE_PRIVATE);
  usgc_write(args, (void**)&args->greeting, greeting);
  args->expected_greeting_checksum = checksum(greeting);
  args->requests = (uint64_t)(uintptr_t)requests;
  args->replies = (uint64_t)(uintptr_t)replies;
  CHECK(usgc_go_object(consumer, args) == 0, "usgc_go_object");
  CHECK(usgc_ownership_of(args) == USGC_GOROUTINE_SHARED &&
            usgc_ownership_of(greeting) == USGC_GOROUTINE_SHARED,
        "usgc_go_object publishes its argument before the goroutine runs");

  bool ok = false;
  CHECK(usgc_chan_recv(replies, &roots[2], &ok) == 0 && ok, "receive the reply");
  Reply* reply = roots[2];
  if (reply != NULL) {
    CHECK(reply->trees == kTrees && reply->checksum_sum == expected,
          "the consumer saw %ld trees, checksums %ld (expected %d, %ld)", (long)reply->trees,
          (long)reply->checksum_sum, kTrees, (long)expected);
    int64_t rebuilt = checksum(reply->rebuilt);
    churn(20000);
    CHECK(usgc_gc_collect(USGC_GC_SHARED) == 0, "shared collection after the reply");
    CHECK(usgc_ownership_of(reply) == USGC_GOROUTINE_SHARED &&
              nodes_not_in_class(reply->rebuilt, USGC_GOROUTINE_SHARED) == 0 &&
              checksum(reply->rebuilt) == rebuilt,
          "the reply and its tree arrive shared and survive");
  }
  while (usgc_goroutine_count() > 1) usgc_yield(); /* the consumer finishes */
  CHECK(usgc_chan_destroy(requests) == 0 && usgc_chan_destroy(replies) == 0, "destroy channels");
}

/* ---- global roots and handles ---- */
static void* g_global_slot = NULL;
static usgc_handle g_global_handle = 0;
static int64_t g_global_handle_checksum = 0;

static void check_globals_and_handles(void) {
  CHECK(usgc_global_root_add(&g_global_slot) == 0, "usgc_global_root_add");
  int64_t global_sum;
  {
    USGC_ROOTS(roots, 1);
    roots[0] = make_tree(6, 4, USGC_GOROUTINE_PRIVATE);
    global_sum = checksum(roots[0]);
    usgc_global_store(&g_global_slot, roots[0]);
    CHECK(usgc_ownership_of(g_global_slot) == USGC_GLOBAL_SHARED,
          "usgc_global_store publishes the value as GLOBAL_SHARED (it is class %d)",
          (int)usgc_ownership_of(g_global_slot));
    CHECK(nodes_not_in_class(g_global_slot, USGC_GOROUTINE_PRIVATE) == tree_nodes(6),
          "nothing reachable from a global root stays private");
  }
  /* A local handle: the only reference to a private tree; it stays private. */
  int64_t local_sum;
  usgc_handle local;
  {
    USGC_ROOTS(roots, 1);
    roots[0] = make_tree(6, 5, USGC_GOROUTINE_PRIVATE);
    local_sum = checksum(roots[0]);
    local = usgc_handle_new(roots[0]);
    CHECK(local != 0, "usgc_handle_new");
  }
  /* A global handle: publishes; read back from the main thread after usgc_run_main. */
  {
    USGC_ROOTS(roots, 1);
    roots[0] = make_tree(6, 6, USGC_GOROUTINE_PRIVATE);
    g_global_handle_checksum = checksum(roots[0]);
    g_global_handle = usgc_global_handle_new(roots[0]);
    CHECK(g_global_handle != 0, "usgc_global_handle_new");
    CHECK(nodes_not_in_class(roots[0], USGC_GOROUTINE_PRIVATE) == tree_nodes(6),
          "a global handle publishes its object's closure");
  }
  churn(100000);
  CHECK(usgc_gc_collect(USGC_GC_PRIVATE) == 0, "private collection");
  CHECK(usgc_gc_collect(USGC_GC_SHARED) == 0, "shared collection");
  churn(100000);
  CHECK(usgc_gc_collect(USGC_GC_PRIVATE) == 0, "private collection");
  Node* held = usgc_handle_get(local);
  CHECK(held != NULL && checksum(held) == local_sum &&
            nodes_not_in_class(held, USGC_GOROUTINE_PRIVATE) == 0,
        "a tree held only by a local handle survives both kinds, still private");
  usgc_handle_delete(local);
  CHECK(checksum(g_global_slot) == global_sum, "a tree held only by a global root survives");
  CHECK(checksum(usgc_global_handle_get(g_global_handle)) == g_global_handle_checksum,
        "a tree held only by a global handle survives");
}

/* ---- collections free garbage ---- */
static void check_collections_free(void) {
  usgc_gc_stats before = stats_now();
  churn(200000);
  CHECK(usgc_gc_collect(USGC_GC_PRIVATE) == 0, "private collection");
  CHECK(usgc_gc_collect(USGC_GC_SHARED) == 0, "shared collection");
  CHECK(usgc_gc_collect((usgc_gc_kind)9) == EINVAL, "bad kind: EINVAL");
  usgc_gc_stats after = stats_now();
  CHECK(after.private_collections > before.private_collections &&
            after.shared_collections > before.shared_collections,
        "collections counted: private %lu -> %lu, shared %lu -> %lu",
        (unsigned long)before.private_collections, (unsigned long)after.private_collections,
        (unsigned long)before.shared_collections, (unsigned long)after.shared_collections);
  CHECK(after.bytes_freed_private > before.bytes_freed_private,
        "private garbage freed: %lu bytes in all",
        (unsigned long)(after.bytes_freed_private - before.bytes_freed_private));
  uint64_t private_objects = after.objects_allocated[USGC_GOROUTINE_PRIVATE] -
                             before.objects_allocated[USGC_GOROUTINE_PRIVATE];
  CHECK(private_objects >= 200000 && private_objects < 300000,
        "objects_allocated counts the 200000 private allocations: %lu more",
        (unsigned long)private_objects);
}

/* A stack-local object may refer to another of the same frame (only heap objects may not). */
static void check_stack_local_into_stack_local(void) {
  USGC_ROOTS(roots, 2);
  Node* outer = usgc_alloc(g_node_type, USGC_STACK_LOCAL);
  roots[0] = outer;
  Node* inner = usgc_alloc(g_node_type, USGC_STACK_LOCAL);
  roots[1] = inner;
  inner->value = 77;
  usgc_write(outer, (void**)&outer->left, inner); /* must not stop the process */
  CHECK(outer->left == inner && outer->left->value == 77, "stack-local into stack-local");
}

/* Run as `gc_api_example store-stack-local-into-heap`: the store below is a compiler bug upstream,
 * and usgc must stop the process with a message naming it (the test expects a signal). */
static void store_stack_local_into_heap(void* unused) {
  (void)unused;
  register_types();
  USGC_ROOTS(roots, 2);
  Node* heap = usgc_alloc(g_node_type, USGC_GOROUTINE_PRIVATE);
  roots[0] = heap;
  Node* local = usgc_alloc(g_node_type, USGC_STACK_LOCAL);
  roots[1] = local;
  usgc_write(heap, (void**)&heap->left, local);
  printf("the store of a stack-local object into a heap object was not stopped\n");
}

static void main_goroutine(void* unused) {
  (void)unused;
  register_types();
  check_allocation();
  check_stack_local();
  check_barriers();
  check_channels();
  check_globals_and_handles();
  check_collections_free();
  check_stack_local_into_stack_local();
}

static uint64_t histogram_p50_us(const uint64_t* histogram) {
  uint64_t total = 0, seen = 0;
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) total += histogram[i];
  for (int i = 0; i < USGC_GC_HISTOGRAM_BUCKETS; ++i) {
    seen += histogram[i];
    if (total > 0 && seen * 2 >= total) return i == 0 ? 1 : (uint64_t)1 << i; /* bucket bound */
  }
  return 0;
}

int main(int argc, char** argv) {
  if (usgc_init(NULL) != 0) {
    fprintf(stderr, "usgc_init failed\n");
    return 2;
  }
  if (argc > 1 && strcmp(argv[1], "store-stack-local-into-heap") == 0) {
    usgc_run_main(store_stack_local_into_heap, NULL);
    return 0; /* not reached when usgc stops the store */
  }
  /* The main thread runs no goroutine: the mutator calls refuse, the any-thread ones work. */
  errno = 0;
  CHECK(usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 8, USGC_GOROUTINE_PRIVATE) == NULL && errno == EPERM,
        "usgc_alloc outside a goroutine: EPERM (errno %d)", errno);
  CHECK(usgc_gc_collect(USGC_GC_SHARED) == EPERM, "usgc_gc_collect outside a goroutine: EPERM");
  if (usgc_run_main(main_goroutine, NULL) != 0) {
    fprintf(stderr, "usgc_run_main failed\n");
    return 3;
  }
  Node* from_handle = usgc_global_handle_get(g_global_handle);
  CHECK(from_handle != NULL && checksum(from_handle) == g_global_handle_checksum,
        "a global handle is usable from a thread that is no goroutine");
  usgc_global_handle_delete(g_global_handle);

  usgc_gc_stats s = stats_now();
  printf("stats: collections private %lu shared %lu\n", (unsigned long)s.private_collections,
         (unsigned long)s.shared_collections);
  printf(
      "stats: pause private total %lu ns max %lu ns p50 <%lu us; shared total %lu ns max %lu ns "
      "p50 <%lu us\n",
      (unsigned long)s.private_pause_total_ns, (unsigned long)s.private_pause_max_ns,
      (unsigned long)histogram_p50_us(s.private_pause_histogram),
      (unsigned long)s.shared_pause_total_ns, (unsigned long)s.shared_pause_max_ns,
      (unsigned long)histogram_p50_us(s.shared_pause_histogram));
  printf("stats: objects allocated stack %lu private %lu shared %lu global %lu\n",
         (unsigned long)s.objects_allocated[0], (unsigned long)s.objects_allocated[1],
         (unsigned long)s.objects_allocated[2], (unsigned long)s.objects_allocated[3]);
  printf("stats: bytes in use stack %lu private %lu shared %lu global %lu; committed %lu\n",
         (unsigned long)s.bytes_in_use[0], (unsigned long)s.bytes_in_use[1],
         (unsigned long)s.bytes_in_use[2], (unsigned long)s.bytes_in_use[3],
         (unsigned long)s.bytes_committed);
  printf(
      "stats: publications %lu (%lu objects), barrier slow paths %lu, freed private %lu shared "
      "%lu bytes\n",
      (unsigned long)s.publications, (unsigned long)s.objects_published,
      (unsigned long)s.barrier_slow_paths, (unsigned long)s.bytes_freed_private,
      (unsigned long)s.bytes_freed_shared);
  CHECK(s.objects_allocated[0] > 0 && s.objects_allocated[1] > 0 && s.objects_allocated[2] > 0 &&
            s.objects_allocated[3] > 0,
        "every class counted allocations");
  CHECK(s.private_pause_max_ns > 0 && s.shared_pause_max_ns > 0, "pauses are measured");
  /* The figures are counts of this run: a few hundred thousand objects, a few MiB. */
  for (int c = 0; c < 4; ++c)
    CHECK(s.objects_allocated[c] < UINT64_C(100000000), "objects_allocated[%d] = %lu is plausible",
          c, (unsigned long)s.objects_allocated[c]);
  CHECK(s.bytes_in_use[1] + s.bytes_in_use[2] + s.bytes_in_use[3] <= s.bytes_committed,
        "heap bytes in use (%lu + %lu + %lu) fit in the committed bytes (%lu)",
        (unsigned long)s.bytes_in_use[1], (unsigned long)s.bytes_in_use[2],
        (unsigned long)s.bytes_in_use[3], (unsigned long)s.bytes_committed);

  usgc_gc_stats bad;
  memset(&bad, 0, sizeof bad);
  bad.version = 999;
  CHECK(usgc_gc_get_stats(&bad) == EINVAL && usgc_gc_get_stats(NULL) == EINVAL,
        "usgc_gc_get_stats: EINVAL for an unknown version or NULL");
  int shutdown = usgc_shutdown();
  CHECK(shutdown == 0, "usgc_shutdown: %d", shutdown);
  if (g_failures != 0) {
    printf("gc_api_example: %d of %d checks FAILED\n", g_failures, g_checks);
    return 1;
  }
  printf("gc_api_example: %d checks, all passed\n", g_checks);
  return 0;
}
