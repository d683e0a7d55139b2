// tests/gc/gc_stress_shared_graph_channels.cpp — how lists of the shared GC stress workload
// travel: a shared graph worker's sends and receives (its models go through the workload's
// mailbox), its garbage and forced collections, and the courier pair (the class:
// tests/gc/gc_stress_shared_graph_worker.hpp).
#include <stdint.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tests/gc/gc_stress_shared_graph_worker.hpp"

namespace usgc::testing::gc_stress {

void SharedGraphWorker::send_list() {
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

bool SharedGraphWorker::receive() {
  bool ok = false;
  const int result = usgc_chan_try_recv(workload_.inboxes[index_], &slots_[kReceived], &ok);
  if (result == EAGAIN) return false;
  if (result != 0 || !ok) {
    fail("usgc_chan_try_recv returned " + std::to_string(result) + (ok ? "" : " without a value"));
    return false;
  }
  return accept_received();
}

bool SharedGraphWorker::accept_received() {
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

void SharedGraphWorker::drain_after_failure() {
  // After a failure the inbox may still hold lists; take them out so the channel can be
  // destroyed.
  if (!stopped()) return;
  bool ok = false;
  while (usgc_chan_try_recv(workload_.inboxes[index_], &slots_[kReceived], &ok) == 0 && ok) {
  }
  slots_[kReceived] = nullptr;
}

void SharedGraphWorker::churn_garbage() {
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

void SharedGraphWorker::private_collection() {
  const uint64_t before = verify_all("before a private collection");
  if (stopped()) return;
  if (usgc_gc_collect(USGC_GC_PRIVATE) != 0)
    return fail(std::string("usgc_gc_collect(PRIVATE) failed: ") + usgc_last_error());
  workload_.private_collections.fetch_add(1, std::memory_order_relaxed);
  const uint64_t after = verify_all("after a private collection");
  if (!stopped() && before != after) fail("checksums changed across a private collection");
}

void SharedGraphWorker::shared_collection() {
  const uint64_t before = verify_all("before a shared collection (forced by a worker)");
  if (stopped()) return;
  const usgc_gc_kind kind = random_.below(2) == 0 ? USGC_GC_SHARED_MINOR : USGC_GC_SHARED;
  if (usgc_gc_collect(kind) != 0)
    return fail(std::string("usgc_gc_collect(SHARED) failed: ") + usgc_last_error());
  workload_.shared_collections_by_workers.fetch_add(1, std::memory_order_relaxed);
  const uint64_t after = verify_all("after a shared collection (forced by a worker)");
  if (!stopped() && before != after) fail("checksums changed across a shared collection");
}
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

}  // namespace usgc::testing::gc_stress
