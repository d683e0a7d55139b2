// jitgen/interpreter/channel_ops.hpp — `send`, `recv` and `close` of the interpreter on usgc
// channels, with Go's semantics and the run's stop protocol (run_state.hpp).
//
// A blocking operation first tries the non-blocking form; only when that would block does it
// count itself in `blocked_goroutines` and wait in a usgc_select over {the operation, a receive
// from the stop channel}, so stop() wakes it. A nil channel is a select over the stop channel
// alone: Go's "block forever", which the deadlock watchdog sees. Each completed operation adds
// one to `channel_progress`.
// Elements: reference channels (usgc_chan_make_refs) carry void*, published by the runtime when
// offered; `elem` must then be a root slot (a frame slot). Scalar channels carry int64_t.
#pragma once

#include "jitgen/interpreter/run_state.hpp"

namespace usgc::jitgen::interpreter {

enum class ChannelOutcome : uint8_t {
  kDone,     // sent / received (or a closed channel's zero value, *ok false)
  kClosed,   // send on a closed channel (EPIPE)
  kStopped,  // the run is stopping; nothing happened
  kFailed,   // another usgc error (errno-style code in *error)
};

ChannelOutcome channel_send(RunState& run, usgc_chan* channel, const void* elem, int* error);
ChannelOutcome channel_receive(RunState& run, usgc_chan* channel, void* elem, bool* ok, int* error);

// The usgc channel behind a channel wrapper object (program_layout.hpp: word 0).
inline usgc_chan* channel_of_object(void* object) {
  return object == nullptr ? nullptr : *static_cast<usgc_chan**>(object);
}

}  // namespace usgc::jitgen::interpreter
