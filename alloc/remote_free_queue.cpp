// alloc/remote_free_queue.cpp — batched remote frees; the design and invariants are in
// remote_free_queue.hpp.
#include "alloc/remote_free_queue.hpp"

#include "alloc/heap.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/heap_slow_paths.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"

namespace usgc::alloc {

namespace {

// Frees each block of a chain through its page's thread_free list (the unbatched remote path).
void free_chain_unbatched(Block* first) {
  while (first != nullptr) {
    Block* next = first->next;
    Segment* segment = segment_of(first);
    page_remote_free(segment->page_of(reinterpret_cast<uintptr_t>(first)), first);
    first = next;
  }
}

// Counts one post (or, with `posted` false, only looks at the count) for `destination`; returns it
// if its posts reached help_after_posts and it has not drained for the decay (the caller helps it
// once its own batch is in order), nullptr otherwise.
Heap* count_post(Heap* destination, uint32_t help_after_posts, bool posted) {
  // Relaxed: a count of posts, a hint for "Idle owner help" (the help takes the lock).
  uint32_t posts = posted ? destination->inbox_posts.fetch_add(1, std::memory_order_relaxed) + 1
                          : destination->inbox_posts.load(std::memory_order_relaxed);
  if (posts == 0 || posts < help_after_posts) return nullptr;
  if (destination->remote_inbox[0].load(std::memory_order_relaxed) == kInboxClosed)
    return nullptr;  // its thread exited: nobody to help
  // An owner that drained within the decay is allocating: it drains itself soon.
  uint64_t last_drain = destination->last_drain_ms.load(std::memory_order_relaxed);
  return kernel::coarse_monotonic_ms() >= last_drain + g_decay_ms ? destination : nullptr;
}

// Posts the batch; returns the destination to help, as count_post (help_after_posts:
// kHelpAfterPosts, or 1 for a thread's last posts at its exit). A slot that holds no block (the
// destination was told of a full page since its last post: remote_free_into_full_page) only looks.
Heap* post(RemoteBatch* batch, uint32_t help_after_posts = kHelpAfterPosts) {
  Heap* destination = batch->destination;
  Block* first = batch->first;
  Block* last = batch->last;
  batch->destination = nullptr;
  batch->first = batch->last = nullptr;
  batch->blocks = batch->bytes = 0;
  if (destination == nullptr) return nullptr;
  if (first == nullptr) return count_post(destination, help_after_posts, false);
  std::atomic<uintptr_t>& lane = destination->remote_inbox[batch->posts++ % kInboxLanes];
  uintptr_t head = lane.load(std::memory_order_relaxed);
  for (;;) {
    if (head == kInboxClosed) {  // the "closed inbox" invariant
      last->next = nullptr;
      free_chain_unbatched(first);
      return nullptr;
    }
    last->next = reinterpret_cast<Block*>(head);
    // Release: pairs with the owner's acquire exchange in remote_inbox_drain/close, which then
    // sees every block's next pointer and marker.
    if (lane.compare_exchange_weak(head, reinterpret_cast<uintptr_t>(first),
                                   std::memory_order_release, std::memory_order_relaxed)) {
      break;
    }
  }
  return count_post(destination, help_after_posts, true);
}

// Pushes a chain first..last onto heap's held-back stack (the help's blocks of pages that are
// not full), or frees it unbatched if the inbox closed meanwhile.
void hold_back_chain(Heap* heap, Block* first, Block* last) {
  if (first == nullptr) return;
  std::atomic<uintptr_t>& lane = heap->inbox_held_back;
  uintptr_t head = lane.load(std::memory_order_relaxed);
  for (;;) {
    if (head == kInboxClosed) {
      last->next = nullptr;
      free_chain_unbatched(first);
      return;
    }
    last->next = reinterpret_cast<Block*>(head);
    // Release: as in post().
    if (lane.compare_exchange_weak(head, reinterpret_cast<uintptr_t>(first),
                                   std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
}

// The helper's free of one block into a full page of `heap` (help_lock held); false if the
// block's page is not a full page of heap's thread (it goes back to the owner). The page's own
// thread_free (blocks freed onto it after its owner was told, kFullNotified) is taken too, and the
// page set back to kUseDelayed: the next remote free into it tells again, through the delayed
// list, where the next help finds it.
bool help_free_block(Heap* heap, Block* block) {
  Segment* segment = segment_of(block);
  if (segment->owner_thread.load(std::memory_order_relaxed) != heap->thread_id) return false;
  Page* page = segment->page_of(reinterpret_cast<uintptr_t>(block));
  // Acquire: pairs with the owner's release CAS to kUseDelayed (page_try_to_full), made after
  // its last write to the page's lists and `used` (kFullNotified is written by a freer's RMW that
  // continues its release sequence): the helper sees them.
  uintptr_t thread_free = page->thread_free.load(std::memory_order_acquire);
  while ((thread_free & kDelayedStateMask) == kDelayedFreeing) {  // a freer is telling: a moment
    kernel::cpu_relax();
    thread_free = page->thread_free.load(std::memory_order_acquire);
  }
  uintptr_t state = thread_free & kDelayedStateMask;
  if (state != kUseDelayed && state != kFullNotified) return false;
  USGC_CHECK(page->in_use && page->used != 0,
             "heap corruption: remote free of %p into page %p with no block in use",
             static_cast<void*>(block), static_cast<void*>(page->start));
  // As page_local_free, without the queues (the owner's): counted by the freeing thread.
  block->next = page->local_free;
  page->local_free = block;
  page->local_free_counted++;
  page->used--;
  // Only a freer changes the state now (the owner does under help_lock): kUseDelayed ->
  // kDelayedFreeing -> kFullNotified, pushes in kFullNotified. Acquire: the pushed blocks' links.
  for (;;) {
    if ((thread_free & kDelayedStateMask) == kDelayedFreeing) {  // a freer is telling: a moment
      kernel::cpu_relax();
      thread_free = page->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    if (page->thread_free.compare_exchange_weak(thread_free, kUseDelayed, std::memory_order_acquire,
                                                std::memory_order_relaxed)) {
      break;
    }
  }
  if (Block* head = thread_free_pointer(thread_free)) {
    uint32_t count;
    Block* tail = remote_chain_tail(page, head, &count);
    tail->next = page->local_free;
    page->local_free = head;
    page->local_free_counted += count;
    page->used -= count;
  }
  if (page->used != 0) return true;
  // Every block is free. kUseDelayed -> kEmptied; a failed CAS (a freer is in the delayed path,
  // which only a double free can be now) leaves the page to its owner.
  uintptr_t expected = kUseDelayed;
  // Relaxed: the help_lock orders the page's fields for the owner; a freer that sees kEmptied
  // only reports.
  if (!page->thread_free.compare_exchange_strong(expected, kEmptied, std::memory_order_relaxed))
    return true;
  page->local_free = nullptr;  // its links are about to be zeroed
  page->local_free_counted = 0;
  page_purge(segment, segment->index_of(page));
  return true;
}

// Frees one block of an inbox chain on the owner `heap` (or forwards it, see the header).
void free_inbox_block(Heap* heap, Block* block) {
  Segment* segment = segment_of(block);
  Page* page = segment->page_of(reinterpret_cast<uintptr_t>(block));
  if (segment->owner_thread.load(std::memory_order_relaxed) == heap->thread_id) {
    USGC_CHECK(page->in_use && page->used != 0,
               "heap corruption: remote free of %p into page %p with no block in use",
               static_cast<void*>(block), static_cast<void*>(page->start));
    // Counted by the freeing thread. The common case inline: a page with free blocks already (not
    // moved in its queue), no flag (not full, not a sample page), a block still in use after
    // this one, no profile cut to keep: what page_free_remote_block does then.
    if (page->free_list != nullptr && page->flags() == 0 && page->used > 1 &&
        !heap_profile_active()) {
      block->next = page->free_list;
      page->free_list = block;
      page->used--;
      return;
    }
    page_free_remote_block(heap, page, block);
  } else {
    page_remote_free(page, block);
  }
}

// Frees every block of the lanes' chains (see "Lanes" in the header): one step of every chain
// at a time, each chain's next pointer read before any block is freed, so the loads overlap.
void free_inbox_chains(Heap* heap, Block* (&chains)[kInboxLanes]) {
  for (;;) {
    Block* next[kInboxLanes];
    bool any = false;
    // Unrolled: the lanes' loop overhead was a third of a drained block's instructions.
#pragma GCC unroll 4
    for (uint32_t i = 0; i < kInboxLanes; ++i) {
      next[i] = chains[i] != nullptr ? static_cast<Block*>(chains[i]->next) : nullptr;
      any |= chains[i] != nullptr;
    }
    if (!any) return;
#pragma GCC unroll 4
    for (uint32_t i = 0; i < kInboxLanes; ++i) {
      if (chains[i] != nullptr) free_inbox_block(heap, chains[i]);
      chains[i] = next[i];
    }
  }
}

}  // namespace

namespace {

// Appends to the slot's batch (posting what it held for another destination, and the batch once
// full); returns a destination to help, as post().
Heap* batch_append(Heap* heap, Heap* destination, Block* block, size_t block_bytes) {
  RemoteBatch* batch = &heap->remote_batches[remote_batch_slot_of(destination)];
  Heap* idle = nullptr;
  if (batch->destination != destination) {
    idle = post(batch);
    batch->destination = destination;
  }
  block->next = batch->first;
  batch->first = block;
  if (batch->last == nullptr) batch->last = block;
  batch->blocks++;
  batch->bytes += static_cast<uint32_t>(block_bytes);
  if (batch->blocks >= kRemoteBatchBlocks || batch->bytes >= kRemoteBatchBytes) {
    if (Heap* due = post(batch)) idle = due;
  }
  return idle;
}

}  // namespace

void remote_batch_add_slow(Heap* heap, Heap* destination, Block* block, size_t block_bytes) {
  Heap* idle = batch_append(heap, destination, block, block_bytes);
  if (idle != nullptr && idle != heap) {
    page_free_batches_flush(heap);  // this thread's blocks of the owner's pages, into them
    remote_inbox_help(idle);
  }
}

void remote_free_into_full_page(Heap* heap, Heap* destination, Page* page, Block* block,
                                bool help) {
  if (!page_remote_free(page, block)) return;  // the page is not read after
  // The owner was told of a full page: a post's worth of blocks to come onto it (a page), counted
  // for the help, and the destination left in its slot, so that this thread's exit looks at it
  // (remote_batches_flush_at_exit) whatever else the slot held.
  RemoteBatch* batch = &heap->remote_batches[remote_batch_slot_of(destination)];
  Heap* idle = nullptr;
  if (batch->destination != destination) {
    idle = post(batch);
    batch->destination = destination;
  }
  if (Heap* due = count_post(destination, kHelpAfterPosts, true)) idle = due;
  if (help && idle != nullptr && idle != heap) {
    page_free_batches_flush(heap);  // this thread's blocks of the owner's pages, into them
    remote_inbox_help(idle);
  }
}

void remote_batches_flush(Heap* heap) {
  foreign_cache_flush(heap);
  page_free_batches_flush(heap);
  // No help here: the callers (trim, purge, thread exit) may hold their own heap's help_lock.
  for (RemoteBatch& batch : heap->remote_batches) {
    if (batch.destination != nullptr) post(&batch);
  }
}

void remote_batches_flush_at_exit(Heap* heap) {
  foreign_cache_flush(heap);
  page_free_batches_flush(heap);  // before the slots are looked at: its tells name destinations
  Heap* idle[kRemoteBatchSlots];
  uint32_t idle_count = 0;
  for (RemoteBatch& batch : heap->remote_batches) {
    if (batch.destination == nullptr) continue;
    if (Heap* due = post(&batch, 1)) idle[idle_count++] = due;
  }
  for (uint32_t i = 0; i < idle_count; ++i) {
    if (idle[i] != heap) remote_inbox_help(idle[i]);
  }
}

void remote_inbox_help(Heap* heap) {
  if (!heap->help_lock.try_lock()) return;  // the owner or another helper is at it
  heap->inbox_posts.store(0, std::memory_order_relaxed);
  Block* back_first = nullptr;
  Block* back_last = nullptr;
  bool helped = false;
  // The inbox lanes, then the delayed frees (one block per full page told since the last drain).
  uintptr_t chains[kInboxLanes + 1];
  for (uint32_t i = 0; i < kInboxLanes; ++i) {
    std::atomic<uintptr_t>& lane = heap->remote_inbox[i];
    uintptr_t head = lane.load(std::memory_order_relaxed);
    // Never over kInboxClosed (the "closed inbox" invariant). Acquire: as the owner's drain.
    while (head != 0 && head != kInboxClosed &&
           !lane.compare_exchange_weak(head, 0, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
    }
    chains[i] = head == kInboxClosed ? 0 : head;
  }
  // Acquire: pairs with the freers' release CAS in page_remote_free.
  chains[kInboxLanes] = heap->delayed_free.load(std::memory_order_relaxed) == nullptr
                            ? 0
                            : reinterpret_cast<uintptr_t>(
                                  heap->delayed_free.exchange(nullptr, std::memory_order_acquire));
  for (uintptr_t head : chains) {
    for (Block* block = reinterpret_cast<Block*>(head); block != nullptr;) {
      Block* next = block->next;
      if (help_free_block(heap, block)) {
        helped = true;
      } else {
        block->next = back_first;
        back_first = block;
        if (back_last == nullptr) back_last = block;
      }
      block = next;
    }
  }
  if (helped) heap->helped_pages.store(1, std::memory_order_relaxed);
  heap->help_lock.unlock();
  hold_back_chain(heap, back_first, back_last);
  if (helped) purge_flush();
}

bool remote_inbox_has_blocks(const Heap* heap) {
  for (const std::atomic<uintptr_t>& lane : heap->remote_inbox) {
    uintptr_t head = lane.load(std::memory_order_relaxed);
    if (head != 0 && head != kInboxClosed) return true;
  }
  uintptr_t held_back = heap->inbox_held_back.load(std::memory_order_relaxed);
  return held_back != 0 && held_back != kInboxClosed;
}

void remote_inbox_drain(Heap* heap) {
  heap->inbox_posts.store(0, std::memory_order_relaxed);
  heap->last_drain_ms.store(kernel::coarse_monotonic_ms(), std::memory_order_relaxed);
  Block* chains[kInboxLanes];
  for (uint32_t i = 0; i < kInboxLanes; ++i) {
    // Acquire: pairs with the freers' release CAS in post().
    uintptr_t head = heap->remote_inbox[i].load(std::memory_order_relaxed) == 0
                         ? 0
                         : heap->remote_inbox[i].exchange(0, std::memory_order_acquire);
    chains[i] = reinterpret_cast<Block*>(head);
  }
  free_inbox_chains(heap, chains);
  // Acquire: pairs with a helper's release CAS in hold_back_chain.
  if (heap->inbox_held_back.load(std::memory_order_relaxed) != 0) {
    Block* held_back[kInboxLanes] = {
        reinterpret_cast<Block*>(heap->inbox_held_back.exchange(0, std::memory_order_acquire))};
    free_inbox_chains(heap, held_back);
  }
}

void remote_inbox_close(Heap* heap) {
  Block* chains[kInboxLanes];
  for (uint32_t i = 0; i < kInboxLanes; ++i) {
    // Acquire: as in remote_inbox_drain. From here on, posts to this lane fall back to
    // thread_free.
    uintptr_t head = heap->remote_inbox[i].exchange(kInboxClosed, std::memory_order_acquire);
    chains[i] = head == kInboxClosed ? nullptr : reinterpret_cast<Block*>(head);
  }
  free_inbox_chains(heap, chains);
  // As the lanes (the help takes help_lock, which the exiting owner holds: none is at it).
  uintptr_t held_back = heap->inbox_held_back.exchange(kInboxClosed, std::memory_order_acquire);
  Block* held_back_chains[kInboxLanes] = {
      held_back == kInboxClosed ? nullptr : reinterpret_cast<Block*>(held_back)};
  free_inbox_chains(heap, held_back_chains);
}

void remote_inbox_open(Heap* heap) {
  // Relaxed: the heap is published to its new thread under the pool lock; freers that see the
  // old closed value fall back to thread_free, which is always valid.
  for (std::atomic<uintptr_t>& lane : heap->remote_inbox) lane.store(0, std::memory_order_relaxed);
  heap->inbox_held_back.store(0, std::memory_order_relaxed);
  heap->inbox_posts.store(0, std::memory_order_relaxed);
  heap->last_drain_ms.store(kernel::coarse_monotonic_ms(), std::memory_order_relaxed);
}

}  // namespace usgc::alloc
