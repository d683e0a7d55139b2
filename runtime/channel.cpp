// runtime/channel.cpp — channel make/destroy, send, receive, close, len, cap, and the usgc_chan_*
// functions of usgc/runtime.h (Go's runtime/chan.go is the model).
//
// Structures and the named invariants (the waiting invariant, the hand-off rule, the select
// claim, the stack-lifetime rule) are in runtime/channel.hpp. The order of checks in each
// operation is Go's, and it is what makes the semantics:
//   send:    closed -> EPIPE; a waiting receiver -> hand the value over directly; room in the
//            buffer -> append; otherwise wait (or EAGAIN / EPERM).
//   receive: closed and drained -> zero value, ok = false; a waiting sender -> take its value
//            (unbuffered) or the oldest buffered value, refilling the slot from the sender
//            (buffered, full by the waiting invariant); a buffered value -> take it; otherwise
//            wait (or EAGAIN / EPERM).
//   close:   closed -> EPIPE; otherwise mark closed and complete every waiter with
//            success = false (receivers then see the zero value and ok = false, senders EPIPE).
// Waiting needs a goroutine (the caller parks); everything else works from any thread.
//
// Each operation is split Go-style: the part under the lock that completes without waiting is
// straight-line code; waiting (enqueue + park) is a separate noinline function. Before its first
// wait an operation lets the goroutine's old-generation cycle use the idle time: with the lock
// released it does one bounded step (gc/private_old_cycle.hpp), then starts over, since the
// channel may have changed meanwhile; it waits without another step.
#include "runtime/channel.hpp"

#include <cerrno>
#include <cstring>
#include <new>

#include "gc/concurrent_mark.hpp"
#include "gc/private_old_cycle.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/intrusive_list.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/usgc.h"

