// alloc/segment.cpp — formatting, caching, abandoning and purging segments (slow paths only).
// See segment.hpp for the invariants (segment map, ownership, cache); the segment map and the
// mapping calls are in segment_map.cpp.
#include "alloc/segment.hpp"

#include <cstring>

#include "alloc/footprint.hpp"
#include "alloc/large_arena.hpp"
#include "alloc/size_classes.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/decommit_queue.hpp"
#include "kernel_iface/spin_lock.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "numa/numa.hpp"

namespace usgc::alloc {

using kernel::LockRank;
using kernel::SpinLock;
using kernel::SpinLockGuard;

uint64_t g_decay_ms = 250;
std::atomic<uint64_t> g_cache_next_purge_ms{0};

namespace {

constexpr uint32_t kCacheSegmentsPerNode = 16;

struct NodeCache {
  Segment* entries[kCacheSegmentsPerNode];
  uint32_t count;
};

// Guards g_node_caches. Rank kSegmentCache.
constinit SpinLock g_cache_lock{LockRank::kSegmentCache};
NodeCache g_node_caches[numa::kMaxNodes];

// Huge segments kept for the decay (under g_cache_lock).
constexpr uint32_t kHugeCacheEntries = 8;
constexpr size_t kHugeCacheMaxBytes = size_t{256} << 20;
Segment* g_huge_cache[kHugeCacheEntries];
uint32_t g_huge_cache_count = 0;
size_t g_huge_cache_bytes = 0;
// Under g_cache_lock, after g_huge_cache_bytes changed: the census's copy (footprint.hpp).
void note_huge_cache_bytes() {
  g_large_footprint.huge_cached_bytes.store(static_cast<int64_t>(g_huge_cache_bytes),
                                            std::memory_order_relaxed);
}

// The tail decay: live huge objects whose segment has free pages past the object (after a shrink,
// or a mapping rounded up to whole chunks whose last chunk came resident from the cache), with the
// time those pages may be returned. Under g_cache_lock. A full table returns a new tail at once.
// The entry's owner cancels it under the lock before it resizes or frees the object, and the purge
// returns the pages (synchronously, kernel::decommit) under the lock, so a purge never overlaps the
// owner's writes into the range: the decommit queue's tickets are not needed here.
struct TailDecay {
  Segment* segment;
  uint8_t* start;
  uint64_t deadline_ms;
};
constexpr uint32_t kTailDecayEntries = 32;
TailDecay g_tail_decays[kTailDecayEntries];
uint32_t g_tail_decay_count = 0;

// Under g_cache_lock: returns the tail of entry i to the OS and takes the entry out.
size_t tail_decay_purge_locked(uint32_t i) {
  TailDecay entry = g_tail_decays[i];
  g_tail_decays[i] = g_tail_decays[--g_tail_decay_count];
  size_t bytes = static_cast<size_t>(entry.segment->end() - entry.start);
  // Our own private mapping: a failure is not expected and leaves the pages resident (as before).
  kernel::Status returned = kernel::decommit(entry.start, bytes);
  if (returned.ok())
    footprint_add(g_large_footprint.tail_bytes_returned, static_cast<int64_t>(bytes));
  // release: the pages are gone before the owner sees the flag clear (segment.hpp).
  entry.segment->tail_decay_pending.store(0, std::memory_order_release);
  return returned.ok() ? bytes : 0;
}

// Guards the abandoned list (linked through available_next). Rank kAbandonedSegments.
constinit SpinLock g_abandoned_lock{LockRank::kAbandonedSegments};
Segment* g_abandoned_head = nullptr;
// Read without the lock as a hint ("is there anything to reclaim?").
std::atomic<uint64_t> g_abandoned_count{0};

// Under g_cache_lock: takes entry i out, the others keeping their order (oldest first).
Segment* cache_remove_locked(NodeCache& cache, uint32_t i) {
  Segment* segment = cache.entries[i];
  for (uint32_t k = i + 1; k < cache.count; ++k) cache.entries[k - 1] = cache.entries[k];
  cache.count--;
  return segment;
}

int cache_node_index(int node) {
  return node >= 0 && node < numa::kMaxNodes ? node : 0;
}

}  // namespace

int64_t segment_free_dirty_bytes(Segment* segment) {
  int64_t bytes = 0;
  for (uint32_t i = 0; i < segment->page_count; ++i) {
    const Page* page = &segment->pages[i];
    if (page->in_use || page->memory != PageMemory::kDirty) continue;
    bytes += segment->page_area_end(i) - segment->page_area_start(i);
  }
  return bytes;
}

void segment_leave_cache(Segment* segment) {
  footprint_add(g_footprint.cached_segment_bytes_dirty,
                -static_cast<int64_t>(segment->cache_dirty_bytes));
  segment->cache_dirty_bytes = 0;
}

namespace {
// Which 64 KiB chunks of the segment's data may be resident (bit i: chunk i), from the page
// descriptors of its previous format; all when the data area is not fresh and they do not say.
uint64_t previous_dirty_chunks(const Segment* segment) {
  if (segment->data_is_fresh) return 0;
  uint32_t shift = segment->page_shift;
  uint32_t count = segment->page_count;
  bool described = (shift == kSmallPageShift && count == kSmallPagesPerSegment) ||
                   (shift == kMediumPageShift && count == kMediumPagesPerSegment);
  if (!described) return ~uint64_t{0};
  uint32_t chunks_per_page = uint32_t{1} << (shift - kSmallPageShift);
  uint64_t dirty = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (segment->pages[i].memory == PageMemory::kFresh) continue;  // zero, not resident
    uint64_t page_mask = chunks_per_page >= 64
                             ? ~uint64_t{0}
                             : ((uint64_t{1} << chunks_per_page) - 1) << (i * chunks_per_page);
    dirty |= page_mask;
  }
  return dirty;
}
}  // namespace

