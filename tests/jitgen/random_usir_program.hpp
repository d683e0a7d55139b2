// tests/jitgen/random_usir_program.hpp — a seeded generator of random, well-formed .usir programs
// (docs/usir.md) for the soundness test of the escape analysis (its "Soundness" check): every
// program it makes parses, verifies and runs to completion in checked mode unless a decision of
// the analysis (or the interpreter) is wrong, so a trap is a bug in them, never in the program.
//
// The generator writes TEXT, in the printer's canonical form (print(parse(text)) == text), so a
// failing seed prints a program that `usgc-escape --run` reproduces as it is.
//
// Invariants every program keeps (the generator's contract; random_usir_program.cpp says how):
//   * the termination invariant: every loop counts a frozen counter up to a constant (or to
//     `len` of an array), recursion passes a depth parameter that callers set to at most
//     kMaximumRecursionDepth and that every recursive call decreases, guarded by `gt %depth, 0`;
//     direct calls only go to later functions (the call graph is a DAG apart from recursion);
//     the estimated instruction count of a run is bounded (GeneratorOptions' budgets).
//   * the no-panic invariant: a field is loaded or stored only through a reference known to be
//     non-null (a fresh allocation, a parameter callers always fill, or a value guarded by
//     `ne %v, null`); an index is a constant below the array's known length or a counter below
//     `len`; `div`/`rem` divide by non-zero constants; `close` is done once, by the only sender,
//     after its sends.
//   * the matched-traffic invariant: each `go` of a worker hands it a done channel it sends on
//     exactly once as its last act, and the spawner receives from it before leaving the scope of
//     the `go`; message channels carry exactly as many values as their receivers take, placed
//     at the top level of both sides (never under a branch), and a channel nobody receives from
//     concurrently has room for every send. So no run blocks forever.
//   * the channel-region rule (GeneratorOptions::allow_*): unless both options are set, objects
//     received from channels are confined — read, stored into (when the mode allows it) or
//     left alone, never stored into other objects, globals, calls or returns — and the
//     ChannelMode keeps a global object off the channels whenever received objects are stored
//     into. These are the two shapes of the channel-contents rule (see the options).
//   * the determinism invariant: the text depends on the seed and the options only (splitmix64,
//     ordered containers, no std::*_distribution).
#pragma once

#include <cstdint>
#include <string>

#include "tests/support/seeded_random.hpp"

namespace usgc::jitgen::random_usir {

// Callers pass recursive functions a depth of at most this; each activation recurses on depth-1.
inline constexpr uint32_t kMaximumRecursionDepth = 3;

// The tests' splitmix64 (tests/support/seeded_random.hpp): deterministic, the same on every
// platform and standard library (unlike std::uniform_int_distribution), with the generator's
// choices on top.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : random_(seed) {}
  uint64_t next() { return random_.next(); }
  uint32_t below(uint32_t bound) { return bound == 0 ? 0 : static_cast<uint32_t>(next() % bound); }
  uint32_t between(uint32_t low, uint32_t high) { return low + below(high - low + 1); }
  bool percent(uint32_t chance) { return below(100) < chance; }

 private:
  usgc::testing::Random random_;
};

// How a program uses its message channels (the channel-region rule).
enum class ChannelMode : uint8_t {
  kUnrestricted,        // both allow_* options: received objects are ordinary values
  kFreshSends,          // only fresh message objects are sent; receivers store into them
  kReadOnlyReceives,    // any object is sent; receivers only read what they receive
  kStoresIntoReceived,  // allow_global_on_channels: any object is sent and stored into
};
const char* channel_mode_name(ChannelMode mode);

struct GeneratorOptions {
  uint32_t max_helpers = 7;     // functions besides main (at least 2)
  uint32_t max_statements = 9;  // statements at the top level of a body
  uint32_t max_nesting = 3;     // loops and branches inside each other
  uint32_t max_loop_trips = 3;  // constant trip count of a counted loop
  // Estimated instructions executed (goroutines included) by main's run, and by one call of a
  // helper; the generator stops adding calls and loops when a body would exceed its budget.
  uint64_t main_step_budget = 5000;
  uint64_t helper_step_budget = 1200;
  // The two shapes of the channel-contents rule (jitgen/escape/channel_world.hpp), bugs this
  // generator found and the analysis now handles: a GLOBAL object sent on a channel of a program
  // that stores into received objects (class-order/store before the fix); and a received object
  // made reachable from a global (stored into a global or a global object, passed to unknown
  // code) although it was decided shared when sent (publish/global). false keeps them out.
  bool allow_global_on_channels = true;
  bool allow_received_published_globally = true;
};

struct RandomUsirProgram {
  uint64_t seed = 0;
  std::string file_name;  // "random-<seed>.usir": the analysis' positions name it
  std::string text;       // canonical .usir
  ChannelMode channel_mode = ChannelMode::kFreshSends;
};

RandomUsirProgram generate_random_program(uint64_t seed, const GeneratorOptions& options = {});

}  // namespace usgc::jitgen::random_usir
