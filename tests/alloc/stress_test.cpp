// tests/alloc/stress_test.cpp — multi-threaded allocation stress: remote frees, realloc chains,
// every alignment.
//
// Each test runs kThreads workers (more than this machine's cores, so they are preempted inside
// the allocator) for a fixed budget of wall time (a steady_clock deadline: the tests end, they
// never assert on time). Every object is filled with a pattern derived from (thread, index) and
// verified before it is freed or resized, so any overlap, lost write or reuse of a live block
// shows up as a mismatch. Objects travel between threads through mutex-protected inboxes, so
// most frees are remote frees into another thread's pages.
//
// Seeded: USGC_TEST_SEED=<n> repeats a run's random choices (thread interleaving still varies);
// without it the seed comes from the clock. Every failure message carries "seed=<n>".
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/memory_patterns.hpp"
#include "tests/support/seeded_random.hpp"
#include "tests/support/usgc_stats.hpp"
#include "usgc/usgc.h"

namespace {

using usgc_test::is_aligned;
using usgc_test::read_stats;

constexpr int kThreads = 4;
constexpr auto kWorkBudget = std::chrono::seconds(2);
constexpr size_t kMaxStressSize = 64 * 1024;
constexpr size_t kMaxInboxObjects = 4096;  // bounds memory if a receiver is starved

using usgc::testing::Random;
using usgc::testing::seed_note;
using usgc::testing::test_seed;

// Weighted towards small sizes, as real programs allocate: 1..64 KiB.
size_t random_size(Random& random) {
  const size_t bucket = random.below(100);
  if (bucket < 60) return random.between(1, 256);
  if (bucket < 85) return random.between(257, 4096);
  if (bucket < 95) return random.between(4097, 32 * 1024);
  return random.between(32 * 1024 + 1, kMaxStressSize);
}

uint64_t make_tag(int thread, uint64_t index) {
  return static_cast<uint64_t>(thread + 1) << 48 | index;
}

// The pattern of object `tag`: 8 bytes at a time, a different word per offset.
uint64_t pattern_word(uint64_t tag, size_t word_index) {
  return (tag * 0x9E3779B97F4A7C15ull) ^ (word_index * 0xD6E8FEB86659FD93ull) ^ (word_index << 7);
}
void fill_pattern(void* pointer, size_t bytes, uint64_t tag) {
  auto* p = static_cast<unsigned char*>(pointer);
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    const uint64_t word = pattern_word(tag, i / 8);
    memcpy(p + i, &word, 8);
  }
  const uint64_t last = pattern_word(tag, i / 8);
  memcpy(p + i, &last, bytes - i);
}
bool has_pattern(const void* pointer, size_t bytes, uint64_t tag) {
  const auto* p = static_cast<const unsigned char*>(pointer);
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    const uint64_t word = pattern_word(tag, i / 8);
    if (memcmp(p + i, &word, 8) != 0) return false;
  }
  const uint64_t last = pattern_word(tag, i / 8);
  return memcmp(p + i, &last, bytes - i) == 0;
}

struct Object {
  void* pointer;
  size_t size;
  size_t alignment;  // asked for; 0 = plain malloc
  uint64_t tag;
  int allocating_thread;
  bool resized;  // by realloc: which heap owns it is then no longer known
};

// Shared state of one stress run: the inboxes, the failure log and the counters the final
// statistics check uses.
class StressRun {
 public:
  explicit StressRun(uint64_t seed)
      : seed_(seed), deadline_(std::chrono::steady_clock::now() + kWorkBudget) {}

  bool time_is_up() const { return std::chrono::steady_clock::now() >= deadline_; }
  uint64_t seed() const { return seed_; }