void segment_format(Segment* segment, SegmentKind kind) {
  segment->kind = kind;
  uint32_t page_count;
  uint8_t new_page_shift;
  switch (kind) {
    case SegmentKind::kSmall:
      new_page_shift = kSmallPageShift;
      page_count = kSmallPagesPerSegment;
      break;
    case SegmentKind::kMedium:
      new_page_shift = kMediumPageShift;
      page_count = kMediumPagesPerSegment;
      break;
    case SegmentKind::kLarge:  // spans of small-page-sized pages (large_arena.hpp)
      new_page_shift = kSmallPageShift;
      page_count = kSmallPagesPerSegment;
      break;
    default:
      // One page; every pointer into the first 4 MiB chunk maps to page 0 (later chunks of a
      // huge segment are continuation entries in the segment map).
      new_page_shift = kSegmentShift;
      page_count = 1;
      break;
  }
  segment->used_pages = 0;
  segment->free_pages = page_count;
  segment->owner_thread.store(0, std::memory_order_relaxed);
  segment->owner_heap = nullptr;
  segment->large_in_use.store(0, std::memory_order_relaxed);
  segment->span_used_pages.store(0, std::memory_order_relaxed);
  segment->span_head_pages.store(0, std::memory_order_relaxed);
  segment->available_next = segment->available_prev = nullptr;
  segment->owned_next = segment->owned_prev = nullptr;
  segment->in_available_list = 0;
  segment->tail_decay_pending.store(0, std::memory_order_relaxed);
  uint64_t dirty_chunks = previous_dirty_chunks(segment);  // before the descriptors are cleared
  segment->page_shift = new_page_shift;
  segment->page_count = page_count;
  segment_map_publish_page_shift(segment);
  uint32_t chunks_per_page = uint32_t{1} << (new_page_shift - kSmallPageShift);
  std::memset(static_cast<void*>(segment->pages), 0, sizeof(Page) * page_count);
  for (uint32_t i = 0; i < page_count; ++i) {
    Page* page = &segment->pages[i];
    uint64_t mask = chunks_per_page >= 64
                        ? ~uint64_t{0}
                        : ((uint64_t{1} << chunks_per_page) - 1) << (i * chunks_per_page);
    page->memory = (dirty_chunks & mask) != 0 ? PageMemory::kDirty : PageMemory::kFresh;
    page->bin = kBinCount;
  }
}