namespace usgc::runtime {

// ---- wait queues ----

using WaiterList =
    kernel::IntrusiveList<ChannelWaiter, &ChannelWaiter::next, &ChannelWaiter::previous>;

void WaitQueue::enqueue(ChannelWaiter* waiter) {
  WaiterList::push_back(first, last, waiter);
}

ChannelWaiter* WaitQueue::dequeue() {
  for (;;) {
    ChannelWaiter* waiter = WaiterList::pop_front(first, last);
    if (waiter == nullptr) return nullptr;
    if (waiter->is_select) {
      // The select claim. Relaxed is enough: the CAS's atomicity alone decides the one winner,
      // and nothing the winner reads was published through select_done (the waiter's fields are
      // protected by this channel's lock; the select goroutine's reset to 0 happens under the
      // locks of all its channels, this one included, so it is ordered by the lock).
      uint32_t expected = 0;
      if (!waiter->goroutine->select_done.compare_exchange_strong(
              expected, 1, std::memory_order_relaxed, std::memory_order_relaxed))
        continue;  // another case of that select already won: skip (its goroutine unlinks the rest)
    }
    return waiter;
  }
}

void WaitQueue::remove(ChannelWaiter* waiter) {
  // Dequeued already (by a waker that completed it or lost the select claim on it).
  if (!WaiterList::is_linked(first, waiter)) return;
  WaiterList::remove(first, last, waiter);
}

// ---- lock-held primitives ----

namespace {

size_t next_index(const Channel* channel, size_t index) {
  return index + 1 == channel->capacity ? 0 : index + 1;
}

void copy_element(const Channel* channel, void* destination, const void* source) {
  // While a shared mark runs, a reference moving through a channel is shaded: the channel's
  // roots are scanned concurrently (gc/concurrent_mark.hpp), and a value taken out before the
  // scan, or put into a slot it already scanned, must not be missed.
  if (channel->holds_references && source != nullptr) {
    void* value = *static_cast<void* const*>(source);
    gc::shade_if_marking(value);
    // The destination may be a parked receiver's root slot that a concurrent mark's marker is
    // reading (gc/concurrent_mark.cpp scan_mutator): the one store of the runtime into another
    // goroutine's frame. Release: pairs with the scan's acquire load (gc::load_reference), so the
    // referent's header and fields, written before the send, are seen with it.
    if (destination != nullptr)
      __atomic_store_n(static_cast<void**>(destination), value, __ATOMIC_RELEASE);
    return;
  }
  if (channel->elem_bytes != 0 && destination != nullptr)
    memcpy(destination, source, channel->elem_bytes);
}

}  // namespace

void clear_element(const Channel* channel, void* elem) {
  if (channel->elem_bytes != 0 && elem != nullptr) memset(elem, 0, channel->elem_bytes);
}

void buffer_push(Channel* channel, const void* elem) {
  USGC_ASSERT(channel->count.load(std::memory_order_relaxed) < channel->capacity,
              "buffer_push on a full channel");
  copy_element(channel, channel->slot(channel->send_index), elem);
  channel->send_index = next_index(channel, channel->send_index);
  channel->count.store(channel->count.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
}

void buffer_pop(Channel* channel, void* elem) {
  USGC_ASSERT(channel->count.load(std::memory_order_relaxed) > 0, "buffer_pop on an empty channel");
  uint8_t* slot = channel->slot(channel->receive_index);
  copy_element(channel, elem, slot);
  clear_element(channel, slot);  // the buffer holds only values still to be received
  channel->receive_index = next_index(channel, channel->receive_index);
  channel->count.store(channel->count.load(std::memory_order_relaxed) - 1,
                       std::memory_order_relaxed);
}

void complete_receiver(Channel* channel, ChannelWaiter* receiver, const void* elem) {
  USGC_ASSERT(channel->count.load(std::memory_order_relaxed) == 0,
              "waiting invariant: a receiver waits only on an empty buffer");
  copy_element(channel, receiver->elem, elem);
  receiver->success = true;
  receiver->goroutine->wait_result = receiver;  // published by ready() (hand-off rule)
}

void complete_sender(Channel* channel, ChannelWaiter* sender, void* elem) {
  if (channel->capacity == 0) {
    copy_element(channel, elem, sender->elem);
  } else {
    USGC_ASSERT(channel->count.load(std::memory_order_relaxed) == channel->capacity,
                "waiting invariant: a sender waits only on a full buffer");
    // Take the oldest value; the sender's value becomes the newest (FIFO kept): the ring is
    // full, so the slot just emptied is also the next one to fill.
    uint8_t* slot = channel->slot(channel->receive_index);
    copy_element(channel, elem, slot);
    copy_element(channel, slot, sender->elem);
    channel->receive_index = next_index(channel, channel->receive_index);
    channel->send_index = channel->receive_index;
  }
  sender->success = true;
  sender->goroutine->wait_result = sender;  // published by ready() (hand-off rule)
}

// ---- operations ----

namespace {

// park() commit: the goroutine's context is saved, so now the waiter may be found.
bool unlock_channel_commit(Goroutine* /*goroutine*/, void* argument) {
  static_cast<Channel*>(argument)->lock.unlock();
  return true;
}

// Enqueues a waiter for the calling goroutine on `queue` and parks until a waker completes it.
// Called with the lock held; returns with it released. Returns the waiter's success flag.
[[gnu::noinline]] bool wait_on(Channel* channel, WaitQueue* queue, Goroutine* self, void* elem,
                               WaitReason reason) {
  ChannelWaiter waiter;
  waiter.goroutine = self;
  waiter.channel = channel;
  waiter.elem = elem;
  self->wait_result = nullptr;
  queue->enqueue(&waiter);
  park(unlock_channel_commit, channel, reason);
  // A plain waiter is readied only by the waker that completed it (hand-off rule).
  USGC_CHECK(self->wait_result == &waiter,
             "channel %p: goroutine %lu resumed without its operation completing",
             static_cast<void*>(channel), static_cast<unsigned long>(self->id));
  self->wait_result = nullptr;
  return waiter.success;
}

// The goroutine is about to park on the channel (its lock held): if its old-generation cycle has
// work pending (gc/private_old_cycle.hpp) and it has not stepped in this operation yet, the lock
// is released and one bounded step done; true: the caller re-takes the lock and re-checks, the
// channel may have changed meanwhile. One step per operation, so an operation parks after at
// most one.
bool idle_step_before_parking(Channel* channel, bool* idle_step_done) {
  if (*idle_step_done || !gc::old_cycle_idle_work_pending()) return false;
  *idle_step_done = true;
  channel->lock.unlock();
  gc::old_cycle_step_before_parking();
  return true;
}

}  // namespace

Channel* channel_make(size_t elem_bytes, size_t capacity, int* error) {
  size_t buffer_bytes = 0;
  size_t total_bytes = 0;
  if (__builtin_mul_overflow(elem_bytes, capacity, &buffer_bytes) ||
      __builtin_add_overflow(buffer_bytes, kChannelBufferOffset, &total_bytes)) {
    *error = ENOMEM;
    return nullptr;
  }
  void* block = usgc_malloc(total_bytes);
  if (block == nullptr) {
    *error = ENOMEM;
    return nullptr;
  }
  return new (block) Channel(elem_bytes, capacity);
}

int channel_destroy(Channel* channel) {
  channel->lock.lock();
  const bool busy = !channel->receivers.empty() || !channel->senders.empty();
  channel->lock.unlock();
  if (busy) return EBUSY;
  if (channel->holds_references) reference_channel_forget(channel);
  // A thread that unlocked this channel last may still be inside FutexMutex::unlock's
  // futex_wake on the freed word: a system call on the address only (EFAULT or a spurious
  // wake-up, which every futex waiter tolerates), never a write.
  channel->~Channel();
  usgc_free(channel);
  return 0;
}

int channel_send(Channel* channel, const void* elem, bool block) {
  if (elem == nullptr && channel->elem_bytes != 0) return EINVAL;
  if (channel->holds_references) publish_sent_reference(channel, elem);
  bool idle_step_done = false;
relock:
  channel->lock.lock();
  if (channel->closed) {
    channel->lock.unlock();
    return EPIPE;
  }
  if (ChannelWaiter* receiver = channel->receivers.dequeue()) {
    complete_receiver(channel, receiver, elem);
    Goroutine* goroutine = receiver->goroutine;
    channel->lock.unlock();
    ready(goroutine);
    return 0;
  }
  if (channel->count.load(std::memory_order_relaxed) < channel->capacity) {
    buffer_push(channel, elem);
    channel->lock.unlock();
    return 0;
  }
  Goroutine* self = block ? current_goroutine() : nullptr;
  if (self == nullptr) {
    channel->lock.unlock();
    return block ? EPERM : EAGAIN;
  }
  if (idle_step_before_parking(channel, &idle_step_done)) goto relock;
  const bool sent =
      wait_on(channel, &channel->senders, self, const_cast<void*>(elem), WaitReason::kChannelSend);
  return sent ? 0 : EPIPE;  // woken by close
}

int channel_receive(Channel* channel, void* elem, bool* ok, bool block) {
  bool idle_step_done = false;
relock:
  channel->lock.lock();
  if (channel->closed && channel->count.load(std::memory_order_relaxed) == 0) {
    channel->lock.unlock();
    clear_element(channel, elem);
    if (ok != nullptr) *ok = false;
    return 0;
  }
  if (ChannelWaiter* sender = channel->senders.dequeue()) {
    complete_sender(channel, sender, elem);
    Goroutine* goroutine = sender->goroutine;
    channel->lock.unlock();
    ready(goroutine);
    if (ok != nullptr) *ok = true;
    return 0;
  }
  if (channel->count.load(std::memory_order_relaxed) > 0) {
    buffer_pop(channel, elem);
    channel->lock.unlock();
    if (ok != nullptr) *ok = true;
    return 0;
  }
  Goroutine* self = block ? current_goroutine() : nullptr;
  if (self == nullptr) {
    channel->lock.unlock();
    return block ? EPERM : EAGAIN;
  }
  if (idle_step_before_parking(channel, &idle_step_done)) goto relock;
  const bool received =
      wait_on(channel, &channel->receivers, self, elem, WaitReason::kChannelReceive);
  if (!received) clear_element(channel, elem);  // woken by close
  if (ok != nullptr) *ok = received;
  return 0;
}

int channel_close(Channel* channel) {
  channel->lock.lock();
  if (channel->closed) {
    channel->lock.unlock();
    return EPIPE;
  }
  channel->closed = true;
  // Complete every waiter with success = false, receivers first (Go's order), and ready them
  // after unlocking, in queue order.
  ChannelWaiter* to_ready = nullptr;
  ChannelWaiter** tail = &to_ready;
  for (WaitQueue* queue : {&channel->receivers, &channel->senders}) {
    while (ChannelWaiter* waiter = queue->dequeue()) {
      waiter->success = false;
      waiter->goroutine->wait_result = waiter;
      waiter->next_to_ready = nullptr;
      *tail = waiter;
      tail = &waiter->next_to_ready;
    }
  }
  channel->lock.unlock();
  while (to_ready != nullptr) {
    // The stack-lifetime rule: read the waiter before its goroutine may run.
    ChannelWaiter* next = to_ready->next_to_ready;
    Goroutine* goroutine = to_ready->goroutine;
    ready(goroutine);
    to_ready = next;
  }
  return 0;
}

}  // namespace usgc::runtime

// ---- the C API ----
// In a fork() child of a running runtime every operation refuses with ENOTRECOVERABLE: a lock or
// a partner goroutine it would wait for may belong to a thread the child does not have
// (safepoint/fork_child.hpp).

using usgc::runtime::Channel;
using usgc::runtime::channel_of;

usgc_chan* usgc_chan_make(size_t elem_bytes, size_t capacity) {
  if (usgc::safepoint::in_fork_child()) {
    usgc::safepoint::refuse_in_fork_child("usgc_chan_make");
    return nullptr;
  }
  int error = 0;
  Channel* channel = usgc::runtime::channel_make(elem_bytes, capacity, &error);
  if (channel == nullptr) {
    errno = error;
    return nullptr;
  }
  return usgc::runtime::handle_of(channel);
}

int usgc_chan_destroy(usgc_chan* chan) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_chan_destroy");
  if (chan == nullptr) return EINVAL;
  return usgc::runtime::channel_destroy(channel_of(chan));
}

