// safepoint/poll_page.hpp — the pages safepoint polls load from.
//
// One mapping, made once by poll_pages_initialize(slot_count):
//   page 0                : the always-readable page (threads that run no goroutine poll it)
//   page 1                : the global poll page: readable; PROT_NONE while a stop-the-world is
//                           requested (one mprotect arms every P whose slot points at it)
//   pages 2 .. 2+cap-1    : one "bad" page per P slot, PROT_NONE for ever. A handshake arms one
//                           P by pointing its slot's poll_page at its bad page (a pointer swap,
//                           no system call: HotSpot's per-thread polling page, JEP 312).
// Pages 0 and 1 are PROT_READ and never written: a poll reads a zero byte from them.
// Invariants: the mapping never moves or shrinks while the process lives (a poll may load from
// it at any time); is_poll_page_address() is a range check, lock-free and signal-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel_iface/result.hpp"

namespace usgc::safepoint {

// Maps the pages. The first call reserves room for kMinPollSlotCapacity slots or slot_count,
// whichever is larger (bad pages are PROT_NONE: the room costs address space only); later calls
// keep the mapping and may raise the slot count up to that capacity, never lower it. Beyond the
// capacity: EINVAL (the mapping cannot move). Thread-safe.
inline constexpr uint32_t kMinPollSlotCapacity = 1024;
kernel::Status poll_pages_initialize(uint32_t slot_count);

// nullptr before poll_pages_initialize succeeded.
const volatile uint8_t* always_readable_page();
const volatile uint8_t* global_poll_page();
// slot_index < poll_slot_count() (checked: USGC_CHECK).
const volatile uint8_t* slot_bad_page(uint32_t slot_index);

// Slots usable today (the largest slot_count initialized so far) and the capacity of the mapping.
uint32_t poll_slot_count();
uint32_t poll_slot_capacity();

// The whole mapping: page 0, page 1 and one bad page per slot of the capacity. is_poll_page_address
// is exactly "address lies in this range". {nullptr, 0} before initialization.
struct PollPageRange {
  const volatile uint8_t* first;
  size_t bytes;
};
PollPageRange poll_page_range();

// mprotect of the global page: PROT_NONE (armed) or PROT_READ (disarmed). Callers serialize
// arming among themselves (the stop-the-world protocol does); EPERM before initialization.
kernel::Status arm_global_poll_page();
kernel::Status disarm_global_poll_page();

// True when address lies in any poll page (signal-safe).
bool is_poll_page_address(const void* address);

}  // namespace usgc::safepoint
