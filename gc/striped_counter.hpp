// gc/striped_counter.hpp — a statistics counter split into per-thread stripes, for the counters
// that every run refill writes (gc/gc_counters.hpp: bytes_in_use, objects_allocated).
//
// Why: a run refill (a goroutine's private run, a P's shared run) comes every ~100 objects, and it
// accounted the run in two process-wide atomics. With two Ps allocating, each such add found the
// line in the other core's cache: a cross-core transfer per refill on each P, ~1 M a second per P
// in the scaling benchmark (bench/gc_costs_scaling.hpp), on the path that is otherwise per-P. A
// striped counter gives each thread a line of its own (Linux's percpu_counter, the JVM's and
// folly's striped counters do the same); readers, which are rare (usgc_gc_get_stats, the
// statistics publisher, the heap-limit check does not read these), sum the stripes.
//
// Invariants:
//   - the counter's value is the sum of its stripes, modulo 2^64 (an add and a sub of the same
//     amount on different stripes cancel in the sum, so a level that subtracts on another thread
//     than it added, e.g. a collection freeing what a refill counted, stays exact);
//   - a thread writes only its own stripe (`counter_stripe_of_this_thread`, fixed for the thread's
//     life), with relaxed read-modify-writes: two threads may share a stripe (more threads than
//     stripes), which costs a shared line, never a lost update;
//   - a read sums every stripe with relaxed loads: it sees each stripe's value at some moment,
//     not all at one moment (the same guarantee the single atomic gave a reader beside writers:
//     no reader needs two counters, or two stripes, to agree).
// Hot path: none of the inline allocation fast paths; run refills (slow paths) and collections.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace usgc::gc {

inline constexpr size_t kCounterStripes = 16;
inline constexpr size_t kCounterStripeBytes = 64;  // a cache line: no two stripes share one

// The calling thread's stripe, assigned round-robin at its first counted update.
uint32_t assign_counter_stripe();
inline uint32_t counter_stripe_of_this_thread() {
  // Written once by its own thread; 0 means "not assigned yet", else stripe + 1.
  static thread_local uint32_t t_stripe_plus_one __attribute__((tls_model("initial-exec"))) = 0;
  if (t_stripe_plus_one == 0) [[unlikely]]
    t_stripe_plus_one = assign_counter_stripe() + 1;
  return t_stripe_plus_one - 1;
}

// The subset of std::atomic<uint64_t>'s interface the counters use (fetch_add, fetch_sub, load,
// store), so that count_add, read_counter and the tests treat both alike.
class StripedCounter {
 public:
  void fetch_add(uint64_t value, std::memory_order order = std::memory_order_relaxed) {
    stripes_[counter_stripe_of_this_thread()].value.fetch_add(value, order);
  }
  void fetch_sub(uint64_t value, std::memory_order order = std::memory_order_relaxed) {
    stripes_[counter_stripe_of_this_thread()].value.fetch_sub(value, order);
  }
  uint64_t load(std::memory_order order = std::memory_order_relaxed) const {
    uint64_t sum = 0;
    for (const Stripe& stripe : stripes_) sum += stripe.value.load(order);
    return sum;
  }
  // Stripe i's own value (tests: which line a thread's updates went to).
  uint64_t stripe_value(size_t i) const {
    return stripes_[i].value.load(std::memory_order_relaxed);
  }
  // Sets the sum (stripe 0 takes the value, the others 0): tests and resets, with no writer.
  void store(uint64_t value, std::memory_order order = std::memory_order_relaxed) {
    for (Stripe& stripe : stripes_) stripe.value.store(0, order);
    stripes_[0].value.store(value, order);
  }

 private:
  struct alignas(kCounterStripeBytes) Stripe {
    std::atomic<uint64_t> value{0};
  };
  Stripe stripes_[kCounterStripes];
};
static_assert(sizeof(StripedCounter) == kCounterStripes * kCounterStripeBytes);

}  // namespace usgc::gc
