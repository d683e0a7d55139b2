// runtime/channel.hpp — Go-semantics channels (Go's hchan and sudog): the structures and the
// lock-held primitives that runtime/channel.cpp (send, receive, close) and runtime/select.cpp
// (usgc_select) share.
//
// A channel is one usgc_malloc block: the Channel header, then `capacity` slots of `elem_bytes`
// each (the ring buffer; no slots for an unbuffered channel, none needed for zero-sized
// elements). Everything mutable is guarded by Channel::lock, a FutexMutex; a goroutine that must
// wait puts a ChannelWaiter (a record on its own stack) on one of the two wait queues and parks
// with a commit that releases the lock (the parking protocol of runtime/goroutine.hpp), so a
// waker can never see the waiter before the goroutine has stopped.
//
// Invariants (named; channel.cpp and select.cpp refer to them):
//   * the waiting invariant: with the lock held, `receivers` is non-empty only when the buffer
//     is empty (count == 0), and `senders` is non-empty only when the buffer is full
//     (count == capacity) and the channel is open. Hence an unbuffered channel's receivers and
//     senders are never both non-empty, and a receiver that finds a waiting sender on a
//     buffered channel finds the buffer full.
//   * the hand-off rule: a waiter is completed (value copied, `success` set, wait_result
//     written) only by the thread that dequeued it under the channel lock, and it calls
//     ready() on the goroutine only after that — normally after unlocking. A dequeued waiter
//     is no longer on any queue of this channel.
//   * the select claim: a waiter with is_select set belongs to a goroutine waiting in
//     usgc_select with waiters on several queues. A waker may complete it only after winning
//     goroutine->select_done 0 -> 1 (CAS); a waker that loses unlinks the waiter and tries the
//     next one (Go's dequeue). The select goroutine resets select_done to 0 while holding the
//     locks of all its channels, after it has taken its remaining waiters off their queues.
//   * the stack-lifetime rule: a waiter lives on its goroutine's stack (or in a block that
//     goroutine frees), and stays valid until that goroutine is readied. Whoever readies it must
//     read everything it needs from the waiter before calling ready().
//
// Memory ordering: the channel lock gives happens-before between a send and the receive that
// takes its value (FutexMutex lock is acquire, unlock release). A value copied straight into a
// parked goroutine's destination is published to it by ready() -> schedule (the scheduler's
// run-queue hand-off is a release/acquire pair). Channel::count is the only field read without
// the lock (usgc_chan_len, relaxed: a snapshot, as in Go).
//
// Not on a hot path in the allocator's sense: every operation takes the channel lock. The
// uncontended operations (buffer has room / value, a partner waiting) never allocate and make no
// system call except the futex wake when the lock was contended.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "kernel_iface/futex_mutex.hpp"
#include "runtime/goroutine.hpp"
#include "usgc/runtime.h"

namespace usgc::runtime {

struct Channel;

// A goroutine waiting on one channel (Go's sudog). One per blocked send or receive; one per
// non-NULL case of a blocked select.
struct ChannelWaiter {
  // Set by the waiting goroutine before it enqueues; read by the waker under the channel lock.
  Goroutine* goroutine = nullptr;
  Channel* channel = nullptr;
  // Send: the value to send (read by the receiver that completes the waiter). Receive: where
  // the value goes (written by the sender that completes the waiter); nullptr = discard.
  void* elem = nullptr;
  size_t case_index = 0;   // select: the index of the case; 0 for plain operations
  bool is_select = false;  // the select claim applies
  // Written by the waker that completes the waiter, before ready(); read by the goroutine after
  // park() returns. true: the operation happened; false: the channel was closed.
  bool success = false;

  // Wait-queue links, under the channel lock. Both nullptr when not queued (or first and only).
  ChannelWaiter* previous = nullptr;
  ChannelWaiter* next = nullptr;
  // close(): the list of waiters to ready after unlocking (the closer's local list).
  ChannelWaiter* next_to_ready = nullptr;
};

// A FIFO of waiters (Go's waitq). All members under the owning channel's lock.
struct WaitQueue {
  ChannelWaiter* first = nullptr;
  ChannelWaiter* last = nullptr;

