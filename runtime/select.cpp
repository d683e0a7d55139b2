// runtime/select.cpp — usgc_select, Go's select statement (runtime/select.go is the model).
//
// One call runs up to three passes over the non-NULL cases, all with every involved channel
// locked (the lock set):
//   pass 1  poll the cases in a random permutation (cheap_random; fairness among ready cases)
//           and perform the first one that can proceed without waiting, with the same rules and
//           order of checks as usgc_chan_send / usgc_chan_recv (runtime/channel.cpp);
//   pass 2  (nothing ready, block = true, caller is a goroutine) put one waiter (is_select) on
//           every case's queue, then park with a commit that releases the lock set;
//   pass 3  (woken) the waker that won goroutine->select_done (the select claim, channel.hpp)
//           completed one waiter and stored it in wait_result. Relock the lock set, reset
//           select_done, take every other waiter off its queue, unlock, report the winner.
//
// Invariants:
//   * the lock-order rule: the lock set is taken in increasing channel address (lock_order is
//     the case indices sorted by channel), each channel once however many cases name it, and
//     released in the reverse order. Every other channel path holds one channel lock at a time,
//     so selects cannot deadlock with each other or with plain operations.
//   * the commit rule: select_commit runs on the scheduler's stack while a waker may already be
//     resuming the goroutine (as soon as one of its channels is unlocked). The goroutine cannot
//     get past its relock before the lowest-address channel — released last — is free, so the
//     commit reads its arguments (the goroutine's stack or select storage) only before that
//     final unlock, and touches nothing of them after it.
//   * the stack-lifetime rule (channel.hpp): waiters live in select storage (on this stack for
//     up to kInlineCases cases, one usgc_malloc block beyond), which is freed only after pass 3
//     has unlinked every waiter under the lock set.
//
// The idle step: before pass 2 a goroutine whose old-generation cycle has work pending
// (gc/private_old_cycle.hpp) releases the lock set, does one bounded step of it, and runs pass 1
// again (a case may have become ready meanwhile); it parks without another step. A select that
// parks for ever completes the cycle first.
//
// Cases with a NULL channel never proceed (Go's nil channel). No non-NULL case and block =
// true parks for ever (WaitReason::kSelectNoCases), as Go's empty select does.
#include <cerrno>
#include <cstdint>
#include <new>

#include "gc/private_old_cycle.hpp"
#include "kernel_iface/fatal.hpp"
#include "runtime/channel.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/runtime.h"
#include "usgc/usgc.h"

