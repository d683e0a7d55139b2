// tests/gc/gc_stress_test.cpp — the collectors under load: nothing live is ever lost or changed.
//
//   GcStressTest.PrivateCollectionsWhileOtherGoroutinesMutateTheirOwnGraphs
//     8 goroutines each build a private graph (nodes with two references and a blob) rooted in a
//     private table, local handles and the stack arena, rewire it at random with usgc_write, churn
//     garbage and collect their private heap at random points. Every collection is bracketed by a
//     walk of the whole live graph compared with a model in plain C++ memory.
//   GcStressTest.SharedCollectionsWhileGoroutinesPublishSendAndRewire
//     8 goroutines build lists in private roots, publish them (into a shared hub array, a global
//     root, usgc_publish, reference channels to each other with try_send and blocking selects),
//     receive each other's lists, rewire shared and private lists at random (a private node stored
//     into a shared one is published by the barrier), while the main goroutine forces shared
//     collections back to back and workers force some too. Ownership is checked everywhere: what
//     was sent or stored into a shared object is GOROUTINE_SHARED with its whole private closure,
//     what was never published is GOROUTINE_PRIVATE. Lists wait in channel buffers with no other
//     reference; a courier pair sends lists with a plain blocking send whose value only the
//     channel's waiting-sender record holds.
//   FakeNodes/GcStressFakeNumaTest.SharedCollectionsAcrossNodesKeepEveryLiveStructure/{0,1}
//     the shared workload under a fake topology of 2 and 4 nodes (per-node block pools, partial
//     lists and steal order in use); the per-node figures add up to the heap's afterwards.
//   GcStressAutoTest.CollectionsTriggeredByAllocationVolumeKeepEveryLiveStructure
//     both workloads at once with USGC_GC_PERCENT=25 and no explicit collection: the collections
//     the allocation volume triggers (private and shared) must keep every live structure.
//
// All run with USGC_VERIFY=1 (the heap verifier after every collection), are seeded (the seed is
// in every failure message; USGC_TEST_SEED=<n> repeats a run's choices, though goroutine
// interleavings differ) and bounded in wall time (USGC_GC_STRESS_MS overrides the length).
// Helpers and the rules the mutators keep: tests/gc/gc_test_support.hpp.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "numa/numa.hpp"
#include "tests/gc/gc_test_support.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace {

using Clock = std::chrono::steady_clock;
using usgc::testing::go;
using usgc::testing::Random;
using usgc::testing::run_main;
using usgc::testing::seed_note;
using usgc::testing::test_seed;
using namespace usgc::testing::gc_stress;

uint64_t worker_seed(uint64_t seed, uint64_t salt, unsigned index) {
  Random random(seed ^ (salt * 0xD6E8FEB86659FD93ull) ^ ((index + 1) * 0x9E3779B97F4A7C15ull));
  random.next();
  return random.next();
}

usgc_gc_stats gc_stats() {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  EXPECT_EQ(usgc_gc_get_stats(&stats), 0);
  return stats;
}

// =====================================================================================================
// Private graphs: one goroutine's graph, its model, and the operations on both.
// =====================================================================================================

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

class PrivateGraphWorker {
 public:
  PrivateGraphWorker(PrivateWorkload& workload, unsigned index, uint64_t seed)
      : workload_(workload),
        sink_(workload.sink),
        index_(index),
        random_(seed),
        next_id_((uint64_t{index} + 1) << 40) {}

