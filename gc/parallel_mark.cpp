// gc/parallel_mark.cpp — see parallel_mark.hpp.
#include "gc/parallel_mark.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdio>

#include "gc/block.hpp"
#include "gc/object_graph.hpp"
#include "gc/roots.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::gc {
namespace {

constexpr size_t kSpillThreshold = 4096;

struct alignas(64) Marker {
  MarkStack local;                                               // the marker's own thread only
  kernel::FutexMutex<kernel::LockRank::kMarkStack> public_lock;  // guards public_stack
  MarkStack public_stack;
  std::atomic<size_t> public_size{0};  // a hint for thieves (written under public_lock)
  size_t marked = 0;
  // The node of the CPU the marker runs on, taken when its marking starts (written by the marker
  // before it can spill; thieves read it as a steal-order hint, relaxed).
  std::atomic<int> node{0};
  pthread_t thread{};
};

// The marker threads and the job they run.
struct MarkerPool {
  // The markers: written by parallel_mark_initialize/shutdown (no marking
  // running then); read by marker 0 and the helpers.
  Marker* markers = nullptr;
  uint32_t marker_count = 0;

  // One marking job: written by marker 0 before it bumps job_epoch (release); read by the
  // helpers after they see the new epoch (acquire).
  RootSource job_source = nullptr;
  uint32_t job_markers = 1;  // markers taking part: marker_count, or 1 for a solo job
  bool job_scan_cards = false;
  std::atomic<uint32_t> idle_markers{0};  // markers out of work (acq_rel: termination count)
  std::atomic<uint32_t> job_epoch{0};     // futex: helpers wait for it to change
  std::atomic<uint32_t> helpers_done{0};  // futex: marker 0 waits for all helpers
  // Set (release) by parallel_mark_shutdown before its job_epoch bump; helpers read it after they
  // see the new epoch.
  std::atomic<bool> shutting_down{false};
  uint32_t start_epoch = 0;  // the epoch when the helpers were started (they wait for the next)

  // A minor job's card table (scan_dirty_cards): card_units set by marker 0 before it bumps
  // job_epoch (release), read by the helpers after they see it; card_cursor claimed by every
  // marker (relaxed fetch_add: each unit goes to exactly one marker).
  uint32_t card_units = 0;  // units of this job: chunks * kCardUnitsPerChunk + 1
  std::atomic<uint32_t> card_cursor{0};
  // This job's totals (relaxed adds; read by marker 0 after the helpers' acq_rel done count),
  // and the last job's, written by marker 0 at its end (read by the collection lock's holder).
  std::atomic<uint64_t> cards_scanned{0};
  std::atomic<uint64_t> card_units_scanned{0};
  CardScanCounts last_card_scan{};
};
constinit MarkerPool g_marker_pool;

// try_mark_shared (parallel_mark.hpp) reads the mark bit in the block header (few, hot in
// cache) and, only in a goroutine's block, the object's header; the prefetch issued now overlaps
// the header's miss with other work until the object is popped.
inline void visit_object(Marker& marker, void* object) {
  if (!try_mark_shared(object)) return;
  __builtin_prefetch(static_cast<char*>(object) - kHeaderBytes);
  ++marker.marked;
  marker.local.push(object);
}

class MarkerVisitor final : public RootVisitor {
 public:
  explicit MarkerVisitor(Marker& marker) : marker_(marker) {}
  void visit(void* object) override { visit_object(marker_, object); }
  void push_marked(void* object) override { marker_.local.push(object); }

