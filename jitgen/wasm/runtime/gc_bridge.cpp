// jitgen/wasm/runtime/gc_bridge.cpp — the slow paths the lowered code calls (module "usgc"),
// served by usgc's own collector compiled for wasm32: gc/ (block pool, private heaps and their
// collector, publication, shared heap and shared collector) over the WebAssembly back end of
// kernel_iface (kernel_iface/wasm32/: memory from memory.grow, decommit as zeroing, no signals,
// no threads), with one P and the single-threaded world of safepoint/wasm32/. There is no second
// collector: every object the program allocates lives in the collector's blocks.
//
// What this file adds to gc/ is the translation between the lowered ABI (wasm_abi.h) and the
// collector's entry points:
//   - types: site s is type s + USGC_WASM_FIRST_TYPE in the collector's registry (registered in
//     order by the module's `init`; a site's reference words are collected until the next
//     registration, since the registry takes a layout at once); a channel gets one type per
//     capacity (channel_type), whose buffer words are reference fields when it carries references;
//   - the mutator record: each goroutine's gc::Mutator (goroutines.c asks for one per goroutine);
//     its first member is the usgc_mutator the inline sequences use (offsets in wasm_abi.h);
//   - roots: frames and stack arenas are the collector's own (through the mutators); what the
//     runtime holds besides (goroutine inputs, hand-overs, waited channels, the unknown world) is
//     the GcHooks::visit_runtime_roots of shared collections; reference globals are global roots;
//   - the STACK_LOCAL checks whose failure the lowered code reports with its position; the
//     collector's own checks (a STACK_LOCAL object deeper in a published graph) stop the program
//     with the position of the publication site being served (publication_site.cpp).
// Invariants: the private-heap invariant holds because every publication point of the lowered
// program (barrier slow path, `go`, send, global store, unknown code) publishes through gc/.
// Single-threaded: one instance, one thread; goroutines are coroutines (goroutines.c).
// Hot path: none (these are the slow paths of the inline sequences).
#include <cstdio>
#include <cstring>
#include <new>

#include "gc/allocation.hpp"
#include "gc/block.hpp"
#include "gc/gc_state.hpp"
#include "gc/publication.hpp"
#include "gc/size_classes.hpp"
#include "gc/type_registry.hpp"
#include "jitgen/wasm/runtime/runtime.h"
#include "kernel_iface/virtual_memory.hpp"
#include "usgc/gc.h"
#include "usgc/safepoint.h"

static_assert(offsetof(usgc_mutator, heap_id) == USGC_WASM_MUTATOR_HEAP_ID, "wasm ABI");
static_assert(offsetof(usgc_mutator, frames) == USGC_WASM_MUTATOR_FRAMES, "wasm ABI");
static_assert(offsetof(usgc_mutator, arena_top) == USGC_WASM_MUTATOR_ARENA_TOP, "wasm ABI");
static_assert(offsetof(usgc_mutator, arena_limit) == USGC_WASM_MUTATOR_ARENA_LIMIT, "wasm ABI");
static_assert(offsetof(usgc_mutator, runs) == USGC_WASM_MUTATOR_RUNS, "wasm ABI");
static_assert(sizeof(usgc_alloc_run) == USGC_WASM_RUN_BYTES, "wasm ABI");
static_assert(sizeof(usgc_frame) == USGC_WASM_FRAME_BYTES, "wasm ABI");
static_assert(offsetof(usgc_frame, arena_mark) == USGC_WASM_FRAME_ARENA_MARK, "wasm ABI");
static_assert(offsetof(usgc_poll_slot, poll_flag) == 4, "the flag word of the poll slot");