  void run() {
    USGC_ROOTS(roots, kSlotCount);
    slots_ = roots;
    slots_[kTable] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, kTableSlots, USGC_GOROUTINE_PRIVATE);
    if (slots_[kTable] == nullptr)
      return fail(std::string("usgc_alloc_array(refs) failed: ") + usgc_last_error());
    if (usgc_ownership_of(slots_[kTable]) != USGC_GOROUTINE_PRIVATE ||
        usgc_array_length(slots_[kTable]) != kTableSlots)
      return fail("the table is not a private array of " + std::to_string(kTableSlots) + ": " +
                  describe_object(slots_[kTable]));
    table_.assign(kTableSlots, 0);
    uint64_t operations = 0;
    while (!failed_ && !sink_.failed() && Clock::now() < workload_.deadline) {
      step();
      ++operations;
      if (operations % 64 == 0) verify("periodic check");
      usgc_safepoint_poll();
    }
    if (!failed_ && !sink_.failed()) verify("at the end");
    if (!failed_ && !sink_.failed() && workload_.explicit_collections) collect_and_verify();
    for (auto& [handle, id] : handles_) usgc_handle_delete(handle);
    handles_.clear();
    workload_.operations.fetch_add(operations, std::memory_order_relaxed);
  }

 private:
  static constexpr size_t kTableSlots = 48;
  static constexpr size_t kMaxHandles = 8;
  static constexpr size_t kMaxLiveNodes = 1500;
  enum Slot { kTable, kNew, kScratch, kSlotCount };

  struct NodeModel {
    uint64_t payload;
    uint64_t next;        // node id, 0 = null
    uint64_t cross;       // node id, 0 = null
    int64_t blob_length;  // -1: no blob
  };
  struct Picked {
    Node* node = nullptr;
    uint64_t id = 0;
  };

  void fail(const std::string& what) {
    failed_ = true;
    sink_.fail("private graph worker " + std::to_string(index_) + ": " + what);
  }

  void* table() const { return slots_[kTable]; }

  // ---- operations ----

  void step() {
    const uint64_t choice = random_.below(100);
    if (live_nodes_ > kMaxLiveNodes && choice < 40) return cut();
    if (choice < 30) return add_node();
    if (choice < 45) return rewire();
    if (choice < 52) return change_payload();
    if (choice < 60) return shuffle_table();
    if (choice < 66) return cut();
    if (choice < 72) return change_handles();
    if (choice < 90) return churn_garbage();
    if (choice < 94) return stack_local_holder();
    if (workload_.explicit_collections) return collect_and_verify();
    return churn_garbage();
  }

  // A node reachable from the roots, found by a short random walk through the heap; every step is
  // checked against the model. The result is valid until the next operation that may collect and
  // drop it (it stays reachable: nothing moves).
  bool pick(Picked* picked) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      const void* start = nullptr;
      uint64_t id = 0;
      const char* where = "table";
      if (!handles_.empty() && random_.below(4) == 0) {
        auto& [handle, handle_id] = handles_[random_.below(handles_.size())];
        start = usgc_handle_get(handle);
        id = handle_id;
        where = "handle";
      } else {
        const size_t slot = random_.below(kTableSlots);
        start = usgc_array_read(table(), slot);
        id = table_[slot];
      }
      if (id == 0) {
        if (start != nullptr) {
          fail(std::string("pick: an empty ") + where + " entry holds " + describe_object(start));
          return false;
        }
        continue;
      }
      if (!check_reference(start, id, where, "pick")) return false;
      auto* node = static_cast<Node*>(const_cast<void*>(start));
      for (uint64_t steps = random_.below(4); steps > 0; --steps) {
        const NodeModel& model = nodes_.at(id);
        const bool along_next = random_.below(2) == 0;
        const uint64_t target = along_next ? model.next : model.cross;
        void* field = usgc_read(node, along_next ? &node->next : &node->cross);
        if (target == 0) {
          if (field != nullptr) {
            fail("pick: node " + std::to_string(id) + " should have a null field, found " +
                 describe_object(field));
            return false;
          }
          break;
        }
        if (!check_reference(field, target, along_next ? "next" : "cross", "pick")) return false;
        node = static_cast<Node*>(field);
        id = target;
      }
      picked->node = node;
      picked->id = id;
      return true;
    }
    return false;
  }

  // Is `object` the live private node `id` (as a reference found at `where`)?
  bool check_reference(const void* object, uint64_t id, const char* where, const char* when) {
    if (object == nullptr) {
      fail(std::string(when) + ": node " + std::to_string(id) + " lost: its " + where +
           " reference is null");
      return false;
    }
    if (usgc_ownership_of(object) != USGC_GOROUTINE_PRIVATE ||
        usgc_type_of(object) != workload_.types.node) {
      fail(std::string(when) + ": node " + std::to_string(id) + " (" + where +
           ") is no longer a private node: " + describe_object(object));
      return false;
    }
    const uint64_t found = static_cast<const Node*>(object)->id;
    if (found != id) {
      fail(std::string(when) + ": " + where + " should refer to node " + std::to_string(id) +
           ", found node id " + std::to_string(found) + " (" + describe_object(object) + ")");
      return false;
    }
    return true;
  }

  void add_node() {
    const uint64_t id = next_id_++;
    const uint64_t payload = random_.next();
    const int64_t blob_length =
        random_.below(4) == 0 ? -1 : static_cast<int64_t>(random_.below(72));
    if (!make_node(sink_, workload_.types, &slots_[kNew], id, payload, blob_length,
                   USGC_GOROUTINE_PRIVATE, "private graph worker")) {
      failed_ = true;
      return;
    }
    nodes_[id] = NodeModel{payload, 0, 0, blob_length};
    auto* node = static_cast<Node*>(slots_[kNew]);
    Picked target;
    if (live_nodes_ < kMaxLiveNodes) {  // link to older nodes only while the graph is small
      if (random_.below(3) != 0 && pick(&target)) {
        usgc_write(node, &node->next, target.node);
        nodes_[id].next = target.id;
      }
      if (failed_) return;
      if (random_.below(3) == 0 && pick(&target)) {
        usgc_write(node, &node->cross, target.node);
        nodes_[id].cross = target.id;
      }
      if (failed_) return;
    }
    if (random_.below(8) == 0) {  // self-loop
      usgc_write(node, &node->cross, node);
      nodes_[id].cross = id;
    }
    const uint64_t where = random_.below(10);
    if (where < 5) {
      const size_t slot = random_.below(kTableSlots);
      usgc_array_write(table(), slot, node);
      table_[slot] = id;
    } else if (where < 6) {
      add_handle(node, id);
    } else if (pick(&target)) {  // a child of a reachable node
      const bool along_next = random_.below(2) == 0;
      usgc_write(target.node, along_next ? &target.node->next : &target.node->cross, node);
      (along_next ? nodes_[target.id].next : nodes_[target.id].cross) = id;
    } else if (!failed_) {
      const size_t slot = random_.below(kTableSlots);
      usgc_array_write(table(), slot, node);
      table_[slot] = id;
    }
    slots_[kNew] = nullptr;
    ++live_nodes_;  // an estimate until the next verification counts them
  }

  void add_handle(void* node, uint64_t id) {
    if (handles_.size() >= kMaxHandles) {
      const size_t victim = random_.below(handles_.size());
      usgc_handle_delete(handles_[victim].first);
      handles_.erase(handles_.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    const usgc_handle handle = usgc_handle_new(node);
    if (handle == 0) return fail(std::string("usgc_handle_new failed: ") + usgc_last_error());
    if (usgc_handle_get(handle) != node)
      return fail("usgc_handle_get does not give back the object of a new handle");
    handles_.emplace_back(handle, id);
  }

  void rewire() {
    Picked from;
    Picked to;
    if (!pick(&from)) return;
    const bool to_null = random_.below(5) == 0;
    if (!to_null && !pick(&to)) return;
    const bool along_next = random_.below(2) == 0;
    usgc_write(from.node, along_next ? &from.node->next : &from.node->cross,
               to_null ? nullptr : to.node);
    (along_next ? nodes_[from.id].next : nodes_[from.id].cross) = to_null ? 0 : to.id;
  }

  void change_payload() {
    Picked picked;
    if (!pick(&picked)) return;
    const uint64_t payload = random_.next();
    picked.node->payload = payload;  // not a reference: a plain store
    nodes_[picked.id].payload = payload;
  }

  void shuffle_table() {
    const size_t to = random_.below(kTableSlots);
    const size_t from = random_.below(kTableSlots);
    void* value = usgc_array_read(table(), from);
    usgc_array_write(table(), to, value);
    table_[to] = table_[from];
  }

  // Drops references (what makes live nodes garbage).
  void cut() {
    const uint64_t choice = random_.below(3);
    if (choice == 0) {
      const size_t slot = random_.below(kTableSlots);
      usgc_array_write(table(), slot, nullptr);
      table_[slot] = 0;
    } else if (choice == 1 && !handles_.empty()) {
      const size_t victim = random_.below(handles_.size());
      usgc_handle_delete(handles_[victim].first);
      handles_.erase(handles_.begin() + static_cast<std::ptrdiff_t>(victim));
    } else {
      Picked picked;
      if (!pick(&picked)) return;
      const bool along_next = random_.below(2) == 0;
      usgc_write(picked.node, along_next ? &picked.node->next : &picked.node->cross, nullptr);
      (along_next ? nodes_[picked.id].next : nodes_[picked.id].cross) = 0;
    }
  }

  void change_handles() {
    Picked picked;
    if (random_.below(3) == 0 && !handles_.empty()) {
      const size_t victim = random_.below(handles_.size());
      usgc_handle_delete(handles_[victim].first);
      handles_.erase(handles_.begin() + static_cast<std::ptrdiff_t>(victim));
    } else if (pick(&picked)) {
      add_handle(picked.node, picked.id);
    }
  }

  // Garbage: chains of nodes (some pointing into the live graph), byte arrays and reference arrays,
  // held in a root while built, then dropped.
  void churn_garbage() {
    const uint64_t count = random_.between(8, 160);
    for (uint64_t i = 0; i < count && !failed_; ++i) {
      const uint64_t kind = random_.below(8);
      if (kind < 5) {
        void* node = usgc_alloc(workload_.types.node, USGC_GOROUTINE_PRIVATE);
        if (node == nullptr)
          return fail(std::string("garbage usgc_alloc failed: ") + usgc_last_error());
        auto* garbage = static_cast<Node*>(node);
        garbage->payload = 0xDEAD;
        usgc_write(garbage, &garbage->next, slots_[kScratch]);
        Picked live;
        if (kind == 0 && pick(&live))
          usgc_write(garbage, &garbage->cross, live.node);  // garbage -> live
        slots_[kScratch] = garbage;
      } else if (kind < 7) {
        void* bytes = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, random_.below(kind == 5 ? 64 : 3000),
                                       USGC_GOROUTINE_PRIVATE);
        if (bytes == nullptr)
          return fail(std::string("garbage usgc_alloc_array(bytes) failed: ") + usgc_last_error());
      } else {
        const size_t length = random_.between(1, 24);
        void* refs = usgc_alloc_array(USGC_TYPE_REF_ARRAY, length, USGC_GOROUTINE_PRIVATE);
        if (refs == nullptr)
          return fail(std::string("garbage usgc_alloc_array(refs) failed: ") + usgc_last_error());
        usgc_array_write(refs, 0, slots_[kScratch]);
        Picked live;
        if (length > 1 && pick(&live)) usgc_array_write(refs, length - 1, live.node);
        slots_[kScratch] = refs;
      }
    }
    slots_[kScratch] = nullptr;
  }

  // A STACK_LOCAL node is the only holder of a chain of private nodes: the stack arena is a root
  // of private collections, so the chain must survive them (and allocation-triggered ones).
  void stack_local_holder() {
    USGC_ROOTS(frame, 1);
    void* holder_object = usgc_alloc(workload_.types.node, USGC_STACK_LOCAL);
    if (holder_object == nullptr)
      return fail(std::string("usgc_alloc(STACK_LOCAL) failed: ") + usgc_last_error());
    if (usgc_ownership_of(holder_object) != USGC_STACK_LOCAL)
      return fail("a STACK_LOCAL node has the wrong class: " + describe_object(holder_object));
    // A raw pointer held across allocations: allowed, stack-local objects live until the frame
    // pops.
    auto* holder = static_cast<Node*>(holder_object);
    struct ChainNode {
      uint64_t id;
      uint64_t payload;
      int64_t blob_length;
    };
    std::vector<ChainNode> chain;  // head first
    const uint64_t length = random_.between(1, 12);
    for (uint64_t i = 0; i < length; ++i) {
      const uint64_t id = next_id_++;
      const uint64_t payload = random_.next();
      const int64_t blob_length =
          random_.below(5) == 0 ? -1 : static_cast<int64_t>(random_.below(40));
      if (!make_node(sink_, workload_.types, &frame[0], id, payload, blob_length,
                     USGC_GOROUTINE_PRIVATE, "private graph worker (stack-local holder)")) {
        failed_ = true;
        return;
      }
      auto* node = static_cast<Node*>(frame[0]);
      usgc_write(node, &node->next, usgc_read(holder, &holder->next));
      usgc_write(holder, &holder->next, node);  // into a stack-local object: allowed
      frame[0] = nullptr;                       // from here on only the holder refers to it
      chain.insert(chain.begin(), ChainNode{id, payload, blob_length});
      churn_small_garbage();
    }
    if (workload_.explicit_collections && random_.below(2) == 0) {
      if (usgc_gc_collect(USGC_GC_PRIVATE) != 0) return fail("usgc_gc_collect(PRIVATE) failed");
      workload_.collections.fetch_add(1, std::memory_order_relaxed);
    }
    churn_small_garbage();
    const void* node = usgc_read(holder, &holder->next);
    for (size_t i = 0; i < chain.size(); ++i) {
      if (!check_reference(node, chain[i].id, "stack-local holder chain", "stack-local holder"))
        return;
      const auto* n = static_cast<const Node*>(node);
      if (n->payload != chain[i].payload)
        return fail("a node held by a stack-local object changed its payload");
      std::string blob =
          check_blob(usgc_read(n, &n->blob), n->id, chain[i].blob_length, Expected::kPrivate);
      if (!blob.empty())
        return fail("stack-local holder chain, node " + std::to_string(n->id) + ": " + blob);
      node = usgc_read(n, &n->next);
    }
    if (node != nullptr)
      return fail("the stack-local holder chain is longer than built: " + describe_object(node));
    workload_.stack_local_rounds.fetch_add(1, std::memory_order_relaxed);
  }

  void churn_small_garbage() {
    for (uint64_t i = random_.below(24); i > 0; --i) {
      if (usgc_alloc(workload_.types.node, USGC_GOROUTINE_PRIVATE) == nullptr)
        return fail(std::string("garbage usgc_alloc failed: ") + usgc_last_error());
    }
  }

  void collect_and_verify() {
    const uint64_t before = verify("before a private collection");
    if (failed_) return;
    if (usgc_gc_collect(USGC_GC_PRIVATE) != 0)
      return fail(std::string("usgc_gc_collect(PRIVATE) failed: ") + usgc_last_error());
    workload_.collections.fetch_add(1, std::memory_order_relaxed);
    const uint64_t after = verify("after a private collection");
    if (!failed_ && before != after)
      fail("the checksum of the live graph changed across a private collection: " +
           std::to_string(before) + " -> " + std::to_string(after));
  }

  // ---- verification ----

  static uint64_t node_checksum(uint64_t id, uint64_t payload, uint64_t next, uint64_t cross,
                                uint64_t blob) {
    return mix(mix(mix(mix(id, payload), next), cross), blob);
  }

  // Walks the heap from every root and checks each reachable node against the model; compares the
  // checksum of what the heap holds with the checksum of what the model says is reachable; prunes
  // the model to the reachable nodes. Returns the checksum (0 after a failure).
  uint64_t verify(const char* when) {
    workload_.verifications.fetch_add(1, std::memory_order_relaxed);
    const void* table_object = table();
    if (table_object == nullptr || usgc_ownership_of(table_object) != USGC_GOROUTINE_PRIVATE ||
        usgc_type_of(table_object) != USGC_TYPE_REF_ARRAY ||
        usgc_array_length(table_object) != kTableSlots) {
      fail(std::string(when) + ": the root table is damaged: " + describe_object(table_object));
      return 0;
    }
    std::unordered_set<uint64_t> seen;
    std::vector<const Node*> pending;
    auto reference = [&](const void* object, uint64_t id, const char* where) {
      if (id == 0) {
        if (object != nullptr) {
          fail(std::string(when) + ": " + where + " should be null, holds " +
               describe_object(object));
          return false;
        }
        return true;
      }
      if (!check_reference(object, id, where, when)) return false;
      if (seen.insert(id).second) pending.push_back(static_cast<const Node*>(object));
      return true;
    };
    for (size_t slot = 0; slot < kTableSlots; ++slot)
      if (!reference(usgc_array_read(table_object, slot), table_[slot], "a table slot")) return 0;
    for (auto& [handle, id] : handles_)
      if (!reference(usgc_handle_get(handle), id, "a handle")) return 0;
    uint64_t heap_checksum = 0;
    while (!pending.empty()) {
      const Node* node = pending.back();
      pending.pop_back();
      const auto model = nodes_.find(node->id);
      if (model == nodes_.end()) {
        fail(std::string(when) + ": reached node " + std::to_string(node->id) +
             " which the model does not know");
        return 0;
      }
      const NodeModel& m = model->second;
      if (node->payload != m.payload) {
        fail(std::string(when) + ": node " + std::to_string(node->id) + " payload changed: " +
             std::to_string(node->payload) + " instead of " + std::to_string(m.payload));
        return 0;
      }
      const void* blob = usgc_read(node, &node->blob);
      const std::string blob_problem =
          check_blob(blob, node->id, m.blob_length, Expected::kPrivate);
      if (!blob_problem.empty()) {
        fail(std::string(when) + ": node " + std::to_string(node->id) + ": " + blob_problem);
        return 0;
      }
      const void* next = usgc_read(node, &node->next);
      const void* cross = usgc_read(node, &node->cross);
      if (!reference(next, m.next, "a next field") || !reference(cross, m.cross, "a cross field"))
        return 0;
      heap_checksum += node_checksum(
          node->id, node->payload, next ? static_cast<const Node*>(next)->id : 0,
          cross ? static_cast<const Node*>(cross)->id : 0, blob_checksum_of_heap(blob));
    }
    // The model alone: what is reachable from the roots it records, and its checksum.
    std::unordered_map<uint64_t, NodeModel> reachable;
    std::vector<uint64_t> ids(table_.begin(), table_.end());
    for (auto& [handle, id] : handles_) ids.push_back(id);
    uint64_t model_checksum = 0;
    while (!ids.empty()) {
      const uint64_t id = ids.back();
      ids.pop_back();
      if (id == 0 || reachable.count(id) != 0) continue;
      const NodeModel& m = nodes_.at(id);
      reachable.emplace(id, m);
      model_checksum += node_checksum(id, m.payload, m.next, m.cross,
                                      blob_checksum_of_pattern(id, m.blob_length));
      ids.push_back(m.next);
      ids.push_back(m.cross);
    }
    if (reachable.size() != seen.size() || model_checksum != heap_checksum) {
      fail(std::string(when) + ": the heap holds " + std::to_string(seen.size()) +
           " live nodes (checksum " + std::to_string(heap_checksum) + "), the model " +
           std::to_string(reachable.size()) + " (checksum " + std::to_string(model_checksum) + ")");
      return 0;
    }
    nodes_.swap(reachable);
    live_nodes_ = nodes_.size();
    return heap_checksum;
  }

  PrivateWorkload& workload_;
  FailureSink& sink_;
  const unsigned index_;
  Random random_;
  uint64_t next_id_;
  void** slots_ = nullptr;
  bool failed_ = false;
  std::unordered_map<uint64_t, NodeModel> nodes_;  // every node the model may still reach
  std::vector<uint64_t> table_;                    // table slot -> node id (0: null)
  std::vector<std::pair<usgc_handle, uint64_t>> handles_;
  size_t live_nodes_ = 0;
};

