// tests/gc/gc_stress_workloads.hpp — the two workloads of the GC stress tests
// (tests/gc/gc_stress_test.cpp) and what runs them.
//
//   PrivateWorkload: goroutines that each build, rewire and check a private graph against a model
//     (tests/gc/gc_stress_private_graph.cpp).
//   SharedWorkload: goroutines that pass lists through shared places and channels, each list
//     checked against a ListModel that travels with it (tests/gc/gc_stress_shared_graph_worker.cpp,
//     tests/gc/gc_stress_shared_graph_channels.cpp, the courier pair in the latter).
//
// Sharing rules: a workload is made by the test's main goroutine and outlives every worker; its
// counters are relaxed atomics (summed at the end); its channels, hub and global roots are written
// by the main goroutine before the workers start (usgc_go's hand-over orders them); the mailbox
// is guarded by mailbox_lock, held around map operations only (no usgc call inside, so a holder is
// never stopped at a safepoint while another goroutine waits for the lock). A failure goes to the
// FailureSink, never to a gtest assertion inside a goroutine.
#pragma once

#include <stdint.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tests/gc/gc_test_support.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"

namespace usgc::testing::gc_stress {

using Clock = std::chrono::steady_clock;

// The seed of one worker: a function of the test's seed, a salt per kind of worker and its index.
inline uint64_t worker_seed(uint64_t seed, uint64_t salt, unsigned index) {
  Random random(seed ^ (salt * 0xD6E8FEB86659FD93ull) ^ ((index + 1) * 0x9E3779B97F4A7C15ull));
  random.next();
  return random.next();
}

struct PrivateWorkload {
  PrivateWorkload(FailureSink& sink, GcTypes types, Clock::time_point deadline,
                  bool explicit_collections)
      : sink(sink), types(types), deadline(deadline), explicit_collections(explicit_collections) {}
  FailureSink& sink;
  const GcTypes types;
  const Clock::time_point deadline;
  const bool explicit_collections;  // false: only the collections allocation triggers
  std::atomic<uint64_t> operations{0};
  std::atomic<uint64_t> collections{0};  // explicit private collections, all workers
  std::atomic<uint64_t> verifications{0};
  std::atomic<uint64_t> stack_local_rounds{0};
};

// The expected shape of one list (a Box and its nodes), in plain C++ memory. Entries are linked by
// index exactly as the heap objects are by reference, and each heap store is mirrored here as it
// happens, so the expected ownership after a publication (the private closure of the stored
// value, at the time of the store) is computed on the same graph the barrier saw.
struct ListModel {
  struct Entry {
    uint64_t id;
    uint64_t payload;
    int64_t blob_length;  // -1: no blob
    int next;             // entry index, -1 = null
    int cross;            // entry index, -1 = null
    bool published;       // false: must be GOROUTINE_PRIVATE
  };
  uint64_t structure_id = 0;
  bool box_published = false;
  bool maybe_global =
      false;  // was (or was reachable from) a global root: published may mean GLOBAL_SHARED
  int first = -1;
  std::vector<Entry> entries;  // unlinked entries stay until compact()

  Expected expected(bool published) const {
    if (!published) return Expected::kPrivate;
    return maybe_global ? Expected::kSharedOrGlobal : Expected::kShared;
  }

  // The entries in list order.
  std::vector<int> order() const {
    std::vector<int> result;
    for (int i = first; i >= 0 && result.size() <= entries.size();
         i = entries[static_cast<size_t>(i)].next)
      result.push_back(i);
    return result;
  }

  // Marks everything reachable from entry `start` published (the private closure of a published
  // value).
  void publish_from(int start) {
    std::vector<int> pending{start};
    while (!pending.empty()) {
      const int i = pending.back();
      pending.pop_back();
      if (i < 0 || entries[static_cast<size_t>(i)].published) continue;
      Entry& entry = entries[static_cast<size_t>(i)];
      entry.published = true;
      pending.push_back(entry.next);
      pending.push_back(entry.cross);
    }
  }
  void publish_all() {
    box_published = true;
    if (first >= 0) publish_from(first);
  }

  // Drops unlinked entries (cross targets are always list members: removal clears them first).
  void compact() {
    const std::vector<int> live = order();
    if (entries.size() < 2 * live.size() + 8) return;
    std::vector<int> renumber(entries.size(), -1);
    for (size_t k = 0; k < live.size(); ++k)
      renumber[static_cast<size_t>(live[k])] = static_cast<int>(k);
    std::vector<Entry> kept;
    for (int i : live) {
      Entry entry = entries[static_cast<size_t>(i)];
      entry.next = entry.next >= 0 ? renumber[static_cast<size_t>(entry.next)] : -1;
      entry.cross = entry.cross >= 0 ? renumber[static_cast<size_t>(entry.cross)] : -1;
      kept.push_back(entry);
    }
    entries.swap(kept);
    first = entries.empty() ? -1 : 0;
  }

