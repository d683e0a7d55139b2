// gc/parallel_mark.cpp — see parallel_mark.hpp.
#include "gc/parallel_mark.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdio>

#include "gc/block.hpp"
#include "gc/mark_job.hpp"
#include "gc/object_graph.hpp"
#include "gc/roots.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/thread_control.hpp"
#include "safepoint/stop_the_world.hpp"

namespace usgc::gc {
namespace {

// A marker's private stack spills half to its public stack above this many entries, or above
// kSpillWhenIdle while another marker is idle (gc/mark_job.hpp: what a preempted marker holds).
constexpr size_t kSpillThreshold = 4096;
constexpr size_t kSpillWhenIdle = 64;
// An idle marker spins (pause) this long, then yields between looks, then sleeps until work
// appears or the job ends: a sleeping marker leaves its CPU idle, and the kernel pulls a
// preempted marker onto an idle CPU, while one that spins or yields keeps it busy.
constexpr uint64_t kIdleSpinNs = 20'000;
constexpr uint64_t kIdleYieldNs = 100'000;

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

  // Who takes part in the current job and when it is over (gc/mark_job.hpp).
  MarkJob job;
  // The job's parameters: written by marker 0 before MarkJob::open (release), read by the
  // markers that joined it (their join CAS acquires; the job cannot end, so marker 0 cannot
  // write the next job's, while a joined marker is not idle).
  RootSource job_source = nullptr;
  bool job_scan_cards = false;
  // Objects marked in this job: each marker adds its count before it goes idle (relaxed; the
  // go-idle CAS releases it, marker 0 reads it after it saw the job over).
  std::atomic<size_t> job_marked{0};
  // Futex: the number of the last job helpers may join (release store by marker 0 after open;
  // helpers sleep on it between jobs and read it with acquire). Solo jobs are not announced.
  std::atomic<uint32_t> announce{0};
  // Idle markers that sleep (seq_cst, with idle_wake: a Dekker pair, see sleep_while_idle), and
  // the futex word they sleep on, bumped by the marker that ends a job and by spills.
  std::atomic<uint32_t> sleepers{0};
  std::atomic<uint32_t> idle_wake{0};
  // Set (release) by parallel_mark_shutdown before its announce bump; helpers read it after they
  // see the new value.
  std::atomic<bool> shutting_down{false};
  // announce when the helpers were started (they wait for the next); the job numbers go on
  // from it (MarkJob::number_from), so that no job reuses the shutdown's bump.
  uint32_t start_announce = 0;
  std::atomic<uint64_t> helper_joins{0};  // relaxed counter (tests, helper_joins())