void segment_cache_put(Segment* segment, uint64_t now_ms) {
  segment->owner_thread.store(0, std::memory_order_relaxed);
  segment->owner_heap = nullptr;
  segment->cache_deadline_ms = now_ms + g_decay_ms;
  if (!segment->cache_purged) segment->data_is_fresh = 0;
  NodeCache& cache = g_node_caches[cache_node_index(segment->node)];
  Segment* evicted = nullptr;  // a purged entry a resident segment takes the place of
  bool fits;
  {
    SpinLockGuard guard(g_cache_lock);
    bool is_huge = segment->segment_bytes != kSegmentBytes;
    fits = is_huge ? g_huge_cache_count < kHugeCacheEntries &&
                         g_huge_cache_bytes + segment->segment_bytes <= kHugeCacheMaxBytes
                   : cache.count < kCacheSegmentsPerNode;
    if (!fits && !is_huge && !segment->cache_purged) {
      // A full cache keeps resident memory rather than purged address space: a purged entry
      // saves only a mapping call when reused, a resident one its page faults
      // (segment_cache_take_resident).
      for (uint32_t i = 0; i < cache.count; ++i) {
        if (!cache.entries[i]->cache_purged) continue;
        evicted = cache_remove_locked(cache, i);
        fits = true;
        break;
      }
    }
    if (fits) {
      if (is_huge) {
        g_huge_cache[g_huge_cache_count++] = segment;
        g_huge_cache_bytes += segment->segment_bytes;
        note_huge_cache_bytes();
      } else {
        cache.entries[cache.count++] = segment;
      }
      uint64_t pending = g_cache_next_purge_ms.load(std::memory_order_relaxed);
      if (pending == 0 || segment->cache_deadline_ms < pending) {
        g_cache_next_purge_ms.store(segment->cache_deadline_ms, std::memory_order_relaxed);
      }
    }
  }
  if (evicted != nullptr) {
    segment_unpurge_data(evicted);  // its purge lands before the range is unmapped
    segment_unmap(evicted);
  }
  if (!fits) segment_unmap(segment);
}

Segment* segment_cache_take(int node) {
  NodeCache& cache = g_node_caches[cache_node_index(node)];
  Segment* segment = nullptr;
  {
    SpinLockGuard guard(g_cache_lock);
    // Prefer the most recently cached (dirty, warm) segment: the stack top.
    if (cache.count != 0) segment = cache.entries[--cache.count];
  }
  if (segment != nullptr) segment_unpurge_data(segment);
  return segment;
}

Segment* segment_cache_take_resident(int node) {
  NodeCache& cache = g_node_caches[cache_node_index(node)];
  SpinLockGuard guard(g_cache_lock);
  // The most recently cached first (the stack top): the warmest.
  for (uint32_t i = cache.count; i-- > 0;) {
    Segment* segment = cache.entries[i];
    if (segment->cache_purged || segment->data_is_fresh) continue;
    return cache_remove_locked(cache, i);
  }
  return nullptr;
}

namespace {

// Index of the smallest cached huge segment of [bytes, 2*bytes], or kHugeCacheEntries.
// Under g_cache_lock.
uint32_t best_huge_fit(size_t bytes) {
  uint32_t best = kHugeCacheEntries;
  for (uint32_t i = 0; i < g_huge_cache_count; ++i) {
    size_t have = g_huge_cache[i]->segment_bytes;
    if (have >= bytes && have <= 2 * bytes &&
        (best == kHugeCacheEntries || have < g_huge_cache[best]->segment_bytes)) {
      best = i;
    }
  }
  return best;
}

}  // namespace

bool segment_cache_has_huge(size_t bytes) {
  SpinLockGuard guard(g_cache_lock);
  return best_huge_fit(bytes) != kHugeCacheEntries;
}

Segment* segment_cache_take_huge(size_t bytes) {
  SpinLockGuard guard(g_cache_lock);
  uint32_t best = best_huge_fit(bytes);
  if (best == kHugeCacheEntries) return nullptr;
  Segment* segment = g_huge_cache[best];
  g_huge_cache[best] = g_huge_cache[--g_huge_cache_count];
  g_huge_cache_bytes -= segment->segment_bytes;
  note_huge_cache_bytes();
  return segment;
}

