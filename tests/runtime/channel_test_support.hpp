// tests/runtime/channel_test_support.hpp — white-box helpers of the channel and select tests:
// how many goroutines wait on a channel right now, so a test can wait until a goroutine is
// really blocked before it acts (the wake-up path is then what it exercises).
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

}  // namespace usgc::testing
