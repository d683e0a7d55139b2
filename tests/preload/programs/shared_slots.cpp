// shared_slots: short-lived threads swapping random slots of a shared array (Larson's "server
// simulation"), a plain program run under LD_PRELOAD.
//
// A shared array of `slots` pointers starts filled by the main thread. Then `waves` times,
// `threads` threads are started; each does `operations` steps: pick a random slot, allocate a new
// object of random size (mostly 16..512 bytes, about 1 in 64 up to 4 KiB), exchange it into the
// slot, check the old object's contents and free it; then the thread exits and the next wave
// replaces it. So most frees are of blocks another thread (often an exited one) allocated, and
// thread heaps are handed over all the time. At the end the main thread frees what is left.
// Which thread frees which object depends on the schedule, but the sums do not: the run fails
// unless the sum of hashes over the objects freed equals the sum over those allocated, and it
// prints that sum, which depends only on the arguments.
//
// Usage: shared_slots [threads=2] [waves=200] [operations=20000] [slots=20000] [seed=1]
// Output: "shared_slots ... objects=N checksum=<hex>"; exit 1 on a content mismatch.
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "xorshift.hpp"

namespace {

struct ObjectHeader {
  std::uint64_t tag;
  std::uint64_t size;
};

std::uint64_t object_hash(std::uint64_t tag, std::uint64_t size) {
  std::uint64_t h = tag ^ (size * 0xff51afd7ed558ccdull);
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

std::size_t random_size(Xorshift64& rng) {
  const std::uint64_t r = rng.next();
  if (r % 64 == 0) return 513 + (r >> 16) % (4 * 1024 - 512);
  return 16 + (r >> 16) % 497;  // 16..512
}

std::atomic<bool> g_failed{false};

void* make_object(Xorshift64& rng, std::uint64_t* allocated_hash) {
  const std::size_t size = random_size(rng);
  auto* bytes = static_cast<unsigned char*>(std::malloc(size));
  if (bytes == nullptr) {
    std::fprintf(stderr, "shared_slots: malloc(%zu) failed\n", size);
    std::abort();
  }
  const ObjectHeader header{rng.next(), size};
  std::memset(bytes + sizeof header, static_cast<int>(header.tag & 0xff), size - sizeof header);
  std::memcpy(bytes, &header, sizeof header);
  *allocated_hash += object_hash(header.tag, header.size);
  return bytes;
}

void check_and_free(void* object, std::uint64_t* freed_hash) {
  auto* bytes = static_cast<unsigned char*>(object);
  ObjectHeader header;
  std::memcpy(&header, bytes, sizeof header);
  const unsigned char pattern = static_cast<unsigned char>(header.tag & 0xff);
  if (header.size < sizeof header || header.size > 4 * 1024 ||
      (header.size > sizeof header &&
       (bytes[header.size - 1] != pattern || bytes[sizeof header] != pattern))) {
    std::fprintf(stderr, "shared_slots: object %p corrupted\n", object);
    g_failed.store(true, std::memory_order_relaxed);
  }
  *freed_hash += object_hash(header.tag, header.size);
  std::free(object);
}

struct Totals {
  std::uint64_t allocated_hash = 0;
  std::uint64_t freed_hash = 0;
};

void worker(std::atomic<void*>* slots, std::size_t slot_count, std::uint64_t operations,
            std::uint64_t seed, Totals* totals) {
  Xorshift64 rng(seed);
  for (std::uint64_t i = 0; i < operations; ++i) {
    const std::size_t slot = static_cast<std::size_t>(rng.next() % slot_count);
    void* fresh = make_object(rng, &totals->allocated_hash);
    // acq_rel: the object we take was filled by the thread that stored it (release).
    void* old = slots[slot].exchange(fresh, std::memory_order_acq_rel);
    check_and_free(old, &totals->freed_hash);
  }
}

std::uint64_t arg_or(int argc, char** argv, int index, std::uint64_t fallback) {
  return argc > index ? std::strtoull(argv[index], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned threads = static_cast<unsigned>(arg_or(argc, argv, 1, 2));
  const std::uint64_t waves = arg_or(argc, argv, 2, 200);
  const std::uint64_t operations = arg_or(argc, argv, 3, 20000);
  const std::size_t slot_count = static_cast<std::size_t>(arg_or(argc, argv, 4, 20000));
  const std::uint64_t seed = arg_or(argc, argv, 5, 1);
  if (threads == 0 || slot_count == 0) {
    std::fprintf(stderr,
                 "usage: shared_slots [threads>=1] [waves] [operations] [slots>=1] [seed]\n");
    return 2;
  }
  std::vector<std::atomic<void*>> slots(slot_count);
  Totals main_totals;
  Xorshift64 main_rng(seed);
  for (auto& slot : slots)
    slot.store(make_object(main_rng, &main_totals.allocated_hash), std::memory_order_relaxed);
  std::vector<Totals> totals(threads * waves);
  for (std::uint64_t wave = 0; wave < waves; ++wave) {
    std::vector<std::thread> wave_threads;
    for (unsigned t = 0; t < threads; ++t) {
      const std::uint64_t index = wave * threads + t;
      wave_threads.emplace_back(worker, slots.data(), slot_count, operations,
                                seed * 1000003ull + index + 1, &totals[index]);
    }
    for (auto& thread : wave_threads) thread.join();
  }
  for (auto& slot : slots)
    check_and_free(slot.load(std::memory_order_relaxed), &main_totals.freed_hash);
  std::uint64_t allocated = main_totals.allocated_hash, freed = main_totals.freed_hash;
  for (const Totals& t : totals) {
    allocated += t.allocated_hash;
    freed += t.freed_hash;
  }
  if (g_failed.load() || allocated != freed) return 1;
  std::printf("shared_slots threads=%u waves=%" PRIu64 " operations=%" PRIu64 " seed=%" PRIu64
              " objects=%" PRIu64 " checksum=%016" PRIx64 "\n",
              threads, waves, operations, seed, threads * waves * operations + slot_count, freed);
  return 0;
}