void segment_tail_decay_schedule(Segment* segment, const uint8_t* object_end, uint64_t now_ms) {
  uintptr_t start = align_up(reinterpret_cast<uintptr_t>(object_end), kLargeGranularity);
  auto end = reinterpret_cast<uintptr_t>(segment->end());
  if (start >= end || end - start < kTailDecayMinBytes) return;
  uint64_t deadline = now_ms + g_decay_ms;
  SpinLockGuard guard(g_cache_lock);
  if (g_tail_decay_count == kTailDecayEntries) {
    // Full: the oldest entry's pages go back now, a decay early (the table stays bounded).
    uint32_t oldest = 0;
    for (uint32_t i = 1; i < g_tail_decay_count; ++i)
      if (g_tail_decays[i].deadline_ms < g_tail_decays[oldest].deadline_ms) oldest = i;
    tail_decay_purge_locked(oldest);
  }
  g_tail_decays[g_tail_decay_count++] =
      TailDecay{segment, reinterpret_cast<uint8_t*>(start), deadline};
  segment->tail_decay_start = reinterpret_cast<uint8_t*>(start);
  segment->tail_decay_pending.store(1, std::memory_order_relaxed);
  uint64_t pending = g_cache_next_purge_ms.load(std::memory_order_relaxed);
  if (pending == 0 || deadline < pending)
    g_cache_next_purge_ms.store(deadline, std::memory_order_relaxed);
}

void segment_tail_decay_remove(Segment* segment) {
  SpinLockGuard guard(g_cache_lock);
  for (uint32_t i = 0; i < g_tail_decay_count; ++i) {
    if (g_tail_decays[i].segment != segment) continue;
    g_tail_decays[i] = g_tail_decays[--g_tail_decay_count];
    break;
  }
  segment->tail_decay_pending.store(0, std::memory_order_relaxed);
}

size_t segment_cache_purge(uint64_t now_ms, bool force) {
  size_t purged = 0;
  if (force) {
    g_cache_lock.lock();
  } else if (!g_cache_lock.try_lock()) {
    return 0;  // someone else is at it; the decay is a deadline, not a promise to the microsecond
  }
  uint64_t next = 0;
  for (NodeCache& cache : g_node_caches) {
    for (uint32_t i = 0; i < cache.count; ++i) {
      Segment* segment = cache.entries[i];
      if (segment->cache_purged) continue;
      if (!force && segment->cache_deadline_ms > now_ms) {
        if (next == 0 || segment->cache_deadline_ms < next) next = segment->cache_deadline_ms;
        continue;
      }
      segment_purge_data(segment);
      purged += kSegmentBytes - kSegmentHeaderBytes;
    }
  }
  // Huge segments are not purged but unmapped when their decay passes (they are big, and a
  // new mapping of the right size costs no more than faulting a purged one back in).
  Segment* expired[kHugeCacheEntries];
  uint32_t expired_count = 0;
  for (uint32_t i = 0; i < g_huge_cache_count;) {
    Segment* segment = g_huge_cache[i];
    if (force || segment->cache_deadline_ms <= now_ms) {
      expired[expired_count++] = segment;
      g_huge_cache_bytes -= segment->segment_bytes;
      note_huge_cache_bytes();
      g_huge_cache[i] = g_huge_cache[--g_huge_cache_count];
      continue;
    }
    if (next == 0 || segment->cache_deadline_ms < next) next = segment->cache_deadline_ms;
    ++i;
  }
  for (uint32_t i = 0; i < g_tail_decay_count;) {
    if (force || g_tail_decays[i].deadline_ms <= now_ms) {
      purged += tail_decay_purge_locked(i);  // entry i is now another one: look at it again
      continue;
    }
    if (next == 0 || g_tail_decays[i].deadline_ms < next) next = g_tail_decays[i].deadline_ms;
    ++i;
  }
  g_cache_next_purge_ms.store(next, std::memory_order_relaxed);
  g_cache_lock.unlock();
  for (uint32_t i = 0; i < expired_count; ++i) {
    purged += expired[i]->segment_bytes;
    segment_unmap(expired[i]);
  }
  if (purged != 0) purge_flush();
  return purged;
}

