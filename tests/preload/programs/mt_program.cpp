// mt_program: a multi-threaded C++ program of our own, run under LD_PRELOAD by the preload tests.
//
// Stresses C++ allocation through operator new/delete as real programs use it: builder threads
// make "documents" out of std::string, std::vector, std::map and std::unordered_map, plus
// over-aligned objects (alignas(64): the aligned operator new, single and array forms, and
// std::vector of an over-aligned type); they hand each document to indexer threads through a
// bounded queue, so its nodes are freed by another thread (remote frees). Indexers reduce a
// document to a summary (new strings and maps) and hand it to the main thread, which merges the
// summaries. Each document's content depends only on its id and the seed, and merging is a sum,
// so the printed result depends only on the arguments. Every over-aligned object's address is
// checked.
//
// Usage: mt_program [builders=2] [indexers=2] [documents=3000] [seed=1]
// Output: a few lines of totals and a checksum; exit 1 on a misaligned object or bad content.
#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "xorshift.hpp"

namespace {

std::atomic<bool> g_failed{false};

void fail(const char* what, const void* where) {
  std::fprintf(stderr, "mt_program: %s (%p)\n", what, where);
  g_failed.store(true, std::memory_order_relaxed);
}

// Over-aligned: operator new(size_t, align_val_t) is used for it.
struct alignas(64) CacheLine {
  std::uint64_t words[8];
};

template <class T>
void check_aligned(const T* p) {
  if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
    fail("over-aligned object misaligned", p);
}

struct Document {
  std::uint64_t id = 0;
  std::vector<std::string> words;
  std::map<std::string, std::vector<std::uint32_t>> positions;  // word -> positions
  std::unordered_map<std::uint32_t, std::string> by_position;
  std::unique_ptr<CacheLine> header;
  std::unique_ptr<CacheLine[]> lines;
  std::size_t line_count = 0;
  std::vector<CacheLine> more_lines;
};

struct Summary {
  std::map<std::string, std::uint64_t> word_counts;
  std::uint64_t longest_word = 0;
  std::uint64_t line_sum = 0;
  std::uint64_t documents = 0;
};

std::string make_word(Xorshift64& rng) {
  // A small vocabulary (so maps have repeated keys) with some long words (heap-allocated strings).
  const std::uint64_t r = rng.next();
  std::string word = "w" + std::to_string(r % 997);
  if (r % 13 == 0) word.append(40 + (r >> 20) % 200, static_cast<char>('a' + r % 26));
  return word;
}

std::unique_ptr<Document> build_document(std::uint64_t id, std::uint64_t seed) {
  Xorshift64 rng(seed * 1000003ull + id);
  auto doc = std::make_unique<Document>();
  doc->id = id;
  const std::size_t word_count = 100 + rng.next() % 400;
  for (std::size_t i = 0; i < word_count; ++i) {
    doc->words.push_back(make_word(rng));
    doc->positions[doc->words.back()].push_back(static_cast<std::uint32_t>(i));
    doc->by_position.emplace(static_cast<std::uint32_t>(i), doc->words.back());
  }
  doc->header = std::make_unique<CacheLine>();
  check_aligned(doc->header.get());
  for (int i = 0; i < 8; ++i) doc->header->words[i] = id * 8 + i;
  doc->line_count = 1 + rng.next() % 32;
  doc->lines.reset(new CacheLine[doc->line_count]);
  check_aligned(doc->lines.get());
  for (std::size_t i = 0; i < doc->line_count; ++i)
    for (int j = 0; j < 8; ++j) doc->lines[i].words[j] = id + i * j;
  const std::size_t more = rng.next() % 48;
  for (std::size_t i = 0; i < more; ++i) {
    doc->more_lines.push_back(CacheLine{{id, i, 0, 0, 0, 0, 0, 1}});
    check_aligned(doc->more_lines.data());
  }
  return doc;
}

std::unique_ptr<Summary> index_document(const Document& doc) {
  auto summary = std::make_unique<Summary>();
  summary->documents = 1;
  for (const auto& [word, where] : doc.positions) {
    summary->word_counts[word.substr(0, 8)] += where.size();
    for (std::uint32_t pos : where) {
      auto it = doc.by_position.find(pos);
      if (it == doc.by_position.end() || it->second != word)
        fail("document position map inconsistent", &doc);
    }
    if (word.size() > summary->longest_word) summary->longest_word = word.size();
  }
  check_aligned(doc.header.get());
  if (doc.header->words[7] != doc.id * 8 + 7) fail("document header corrupted", doc.header.get());
  for (std::size_t i = 0; i < doc.line_count; ++i) summary->line_sum += doc.lines[i].words[7];
  for (const CacheLine& line : doc.more_lines) summary->line_sum += line.words[1] + line.words[7];
  return summary;
}

// A bounded multi-producer multi-consumer queue; pop() returns nullopt once closed and empty.
template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}
  void push(T item) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    not_empty_.notify_one();
  }
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;  // guarded by mutex_
  bool closed_ = false;  // guarded by mutex_
};

