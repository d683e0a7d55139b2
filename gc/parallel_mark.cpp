// gc/parallel_mark.cpp — see parallel_mark.hpp.
#include "gc/parallel_mark.hpp"

#include <pthread.h>

#include <atomic>

#include "gc/block.hpp"
#include "gc/object_graph.hpp"
#include "gc/roots.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/futex_mutex.hpp"

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

Marker* g_markers = nullptr;
uint32_t g_marker_count = 0;

// One marking job: written by marker 0 before it bumps g_job_epoch (release); read by the
// helpers after they see the new epoch (acquire).
RootSource g_job_source = nullptr;
uint32_t g_job_markers = 1;  // markers taking part: g_marker_count, or 1 for a solo job
bool g_job_scan_cards = false;
std::atomic<uint32_t> g_idle_markers{0};
std::atomic<uint32_t> g_job_epoch{0};     // futex: helpers wait for it to change
std::atomic<uint32_t> g_helpers_done{0};  // futex: marker 0 waits for all helpers
std::atomic<bool> g_shutting_down{false};
uint32_t g_start_epoch = 0;  // the epoch when the helpers were started (they wait for the next)

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
// to young objects), then the cards are cleared. Marker 0, before draining.
void scan_dirty_cards(Marker& self) {
  auto trace_old = [&](void* object) {
    for_each_reference_field(object, header_of(object), [&](void** field) {
      void* value = load_reference(field);
      if (is_object_pointer(value)) visit_object(self, value);
    });
  };
  for_each_block_in_use([&](Block* block) {
    if (block->kind == BlockKind::kArena) return;
    for (uint32_t card = 0; card < kCardsPerBlock; ++card) {
      if (block->cards[card].load(std::memory_order_relaxed) == 0) continue;
      block->cards[card].store(0, std::memory_order_relaxed);
      if (block->kind == BlockKind::kLarge) {
        void* object = block->slots_begin() + kHeaderBytes;
        if (is_shared_class(header_of(object)) && block->shared_marked(0)) trace_old(object);
        for (uint32_t rest = card + 1; rest < kCardsPerBlock; ++rest)
          block->cards[rest].store(0, std::memory_order_relaxed);
        return;
      }
      char* card_begin = reinterpret_cast<char*>(block) + size_t{card} * kCardBytes;
      char* card_end = card_begin + kCardBytes;
      char* slots = block->slots_begin();
      if (card_end <= slots) continue;
      uint32_t first = card_begin <= slots ? 0 : block->slot_index_of(card_begin);
      for (uint32_t index = first; index < block->slot_count; ++index) {
        char* slot = block->slot_at(index);
        if (slot >= card_end) break;
        uint64_t header = __atomic_load_n(reinterpret_cast<uint64_t*>(slot), __ATOMIC_RELAXED);
        if (header != 0 && is_shared_class(header) && block->shared_marked(index))
          trace_old(slot + kHeaderBytes);
      }
    }
  });
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
  Marker& self = g_markers[index];
  if (take_from(self, self)) return true;
  const int own_node = self.node.load(std::memory_order_relaxed);
  bool other_nodes = false;
  for (uint32_t k = 1; k < g_job_markers; ++k) {
    Marker& victim = g_markers[(index + k) % g_job_markers];
    if (victim.node.load(std::memory_order_relaxed) != own_node) {
      other_nodes = true;
      continue;
    }
    if (take_from(self, victim)) return true;
  }
  if (!other_nodes) return false;
  for (uint32_t k = 1; k < g_job_markers; ++k) {
    Marker& victim = g_markers[(index + k) % g_job_markers];
    if (victim.node.load(std::memory_order_relaxed) != own_node && take_from(self, victim))
      return true;
  }
  return false;
}

