// jitgen/interpreter/decision_checks.hpp — checked mode: the run-time proof obligations of the
// escape analysis' decisions (jitgen/escape/analysis.hpp). Each function returns the violation
// it found, or nullopt; the executor calls them at the points below and stops the run on the
// first one (run_state.hpp). The rules, by the fact each one checks:
//   frame-escape/return  a STACK_LOCAL object is returned by the frame that allocated it;
//   frame-escape/store   a STACK_LOCAL object is stored into a heap object, or into a
//                        STACK_LOCAL object of an older frame (which outlives it);
//   class-order/store    an object of class C is stored into one of class T > C with
//                        T >= GOROUTINE_PRIVATE (the propagation rule: what a shared object
//                        reaches is shared, what a global one reaches is global);
//   publish/send, publish/spawn, publish/global, publish/unknown
//                        a value sent on a channel, passed to or captured by a `go`, stored into
//                        a global, passed to unknown code, is below the class that implies
//                        (shared, shared, global, global);
//   owner/foreign        any use of a STACK_LOCAL or GOROUTINE_PRIVATE object by a goroutine
//                        other than its owner (the header's owner half is not the running
//                        goroutine's heap id);
//   frame/dead           any use of a STACK_LOCAL object whose frame has returned;
//   header/published     any use of an object decided below GOROUTINE_SHARED that the runtime
//                        published (its header's published bit; a backstop: the publish rules
//                        fire first).
// Why this is complete for the interpreter's semantics: a reference leaves its frame only by
// `ret`, a store into an object, a global, a channel, a `go` or unknown code, and reaches
// another goroutine only through the last four or through an object those reach; each of these
// is a check above, and the class-order rule keeps "nothing shared refers to anything private"
// true along every chain, so checking the stored or published value itself is enough.
//
// The check word (program_layout.hpp) of a STACK_LOCAL object holds the frame that allocated it:
// (depth << 32) | serial, where the goroutine's live frame at `depth` has serial `serial` iff
// that frame is still live. Dynamic arrays have no check word: the analysis never makes them
// STACK_LOCAL (their size is not bounded), and for them the frame checks are skipped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jitgen/interpreter/run_state.hpp"

namespace usgc::jitgen::interpreter {

// The running goroutine's live frames: serials[d] is the serial of the frame at depth d.
struct LiveFrames {
  std::vector<uint32_t> serials;
  uint32_t next_serial = 1;
};

inline uint64_t frame_stamp(uint32_t depth, uint32_t serial) {
  return (uint64_t{depth} << 32) | serial;
}

// What an instruction did with a value, for messages ("sent on the channel %c").
struct CheckContext {
  const RunState& run;
  const LiveFrames& frames;
  const ir::Instruction& instruction;
  const std::string& function_name;
};

std::optional<CheckViolation> check_access(const CheckContext& context, void* object);
std::optional<CheckViolation> check_store(const CheckContext& context, void* target, void* value);
std::optional<CheckViolation> check_return(const CheckContext& context, void* value,
                                           uint32_t frame_depth);
// `required`: GoroutineShared (send, spawn) or GlobalShared (global, unknown); `rule` and
// `what` name the publication ("publish/send", "it is sent on the channel %c").
std::optional<CheckViolation> check_publish(const CheckContext& context, void* value,
                                            escape::OwnershipClass required, const char* rule,
                                            const std::string& what);

}  // namespace usgc::jitgen::interpreter
