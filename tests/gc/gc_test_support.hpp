// tests/gc/gc_test_support.hpp — what the GC stress tests share: the fixture that starts the
// runtime with the heap verifier on (USGC_VERIFY=1, read at usgc_init) and, where a test asks,
// a small USGC_GC_PERCENT; the node and box types the mutators build graphs of; checks of one
// object's header; the byte pattern of blobs; a failure sink that goroutines report into.
//
// Conventions the tests keep (the rules of usgc/gc.h):
//   - every reference that is not reachable from a root is itself in a root (USGC_ROOTS slot,
//     handle, global root) whenever a usgc call could collect (any allocation, a barrier's slow
//     path, a poll, a channel operation): the collector is precise and never moves objects, so a
//     raw pointer to an object reachable from a root stays valid;
//   - every reference store into a GC object goes through usgc_write / usgc_array_write /
//     usgc_global_store;
//   - each mutator also keeps the expected shape of what it holds in plain C++ memory (its model),
//     and checks the heap against it: the heap is walked and compared field by field, and a
//     checksum of the heap side is compared with one computed from the model alone.
#pragma once

#include <errno.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tests/support/runtime_fixture.hpp"
#include "tests/support/saved_environment.hpp"
#include "tests/support/seeded_random.hpp"
#include "usgc/gc.h"
#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing::gc_stress {

// ---- the fixture
// ---------------------------------------------------------------------------------

using usgc::testing::SavedEnvironmentVariable;

// A fresh runtime per test (4 Ps: more than the cores here, so goroutines are preempted by the OS
// inside the collector and the barriers), started with USGC_VERIFY=1 and, when gc_percent() says
// so, USGC_GC_PERCENT. Both are read at usgc_init (RuntimeTest::SetUp); the previous values are
// restored after usgc_shutdown so other tests see the environment they were started with.
class GcStressFixture : public usgc::testing::RuntimeTest {
 protected:
  uint32_t procs() const override { return 4; }
  // nullptr: leave USGC_GC_PERCENT as the environment has it.
  virtual const char* gc_percent() const { return nullptr; }

  void SetUp() override {
    setenv("USGC_VERIFY", "1", 1);
    if (const char* percent = gc_percent()) setenv("USGC_GC_PERCENT", percent, 1);
    RuntimeTest::SetUp();
  }
  void TearDown() override { RuntimeTest::TearDown(); }

 private:
  // Declared before the runtime starts (members are built before SetUp), destroyed after TearDown.
  SavedEnvironmentVariable saved_verify_{"USGC_VERIFY"};
  SavedEnvironmentVariable saved_gc_percent_{"USGC_GC_PERCENT"};
};

// How long the mutators of one stress test run: USGC_GC_STRESS_MS, default `default_ms` (times
// kTimeLimitScale: under ThreadSanitizer, which runs them about ten times slower, about the same
// work, so allocation volume still triggers the collections the tests count).
inline std::chrono::milliseconds stress_duration(long default_ms) {
  if (const char* text = std::getenv("USGC_GC_STRESS_MS"); text != nullptr && *text != '\0')
    return std::chrono::milliseconds(std::strtol(text, nullptr, 0));
  return std::chrono::milliseconds(default_ms * kTimeLimitScale);
}

// ---- the object types
// ------------------------------------------------------------------------------

// A graph node: two references to other nodes, a byte-array blob (or null), and plain data.
struct Node {
  void* next;   // offset 0
  void* cross;  // offset 8
  void* blob;   // offset 16: USGC_TYPE_BYTE_ARRAY, or null
  uint64_t id;  // unique per node over the whole test; 0 marks garbage built to be dropped
  uint64_t payload;
};
inline constexpr size_t kNodePointerOffsets[] = {offsetof(Node, next), offsetof(Node, cross),
                                                 offsetof(Node, blob)};

// The head of a list of nodes: the unit that is sent on channels and stored into shared places.
struct Box {
  void* first;  // offset 0
  uint64_t structure_id;
  uint64_t unused;
};
inline constexpr size_t kBoxPointerOffsets[] = {offsetof(Box, first)};

struct GcTypes {
  usgc_type_id node = 0;
  usgc_type_id box = 0;
};