void drain(uint32_t index) {
  Marker& self = g_markers[index];
  for (;;) {
    while (!self.local.empty()) {
      void* object = self.local.pop();
      for_each_reference_field(object, header_of(object), [&](void** field) {
        void* value = load_reference(field);
        if (is_object_pointer(value)) visit_object(self, value);
      });
      if (self.local.size() > kSpillThreshold ||
          (self.local.size() > 64 && g_idle_markers.load(std::memory_order_relaxed) != 0)) {
        spill(self);
      }
    }
    if (find_work(index)) continue;
    // Idle: wait until some public stack has work, or everyone is idle (done).
    g_idle_markers.fetch_add(1, std::memory_order_acq_rel);
    for (unsigned spins = 0;; ++spins) {
      if (g_idle_markers.load(std::memory_order_acquire) == g_job_markers) return;
      bool work_seen = false;
      for (uint32_t k = 0; k < g_job_markers && !work_seen; ++k) {
        work_seen = g_markers[k].public_size.load(std::memory_order_relaxed) != 0;
      }
      if (work_seen) {
        g_idle_markers.fetch_sub(1, std::memory_order_acq_rel);
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
  Marker& self = g_markers[index];
  self.marked = 0;
  self.node.store(block_node_of_caller(), std::memory_order_relaxed);
  MarkerVisitor visitor(self);
  while (g_job_source(index, visitor)) {
    if (self.local.size() > kSpillThreshold) spill(self);
  }
  if (index == 0 && g_job_scan_cards) scan_dirty_cards(self);
  drain(index);
}

void* helper_main(void* argument) {
  auto index = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(argument));
  uint32_t seen_epoch = g_start_epoch;
  for (;;) {
    uint32_t epoch = g_job_epoch.load(std::memory_order_acquire);
    while (epoch == seen_epoch && !g_shutting_down.load(std::memory_order_acquire)) {
      kernel::futex_wait(&g_job_epoch, epoch);
      epoch = g_job_epoch.load(std::memory_order_acquire);
    }
    if (g_shutting_down.load(std::memory_order_acquire)) return nullptr;
    seen_epoch = epoch;
    run_marker(index);
    // Release: this marker's marks happen-before marker 0 sweeps.
    g_helpers_done.fetch_add(1, std::memory_order_acq_rel);
    kernel::futex_wake_all(&g_helpers_done);
  }
}

}  // namespace

int parallel_mark_initialize(uint32_t marker_count) {
  if (marker_count == 0) marker_count = 1;
  g_markers = new Marker[marker_count];
  g_marker_count = marker_count;
  g_shutting_down.store(false, std::memory_order_relaxed);
  g_start_epoch = g_job_epoch.load(std::memory_order_relaxed);
  for (uint32_t i = 1; i < marker_count; ++i) {
    int error = pthread_create(&g_markers[i].thread, nullptr, helper_main,
                               reinterpret_cast<void*>(uintptr_t{i}));
    if (error != 0) {
      g_marker_count = i;  // fewer markers: still correct
      break;
    }
  }
  return 0;
}

void parallel_mark_shutdown() {
  if (g_markers == nullptr) return;
  g_shutting_down.store(true, std::memory_order_release);
  g_job_epoch.fetch_add(1, std::memory_order_release);
  kernel::futex_wake_all(&g_job_epoch);
  for (uint32_t i = 1; i < g_marker_count; ++i) pthread_join(g_markers[i].thread, nullptr);
  delete[] g_markers;
  g_markers = nullptr;
  g_marker_count = 0;
}

MarkResult mark_shared_heap(RootSource source, MarkKind kind, bool scan_cards, bool solo) {
  USGC_CHECK(g_markers != nullptr, "gc: shared collection before gc_initialize");
  g_job_source = source;
  g_job_scan_cards = scan_cards && kind == MarkKind::kMinor;
  g_job_markers = solo ? 1 : g_marker_count;
  g_idle_markers.store(0, std::memory_order_relaxed);
  g_helpers_done.store(0, std::memory_order_relaxed);
  if (!solo) {
    // Release: the job above is visible to helpers that see the new epoch.
    g_job_epoch.fetch_add(1, std::memory_order_release);
    if (g_marker_count > 1) kernel::futex_wake_all(&g_job_epoch);
  }
  run_marker(0);
  uint32_t helpers = g_job_markers - 1;
  for (;;) {
    uint32_t done = g_helpers_done.load(std::memory_order_acquire);
    if (done == helpers) break;
    kernel::futex_wait(&g_helpers_done, done);
  }
  MarkResult result;
  result.markers = g_job_markers;
  for (uint32_t i = 0; i < g_job_markers; ++i) result.objects_marked += g_markers[i].marked;
  return result;
}

}  // namespace usgc::gc
