// tests/gc/gc_stress_private_graph.cpp — one goroutine's private graph for the GC stress tests:
// nodes with two references and a blob, rooted in a private table, local handles and the stack
// arena, rewired at random with usgc_write, with garbage churned and the private heap collected at
// random points; every collection is bracketed by a walk of the whole live graph compared with a
// model in plain C++ memory (tests/gc/gc_stress_workloads.hpp).
//
// Invariant: every node the model may still reach (nodes_) is reachable in the heap from the
// table, a handle or the stack arena, and nothing else is; a worker touches only its own graph.
#include <stdint.h>

#include <gtest/gtest.h>

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tests/gc/gc_stress_workloads.hpp"

namespace usgc::testing::gc_stress {
namespace {

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

}  // namespace

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

}  // namespace usgc::testing::gc_stress