  // A minor job's card table (scan_dirty_cards): card_units set by marker 0 before it opens the
  // job (release), read by the markers that joined; card_cursor claimed by every
  // marker (relaxed fetch_add: each unit goes to exactly one marker).
  uint32_t card_units = 0;  // units of this job: chunks * kCardUnitsPerChunk + 1
  std::atomic<uint32_t> card_cursor{0};
  // This job's totals (relaxed adds, released by the adders' go-idle CAS), and the last job's,
  // written by marker 0 at its end (read by the collection lock's holder).
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

void maybe_spill(Marker& self);

// Claims units until none is left; spills between units so that idle markers find work.
void scan_dirty_cards(Marker& self) {
  for (;;) {
    uint32_t unit = g_marker_pool.card_cursor.fetch_add(1, std::memory_order_relaxed);
    if (unit >= g_marker_pool.card_units) return;
    scan_card_unit(self, unit);
    maybe_spill(self);
  }
}

// Wakes markers sleeping while idle (all: the job ended; one: a spill made work). The waking
// side of the Dekker pair of sleep_while_idle: the state change (the job word, a public stack)
// comes first, then the seq_cst bump of idle_wake and the seq_cst load of sleepers.
void wake_idle_markers(int count) {
  g_marker_pool.idle_wake.fetch_add(1, std::memory_order_seq_cst);
  if (g_marker_pool.sleepers.load(std::memory_order_seq_cst) != 0)
    kernel::futex_wake(&g_marker_pool.idle_wake, count);
}

void spill(Marker& marker) {
  {
    kernel::FutexMutexGuard guard(marker.public_lock);
    marker.local.take_bottom(marker.public_stack, marker.local.size() / 2);
    marker.public_size.store(marker.public_stack.size(), std::memory_order_relaxed);
  }
  // A hint only: a sleeper this misses is not needed for the job to end (the spiller takes its
  // own public work back before it goes idle, and the marker that ends a job wakes everyone).
  if (g_marker_pool.sleepers.load(std::memory_order_relaxed) != 0) wake_idle_markers(1);
}

void maybe_spill(Marker& self) {
  if (self.local.size() > kSpillThreshold ||
      (self.local.size() > kSpillWhenIdle && g_marker_pool.job.any_idle()))
    spill(self);
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
// thief on another node reads what it takes from remote memory). One node: one pass. Every
// marker is a victim, joined or not: one that did not join holds nothing (every public stack is
// empty between jobs: a marker leaves a job only idle, with both stacks empty).
bool find_work(uint32_t index) {
  Marker& self = g_marker_pool.markers[index];
  if (take_from(self, self)) return true;
  const uint32_t count = g_marker_pool.marker_count;
  const int own_node = self.node.load(std::memory_order_relaxed);
  bool other_nodes = false;
  for (uint32_t k = 1; k < count; ++k) {
    Marker& victim = g_marker_pool.markers[(index + k) % count];
    if (victim.node.load(std::memory_order_relaxed) != own_node) {
      other_nodes = true;
      continue;
    }
    if (take_from(self, victim)) return true;
  }
  if (!other_nodes) return false;
  for (uint32_t k = 1; k < count; ++k) {
    Marker& victim = g_marker_pool.markers[(index + k) % count];
    if (victim.node.load(std::memory_order_relaxed) != own_node && take_from(self, victim))
      return true;
  }
  return false;
}

bool public_work_seen() {
  for (uint32_t k = 0; k < g_marker_pool.marker_count; ++k) {
    if (g_marker_pool.markers[k].public_size.load(std::memory_order_relaxed) != 0) return true;
  }
  return false;
}

// The sleeping side of the Dekker pair with wake_idle_markers: counted in sleepers (seq_cst),
// then idle_wake read (seq_cst), then the job word and the public stacks looked at. Either this
// read sees the waker's bump (and so, by its happens-before, the job ended or the work), or the
// waker's later load of sleepers sees this sleeper and wakes it (futex_wait also returns at once
// if the word moved since the read).
void sleep_while_idle(uint32_t job) {
  g_marker_pool.sleepers.fetch_add(1, std::memory_order_seq_cst);
  const uint32_t wake = g_marker_pool.idle_wake.load(std::memory_order_seq_cst);
  if (!g_marker_pool.job.over(job) && !public_work_seen())
    kernel::futex_wait(&g_marker_pool.idle_wake, wake);
  g_marker_pool.sleepers.fetch_sub(1, std::memory_order_relaxed);
}

// An idle marker: waits until a public stack has work (true: it left idle and takes it) or the
// job is over (false). Spins, then yields, then sleeps (kIdleSpinNs, kIdleYieldNs).
bool wait_for_work(uint32_t job) {
  uint64_t start_ns = 0;
  for (uint32_t looks = 0;; ++looks) {
    if (g_marker_pool.job.over(job)) return false;
    if (public_work_seen()) return g_marker_pool.job.try_leave_idle(job);
    if (looks < 64) {
      kernel::cpu_relax();
      continue;
    }
    if (start_ns == 0) start_ns = kernel::monotonic_ns();
    const uint64_t waited_ns = kernel::monotonic_ns() - start_ns;
    if (waited_ns < kIdleSpinNs) {
      kernel::cpu_relax();
    } else if (waited_ns < kIdleYieldNs) {
      kernel::yield_cpu();
    } else {
      sleep_while_idle(job);
    }
  }
}

// Traces until the job is over. A marker with nothing (its stacks empty, nothing to steal) hands
// its count in and goes idle; the one that makes every joined marker idle ends the job and wakes
// the sleepers.
void drain(uint32_t index, uint32_t job) {
  Marker& self = g_marker_pool.markers[index];
  for (;;) {
    while (!self.local.empty()) {
      void* object = self.local.pop();
      for_each_reference_field(object, header_of(object), [&](void** field) {
        void* value = load_reference(field);
        if (is_object_pointer(value)) visit_object(self, value);
      });
      maybe_spill(self);
    }
    if (find_work(index)) continue;
    g_marker_pool.job_marked.fetch_add(self.marked, std::memory_order_relaxed);
    self.marked = 0;
    if (g_marker_pool.job.go_idle(job)) {
      wake_idle_markers(INT32_MAX);
      return;
    }
    if (!wait_for_work(job)) return;
  }
}

// A joined marker's part of job `job`: roots from the source (claimed a batch at a time, by any
// marker), card units (minor), then tracing and stealing until the job is over.
void run_marker(uint32_t index, uint32_t job) {
  Marker& self = g_marker_pool.markers[index];
  self.marked = 0;
  self.node.store(block_node_of_caller(), std::memory_order_relaxed);
  MarkerVisitor visitor(self);
  while (g_marker_pool.job_source(visitor)) maybe_spill(self);
  if (g_marker_pool.job_scan_cards) scan_dirty_cards(self);
  drain(index, job);
}

void* helper_main(void* argument) {
  auto index = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(argument));
  char name[16];
  std::snprintf(name, sizeof name, "usgc-mark%u", index);
  (void)kernel::name_current_thread(name);  // a name for ps, top and perf only
  uint32_t seen = g_marker_pool.start_announce;
  for (;;) {
    // Acquire (announce and shutting_down): pair with mark_shared_heap's and
    // parallel_mark_shutdown's release stores.
    uint32_t job = g_marker_pool.announce.load(std::memory_order_acquire);
    while (job == seen && !g_marker_pool.shutting_down.load(std::memory_order_acquire)) {
      kernel::futex_wait(&g_marker_pool.announce, job);
      job = g_marker_pool.announce.load(std::memory_order_acquire);
    }
    if (g_marker_pool.shutting_down.load(std::memory_order_acquire)) return nullptr;
    seen = job;
    if (MarkerTestHook hook = g_marker_test_hook.load(std::memory_order_acquire)) hook(index, job);
    // Not joined (the job is over, or has its markers): nothing to do, nobody waits for us.
    if (g_marker_pool.job.try_join(job)) {
      g_marker_pool.helper_joins.fetch_add(1, std::memory_order_relaxed);
      run_marker(index, job);
    }
  }
}

}  // namespace

// Acquire above, release by the test that sets it: what the test prepared is seen by the hook.
std::atomic<MarkerTestHook> g_marker_test_hook{nullptr};

uint64_t helper_joins() {
  return g_marker_pool.helper_joins.load(std::memory_order_relaxed);
}

CardScanCounts last_card_scan() {
  return g_marker_pool.last_card_scan;
}

int parallel_mark_initialize(uint32_t marker_count) {
  if (marker_count == 0) marker_count = 1;
  if (marker_count > kMarkJobMaxMarkers) marker_count = kMarkJobMaxMarkers;
  g_marker_pool.markers = new Marker[marker_count];
  g_marker_pool.marker_count = marker_count;
  g_marker_pool.shutting_down.store(false, std::memory_order_relaxed);
  g_marker_pool.start_announce = g_marker_pool.announce.load(std::memory_order_relaxed);
  g_marker_pool.job.number_from(g_marker_pool.start_announce);
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
  // Release (flag and announce): pair with helper_main's acquire loads.
  g_marker_pool.shutting_down.store(true, std::memory_order_release);
  g_marker_pool.announce.fetch_add(1, std::memory_order_release);
  kernel::futex_wake_all(&g_marker_pool.announce);
  for (uint32_t i = 1; i < g_marker_pool.marker_count; ++i)
    pthread_join(g_marker_pool.markers[i].thread, nullptr);
  delete[] g_marker_pool.markers;
  g_marker_pool.markers = nullptr;
  g_marker_pool.marker_count = 0;
}

MarkResult mark_shared_heap(RootSource source, MarkKind kind, bool scan_cards,
                            uint32_t max_markers) {
  USGC_CHECK(g_marker_pool.markers != nullptr, "gc: shared collection before gc_initialize");
  const uint32_t limit = max_markers == kAllMarkers || max_markers > g_marker_pool.marker_count
                             ? g_marker_pool.marker_count
                             : max_markers;
  // The job's parameters (the previous job is over: no joined marker reads them).
  g_marker_pool.job_source = source;
  g_marker_pool.job_scan_cards = scan_cards && kind == MarkKind::kMinor;
  if (g_marker_pool.job_scan_cards) {
    // Chunks mapped after this count hold only blocks taken since the mark began: their objects
    // are black (allocated while marking), so no old object there needs its cards read.
    g_marker_pool.card_units = chunk_count() * kCardUnitsPerChunk + 1;
    g_marker_pool.card_cursor.store(0, std::memory_order_relaxed);
    g_marker_pool.cards_scanned.store(0, std::memory_order_relaxed);
    g_marker_pool.card_units_scanned.store(0, std::memory_order_relaxed);
  }
  g_marker_pool.job_marked.store(0, std::memory_order_relaxed);
  // Inside a stop (the whole mark with USGC_GC_CONCURRENT=0, a large termination drain): the
  // stopped threads spinning for the resume leave the helpers their CPUs (a no-op outside a stop).
  if (limit > 1) safepoint::stop_work_needs_cpus(limit);
  const uint32_t job = g_marker_pool.job.open(limit);  // release: the parameters above
  if (limit > 1) {
    // Release: pairs with helper_main's acquire load (and the job word's open, already done).
    g_marker_pool.announce.store(job, std::memory_order_release);
    kernel::futex_wake(&g_marker_pool.announce, static_cast<int>(limit - 1));
  }
  run_marker(0, job);
  // The job is over (marker 0 returns from drain only then): every joined marker's marks and
  // counts are seen (acquire). Helpers that did not join are not waited for.
  const MarkJobState ended = g_marker_pool.job.state();
  MarkResult result;
  result.markers = ended.joined;
  result.objects_marked = g_marker_pool.job_marked.load(std::memory_order_relaxed);
  if (g_marker_pool.job_scan_cards) {
    g_marker_pool.last_card_scan.cards =
        g_marker_pool.cards_scanned.load(std::memory_order_relaxed);
    g_marker_pool.last_card_scan.units =
        g_marker_pool.card_units_scanned.load(std::memory_order_relaxed);
    g_marker_pool.last_card_scan.units_expected = g_marker_pool.card_units;
    g_marker_pool.last_card_scan.markers = ended.joined;
  }
  return result;
}

}  // namespace usgc::gc