std::uint64_t arg_or(int argc, char** argv, int index, std::uint64_t fallback) {
  return argc > index ? std::strtoull(argv[index], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned builders = static_cast<unsigned>(arg_or(argc, argv, 1, 2));
  const unsigned indexers = static_cast<unsigned>(arg_or(argc, argv, 2, 2));
  const std::uint64_t documents = arg_or(argc, argv, 3, 3000);
  const std::uint64_t seed = arg_or(argc, argv, 4, 1);
  if (builders == 0 || indexers == 0) {
    std::fprintf(stderr, "usage: mt_program [builders>=1] [indexers>=1] [documents] [seed]\n");
    return 2;
  }

  BoundedQueue<std::unique_ptr<Document>> built(16);
  BoundedQueue<std::unique_ptr<Summary>> indexed(16);
  std::atomic<std::uint64_t> next_id{0};

  std::vector<std::thread> builder_threads, indexer_threads;
  for (unsigned b = 0; b < builders; ++b)
    builder_threads.emplace_back([&] {
      for (;;) {
        const std::uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
        if (id >= documents) return;
        built.push(build_document(id, seed));
      }
    });
  for (unsigned i = 0; i < indexers; ++i)
    indexer_threads.emplace_back([&] {
      while (auto doc = built.pop()) {
        auto summary = index_document(**doc);
        doc->reset();  // the document's nodes are freed here, by a thread that did not allocate
                       // them
        indexed.push(std::move(summary));
      }
    });
  std::thread closer([&] {
    for (auto& t : builder_threads) t.join();
    built.close();
    for (auto& t : indexer_threads) t.join();
    indexed.close();
  });

  Summary total;
  while (auto summary = indexed.pop()) {
    for (const auto& [word, count] : (*summary)->word_counts) total.word_counts[word] += count;
    total.longest_word = std::max(total.longest_word, (*summary)->longest_word);
    total.line_sum += (*summary)->line_sum;
    total.documents += (*summary)->documents;
  }
  closer.join();
  if (g_failed.load()) return 1;

  std::uint64_t checksum = 0, words = 0;
  for (const auto& [word, count] : total.word_counts) {
    for (char c : word) checksum = checksum * 131 + static_cast<unsigned char>(c);
    checksum = checksum * 1000003 + count;
    words += count;
  }
  std::printf("mt_program builders=%u indexers=%u seed=%" PRIu64 "\n", builders, indexers, seed);
  std::printf("documents=%" PRIu64 " words=%" PRIu64 " distinct_prefixes=%zu longest_word=%" PRIu64
              "\n",
              total.documents, words, total.word_counts.size(), total.longest_word);
  std::printf("line_sum=%" PRIu64 " checksum=%016" PRIx64 "\n", total.line_sum, checksum);
  return total.documents == documents ? 0 : 1;
}
