// alloc/heap_lifecycle.cpp — process start, thread heaps coming and going, fork().
//
// Process start (process_ensure_initialized): on the first allocation of any thread, before
// or after constructors, without allocating: the marker key, the options, the thread-exit key,
// the fork handlers. usgc's constructor then initializes NUMA (libnuma allocates, through us).
//
// Thread heaps: created on a thread's first allocation from a pool (heaps are never freed;
// one that a thread leaves is reused by a later thread, counters intact). At thread exit the
// pthread key destructor abandons the heap: remote frees into its pages are switched to
// kNeverDelayed, pending delayed frees are done, empty pages and segments are returned, and
// segments still holding live blocks go to the abandoned list, from which any heap that needs
// a page reclaims them (their blocks stay valid; other threads may keep freeing into them).
// Their free pages keep decaying there: any thread's purge (heap_purge, malloc_trim) purges the
// due ones under the list's lock (abandoned_segments_purge).
//
// fork(): the handlers take every allocator lock (in rank order: the forking thread's own heap's
// help_lock first) so the child starts with
// consistent caches and lists; the child resets the locks and the decommit queue. Heaps of
// threads that do not exist in the child are left as they are (possibly mid-operation), except
// that their segments lose their owner (disown_segments_of_missing_thread: the child's new
// threads reuse those threads' ids): their memory is lost to the child, as in other
// thread-caching allocators.
#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "alloc/footprint.hpp"
#include "alloc/heap.hpp"
#include "alloc/heap_profile.hpp"
#include "alloc/large_arena.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/random.hpp"
#include "kernel_iface/spin_lock.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "numa/numa.hpp"