  void fail(const std::string& what) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(failure_mutex_);
    if (failure_messages_.size() < 8) failure_messages_.push_back(what);
  }
  int failures() const { return failures_.load(); }
  std::vector<std::string> failure_messages() {
    std::lock_guard<std::mutex> lock(failure_mutex_);
    return failure_messages_;
  }

  // Returns false when the receiver's inbox is full; the caller keeps the object.
  bool send(int to_thread, const Object& object) {
    Inbox& inbox = inboxes_[static_cast<size_t>(to_thread)];
    std::lock_guard<std::mutex> lock(inbox.mutex);
    if (inbox.objects.size() >= kMaxInboxObjects) return false;
    inbox.objects.push_back(object);
    return true;
  }
  std::vector<Object> receive(int thread) {
    Inbox& inbox = inboxes_[static_cast<size_t>(thread)];
    std::vector<Object> taken;
    std::lock_guard<std::mutex> lock(inbox.mutex);
    taken.swap(inbox.objects);
    return taken;
  }

  // Verifies `object` and frees it from `thread`; counts what the statistics must show.
  void verify_and_free(int thread, const Object& object) {
    if (!has_pattern(object.pointer, object.size, object.tag)) {
      fail("object " + std::to_string(object.tag & 0xFFFFFFFFFFFF) + " of thread " +
           std::to_string(object.allocating_thread) + ", size " + std::to_string(object.size) +
           ", alignment " + std::to_string(object.alignment) +
           ": contents changed while it was live");
      return;  // leak it rather than free a block usgc may have handed out twice
    }
    usgc_free(object.pointer);
    frees_.fetch_add(1, std::memory_order_relaxed);
    if (object.allocating_thread != thread && !object.resized && object.alignment <= 16)
      certain_remote_frees_.fetch_add(1, std::memory_order_relaxed);
  }
  void count_allocation() { allocations_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t frees() const { return frees_.load(); }
  uint64_t allocations() const { return allocations_.load(); }
  uint64_t certain_remote_frees() const { return certain_remote_frees_.load(); }

  // After the workers are joined: frees what is still in the inboxes (from this thread).
  void drain_inboxes(int as_thread) {
    for (int t = 0; t < kThreads; ++t)
      for (const Object& object : receive(t)) verify_and_free(as_thread, object);
  }

 private:
  struct Inbox {
    std::mutex mutex;
    std::vector<Object> objects;  // guarded by mutex
  };
  const uint64_t seed_;
  const std::chrono::steady_clock::time_point deadline_;
  std::array<Inbox, kThreads> inboxes_;
  std::atomic<int> failures_{0};
  std::mutex failure_mutex_;
  std::vector<std::string> failure_messages_;  // guarded by failure_mutex_
  std::atomic<uint64_t> frees_{0}, allocations_{0}, certain_remote_frees_{0};
};

// A worker's allocation: plain, calloc (checked zero), aligned_alloc or posix_memalign.
bool allocate_object(StressRun& run, Random& random, int thread, uint64_t index, size_t size,
                     size_t alignment, Object* out) {
  void* p = nullptr;
  const size_t how = random.below(10);
  if (alignment > 16) {
    if (how < 5) {
      p = usgc_aligned_alloc(alignment, size);
    } else if (usgc_posix_memalign(&p, alignment, size) != 0) {
      p = nullptr;
    }
    if (p != nullptr && !is_aligned(p, alignment)) {
      run.fail("aligned block " + std::to_string(reinterpret_cast<uintptr_t>(p)) +
               " is not aligned to " + std::to_string(alignment));
      return false;
    }
  } else if (how < 2) {
    p = usgc_calloc(1, size);
    if (p != nullptr) {
      const auto* bytes = static_cast<const unsigned char*>(p);
      for (size_t i = 0; i < size; ++i)
        if (bytes[i] != 0) {
          run.fail("usgc_calloc(1, " + std::to_string(size) +
                   ") returned non-zero memory at byte " + std::to_string(i));
          break;
        }
    }
  } else {
    p = usgc_malloc(size);
  }
  if (p == nullptr) {
    run.fail("allocation of " + std::to_string(size) + " bytes (alignment " +
             std::to_string(alignment) + ") returned NULL, errno " + std::to_string(errno));
    return false;
  }
  if (!is_aligned(p, 16)) run.fail("block not 16-byte aligned");
  if (usgc_malloc_usable_size(p) < size)
    run.fail("usable size below the request " + std::to_string(size));
  run.count_allocation();
  *out = Object{p, size, alignment, make_tag(thread, index), thread, false};
  fill_pattern(p, size, out->tag);
  return true;
}

// Resizes `object` one to four times, checking the kept prefix each time.
void realloc_chain(StressRun& run, Random& random, int thread, uint64_t& index, Object& object) {
  const size_t steps = random.between(1, 4);
  for (size_t step = 0; step < steps; ++step) {
    if (!has_pattern(object.pointer, object.size, object.tag)) {
      run.fail("object of size " + std::to_string(object.size) + " changed before realloc");
      return;
    }
    const size_t new_size = random.below(8) == 0
                                ? random.between(kMaxStressSize, 4 * kMaxStressSize)
                                : random_size(random);
    void* q = usgc_realloc(object.pointer, new_size);
    if (q == nullptr) {
      run.fail("usgc_realloc to " + std::to_string(new_size) + " returned NULL");
      return;
    }
    const size_t kept = object.size < new_size ? object.size : new_size;
    if (!has_pattern(q, kept, object.tag)) {
      run.fail("usgc_realloc " + std::to_string(object.size) + " -> " + std::to_string(new_size) +
               " lost contents");
      object.pointer = q;
      object.size = 0;  // unknown contents: do not check again
      object.tag = 0;
      return;
    }
    if (object.alignment > 16 && !is_aligned(q, 16)) run.fail("realloc result not 16-byte aligned");
    object.pointer = q;
    object.size = new_size;
    object.alignment = 0;  // realloc keeps only the default alignment
    object.resized = true;
    object.tag = make_tag(thread, index++);
    fill_pattern(q, new_size, object.tag);
  }
}

