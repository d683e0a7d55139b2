/* tests/gc/programs/api_misuse.c — misuses of the GC API's stores, from the public headers only.
 * Run by tests/gc/api_misuse.test.sh, once built plainly and once with -DUSGC_CHECKED.
 *
 *   api-misuse CASE     each case makes one bad call on a goroutine; usgc must stop the process
 *                       with a message naming the call (the test checks it), so reaching the end
 *                       prints "api-misuse: CASE was not caught" and exits 3.
 * Cases: write-null (usgc_write on NULL: caught by usgc_write_checked under USGC_CHECKED only),
 * write-foreign (a pointer that is no GC object), write-field-outside, write-bulk-null,
 * write-bulk-overrun, array-write-null, array-write-foreign, global-store-null.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <usgc/usgc.h>

typedef struct Node {
  struct Node* left;
  struct Node* right;
  int64_t value;
} Node;

static const char* g_case;
/* Looks like an object to the inline fast path (8 readable bytes before it), but its "header"
 * names type 0xffff, which nobody registered. */
static uint64_t g_foreign[4] = {~(uint64_t)0, 0, 0, 0};

static void run_case(void* arg) {
  (void)arg;
  size_t offsets[] = {offsetof(Node, left), offsetof(Node, right)};
  usgc_type_info info = {"Node", USGC_KIND_OBJECT, sizeof(Node), offsets, 2};
  usgc_type_id node_type = usgc_register_type(&info);
  USGC_ROOTS(roots, 2);
  roots[0] = usgc_alloc(node_type, USGC_GOROUTINE_PRIVATE);
  roots[1] = usgc_alloc(node_type, USGC_GOROUTINE_SHARED);
  Node* node = (Node*)roots[0];
  Node* shared = (Node*)roots[1];
  void* foreign = &g_foreign[1];
  Node* nothing = NULL;
  void* values[4] = {node, node, node, node};
  if (strcmp(g_case, "write-null") == 0) {
    usgc_write(nothing, (void**)&node->left, node);
  } else if (strcmp(g_case, "write-foreign") == 0) {
    usgc_write(foreign, (void**)foreign, node);
  } else if (strcmp(g_case, "write-field-outside") == 0) {
    usgc_write(shared, (void**)((char*)shared + 4096), node);
  } else if (strcmp(g_case, "write-bulk-null") == 0) {
    usgc_write_bulk(nothing, (void**)&node->left, values, 2);
  } else if (strcmp(g_case, "write-bulk-overrun") == 0) {
    usgc_write_bulk(shared, (void**)&shared->left, values, 4);
  } else if (strcmp(g_case, "array-write-null") == 0) {
    usgc_array_write(nothing, 0, node);
  } else if (strcmp(g_case, "array-write-foreign") == 0) {
    usgc_array_write(foreign, 0, node);
  } else if (strcmp(g_case, "global-store-null") == 0) {
    usgc_global_store(NULL, node);
  } else {
    printf("api-misuse: unknown case %s\n", g_case);
    return;
  }
  printf("api-misuse: %s was not caught\n", g_case);
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  g_case = argv[1];
  if (usgc_init(NULL) != 0) return 2;
  usgc_run_main(run_case, NULL);
  return 3;
}
