// safepoint/poll_page.cpp — the poll page mapping; see poll_page.hpp for the layout.
//
// The mapping is reserved PROT_NONE in one piece (kernel::reserve_aligned), then pages 0 and 1
// are made PROT_READ: the slots' bad pages are simply never made accessible. Reads of pages 0
// and 1 map the kernel's shared zero page, so the whole mapping costs no memory.
//
// Publication ("the poll-page publication rule"): g_state goes kUnmapped -> kMapping -> kMapped
// once (back to kUnmapped only if the first mapping attempt failed). g_base, g_bytes and
// g_capacity are written by the one thread that moved g_state to kMapping, before its release
// store of kMapped; every reader loads g_state with acquire first and reads them only when it
// sees kMapped. They never change afterwards, which is what makes is_poll_page_address a plain
// range check, safe in a signal handler. g_slot_count only grows (fetch-max, relaxed: a slot's
// bad page is handed out only after the call that raised the count returned to its caller).
#include "safepoint/poll_page.hpp"

#include <atomic>
#include <cerrno>
#include <thread>

#include "kernel_iface/fatal.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::safepoint {
namespace {

enum MappingState : uint32_t { kUnmapped, kMapping, kMapped };

constexpr uint32_t kAlwaysReadablePageIndex = 0;
constexpr uint32_t kGlobalPageIndex = 1;
constexpr uint32_t kFirstBadPageIndex = 2;
// Far beyond any machine's core count; keeps the size arithmetic far from overflow.
constexpr uint32_t kMaxPollSlotCapacity = 1u << 20;

std::atomic<uint32_t> g_state{kUnmapped};
uintptr_t g_base = 0;     // see the poll-page publication rule
size_t g_bytes = 0;       // see the poll-page publication rule
uint32_t g_capacity = 0;  // see the poll-page publication rule
std::atomic<uint32_t> g_slot_count{0};

bool mapped() {
  // Acquire: pairs with map_once's release store of kMapped (the poll-page publication rule).
  return g_state.load(std::memory_order_acquire) == kMapped;
}

const volatile uint8_t* page_at(uint32_t index) {
  return reinterpret_cast<const volatile uint8_t*>(g_base + size_t{index} * kernel::os_page_size());
}

// The first successful call maps; the others wait for it (a few system calls at most).
kernel::Status map_once(uint32_t slot_count) {
  for (;;) {
    // Acquire: pairs with the mapper's release store of kMapped (or of kUnmapped on failure).
    uint32_t state = g_state.load(std::memory_order_acquire);
    if (state == kMapped) return kernel::Status::success();
    if (state == kMapping) {
      std::this_thread::yield();
      continue;
    }
    // Relaxed on failure: we loop and load again with acquire.
    if (!g_state.compare_exchange_weak(state, kMapping, std::memory_order_relaxed)) continue;

    uint32_t capacity = slot_count > kMinPollSlotCapacity ? slot_count : kMinPollSlotCapacity;
    size_t page = kernel::os_page_size();
    size_t bytes = (size_t{kFirstBadPageIndex} + capacity) * page;
    kernel::Result<void*> reserved = kernel::reserve_aligned(bytes, page);
    kernel::Status status = reserved.status();
    if (status.ok()) {
      status = kernel::protect(reserved.value(), size_t{kFirstBadPageIndex} * page,
                               kernel::Access::kRead);
      if (!status.ok()) (void)kernel::unmap(reserved.value(), bytes);
    }
    if (!status.ok()) {
      // Release (pairs with the acquire load above in a waiting caller, which then maps itself);
      // it publishes nothing: the mapping failed.
      g_state.store(kUnmapped, std::memory_order_release);
      return status;
    }
    g_base = reinterpret_cast<uintptr_t>(reserved.value());
    g_bytes = bytes;
    g_capacity = capacity;
    // Release: publishes g_base, g_bytes and g_capacity (the poll-page publication rule).
    g_state.store(kMapped, std::memory_order_release);
    return kernel::Status::success();
  }
}

}  // namespace

kernel::Status poll_pages_initialize(uint32_t slot_count) {
  if (slot_count > kMaxPollSlotCapacity) return kernel::Status::failure(EINVAL);
  kernel::Status status = map_once(slot_count);
  if (!status.ok()) return status;
  if (slot_count > g_capacity) return kernel::Status::failure(EINVAL);
  uint32_t current = g_slot_count.load(std::memory_order_relaxed);
  while (current < slot_count &&
         !g_slot_count.compare_exchange_weak(current, slot_count, std::memory_order_relaxed)) {
  }
  return kernel::Status::success();
}

const volatile uint8_t* always_readable_page() {
  return mapped() ? page_at(kAlwaysReadablePageIndex) : nullptr;
}

const volatile uint8_t* global_poll_page() {
  return mapped() ? page_at(kGlobalPageIndex) : nullptr;
}

const volatile uint8_t* slot_bad_page(uint32_t slot_index) {
  USGC_CHECK(mapped() && slot_index < g_slot_count.load(std::memory_order_relaxed),
             "slot_bad_page(%u): no such poll slot (%u slots initialized); call "
             "poll_pages_initialize first",
             slot_index, g_slot_count.load(std::memory_order_relaxed));
  return page_at(kFirstBadPageIndex + slot_index);
}

uint32_t poll_slot_count() {
  return g_slot_count.load(std::memory_order_relaxed);
}

uint32_t poll_slot_capacity() {
  return mapped() ? g_capacity : 0;
}

PollPageRange poll_page_range() {
  if (!mapped()) return PollPageRange{nullptr, 0};
  return PollPageRange{reinterpret_cast<const volatile uint8_t*>(g_base), g_bytes};
}

kernel::Status arm_global_poll_page() {
  if (!mapped()) return kernel::Status::failure(EPERM);
  return kernel::protect(const_cast<uint8_t*>(page_at(kGlobalPageIndex)), kernel::os_page_size(),
                         kernel::Access::kNone);
}

kernel::Status disarm_global_poll_page() {
  if (!mapped()) return kernel::Status::failure(EPERM);
  return kernel::protect(const_cast<uint8_t*>(page_at(kGlobalPageIndex)), kernel::os_page_size(),
                         kernel::Access::kRead);
}

bool is_poll_page_address(const void* address) {
  if (!mapped()) return false;
  return reinterpret_cast<uintptr_t>(address) - g_base < g_bytes;
}

}  // namespace usgc::safepoint
