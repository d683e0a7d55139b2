// jitgen/interpreter/channel_ops.cpp — blocking channel operations that the stop protocol can
// interrupt (channel_ops.hpp).
#include "jitgen/interpreter/channel_ops.hpp"

#include <cerrno>

namespace usgc::jitgen::interpreter {
namespace {

// Counts the calling goroutine as blocked for the deadlock watchdog while it lives.
class BlockedScope {
 public:
  explicit BlockedScope(RunState& run) : run_(run) {
    run_.blocked_goroutines.fetch_add(1, std::memory_order_relaxed);
  }
  ~BlockedScope() { run_.blocked_goroutines.fetch_sub(1, std::memory_order_relaxed); }
  BlockedScope(const BlockedScope&) = delete;
  BlockedScope& operator=(const BlockedScope&) = delete;

 private:
  RunState& run_;
};

// Waits on `*operation` (forever when its channel is nil) until it proceeds or the run stops;
// the operation's received_ok is filled in. Returns the select's status; *stopped when the stop
// channel's case won.
int wait_for(RunState& run, usgc_select_case* operation, bool* stopped) {
  BlockedScope blocked(run);
  usgc_select_case cases[2] = {*operation, {run.stop_channel, USGC_SELECT_RECV, nullptr, false}};
  size_t chosen = 0;
  int status = usgc_select(cases, 2, /*block=*/true, &chosen);
  *stopped = chosen == 1;
  *operation = cases[0];
  return status;
}

ChannelOutcome finish(RunState& run, int status, bool stopped, int* error) {
  if (stopped || run.is_stopping()) return ChannelOutcome::kStopped;
  if (status == EPIPE) return ChannelOutcome::kClosed;
  if (status != 0) {
    *error = status;
    return ChannelOutcome::kFailed;
  }
  run.channel_progress.fetch_add(1, std::memory_order_relaxed);
  return ChannelOutcome::kDone;
}

}  // namespace

ChannelOutcome channel_send(RunState& run, usgc_chan* channel, const void* elem, int* error) {
  if (run.is_stopping()) return ChannelOutcome::kStopped;
  if (channel != nullptr) {
    int status = usgc_chan_try_send(channel, elem);
    if (status != EAGAIN) return finish(run, status, false, error);
  }
  usgc_select_case operation = {channel, USGC_SELECT_SEND, const_cast<void*>(elem), false};
  bool stopped = false;
  int status = wait_for(run, &operation, &stopped);
  return finish(run, status, stopped, error);
}

ChannelOutcome channel_receive(RunState& run, usgc_chan* channel, void* elem, bool* ok,
                               int* error) {
  if (run.is_stopping()) return ChannelOutcome::kStopped;
  if (channel != nullptr) {
    int status = usgc_chan_try_recv(channel, elem, ok);
    if (status != EAGAIN) return finish(run, status, false, error);
  }
  usgc_select_case operation = {channel, USGC_SELECT_RECV, elem, false};
  bool stopped = false;
  int status = wait_for(run, &operation, &stopped);
  *ok = operation.received_ok;
  return finish(run, status, stopped, error);
}

}  // namespace usgc::jitgen::interpreter