namespace {

using namespace usgc;
using gc::Ownership;

constexpr uint32_t kWasmSlotBytes[USGC_WASM_CLASS_COUNT] = USGC_WASM_CLASS_SLOT_SIZES;
constexpr bool slot_sizes_are_the_collectors() {
  if (USGC_WASM_CLASS_COUNT != gc::kSizeClassCount) return false;
  for (uint32_t c = 0; c < gc::kSizeClassCount; ++c)
    if (kWasmSlotBytes[c] != gc::kSlotBytes[c]) return false;
  return true;
}
static_assert(slot_sizes_are_the_collectors(), "the lowering's size classes are gc/'s");

constexpr uint32_t kMaxTypes = USGC_MAX_TYPES + 1;
constexpr uint32_t kMaxPendingWords = 4096;
constexpr uint32_t kMaxChannelTypes = 4096;

struct SiteType {
  uint8_t kind = 0;  // USGC_WASM_KIND_*
  bool registered = false;
};
SiteType g_types[kMaxTypes];  // by type id (sites and channel capacities)

// The site type being declared by `init` (its reference words arrive one by one).
uint32_t g_pending_id = 0, g_pending_kind = 0, g_pending_payload = 0;
size_t g_pending_offsets[kMaxPendingWords];
uint32_t g_pending_count = 0;
bool g_pending_failed = false;

struct ChannelType {
  uint32_t site_type;
  uint64_t capacity;
  uint32_t type;
};
ChannelType g_channel_types[kMaxChannelTypes];
uint32_t g_channel_type_count = 0;

usgc_poll_slot g_poll{};  // poll_flag: the lowered code's flag word
uint32_t g_stress_every = 0, g_stress_count = 0;
gc::Mutator* g_running = nullptr;
uint32_t g_runtime_pages = 0;  // pages of allocate_pages in use (records, shadow stacks, tables)

uint64_t header_bits(uint32_t type, uint32_t ownership) {
  uint64_t array = g_types[type].kind == USGC_WASM_KIND_SCALAR_ARRAY ||
                           g_types[type].kind == USGC_WASM_KIND_REFERENCE_ARRAY
                       ? gc::kArrayFlag
                       : 0;
  return uint64_t{ownership} | array | (uint64_t{type} << gc::kTypeShift);
}

// Registers the pending site type; false when the registry refused it or gave another id.
bool commit_pending_type() {
  if (g_pending_id == 0) return !g_pending_failed;
  usgc_type_info info{};
  char name[32];
  std::snprintf(name, sizeof(name), "site %u", g_pending_id - USGC_WASM_FIRST_TYPE);
  info.name = name;
  if (g_pending_kind == USGC_WASM_KIND_STRUCT) {
    info.kind = USGC_KIND_OBJECT;
    info.size = g_pending_payload;
    info.pointer_offsets = g_pending_offsets;
    info.pointer_count = g_pending_count;
  } else if (g_pending_kind == USGC_WASM_KIND_SCALAR_ARRAY) {
    info.kind = USGC_KIND_SCALAR_ARRAY;
    info.size = 8;
  } else if (g_pending_kind == USGC_WASM_KIND_REFERENCE_ARRAY) {
    info.kind = USGC_KIND_POINTER_ARRAY;
    info.size = gc::kReferenceWordBytes;
  } else {  // a channel site: its capacity-0 layout (channel_type makes the others)
    info.kind = USGC_KIND_OBJECT;
    info.size = 8 * USGC_WASM_CHANNEL_WORDS;
  }
  uint32_t id = usgc_register_type(&info);
  if (id != g_pending_id) g_pending_failed = true;
  g_types[g_pending_id] = {static_cast<uint8_t>(g_pending_kind), true};
  g_pending_id = 0;
  g_pending_count = 0;
  return !g_pending_failed;
}

gc::Mutator& running() {
  return *g_running;
}

// Roots of shared collections the collector cannot see in the mutators.
void visit_runtime_roots(void (*visit)(void** slot, void* context), void* context) {
  goroutines_visit_roots(visit, context);
  unknown_world_visit_roots(visit, context);
}

uint32_t address_of(void* object) {
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(object));
}
void* object_at(uint32_t address) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(address));
}

bool is_stack_local(uint32_t object) {
  uint64_t header = HEADER(object);
  return (header & gc::kClassMask) == USGC_STACK_LOCAL && !(header & gc::kStackSubstituteFlag);
}

}  // namespace