 private:
  Marker& marker_;
};

// Minor marks: the old objects on dirty cards are traced (their references may be the only ones
// to young objects), then the cards are cleared. Every marker takes part, after its roots: the
// card table is cut into units (kCardUnitBlocks consecutive blocks of a chunk; the large objects
// are one more unit), claimed one at a time with a fetch_add on g_marker_pool.card_cursor, as
// HotSpot's Parallel GC hands out stripes of its card table. A unit is claimed by exactly one
// marker and an object never crosses a block, so no card is scanned by two markers and none is
// skipped; the counters below let tests check both.
constexpr uint32_t kCardUnitsPerChunk = kBlocksPerChunk / kCardUnitBlocks;
static_assert(kBlocksPerChunk % kCardUnitBlocks == 0, "card units tile a chunk");

void trace_old(Marker& self, void* object) {
  for_each_reference_field(object, header_of(object), [&](void** field) {
    void* value = load_reference(field);
    if (is_object_pointer(value)) visit_object(self, value);
  });
}

// The card scan runs while goroutines format, fill and release blocks, so it reads a block as a
// seqlock's reader (conservative_roots.cpp does the same): kind and size_class with acquire (they
// pair with format's release store of kind), the slot geometry computed from them, never read
// from the block (its plain fields may belong to the next format), and both re-read after a
// slot's header before the slot is trusted. It reads the header only of a slot whose shared mark
// bit is set: such a slot holds an old SHARED/GLOBAL object (or one a publication is flipping,
// its header still PRIVATE), which no sweeper frees while the bit is set, so its block stays
// formatted as it is. A slot without the bit holds nothing a minor mark needs (free, private or
// young), and its header is the owner's to write with plain stores.
struct ScanFormat {
  BlockKind kind;
  uint32_t size_class;
};
ScanFormat read_format(Block* block) {
  // Acquire: pairs with format's release store of kind (its bitmap, cards and size class).
  const auto kind = static_cast<BlockKind>(
      __atomic_load_n(reinterpret_cast<uint8_t*>(&block->kind), __ATOMIC_ACQUIRE));
  return {kind, __atomic_load_n(&block->size_class, __ATOMIC_RELAXED)};
}
// The slot's header, or 0 when the block's format changed since `format` was read (the slot was
// computed from a geometry that is no longer the block's).
uint64_t shared_header_if_same_format(Block* block, ScanFormat format, char* slot) {
  // Acquire: pairs with the publication's and the shared allocator's release stores of the header:
  // the object's fields, and the format of its block, written before it are seen below.
  const uint64_t header = __atomic_load_n(reinterpret_cast<uint64_t*>(slot), __ATOMIC_ACQUIRE);
  if (!is_shared_class(header)) return 0;
  const ScanFormat now = read_format(block);
  return now.kind == format.kind && now.size_class == format.size_class ? header : 0;
}

// The dirty cards of one small block. Returns how many were dirty.
uint32_t scan_block_cards(Marker& self, Block* block) {
  const ScanFormat format = read_format(block);
  if (format.kind != BlockKind::kSmall || format.size_class >= kSizeClassCount) return 0;
  const uint32_t slot_bytes = kSlotBytes[format.size_class];
  const uint32_t slot_count = static_cast<uint32_t>((kBlockBytes - kBlockHeaderBytes) / slot_bytes);
  char* const slots = block->slots_begin();
  uint32_t dirty = 0;
  for (uint32_t card = 0; card < kCardsPerBlock; ++card) {
    if (block->cards[card].load(std::memory_order_relaxed) == 0) continue;
    block->cards[card].store(0, std::memory_order_relaxed);
    ++dirty;
    char* card_begin = reinterpret_cast<char*>(block) + size_t{card} * kCardBytes;
    char* card_end = card_begin + kCardBytes;
    if (card_end <= slots) continue;
    // The slot holding the card's first byte may begin on the card before: it is traced too.
    uint32_t first =
        card_begin <= slots ? 0 : static_cast<uint32_t>((card_begin - slots) / slot_bytes);
    for (uint32_t index = first; index < slot_count; ++index) {
      char* slot = slots + size_t{index} * slot_bytes;
      if (slot >= card_end) break;
      if (!block->shared_marked(index)) continue;
      if (shared_header_if_same_format(block, format, slot) != 0)
        trace_old(self, slot + kHeaderBytes);
    }
  }
  return dirty;
}

// The dirty cards of the large objects, walked under the pool lock (a private large object may be
// freed and unmapped meanwhile): an old shared one is queued on the marker's stack (the drain
// traces it; marked, it is not freed while the mark runs), its cards cleared.
void scan_large_object_cards(Block* large, void* context) {
  auto& self = *static_cast<Marker*>(context);
  uint32_t dirty = 0;
  for (auto& card : large->cards) {
    if (card.load(std::memory_order_relaxed) == 0) continue;
    card.store(0, std::memory_order_relaxed);
    ++dirty;
  }
  if (dirty == 0) return;
  g_marker_pool.cards_scanned.fetch_add(dirty, std::memory_order_relaxed);
  if (!large->shared_marked(0)) return;  // as for small blocks: the header only with the bit
  char* slot = large->slots_begin();
  // Acquire: pairs with the header's release store (shared allocation or publication).
  const uint64_t header = __atomic_load_n(reinterpret_cast<uint64_t*>(slot), __ATOMIC_ACQUIRE);
  if (is_shared_class(header)) self.local.push(slot + kHeaderBytes);
}

void scan_card_unit(Marker& self, uint32_t unit) {
  uint32_t dirty = 0;
  if (unit + 1 == g_marker_pool.card_units) {
    for_each_large_object_locked(scan_large_object_cards, &self);
  } else {
    char* chunk = chunk_at(unit / kCardUnitsPerChunk);
    uint32_t first_block = (unit % kCardUnitsPerChunk) * kCardUnitBlocks;
    for (uint32_t b = first_block; b < first_block + kCardUnitBlocks; ++b)
      dirty += scan_block_cards(self, reinterpret_cast<Block*>(chunk + size_t{b} * kBlockBytes));
  }
  g_marker_pool.cards_scanned.fetch_add(dirty, std::memory_order_relaxed);
  g_marker_pool.card_units_scanned.fetch_add(1, std::memory_order_relaxed);
}

void spill(Marker& marker);

// Claims units until none is left; spills between units so that idle markers find work.
void scan_dirty_cards(Marker& self) {
  for (;;) {
    uint32_t unit = g_marker_pool.card_cursor.fetch_add(1, std::memory_order_relaxed);
    if (unit >= g_marker_pool.card_units) return;
    scan_card_unit(self, unit);
    if (self.local.size() > kSpillThreshold ||
        (self.local.size() > 64 && g_marker_pool.idle_markers.load(std::memory_order_relaxed) != 0))
      spill(self);
  }
}

void spill(Marker& marker) {
  kernel::FutexMutexGuard guard(marker.public_lock);
  marker.local.take_bottom(marker.public_stack, marker.local.size() / 2);
  marker.public_size.store(marker.public_stack.size(), std::memory_order_relaxed);
}

// Takes work into `thief.local` from `victim`'s public stack (own or another's).
bool take_from(Marker& thief, Marker& victim) {
  if (victim.public_size.load(std::memory_order_relaxed) == 0) return false;
  kernel::FutexMutexGuard guard(victim.public_lock);
  size_t available = victim.public_stack.size();
  if (available == 0) return false;
  size_t take = &thief == &victim ? available : (available + 1) / 2;
  victim.public_stack.take_bottom(thief.local, take);
  victim.public_size.store(victim.public_stack.size(), std::memory_order_relaxed);
  return true;
}

// Own public stack first, then the markers of the same NUMA node, other nodes' markers last (a
// thief on another node reads what it takes from remote memory). One node: one pass.
bool find_work(uint32_t index) {
  Marker& self = g_marker_pool.markers[index];
  if (take_from(self, self)) return true;
  const int own_node = self.node.load(std::memory_order_relaxed);
  bool other_nodes = false;
  for (uint32_t k = 1; k < g_marker_pool.job_markers; ++k) {
    Marker& victim = g_marker_pool.markers[(index + k) % g_marker_pool.job_markers];
    if (victim.node.load(std::memory_order_relaxed) != own_node) {
      other_nodes = true;
      continue;
    }
    if (take_from(self, victim)) return true;
  }
  if (!other_nodes) return false;
  for (uint32_t k = 1; k < g_marker_pool.job_markers; ++k) {
    Marker& victim = g_marker_pool.markers[(index + k) % g_marker_pool.job_markers];
    if (victim.node.load(std::memory_order_relaxed) != own_node && take_from(self, victim))
      return true;
  }
  return false;
}

void drain(uint32_t index) {
  Marker& self = g_marker_pool.markers[index];
  for (;;) {
    while (!self.local.empty()) {
      void* object = self.local.pop();
      for_each_reference_field(object, header_of(object), [&](void** field) {
        void* value = load_reference(field);
        if (is_object_pointer(value)) visit_object(self, value);
      });
      if (self.local.size() > kSpillThreshold ||
          (self.local.size() > 64 &&
           g_marker_pool.idle_markers.load(std::memory_order_relaxed) != 0)) {
        spill(self);
      }
    }
    if (find_work(index)) continue;
    // Idle: wait until some public stack has work, or everyone is idle (done).
    // Acq_rel: release this marker's marks to the marker that sees everyone idle (pairs with the
    // acquire load below, made by every idle marker).
    g_marker_pool.idle_markers.fetch_add(1, std::memory_order_acq_rel);
    for (unsigned spins = 0;; ++spins) {
      // Acquire: pairs with the other markers' acq_rel increments: their marks are done.
      if (g_marker_pool.idle_markers.load(std::memory_order_acquire) == g_marker_pool.job_markers)
        return;
      bool work_seen = false;
      for (uint32_t k = 0; k < g_marker_pool.job_markers && !work_seen; ++k) {
        work_seen = g_marker_pool.markers[k].public_size.load(std::memory_order_relaxed) != 0;
      }
      if (work_seen) {
        // Acq_rel: leaving idle before taking the work seen (pairs with the idle load above).
        g_marker_pool.idle_markers.fetch_sub(1, std::memory_order_acq_rel);
        break;
      }
      // Spin briefly, then let the others run: with markers preempted (more threads than free
      // CPUs) pure spinning makes the end of marking wait for the scheduler to come round.
#if defined(__x86_64__)
      if (spins < 64)
        __builtin_ia32_pause();
      else
        kernel::yield_cpu();
#else  // no pause instruction (wasm32: one marker, this loop never waits)
      kernel::yield_cpu();
#endif
    }
  }
}

void run_marker(uint32_t index) {
  Marker& self = g_marker_pool.markers[index];
  self.marked = 0;
  self.node.store(block_node_of_caller(), std::memory_order_relaxed);
  MarkerVisitor visitor(self);
  while (g_marker_pool.job_source(index, visitor)) {
    if (self.local.size() > kSpillThreshold) spill(self);
  }
  if (g_marker_pool.job_scan_cards) scan_dirty_cards(self);
  drain(index);
}

void* helper_main(void* argument) {
  auto index = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(argument));
  char name[16];
  std::snprintf(name, sizeof name, "usgc-mark%u", index);
  (void)kernel::name_current_thread(name);  // a name for ps, top and perf only
  uint32_t seen_epoch = g_marker_pool.start_epoch;
  for (;;) {
    // Acquire (epoch and shutting_down): pair with mark_shared_heap's and parallel_mark_shutdown's
    // release stores: the job (or the shutdown) written before the bump is seen.
    uint32_t epoch = g_marker_pool.job_epoch.load(std::memory_order_acquire);
    while (epoch == seen_epoch && !g_marker_pool.shutting_down.load(std::memory_order_acquire)) {
      kernel::futex_wait(&g_marker_pool.job_epoch, epoch);
      epoch = g_marker_pool.job_epoch.load(std::memory_order_acquire);
    }
    if (g_marker_pool.shutting_down.load(std::memory_order_acquire)) return nullptr;
    seen_epoch = epoch;
    run_marker(index);
    // Release: this marker's marks happen-before marker 0 sweeps.
    g_marker_pool.helpers_done.fetch_add(1, std::memory_order_acq_rel);
    kernel::futex_wake_all(&g_marker_pool.helpers_done);
  }
}

}  // namespace

