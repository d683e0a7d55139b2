// gc/concurrent_mark.cpp — see concurrent_mark.hpp.
#include "gc/concurrent_mark.hpp"

#include "gc/conservative_roots.hpp"
#include "gc/gc_state.hpp"
#include "gc/private_generations.hpp"
#include "gc/roots.hpp"
#include "gc/verify_log.hpp"
#include "kernel_iface/cpu.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"

namespace usgc::gc {

std::atomic<bool> g_shared_marking{false};
bool (*g_concurrent_mark_test_gate)() = nullptr;

namespace {

constexpr size_t kClaimBatch = 64;       // goroutines claimed per registry-lock acquisition
constexpr size_t kGreyTakeBatch = 1024;  // grey objects a marker takes at once

// The concurrent mark's state (besides g_shared_marking, which the barrier reads inline).
struct ConcurrentMark {
  // The cycle's epoch: written in the start stop, read anywhere (relaxed: the stop orders it).
  std::atomic<uint32_t> scan_epoch{0};
  // Root scans claimed and not finished (markers, switching threads). Termination waits for 0:
  // incremented relaxed at a claim, decremented with release by finish_scan (pairs with the
  // acquire loads of wait_for_root_scans_stopped and concurrent_roots_pending).
  std::atomic<uint32_t> scans_in_progress{0};
  // Objects shaded by mutators (barrier, scans before resume) in this cycle: relaxed counter.
  std::atomic<size_t> shaded{0};

  // The grey queue: objects marked outside the markers, still to be traced.
  kernel::FutexMutex<kernel::LockRank::kGreyQueue> grey_lock;
  MarkStack grey;                    // under grey_lock
  std::atomic<size_t> grey_size{0};  // written under grey_lock; read as a hint anywhere

  // The registry walk: scan_cursor under the registry lock (moved on by unregistration);
  // walk_done set (release) when the cursor ran off the end, read (acquire) by markers.
  Mutator* scan_cursor = nullptr;
  std::atomic<bool> walk_done{true};
  // The runtime's roots are scanned by whichever marker takes this first (relaxed exchange).
  std::atomic<bool> runtime_roots_taken{true};
};
constinit ConcurrentMark g_concurrent_mark;

uint32_t done_state() {
  return g_concurrent_mark.scan_epoch.load(std::memory_order_relaxed) * 2;
}

void grey_push_all(MarkStack& batch) {
  if (batch.empty()) return;
  kernel::FutexMutexGuard guard(g_concurrent_mark.grey_lock);
  while (!batch.empty()) g_concurrent_mark.grey.push(batch.pop());
  g_concurrent_mark.grey_size.store(g_concurrent_mark.grey.size(), std::memory_order_relaxed);
}

// Marks into a local batch, handed to the grey queue at the end (one lock per scan).
class ShadeVisitor final : public RootVisitor {
 public:
  void visit(void* object) override {
    if (!try_mark_shared(object)) return;
    g_concurrent_mark.shaded.fetch_add(1, std::memory_order_relaxed);
    batch_.push(object);
  }
  void push_marked(void* object) override { batch_.push(object); }
  void flush() { grey_push_all(batch_); }