// Registers the two types (call from any thread once the runtime is up). ids are 0 on failure.
inline GcTypes register_gc_types() {
  GcTypes types;
  usgc_type_info node_info{"gc_stress.Node", USGC_KIND_OBJECT, sizeof(Node), kNodePointerOffsets,
                           sizeof(kNodePointerOffsets) / sizeof(kNodePointerOffsets[0])};
  usgc_type_info box_info{"gc_stress.Box", USGC_KIND_OBJECT, sizeof(Box), kBoxPointerOffsets,
                          sizeof(kBoxPointerOffsets) / sizeof(kBoxPointerOffsets[0])};
  types.node = usgc_register_type(&node_info);
  types.box = usgc_register_type(&box_info);
  return types;
}

// ---- object checks ------------------------------------------------------------------------------

inline const char* ownership_name(uint64_t ownership) {
  switch (ownership) {
    case USGC_STACK_LOCAL:
      return "STACK_LOCAL";
    case USGC_GOROUTINE_PRIVATE:
      return "GOROUTINE_PRIVATE";
    case USGC_GOROUTINE_SHARED:
      return "GOROUTINE_SHARED";
    case USGC_GLOBAL_SHARED:
      return "GLOBAL_SHARED";
  }
  return "?";
}

// "object 0x... header 0x... (GOROUTINE_SHARED, type 7)" — for failure messages.
inline std::string describe_object(const void* object) {
  char text[160];
  if (object == nullptr) return "null";
  const uint64_t header = USGC_HEADER_OF(object);
  std::snprintf(text, sizeof text, "object %p header 0x%016" PRIx64 " (%s, type %u%s)", object,
                header, ownership_name(header & USGC_HEADER_CLASS_MASK), usgc_type_of(object),
                header == 0 ? ", a FREE slot" : "");
  return text;
}

// Expected ownership of an object in a model: never published (GOROUTINE_PRIVATE), published
// by a send / a shared store / usgc_publish (GOROUTINE_SHARED), or possibly also through a global
// root (GOROUTINE_SHARED or GLOBAL_SHARED, whichever the implementation gives).
enum class Expected { kPrivate, kShared, kSharedOrGlobal };

inline bool ownership_matches(const void* object, Expected expected) {
  const usgc_ownership actual = usgc_ownership_of(object);
  switch (expected) {
    case Expected::kPrivate:
      return actual == USGC_GOROUTINE_PRIVATE;
    case Expected::kShared:
      return actual == USGC_GOROUTINE_SHARED;
    case Expected::kSharedOrGlobal:
      return actual == USGC_GOROUTINE_SHARED || actual == USGC_GLOBAL_SHARED;
  }
  return false;
}

inline const char* expected_name(Expected expected) {
  switch (expected) {
    case Expected::kPrivate:
      return "GOROUTINE_PRIVATE";
    case Expected::kShared:
      return "GOROUTINE_SHARED";
    case Expected::kSharedOrGlobal:
      return "GOROUTINE_SHARED or GLOBAL_SHARED";
  }
  return "?";
}

// The bytes of a node's blob are a function of the node's id, so a blob is checked without a model.
inline uint8_t blob_byte(uint64_t node_id, size_t index) {
  const uint64_t x = (node_id + 1) * 0x9E3779B97F4A7C15ull + (index + 1) * 0xBF58476D1CE4E5B9ull;
  return static_cast<uint8_t>((x >> 56) ^ (x >> 29));
}

inline uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Checksum of a blob of `length` bytes (length -1: no blob), from the heap or from the pattern.
inline uint64_t blob_checksum_of_pattern(uint64_t node_id, int64_t length) {
  uint64_t sum = mix(0xB10B, static_cast<uint64_t>(length));
  for (int64_t i = 0; i < length; ++i) sum = mix(sum, blob_byte(node_id, static_cast<size_t>(i)));
  return sum;
}
inline uint64_t blob_checksum_of_heap(const void* blob) {
  if (blob == nullptr) return mix(0xB10B, static_cast<uint64_t>(int64_t{-1}));
  const size_t length = usgc_array_length(blob);
  const auto* bytes = static_cast<const uint8_t*>(usgc_array_data(const_cast<void*>(blob)));
  uint64_t sum = mix(0xB10B, length);
  for (size_t i = 0; i < length; ++i) sum = mix(sum, bytes[i]);
  return sum;
}