  uint64_t checksum() const {
    uint64_t sum = mix(structure_id, 0x11577);
    uint64_t position = 0;
    for (int i : order()) {
      const Entry& entry = entries[static_cast<size_t>(i)];
      const uint64_t cross_id = entry.cross >= 0 ? entries[static_cast<size_t>(entry.cross)].id : 0;
      sum = mix(sum, mix(mix(mix(mix(position++, entry.id), entry.payload), cross_id),
                         blob_checksum_of_pattern(entry.id, entry.blob_length)));
    }
    return sum;
  }
};

struct SharedWorkload {
  static constexpr size_t kInboxCapacity = 4;
  static constexpr size_t kHubSlotsPerWorker = 6;

  SharedWorkload(FailureSink& sink, GcTypes types, Clock::time_point deadline, unsigned workers,
                 bool explicit_collections)
      : sink(sink),
        types(types),
        deadline(deadline),
        workers(workers),
        explicit_collections(explicit_collections),
        global_slots(workers, nullptr) {}

  FailureSink& sink;
  const GcTypes types;
  const Clock::time_point deadline;
  const unsigned workers;
  const bool explicit_collections;  // false: workers never call usgc_gc_collect themselves
  void* hub = nullptr;              // a shared REF_ARRAY, rooted by the main goroutine
  std::vector<void*> global_slots;  // one global root per worker (registered by the main goroutine)
  std::vector<usgc_chan*> inboxes;  // reference channels, one per worker
  usgc_chan* release = nullptr;     // closed when the workers may run their last check
  usgc_chan* stop_blocking =
      nullptr;  // closed by the first worker past the deadline: no select blocks then
  std::atomic<bool> stop_blocking_closed{false};
  usgc_chan* courier = nullptr;  // unbuffered reference channel: courier producer -> consumer
  usgc_waitgroup couriers_done = USGC_WAITGROUP_INIT;
  std::atomic<uint64_t> courier_sends{0};
  std::atomic<uint64_t> courier_receives{0};

  // Lists in flight: the sender files the model under the box's structure id before it sends, the
  // receiver takes it out. The lock is held only around map operations (no usgc call, no poll, so
  // a holder is never stopped at a safepoint while another goroutine waits for the lock).
  std::mutex mailbox_lock;
  std::unordered_map<uint64_t, ListModel> mailbox;

  std::atomic<uint64_t> shared_epoch{0};  // bumped after each forced shared collection
  std::atomic<unsigned> drained{0};
  usgc_waitgroup stopped_sending = USGC_WAITGROUP_INIT;
  usgc_waitgroup all_drained = USGC_WAITGROUP_INIT;
  usgc_waitgroup finished = USGC_WAITGROUP_INIT;

  std::atomic<uint64_t> operations{0};
  std::atomic<uint64_t> sends{0};
  std::atomic<uint64_t> receives{0};
  std::atomic<uint64_t> blocking_sends{0};
  std::atomic<uint64_t> select_not_sent{0};
  std::atomic<uint64_t> full_inboxes{0};
  std::atomic<uint64_t> published_on_failed_send{0};
  std::atomic<uint64_t> hub_stores{0};
  std::atomic<uint64_t> global_stores{0};
  std::atomic<uint64_t> barrier_publications{
      0};  // a private node published by a store into a shared one
  std::atomic<uint64_t> private_collections{0};
  std::atomic<uint64_t> shared_collections_by_workers{0};
  std::atomic<uint64_t> shared_collections_by_main{0};
};

// Starts `count` private graph workers; `done` is counted down as each ends.
void start_private_workers(PrivateWorkload& workload, unsigned count, uint64_t seed,
                           usgc_waitgroup* done);

// Runs shared graph worker `index` on the calling goroutine until the workload ends.
void run_shared_graph_worker(SharedWorkload& workload, unsigned index, uint64_t seed);

// The courier pair (see tests/gc/gc_stress_shared_graph_channels.cpp); each counts down
// workload.couriers_done when it ends.
void courier_producer(SharedWorkload& workload, uint64_t seed);
void courier_consumer(SharedWorkload& workload, uint64_t seed);

}  // namespace usgc::testing::gc_stress
