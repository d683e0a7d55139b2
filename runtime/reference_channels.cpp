// runtime/reference_channels.cpp — channels of GC references (usgc_chan_make_refs), the
// runtime's publication points for the collector (usgc_go_object, channel sends), and the
// runtime's part of the collector's roots.
//
// The private-heap invariant (usgc/object.h) says nothing outside a goroutine refers to its
// private objects. A channel buffer, a waiting sender's value and a goroutine's start argument
// are outside it, so each value is published (made GOROUTINE_SHARED in place) before it gets
// there, by the goroutine that owns it. Shared collections then find these values as roots:
// buffered elements and waiting senders' values of every reference channel (visited under the
// channel's lock in the stopped world: only threads that are not goroutines can hold one then,
// and they let go), and start objects through the new goroutine's mutator (gc/mutator.hpp).
// A receiver should receive into a root slot (USGC_ROOTS): once received, the channel no longer
// holds the value.
//
// Lock order: the registry lock -> a channel's lock.
#include <cerrno>
#include <new>

#include "gc/publication.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/intrusive_list.hpp"
#include "runtime/channel.hpp"
#include "runtime/scheduler.hpp"
#include "safepoint/fork_child.hpp"
#include "usgc/gc.h"

namespace usgc::runtime {
namespace {

kernel::FutexMutex<kernel::LockRank::kReferenceChannels> g_reference_channels_lock;
Channel* g_reference_channels = nullptr;  // under g_reference_channels_lock
using ReferenceChannelList = kernel::IntrusiveList<Channel, &Channel::next_reference_channel,
                                                   &Channel::previous_reference_channel>;

}  // namespace

void publish_sent_reference(const Channel* channel, const void* elem) {
  if (!channel->holds_references || elem == nullptr) return;
  void* value = *static_cast<void* const*>(elem);
  if (value != nullptr) gc::publish_for_store(value, gc::Ownership::kShared, "channel send");
}

Channel* reference_channel_make(size_t capacity, int* error) {
  Channel* channel = channel_make(sizeof(void*), capacity, error);
  if (channel == nullptr) return nullptr;
  channel->holds_references = true;
  kernel::FutexMutexGuard guard(g_reference_channels_lock);
  ReferenceChannelList::push_front(g_reference_channels, channel);
  return channel;
}

void reference_channel_forget(Channel* channel) {
  kernel::FutexMutexGuard guard(g_reference_channels_lock);
  ReferenceChannelList::remove(g_reference_channels, channel);
}

// gc::GcHooks::visit_runtime_roots.
void visit_reference_channel_roots(void (*visit)(void** slot, void* context), void* context) {
  kernel::FutexMutexGuard guard(g_reference_channels_lock);
  for (Channel* channel = g_reference_channels; channel != nullptr;
       channel = channel->next_reference_channel) {
    kernel::FutexMutexGuard channel_guard(channel->lock);
    size_t count = channel->count.load(std::memory_order_relaxed);
    for (size_t i = 0; i < count; ++i) {
      visit(
          reinterpret_cast<void**>(channel->slot((channel->receive_index + i) % channel->capacity)),
          context);
    }
    for (ChannelWaiter* sender = channel->senders.first; sender != nullptr; sender = sender->next) {
      if (sender->elem != nullptr) visit(static_cast<void**>(sender->elem), context);
    }
  }
}

}  // namespace usgc::runtime

extern "C" {

USGC_RUNTIME_API usgc_chan* usgc_chan_make_refs(size_t capacity) {
  if (usgc::safepoint::in_fork_child()) {
    usgc::safepoint::refuse_in_fork_child("usgc_chan_make_refs");
    return nullptr;
  }
  int error = 0;
  usgc::runtime::Channel* channel = usgc::runtime::reference_channel_make(capacity, &error);
  if (channel == nullptr) {
    errno = error;
    return nullptr;
  }
  return usgc::runtime::handle_of(channel);
}

USGC_GC_API int usgc_go_object(void (*entry)(void* object), void* object) {
  if (usgc::safepoint::in_fork_child())
    return usgc::safepoint::refuse_in_fork_child("usgc_go_object");
  if (!usgc::runtime::g_scheduler.initialized) return EPERM;
  if (entry == nullptr) return EINVAL;
  if (object != nullptr)
    usgc::gc::publish_for_store(object, usgc::gc::Ownership::kShared, "usgc_go_object");
  return usgc::runtime::spawn_goroutine(entry, object, nullptr, nullptr, object);
}

}  // extern "C"
