// tests/runtime/channel_test_support.hpp — white-box helpers of the channel and select tests:
// how many goroutines wait on a channel right now, so a test can wait until a goroutine is
// really blocked before it acts (the wake-up path is then what it exercises); select cases.
#pragma once

#include <cstddef>

#include "runtime/channel.hpp"
#include "usgc/runtime.h"

namespace usgc::testing {

inline size_t queued(usgc_chan* chan, bool senders) {
  auto* channel = usgc::runtime::channel_of(chan);
  channel->lock.lock();
  size_t n = 0;
  for (auto* w = senders ? channel->senders.first : channel->receivers.first; w != nullptr;
       w = w->next)
    ++n;
  channel->lock.unlock();
  return n;
}

inline void wait_until_queued(usgc_chan* chan, bool senders, size_t n) {
  while (queued(chan, senders) < n) usgc_sleep_ns(100000);
}

inline usgc_select_case recv_case(usgc_chan* chan, void* elem) {
  return usgc_select_case{chan, USGC_SELECT_RECV, elem, false};
}
inline usgc_select_case send_case(usgc_chan* chan, void* elem) {
  return usgc_select_case{chan, USGC_SELECT_SEND, elem, false};
}

}  // namespace usgc::testing
