// realloc_growth: realloc growth chains over mixed small and large objects, a plain program run
// under LD_PRELOAD.
//
// Stresses realloc: in-place growth versus move, the step from small size classes to large
// (directly mapped) objects and back when shrinking, and the memory kept by a mix of long-lived
// large blocks and short-lived small ones. Each round replaces one of kLiveChains chains by a new
// one, either
//   - a vector of 32-bit words grown by 1.5x per realloc up to a random capacity (mostly up to
//     256 KiB, about 1 in 8 up to 8 MiB), then shrunk to half, or
//   - a string appended a few bytes at a time, reallocating to the exact new length each time
//     (up to 128 KiB),
// while small objects (16..512 bytes) are allocated and freed in between to fragment the heap.
// After every realloc the whole old content is verified. Everything comes from a seeded xorshift
// generator, so the checksum depends only on the arguments.
//
// Usage: realloc_growth [rounds=1500] [seed=1]
// Output: "realloc_growth rounds=N seed=S checksum=<hex>"; exit 1 on a content mismatch.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "xorshift.hpp"

namespace {

constexpr std::size_t kLiveChains = 48;
constexpr std::size_t kSmallSlots = 4096;

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  return h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
}

[[noreturn]] void corrupted(const char* what, std::uint64_t chain_id, std::size_t index,
                            std::uint64_t seed) {
  std::fprintf(
      stderr, "realloc_growth: %s of chain %" PRIu64 " corrupted at index %zu (seed %" PRIu64 ")\n",
      what, chain_id, index, seed);
  std::exit(1);
}

void* checked_realloc(void* p, std::size_t bytes) {
  void* q = std::realloc(p, bytes);
  if (q == nullptr) {
    std::fprintf(stderr, "realloc_growth: realloc(%zu) failed\n", bytes);
    std::exit(1);
  }
  return q;
}

std::uint32_t word_value(std::uint64_t chain_id, std::size_t index) {
  return static_cast<std::uint32_t>(chain_id * 2654435761u) ^
         static_cast<std::uint32_t>(index * 40503u);
}

char string_value(std::uint64_t chain_id, std::size_t index) {
  return static_cast<char>('a' + (chain_id + index * 7) % 26);
}

struct Chain {
  void* bytes = nullptr;
  std::size_t length = 0;  // in words (vector) or chars (string)
  bool is_string = false;
  std::uint64_t id = 0;
};

struct Program {
  Xorshift64 rng;
  std::uint64_t seed;
  std::vector<void*> small;  // small objects churned between reallocs

  void churn_small(unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
      void*& slot = small[rng.next() % kSmallSlots];
      std::free(slot);
      const std::size_t size = 16 + rng.next() % 497;
      slot = std::malloc(size);
      if (slot == nullptr) std::exit(1);
      std::memset(slot, 0x5a, size);
    }
  }

  void verify_words(const Chain& c, std::size_t words) const {
    const auto* w = static_cast<const std::uint32_t*>(c.bytes);
    for (std::size_t i = 0; i < words; ++i)
      if (w[i] != word_value(c.id, i)) corrupted("vector", c.id, i, seed);
  }

  void verify_chars(const Chain& c) const {
    const auto* s = static_cast<const char*>(c.bytes);
    for (std::size_t i = 0; i < c.length; ++i)
      if (s[i] != string_value(c.id, i)) corrupted("string", c.id, i, seed);
    if (s[c.length] != '\0') corrupted("string terminator", c.id, c.length, seed);
  }

  Chain grow_vector(std::uint64_t id) {
    Chain c;
    c.id = id;
    const std::uint64_t r = rng.next();
    const std::size_t max_bytes = (r % 8 == 0)
                                      ? 256 * 1024 + (r >> 8) % (8 * 1024 * 1024 - 256 * 1024)
                                      : 64 + (r >> 8) % (256 * 1024);
    std::size_t capacity = 4;
    c.bytes = checked_realloc(nullptr, capacity * sizeof(std::uint32_t));
    for (;;) {
      auto* w = static_cast<std::uint32_t*>(c.bytes);
      for (std::size_t i = c.length; i < capacity; ++i) w[i] = word_value(id, i);
      c.length = capacity;
      const std::size_t next_capacity = capacity + capacity / 2;
      if (next_capacity * sizeof(std::uint32_t) > max_bytes) break;
      c.bytes = checked_realloc(c.bytes, next_capacity * sizeof(std::uint32_t));
      verify_words(c, c.length);
      capacity = next_capacity;
      churn_small(2);
    }
    // Shrink to half: the allocator may move the block to a smaller class.
    c.length /= 2;
    c.bytes = checked_realloc(c.bytes, (c.length > 0 ? c.length : 1) * sizeof(std::uint32_t));
    verify_words(c, c.length);
    return c;
  }

  Chain grow_string(std::uint64_t id) {
    Chain c;
    c.id = id;
    c.is_string = true;
    const std::size_t target = 16 + rng.next() % (128 * 1024);
    c.bytes = checked_realloc(nullptr, 1);
    static_cast<char*>(c.bytes)[0] = '\0';
    while (c.length < target) {
      const std::size_t append = 1 + rng.next() % 200;
      c.bytes = checked_realloc(c.bytes, c.length + append + 1);
      // Verify only the tail written by the previous append plus the terminator: a full check per
      // append would be quadratic. The whole string is verified when the chain is retired.
      auto* s = static_cast<char*>(c.bytes);
      const std::size_t check_from = c.length > 256 ? c.length - 256 : 0;
      for (std::size_t i = check_from; i < c.length; ++i)
        if (s[i] != string_value(id, i)) corrupted("string", id, i, seed);
      for (std::size_t i = 0; i < append; ++i) s[c.length + i] = string_value(id, c.length + i);
      c.length += append;
      s[c.length] = '\0';
      if (rng.next() % 16 == 0) churn_small(1);
    }
    verify_chars(c);
    return c;
  }

  std::uint64_t retire(Chain& c) {
    if (c.bytes == nullptr) return 0;
    if (c.is_string)
      verify_chars(c);
    else
      verify_words(c, c.length);
    const std::uint64_t h = mix(c.id, c.length * 2 + (c.is_string ? 1 : 0));
    std::free(c.bytes);
    c.bytes = nullptr;
    return h;
  }
};

std::uint64_t arg_or(int argc, char** argv, int index, std::uint64_t fallback) {
  return argc > index ? std::strtoull(argv[index], nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t rounds = arg_or(argc, argv, 1, 1500);
  const std::uint64_t seed = arg_or(argc, argv, 2, 1);
  Program program{Xorshift64(seed), seed, std::vector<void*>(kSmallSlots, nullptr)};
  std::vector<Chain> live(kLiveChains);
  std::uint64_t checksum = 0;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    Chain& slot = live[program.rng.next() % kLiveChains];
    checksum = mix(checksum, program.retire(slot));
    slot = (program.rng.next() % 3 == 0) ? program.grow_string(round) : program.grow_vector(round);
  }
  for (Chain& c : live) checksum = mix(checksum, program.retire(c));
  for (void* p : program.small) std::free(p);
  std::printf("realloc_growth rounds=%" PRIu64 " seed=%" PRIu64 " checksum=%016" PRIx64 "\n",
              rounds, seed, checksum);
  return 0;
}