// "" if `blob` (a node's blob field) is the byte array the model describes, else what is wrong.
inline std::string check_blob(const void* blob, uint64_t node_id, int64_t expected_length,
                              Expected expected) {
  if (expected_length < 0)
    return blob == nullptr ? "" : "blob should be null, found " + describe_object(blob);
  if (blob == nullptr) return "blob of " + std::to_string(expected_length) + " bytes lost (null)";
  if (usgc_type_of(blob) != USGC_TYPE_BYTE_ARRAY || (USGC_HEADER_OF(blob) & USGC_HEADER_ARRAY) == 0)
    return "blob is not a byte array: " + describe_object(blob);
  if (!ownership_matches(blob, expected))
    return std::string("blob should be ") + expected_name(expected) + ": " + describe_object(blob);
  if (usgc_array_length(blob) != static_cast<size_t>(expected_length))
    return "blob length " + std::to_string(usgc_array_length(blob)) + ", expected " +
           std::to_string(expected_length);
  const auto* bytes = static_cast<const uint8_t*>(usgc_array_data(const_cast<void*>(blob)));
  for (int64_t i = 0; i < expected_length; ++i) {
    if (bytes[i] != blob_byte(node_id, static_cast<size_t>(i)))
      return "blob byte " + std::to_string(i) + " changed: " + std::to_string(bytes[i]) +
             " instead of " + std::to_string(blob_byte(node_id, static_cast<size_t>(i)));
  }
  return "";
}

// ---- failures from goroutines
// ------------------------------------------------------------------------

// Goroutines report here (gtest's ADD_FAILURE is thread-safe; SCOPED_TRACE is per thread, so every
// message carries the seed itself). The first failure stops every mutator of the test.
class FailureSink {
 public:
  explicit FailureSink(uint64_t seed) : seed_(seed) {}
  void fail(const std::string& what) {
    failed_.store(true, std::memory_order_relaxed);
    if (messages_.fetch_add(1, std::memory_order_relaxed) < kMaxMessages)
      ADD_FAILURE() << what << "\n  " << seed_note(seed_);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t seed() const { return seed_; }

 private:
  static constexpr int kMaxMessages = 6;
  uint64_t seed_;
  std::atomic<bool> failed_{false};
  std::atomic<int> messages_{0};
};

// Allocates a node (and a blob of blob_length bytes unless it is -1) in `ownership` into *slot,
// which must be a root; the blob is allocated while the node is held there. false on failure.
inline bool make_node(FailureSink& sink, const GcTypes& types, void** slot, uint64_t id,
                      uint64_t payload, int64_t blob_length, usgc_ownership ownership,
                      const char* who) {
  void* object = usgc_alloc(types.node, ownership);
  if (object == nullptr) {
    sink.fail(std::string(who) + ": usgc_alloc(node, " + ownership_name(ownership) +
              ") failed: errno " + std::to_string(errno) + ", " + usgc_last_error());
    return false;
  }
  auto* node = static_cast<Node*>(object);
  if (usgc_ownership_of(node) != ownership || usgc_type_of(node) != types.node ||
      node->next != nullptr || node->cross != nullptr || node->blob != nullptr || node->id != 0 ||
      node->payload != 0) {
    sink.fail(std::string(who) + ": a new node is not a zeroed " + ownership_name(ownership) +
              " node: " + describe_object(node));
    return false;
  }
  *slot = node;
  node->id = id;
  node->payload = payload;
  if (blob_length < 0) return true;
  void* blob = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, static_cast<size_t>(blob_length), ownership);
  if (blob == nullptr) {
    sink.fail(std::string(who) + ": usgc_alloc_array(bytes, " + std::to_string(blob_length) +
              ") failed: errno " + std::to_string(errno) + ", " + usgc_last_error());
    return false;
  }
  if (usgc_ownership_of(blob) != ownership ||
      usgc_array_length(blob) != static_cast<size_t>(blob_length)) {
    sink.fail(std::string(who) +
              ": a new byte array has the wrong class or length: " + describe_object(blob));
    return false;
  }
  auto* bytes = static_cast<uint8_t*>(usgc_array_data(blob));
  for (int64_t i = 0; i < blob_length; ++i) {
    if (bytes[i] != 0) {
      sink.fail(std::string(who) + ": a new byte array is not zeroed: " + describe_object(blob));
      return false;
    }
    bytes[i] = blob_byte(id, static_cast<size_t>(i));
  }
  node = static_cast<Node*>(*slot);  // the same address (nothing moves), reloaded from its root
  usgc_write(node, &node->blob, blob);
  return true;
}

}  // namespace usgc::testing::gc_stress
