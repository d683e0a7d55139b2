// tests/support/runtime_fixture.hpp — a GoogleTest fixture that starts usgc's goroutine runtime
// for one test and stops it after, plus helpers to run a lambda as the main goroutine.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {

inline usgc_config runtime_config(uint32_t procs) {
  usgc_config config;
  EXPECT_EQ(usgc_config_from_environment(&config), 0);
  config.procs = procs;
  return config;
}

// Runs f() as the main goroutine and waits for it.
inline void run_main(const std::function<void()>& f) {
  auto trampoline = [](void* argument) { (*static_cast<const std::function<void()>*>(argument))(); };
  ASSERT_EQ(usgc_run_main(trampoline, const_cast<std::function<void()>*>(&f)), 0);
}

// Starts f() as a goroutine; f is moved to the heap and freed when it returns.
inline void go(std::function<void()> f) {
  auto* heap_function = new std::function<void()>(std::move(f));
  auto trampoline = [](void* argument) {
    auto* function = static_cast<std::function<void()>*>(argument);
    (*function)();
    delete function;
  };
  ASSERT_EQ(usgc_go(trampoline, heap_function, nullptr), 0);
}

// Waits (polling, from any thread or goroutine) until predicate() or the deadline; true if it held.
inline bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (usgc_goroutine_self() != 0) {
      usgc_yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return true;
}

// Waits until every goroutine has finished (shutdown refuses while any lives).
inline bool all_goroutines_finished() {
  return eventually([] { return usgc_goroutine_count() == 0; });
}

class RuntimeTest : public ::testing::Test {
 protected:
  virtual uint32_t procs() const { return 2; }
  void SetUp() override {
    usgc_config config = runtime_config(procs());
    ASSERT_EQ(usgc_init(&config), 0);
  }
  void TearDown() override {
    EXPECT_TRUE(all_goroutines_finished()) << usgc_goroutine_count() << " goroutines still alive";
    EXPECT_EQ(usgc_shutdown(), 0);
  }
};

}  // namespace usgc::testing