namespace usgc::runtime {
namespace {

constexpr size_t kInlineCases = 8;  // select storage on the stack up to this many cases

// The lock set: the non-NULL cases' indices sorted by channel address. Lives on the selecting
// goroutine's stack; select_commit reads it (the commit rule).
struct LockSet {
  const usgc_select_case* cases;
  const uint32_t* lock_order;
  uint32_t active;  // entries of lock_order
};

Channel* channel_of_case(const usgc_select_case* cases, uint32_t index) {
  return channel_of(cases[index].chan);
}

void lock_all(const LockSet& set) {
  Channel* previous = nullptr;
  for (uint32_t k = 0; k < set.active; ++k) {
    Channel* channel = channel_of_case(set.cases, set.lock_order[k]);
    if (channel != previous) channel->lock.lock();  // duplicates are adjacent after sorting
    previous = channel;
  }
}

// Reverse order; reads cases/lock_order only before each unlock, so after the last unlock
// (lock_order[0], the lowest address) nothing of them is touched (the commit rule). Arguments by
// value: the loop runs on copies, never on the LockSet in the goroutine's memory.
void unlock_all(const usgc_select_case* cases, const uint32_t* lock_order, uint32_t active) {
  for (uint32_t k = active; k-- > 0;) {
    Channel* channel = channel_of_case(cases, lock_order[k]);
    if (k > 0 && channel == channel_of_case(cases, lock_order[k - 1]))
      continue;  // unlocked at k - 1
    channel->lock.unlock();
  }
}

void unlock_all(const LockSet& set) {
  unlock_all(set.cases, set.lock_order, set.active);
}

bool select_commit(Goroutine* /*goroutine*/, void* argument) {
  const LockSet* set = static_cast<const LockSet*>(argument);
  unlock_all(set->cases, set->lock_order, set->active);
  return true;
}

bool park_forever_commit(Goroutine* /*goroutine*/, void* /*argument*/) {
  return true;
}

// Uniform in [0, bound) (Lemire's multiply-shift; bias < bound / 2^32).
uint32_t random_below(uint32_t bound) {
  return static_cast<uint32_t>((static_cast<uint64_t>(cheap_random()) * bound) >> 32);
}

uintptr_t channel_address(const usgc_select_case* cases, uint32_t index) {
  return reinterpret_cast<uintptr_t>(cases[index].chan);
}

// Heap sort of order[0..n) by channel address (no allocation, O(n log n) for large selects).
void sift_down(const usgc_select_case* cases, uint32_t* order, uint32_t root, uint32_t n) {
  for (;;) {
    uint32_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n &&
        channel_address(cases, order[child + 1]) > channel_address(cases, order[child]))
      ++child;
    if (channel_address(cases, order[child]) <= channel_address(cases, order[root])) return;
    const uint32_t swap = order[root];
    order[root] = order[child];
    order[child] = swap;
    root = child;
  }
}

void sort_by_channel(const usgc_select_case* cases, uint32_t* order, uint32_t n) {
  for (uint32_t i = n / 2; i-- > 0;) sift_down(cases, order, i, n);
  for (uint32_t end = n; end-- > 1;) {
    const uint32_t swap = order[0];
    order[0] = order[end];
    order[end] = swap;
    sift_down(cases, order, 0, end);
  }
}

int validate(const usgc_select_case* cases, size_t count) {
  if (count > UINT32_MAX) return EINVAL;
  if (count != 0 && cases == nullptr) return EINVAL;
  for (size_t i = 0; i < count; ++i) {
    const usgc_select_case& c = cases[i];
    if (c.direction != USGC_SELECT_SEND && c.direction != USGC_SELECT_RECV) return EINVAL;
    if (c.chan != nullptr && c.direction == USGC_SELECT_SEND && c.elem == nullptr &&
        channel_of(c.chan)->elem_bytes != 0)
      return EINVAL;
  }
  return 0;
}

// Select storage: waiters indexed by case, then poll order, then lock order.
struct SelectStorage {
  ChannelWaiter* waiters;  // [count], constructed in pass 2 for the non-NULL cases
  uint32_t count;
  uint32_t* poll_order;
  uint32_t* lock_order;
};

constexpr size_t storage_bytes(size_t count) {
  return count * (sizeof(ChannelWaiter) + 2 * sizeof(uint32_t));
}

SelectStorage carve_storage(void* block, size_t count) {
  auto* bytes = static_cast<uint8_t*>(block);
  auto* poll_order = reinterpret_cast<uint32_t*>(bytes + count * sizeof(ChannelWaiter));
  return SelectStorage{reinterpret_cast<ChannelWaiter*>(bytes), static_cast<uint32_t>(count),
                       poll_order, poll_order + count};
}

// Pass 1 on case `index` with the lock set held. Returns true (and *result) when the case
// proceeded; the lock set is then released.
bool try_case(usgc_select_case* cases, uint32_t index, const LockSet& set, int* result) {
  usgc_select_case& c = cases[index];
  Channel* channel = channel_of(c.chan);
  if (c.direction == USGC_SELECT_RECV) {
    if (ChannelWaiter* sender = channel->senders.dequeue()) {
      complete_sender(channel, sender, c.elem);
      Goroutine* goroutine = sender->goroutine;
      unlock_all(set);
      ready(goroutine);
      c.received_ok = true;
    } else if (channel->count.load(std::memory_order_relaxed) > 0) {
      buffer_pop(channel, c.elem);
      unlock_all(set);
      c.received_ok = true;
    } else if (channel->closed) {
      unlock_all(set);
      clear_element(channel, c.elem);
      c.received_ok = false;
    } else {
      return false;
    }
    *result = 0;
    return true;
  }
  if (channel->closed) {
    unlock_all(set);
    *result = EPIPE;
    return true;
  }
  if (ChannelWaiter* receiver = channel->receivers.dequeue()) {
    complete_receiver(channel, receiver, c.elem);
    Goroutine* goroutine = receiver->goroutine;
    unlock_all(set);
    ready(goroutine);
  } else if (channel->count.load(std::memory_order_relaxed) < channel->capacity) {
    buffer_push(channel, c.elem);
    unlock_all(set);
  } else {
    return false;
  }
  *result = 0;
  return true;
}

// Passes 2 and 3. Called with the lock set held; returns with it released.
[[gnu::noinline]] int block_on_cases(usgc_select_case* cases, const SelectStorage& storage,
                                     const LockSet& set, Goroutine* self, size_t* chosen) {
  USGC_ASSERT(self->select_done.load(std::memory_order_relaxed) == 0,
              "select claim: select_done is reset before the goroutine waits again");
  self->wait_result = nullptr;
  for (uint32_t k = 0; k < set.active; ++k) {
    const uint32_t index = storage.lock_order[k];
    usgc_select_case& c = cases[index];
    ChannelWaiter* waiter = new (&storage.waiters[index]) ChannelWaiter;
    waiter->goroutine = self;
    waiter->channel = channel_of(c.chan);
    waiter->elem = c.elem;
    waiter->case_index = index;
    waiter->is_select = true;
    if (c.direction == USGC_SELECT_SEND) {
      waiter->channel->senders.enqueue(waiter);
    } else {
      waiter->channel->receivers.enqueue(waiter);
    }
  }
  park(select_commit, const_cast<LockSet*>(&set), WaitReason::kSelect);

  lock_all(set);
  // Reset under the whole lock set: every waker that could still see one of our waiters holds
  // one of these locks, and none of our waiters stays queued once we unlock (the select claim).
  self->select_done.store(0, std::memory_order_relaxed);
  auto* winner = static_cast<ChannelWaiter*>(self->wait_result);
  self->wait_result = nullptr;
  USGC_CHECK(winner >= storage.waiters && winner < storage.waiters + storage.count &&
                 winner->goroutine == self,
             "usgc_select: goroutine %lu resumed without a completed case",
             static_cast<unsigned long>(self->id));
  for (uint32_t k = 0; k < set.active; ++k) {
    const uint32_t index = storage.lock_order[k];
    ChannelWaiter* waiter = &storage.waiters[index];
    if (waiter == winner) continue;
    if (cases[index].direction == USGC_SELECT_SEND) {
      waiter->channel->senders.remove(waiter);
    } else {
      waiter->channel->receivers.remove(waiter);
    }
  }
  unlock_all(set);

  const size_t index = winner->case_index;
  if (chosen != nullptr) *chosen = index;
  usgc_select_case& c = cases[index];
  if (c.direction == USGC_SELECT_SEND) return winner->success ? 0 : EPIPE;  // closed while waiting
  if (!winner->success) clear_element(winner->channel, c.elem);
  c.received_ok = winner->success;
  return 0;
}

[[noreturn]] void park_forever() {
  // Nothing will run this goroutine again: its old-generation cycle may as well finish now.
  gc::old_cycle_finish_before_waiting();
  park(park_forever_commit, nullptr, WaitReason::kSelectNoCases);
  kernel::fatal("usgc_select: a goroutine parked in a select with no cases was resumed");
}

int select_with_storage(usgc_select_case* cases, uint32_t count, bool block, size_t* chosen,
                        const SelectStorage& storage) {
  // Poll order: a random permutation of the non-NULL cases (inside-out Fisher-Yates).
  uint32_t active = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (cases[i].chan == nullptr) continue;
    const uint32_t j = random_below(active + 1);
    storage.poll_order[active] = storage.poll_order[j];
    storage.poll_order[j] = i;
    ++active;
  }
  if (active == 0) {
    if (!block) return EAGAIN;
    if (current_goroutine() == nullptr) return EPERM;
    park_forever();
  }
  for (uint32_t k = 0; k < active; ++k) storage.lock_order[k] = storage.poll_order[k];
  sort_by_channel(cases, storage.lock_order, active);
  const LockSet set{cases, storage.lock_order, active};

