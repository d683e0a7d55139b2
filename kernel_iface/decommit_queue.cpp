// kernel_iface/decommit_queue.cpp — the process's batched MADV_DONTNEED queue (see the header
// for the "decommit ticket" rule, the fallback and fork).
//
// State: one constinit QueueState, g_queue; DecommitQueue is only a handle to it (the queue is
// process-wide by design). Nothing here allocates: fixed arrays, atomics, a spin lock, and
// liburing calls that only mmap and make system calls (never io_uring_get_probe_ring, which
// callocs).
//
//   ring              a liburing ring of kRingEntries SQEs (its CQ has 2 x kRingEntries)
//   queued[]          FIFO of operations not yet given to the kernel: prepared in the SQ (io_uring
//                     mode), or waiting for the batch's process_madvise (process_madvise mode)
//   in_flight         operations the kernel consumed whose CQE is not reaped yet
//   done_bits         one bit per ticket in (completed_through, completed_through + kTicketWindow]
//   completed_through the completion watermark: every ticket <= it is complete
// Tickets are 1, 2, 3, ...; 0 means "no operation" and is always complete. A CQE carries its
// ticket in user_data. CQEs arrive in any order, so a completion sets its ticket's bit and the
// watermark then advances over the run of set bits.
//
// Invariants:
//   the window invariant: next_ticket - 1 - completed_through <= kTicketWindow. The bits of
//     incomplete tickets never alias, and ring operations outstanding (queued + in flight) never
//     exceed the CQ's size, so the CQ cannot overflow. A new ticket first waits for the oldest
//     incomplete one when the window is full.
//   the no-resubmission rule: after a submission fails (other than EINTR/EAGAIN/EBUSY), the ring
//     never submits again. Queued operations are done at once with madvise(2). Their SQEs stay
//     in the SQ, but the kernel consumes SQEs only when asked to submit, so each operation runs
//     once. In-flight operations are reaped from the CQ, by reading memory only if
//     io_uring_enter itself fails (for example, the program closed our fd; the mappings keep the
//     ring alive). Then the ring is unmapped and the fd is left alone: it may belong to someone
//     else by now.
//   Every incomplete ticket belongs to a queued operation or an in-flight ring one: synchronous
//     madvise(2) tickets are complete before they are returned, and a process_madvise batch
//     completes all of its tickets under the lock in the call that submits it.
//   The batch rule: queued operations with no ring (ring_state kNone) are a process_madvise
//     batch; submit_locked() makes the call. A batch the kernel refuses is redone one madvise(2)
//     per range (MADV_DONTNEED is idempotent), so a bad range fails alone.
//
// Hot path: none. The only cheap check is is_complete()'s acquire load of the watermark. Every
// other path takes g_queue.lock, a leaf lock (rank kDecommitQueue in lock_rank.hpp). It is held
// while wait() blocks in io_uring_enter for an madvise to finish (microseconds): liburing's ring is
// single-threaded, and a waiter that released the lock could sleep on a CQE that another thread
// has already reaped. It is held across a batch's process_madvise too (up to ~1 ms for 64
// ranges): a waiter for one of its tickets needs the call finished anyway, and others yield.
#include "kernel_iface/decommit_queue.hpp"

#include <liburing.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/decommit_probe.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/library_call_scope.hpp"
#include "kernel_iface/spin_lock.hpp"
#include "kernel_iface/uncancellable_io.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {
namespace {

constexpr unsigned kRingEntries = 64;
// Equal to the CQ's default size (2 x SQ), so the window invariant bounds the CQ's use too.
constexpr uint64_t kTicketWindow = 2 * kRingEntries;
constexpr unsigned kWindowWords = kTicketWindow / 64;
// An SQE's length field is 32 bits (io_uring_prep_madvise truncates); larger ranges use madvise(2).
constexpr size_t kMaxRingOperationBytes = size_t{1} << 30;
constexpr int kTransientSubmitRetries = 16;
constexpr unsigned kSpinsBeforeYield = 128;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

enum class RingState : uint8_t {
  kNone,      // no ring: every operation is a synchronous madvise(2)
  kLive,      // the ring takes new operations
  kDraining,  // a submission failed: no new operations; in-flight CQEs are still to be reaped
};

struct PendingOperation {
  void* address;
  size_t bytes;
  uint64_t ticket;
};

struct QueueState {
  SpinLock lock{LockRank::kDecommitQueue};