CardScanCounts last_card_scan() {
  return g_marker_pool.last_card_scan;
}

int parallel_mark_initialize(uint32_t marker_count) {
  if (marker_count == 0) marker_count = 1;
  g_marker_pool.markers = new Marker[marker_count];
  g_marker_pool.marker_count = marker_count;
  g_marker_pool.shutting_down.store(false, std::memory_order_relaxed);
  g_marker_pool.start_epoch = g_marker_pool.job_epoch.load(std::memory_order_relaxed);
  for (uint32_t i = 1; i < marker_count; ++i) {
    int error = pthread_create(&g_marker_pool.markers[i].thread, nullptr, helper_main,
                               reinterpret_cast<void*>(uintptr_t{i}));
    if (error != 0) {
      g_marker_pool.marker_count = i;  // fewer markers: still correct
      break;
    }
  }
  return 0;
}

void parallel_mark_shutdown() {
  if (g_marker_pool.markers == nullptr) return;
  // Release (flag and epoch): pair with helper_main's acquire loads.
  g_marker_pool.shutting_down.store(true, std::memory_order_release);
  g_marker_pool.job_epoch.fetch_add(1, std::memory_order_release);
  kernel::futex_wake_all(&g_marker_pool.job_epoch);
  for (uint32_t i = 1; i < g_marker_pool.marker_count; ++i)
    pthread_join(g_marker_pool.markers[i].thread, nullptr);
  delete[] g_marker_pool.markers;
  g_marker_pool.markers = nullptr;
  g_marker_pool.marker_count = 0;
}

