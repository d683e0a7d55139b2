// gc/verify_log.cpp — see verify_log.hpp.
#include "gc/verify_log.hpp"

#include <atomic>

#include "gc/block.hpp"
#include "kernel_iface/fatal.hpp"
#include "usgc/usgc.h"

namespace usgc::gc {
namespace {

constexpr uint64_t kVerifyLogRecords = uint64_t{1} << 20;
constexpr int kPrintedRecords = 96;

struct VerifyRecord {
  std::atomic<uint64_t> sequence;  // 1 + the claim number; release store after the fields
  const void* a;
  const void* b;
  uint64_t c;
  uint32_t d;
  VerifyEvent event;
};

// The ring, allocated by the first recorder (CAS on the pointer: a loser frees its copy).
std::atomic<VerifyRecord*> g_ring{nullptr};
std::atomic<uint64_t> g_next{0};  // claims (relaxed fetch_add)

VerifyRecord* ring() {
  // Acquire: pairs with the release CAS below (the zeroed ring is seen).
  VerifyRecord* r = g_ring.load(std::memory_order_acquire);
  if (r != nullptr) return r;
  auto* fresh = static_cast<VerifyRecord*>(usgc_calloc(kVerifyLogRecords, sizeof(VerifyRecord)));
  if (fresh == nullptr) return nullptr;
  // Release: the zeroed records before the pointer (pairs with the acquire above).
  if (!g_ring.compare_exchange_strong(r, fresh, std::memory_order_acq_rel)) {
    usgc_free(fresh);
    return r;
  }
  return fresh;
}

const char* event_name(VerifyEvent event) {
  switch (event) {
    case VerifyEvent::kMarkBegin:
      return "mark-begin";
    case VerifyEvent::kMarkEnd:
      return "mark-end";
    case VerifyEvent::kScan:
      return "scan";
    case VerifyEvent::kPublish:
      return "publish";
    case VerifyEvent::kRenew:
      return "renew";
    case VerifyEvent::kShade:
      return "shade";
    case VerifyEvent::kSharedStore:
      return "shared-store";
    case VerifyEvent::kFreeShared:
      return "free-shared";
    case VerifyEvent::kScanRoot:
      return "scan-root";
  }
  return "?";
}

}  // namespace

void verify_log_record(VerifyEvent event, const void* a, const void* b, uint64_t c, uint64_t d) {
  VerifyRecord* r = ring();
  if (r == nullptr) return;
  uint64_t claim = g_next.fetch_add(1, std::memory_order_relaxed);
  VerifyRecord& record = r[claim % kVerifyLogRecords];
  record.sequence.store(0, std::memory_order_relaxed);
  record.a = a;
  record.b = b;
  record.c = c;
  record.d = static_cast<uint32_t>(d);
  record.event = event;
  // Release: the fields before the sequence (a reader that sees it reads them).
  record.sequence.store(claim + 1, std::memory_order_release);
}

void print_verify_history(const void* object, uint64_t goroutine_id) {
  // Acquire: pairs with ring()'s release CAS.
  VerifyRecord* r = g_ring.load(std::memory_order_acquire);
  if (r == nullptr) return;
  const Block* block = block_of(object);
  uint64_t end = g_next.load(std::memory_order_relaxed);
  uint64_t begin = end > kVerifyLogRecords ? end - kVerifyLogRecords : 0;
  kernel::print_message("USGC_VERIFY history (newest first, %lu events logged) of %p, block %p%s",
                        static_cast<unsigned long>(end), object, static_cast<const void*>(block),
                        goroutine_id != 0 ? ", and the scans of the referring goroutine" : "");
  int printed = 0;
  int boundaries = 0;
  for (uint64_t claim = end; claim-- > begin && printed < kPrintedRecords;) {
    const VerifyRecord& record = r[claim % kVerifyLogRecords];
    // Acquire: pairs with verify_log_record's release store of the sequence.
    if (record.sequence.load(std::memory_order_acquire) != claim + 1) continue;
    bool boundary =
        record.event == VerifyEvent::kMarkBegin || record.event == VerifyEvent::kMarkEnd;
    bool names_object = record.a == object || record.b == object ||
                        (record.event == VerifyEvent::kRenew && record.a == block);
    bool names_scan =
        goroutine_id != 0 && record.event == VerifyEvent::kScan && record.c == goroutine_id;
    if (boundary) {
      if (++boundaries > 24) continue;  // the cycles around the object's events
    } else if (!names_object && !names_scan) {
      continue;
    }
    kernel::print_message("  #%lu %s a=%p b=%p c=%lu d=%u", static_cast<unsigned long>(claim),
                          event_name(record.event), record.a, record.b,
                          static_cast<unsigned long>(record.c), record.d);
    ++printed;
  }
}

}  // namespace usgc::gc