extern "C" {

void __wasm_call_ctors(void);

// ---- pages for the runtime's own records (not GC heap) ----------------------------------------
uint32_t allocate_pages(uint32_t pages) {
  auto mapping = kernel::map_aligned(size_t{pages} * PAGE, PAGE);
  if (!mapping.ok()) return 0;
  g_runtime_pages += pages;
  return address_of(mapping.value());
}

void release_pages(uint32_t address, uint32_t pages) {
  if (kernel::unmap(object_at(address), size_t{pages} * PAGE).ok()) g_runtime_pages -= pages;
}

// ---- mutators ---------------------------------------------------------------------------------
uint32_t mutator_new(uint32_t goroutine_id) {
  auto* m = new (std::nothrow) gc::Mutator();
  if (m == nullptr) return 0;
  gc::mutator_register(m, goroutine_id, nullptr);
  // The stack arena now, not at the first stack allocation: a frame pushed before it existed
  // would record a null arena mark, and the inline bump from a null top passes its limit check.
  gc::AcquireFailure failure = gc::AcquireFailure::kNone;
  m->arena = gc::acquire_block(gc::BlockKind::kArena, 0, m->abi.heap_id, &failure);
  if (m->arena == nullptr) {
    gc::mutator_unregister(m);
    delete m;
    return 0;
  }
  m->abi.arena_top = m->arena->slots_begin();
  m->abi.arena_limit = reinterpret_cast<char*>(m->arena) + gc::kBlockBytes;
  return address_of(m);
}

void mutator_exit(uint32_t mutator) {
  auto* m = static_cast<gc::Mutator*>(object_at(mutator));
  if (m == g_running) {
    gc::set_current_mutator(nullptr);
    g_running = nullptr;
  }
  gc::mutator_unregister(m);
  delete m;
}

void mutator_switch_to(uint32_t mutator) {
  g_running = static_cast<gc::Mutator*>(object_at(mutator));
  gc::set_current_mutator(g_running);
}

uint64_t mutator_heap_id(uint32_t mutator) {
  return static_cast<gc::Mutator*>(object_at(mutator))->abi.heap_id;
}

// ---- objects ------------------------------------------------------------------------------------
uint32_t class_of_object(uint32_t object) {
  return static_cast<uint32_t>(HEADER(object) & gc::kClassMask);
}

uint32_t kind_of_object(uint32_t object) {
  return g_types[gc::type_of(HEADER(object))].kind;
}

uint32_t allocate_object(uint32_t type, uint32_t payload, uint32_t ownership) {
  if (type >= kMaxTypes || !g_types[type].registered || ownership > USGC_GLOBAL_SHARED ||
      payload > 0x3ffffff0u || g_running == nullptr)
    return 0;
  const size_t bytes = size_t{payload} + gc::kHeaderBytes;
  const uint64_t header = header_bits(type, ownership);
  void* object = nullptr;
  if (ownership == USGC_STACK_LOCAL) {
    object = gc::allocate_stack_local(running(), header, bytes);
  } else if (ownership == USGC_GOROUTINE_PRIVATE) {
    object = gc::allocate_private(running(), header, bytes, gc::size_class_of(bytes));
  } else {
    object = gc::allocate_shared(running(), header, bytes, gc::size_class_of(bytes));
  }
  return address_of(object);
}

int publish(uint32_t object, uint32_t ownership, uint32_t site) {
  if (object == 0) return 0;
  if (is_stack_local(object)) return 1;
  publication_site_enter(site);
  gc::publish_for_store(object_at(object), static_cast<Ownership>(ownership), "publish");
  publication_site_leave();
  return 0;
}

uint32_t channel_type(uint32_t type, uint64_t capacity) {
  if (type >= kMaxTypes || !g_types[type].registered) return 0;
  if (capacity == 0) return type;
  for (uint32_t i = 0; i < g_channel_type_count; ++i)
    if (g_channel_types[i].site_type == type && g_channel_types[i].capacity == capacity)
      return g_channel_types[i].type;
  if (g_channel_type_count == kMaxChannelTypes || capacity > (1u << 24)) return 0;
  const bool references = g_types[type].kind == USGC_WASM_KIND_REFERENCE_CHANNEL;
  size_t* offsets = nullptr;
  if (references) {
    offsets = new (std::nothrow) size_t[capacity];
    if (offsets == nullptr) return 0;
    for (uint64_t i = 0; i < capacity; ++i) offsets[i] = 8 * (USGC_WASM_CHANNEL_WORDS + i);
  }
  char name[48];
  std::snprintf(name, sizeof(name), "chan site %u cap %llu", type - USGC_WASM_FIRST_TYPE,
                static_cast<unsigned long long>(capacity));
  const auto words = static_cast<size_t>(capacity);
  usgc_type_info info{name, USGC_KIND_OBJECT, 8 * (USGC_WASM_CHANNEL_WORDS + words), offsets,
                      references ? words : 0};
  uint32_t id = usgc_register_type(&info);
  delete[] offsets;  // the registry copied them
  if (id == 0 || id >= kMaxTypes) return 0;
  g_types[id] = g_types[type];
  unknown_world_alias_type(id, type);
  g_channel_types[g_channel_type_count++] = {type, capacity, id};
  return id;
}

// ---- the exports ------------------------------------------------------------------------------
// The collector (one P, this file's runtime roots) and the main goroutine; the main goroutine's
// mutator record, 0 when memory cannot grow.
uint32_t EXPORT(usgc_wasm_init)(uint32_t gc_stress_every) {
  __wasm_call_ctors();
  gc::GcHooks hooks{};
  // A collector waiting for another thread's collection counts as stopped meanwhile: with one
  // thread there is no such wait, and nothing to record.
  hooks.enter_native = [] {};
  hooks.leave_native = [] {};
  hooks.visit_runtime_roots = visit_runtime_roots;
  publication_site_install_reporter();
  if (gc::gc_initialize(1, hooks) != 0) return 0;
  g_stress_every = gc_stress_every;
  if (goroutines_init() == 0) return 0;
  return address_of(g_running);
}

// The flag word the lowered polls load (nonzero: a safepoint is requested).
uint32_t EXPORT(usgc_wasm_poll_flag)(void) {
  return address_of(const_cast<uint32_t*>(&g_poll.poll_flag));
}

// Zeroed memory for the program's own tables (global slots, counters); never freed. Also ends
// the type declarations of `init` (it comes after them).
uint32_t EXPORT(usgc_wasm_reserve)(uint32_t bytes) {
  if (!commit_pending_type()) return 0;
  return allocate_pages((bytes + PAGE - 1) / PAGE + (bytes == 0));
}

// The reference globals: 8-byte words, each a global root of the collector.
void EXPORT(usgc_wasm_set_global_roots)(uint32_t slots, uint32_t count) {
  for (uint32_t g = 0; g < count; ++g)
    (void)usgc_global_root_add(static_cast<void**>(object_at(slots + 8 * g)));
}

// Site type `id` (in order from USGC_WASM_FIRST_TYPE): a struct of `payload` bytes, an array of
// scalars or references, or a channel. 0 on success.
uint32_t EXPORT(usgc_wasm_register_type)(uint32_t id, uint32_t kind, uint32_t payload) {
  if (!commit_pending_type() || id == 0 || id >= kMaxTypes ||
      kind > USGC_WASM_KIND_REFERENCE_CHANNEL)
    return 1;
  g_pending_id = id;
  g_pending_kind = kind;
  g_pending_payload = payload;
  return 0;
}

// Word `word` of the struct type being declared holds a reference. 0 on success.
uint32_t EXPORT(usgc_wasm_type_reference_word)(uint32_t id, uint32_t word) {
  if (id != g_pending_id || g_pending_count == kMaxPendingWords) {
    g_pending_failed = true;
    return 1;
  }
  g_pending_offsets[g_pending_count++] = size_t{8} * word;
  return 0;
}

// The inline private path's refill: the collector's next run of class `c` (it may collect the
// goroutine's private heap first); returns the slot it takes (the caller writes the header), 0
// when memory is exhausted.
uint32_t EXPORT(usgc_wasm_alloc_private_slow)(uint32_t c) {
  if (c >= gc::kSizeClassCount || g_running == nullptr) return 0;
  void* object = gc::allocate_private(running(), USGC_GOROUTINE_PRIVATE, gc::kSlotBytes[c], c);
  return object == nullptr ? 0 : address_of(object) - static_cast<uint32_t>(gc::kHeaderBytes);
}

// An object of `type`, `payload` bytes, in class `ownership` (1..3), header written; 0 when out
// of memory. Private objects too large for a size class come here too.
uint32_t EXPORT(usgc_wasm_alloc)(uint32_t type, uint32_t payload, uint32_t ownership) {
  if (ownership < USGC_GOROUTINE_PRIVATE) return 0;
  return allocate_object(type, payload, ownership);
}

// The stack arena is full (or not made yet): the collector's arena, or a GOROUTINE_PRIVATE
// substitute (header bit 6) when it is full.
uint32_t EXPORT(usgc_wasm_alloc_stack_slow)(uint32_t type, uint32_t payload) {
  return allocate_object(type, payload, USGC_STACK_LOCAL);
}

// An array of `length` 8-byte elements: [length][elements].
uint32_t EXPORT(usgc_wasm_alloc_array)(uint32_t type, uint64_t length, uint32_t ownership) {
  if (length > (0x3ffffff0u - 16) / 8) return 0;
  if (ownership == USGC_STACK_LOCAL) ownership = USGC_GOROUTINE_PRIVATE;  // never on the stack
  uint32_t object = allocate_object(type, 8 + static_cast<uint32_t>(length) * 8, ownership);
  if (object != 0) WORD(object) = length;
  return object;
}

// The barrier's slow path: the store of `value` into the reference word `field` of `object`
// (not a young object of this goroutine, or `value` may be STACK_LOCAL), through the collector's
// barrier (publication, remembered sets, cards). USGC_WASM_BARRIER_STACK_INTO_HEAP, with nothing
// stored, for a STACK_LOCAL value stored into a heap object; `site`: the store's publication site.
uint32_t EXPORT(usgc_wasm_barrier_slow)(uint32_t object, uint32_t field, uint32_t value,
                                        uint32_t site) {
  if (value != 0 && is_stack_local(value)) {
    uint64_t target = HEADER(object);
    if ((target & gc::kClassMask) != USGC_STACK_LOCAL && !(target & gc::kStackSubstituteFlag))
      return USGC_WASM_BARRIER_STACK_INTO_HEAP;
  }
  publication_site_enter(site);
  usgc_write_slow(object_at(object), static_cast<void**>(object_at(field)), object_at(value));
  publication_site_leave();
  return 0;
}

// A store into a reference global: what it refers to becomes GLOBAL_SHARED.
uint32_t EXPORT(usgc_wasm_global_store)(uint32_t slot, uint32_t value, uint32_t site) {
  if (value != 0 && is_stack_local(value)) return USGC_WASM_BARRIER_STACK_INTO_HEAP;
  publication_site_enter(site);
  usgc_global_store(static_cast<void**>(object_at(slot)), object_at(value));
  publication_site_leave();
  return 0;
}

// The poll's slow path: the flag word was set (a shared collection was requested at a
// safepoint: usgc_wasm_collect).
void EXPORT(usgc_wasm_poll_slow)(void) {
  if (g_poll.poll_flag == 0) return;
  g_poll.poll_flag = 0;
  gc::collect_shared("poll", gc::kAlwaysCollect, true);
}

// Before each allocation under --gc-stress N: every N allocations a full private collection of
// the running goroutine and a full shared collection (the allocation sites are safepoints).
void EXPORT(usgc_wasm_gc_stress)(void) {
  if (g_stress_every == 0 || ++g_stress_count < g_stress_every || g_running == nullptr) return;
  g_stress_count = 0;
  gc::collect_private(running(), "stress", true);
  gc::collect_shared("stress", gc::kAlwaysCollect, true);
}

// Requests a shared collection at the next poll.
void EXPORT(usgc_wasm_collect)(void) {
  g_poll.poll_flag = 1;
}

// Private and shared collections so far.
uint64_t EXPORT(usgc_wasm_collections)(void) {
  return gc::g_counters.private_collections.load(std::memory_order_relaxed) +
         gc::g_counters.shared_collections.load(std::memory_order_relaxed);
}
// Bytes the collections freed (private and shared).
uint64_t EXPORT(usgc_wasm_freed_bytes)(void) {
  return gc::g_counters.bytes_freed_private.load(std::memory_order_relaxed) +
         gc::g_counters.bytes_freed_shared.load(std::memory_order_relaxed);
}
// 64 KiB pages in use: GC blocks and large objects, and the runtime's records and stacks.
uint32_t EXPORT(usgc_wasm_pages_in_use)(void) {
  return static_cast<uint32_t>((gc::heap_bytes_in_use() + PAGE - 1) / PAGE) + g_runtime_pages;
}

}  // extern "C"
