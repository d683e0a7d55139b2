// runtime/waitgroup.cpp — usgc_waitgroup_* (Go's sync.WaitGroup) for goroutines and for plain
// threads alike.
//
// The four opaque words of usgc_waitgroup hold a WaitGroupState (zero bytes = an empty group):
//   lock               FutexMutex; guards everything below except thread_generation's futex wait
//   thread_generation  bumped (release) each time the counter reaches zero while threads wait;
//                      a waiting thread futex-waits for it to change (acquire)
//   counter            the count (under the lock); never negative
//   goroutine_waiters  parked goroutines, a list of records on their own stacks (under the lock)
//   thread_waiters     threads waiting for the current generation (under the lock)
//
// Invariants:
//   * the zero-wakes-all rule: waiters exist only while counter > 0; the add that brings it to
//     zero takes the whole goroutine list and bumps the generation (if threads wait), under the
//     lock, so a waiter that arrives later sees zero and returns at once.
//   * the last-touch rule: a wait group may be freed as soon as any waiter returns (a group on a
//     stack is the usual case), so the waker writes to it only under the lock and wakes after
//     unlocking: goroutines are readied after the unlock, and a thread waiter, having seen the
//     generation change, takes and drops the lock once before returning, which orders it after
//     the waker's unlock. After its unlock the waker only issues futex_wake on the generation's
//     address (a system call that writes nothing: harmless even on freed memory).
//   * the stack-lifetime rule (channel.hpp): a goroutine's record is read before it is readied.
//
// Not a hot path: every call takes the lock.
#include <cerrno>
#include <cstdint>
#include <type_traits>

#include "gc/private_old_cycle.hpp"
#include "kernel_iface/futex.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "runtime/goroutine.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/runtime.h"

namespace usgc::runtime {
namespace {

struct WaitGroupWaiter {
  Goroutine* goroutine;
  WaitGroupWaiter* next;
};

struct WaitGroupState {
  kernel::FutexMutex<kernel::LockRank::kWaitGroup> lock;
  std::atomic<uint32_t> thread_generation;
  int64_t counter;
  WaitGroupWaiter* goroutine_waiters;
  uint32_t thread_waiters;
  uint32_t unused;
};
static_assert(sizeof(WaitGroupState) <= sizeof(usgc_waitgroup) &&
                  alignof(WaitGroupState) <= alignof(usgc_waitgroup),
              "the wait group state fits the four opaque words of usgc_waitgroup");
static_assert(
    std::is_standard_layout_v<WaitGroupState> && std::is_trivially_destructible_v<WaitGroupState>,
    "a wait group is plain memory: zero-initialized storage is an empty group, nothing to destroy");

// The opaque words are only ever accessed as this state (never as uint64_t), so the two types
// never alias within one access path.
WaitGroupState* state_of(usgc_waitgroup* group) {
  return reinterpret_cast<WaitGroupState*>(group);
}

bool unlock_wait_group_commit(Goroutine* /*goroutine*/, void* argument) {
  static_cast<WaitGroupState*>(argument)->lock.unlock();
  return true;
}

int wait_group_add(WaitGroupState* state, int64_t delta) {
  state->lock.lock();
  int64_t counter = 0;
  if (__builtin_add_overflow(state->counter, delta, &counter) || counter < 0) {
    state->lock.unlock();
    return EINVAL;
  }
  state->counter = counter;
  WaitGroupWaiter* to_ready = nullptr;
  bool wake_threads = false;
  if (counter == 0) {  // the zero-wakes-all rule
    to_ready = state->goroutine_waiters;
    state->goroutine_waiters = nullptr;
    if (state->thread_waiters != 0) {
      state->thread_waiters = 0;
      // Release: pairs with the waiting thread's acquire load, although what it needs to see
      // (everything before the last done) it gets through the lock it takes afterwards anyway.
      state->thread_generation.fetch_add(1, std::memory_order_release);
      wake_threads = true;
    }
  }
  state->lock.unlock();
  // The last-touch rule: from here on `state` may be freed by a waiter, except for the futex
  // address below.
  if (wake_threads) kernel::futex_wake_all(&state->thread_generation);
  while (to_ready != nullptr) {
    WaitGroupWaiter* next = to_ready->next;  // the stack-lifetime rule
    ready(to_ready->goroutine);
    to_ready = next;
  }
  return 0;
}

int wait_group_wait(WaitGroupState* state) {
  state->lock.lock();
  if (state->counter == 0) {
    state->lock.unlock();
    return 0;
  }
  if (Goroutine* self = current_goroutine(); self != nullptr) {
    // About to wait: the goroutine's old-generation cycle may use the idle time
    // (gc/private_old_cycle.hpp), outside the lock; then the count is read again.
    if (gc::old_cycle_idle_work_pending()) {
      state->lock.unlock();
      gc::old_cycle_finish_before_waiting();
      state->lock.lock();
      if (state->counter == 0) {
        state->lock.unlock();
        return 0;
      }
    }
    WaitGroupWaiter waiter{self, state->goroutine_waiters};
    state->goroutine_waiters = &waiter;
    park(unlock_wait_group_commit, state, WaitReason::kWaitGroup);
    return 0;  // readied only by the add that reached zero
  }
  const uint32_t generation =
      state->thread_generation.load(std::memory_order_relaxed);  // under the lock
  ++state->thread_waiters;
  state->lock.unlock();
  // Acquire: pairs with the waker's release increment.
  while (state->thread_generation.load(std::memory_order_acquire) == generation)
    kernel::futex_wait(&state->thread_generation, generation);
  // The last-touch rule: the waker bumped the generation under the lock; once we have held the
  // lock it has finished writing to the group.
  state->lock.lock();
  state->lock.unlock();
  return 0;
}

}  // namespace
}  // namespace usgc::runtime

int usgc_waitgroup_add(usgc_waitgroup* group, int64_t delta) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_waitgroup_add");
  if (group == nullptr) return EINVAL;
  return usgc::runtime::wait_group_add(usgc::runtime::state_of(group), delta);
}

int usgc_waitgroup_done(usgc_waitgroup* group) {
  return usgc_waitgroup_add(group, -1);
}

int usgc_waitgroup_wait(usgc_waitgroup* group) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_waitgroup_wait");
  if (group == nullptr) return EINVAL;
  return usgc::runtime::wait_group_wait(usgc::runtime::state_of(group));
}