 private:
  MarkStack batch_;
};

// A goroutine's part of a shared mark: its roots and its private heap's references to shared
// objects (gc/private_generations.hpp). The goroutine is not running (claimed).
void scan_mutator(Mutator& m, RootVisitor& visitor) {
  for_each_mutator_root(m, [&](void** slot) {
    void* value = load_reference(slot);     // a channel hand-off may store into a parked receiver's
    if (!is_object_pointer(value)) return;  // slot: its value is shaded by the sender
    verify_log(VerifyEvent::kScanRoot, value, slot, m.goroutine_id);
    visitor.visit(value);
  });
  for_each_private_to_shared_field(
      m,
      [&](void** field) {
        void* value = load_reference(field);
        if (!is_object_pointer(value)) return;
        verify_log(VerifyEvent::kScanRoot, value, field, m.goroutine_id, 1);
        visitor.visit(value);
      },
      [&](void* object) { visitor.visit(object); });
  // Stopped at an asynchronous safepoint: its registers and unrooted stack slots too.
  for_each_conservative_root(m, [&](void* object) { visitor.visit(object); });
}

// Claims m's scan for this epoch. Counted first, so that termination never misses a claim.
bool try_claim(Mutator& m, uint32_t done) {
  // Acquire: pairs with finish_scan's release store (a scan seen done is complete).
  uint32_t state = m.root_scan_state.load(std::memory_order_acquire);
  if (state == done || state == done + 1) return false;
  g_concurrent_mark.scans_in_progress.fetch_add(1, std::memory_order_relaxed);
  // Acquire: the goroutine's last writes to its roots (it parked through a lock or an atomic
  // hand-off, which ordered them) are seen by the scan.
  if (!m.root_scan_state.compare_exchange_strong(state, done + 1, std::memory_order_acq_rel)) {
    g_concurrent_mark.scans_in_progress.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void finish_scan(Mutator& m, uint32_t done, ScanBy by) {
  verify_log(VerifyEvent::kScan, &m, nullptr, m.goroutine_id,
             uint64_t{done} << 2 | static_cast<uint64_t>(by));
  // Release: pairs with the acquire in ensure_scanned: the goroutine resumes after the scan.
  m.root_scan_state.store(done, std::memory_order_release);
  // Release: pairs with wait_for_root_scans_stopped; what the scan queued is visible then.
  g_concurrent_mark.scans_in_progress.fetch_sub(1, std::memory_order_release);
}

size_t claim_batch(Mutator** out, size_t max) {
  // Acquire: pairs with the release store below (the walk's claims were made before it).
  if (g_concurrent_mark.walk_done.load(std::memory_order_acquire)) return 0;
  uint32_t done = done_state();
  size_t n = 0;
  lock_mutator_registry();
  while (n < max && g_concurrent_mark.scan_cursor != nullptr) {
    Mutator* m = g_concurrent_mark.scan_cursor;
    g_concurrent_mark.scan_cursor = m->registry_next;
    if (try_claim(*m, done)) out[n++] = m;
  }
  // Release: the claims counted in scans_in_progress before the flag (pairs with the acquire
  // loads of walk_done above and in concurrent_roots_pending).
  if (g_concurrent_mark.scan_cursor == nullptr)
    g_concurrent_mark.walk_done.store(true, std::memory_order_release);
  unlock_mutator_registry();
  return n;
}

bool take_grey(RootVisitor& visitor) {
  if (g_concurrent_mark.grey_size.load(std::memory_order_relaxed) == 0) return false;
  kernel::FutexMutexGuard guard(g_concurrent_mark.grey_lock);
  size_t taken = 0;
  while (!g_concurrent_mark.grey.empty() && taken < kGreyTakeBatch) {
    visitor.push_marked(g_concurrent_mark.grey.pop());
    ++taken;
  }
  g_concurrent_mark.grey_size.store(g_concurrent_mark.grey.size(), std::memory_order_relaxed);
  return taken != 0;
}

}  // namespace

void shade_slow(void* value) {
  if (!is_object_pointer(value)) return;
  const bool marked_now = try_mark_shared(value);
  verify_log(VerifyEvent::kShade, value, nullptr, marked_now);
  if (!marked_now) return;
  g_concurrent_mark.shaded.fetch_add(1, std::memory_order_relaxed);
  kernel::FutexMutexGuard guard(g_concurrent_mark.grey_lock);
  g_concurrent_mark.grey.push(value);
  g_concurrent_mark.grey_size.store(g_concurrent_mark.grey.size(), std::memory_order_relaxed);
}

uint32_t current_scan_done_state() {
  return done_state();
}

void ensure_scanned_slow(Mutator& m) {
  uint32_t done = done_state();
  for (;;) {
    // Acquire: pairs with finish_scan's release store: the goroutine resumes after its scan.
    uint32_t state = m.root_scan_state.load(std::memory_order_acquire);
    if (state == done || !shared_mark_in_progress()) return;
    if (state == done + 1) {  // a marker is scanning it: the goroutine runs after that
      kernel::yield_cpu();
      continue;
    }
    if (try_claim(m, done)) {
      ShadeVisitor visitor;
      scan_mutator(m, visitor);
      visitor.flush();
      finish_scan(m, done, ScanBy::kSelfOrSwitch);
      return;
    }
  }
}

void check_running_mutator_scanned(const Mutator& m) {
  uint32_t done = done_state();
  uint32_t state = m.root_scan_state.load(std::memory_order_acquire);
  USGC_CHECK(state == done || !shared_mark_in_progress(),
             "gc: USGC_VERIFY: goroutine %lu runs during a concurrent shared mark without its "
             "roots scanned (state %u, epoch state %u): it resumed without gc::ensure_scanned",
             static_cast<unsigned long>(m.goroutine_id), state, done);
}

void note_mutator_registered_locked(Mutator& m) {
  // Born scanned while marking: its only root is its start object, published (marked) already.
  m.root_scan_state.store(shared_mark_in_progress() ? done_state() : 0, std::memory_order_relaxed);
}

void note_mutator_unregistered_locked(Mutator& m) {
  if (g_concurrent_mark.scan_cursor == &m) g_concurrent_mark.scan_cursor = m.registry_next;
}

void begin_concurrent_mark_stopped() {
  uint32_t epoch = g_concurrent_mark.scan_epoch.load(std::memory_order_relaxed) + 1;
  if (epoch == 0) epoch = 1;  // 0 would make a fresh Mutator's state 0 look scanned
  g_concurrent_mark.scan_epoch.store(epoch, std::memory_order_relaxed);
  uint32_t done = epoch * 2;
  g_concurrent_mark.shaded.store(0, std::memory_order_relaxed);
  g_shared_marking.store(true, std::memory_order_relaxed);
  verify_log(VerifyEvent::kMarkBegin, nullptr, nullptr, epoch,
             g_shared_mark_epoch.load(std::memory_order_relaxed));
  ShadeVisitor visitor;
  // Global root slots and handles: a snapshot now (their count does not grow with goroutines).
  for_each_global_slot_and_handle(
      [](void** slot, void* context) {
        void* value = load_reference(slot);
        if (is_object_pointer(value)) static_cast<ShadeVisitor*>(context)->visit(value);
      },
      &visitor);
  // No goroutine is scanned here: the goroutines the machines run (on a P, or in native) are
  // scanned like parked ones, by the markers' walk or by their own thread before they run on
  // (the runtime calls ensure_scanned where a goroutine resumes after a stop or native code,
  // GcHooks::resume_scans_goroutines). Without a scheduler (the GC alone, in tests) nothing
  // calls it, and every goroutine is scanned here.
  if (!g_hooks.resume_scans_goroutines) {
    for (Mutator* m = first_registered_mutator(); m != nullptr; m = m->registry_next) {
      if (!m->registered || !try_claim(*m, done)) continue;
      scan_mutator(*m, visitor);
      finish_scan(*m, done, ScanBy::kStartStop);
    }
  }
  visitor.flush();
  g_concurrent_mark.scan_cursor = first_registered_mutator();
  g_concurrent_mark.walk_done.store(g_concurrent_mark.scan_cursor == nullptr,
                                    std::memory_order_relaxed);
  g_concurrent_mark.runtime_roots_taken.store(false, std::memory_order_relaxed);
}

bool mark_some_roots(RootVisitor& visitor) {
  Mutator* batch[kClaimBatch];
  size_t n = claim_batch(batch, kClaimBatch);
  if (n != 0) {
    uint32_t done = done_state();
    for (size_t i = 0; i < n; ++i) {
      scan_mutator(*batch[i], visitor);
      finish_scan(*batch[i], done, ScanBy::kMarker);
    }
    return true;
  }
  if (!g_concurrent_mark.runtime_roots_taken.exchange(true, std::memory_order_relaxed)) {
    for_each_runtime_root(
        [](void** slot, void* context) {
          void* value = load_reference(slot);
          if (is_object_pointer(value)) static_cast<RootVisitor*>(context)->visit(value);
        },
        &visitor);
    return true;
  }
  return take_grey(visitor);
}

bool mark_grey_queue(RootVisitor& visitor) {
  return take_grey(visitor);
}

bool concurrent_roots_pending() {
  // Acquire, both: walk_done pairs with claim_batch's release store (every claim is counted by
  // then), scans_in_progress with finish_scan's release decrement (what a scan queued is seen).
  return !g_concurrent_mark.walk_done.load(std::memory_order_acquire) ||
         !g_concurrent_mark.runtime_roots_taken.load(std::memory_order_relaxed) ||
         g_concurrent_mark.grey_size.load(std::memory_order_relaxed) != 0 ||
         g_concurrent_mark.scans_in_progress.load(std::memory_order_acquire) != 0;
}

size_t grey_queue_size() {
  return g_concurrent_mark.grey_size.load(std::memory_order_relaxed);
}

void wait_for_root_scans_stopped() {
  // Acquire: pairs with finish_scan's release.
  while (g_concurrent_mark.scans_in_progress.load(std::memory_order_acquire) != 0)
    kernel::yield_cpu();
}

size_t end_concurrent_mark_stopped() {
  USGC_CHECK(g_concurrent_mark.grey_size.load(std::memory_order_relaxed) == 0,
             "gc: concurrent mark ended with %zu grey objects left",
             g_concurrent_mark.grey_size.load(std::memory_order_relaxed));
  if (g_config.verify) {
    // Every goroutine was scanned in this epoch (the walk, a switch or resume, or the start stop
    // without a scheduler).
    uint32_t done = done_state();
    for (Mutator* m = first_registered_mutator(); m != nullptr; m = m->registry_next) {
      USGC_CHECK(m->root_scan_state.load(std::memory_order_relaxed) == done,
                 "gc: goroutine %lu's roots were not scanned by the concurrent mark (state %u, "
                 "epoch state %u)",
                 static_cast<unsigned long>(m->goroutine_id),
                 m->root_scan_state.load(std::memory_order_relaxed), done);
    }
  }
  g_shared_marking.store(false, std::memory_order_relaxed);
  verify_log(VerifyEvent::kMarkEnd, nullptr, nullptr,
             g_concurrent_mark.scan_epoch.load(std::memory_order_relaxed),
             g_shared_mark_epoch.load(std::memory_order_relaxed));
  return g_concurrent_mark.shaded.load(std::memory_order_relaxed);
}

}  // namespace usgc::gc