int usgc_chan_send(usgc_chan* chan, const void* elem) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_chan_send");
  if (chan == nullptr) return EINVAL;
  return usgc::runtime::channel_send(channel_of(chan), elem, /*block=*/true);
}

int usgc_chan_recv(usgc_chan* chan, void* elem, bool* ok) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_chan_recv");
  if (chan == nullptr) return EINVAL;
  return usgc::runtime::channel_receive(channel_of(chan), elem, ok, /*block=*/true);
}

int usgc_chan_try_send(usgc_chan* chan, const void* elem) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_chan_try_send");
  if (chan == nullptr) return EINVAL;
  return usgc::runtime::channel_send(channel_of(chan), elem, /*block=*/false);
}

int usgc_chan_try_recv(usgc_chan* chan, void* elem, bool* ok) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_chan_try_recv");
  if (chan == nullptr) return EINVAL;
  return usgc::runtime::channel_receive(channel_of(chan), elem, ok, /*block=*/false);
}

int usgc_chan_close(usgc_chan* chan) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_chan_close");
  if (chan == nullptr) return EINVAL;
  return usgc::runtime::channel_close(channel_of(chan));
}

// Go's len(nil) and cap(nil) are 0.
size_t usgc_chan_len(const usgc_chan* chan) {
  return chan == nullptr ? 0 : channel_of(chan)->count.load(std::memory_order_relaxed);
}

size_t usgc_chan_cap(const usgc_chan* chan) {
  return chan == nullptr ? 0 : channel_of(chan)->capacity;
}