namespace {
// Lowers g_abandoned_next_purge_ms to `deadline` (0: nothing). Under g_abandoned_lock.
void abandoned_consider_deadline(uint64_t deadline) {
  uint64_t next = g_abandoned_next_purge_ms.load(std::memory_order_relaxed);
  if (deadline != 0 && (next == 0 || deadline < next))
    g_abandoned_next_purge_ms.store(deadline, std::memory_order_relaxed);
}

// The bytes of the segment's in-use pages (footprint census).
int64_t in_use_page_bytes(Segment* segment) {
  int64_t bytes = 0;
  for (uint32_t i = 0; i < segment->page_count; ++i) {
    if (segment->pages[i].in_use) bytes += segment->page_area_end(i) - segment->page_area_start(i);
  }
  return bytes;
}

// The earliest decay deadline of the segment's free resident pages; 0 if it has none.
uint64_t free_dirty_pages_deadline(const Segment* segment) {
  uint64_t earliest = 0;
  for (uint32_t i = 0; i < segment->page_count; ++i) {
    const Page* page = &segment->pages[i];
    if (page->in_use || page->memory != PageMemory::kDirty) continue;
    if (earliest == 0 || page->purge_deadline_ms < earliest) earliest = page->purge_deadline_ms;
  }
  return earliest;
}
}  // namespace

std::atomic<uint64_t> g_abandoned_next_purge_ms{0};

void abandoned_segments_push(Segment* segment) {
  uint64_t deadline = free_dirty_pages_deadline(segment);  // the segment is nobody's: no race
  footprint_add(g_footprint.abandoned_page_bytes_in_use, in_use_page_bytes(segment));
  SpinLockGuard guard(g_abandoned_lock);
  segment->available_next = g_abandoned_head;
  g_abandoned_head = segment;
  g_abandoned_count.fetch_add(1, std::memory_order_relaxed);
  abandoned_consider_deadline(deadline);
  // Its in-use pages are collected after the decay (abandoned_segment_collect).
  abandoned_consider_deadline(kernel::coarse_monotonic_ms() + g_decay_ms);
}

