/* jitgen/wasm/runtime/unknown_world.c — what `call unknown(...)` and `go unknown(...)` do in
 * WebAssembly: the interpreter's stand-in for code the analysis cannot see
 * (jitgen/interpreter/unknown_world.hpp), with the same observable behaviour:
 *   - every non-null reference argument becomes reachable from a global: it is kept in the world,
 *     a ring of USGC_WASM_WORLD_SLOTS references that the collector scans as a global root (the
 *     oldest entry is overwritten), published GLOBAL_SHARED like a store into a global;
 *   - a reference result is the newest object in the world whose site's IR type is the result's
 *     (null when there is none); an int/bool result is 0 (the lowered code's constant).
 * `go unknown(...)` keeps its arguments the same way and starts no goroutine.
 * The IR type of each site's objects is registered by the program's init
 * (usgc_wasm_register_value_type), by the site's type id. Hot path: none.
 */
#include "jitgen/wasm/runtime/runtime.h"

#define WORLD_SLOTS 256u
#define MAX_SITE_TYPES 65536u

static uint32_t world[WORLD_SLOTS];
static uint64_t world_next;
static uint32_t value_type_of_site_type[MAX_SITE_TYPES];

/* Objects of site type `type` have IR type `value_type` (plus one: 0 means unregistered). */
uint32_t EXPORT(usgc_wasm_register_value_type)(uint32_t type, uint32_t value_type) {
  if (type >= MAX_SITE_TYPES) return 1;
  value_type_of_site_type[type] = value_type + 1;
  return 0;
}

/* Keeps `value` (non-null) in the world; USGC_WASM_CHAN_STACK_VALUE when it is a STACK_LOCAL
 * object (an escape analysis bug the lowered code reports); `site`: the call's publication site. */
uint32_t EXPORT(usgc_wasm_unknown_keep)(uint32_t value, uint32_t site) {
  if (value == 0) return USGC_WASM_CHAN_DONE;
  if (class_of_object(value) < 3 && publish(value, 3, site)) return USGC_WASM_CHAN_STACK_VALUE;
  world[world_next++ % WORLD_SLOTS] = value;
  return USGC_WASM_CHAN_DONE;
}

/* The newest object kept whose IR type is `value_type`, or 0. */
uint32_t EXPORT(usgc_wasm_unknown_newest)(uint32_t value_type) {
  uint64_t kept = world_next < WORLD_SLOTS ? world_next : WORLD_SLOTS;
  for (uint64_t back = 1; back <= kept; ++back) {
    uint32_t object = world[(world_next - back) % WORLD_SLOTS];
    if (object == 0) continue;
    uint32_t type = (uint32_t)(HEADER(object) >> 8) & 0xffff;
    if (value_type_of_site_type[type] == value_type + 1) return object;
  }
  return 0;
}

void unknown_world_visit_roots(root_visitor visit, void* context) {
  for (uint32_t i = 0; i < WORLD_SLOTS; ++i)
    if (world[i] != 0) visit((void**)&world[i], context);
}

/* A channel type made for a capacity (channel_type) answers as its site's type does. */
void unknown_world_alias_type(uint32_t type, uint32_t site_type) {
  if (type < MAX_SITE_TYPES && site_type < MAX_SITE_TYPES)
    value_type_of_site_type[type] = value_type_of_site_type[site_type];
}
