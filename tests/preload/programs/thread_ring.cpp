// thread_ring: a ring of threads where every block is freed by the next thread in the ring, a
// plain program run under LD_PRELOAD.
//
// Stresses remote frees with no thread that only allocates or only frees: thread i allocates a
// batch of objects of random size (mostly 16..1024 bytes, about 1 in 64 up to 8 KiB), fills them,
// and hands the batch to thread i+1 (mod N) through a bounded mailbox; it then takes the batch
// thread i-1 made, checks and frees every object in it. So each thread frees as many blocks as it
// allocates, and every free is a remote free into the previous thread's heap.
// No deadlock: a thread pushes at most one batch more than it popped, so a ring of mailboxes
// holding kMailboxBatches >= 2 each is never full everywhere at once.
// The checksum is a sum of per-object hashes (commutative) over the objects freed; the run fails
// unless it equals the sum over the objects allocated, and it depends only on the arguments.
//
// Usage: thread_ring [threads=2] [rounds=20000] [batch_objects=256] [seed=1]
// Output: "thread_ring ... objects=N checksum=<hex>"; exit 1 on a content mismatch.
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "xorshift.hpp"

namespace {

constexpr std::size_t kMailboxBatches = 4;

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

// A bounded single-producer single-consumer queue of batches (mutex + condition variables).
class Mailbox {
 public:
  void push(void** batch) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return batches_.size() < kMailboxBatches; });
    batches_.push_back(batch);
    not_empty_.notify_one();
  }
  void** pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !batches_.empty(); });
    void** batch = batches_.front();
    batches_.pop_front();
    not_full_.notify_one();
    return batch;
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<void**> batches_;  // guarded by mutex_
};

std::size_t random_size(Xorshift64& rng) {
  const std::uint64_t r = rng.next();
  if (r % 64 == 0) return 1025 + (r >> 16) % (8 * 1024 - 1024);
  return 16 + (r >> 16) % 1009;  // 16..1024
}

struct ThreadResult {
  std::uint64_t allocated_hash = 0;
  std::uint64_t freed_hash = 0;
  std::uint64_t objects_freed = 0;
  bool ok = true;
};

void ring_thread(unsigned index, std::uint64_t rounds, std::size_t batch_objects,
                 std::uint64_t seed, Mailbox* inbox, Mailbox* outbox, ThreadResult* result) {
  Xorshift64 rng(seed * 7919ull + index);
  for (std::uint64_t round = 0; round < rounds; ++round) {
    auto** batch = static_cast<void**>(std::malloc(batch_objects * sizeof(void*)));
    if (batch == nullptr) std::abort();
    for (std::size_t i = 0; i < batch_objects; ++i) {
      const std::size_t size = random_size(rng);
      auto* bytes = static_cast<unsigned char*>(std::malloc(size));
      if (bytes == nullptr) {
        std::fprintf(stderr, "thread_ring: malloc(%zu) failed\n", size);
        std::abort();
      }
      const ObjectHeader header{rng.next(), size};
      std::memset(bytes + sizeof header, static_cast<int>(header.tag & 0xff), size - sizeof header);
      std::memcpy(bytes, &header, sizeof header);
      result->allocated_hash += object_hash(header.tag, header.size);
      batch[i] = bytes;
    }
    outbox->push(batch);
    void** received = inbox->pop();
    for (std::size_t i = 0; i < batch_objects; ++i) {
      auto* bytes = static_cast<unsigned char*>(received[i]);
      ObjectHeader header;
      std::memcpy(&header, bytes, sizeof header);
      const unsigned char pattern = static_cast<unsigned char>(header.tag & 0xff);
      if (header.size < sizeof header || header.size > 8 * 1024 ||
          (header.size > sizeof header &&
           (bytes[header.size - 1] != pattern || bytes[sizeof header] != pattern))) {
        std::fprintf(stderr, "thread_ring: object %p corrupted (seed %" PRIu64 ")\n",
                     static_cast<void*>(bytes), seed);
        result->ok = false;
      }
      result->freed_hash += object_hash(header.tag, header.size);
      result->objects_freed += 1;
      std::free(bytes);
    }
    std::free(received);
  }
}

std::uint64_t arg_or(int argc, char** argv, int index, std::uint64_t fallback) {
  return argc > index ? std::strtoull(argv[index], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned threads = static_cast<unsigned>(arg_or(argc, argv, 1, 2));
  const std::uint64_t rounds = arg_or(argc, argv, 2, 20000);
  const std::size_t batch_objects = static_cast<std::size_t>(arg_or(argc, argv, 3, 256));
  const std::uint64_t seed = arg_or(argc, argv, 4, 1);
  if (threads < 2 || batch_objects == 0) {
    std::fprintf(stderr, "usage: thread_ring [threads>=2] [rounds] [batch_objects>=1] [seed]\n");
    return 2;
  }
  std::vector<Mailbox> mailboxes(threads);
  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> ring;
  for (unsigned i = 0; i < threads; ++i) {
    ring.emplace_back(ring_thread, i, rounds, batch_objects, seed, &mailboxes[i],
                      &mailboxes[(i + 1) % threads], &results[i]);
  }
  for (auto& t : ring) t.join();
  std::uint64_t allocated = 0, freed = 0, objects = 0;
  bool ok = true;
  for (const ThreadResult& r : results) {
    allocated += r.allocated_hash;
    freed += r.freed_hash;
    objects += r.objects_freed;
    ok = ok && r.ok;
  }
  if (!ok || allocated != freed) return 1;
  std::printf("thread_ring threads=%u rounds=%" PRIu64 " seed=%" PRIu64 " objects=%" PRIu64
              " checksum=%016" PRIx64 "\n",
              threads, rounds, seed, objects, freed);
  return objects == threads * rounds * batch_objects ? 0 : 1;
}
