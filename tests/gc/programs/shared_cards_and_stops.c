/* tests/gc/programs/shared_cards_and_stops.c — shared collections from a C11 program, through
 * <usgc/usgc.h> only, as an embedder sees them. Run by tests/gc/shared_collections.test.sh with
 * USGC_VERIFY=1 and two Ps.
 *
 * Proves: old shared objects whose only reference to a young shared object was stored since the
 * last collection keep it alive through minor collections (the dirty cards, scanned by every
 * marker in parallel) and through full ones (mark bitmaps cleared lazily), over many
 * collections; meanwhile two goroutines that run on the Ps when the world stops (allocating
 * private and shared objects, polling) keep every shared object their private lists refer to
 * (they are scanned by their own thread after the start stop, before they run on). Prints, last,
 * "shared_cards_and_stops: N checks, all passed"; exits 0 only then.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <usgc/usgc.h>

static atomic_long g_checks;
static atomic_long g_failures;
#define CHECK(condition, ...)                                              \
  do {                                                                     \
    atomic_fetch_add(&g_checks, 1);                                        \
    if (!(condition)) {                                                    \
      atomic_fetch_add(&g_failures, 1);                                    \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fputc('\n', stderr);                                                 \
    }                                                                      \
  } while (0)

typedef struct Box {
  struct Box* ref;
  int64_t magic;
} Box;

static usgc_type_id g_box_type;

static Box* new_box(usgc_ownership ownership, int64_t magic) {
  Box* box = (Box*)usgc_alloc(g_box_type, ownership);
  if (box == NULL) {
    fprintf(stderr, "usgc_alloc: %s\n", usgc_last_error());
    return NULL;
  }
  box->magic = magic;
  return box;
}

/* ---- the goroutines that run while the world stops ---- */
enum { kListLength = 64 };
static atomic_int g_stop;
static usgc_waitgroup g_workers = USGC_WAITGROUP_INIT;

static void worker(void* argument) {
  int64_t seed = (int64_t)(intptr_t)argument;
  USGC_ROOTS(roots, 3);
  /* A private array of private nodes, each referring to a shared box holding its index + seed. */
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kListLength, USGC_GOROUTINE_PRIVATE);
  CHECK(roots[0] != NULL, "worker %ld: the private array", (long)seed);
  if (roots[0] == NULL) {
    usgc_waitgroup_done(&g_workers);
    return;
  }
  for (int i = 0; i < kListLength; ++i) {
    Box* node = new_box(USGC_GOROUTINE_PRIVATE, i);
    if (node == NULL) break;
    usgc_array_write(roots[0], (size_t)i, node);
    roots[2] = new_box(USGC_GOROUTINE_SHARED, seed + i);
    if (roots[2] == NULL) break;
    usgc_write(node, (void**)&node->ref, roots[2]);
  }
  uint64_t round = 0;
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    /* Replace one node's shared box, make private and shared garbage, check every box. */
    int i = (int)(round % kListLength);
    roots[2] = new_box(USGC_GOROUTINE_SHARED, seed + i);
    if (roots[2] == NULL) break;
    Box* node = (Box*)usgc_array_read(roots[0], (size_t)i);
    usgc_write(node, (void**)&node->ref, roots[2]);
    for (int k = 0; k < 200; ++k) roots[1] = new_box(USGC_GOROUTINE_PRIVATE, k);
    for (int k = 0; k < 20; ++k) roots[1] = new_box(USGC_GOROUTINE_SHARED, k);
    if (round % 16 == 0) {
      for (int j = 0; j < kListLength; ++j) {
        Box* n = (Box*)usgc_array_read(roots[0], (size_t)j);
        Box* s = (Box*)usgc_read(n, (void**)&n->ref);
        CHECK(s != NULL && s->magic == seed + j, "worker %ld: box %d holds %ld", (long)seed, j,
              s != NULL ? (long)s->magic : -1L);
      }
    }
    usgc_safepoint_poll();
    ++round;
  }
  usgc_waitgroup_done(&g_workers);
}

/* ---- the main goroutine: old shared boxes given young referents, collections ---- */
enum { kOld = 60000, kStride = 37, kRounds = 25 };

static void main_goroutine(void* unused) {
  (void)unused;
  usgc_waitgroup_add(&g_workers, 2);
  for (int w = 0; w < 2; ++w) {
    if (usgc_go(worker, (void*)(intptr_t)((w + 1) * 1000000), NULL) != 0) {
      CHECK(0, "usgc_go failed");
      usgc_waitgroup_done(&g_workers);
    }
  }
  USGC_ROOTS(roots, 2);
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kOld, USGC_GOROUTINE_SHARED);
  CHECK(roots[0] != NULL, "the array of old boxes");
  if (roots[0] == NULL) return;
  for (size_t i = 0; i < kOld; ++i)
    usgc_array_write(roots[0], i, new_box(USGC_GOROUTINE_SHARED, -1));
  CHECK(usgc_gc_collect(USGC_GC_SHARED) == 0, "full collection"); /* every box is old now */
  for (int round = 0; round < kRounds; ++round) {
    for (size_t i = 0; i < kOld; i += kStride) {
      roots[1] = new_box(USGC_GOROUTINE_SHARED, (int64_t)round * 1000000 + (int64_t)i);
      if (roots[1] == NULL) return;
      Box* old = (Box*)usgc_array_read(roots[0], i);
      usgc_write(old, (void**)&old->ref, roots[1]); /* the only reference once roots[1] moves on */
    }
    roots[1] = NULL;
    usgc_gc_kind kind = round % 5 == 4 ? USGC_GC_SHARED : USGC_GC_SHARED_MINOR;
    CHECK(usgc_gc_collect(kind) == 0, "collection %d", round);
    for (size_t i = 0; i < kOld; i += kStride) {
      Box* old = (Box*)usgc_array_read(roots[0], i);
      Box* young = (Box*)usgc_read(old, (void**)&old->ref);
      CHECK(young != NULL && young->magic == (int64_t)round * 1000000 + (int64_t)i,
            "round %d: box %zu refers to %ld", round, i, young != NULL ? (long)young->magic : -1L);
    }
  }
  atomic_store(&g_stop, 1);
  usgc_waitgroup_wait(&g_workers);
}

int main(void) {
  static const size_t offsets[] = {offsetof(Box, ref)};
  usgc_type_info info = {"Box", USGC_KIND_OBJECT, sizeof(Box), offsets, 1};
  if (usgc_init(NULL) != 0) {
    fprintf(stderr, "usgc_init failed\n");
    return 1;
  }
  g_box_type = usgc_register_type(&info);
  if (g_box_type == 0) {
    fprintf(stderr, "usgc_register_type: %s\n", usgc_last_error());
    return 1;
  }
  if (usgc_run_main(main_goroutine, NULL) != 0) return 1;
  usgc_shutdown();
  long checks = atomic_load(&g_checks);
  long failures = atomic_load(&g_failures);
  if (failures != 0) {
    printf("shared_cards_and_stops: %ld of %ld checks failed\n", failures, checks);
    return 1;
  }
  printf("shared_cards_and_stops: %ld checks, all passed\n", checks);
  return 0;
}