struct WorkerOptions {
  size_t aligned_percent;  // share of allocations with an alignment above 16
  size_t max_alignment;    // largest alignment asked for
  size_t realloc_percent;  // share of steps that run a realloc chain
  size_t send_percent;     // share of new objects handed to another thread at once
};

void stress_worker(StressRun& run, int thread, const WorkerOptions& options) {
  SCOPED_TRACE(seed_note(run.seed()));
  Random random(run.seed() * 0x100000001B3ull + static_cast<uint64_t>(thread) + 1);
  std::vector<Object> kept;
  uint64_t index = 0;
  size_t next_alignment_shift = 5;  // cycles through every power of two up to max_alignment
  while (!run.time_is_up() && run.failures() == 0) {
    for (const Object& object : run.receive(thread)) {  // mostly remote frees
      if (random.below(100) < options.realloc_percent) {
        Object resized = object;
        realloc_chain(run, random, thread, index, resized);
        if (resized.size > 0) kept.push_back(resized);
      } else {
        run.verify_and_free(thread, object);
      }
    }
    for (int burst = 0; burst < 64; ++burst) {
      size_t alignment = 0;
      size_t size = random_size(random);
      if (random.below(100) < options.aligned_percent) {
        alignment = size_t{1} << next_alignment_shift;
        next_alignment_shift = (size_t{1} << (next_alignment_shift + 1)) > options.max_alignment
                                   ? 5
                                   : next_alignment_shift + 1;
        if (random.below(2) == 0)
          size = random.between(1, 2 * alignment > kMaxStressSize ? kMaxStressSize : 2 * alignment);
      }
      Object object;
      if (!allocate_object(run, random, thread, index++, size, alignment, &object)) break;
      const int receiver = static_cast<int>(
          (static_cast<size_t>(thread) + 1 + random.below(kThreads - 1)) % kThreads);
      if (random.below(100) < options.send_percent && run.send(receiver, object)) continue;
      kept.push_back(object);
    }
    // Keep the local set bounded: realloc some, send some away, free the rest here.
    while (kept.size() > 256) {
      const size_t pick = random.below(kept.size());
      Object object = kept[pick];
      kept[pick] = kept.back();
      kept.pop_back();
      const size_t what = random.below(100);
      if (what < options.realloc_percent) {
        realloc_chain(run, random, thread, index, object);
        if (object.size == 0) continue;
      }
      const int receiver = static_cast<int>(
          (static_cast<size_t>(thread) + 1 + random.below(kThreads - 1)) % kThreads);
      if (what % 2 == 0 && run.send(receiver, object)) continue;
      run.verify_and_free(thread, object);
    }
  }
  for (const Object& object : kept) run.verify_and_free(thread, object);
}

// Runs the workers, drains the inboxes and checks the statistics against what the run did.
void run_stress(const WorkerOptions& options) {
  const uint64_t seed = test_seed();
  SCOPED_TRACE(seed_note(seed));
  testing::Test::RecordProperty("seed", std::to_string(seed));
  const usgc_malloc_stats start = read_stats();
  StressRun run(seed);
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.emplace_back(stress_worker, std::ref(run), t, std::cref(options));
  for (auto& worker : workers) worker.join();
  run.drain_inboxes(kThreads);  // the main thread is not a worker: all of these are remote
  for (const std::string& message : run.failure_messages()) ADD_FAILURE() << message;
  ASSERT_EQ(run.failures(), 0) << "corruption or failed allocation under stress";
  const usgc_malloc_stats end = read_stats();
  EXPECT_GT(run.frees(), 0u);
  EXPECT_GE(end.malloc_count, start.malloc_count + run.allocations());
  EXPECT_GE(end.free_count, start.free_count + run.frees());
  EXPECT_GE(end.remote_free_count, start.remote_free_count + run.certain_remote_frees());
  // Everything allocated was freed: in-use bytes return to (about) where they started.
  const uint64_t slack = uint64_t{1} << 20;
  EXPECT_LE(end.bytes_in_use, start.bytes_in_use + slack);
  EXPECT_GE(end.bytes_in_use + slack, start.bytes_in_use);
  EXPECT_LE(end.bytes_committed, end.bytes_reserved);
}

}  // namespace

TEST(UsgcStress, MixedSizesWithMostFreesRemoteKeepEveryObjectIntact) {
  run_stress(WorkerOptions{/*aligned_percent=*/5, /*max_alignment=*/4096, /*realloc_percent=*/10,
                           /*send_percent=*/80});
}

TEST(UsgcStress, ReallocChainsAcrossThreadsKeepContents) {
  run_stress(WorkerOptions{/*aligned_percent=*/5, /*max_alignment=*/1024, /*realloc_percent=*/60,
                           /*send_percent=*/70});
}

TEST(UsgcStress, EveryAlignmentUpTo1MiBUnderRemoteFrees) {
  run_stress(WorkerOptions{/*aligned_percent=*/60, /*max_alignment=*/size_t{1} << 20,
                           /*realloc_percent=*/5,
                           /*send_percent=*/75});
}