MarkResult mark_shared_heap(RootSource source, MarkKind kind, bool scan_cards, bool solo) {
  USGC_CHECK(g_marker_pool.markers != nullptr, "gc: shared collection before gc_initialize");
  g_marker_pool.job_source = source;
  g_marker_pool.job_scan_cards = scan_cards && kind == MarkKind::kMinor;
  g_marker_pool.job_markers = solo ? 1 : g_marker_pool.marker_count;
  if (g_marker_pool.job_scan_cards) {
    // Chunks mapped after this count hold only blocks taken since the mark began: their objects
    // are black (allocated while marking), so no old object there needs its cards read.
    g_marker_pool.card_units = chunk_count() * kCardUnitsPerChunk + 1;
    g_marker_pool.card_cursor.store(0, std::memory_order_relaxed);
    g_marker_pool.cards_scanned.store(0, std::memory_order_relaxed);
    g_marker_pool.card_units_scanned.store(0, std::memory_order_relaxed);
  }
  g_marker_pool.idle_markers.store(0, std::memory_order_relaxed);
  g_marker_pool.helpers_done.store(0, std::memory_order_relaxed);
  // Inside a stop (the whole mark with USGC_GC_CONCURRENT=0, a large termination drain): the
  // stopped threads spinning for the resume leave the helpers their CPUs (a no-op outside a stop).
  if (g_marker_pool.job_markers > 1) safepoint::stop_work_needs_cpus(g_marker_pool.job_markers);
  if (!solo) {
    // Release: the job above is visible to helpers that see the new epoch.
    g_marker_pool.job_epoch.fetch_add(1, std::memory_order_release);
    if (g_marker_pool.marker_count > 1) kernel::futex_wake_all(&g_marker_pool.job_epoch);
  }
  run_marker(0);
  uint32_t helpers = g_marker_pool.job_markers - 1;
  for (;;) {
    // Acquire: pairs with helper_main's acq_rel increment: the helpers' marks are visible.
    uint32_t done = g_marker_pool.helpers_done.load(std::memory_order_acquire);
    if (done == helpers) break;
    kernel::futex_wait(&g_marker_pool.helpers_done, done);
  }
  if (g_marker_pool.job_scan_cards) {
    g_marker_pool.last_card_scan.cards =
        g_marker_pool.cards_scanned.load(std::memory_order_relaxed);
    g_marker_pool.last_card_scan.units =
        g_marker_pool.card_units_scanned.load(std::memory_order_relaxed);
    g_marker_pool.last_card_scan.units_expected = g_marker_pool.card_units;
    g_marker_pool.last_card_scan.markers = g_marker_pool.job_markers;
  }
  MarkResult result;
  result.markers = g_marker_pool.job_markers;
  for (uint32_t i = 0; i < g_marker_pool.job_markers; ++i)
    result.objects_marked += g_marker_pool.markers[i].marked;
  return result;
}

}  // namespace usgc::gc