  bool empty() const { return first == nullptr; }
  void enqueue(ChannelWaiter* waiter);
  // Takes the first waiter that may be completed: plain waiters always, select waiters only when
  // this caller wins their goroutine's select_done (the select claim). Waiters of lost selects
  // are unlinked and skipped. nullptr when none is left.
  ChannelWaiter* dequeue();
  // Unlinks `waiter` if it is still queued; a no-op when a waker already dequeued it.
  void remove(ChannelWaiter* waiter);
};

struct Channel {
  Channel(size_t elem_bytes_, size_t capacity_) : elem_bytes(elem_bytes_), capacity(capacity_) {}

  kernel::FutexMutex<kernel::LockRank::kChannel> lock;
  const size_t elem_bytes;  // immutable
  const size_t capacity;    // immutable; 0 = unbuffered
  // Buffered elements. Written under the lock; usgc_chan_len reads it without (relaxed).
  std::atomic<size_t> count{0};
  size_t send_index = 0;     // next slot a send fills (under the lock)
  size_t receive_index = 0;  // next slot a receive empties (under the lock)
  bool closed = false;       // under the lock; never goes back to false
  WaitQueue receivers;       // blocked receivers (the waiting invariant)
  WaitQueue senders;         // blocked senders (the waiting invariant)
  // Reference channels (usgc_chan_make_refs; runtime/reference_channels.cpp): elements are GC
  // references, published by every send and scanned as roots by shared collections.
  bool holds_references = false;              // immutable after make
  Channel* next_reference_channel = nullptr;  // the registry of reference channels (its lock)
  Channel* previous_reference_channel = nullptr;

  uint8_t* slot(size_t index);  // the ring buffer's slot `index`
};

// The ring buffer follows the header in the same block, 16-byte aligned like any malloc block.
inline constexpr size_t kChannelBufferOffset = (sizeof(Channel) + 15) & ~size_t{15};
inline uint8_t* Channel::slot(size_t index) {
  return reinterpret_cast<uint8_t*>(this) + kChannelBufferOffset + index * elem_bytes;
}

// ---- reference channels (runtime/reference_channels.cpp) ----
// A send on a reference channel publishes the value first (the private-heap invariant): the
// value becomes GOROUTINE_SHARED before any other goroutine can receive it.
void publish_sent_reference(const Channel* channel, const void* elem);
Channel* reference_channel_make(size_t capacity, int* error);
void reference_channel_forget(Channel* channel);  // channel_destroy, before freeing

// ---- channel operations (runtime/channel.cpp). Errors are errno values, as in usgc/runtime.h.

// nullptr + *error (ENOMEM) on failure.
Channel* channel_make(size_t elem_bytes, size_t capacity, int* error);
int channel_destroy(Channel* channel);  // EBUSY while waiters are queued
// block = false: EAGAIN instead of waiting. Waiting from a non-goroutine thread: EPERM.
int channel_send(Channel* channel, const void* elem, bool block);
int channel_receive(Channel* channel, void* elem, bool* ok, bool block);
int channel_close(Channel* channel);

// ---- lock-held primitives shared with select.cpp (caller holds channel->lock) ----

// Completes a dequeued receiver with the value at `elem` (the hand-off rule); the caller readies
// receiver->goroutine after unlocking.
void complete_receiver(Channel* channel, ChannelWaiter* receiver, const void* elem);
// Completes a dequeued sender: its value goes to `elem` (unbuffered), or the buffer's oldest
// value goes to `elem` and the sender's value takes the freed slot (buffered and full, by the
// waiting invariant). The caller readies sender->goroutine after unlocking.
void complete_sender(Channel* channel, ChannelWaiter* sender, void* elem);
void buffer_push(Channel* channel, const void* elem);  // requires count < capacity
void buffer_pop(Channel* channel, void* elem);         // requires count > 0; elem may be nullptr
// Zeroes elem_bytes at elem (nullptr allowed): the value of a receive from a closed channel.
void clear_element(const Channel* channel, void* elem);

// The C API's usgc_chan is the Channel itself (an opaque name for the same block).
inline Channel* channel_of(usgc_chan* handle) {
  return reinterpret_cast<Channel*>(handle);
}
inline const Channel* channel_of(const usgc_chan* handle) {
  return reinterpret_cast<const Channel*>(handle);
}
inline usgc_chan* handle_of(Channel* channel) {
  return reinterpret_cast<usgc_chan*>(channel);
}

}  // namespace usgc::runtime
