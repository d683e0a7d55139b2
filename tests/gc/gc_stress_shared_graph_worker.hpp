// tests/gc/gc_stress_shared_graph_worker.hpp — one goroutine of the shared GC stress workload: it
// keeps lists in places (its root slots, its slice of the shared hub, its global root), rewires
// them, sends them to other workers and receives theirs, and checks every list it holds against
// the ListModel that travels with it (tests/gc/gc_stress_workloads.hpp).
//
// Invariants: places_[p] is the model of the list in place p (empty: the place holds null); a
// model's published flags say what the barrier must have published (the private closure of every
// value stored into a shared object or a global root, at the time of the store); a list in flight
// is in the workload's mailbox under its structure id, in no worker's places. Defined in
// tests/gc/gc_stress_shared_graph_worker.cpp (places, checks, list operations) and
// tests/gc/gc_stress_shared_graph_channels.cpp (sending, receiving, garbage, collections).
#pragma once

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/gc/gc_stress_workloads.hpp"

namespace usgc::testing::gc_stress {

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

  void run();

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

  void* get_place(int place) const;

  // Stores `box` (its model in *model, or null) into `place`; a store into the shared hub or a
  // global root publishes the box's private closure, and the model says so.
  void set_place(int place, void* box, ListModel* model = nullptr);

  int random_place(bool occupied);

  // ---- the heap side of a list ----

  // Walks the list in `box` along its model and checks every object: header, ownership, id,
  // payload, blob, cross reference. nodes[entry] receives each list member's address.
  bool walk(const void* box, const ListModel& model, const std::string& where,
            std::vector<Node*>* nodes, uint64_t* checksum);

  bool verify_place(int place, const std::string& when, std::vector<Node*>* nodes = nullptr);

  // Verifies every list this worker holds; returns the combined checksum.
  uint64_t verify_all(const std::string& when);

  // A reference store mirrored in the model: the value's private closure is published when the
  // target object is published (the barrier's slow path).
  void store(ListModel& model, void* object, int entry, Field field, void* value, int value_entry);

  // ---- operations ----

  void step();

  uint64_t new_id() { return next_id_++; }

  // Inserts a new node (private, or allocated shared) at a random position of a random list.
  void insert_node(int place = -1);

  void remove_node(int place = -1);

  // Reverses a list in place. Halfway, part of the list is reachable only through local
  // pointers, so every node is pinned first in a private array held by a root.
  void reverse_list();

  // Picks an occupied place whose list is not empty and walks it (its order and node addresses
  // into *order and *nodes): the list's model, or null when there is none or the walk failed.
  ListModel* walk_random_list(const char* when, int* place, std::vector<int>* order,
                              std::vector<Node*>* nodes);

  void set_cross();

  void change_payload();

  // A new private list in an empty local root (or replacing one: the old list becomes garbage).
  void build_list();

  // Moves a list between a local root, the hub and the global root (publishing it on the way out).
  void move_list();

  void drop_list();

  // Sends a list to another worker, in one of two ways:
  //   - try_send: the list waits in the receiver's channel buffer (a root of shared collections)
  //     after the sender has dropped every reference to it;
  //   - a blocking select {send to the receiver, receive from my inbox, receive from `stop`}: the
  //     box is taken out of its place first and offered from a root slot. (Not from a plain local:
  //     when another case wins, the select's waiter is dequeued before this goroutine runs again,
  //     and a shared collection in between would rightly not see the value. The courier pair
  //     (gc_stress_shared_graph_channels.cpp) covers a waiting sender whose value only the
  //     channel holds, with a plain blocking send.)
  // Before the send the nodes and blobs (and, for try_send, the box) are pinned in a private array
  // so their ownership can be checked after it although the receiver may already be rewiring (and
  // dropping parts of) the list: all must be GOROUTINE_SHARED now.
  void send_list();

  // Takes one list from the inbox (false when it is empty), checks it against the model its
  // sender filed, and keeps it.
  bool receive();

  // Checks the list just received into slots_[kReceived] against the model its sender filed, and
  // keeps it in a place.
  bool accept_received();

  void drain_after_failure();

  // Garbage in every class: private chains, shared chains (stores into shared objects), private
  // chains published by usgc_publish, byte arrays; some point into the live lists.
  void churn_garbage();

  void private_collection();

  void shared_collection();

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

}  // namespace usgc::testing::gc_stress