size_t abandoned_segments_purge(uint64_t now_ms, uint64_t horizon_ms, bool force) {
  if (g_abandoned_count.load(std::memory_order_relaxed) == 0) return 0;
  if (force) {
    g_abandoned_lock.lock();
  } else if (!g_abandoned_lock.try_lock()) {
    return 0;  // another thread is pushing, popping or purging: the next slow path looks again
  }
  // A segment on the list belongs to no heap: its free pages' memory state is ours to change
  // while we hold the lock (a reclaim pops it under the same lock before it looks at them).
  // Remote freers of its live blocks touch only in-use pages' thread_free.
  size_t purged = 0;
  uint64_t next = 0;
  Segment* emptied = nullptr;  // segments whose last in-use page the collection freed
  for (Segment** link = &g_abandoned_head; *link != nullptr;) {
    Segment* segment = *link;
    // Blocks other threads freed into its in-use pages since it was abandoned (they wait on
    // each page's thread_free for a reclaim that may never come): pages they emptied are free.
    if (abandoned_segment_collect(segment, now_ms)) {
      *link = segment->available_next;
      segment->available_next = emptied;
      emptied = segment;
      g_abandoned_count.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    link = &segment->available_next;
    uint64_t collect_again = now_ms + g_decay_ms;
    if (next == 0 || collect_again < next) next = collect_again;
    for (uint32_t i = 0; i < segment->page_count; ++i) {
      Page* page = &segment->pages[i];
      if (page->in_use || page->memory != PageMemory::kDirty) continue;
      if (!force && page->purge_deadline_ms > horizon_ms) {
        if (next == 0 || page->purge_deadline_ms < next) next = page->purge_deadline_ms;
        continue;
      }
      page_purge(segment, i);
      purged += static_cast<size_t>(segment->page_area_end(i) - segment->page_area_start(i));
    }
  }
  g_abandoned_next_purge_ms.store(next, std::memory_order_relaxed);
  g_abandoned_lock.unlock();
  while (emptied != nullptr) {
    Segment* segment = emptied;
    emptied = segment->available_next;
    segment->available_next = nullptr;
    abandoned_segment_release(segment);
  }
  if (purged != 0) purge_flush();
  return purged;
}

Segment* abandoned_segments_pop() {
  if (g_abandoned_count.load(std::memory_order_relaxed) == 0) return nullptr;
  SpinLockGuard guard(g_abandoned_lock);
  Segment* segment = g_abandoned_head;
  if (segment != nullptr) {
    g_abandoned_head = segment->available_next;
    segment->available_next = nullptr;
    g_abandoned_count.fetch_sub(1, std::memory_order_relaxed);
    footprint_add(g_footprint.abandoned_page_bytes_in_use, -in_use_page_bytes(segment));
    // An empty list has nothing to decay: a stale deadline would send every slow path to
    // heap_purge, whose purge of the list returns at once on the empty count.
    if (g_abandoned_head == nullptr) g_abandoned_next_purge_ms.store(0, std::memory_order_relaxed);
  }
  return segment;
}

namespace {
// The newest ticket handed out (relaxed max): what purge_wait_all waits for.
std::atomic<uint64_t> g_newest_purge_ticket{0};
}  // namespace

uint64_t purge_range(uint8_t* start, uint8_t* end) {
  footprint_add(g_footprint.bytes_purge_queued, end - start);
  uint64_t ticket =
      kernel::DecommitQueue::process().enqueue(start, static_cast<size_t>(end - start));
  uint64_t newest = g_newest_purge_ticket.load(std::memory_order_relaxed);
  while (ticket > newest &&
         !g_newest_purge_ticket.compare_exchange_weak(newest, ticket, std::memory_order_relaxed)) {
  }
  return ticket;
}

void page_purge(Segment* segment, uint32_t index) {
  Page* page = &segment->pages[index];
  uint8_t* start = segment->page_area_start(index);
  uint8_t* end = segment->page_area_end(index);
  // A free page leaves the census's free dirty pages (an in-use page the idle-owner help emptied
  // was never counted there).
  if (!page->in_use && page->memory == PageMemory::kDirty)
    footprint_add(g_footprint.page_bytes_free_dirty, -(end - start));
  page->decommit_ticket = purge_range(start, end);
  page->memory = PageMemory::kPurged;
  g_segment_counters.bytes_purged.fetch_add(static_cast<size_t>(end - start),
                                            std::memory_order_relaxed);
}

void page_unpurge(Segment* segment, uint32_t index) {
  Page* page = &segment->pages[index];
  if (page->memory != PageMemory::kPurged) return;
  purge_wait(page->decommit_ticket);
  // MADV_DONTNEED'd private anonymous memory reads as zero.
  page->memory = PageMemory::kFresh;
  g_segment_counters.bytes_purged.fetch_sub(
      static_cast<size_t>(segment->page_area_end(index) - segment->page_area_start(index)),
      std::memory_order_relaxed);
}

void segment_purge_data(Segment* segment) {
  segment_leave_cache(segment);  // its dirty bytes are on their way out
  segment->cache_decommit_ticket =
      purge_range(segment->base() + kSegmentHeaderBytes, segment->end());
  segment->cache_purged = 1;
  g_segment_counters.bytes_purged.fetch_add(kSegmentBytes - kSegmentHeaderBytes,
                                            std::memory_order_relaxed);
}

void segment_unpurge_data(Segment* segment) {
  if (!segment->cache_purged) return;
  purge_wait(segment->cache_decommit_ticket);
  segment->cache_purged = 0;
  segment->data_is_fresh = 1;  // MADV_DONTNEED'd private anonymous memory reads as zero
  g_segment_counters.bytes_purged.fetch_sub(kSegmentBytes - kSegmentHeaderBytes,
                                            std::memory_order_relaxed);
}

void purge_wait_all() {
  purge_wait(g_newest_purge_ticket.load(std::memory_order_relaxed));
}

void purge_wait(uint64_t ticket) {
  kernel::DecommitQueue::process().wait(ticket);
}

void purge_flush() {
  kernel::DecommitQueue::process().flush();
}

void segment_locks_before_fork() {
  g_abandoned_lock.lock();
  g_cache_lock.lock();
}

void segment_locks_after_fork_parent() {
  g_cache_lock.unlock();
  g_abandoned_lock.unlock();
}

void segment_locks_after_fork_child() {
  g_cache_lock.reset_after_fork();
  g_abandoned_lock.reset_after_fork();
  kernel::forget_held_locks_after_fork();
}

}  // namespace usgc::alloc