// Starts `count` private graph workers; `done` is counted down as each ends.
void start_private_workers(PrivateWorkload& workload, unsigned count, uint64_t seed,
                           usgc_waitgroup* done) {
  ASSERT_EQ(usgc_waitgroup_add(done, count), 0);
  for (unsigned index = 0; index < count; ++index) {
    go([&workload, index, seed, done] {
      {
        PrivateGraphWorker worker(workload, index, worker_seed(seed, 1, index));
        worker.run();
      }
      usgc_waitgroup_done(done);
    });
  }
}

}  // namespace

namespace {

// =====================================================================================================
// Shared graphs: lists that move between goroutines and shared places, and their models.
// =====================================================================================================

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

class SharedGraphWorker {
 public:
  SharedGraphWorker(SharedWorkload& workload, unsigned index, uint64_t seed)
      : workload_(workload),
        sink_(workload.sink),
        index_(index),
        random_(seed),
        next_id_((uint64_t{index} + 1) << 40 | (uint64_t{1} << 39)),
        next_structure_id_((uint64_t{index} + 1) << 40),
        places_(kPlaceCount) {}

  void run() {
    USGC_ROOTS(roots, kSlotCount);
    slots_ = roots;
    slots_[kHub] = workload_.hub;  // shared and rooted by the main goroutine too
    uint64_t operations = 0;
    uint64_t seen_epoch = workload_.shared_epoch.load(std::memory_order_relaxed);
    while (!stopped() && Clock::now() < workload_.deadline) {
      step();
      ++operations;
      const uint64_t epoch = workload_.shared_epoch.load(std::memory_order_relaxed);
      if (epoch != seen_epoch || operations % 16 == 0) {
        verify_all(epoch != seen_epoch ? "after a shared collection" : "periodic check");
        seen_epoch = epoch;
      }
      usgc_safepoint_poll();
    }
    workload_.operations.fetch_add(operations, std::memory_order_relaxed);
    // Wakes every worker waiting in a blocking send (its receiver may be past its last receive).
    if (!workload_.stop_blocking_closed.exchange(true, std::memory_order_relaxed))
      usgc_chan_close(workload_.stop_blocking);

    // Nobody sends after this barrier: each inbox can then be drained for good.
    usgc_waitgroup_done(&workload_.stopped_sending);
    usgc_waitgroup_wait(&workload_.stopped_sending);
    while (!stopped() && receive()) {
    }
    drain_after_failure();
    if (!stopped()) verify_all("after draining the inbox");
    workload_.drained.fetch_add(1, std::memory_order_release);  // the main goroutine reads it
    usgc_waitgroup_done(&workload_.all_drained);
    // The main goroutine collects (shared) while every worker waits here, then closes `release`.
    bool ok = true;
    usgc_chan_recv(workload_.release, nullptr, &ok);
    if (!stopped()) verify_all("after the last shared collections");
    for (int place = kFirstGlobalPlace; place < kPlaceCount; ++place) set_place(place, nullptr);
    usgc_waitgroup_done(&workload_.finished);
  }

 private:
  // Places a worker keeps lists in: its root slots, its slice of the shared hub, its global root.
  static constexpr int kLocalPlaces = 6;
  static constexpr int kHubPlaces = static_cast<int>(SharedWorkload::kHubSlotsPerWorker);
  static constexpr int kFirstHubPlace = kLocalPlaces;
  static constexpr int kFirstGlobalPlace = kLocalPlaces + kHubPlaces;
  static constexpr int kPlaceCount = kFirstGlobalPlace + 1;
  static constexpr size_t kMaxListLength = 24;
  // Root slots: 0..kLocalPlaces-1 are the local places.
  enum Slot { kHub = kLocalPlaces, kNew, kPin, kReceived, kScratch, kSlotCount };
  enum class Field { kFirst, kNext, kCross };

  bool stopped() const { return failed_ || sink_.failed(); }
  void fail(const std::string& what) {
    failed_ = true;
    sink_.fail("shared graph worker " + std::to_string(index_) + ": " + what);
  }

  // ---- places ----