namespace usgc::alloc {

using kernel::LockRank;
using kernel::SpinLock;
using kernel::SpinLockGuard;
namespace {

constexpr size_t kMetadataChunkBytes = 1 << 20;

// Guards the pool, the metadata chunk cursor and registry insertion. Rank kHeapPool.
constinit SpinLock g_heap_pool_lock{LockRank::kHeapPool};
Heap* g_free_heaps = nullptr;
uint8_t* g_metadata_cursor = nullptr;
uint8_t* g_metadata_end = nullptr;
std::atomic<Heap*> g_heap_registry{nullptr};

pthread_key_t g_thread_key;
// 0: not started, 1: initializing, 2: ready. The initializing thread id allows re-entry.
std::atomic<int> g_process_state{0};
std::atomic<uintptr_t> g_initializing_thread{0};

void for_each_queued_page(Heap* heap, void (*action)(Heap*, Page*)) {
  for (PageQueue& queue : heap->queues) {
    for (Page* page = queue.first; page != nullptr;) {
      Page* next = page->next;
      action(heap, page);
      page = next;
    }
  }
  for (Page* page = heap->full_queue.first; page != nullptr;) {
    Page* next = page->next;
    action(heap, page);
    page = next;
  }
}

void stop_delayed_frees(Heap*, Page* page) {
  uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
  for (;;) {
    if ((thread_free & kDelayedStateMask) == kDelayedFreeing) {  // a freer is pushing: wait
      kernel::cpu_relax();
      thread_free = page->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    // Acquire: pairs with the freer's release reset, so its delayed_free push is visible.
    if (page->thread_free.compare_exchange_weak(
            thread_free, (thread_free & ~kDelayedStateMask) | kNeverDelayed,
            std::memory_order_acquire, std::memory_order_relaxed)) {
      return;
    }
  }
}

void return_page_if_empty(Heap* heap, Page* page) {
  page_collect(page);
  if (page->used != 0) return;
  PageQueue* queue =
      page->has_flag(kPageInFullQueue) ? &heap->full_queue : &heap->queues[page->bin];
  PageQueueList::remove(queue->first, queue->last, page);
  page_free_to_segment(heap, page);
}

void thread_heap_exit(void* value) {
  Heap* heap = static_cast<Heap*>(value);
  if (heap == nullptr || heap == &g_empty_heap) return;
  heap_abandon(heap);
  if (t_heap == heap) t_heap = &g_empty_heap;
  t_thread_heap_exited = true;
  heap->in_use.store(0, std::memory_order_relaxed);
  SpinLockGuard guard(g_heap_pool_lock);
  heap->pool_next = g_free_heaps;
  g_free_heaps = heap;
}

// In a fork child, the heap of a thread the child does not have: its segments stop naming that
// thread as their owner. glibc gives the child's new threads the stacks, and so the TCB addresses
// (our thread ids), of the parent's other threads; a new thread would otherwise pass the owner
// tests of the missing thread's pages (the free fast path's fast_free_owner, heap_free_generic's
// owner_thread) and work on that heap as its owner: take its help_lock, which the missing thread
// may have held at the fork (a hang), or change its queues in the middle of the missing thread's
// own update. With no owner, every free into those pages is a remote free to the heap, which
// nobody drains in the child (the memory stays lost to the child, as before). Only the owned list
// is followed (next links: a push or remove the missing thread was doing keeps the chain from the
// head intact) and only ownership fields are written.
void disown_segments_of_missing_thread(Heap* heap) {
  for (Segment* segment = heap->owned_segments; segment != nullptr; segment = segment->owned_next) {
    segment->owner_thread.store(0, std::memory_order_relaxed);
    for (uint32_t i = 0; i < segment->page_count; ++i) {
      Page* page = &segment->pages[i];
      if (page->in_use) page_refresh_fast_free_owner(page);  // owner_thread 0: no owner
    }
  }
}

// The forking thread's heap: a helper in another thread may hold its help_lock (and be halfway
// through its full pages); the child would find it held by a thread it does not have.
Heap* g_forking_heap = nullptr;

void before_fork() {
  if (t_heap != &g_empty_heap) {
    t_heap->help_lock.lock();
    g_forking_heap = t_heap;
  }
  g_heap_pool_lock.lock();
  large_arena_locks_before_fork();
  segment_locks_before_fork();
  heap_profile_before_fork();
}

void after_fork_parent() {
  heap_profile_after_fork();
  segment_locks_after_fork_parent();
  large_arena_locks_after_fork_parent();
  g_heap_pool_lock.unlock();
  if (g_forking_heap != nullptr) g_forking_heap->help_lock.unlock();
  g_forking_heap = nullptr;
}

void after_fork_child() {
  // This thread took it: an ordinary unlock, before the held-lock record is forgotten.
  if (g_forking_heap != nullptr) g_forking_heap->help_lock.unlock();
  g_forking_heap = nullptr;
  large_arena_locks_after_fork_child();
  heap_profile_after_fork();  // the forking thread held it: an ordinary unlock
  segment_locks_after_fork_child();
  g_heap_pool_lock.reset_after_fork();
  kernel::DecommitQueue::process().reset_after_fork();
  // Only the forking thread exists here; the others' heaps are no longer anyone's.
  for (Heap* heap = heap_registry_first(); heap != nullptr; heap = heap->registry_next) {
    if (heap == t_heap || heap->in_use.load(std::memory_order_relaxed) == 0) continue;
    heap->in_use.store(0, std::memory_order_relaxed);
    disown_segments_of_missing_thread(heap);
  }
}

Heap* heap_from_pool() {
  SpinLockGuard guard(g_heap_pool_lock);
  if (g_free_heaps != nullptr) {
    Heap* heap = g_free_heaps;
    g_free_heaps = heap->pool_next;
    heap->pool_next = nullptr;
    return heap;
  }
  size_t heap_bytes = align_up(sizeof(Heap), 64);
  if (g_metadata_cursor == nullptr || g_metadata_cursor + heap_bytes > g_metadata_end) {
    kernel::Result<void*> chunk = kernel::map_aligned(kMetadataChunkBytes, kernel::os_page_size());
    if (!chunk.ok()) return nullptr;
    g_metadata_cursor = static_cast<uint8_t*>(chunk.value());
    g_metadata_end = g_metadata_cursor + kMetadataChunkBytes;
  }
  Heap* heap = new (g_metadata_cursor) Heap();
  g_metadata_cursor += heap_bytes;
  heap->registry_next = g_heap_registry.load(std::memory_order_relaxed);
  // Release: statistics readers (acquire) see the constructed heap.
  g_heap_registry.store(heap, std::memory_order_release);
  return heap;
}

}  // namespace

Heap* heap_registry_first() {
  return g_heap_registry.load(std::memory_order_acquire);
}

void process_ensure_initialized() {
  if (g_process_state.load(std::memory_order_acquire) == 2) return;
  int expected = 0;
  if (g_process_state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
    g_initializing_thread.store(current_thread_id(), std::memory_order_relaxed);
    g_free_marker_key = static_cast<uintptr_t>(kernel::random_u64());
    g_decay_ms =
        kernel::read_environment_number(kernel::EnvironmentVariableId::kDecayMs, g_decay_ms);
    heap_profile_initialize();
    footprint_initialize();
    if (::pthread_key_create(&g_thread_key, thread_heap_exit) != 0) {
      kernel::print_message(
          "pthread_key_create failed: thread caches will not be handed back at thread exit");
    }
    if (::pthread_atfork(before_fork, after_fork_parent, after_fork_child) != 0) {
      kernel::print_message(
          "pthread_atfork failed: allocating in a child of a multi-threaded fork may deadlock");
    }
    // Release: a thread that sees 2 (acquire) sees the key, the options and the marker key.
    g_process_state.store(2, std::memory_order_release);
    return;
  }
  // Re-entry from the initializing thread itself (a libc call above allocating) proceeds.
  if (g_initializing_thread.load(std::memory_order_relaxed) == current_thread_id()) return;
  while (g_process_state.load(std::memory_order_acquire) != 2) kernel::cpu_relax();
}

Heap* thread_heap_create() {
  process_ensure_initialized();
  Heap* heap = heap_from_pool();
  if (heap == nullptr) return nullptr;
  heap->reset_queues();
  heap->thread_id = current_thread_id();
  heap_profile_heap_created(heap);
  remote_inbox_open(heap);
  heap->node = numa::is_initialized() ? numa::current_node().value : 0;
  heap->in_use.store(1, std::memory_order_relaxed);
  t_heap = heap;
  // May allocate (a second-level key block): t_heap is already set, so that is an ordinary malloc.
  ::pthread_setspecific(g_thread_key, heap);
  return heap;
}

void heap_abandon(Heap* heap) {
  // This thread's frees into other heaps, before its own help_lock: its last posts may help an
  // idle owner (remote_free_queue.hpp). Nothing touches this heap's full pages there.
  remote_batches_flush_at_exit(heap);
  // A helper may be at the full pages (remote_free_queue.hpp, "Idle owner help"); held to the
  // end, past the inbox's close: no helper comes after.
  kernel::SpinLockGuard help_guard(heap->help_lock);
  heap_take_help_results(heap);
  if (heap_profile_active()) heap_profile_uncut_all(heap);  // its pages leave: whole lists
  remote_batches_flush(heap);                               // this thread's frees into other heaps
  remote_inbox_close(heap);  // other threads' frees into this one: done now, later ones unbatched
  for_each_queued_page(heap, stop_delayed_frees);
  heap_drain_delayed_frees(heap);
  for_each_queued_page(heap, return_page_if_empty);
  for (Segment* segment = heap->owned_segments; segment != nullptr;) {
    Segment* next = segment->owned_next;
    // The fast path's frees counted: pages with a free list by the walk of their local_free
    // (page.hpp), the others without (2026-12-06: 1.5 % of shared_slots, whose short-lived
    // threads each walked every page's list at exit).
    segment_count_local_frees(heap, segment, false);
    segment->owner_thread.store(0, std::memory_order_relaxed);
    segment->owner_heap = nullptr;
    segment->owned_next = segment->owned_prev = nullptr;
    segment->available_next = segment->available_prev = nullptr;
    segment->in_available_list = 0;
    for (uint32_t i = 0; i < segment->page_count; ++i) {
      Page* page = &segment->pages[i];
      if (!page->in_use) continue;
      page->next = page->prev = nullptr;
      page->clear_flag(kPageInFullQueue);
      page_refresh_fast_free_owner(page);  // owner_thread is 0 now: no fast path for anyone
      page->heap.store(nullptr, std::memory_order_relaxed);
    }
    abandoned_segments_push(segment);  // the lock's release publishes the pages' state
    segment = next;
  }
  uint64_t now = kernel::coarse_monotonic_ms();
  for (uint32_t i = 0; i < heap->cached_segment_count; ++i)
    segment_cache_put(heap->cached_segments[i], now);
  heap->reset_queues();
  purge_flush();
}

void heap_reclaim_segment(Heap* heap, Segment* segment) {
  segment->owner_heap = heap;
  segment->owner_thread.store(heap->thread_id, std::memory_order_relaxed);
  heap_owned_push(heap, segment);
  segment->in_available_list = 0;
  segment->available_next = segment->available_prev = nullptr;
  for (uint32_t i = 0; i < segment->page_count; ++i) {
    Page* page = &segment->pages[i];
    if (!page->in_use) continue;
    // Release: a later remote freer in the delayed path (acquire) sees the new heap.
    page->heap.store(heap, std::memory_order_release);
    page_refresh_fast_free_owner(page);
    uintptr_t thread_free = page->thread_free.load(std::memory_order_relaxed);
    while (!page->thread_free.compare_exchange_weak(
        thread_free, (thread_free & ~kDelayedStateMask) | kNoDelayed, std::memory_order_acq_rel,
        std::memory_order_relaxed)) {
    }
    page_collect(page);
    if (page->used == 0) {
      if (page_free_to_segment(heap, page))
        return;  // that was the last live page: segment released
    } else {
      heap_queue_push_back(heap, page);
    }
  }
  if (segment->free_pages != 0) heap_available_push(heap, segment);
}

bool abandoned_segment_collect(Segment* segment, uint64_t now_ms) {
  // Nobody owns the segment (abandoned list's lock held): every page field is ours except
  // thread_free, which page_collect takes with an exchange. local_free was counted at abandon.
  for (uint32_t i = 0; i < segment->page_count && segment->used_pages != 0; ++i) {
    Page* page = &segment->pages[i];
    if (!page->in_use) continue;
    page_collect(page);
    if (page->used != 0) continue;
    page_reset_to_free(page);
    int64_t area_bytes = segment->page_area_end(i) - segment->page_area_start(i);
    footprint_add(g_footprint.page_bytes_in_use, -area_bytes);
    footprint_add(g_footprint.abandoned_page_bytes_in_use, -area_bytes);
    if (page->memory != PageMemory::kPurged) {
      footprint_add(g_footprint.page_bytes_free_dirty, area_bytes);
      page->memory = PageMemory::kDirty;
      page->purge_deadline_ms = now_ms + g_decay_ms;
    }
    segment->used_pages--;
    segment->free_pages++;
  }
  return segment->used_pages == 0;
}

void abandoned_segment_release(Segment* segment) {
  heap_release_empty_segment(&g_empty_heap, segment);  // to the process cache
}

namespace {
// Runs after libnuma's constructor (usgc depends on it), before main.
__attribute__((constructor)) void usgc_process_constructor() {
  process_ensure_initialized();
  numa::initialize();
}
}  // namespace

}  // namespace usgc::alloc
