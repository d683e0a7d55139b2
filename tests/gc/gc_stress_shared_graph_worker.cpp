// tests/gc/gc_stress_shared_graph_worker.cpp — the shared graph worker's places, its checks of a
// list against its model, and the operations that rewire lists (the class and its invariants:
// tests/gc/gc_stress_shared_graph_worker.hpp).
#include <stdint.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/gc/gc_stress_shared_graph_worker.hpp"

namespace usgc::testing::gc_stress {

void run_shared_graph_worker(SharedWorkload& workload, unsigned index, uint64_t seed) {
  SharedGraphWorker worker(workload, index, seed);
  worker.run();
}

void SharedGraphWorker::run() {
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

void* SharedGraphWorker::get_place(int place) const {
  if (is_local(place)) return slots_[place];
  if (is_hub(place)) return usgc_array_read(slots_[kHub], hub_index(place));
  return __atomic_load_n(&workload_.global_slots[index_], __ATOMIC_ACQUIRE);
}

void SharedGraphWorker::set_place(int place, void* box, ListModel* model) {
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

int SharedGraphWorker::random_place(bool occupied) {
  std::vector<int> candidates;
  for (int place = 0; place < kPlaceCount; ++place)
    if (places_[static_cast<size_t>(place)].has_value() == occupied) candidates.push_back(place);
  if (candidates.empty()) return -1;
  return candidates[random_.below(candidates.size())];
}

bool SharedGraphWorker::walk(const void* box, const ListModel& model, const std::string& where,
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
    sum = mix(sum,
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

bool SharedGraphWorker::verify_place(int place, const std::string& when,
                                     std::vector<Node*>* nodes) {
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

uint64_t SharedGraphWorker::verify_all(const std::string& when) {
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

void SharedGraphWorker::store(ListModel& model, void* object, int entry, Field field, void* value,
                              int value_entry) {
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

void SharedGraphWorker::step() {
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

void SharedGraphWorker::insert_node(int place) {
  if (place < 0) place = random_place(true);
  if (place < 0) return build_list();
  ListModel& model = *places_[static_cast<size_t>(place)];
  std::vector<int> order = model.order();
  if (order.size() >= kMaxListLength) return remove_node(place);
  const usgc_ownership ownership =
      random_.below(5) == 0 ? USGC_GOROUTINE_SHARED : USGC_GOROUTINE_PRIVATE;
  const uint64_t id = new_id();
  const uint64_t payload = random_.next();
  const int64_t blob_length = random_.below(3) == 0 ? -1 : static_cast<int64_t>(random_.below(48));
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
  model.entries.push_back({id, payload, blob_length, -1, -1, ownership != USGC_GOROUTINE_PRIVATE});
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

void SharedGraphWorker::remove_node(int place) {
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
    store(model, nodes[static_cast<size_t>(order[position - 1])], order[position - 1], Field::kNext,
          successor_node, successor);
  }
  verify_place(place, "after a removal");
}

void SharedGraphWorker::reverse_list() {
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

ListModel* SharedGraphWorker::walk_random_list(const char* when, int* place,
                                               std::vector<int>* order, std::vector<Node*>* nodes) {
  *place = random_place(true);
  if (*place < 0) return nullptr;
  ListModel& model = *places_[static_cast<size_t>(*place)];
  *order = model.order();
  if (order->empty()) return nullptr;
  if (!walk(get_place(*place), model, when, nodes, nullptr)) return nullptr;
  return &model;
}

void SharedGraphWorker::set_cross() {
  int place;
  std::vector<int> order;
  std::vector<Node*> nodes;
  ListModel* const list = walk_random_list("before a cross store", &place, &order, &nodes);
  if (list == nullptr) return;
  ListModel& model = *list;
  const int from = order[random_.below(order.size())];
  const int to = random_.below(4) == 0 ? -1 : order[random_.below(order.size())];
  store(model, nodes[static_cast<size_t>(from)], from, Field::kCross,
        to >= 0 ? nodes[static_cast<size_t>(to)] : nullptr, to);
  verify_place(place, "after a cross store");
}

void SharedGraphWorker::change_payload() {
  int place;
  std::vector<int> order;
  std::vector<Node*> nodes;
  ListModel* const model = walk_random_list("before a payload change", &place, &order, &nodes);
  if (model == nullptr) return;
  const int entry = order[random_.below(order.size())];
  const uint64_t payload = random_.next();
  nodes[static_cast<size_t>(entry)]->payload = payload;  // not a reference: a plain store
  model->entries[static_cast<size_t>(entry)].payload = payload;
}

void SharedGraphWorker::build_list() {
  int place = random_.below(kLocalPlaces);
  void* box = usgc_alloc(workload_.types.box, USGC_GOROUTINE_PRIVATE);
  if (box == nullptr) return fail(std::string("usgc_alloc(box) failed: ") + usgc_last_error());
  if (usgc_ownership_of(box) != USGC_GOROUTINE_PRIVATE || static_cast<Box*>(box)->first != nullptr)
    return fail("a new box is not a zeroed private box: " + describe_object(box));
  const uint64_t structure_id = next_structure_id_++;
  static_cast<Box*>(box)->structure_id = structure_id;
  slots_[place] = box;
  places_[static_cast<size_t>(place)].emplace();
  places_[static_cast<size_t>(place)]->structure_id = structure_id;
  for (uint64_t length = random_.between(1, 10); length > 0 && !stopped(); --length)
    insert_node(place);
}

void SharedGraphWorker::move_list() {
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

void SharedGraphWorker::drop_list() {
  const int place = random_place(true);
  if (place < 0) return;
  set_place(place, nullptr);
  places_[static_cast<size_t>(place)].reset();
}
}  // namespace usgc::testing::gc_stress