  // Written under lock by init and fork reset; read without it. ready=true is stored (release)
  // after the mode and ring are set up; ensure_ready()'s acquire load pairs with it.
  std::atomic<bool> ready{false};
  // Written under lock; read relaxed by active_mode() and fallback_reason() (reporting only).
  std::atomic<DecommitMode> active{DecommitMode::kMadvise};
  std::atomic<int> fallback_errno{0};

  // Written under lock (by mark_complete_locked and fork reset); read without it by is_complete()
  // and wait(): see the acquire/release pair there.
  std::atomic<uint64_t> completed_through{0};

  // Everything below: under lock.
  bool has_explicit_mode = false;  // init() was called; fork reset re-inits with this mode
  DecommitMode explicit_mode = DecommitMode::kAuto;
  RingState ring_state = RingState::kNone;
  bool ring_fd_ours = false;  // false after a failed submission (see the no-resubmission rule)
  io_uring ring{};
  uint64_t next_ticket = 1;
  uint64_t done_bits[kWindowWords] = {};
  size_t bytes_of_ticket[kTicketWindow] = {};  // ring operations, by ticket % kTicketWindow
  PendingOperation queued[kRingEntries] = {};
  uint32_t queued_count = 0;
  uint32_t in_flight = 0;

  // Statistics: relaxed, written anywhere, no ordering with anything.
  std::atomic<uint64_t> io_uring_operations{0};
  std::atomic<uint64_t> madvise_calls{0};
  std::atomic<uint64_t> bytes_decommitted{0};
  std::atomic<uint64_t> submissions{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> batch_calls{0};
  std::atomic<uint64_t> batched_operations{0};
};

constinit QueueState g_queue;
constinit DecommitQueue g_process_queue{};
constinit std::atomic<bool> g_warned_ring_failure{false};

// --- ticket bookkeeping ---------------------------------------------------------------------

bool ticket_bit(uint64_t ticket) {
  uint64_t slot = ticket % kTicketWindow;
  return (g_queue.done_bits[slot / 64] >> (slot % 64)) & 1u;
}

void mark_complete_locked(uint64_t ticket) {
  uint64_t slot = ticket % kTicketWindow;
  g_queue.done_bits[slot / 64] |= uint64_t{1} << (slot % 64);
  uint64_t through = g_queue.completed_through.load(std::memory_order_relaxed);  // ours: under lock
  while (through + 1 < g_queue.next_ticket && ticket_bit(through + 1)) {
    uint64_t next_slot = (through + 1) % kTicketWindow;
    g_queue.done_bits[next_slot / 64] &= ~(uint64_t{1} << (next_slot % 64));
    ++through;
  }
  // Release: a thread whose acquire load sees ticket <= completed_through also sees the
  // completion (the kernel's CQE, read with acquire by liburing), so it may reuse the range.
  g_queue.completed_through.store(through, std::memory_order_release);
}

void decommit_synchronously(void* address, size_t bytes) {
  g_queue.madvise_calls.fetch_add(1, std::memory_order_relaxed);
  if (decommit(address, bytes).ok()) {
    g_queue.bytes_decommitted.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    g_queue.failures.fetch_add(1, std::memory_order_relaxed);
  }
}

// --- ring teardown --------------------------------------------------------------------------

// Unmaps this process's copies of the ring mappings without touching their contents (in a fork
// child they are shared with the parent's ring). Closes the fd only when it is surely ours.
void unmap_ring_locked(bool close_fd) {
  io_uring& ring = g_queue.ring;
  // The ring's own mappings: munmap of a range we mapped cannot fail except by a programming error.
  ::munmap(ring.sq.sqes, sizeof(io_uring_sqe) * ring.sq.ring_entries);
  ::munmap(ring.sq.ring_ptr, ring.sq.ring_sz);
  if (ring.cq.ring_ptr != nullptr && ring.cq.ring_ptr != ring.sq.ring_ptr) {
    ::munmap(ring.cq.ring_ptr, ring.cq.ring_sz);
  }
  if (close_fd) sys_close(ring.ring_fd);
  ring = io_uring{};
  g_queue.ring_state = RingState::kNone;
  g_queue.ring_fd_ours = false;
}

void finish_draining_if_idle_locked() {
  if (g_queue.ring_state == RingState::kDraining && g_queue.in_flight == 0)
    unmap_ring_locked(false);
}

// The ring failed to submit or wait: the no-resubmission rule.
void ring_failed_locked(int error) {
  if (g_queue.ring_state != RingState::kLive) return;
  if (!g_warned_ring_failure.exchange(true, std::memory_order_relaxed)) {
    print_message(
        "decommit queue: io_uring failed (errno %d); returning memory with madvise(2) from now on",
        error);
  }
  g_queue.ring_state = RingState::kDraining;
  g_queue.ring_fd_ours = false;
  g_queue.active.store(DecommitMode::kMadvise, std::memory_order_relaxed);
  g_queue.fallback_errno.store(error, std::memory_order_relaxed);
  for (uint32_t i = 0; i < g_queue.queued_count; ++i) {
    const PendingOperation& op = g_queue.queued[i];
    decommit_synchronously(op.address, op.bytes);
    mark_complete_locked(op.ticket);
  }
  g_queue.queued_count = 0;
  finish_draining_if_idle_locked();
}

// --- reaping --------------------------------------------------------------------------------

void complete_cqe_locked(io_uring_cqe* cqe) {
  uint64_t ticket = io_uring_cqe_get_data64(cqe);
  int result = cqe->res;
  io_uring_cqe_seen(&g_queue.ring, cqe);
  USGC_CHECK(ticket > g_queue.completed_through.load(std::memory_order_relaxed) &&
                 ticket < g_queue.next_ticket && !ticket_bit(ticket) && g_queue.in_flight > 0,
             "decommit queue: completion for unknown ticket %lu (queue state corrupted)",
             static_cast<unsigned long>(ticket));
  --g_queue.in_flight;
  if (result < 0) {
    g_queue.failures.fetch_add(1, std::memory_order_relaxed);  // the range stays committed
  } else {
    g_queue.io_uring_operations.fetch_add(1, std::memory_order_relaxed);
    g_queue.bytes_decommitted.fetch_add(g_queue.bytes_of_ticket[ticket % kTicketWindow],
                                        std::memory_order_relaxed);
  }
  mark_complete_locked(ticket);
  finish_draining_if_idle_locked();
}

// Reaps every CQE already posted; never blocks (peek reads the CQ's memory).
void reap_available_locked() {
  io_uring_cqe* cqe = nullptr;
  while (g_queue.ring_state != RingState::kNone && g_queue.in_flight > 0 &&
         io_uring_peek_cqe(&g_queue.ring, &cqe) == 0) {
    complete_cqe_locked(cqe);
  }
}

// Blocks until one CQE is posted and reaps it. Requires in_flight > 0.
void reap_one_blocking_locked() {
  io_uring_cqe* cqe = nullptr;
  for (;;) {
    int result;
    {
      LibraryCallScope in_liburing;
      result = io_uring_wait_cqe(&g_queue.ring, &cqe);
    }
    if (result == 0) break;
    if (result == -EINTR || result == -EAGAIN || result == -ETIME) continue;
    // io_uring_enter cannot wait any more (fd closed?). The kernel still posts the in-flight
    // operations' CQEs into our mapping, so poll it.
    ring_failed_locked(-result);
    for (unsigned spins = 0; io_uring_peek_cqe(&g_queue.ring, &cqe) != 0; ++spins) {
      if (spins < kSpinsBeforeYield) {
        cpu_relax();
      } else {
        ::sched_yield();
      }
    }
    break;
  }
  complete_cqe_locked(cqe);
}

// --- submission -----------------------------------------------------------------------------

void consume_queued_locked(uint32_t count) {
  if (count > g_queue.queued_count) count = g_queue.queued_count;
  g_queue.in_flight += count;
  g_queue.queued_count -= count;
  for (uint32_t i = 0; i < g_queue.queued_count; ++i) g_queue.queued[i] = g_queue.queued[i + count];
}

// The batch rule: one process_madvise(2) for every queued operation, each one madvise(2) instead
// if the kernel refuses the call; every queued ticket is complete on return.
void submit_batch_locked() {
  const uint32_t count = g_queue.queued_count;
  if (count == 0) return;
  AdviseRange ranges[kRingEntries];
  size_t bytes = 0;
  for (uint32_t i = 0; i < count; ++i) {
    ranges[i] = AdviseRange{g_queue.queued[i].address, g_queue.queued[i].bytes};
    bytes += g_queue.queued[i].bytes;
  }
  if (advise_batch({ranges, count}, BatchAdvice::kDontNeed).ok()) {
    g_queue.batch_calls.fetch_add(1, std::memory_order_relaxed);
    g_queue.batched_operations.fetch_add(count, std::memory_order_relaxed);
    g_queue.bytes_decommitted.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    for (uint32_t i = 0; i < count; ++i) decommit_synchronously(ranges[i].address, ranges[i].bytes);
  }
  for (uint32_t i = 0; i < count; ++i) mark_complete_locked(g_queue.queued[i].ticket);
  g_queue.queued_count = 0;
}

// Submits every queued operation: the ring's (the kernel may take them in several calls), or
// the process_madvise batch.
void submit_locked() {
  if (g_queue.ring_state == RingState::kNone) {
    submit_batch_locked();
    return;
  }
  int transient_retries = 0;
  while (g_queue.ring_state == RingState::kLive && g_queue.queued_count > 0) {
    int submitted;
    {
      LibraryCallScope in_liburing;
      submitted = io_uring_submit(&g_queue.ring);
    }
    if (submitted > 0) {
      g_queue.submissions.fetch_add(1, std::memory_order_relaxed);
      consume_queued_locked(static_cast<uint32_t>(submitted));
      continue;
    }
    if (submitted == -EINTR) continue;
    bool transient = submitted == 0 || submitted == -EAGAIN || submitted == -EBUSY;
    if (transient && ++transient_retries <= kTransientSubmitRetries) {
      // The kernel is short of resources or has completions to post: make room, then retry.
      if (g_queue.in_flight > 0) {
        reap_one_blocking_locked();
      } else {
        ::sched_yield();
      }
      continue;
    }
    ring_failed_locked(submitted < 0 ? -submitted : EAGAIN);
  }
}

// Blocks until `ticket` (and every earlier one) is complete.
void wait_locked(uint64_t ticket) {
  while (ticket > g_queue.completed_through.load(std::memory_order_relaxed)) {
    if (g_queue.queued_count > 0) {
      submit_locked();
      continue;
    }
    USGC_CHECK(g_queue.ring_state != RingState::kNone && g_queue.in_flight > 0,
               "decommit queue: ticket %lu is neither queued nor in flight (queue state corrupted)",
               static_cast<unsigned long>(ticket));
    reap_one_blocking_locked();
    reap_available_locked();
  }
}

// A new ticket, keeping the window invariant (may wait for the oldest incomplete ticket).
uint64_t issue_ticket_locked() {
  while (g_queue.next_ticket - g_queue.completed_through.load(std::memory_order_relaxed) >
         kTicketWindow) {
    wait_locked(g_queue.completed_through.load(std::memory_order_relaxed) + 1);
  }
  return g_queue.next_ticket++;
}

uint64_t enqueue_on_ring_locked(void* address, size_t bytes) {
  uint64_t ticket = issue_ticket_locked();
  io_uring_sqe* sqe = nullptr;
  if (g_queue.ring_state == RingState::kLive) {
    if (g_queue.queued_count == kRingEntries) submit_locked();  // full SQ: submit, never drop
    if (g_queue.ring_state == RingState::kLive) sqe = io_uring_get_sqe(&g_queue.ring);
  }
  if (sqe == nullptr) {  // the ring broke while we made room
    decommit_synchronously(address, bytes);
    mark_complete_locked(ticket);
    return ticket;
  }
  io_uring_prep_madvise(sqe, address, static_cast<off_t>(bytes), MADV_DONTNEED);
  io_uring_sqe_set_data64(sqe, ticket);
  g_queue.bytes_of_ticket[ticket % kTicketWindow] = bytes;
  g_queue.queued[g_queue.queued_count++] = PendingOperation{address, bytes, ticket};
  if (g_queue.queued_count == kRingEntries) submit_locked();  // the batch is full
  return ticket;
}

// Queues a range for the process_madvise batch; a full batch is submitted at once.
uint64_t enqueue_in_batch_locked(void* address, size_t bytes) {
  uint64_t ticket = issue_ticket_locked();
  g_queue.queued[g_queue.queued_count++] = PendingOperation{address, bytes, ticket};
  if (g_queue.queued_count == kRingEntries) submit_batch_locked();
  return ticket;
}

// --- setup ----------------------------------------------------------------------------------

// Returns 0 with ring_state kLive, or the errno that keeps io_uring out.
int set_up_ring_locked() {
  int error = -io_uring_queue_init(kRingEntries, &g_queue.ring, 0);
  if (error != 0) {
    g_queue.ring = io_uring{};
    return error;
  }
  if (g_queue.ring.cq.ring_entries < kTicketWindow) {
    error = EINVAL;  // the window invariant needs room for kTicketWindow completions
  } else {
    error = probe_ring_madvise(g_queue.ring);
  }
  if (error != 0) {
    io_uring_queue_exit(&g_queue.ring);
    g_queue.ring = io_uring{};
    return error;
  }
  g_queue.ring_state = RingState::kLive;
  g_queue.ring_fd_ours = true;
  return 0;
}

// Finishes every ring operation, then closes the ring.
void retire_ring_locked() {
  if (g_queue.ring_state == RingState::kLive) submit_locked();
  while (g_queue.ring_state != RingState::kNone && g_queue.in_flight > 0)
    reap_one_blocking_locked();
  if (g_queue.ring_state == RingState::kNone) return;
  if (g_queue.ring_fd_ours) {
    io_uring_queue_exit(&g_queue.ring);
    g_queue.ring = io_uring{};
    g_queue.ring_state = RingState::kNone;
    g_queue.ring_fd_ours = false;
  } else {
    unmap_ring_locked(false);
  }
}

Status init_locked(DecommitMode mode) {
  submit_locked();  // a process_madvise batch from the previous mode
  retire_ring_locked();
  Status status = Status::success();
  DecommitMode active = DecommitMode::kMadvise;
  // Why the preferred path is out (the header's fallback_reason): each refusal overwrites it.
  int reason = 0;
  if (mode == DecommitMode::kAuto || mode == DecommitMode::kProcessMadvise) {
    reason = probe_batch_decommit();
    if (reason == 0) active = DecommitMode::kProcessMadvise;
  }
  if (active == DecommitMode::kMadvise &&
      (mode == DecommitMode::kAuto || mode == DecommitMode::kIoUring)) {
    const int error = set_up_ring_locked();
    if (error == 0) {
      active = DecommitMode::kIoUring;
    } else {
      reason = error;
    }
  }
  g_queue.fallback_errno.store(reason, std::memory_order_relaxed);
  if (mode != DecommitMode::kAuto && mode != active) status = Status::failure(reason);
  g_queue.active.store(active, std::memory_order_relaxed);
  // Release: pairs with ensure_ready()'s acquire load; the mode and ring are set up.
  g_queue.ready.store(true, std::memory_order_release);
  return status;
}

// USGC_DECOMMIT (kernel_iface/environment.hpp: the words auto, io_uring, madvise,
// process_madvise in this order).
DecommitMode mode_from_environment() {
  switch (read_environment_choice(EnvironmentVariableId::kDecommit, 0)) {
    case 1:
      return DecommitMode::kIoUring;
    case 2:
      return DecommitMode::kMadvise;
    case 3:
      return DecommitMode::kProcessMadvise;
    default:
      return DecommitMode::kAuto;
  }
}

[[gnu::noinline, gnu::cold]] void initialize_lazily() {
  SpinLockGuard guard(g_queue.lock);
  if (g_queue.ready.load(std::memory_order_relaxed)) return;  // another thread won (under lock)
  DecommitMode mode = g_queue.has_explicit_mode ? g_queue.explicit_mode : mode_from_environment();
  Status status = init_locked(mode);
  if (!status.ok()) {
    print_message(
        "decommit queue: %s was requested but is unavailable (errno %d); using madvise(2)",
        mode == DecommitMode::kIoUring ? "io_uring" : "process_madvise", status.error());
  }
}

void ensure_ready() {
  // Acquire: pairs with init_locked()'s release store, so the set-up state is visible.
  if (!g_queue.ready.load(std::memory_order_acquire)) initialize_lazily();
}

}  // namespace

DecommitQueue& DecommitQueue::process() {
  return g_process_queue;
}

Status DecommitQueue::init(DecommitMode mode) {
  SpinLockGuard guard(g_queue.lock);
  g_queue.has_explicit_mode = true;
  g_queue.explicit_mode = mode;
  return init_locked(mode);
}

DecommitMode DecommitQueue::active_mode() const {
  ensure_ready();
  return g_queue.active.load(std::memory_order_relaxed);
}

int DecommitQueue::fallback_reason() const {
  ensure_ready();
  return g_queue.fallback_errno.load(std::memory_order_relaxed);
}

uint64_t DecommitQueue::enqueue(void* address, size_t bytes) {
  ensure_ready();
  const DecommitMode active = g_queue.active.load(std::memory_order_relaxed);
  if (active == DecommitMode::kProcessMadvise) {
    SpinLockGuard guard(g_queue.lock);
    // Re-read under the lock: a concurrent init may have changed the mode.
    if (g_queue.active.load(std::memory_order_relaxed) == DecommitMode::kProcessMadvise)
      return enqueue_in_batch_locked(address, bytes);
  } else if (active == DecommitMode::kIoUring && bytes <= kMaxRingOperationBytes) {
    SpinLockGuard guard(g_queue.lock);
    if (g_queue.ring_state == RingState::kLive) return enqueue_on_ring_locked(address, bytes);
  }
  // madvise(2) outside the lock; the ticket is issued once the range is already decommitted.
  decommit_synchronously(address, bytes);
  SpinLockGuard guard(g_queue.lock);
  uint64_t ticket = issue_ticket_locked();
  mark_complete_locked(ticket);
  return ticket;
}

void DecommitQueue::flush() {
  // Acquire: as in ensure_ready(); nothing can be queued before the first init.
  if (!g_queue.ready.load(std::memory_order_acquire)) return;
  SpinLockGuard guard(g_queue.lock);
  submit_locked();
  reap_available_locked();
}

bool DecommitQueue::is_complete(uint64_t ticket) {
  // Acquire: pairs with mark_complete_locked()'s release store (see there).
  if (ticket <= g_queue.completed_through.load(std::memory_order_acquire)) return true;
  // Never block: a busy lock means "not known to be complete yet".
  if (!g_queue.lock.try_lock()) return false;
  // Submit if this ticket still waits in the SQ, so polling is_complete() alone makes progress.
  if (g_queue.queued_count > 0 && ticket >= g_queue.queued[0].ticket) submit_locked();
  reap_available_locked();
  bool complete = ticket <= g_queue.completed_through.load(std::memory_order_relaxed);
  g_queue.lock.unlock();
  return complete;
}

bool DecommitQueue::is_known_complete(uint64_t ticket) const {
  // Acquire: as in is_complete().
  return ticket <= g_queue.completed_through.load(std::memory_order_acquire);
}

void DecommitQueue::wait(uint64_t ticket) {
  // Acquire: as in is_complete().
  if (ticket <= g_queue.completed_through.load(std::memory_order_acquire)) return;
  SpinLockGuard guard(g_queue.lock);
  USGC_CHECK(ticket < g_queue.next_ticket,
             "DecommitQueue::wait(): ticket %lu was never issued (next is %lu)",
             static_cast<unsigned long>(ticket), static_cast<unsigned long>(g_queue.next_ticket));
  wait_locked(ticket);
}

void DecommitQueue::reset_after_fork() {
  // Only this thread exists in the child; whoever held the lock in the parent is gone.
  g_queue.lock.reset_after_fork();
  SpinLockGuard guard(g_queue.lock);
  // The ring's mappings are shared with the parent's ring: unmap our copies without writing to
  // them (no io_uring_queue_exit, no reaping); the fd copy is ours to close.
  if (g_queue.ring_state != RingState::kNone) unmap_ring_locked(g_queue.ring_fd_ours);
  g_queue.ring = io_uring{};
  g_queue.ring_state = RingState::kNone;
  g_queue.queued_count = 0;
  g_queue.in_flight = 0;
  for (uint64_t& word : g_queue.done_bits) word = 0;
  // In-flight operations act on the parent's address space: every ticket is complete here.
  // Release: pairs with is_complete()/wait()'s acquire loads (threads the child starts later).
  g_queue.completed_through.store(g_queue.next_ticket - 1, std::memory_order_release);
  g_queue.active.store(DecommitMode::kMadvise, std::memory_order_relaxed);
  // Relaxed: under the lock; ensure_ready() then re-initializes lazily (the same mode as before).
  g_queue.ready.store(false, std::memory_order_relaxed);
}

DecommitCounters DecommitQueue::counters() const {
  return DecommitCounters{
      g_queue.io_uring_operations.load(std::memory_order_relaxed),
      g_queue.madvise_calls.load(std::memory_order_relaxed),
      g_queue.bytes_decommitted.load(std::memory_order_relaxed),
      g_queue.submissions.load(std::memory_order_relaxed),
      g_queue.failures.load(std::memory_order_relaxed),
      g_queue.batch_calls.load(std::memory_order_relaxed),
      g_queue.batched_operations.load(std::memory_order_relaxed),
  };
}

}  // namespace usgc::kernel
