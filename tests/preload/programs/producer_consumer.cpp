// producer_consumer: producer threads allocate, consumer threads free, a plain program run under
// LD_PRELOAD.
//
// Stresses remote frees: every object is freed by a thread other than the one that allocated it.
// Producers fill objects of random size (mostly 16..1024 bytes, about 1 in 100 up to 16 KiB),
// collect them into batches of kBatchObjects pointers and push each batch through a bounded
// mutex/condition-variable queue (the batch array itself is allocated by the producer and freed by
// the consumer too); consumers check every object's contents, fold it into a checksum and free it.
// The bounded queue keeps the live set small, so memory reuse after remote frees matters.
// The checksum is a sum of per-object hashes (commutative), so it does not depend on which consumer
// got which batch: it depends only on the arguments.
//
// Usage: producer_consumer [producers=2] [consumers=2] [objects_per_producer=2000000] [seed=1]
// Output: "producer_consumer ... objects=N checksum=<hex>"; exit 1 on a content mismatch.
#include <atomic>
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

constexpr std::size_t kBatchObjects = 128;
constexpr std::size_t kQueueCapacityBatches = 32;

// Every object starts with this header; the rest is filled with a byte derived from the tag.
struct ObjectHeader {
  std::uint64_t tag;
  std::uint64_t size;
};

struct Batch {
  std::size_t count;
  void* objects[kBatchObjects];
};

std::uint64_t object_hash(std::uint64_t tag, std::uint64_t size) {
  std::uint64_t h = tag ^ (size * 0xff51afd7ed558ccdull);
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// A bounded multi-producer multi-consumer queue of batches. Closed when all producers are done.
class BatchQueue {
 public:
  void push(Batch* batch) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return batches_.size() < kQueueCapacityBatches; });
    batches_.push_back(batch);
    not_empty_.notify_one();
  }
  // Returns nullptr once the queue is closed and empty.
  Batch* pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !batches_.empty() || closed_; });
    if (batches_.empty()) return nullptr;
    Batch* batch = batches_.front();
    batches_.pop_front();
    not_full_.notify_one();
    return batch;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch*> batches_;  // guarded by mutex_
  bool closed_ = false;         // guarded by mutex_
};

std::size_t random_size(Xorshift64& rng) {
  const std::uint64_t r = rng.next();
  if (r % 100 == 0) return 1025 + (r >> 16) % (16 * 1024 - 1024);
  return 16 + (r >> 16) % 1009;  // 16..1024
}

void producer(unsigned index, std::uint64_t objects, std::uint64_t seed, BatchQueue* queue) {
  Xorshift64 rng(seed * 7919ull + index);
  Batch* batch = nullptr;
  for (std::uint64_t i = 0; i < objects; ++i) {
    if (batch == nullptr) {
      batch = static_cast<Batch*>(std::malloc(sizeof(Batch)));
      if (batch == nullptr) std::abort();
      batch->count = 0;
    }
    const std::size_t size = random_size(rng);
    auto* bytes = static_cast<unsigned char*>(std::malloc(size));
    if (bytes == nullptr) {
      std::fprintf(stderr, "producer_consumer: malloc(%zu) failed\n", size);
      std::abort();
    }
    const ObjectHeader header{rng.next(), size};
    std::memset(bytes + sizeof header, static_cast<int>(header.tag & 0xff), size - sizeof header);
    std::memcpy(bytes, &header, sizeof header);
    batch->objects[batch->count++] = bytes;
    if (batch->count == kBatchObjects) {
      queue->push(batch);
      batch = nullptr;
    }
  }
  if (batch != nullptr) queue->push(batch);
}

struct ConsumerResult {
  std::uint64_t checksum = 0;
  std::uint64_t objects = 0;
  bool ok = true;
};

void consumer(BatchQueue* queue, std::uint64_t seed, ConsumerResult* result) {
  while (Batch* batch = queue->pop()) {
    for (std::size_t i = 0; i < batch->count; ++i) {
      auto* bytes = static_cast<unsigned char*>(batch->objects[i]);
      ObjectHeader header;
      std::memcpy(&header, bytes, sizeof header);
      const unsigned char pattern = static_cast<unsigned char>(header.tag & 0xff);
      if (header.size < sizeof header || header.size > 16 * 1024 ||
          (header.size > sizeof header &&
           (bytes[header.size - 1] != pattern || bytes[sizeof header] != pattern))) {
        std::fprintf(stderr, "producer_consumer: object %p corrupted (seed %" PRIu64 ")\n",
                     static_cast<void*>(bytes), seed);
        result->ok = false;
      }
      result->checksum += object_hash(header.tag, header.size);
      result->objects += 1;
      std::free(bytes);
    }
    std::free(batch);
  }
}

std::uint64_t arg_or(int argc, char** argv, int index, std::uint64_t fallback) {
  return argc > index ? std::strtoull(argv[index], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned producers = static_cast<unsigned>(arg_or(argc, argv, 1, 2));
  const unsigned consumers = static_cast<unsigned>(arg_or(argc, argv, 2, 2));
  const std::uint64_t objects_per_producer = arg_or(argc, argv, 3, 2000000);
  const std::uint64_t seed = arg_or(argc, argv, 4, 1);
  if (producers == 0 || consumers == 0) {
    std::fprintf(
        stderr,
        "usage: producer_consumer [producers>=1] [consumers>=1] [objects_per_producer] [seed]\n");
    return 2;
  }
  BatchQueue queue;
  std::vector<ConsumerResult> results(consumers);
  std::vector<std::thread> consumer_threads, producer_threads;
  for (unsigned c = 0; c < consumers; ++c)
    consumer_threads.emplace_back(consumer, &queue, seed, &results[c]);
  for (unsigned p = 0; p < producers; ++p)
    producer_threads.emplace_back(producer, p, objects_per_producer, seed, &queue);
  for (auto& t : producer_threads) t.join();
  queue.close();
  for (auto& t : consumer_threads) t.join();
  std::uint64_t checksum = 0, objects = 0;
  bool ok = true;
  for (const ConsumerResult& r : results) {
    checksum += r.checksum;
    objects += r.objects;
    ok = ok && r.ok;
  }
  if (!ok) return 1;
  std::printf("producer_consumer producers=%u consumers=%u seed=%" PRIu64 " objects=%" PRIu64
              " checksum=%016" PRIx64 "\n",
              producers, consumers, seed, objects, checksum);
  return objects == producers * objects_per_producer ? 0 : 1;
}