  bool idle_step_done = false;
  for (;;) {
    lock_all(set);
    for (uint32_t k = 0; k < active; ++k) {
      const uint32_t index = storage.poll_order[k];
      int result = 0;
      if (try_case(cases, index, set, &result)) {
        if (chosen != nullptr) *chosen = index;
        return result;
      }
    }
    Goroutine* self = block ? current_goroutine() : nullptr;
    if (self == nullptr) {
      unlock_all(set);
      return block ? EPERM : EAGAIN;
    }
    // The idle step (file comment): once, with the lock set released, then pass 1 again.
    if (idle_step_done || !gc::old_cycle_idle_work_pending())
      return block_on_cases(cases, storage, set, self, chosen);
    idle_step_done = true;
    unlock_all(set);
    gc::old_cycle_step_before_parking();
  }
}

}  // namespace
}  // namespace usgc::runtime

int usgc_select(usgc_select_case* cases, size_t count, bool block, size_t* chosen) {
  if (usgc::safepoint::in_fork_child()) return usgc::safepoint::refuse_in_fork_child("usgc_select");
  using namespace usgc::runtime;
  if (int error = validate(cases, count); error != 0) return error;
  // Every value offered to a reference channel is published before any case can proceed (a
  // select may hand it over at once); an offer that loses stays published, as Go's escape
  // analysis would have decided for it statically.
  for (size_t i = 0; i < count; ++i) {
    if (cases[i].chan != nullptr && cases[i].direction == USGC_SELECT_SEND) {
      usgc::runtime::publish_sent_reference(usgc::runtime::channel_of(cases[i].chan),
                                            cases[i].elem);
    }
  }
  if (count <= kInlineCases) {
    alignas(ChannelWaiter) uint8_t inline_storage[storage_bytes(kInlineCases)];
    return select_with_storage(cases, static_cast<uint32_t>(count), block, chosen,
                               carve_storage(inline_storage, count));
  }
  void* block_storage = usgc_malloc(storage_bytes(count));
  if (block_storage == nullptr) return ENOMEM;
  const int result = select_with_storage(cases, static_cast<uint32_t>(count), block, chosen,
                                         carve_storage(block_storage, count));
  usgc_free(block_storage);
  return result;
}
