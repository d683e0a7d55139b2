// churn: multi-threaded churn of random small allocations, a plain program run under LD_PRELOAD.
//
// Stresses the allocator's thread-local fast path: each thread keeps a ring of live objects and,
// at random positions, checks the object's contents, frees it and allocates a new one of a random
// size (mostly 8..1024 bytes, about 1 in 200 up to 32 KiB), then writes into every byte of it.
// All frees are local (the allocating thread frees). Sizes and contents come from a seeded
// xorshift generator per thread, so the checksum printed at the end depends only on the arguments
// (threads, iterations per thread, seed), never on the allocator or the thread schedule.
//
// Usage: churn [threads=2] [iterations_per_thread=15000000] [seed=1]
// Output: "churn threads=T iterations=N seed=S checksum=<hex>"; exit 1 on a content mismatch.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "xorshift.hpp"

namespace {

constexpr std::size_t kRingSlots = 16384;

std::size_t random_size(Xorshift64& rng) {
  const std::uint64_t r = rng.next();
  const unsigned bucket = static_cast<unsigned>(r % 1000);
  if (bucket < 600) return 8 + (r >> 16) % 121;    // 8..128
  if (bucket < 995) return 129 + (r >> 16) % 896;  // 129..1024
  return 1025 + (r >> 16) % (32 * 1024 - 1024);    // 1025..32768
}

struct Slot {
  unsigned char* bytes = nullptr;
  std::size_t size = 0;
  std::uint64_t tag = 0;
};

// Fills the object: the tag in its first 8 bytes, a byte pattern derived from it elsewhere.
void fill(const Slot& slot) {
  std::memset(slot.bytes, static_cast<int>(slot.tag & 0xff), slot.size);
  std::memcpy(slot.bytes, &slot.tag, sizeof slot.tag);
}

// Returns false if the object does not hold what fill() wrote (heap corruption).
bool verify(const Slot& slot) {
  std::uint64_t tag;
  std::memcpy(&tag, slot.bytes, sizeof tag);
  if (tag != slot.tag) return false;
  const unsigned char pattern = static_cast<unsigned char>(slot.tag & 0xff);
  if (slot.size > sizeof tag && slot.bytes[slot.size - 1] != pattern) return false;
  return slot.size / 2 < sizeof tag || slot.bytes[slot.size / 2] == pattern;
}

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

struct ThreadResult {
  std::uint64_t checksum = 0;
  bool ok = true;
};

void churn_thread(unsigned thread_index, std::uint64_t iterations, std::uint64_t seed,
                  ThreadResult* result) {
  Xorshift64 rng(seed * 1000003ull + thread_index);
  std::vector<Slot> ring(kRingSlots);
  std::uint64_t checksum = 0;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    Slot& slot = ring[rng.next() % kRingSlots];
    if (slot.bytes != nullptr) {
      if (!verify(slot)) {
        std::fprintf(stderr,
                     "churn: thread %u iteration %" PRIu64
                     ": object of %zu bytes corrupted (seed %" PRIu64 ")\n",
                     thread_index, i, slot.size, seed);
        result->ok = false;
        return;
      }
      checksum = mix(checksum, slot.tag ^ slot.size);
      std::free(slot.bytes);
    }
    slot.size = random_size(rng);
    slot.tag = rng.next();
    slot.bytes = static_cast<unsigned char*>(std::malloc(slot.size));
    if (slot.bytes == nullptr) {
      std::fprintf(stderr, "churn: malloc(%zu) failed\n", slot.size);
      result->ok = false;
      return;
    }
    fill(slot);
  }
  for (Slot& slot : ring) {
    if (slot.bytes == nullptr) continue;
    if (!verify(slot)) {
      std::fprintf(stderr, "churn: thread %u: object corrupted at exit (seed %" PRIu64 ")\n",
                   thread_index, seed);
      result->ok = false;
      return;
    }
    checksum = mix(checksum, slot.tag ^ slot.size);
    std::free(slot.bytes);
  }
  result->checksum = checksum;
}

std::uint64_t arg_or(int argc, char** argv, int index, std::uint64_t fallback) {
  return argc > index ? std::strtoull(argv[index], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned threads = static_cast<unsigned>(arg_or(argc, argv, 1, 2));
  const std::uint64_t iterations = arg_or(argc, argv, 2, 15000000);
  const std::uint64_t seed = arg_or(argc, argv, 3, 1);
  if (threads == 0) {
    std::fprintf(stderr, "usage: churn [threads>=1] [iterations] [seed]\n");
    return 2;
  }
  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t)
    workers.emplace_back(churn_thread, t, iterations, seed, &results[t]);
  for (auto& worker : workers) worker.join();
  std::uint64_t checksum = 0;
  for (const ThreadResult& r : results) {
    if (!r.ok) return 1;
    checksum = mix(checksum, r.checksum);
  }
  std::printf("churn threads=%u iterations=%" PRIu64 " seed=%" PRIu64 " checksum=%016" PRIx64 "\n",
              threads, iterations, seed, checksum);
  return 0;
}