  static bool is_local(int place) { return place < kFirstHubPlace; }
  static bool is_hub(int place) { return place >= kFirstHubPlace && place < kFirstGlobalPlace; }
  size_t hub_index(int place) const {
    return index_ * SharedWorkload::kHubSlotsPerWorker +
           static_cast<size_t>(place - kFirstHubPlace);
  }
  static const char* place_kind(int place) {
    return is_local(place) ? "local root" : is_hub(place) ? "hub slot" : "global root";
  }

  void* get_place(int place) const {
    if (is_local(place)) return slots_[place];
    if (is_hub(place)) return usgc_array_read(slots_[kHub], hub_index(place));
    return __atomic_load_n(&workload_.global_slots[index_], __ATOMIC_ACQUIRE);
  }

  // Stores `box` (its model in *model, or null) into `place`; a store into the shared hub or a
  // global root publishes the box's private closure, and the model says so.
  void set_place(int place, void* box, ListModel* model = nullptr) {
    if (is_local(place)) {
      slots_[place] = box;
    } else if (is_hub(place)) {
      usgc_array_write(slots_[kHub], hub_index(place), box);
      if (model != nullptr) {
        model->publish_all();
        workload_.hub_stores.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      usgc_global_store(&workload_.global_slots[index_], box);
      if (model != nullptr) {
        model->maybe_global = true;
        model->publish_all();
        workload_.global_stores.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  int random_place(bool occupied) {
    std::vector<int> candidates;
    for (int place = 0; place < kPlaceCount; ++place)
      if (places_[static_cast<size_t>(place)].has_value() == occupied) candidates.push_back(place);
    if (candidates.empty()) return -1;
    return candidates[random_.below(candidates.size())];
  }

  // ---- the heap side of a list ----

  // Walks the list in `box` along its model and checks every object: header, ownership, id,
  // payload, blob, cross reference. nodes[entry] receives each list member's address.
  bool walk(const void* box, const ListModel& model, const std::string& where,
            std::vector<Node*>* nodes, uint64_t* checksum) {
    if (box == nullptr) {
      fail(where + ": list " + std::to_string(model.structure_id) + " lost (its place is null)");
      return false;
    }
    if (usgc_type_of(box) != workload_.types.box ||
        !ownership_matches(box, model.expected(model.box_published))) {
      fail(where + ": the box of list " + std::to_string(model.structure_id) + " should be a " +
           expected_name(model.expected(model.box_published)) + " box: " + describe_object(box));
      return false;
    }
    const auto* b = static_cast<const Box*>(box);
    if (b->structure_id != model.structure_id) {
      fail(where + ": box of list " + std::to_string(model.structure_id) + " holds structure id " +
           std::to_string(b->structure_id) + " (" + describe_object(box) + ")");
      return false;
    }
    nodes->assign(model.entries.size(), nullptr);
    uint64_t sum = mix(model.structure_id, 0x11577);
    uint64_t position = 0;
    const void* object = usgc_read(b, &b->first);
    int i = model.first;
    std::vector<std::pair<int, const void*>> crosses;
    for (; i >= 0; i = model.entries[static_cast<size_t>(i)].next, ++position) {
      const ListModel::Entry& entry = model.entries[static_cast<size_t>(i)];
      const std::string at = where + ": list " + std::to_string(model.structure_id) + " position " +
                             std::to_string(position) + " (node " + std::to_string(entry.id) + ")";
      if (position > model.entries.size()) {
        fail(at + ": the model has a cycle (test bug)");
        return false;
      }
      if (object == nullptr) {
        fail(at + ": lost, the list ends early");
        return false;
      }
      const Expected expected = model.expected(entry.published);
      if (usgc_type_of(object) != workload_.types.node || !ownership_matches(object, expected)) {
        fail(at + ": should be a " + expected_name(expected) + " node: " + describe_object(object));
        return false;
      }
      const auto* node = static_cast<const Node*>(object);
      if (node->id != entry.id || node->payload != entry.payload) {
        fail(at + ": holds id " + std::to_string(node->id) + " payload " +
             std::to_string(node->payload) + ", expected payload " + std::to_string(entry.payload));
        return false;
      }
      const void* blob = usgc_read(node, &node->blob);
      const std::string blob_problem = check_blob(blob, entry.id, entry.blob_length, expected);
      if (!blob_problem.empty()) {
        fail(at + ": " + blob_problem);
        return false;
      }
      const void* cross = usgc_read(node, &node->cross);
      if ((entry.cross < 0) != (cross == nullptr)) {
        fail(at + ": cross reference should be " + (entry.cross < 0 ? "null" : "set") + ", is " +
             describe_object(cross));
        return false;
      }
      if (entry.cross >= 0) crosses.emplace_back(entry.cross, cross);
      (*nodes)[static_cast<size_t>(i)] = const_cast<Node*>(node);
      const uint64_t cross_id =
          entry.cross >= 0 ? model.entries[static_cast<size_t>(entry.cross)].id : 0;
      sum =
          mix(sum,
              mix(mix(mix(mix(position, node->id), node->payload), cross != nullptr ? cross_id : 0),
                  blob_checksum_of_heap(blob)));
      object = usgc_read(node, &node->next);
    }
    if (object != nullptr) {
      fail(where + ": list " + std::to_string(model.structure_id) +
           " is longer than its model: " + describe_object(object));
      return false;
    }
    for (auto& [target, cross] : crosses) {
      if ((*nodes)[static_cast<size_t>(target)] != cross) {
        fail(where + ": list " + std::to_string(model.structure_id) +
             ": a cross reference should point at node " +
             std::to_string(model.entries[static_cast<size_t>(target)].id) + ", points at " +
             describe_object(cross));
        return false;
      }
    }
    if (checksum != nullptr) *checksum = sum;
    return true;
  }

  bool verify_place(int place, const std::string& when, std::vector<Node*>* nodes = nullptr) {
    std::vector<Node*> scratch;
    auto& model = places_[static_cast<size_t>(place)];
    if (!model) {
      if (get_place(place) != nullptr) {
        fail(when + ": the empty " + place_kind(place) + " " + std::to_string(place) + " holds " +
             describe_object(get_place(place)));
        return false;
      }
      return true;
    }
    uint64_t heap_checksum = 0;
    if (!walk(get_place(place), *model,
              when + " (" + place_kind(place) + " " + std::to_string(place) + ")",
              nodes != nullptr ? nodes : &scratch, &heap_checksum))
      return false;
    if (heap_checksum != model->checksum()) {
      fail(when + ": list " + std::to_string(model->structure_id) + " checksum " +
           std::to_string(heap_checksum) + " differs from its model's " +
           std::to_string(model->checksum()));
      return false;
    }
    return true;
  }

  // Verifies every list this worker holds; returns the combined checksum.
  uint64_t verify_all(const std::string& when) {
    uint64_t sum = 0;
    for (int place = 0; place < kPlaceCount && !failed_; ++place) {
      if (!verify_place(place, when)) return 0;
      if (places_[static_cast<size_t>(place)]) {
        places_[static_cast<size_t>(place)]->compact();
        sum += places_[static_cast<size_t>(place)]->checksum();
      }
    }
    return sum;
  }

  // A reference store mirrored in the model: the value's private closure is published when the
  // target object is published (the barrier's slow path).
  void store(ListModel& model, void* object, int entry, Field field, void* value, int value_entry) {
    void** slot = field == Field::kFirst  ? &static_cast<Box*>(object)->first
                  : field == Field::kNext ? &static_cast<Node*>(object)->next
                                          : &static_cast<Node*>(object)->cross;
    usgc_write(object, slot, value);
    if (field == Field::kFirst) {
      model.first = value_entry;
    } else if (field == Field::kNext) {
      model.entries[static_cast<size_t>(entry)].next = value_entry;
    } else {
      model.entries[static_cast<size_t>(entry)].cross = value_entry;
    }
    const bool target_published =
        entry < 0 ? model.box_published : model.entries[static_cast<size_t>(entry)].published;
    if (target_published && value_entry >= 0) {
      if (!model.entries[static_cast<size_t>(value_entry)].published)
        workload_.barrier_publications.fetch_add(1, std::memory_order_relaxed);
      model.publish_from(value_entry);
    }
  }

  // ---- operations ----

  void step() {
    const uint64_t choice = random_.below(100);
    if (choice < 16) return insert_node();
    if (choice < 23) return remove_node();
    if (choice < 27) return reverse_list();
    if (choice < 33) return set_cross();
    if (choice < 37) return change_payload();
    if (choice < 46) return build_list();
    if (choice < 54) return move_list();
    if (choice < 64) return send_list();
    if (choice < 75) {
      receive();
      return;
    }
    if (choice < 78) return drop_list();
    if (choice < 92) return churn_garbage();
    if (choice < 96 && workload_.explicit_collections) return private_collection();
    if (choice < 97 && workload_.explicit_collections) return shared_collection();
    return churn_garbage();
  }

  uint64_t new_id() { return next_id_++; }

  // Inserts a new node (private, or allocated shared) at a random position of a random list.
  void insert_node(int place = -1) {
    if (place < 0) place = random_place(true);
    if (place < 0) return build_list();
    ListModel& model = *places_[static_cast<size_t>(place)];
    std::vector<int> order = model.order();
    if (order.size() >= kMaxListLength) return remove_node(place);
    const usgc_ownership ownership =
        random_.below(5) == 0 ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE;
    const uint64_t id = new_id();
    const uint64_t payload = random_.next();
    const int64_t blob_length =
        random_.below(3) == 0 ? -1 : static_cast<int64_t>(random_.below(48));
    if (!make_node(sink_, workload_.types, &slots_[kNew], id, payload, blob_length, ownership,
                   "shared graph worker")) {
      failed_ = true;
      return;
    }
    std::vector<Node*> nodes;
    void* box = get_place(place);
    if (!walk(box, model, "before an insertion", &nodes, nullptr)) return;
    const size_t position = random_.below(order.size() + 1);
    const int entry = static_cast<int>(model.entries.size());
    model.entries.push_back(
        {id, payload, blob_length, -1, -1, ownership != USGC_GOROUTINE_PRIVATE});
    void* node = slots_[kNew];
    const int successor = position < order.size() ? order[position] : -1;
    store(model, node, entry, Field::kNext,
          successor >= 0 ? nodes[static_cast<size_t>(successor)] : nullptr, successor);
    if (random_.below(2) == 0) {
      const uint64_t pick = random_.below(order.size() + 1);  // order.size(): the new node itself
      const int target = pick < order.size() ? order[pick] : entry;
      store(model, node, entry, Field::kCross,
            pick < order.size() ? nodes[static_cast<size_t>(target)] : node, target);
    }
    if (position == 0) {
      store(model, box, -1, Field::kFirst, node, entry);
    } else {
      const int previous = order[position - 1];
      store(model, nodes[static_cast<size_t>(previous)], previous, Field::kNext, node, entry);
    }
    slots_[kNew] = nullptr;
    verify_place(place, "after an insertion");
  }

  void remove_node(int place = -1) {
    if (place < 0) place = random_place(true);
    if (place < 0) return;
    ListModel& model = *places_[static_cast<size_t>(place)];
    const std::vector<int> order = model.order();
    if (order.empty()) return insert_node(place);
    std::vector<Node*> nodes;
    void* box = get_place(place);
    if (!walk(box, model, "before a removal", &nodes, nullptr)) return;
    const size_t position = random_.below(order.size());
    const int victim = order[position];
    for (int i : order)
      if (model.entries[static_cast<size_t>(i)].cross == victim)
        store(model, nodes[static_cast<size_t>(i)], i, Field::kCross, nullptr, -1);
    const int successor = model.entries[static_cast<size_t>(victim)].next;
    void* successor_node = successor >= 0 ? nodes[static_cast<size_t>(successor)] : nullptr;
    if (position == 0) {
      store(model, box, -1, Field::kFirst, successor_node, successor);
    } else {
      store(model, nodes[static_cast<size_t>(order[position - 1])], order[position - 1],
            Field::kNext, successor_node, successor);
    }
    verify_place(place, "after a removal");
  }

  // Reverses a list in place. Halfway, part of the list is reachable only through local
  // pointers, so every node is pinned first in a private array held by a root.
  void reverse_list() {
    const int place = random_place(true);
    if (place < 0) return;
    ListModel& model = *places_[static_cast<size_t>(place)];
    const std::vector<int> order = model.order();
    if (order.size() < 2) return;
    slots_[kPin] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, order.size(), USGC_GOROUTINE_PRIVATE);
    if (slots_[kPin] == nullptr)
      return fail(std::string("usgc_alloc_array(refs) failed: ") + usgc_last_error());
    std::vector<Node*> nodes;
    void* box = get_place(place);
    if (!walk(box, model, "before a reversal", &nodes, nullptr)) return;
    for (size_t k = 0; k < order.size(); ++k)
      usgc_array_write(slots_[kPin], k, nodes[static_cast<size_t>(order[k])]);
    for (size_t k = 0; k < order.size(); ++k) {
      const int previous = k == 0 ? -1 : order[k - 1];
      store(model, nodes[static_cast<size_t>(order[k])], order[k], Field::kNext,
            previous >= 0 ? nodes[static_cast<size_t>(previous)] : nullptr, previous);
      usgc_safepoint_poll();  // a stop here sees the list cut in two
    }
    store(model, box, -1, Field::kFirst, nodes[static_cast<size_t>(order.back())], order.back());
    slots_[kPin] = nullptr;
    verify_place(place, "after a reversal");
  }

  void set_cross() {
    const int place = random_place(true);
    if (place < 0) return;
    ListModel& model = *places_[static_cast<size_t>(place)];
    const std::vector<int> order = model.order();
    if (order.empty()) return;
    std::vector<Node*> nodes;
    if (!walk(get_place(place), model, "before a cross store", &nodes, nullptr)) return;
    const int from = order[random_.below(order.size())];
    const int to = random_.below(4) == 0 ? -1 : order[random_.below(order.size())];
    store(model, nodes[static_cast<size_t>(from)], from, Field::kCross,
          to >= 0 ? nodes[static_cast<size_t>(to)] : nullptr, to);
    verify_place(place, "after a cross store");
  }

  void change_payload() {
    const int place = random_place(true);
    if (place < 0) return;
    ListModel& model = *places_[static_cast<size_t>(place)];
    const std::vector<int> order = model.order();
    if (order.empty()) return;
    std::vector<Node*> nodes;
    if (!walk(get_place(place), model, "before a payload change", &nodes, nullptr)) return;
    const int entry = order[random_.below(order.size())];
    const uint64_t payload = random_.next();
    nodes[static_cast<size_t>(entry)]->payload = payload;  // not a reference: a plain store
    model.entries[static_cast<size_t>(entry)].payload = payload;
  }

  // A new private list in an empty local root (or replacing one: the old list becomes garbage).
  void build_list() {
    int place = random_.below(kLocalPlaces);
    void* box = usgc_alloc(workload_.types.box, USGC_GOROUTINE_PRIVATE);
    if (box == nullptr) return fail(std::string("usgc_alloc(box) failed: ") + usgc_last_error());
    if (usgc_ownership_of(box) != USGC_GOROUTINE_PRIVATE ||
        static_cast<Box*>(box)->first != nullptr)
      return fail("a new box is not a zeroed private box: " + describe_object(box));
    const uint64_t structure_id = next_structure_id_++;
    static_cast<Box*>(box)->structure_id = structure_id;
    slots_[place] = box;
    places_[static_cast<size_t>(place)].emplace();
    places_[static_cast<size_t>(place)]->structure_id = structure_id;
    for (uint64_t length = random_.between(1, 10); length > 0 && !stopped(); --length)
      insert_node(place);
  }

  // Moves a list between a local root, the hub and the global root (publishing it on the way out).
  void move_list() {
    const int from = random_place(true);
    const int to = random_place(false);
    if (from < 0 || to < 0) return;
    slots_[kScratch] = get_place(from);
    ListModel model = std::move(*places_[static_cast<size_t>(from)]);
    places_[static_cast<size_t>(from)].reset();
    set_place(to, slots_[kScratch], &model);
    set_place(from, nullptr);
    places_[static_cast<size_t>(to)] = std::move(model);
    slots_[kScratch] = nullptr;
    verify_place(to, std::string("after a move to a ") + place_kind(to));
    verify_place(from, std::string("after a move from a ") + place_kind(from));
  }

  void drop_list() {
    const int place = random_place(true);
    if (place < 0) return;
    set_place(place, nullptr);
    places_[static_cast<size_t>(place)].reset();
  }

  // Sends a list to another worker, in one of two ways:
  //   - try_send: the list waits in the receiver's channel buffer (a root of shared collections)
  //     after the sender has dropped every reference to it;
  //   - a blocking select {send to the receiver, receive from my inbox, receive from `stop`}: the
  //     box is taken out of its place first and offered from a root slot. (Not from a plain local:
  //     when another case wins, the select's waiter is dequeued before this goroutine runs again,
  //     and a shared collection in between would rightly not see the value. The courier test below
  //     covers a waiting sender whose value only the channel holds, with a plain blocking send.)
  // Before the send the nodes and blobs (and, for try_send, the box) are pinned in a private array
  // so their ownership can be checked after it although the receiver may already be rewiring (and
  // dropping parts of) the list: all must be GOROUTINE_SHARED now.
  void send_list() {
    if (workload_.workers < 2) return;
    const int place = random_place(true);
    if (place < 0) return;
    const bool blocking = random_.below(3) == 0;
    ListModel& model = *places_[static_cast<size_t>(place)];
    const std::vector<int> order = model.order();
    slots_[kPin] =
        usgc_alloc_array(USGC_TYPE_REF_ARRAY, 1 + 2 * order.size(), USGC_GOROUTINE_PRIVATE);
    if (slots_[kPin] == nullptr)
      return fail(std::string("usgc_alloc_array(refs) failed: ") + usgc_last_error());
    std::vector<Node*> nodes;
    void* box = get_place(place);
    if (!walk(box, model, "before a send", &nodes, nullptr)) return;
    if (!blocking) usgc_array_write(slots_[kPin], 0, box);
    for (size_t k = 0; k < order.size(); ++k) {
      Node* node = nodes[static_cast<size_t>(order[k])];
      usgc_array_write(slots_[kPin], 1 + 2 * k, node);
      usgc_array_write(slots_[kPin], 2 + 2 * k, usgc_read(node, &node->blob));
    }
    ListModel sent = model;
    sent.publish_all();
    const Expected expected = sent.expected(true);
    const uint64_t structure_id = model.structure_id;
    {
      std::lock_guard<std::mutex> lock(workload_.mailbox_lock);
      workload_.mailbox[structure_id] = sent;
    }
    unsigned target = static_cast<unsigned>(random_.below(workload_.workers - 1));
    if (target >= index_) ++target;

    bool delivered = false;
    bool received = false;
    if (!blocking) {
      slots_[kScratch] = box;
      const int result = usgc_chan_try_send(workload_.inboxes[target], &slots_[kScratch]);
      slots_[kScratch] = nullptr;
      if (result != 0 && result != EAGAIN)
        return fail("usgc_chan_try_send on a reference channel returned " + std::to_string(result));
      delivered = result == 0;
      if (!delivered) workload_.full_inboxes.fetch_add(1, std::memory_order_relaxed);
    } else {
      ListModel kept = std::move(model);
      places_[static_cast<size_t>(place)].reset();
      set_place(place, nullptr);
      slots_[kScratch] = box;
      box = nullptr;
      usgc_select_case cases[3] = {
          {workload_.inboxes[target], USGC_SELECT_SEND, &slots_[kScratch], false},
          {workload_.inboxes[index_], USGC_SELECT_RECV, &slots_[kReceived], false},
          {workload_.stop_blocking, USGC_SELECT_RECV, nullptr, false},
      };
      size_t chosen = 99;
      const int result = usgc_select(cases, 3, true, &chosen);
      if (result != 0 || chosen > 2)
        return fail("usgc_select returned " + std::to_string(result) + ", case " +
                    std::to_string(chosen));
      delivered = chosen == 0;
      received = chosen == 1;
      if (received && !cases[1].received_ok)
        return fail("usgc_select received from an inbox without a value");
      if (delivered) {
        workload_.blocking_sends.fetch_add(1, std::memory_order_relaxed);
      } else {
        workload_.select_not_sent.fetch_add(1, std::memory_order_relaxed);
        box = slots_[kScratch];
        set_place(place, box, &kept);
        places_[static_cast<size_t>(place)] = std::move(kept);
      }
      slots_[kScratch] = nullptr;
    }

    if (!delivered) {
      {
        std::lock_guard<std::mutex> lock(workload_.mailbox_lock);
        workload_.mailbox.erase(structure_id);
      }
      // Whether an offer that was not taken published its value is not specified: accept both
      // (the whole closure or nothing), and say which in the statistics.
      ListModel& unsent = *places_[static_cast<size_t>(place)];
      if (!unsent.box_published && usgc_ownership_of(box) != USGC_GOROUTINE_PRIVATE) {
        unsent.publish_all();
        workload_.published_on_failed_send.fetch_add(1, std::memory_order_relaxed);
      }
      slots_[kPin] = nullptr;
      verify_place(place, "after a send that did not happen");
      if (received) accept_received();
      return;
    }
    workload_.sends.fetch_add(1, std::memory_order_relaxed);
    if (!blocking) {
      set_place(place, nullptr);
      places_[static_cast<size_t>(place)].reset();
    }
    const void* pin = slots_[kPin];
    for (size_t k = 0; k < usgc_array_length(pin); ++k) {
      const void* object = usgc_array_read(pin, k);
      if (object == nullptr) continue;  // a node without a blob, or the box of a blocking send
      if (!ownership_matches(object, expected)) {
        fail("list " + std::to_string(structure_id) + " was sent but its " +
             (k == 0 ? std::string("box")
                     : (k % 2 == 1 ? "node " : "blob of node ") + std::to_string((k - 1) / 2)) +
             " is not " + expected_name(expected) + ": " + describe_object(object));
        break;
      }
    }
    slots_[kPin] = nullptr;
  }

  // Takes one list from the inbox (false when it is empty), checks it against the model its
  // sender filed, and keeps it.
  bool receive() {
    bool ok = false;
    const int result = usgc_chan_try_recv(workload_.inboxes[index_], &slots_[kReceived], &ok);
    if (result == EAGAIN) return false;
    if (result != 0 || !ok) {
      fail("usgc_chan_try_recv returned " + std::to_string(result) +
           (ok ? "" : " without a value"));
      return false;
    }
    return accept_received();
  }

  // Checks the list just received into slots_[kReceived] against the model its sender filed, and
  // keeps it in a place.
  bool accept_received() {
    const void* box = slots_[kReceived];
    if (box == nullptr || usgc_type_of(box) != workload_.types.box ||
        !ownership_matches(box, Expected::kSharedOrGlobal)) {
      fail("received something that is not a published box: " + describe_object(box));
      return false;
    }
    const uint64_t structure_id = static_cast<const Box*>(box)->structure_id;
    std::optional<ListModel> model;
    {
      std::lock_guard<std::mutex> lock(workload_.mailbox_lock);
      auto found = workload_.mailbox.find(structure_id);
      if (found != workload_.mailbox.end()) {
        model = std::move(found->second);
        workload_.mailbox.erase(found);
      }
    }
    if (!model) {
      fail("received a box with structure id " + std::to_string(structure_id) +
           " that nobody sent (" + describe_object(box) + ")");
      return false;
    }
    workload_.receives.fetch_add(1, std::memory_order_relaxed);
    std::vector<Node*> nodes;
    if (!walk(box, *model, "a received list", &nodes, nullptr)) return false;
    int place = random_place(false);
    if (place < 0) {
      place = static_cast<int>(random_.below(kPlaceCount));
      places_[static_cast<size_t>(place)].reset();
    }
    set_place(place, slots_[kReceived], &*model);
    places_[static_cast<size_t>(place)] = std::move(model);
    slots_[kReceived] = nullptr;
    verify_place(place, std::string("a received list kept in a ") + place_kind(place));
    return true;
  }

  void drain_after_failure() {
    // After a failure the inbox may still hold lists; take them out so the channel can be
    // destroyed.
    if (!stopped()) return;
    bool ok = false;
    while (usgc_chan_try_recv(workload_.inboxes[index_], &slots_[kReceived], &ok) == 0 && ok) {
    }
    slots_[kReceived] = nullptr;
  }

  // Garbage in every class: private chains, shared chains (stores into shared objects), private
  // chains published by usgc_publish, byte arrays; some point into the live lists.
  void churn_garbage() {
    const uint64_t kind = random_.below(4);
    const usgc_ownership ownership = kind == 1 ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE;
    for (uint64_t count = random_.between(4, 64); count > 0; --count) {
      if (random_.below(6) == 0) {
        if (usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, random_.below(2000), ownership) == nullptr)
          return fail(std::string("garbage usgc_alloc_array failed: ") + usgc_last_error());
        continue;
      }
      void* object = usgc_alloc(workload_.types.node, ownership);
      if (object == nullptr)
        return fail(std::string("garbage usgc_alloc failed: ") + usgc_last_error());
      auto* node = static_cast<Node*>(object);
      node->payload = 0xDEAD;
      usgc_write(node, &node->next, slots_[kScratch]);
      if (random_.below(8) == 0) {  // garbage -> a live list
        // Only to a published list from garbage that is (or will be, kind 2) published: a store
        // into a shared object, or usgc_publish, would otherwise publish the live private list.
        const int place = random_place(true);
        if (place >= 0 &&
            (places_[static_cast<size_t>(place)]->box_published || kind == 0 || kind == 3))
          usgc_write(node, &node->cross, get_place(place));
      }
      slots_[kScratch] = node;
    }
    if (kind == 2 && slots_[kScratch] != nullptr) {
      const bool was_private = usgc_ownership_of(slots_[kScratch]) == USGC_GOROUTINE_PRIVATE;
      usgc_publish(slots_[kScratch]);
      if (was_private) {
        for (const void* node = slots_[kScratch]; node != nullptr;
             node = usgc_read(node, &static_cast<const Node*>(node)->next)) {
          if (usgc_ownership_of(node) != USGC_GOROUTINE_SHARED &&
              usgc_ownership_of(node) != USGC_GLOBAL_SHARED) {
            fail("usgc_publish left part of a private chain unpublished: " + describe_object(node));
            break;
          }
        }
      }
    }
    slots_[kScratch] = nullptr;
  }

  void private_collection() {
    const uint64_t before = verify_all("before a private collection");
    if (stopped()) return;
    if (usgc_gc_collect(USGC_GC_PRIVATE) != 0)
      return fail(std::string("usgc_gc_collect(PRIVATE) failed: ") + usgc_last_error());
    workload_.private_collections.fetch_add(1, std::memory_order_relaxed);
    const uint64_t after = verify_all("after a private collection");
    if (!stopped() && before != after) fail("checksums changed across a private collection");
  }

  void shared_collection() {
    const uint64_t before = verify_all("before a shared collection (forced by a worker)");
    if (stopped()) return;
    const usgc_gc_kind kind = random_.below(2) == 0 ? USGC_GC_SHARED_MINOR : USGC_GC_SHARED;
    if (usgc_gc_collect(kind) != 0)
      return fail(std::string("usgc_gc_collect(SHARED) failed: ") + usgc_last_error());
    workload_.shared_collections_by_workers.fetch_add(1, std::memory_order_relaxed);
    const uint64_t after = verify_all("after a shared collection (forced by a worker)");
    if (!stopped() && before != after) fail("checksums changed across a shared collection");
  }

  SharedWorkload& workload_;
  FailureSink& sink_;
  const unsigned index_;
  Random random_;
  uint64_t next_id_;
  uint64_t next_structure_id_;
  void** slots_ = nullptr;
  bool failed_ = false;
  std::vector<std::optional<ListModel>> places_;
};

// ---- the courier: a waiting sender whose value only the channel holds ----
//
// A producer builds private lists and sends each with a plain blocking send on an unbuffered
// reference channel, its box held by nothing but a local variable: while the producer waits, the
// channel's record of the waiting sender is the only reference to the list (a root of shared
// collections, usgc/runtime.h). A slow consumer receives into a root slot and checks each list
// against its description, which is a function of its number alone.

struct CourierList {
  static uint64_t node_count(uint64_t number) { return 1 + mix(number, 0xC0) % 8; }
  static uint64_t node_id(uint64_t number, uint64_t k) {
    return (uint64_t{0xC0} << 56) | (number << 8) | k;
  }
  static uint64_t payload(uint64_t number, uint64_t k) { return mix(number, k + 1); }
  static int64_t blob_length(uint64_t number, uint64_t k) {
    const uint64_t x = mix(number, k + 100) % 48;
    return x < 8 ? -1 : static_cast<int64_t>(x);
  }
};

void courier_producer(SharedWorkload& workload, uint64_t seed) {
  Random random(seed);
  USGC_ROOTS(roots, 2);
  uint64_t number = 0;
  while (!workload.sink.failed() && Clock::now() < workload.deadline) {
    ++number;
    roots[0] = usgc_alloc(workload.types.box, USGC_GOROUTINE_PRIVATE);
    if (roots[0] == nullptr) {
      workload.sink.fail(std::string("courier: usgc_alloc(box) failed: ") + usgc_last_error());
      break;
    }
    static_cast<Box*>(roots[0])->structure_id = number;
    bool built = true;
    for (uint64_t k = CourierList::node_count(number); k-- > 0 && built;) {
      built = make_node(workload.sink, workload.types, &roots[1], CourierList::node_id(number, k),
                        CourierList::payload(number, k), CourierList::blob_length(number, k),
                        USGC_GOROUTINE_PRIVATE, "courier producer");
      if (!built) break;
      auto* box = static_cast<Box*>(roots[0]);
      auto* node = static_cast<Node*>(roots[1]);
      usgc_write(node, &node->next, usgc_read(box, &box->first));
      usgc_write(box, &box->first, node);
      roots[1] = nullptr;
      for (uint64_t garbage = random.below(16); garbage > 0; --garbage)
        (void)usgc_alloc(workload.types.node,
                         random.below(2) == 0 ? USGC_GOROUTINE_PRIVATE : USGC_GOROUTINE_SHARED);
    }
    if (!built) break;
    if (usgc_ownership_of(roots[0]) != USGC_GOROUTINE_PRIVATE) {
      workload.sink.fail("courier: an unsent list is not private: " + describe_object(roots[0]));
      break;
    }
    void* value = roots[0];  // no allocation from here to the send: nothing can collect it
    roots[0] = nullptr;
    const int result = usgc_chan_send(workload.courier, &value);
    if (result != 0) {
      workload.sink.fail("courier: usgc_chan_send returned " + std::to_string(result));
      break;
    }
    workload.courier_sends.fetch_add(1, std::memory_order_relaxed);
  }
  EXPECT_EQ(usgc_chan_close(workload.courier), 0);
  usgc_waitgroup_done(&workload.couriers_done);
}

void courier_consumer(SharedWorkload& workload, uint64_t seed) {
  Random random(seed);
  USGC_ROOTS(roots, 1);
  uint64_t expected_number = 1;
  for (;;) {
    usgc_sleep_ns(random.below(600'000));  // the producer waits meanwhile, and the world stops
    bool ok = false;
    if (usgc_chan_recv(workload.courier, &roots[0], &ok) != 0 || !ok) break;
    if (workload.sink.failed()) continue;  // keep receiving: the producer must not wait forever
    const void* box = roots[0];
    const std::string list = "courier list " + std::to_string(expected_number);
    if (box == nullptr || usgc_type_of(box) != workload.types.box ||
        usgc_ownership_of(box) != USGC_GOROUTINE_SHARED ||
        static_cast<const Box*>(box)->structure_id != expected_number) {
      workload.sink.fail(list + ": received box is wrong (freed while its sender waited?): " +
                         describe_object(box));
      continue;
    }
    const void* object = usgc_read(box, &static_cast<const Box*>(box)->first);
    for (uint64_t k = 0; k < CourierList::node_count(expected_number); ++k) {
      const auto* node = static_cast<const Node*>(object);
      if (node == nullptr || usgc_type_of(node) != workload.types.node ||
          usgc_ownership_of(node) != USGC_GOROUTINE_SHARED ||
          node->id != CourierList::node_id(expected_number, k) ||
          node->payload != CourierList::payload(expected_number, k)) {
        workload.sink.fail(list + " node " + std::to_string(k) +
                           " is wrong: " + describe_object(node));
        break;
      }
      const std::string blob =
          check_blob(usgc_read(node, &node->blob), node->id,
                     CourierList::blob_length(expected_number, k), Expected::kShared);
      if (!blob.empty()) {
        workload.sink.fail(list + " node " + std::to_string(k) + ": " + blob);
        break;
      }
      object = usgc_read(node, &node->next);
      if (k + 1 == CourierList::node_count(expected_number) && object != nullptr)
        workload.sink.fail(list + " is longer than sent: " + describe_object(object));
    }
    for (uint64_t garbage = random.below(32); garbage > 0; --garbage)
      (void)usgc_alloc(workload.types.node,
                       random.below(2) == 0 ? USGC_GOROUTINE_PRIVATE : USGC_GOROUTINE_SHARED);
    roots[0] = nullptr;
    ++expected_number;
    workload.courier_receives.fetch_add(1, std::memory_order_relaxed);
  }
  usgc_waitgroup_done(&workload.couriers_done);
}

// Runs the shared workload from the main goroutine: makes the hub, global roots and channels,
// starts the workers, forces shared collections until they have drained their inboxes (when
// main_collects), collects twice more while they wait, lets them run their last check, cleans up.
void run_shared_workload(SharedWorkload& workload, uint64_t seed, bool main_collects) {
  USGC_ROOTS(roots, 1);
  roots[0] =
      usgc_alloc_array(USGC_TYPE_REF_ARRAY, workload.workers * SharedWorkload::kHubSlotsPerWorker,
                       USGC_GOROUTINE_SHARED);
  ASSERT_NE(roots[0], nullptr) << usgc_last_error();
  ASSERT_EQ(usgc_ownership_of(roots[0]), USGC_GOROUTINE_SHARED) << describe_object(roots[0]);
  workload.hub = roots[0];
  for (unsigned w = 0; w < workload.workers; ++w) {
    ASSERT_EQ(usgc_global_root_add(&workload.global_slots[w]), 0);
    usgc_chan* inbox = usgc_chan_make_refs(SharedWorkload::kInboxCapacity);
    ASSERT_NE(inbox, nullptr);
    workload.inboxes.push_back(inbox);
  }
  workload.release = usgc_chan_make(0, 0);
  ASSERT_NE(workload.release, nullptr);
  workload.stop_blocking = usgc_chan_make(0, 0);
  ASSERT_NE(workload.stop_blocking, nullptr);
  workload.courier = usgc_chan_make_refs(0);
  ASSERT_NE(workload.courier, nullptr);
  ASSERT_EQ(usgc_waitgroup_add(&workload.couriers_done, 2), 0);
  go([&workload, seed] { courier_producer(workload, worker_seed(seed, 4, 0)); });
  go([&workload, seed] { courier_consumer(workload, worker_seed(seed, 4, 1)); });
  const unsigned workers = workload.workers;
  ASSERT_EQ(usgc_waitgroup_add(&workload.stopped_sending, workers), 0);
  ASSERT_EQ(usgc_waitgroup_add(&workload.all_drained, workers), 0);
  ASSERT_EQ(usgc_waitgroup_add(&workload.finished, workers), 0);
  for (unsigned index = 0; index < workers; ++index) {
    go([&workload, index, seed] {
      SharedGraphWorker worker(workload, index, worker_seed(seed, 2, index));
      worker.run();
    });
  }
  Random random(worker_seed(seed, 3, 0));
  while (workload.drained.load(std::memory_order_acquire) < workers) {
    if (main_collects) {
      // Minor and full collections alternate at random (minor: young objects only, the old ones
      // found through dirty cards; full: everything).
      EXPECT_EQ(usgc_gc_collect(random.below(2) == 0 ? USGC_GC_SHARED_MINOR : USGC_GC_SHARED), 0)
          << usgc_last_error();
      workload.shared_collections_by_main.fetch_add(1, std::memory_order_relaxed);
      workload.shared_epoch.fetch_add(1, std::memory_order_relaxed);
    }
    usgc_sleep_ns(random.below(main_collects ? 400'000 : 2'000'000));
  }
  usgc_waitgroup_wait(&workload.all_drained);
  for (int round = 0; round < 2; ++round) {  // every worker is parked, its lists in its roots
    EXPECT_EQ(usgc_gc_collect(USGC_GC_SHARED), 0) << usgc_last_error();
    workload.shared_collections_by_main.fetch_add(1, std::memory_order_relaxed);
  }
  EXPECT_EQ(usgc_chan_close(workload.release), 0);
  usgc_waitgroup_wait(&workload.finished);
  usgc_waitgroup_wait(&workload.couriers_done);
  for (unsigned w = 0; w < workers; ++w)
    EXPECT_EQ(usgc_global_root_remove(&workload.global_slots[w]), 0);
  EXPECT_EQ(workload.mailbox.size(), 0u) << "lists sent but never received";
}

void destroy_channels(SharedWorkload& workload) {
  for (usgc_chan* inbox : workload.inboxes) EXPECT_EQ(usgc_chan_destroy(inbox), 0);
  if (workload.release != nullptr) {
    EXPECT_EQ(usgc_chan_destroy(workload.release), 0);
  }
  if (workload.stop_blocking != nullptr) {
    EXPECT_EQ(usgc_chan_destroy(workload.stop_blocking), 0);
  }
  if (workload.courier != nullptr) {
    EXPECT_EQ(usgc_chan_destroy(workload.courier), 0);
  }
  workload.courier = nullptr;
  workload.stop_blocking = nullptr;
  workload.inboxes.clear();
  workload.release = nullptr;
}

std::string shared_summary(const SharedWorkload& workload) {
  char text[768];
  std::snprintf(
      text, sizeof text,
      "shared workload: %llu operations, %llu sends (%llu by a blocking select; %llu offers not "
      "taken: %llu to a full "
      "inbox, %llu selects that did something else; %llu of them published anyway), "
      "%llu receives, %llu hub stores, %llu global stores, %llu barrier publications, "
      "%llu private + %llu shared collections by workers, %llu shared by main; courier: %llu lists "
      "sent, %llu received",
      (unsigned long long)workload.operations.load(), (unsigned long long)workload.sends.load(),
      (unsigned long long)workload.blocking_sends.load(),
      (unsigned long long)(workload.full_inboxes.load() + workload.select_not_sent.load()),
      (unsigned long long)workload.full_inboxes.load(),
      (unsigned long long)workload.select_not_sent.load(),
      (unsigned long long)workload.published_on_failed_send.load(),
      (unsigned long long)workload.receives.load(), (unsigned long long)workload.hub_stores.load(),
      (unsigned long long)workload.global_stores.load(),
      (unsigned long long)workload.barrier_publications.load(),
      (unsigned long long)workload.private_collections.load(),
      (unsigned long long)workload.shared_collections_by_workers.load(),
      (unsigned long long)workload.shared_collections_by_main.load(),
      (unsigned long long)workload.courier_sends.load(),
      (unsigned long long)workload.courier_receives.load());
  return text;
}

std::string private_summary(const PrivateWorkload& workload) {
  char text[256];
  std::snprintf(text, sizeof text,
                "private workload: %llu operations, %llu explicit collections, %llu verifications, "
                "%llu stack-local rounds",
                (unsigned long long)workload.operations.load(),
                (unsigned long long)workload.collections.load(),
                (unsigned long long)workload.verifications.load(),
                (unsigned long long)workload.stack_local_rounds.load());
  return text;
}

// =====================================================================================================
// The tests
// =====================================================================================================

class GcStressTest : public GcStressFixture {};

class GcStressAutoTest : public GcStressFixture {
 protected:
  const char* gc_percent() const override { return "25"; }
};

TEST_F(GcStressTest, PrivateCollectionsWhileOtherGoroutinesMutateTheirOwnGraphs) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<PrivateWorkload> workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    workload =
        std::make_unique<PrivateWorkload>(sink, types, Clock::now() + stress_duration(2000), true);
    usgc_waitgroup done = USGC_WAITGROUP_INIT;
    start_private_workers(*workload, 8, seed, &done);
    usgc_waitgroup_wait(&done);
  });
  ASSERT_NE(workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %s\n", private_summary(*workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_GT(workload->collections.load(), 0u);
  EXPECT_GE(after.private_collections - before.private_collections, workload->collections.load())
      << "every usgc_gc_collect(PRIVATE) counts as a private collection";
  EXPECT_GT(after.bytes_freed_private, before.bytes_freed_private) << "the garbage was never freed";
}

TEST_F(GcStressTest, SharedCollectionsWhileGoroutinesPublishSendAndRewire) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<SharedWorkload> workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    workload = std::make_unique<SharedWorkload>(sink, types, Clock::now() + stress_duration(2000),
                                                8, true);
    run_shared_workload(*workload, seed, true);
  });
  ASSERT_NE(workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  destroy_channels(*workload);
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %s\n", shared_summary(*workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_GT(workload->sends.load(), 0u);
  EXPECT_EQ(workload->sends.load(), workload->receives.load());
  EXPECT_GT(workload->courier_sends.load(), 0u);
  EXPECT_EQ(workload->courier_sends.load(), workload->courier_receives.load());
  EXPECT_GT(workload->shared_collections_by_main.load(), 2u);
  // Requests made while a collection runs may be met by one collection (as Go's runtime.GC):
  // only one goroutine's own requests, made one after another, each need their own.
  EXPECT_GE(after.shared_collections - before.shared_collections,
            workload->shared_collections_by_main.load());
  EXPECT_GT(after.objects_published, before.objects_published);
  EXPECT_GT(after.bytes_freed_shared, before.bytes_freed_shared)
      << "the shared garbage was never freed";
}

TEST_F(GcStressAutoTest, CollectionsTriggeredByAllocationVolumeKeepEveryLiveStructure) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<PrivateWorkload> private_workload;
  std::unique_ptr<SharedWorkload> shared_workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    ASSERT_NE(types.box, 0u);
    const Clock::time_point deadline = Clock::now() + stress_duration(2000);
    private_workload = std::make_unique<PrivateWorkload>(sink, types, deadline, false);
    shared_workload = std::make_unique<SharedWorkload>(sink, types, deadline, 4, false);
    usgc_waitgroup private_done = USGC_WAITGROUP_INIT;
    start_private_workers(*private_workload, 4, seed, &private_done);
    run_shared_workload(*shared_workload, seed, false);
    usgc_waitgroup_wait(&private_done);
  });
  ASSERT_NE(private_workload, nullptr);
  ASSERT_NE(shared_workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  destroy_channels(*shared_workload);
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %s\n[ info     ] %s\n", private_summary(*private_workload).c_str(),
              shared_summary(*shared_workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_EQ(private_workload->collections.load(), 0u);
  EXPECT_GT(after.private_collections - before.private_collections, 0u)
      << "USGC_GC_PERCENT=25: private allocation volume never triggered a private collection";
  // The main goroutine forces exactly two shared collections at the end; any more were triggered.
  EXPECT_GT(after.shared_collections - before.shared_collections,
            shared_workload->shared_collections_by_main.load())
      << "USGC_GC_PERCENT=25: shared allocation volume never triggered a shared collection";
}

// The shared workload with a fake topology of N nodes over this machine's CPUs: the Ps' blocks
// come from the pools of the nodes their workers run on, partial shared blocks wait on their
// node's list, markers steal from their own node first, sweepers return blocks to their node's
// pool. Nothing live may be lost; the per-node figures add up to the heap's.
class GcStressFakeNumaTest : public GcStressFixture, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    usgc::numa::inject_fake_topology(GetParam());
    GcStressFixture::SetUp();
  }
  void TearDown() override {
    GcStressFixture::TearDown();
    usgc::numa::inject_fake_topology(0);
  }
};

TEST_P(GcStressFakeNumaTest, SharedCollectionsAcrossNodesKeepEveryLiveStructure) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  FailureSink sink(seed);
  const usgc_gc_stats before = gc_stats();
  std::unique_ptr<SharedWorkload> workload;
  run_main([&] {
    const GcTypes types = register_gc_types();
    ASSERT_NE(types.node, 0u);
    workload = std::make_unique<SharedWorkload>(sink, types, Clock::now() + stress_duration(1000),
                                                8, true);
    run_shared_workload(*workload, seed, true);
  });
  ASSERT_NE(workload, nullptr);
  ASSERT_TRUE(usgc::testing::all_goroutines_finished());
  destroy_channels(*workload);
  const usgc_gc_stats after = gc_stats();
  std::printf("[ info     ] %d nodes: %s\n", GetParam(), shared_summary(*workload).c_str());
  EXPECT_FALSE(sink.failed());
  EXPECT_EQ(workload->sends.load(), workload->receives.load());
  EXPECT_GT(workload->shared_collections_by_main.load(), 2u);
  EXPECT_GT(after.bytes_freed_shared, before.bytes_freed_shared);
  usgc_gc_node_stats nodes[usgc::numa::kMaxNodes];
  uint32_t node_count = 0;
  ASSERT_EQ(usgc_gc_get_node_stats(nodes, usgc::numa::kMaxNodes, &node_count), 0);
  EXPECT_GE(node_count, static_cast<uint32_t>(GetParam()));
  uint64_t in_use = 0;
  for (uint32_t node = 0; node < node_count; ++node) in_use += nodes[node].bytes_in_use;
  EXPECT_EQ(in_use, after.bytes_committed) << "the nodes' figures add up to the heap's";
}

INSTANTIATE_TEST_SUITE_P(FakeNodes, GcStressFakeNumaTest, ::testing::Values(2, 4));

}  // namespace
