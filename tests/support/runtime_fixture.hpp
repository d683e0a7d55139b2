// tests/support/runtime_fixture.hpp — a GoogleTest fixture that starts usgc's goroutine runtime
// for one test and stops it after (under a watchdog, so a lost wake-up aborts with the test's
// name instead of hanging the suite), and helpers to run lambdas as goroutines.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "tests/support/seeded_random.hpp"
#include "tests/support/time_limits.hpp"

#include "usgc/runtime.h"
#include "usgc/safepoint.h"

namespace usgc::testing {

// Aborts the test binary (naming the test) if it is still running after `limit`: a lost
// wake-up must fail loudly, never hang the suite.
class Watchdog {
 public:
  explicit Watchdog(std::string what,
                    std::chrono::seconds limit = std::chrono::seconds(60 * kTimeLimitScale))
      : what_(std::move(what)), thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!done_condition_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr,
                         "watchdog: %s still running after %lld s (lost wake-up or deadlock?)\n",
                         what_.c_str(), static_cast<long long>(limit.count()));
            dump_thread_backtraces();
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_condition_.notify_all();
    thread_.join();
  }

 private:
  // Every thread's stack on stderr through gdb when it is installed, so a hang in CI can be
  // diagnosed from its log alone (the runtime's threads are blocked, not this one).
  static void dump_thread_backtraces() {
    char command[160];
    std::snprintf(command, sizeof command,
                  "command -v gdb >/dev/null && gdb -p %d -batch -nx -ex 'thread apply all bt' "
                  "2>/dev/null | head -600 >&2",
                  static_cast<int>(getpid()));
    if (std::system(command) != 0) std::fprintf(stderr, "watchdog: no backtraces (gdb missing)\n");
  }

  std::string what_;
  std::mutex mutex_;
  std::condition_variable done_condition_;
  bool done_ = false;
  std::thread thread_;
};

inline std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

inline usgc_config runtime_config(uint32_t procs) {
  usgc_config config;
  EXPECT_EQ(usgc_config_from_environment(&config), 0);
  config.procs = procs;
  return config;
}

// Runs f() as the main goroutine and waits for it.
inline void run_main(const std::function<void()>& f) {
  auto trampoline = [](void* argument) {
    (*static_cast<const std::function<void()>*>(argument))();
  };
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
inline bool eventually(const std::function<bool()>& predicate,
                       std::chrono::milliseconds limit = std::chrono::seconds(10 *
                                                                              kTimeLimitScale)) {
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
  Watchdog watchdog_{current_test_name()};
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

// A RuntimeTest whose runtime runs with the heap verifier on (USGC_VERIFY=1); the caller's
// setting is restored after the test.
class VerifiedRuntimeTest : public RuntimeTest {
 protected:
  void SetUp() override {
    const char* verify = std::getenv("USGC_VERIFY");
    had_verify_ = verify != nullptr;
    if (had_verify_) saved_verify_ = verify;
    setenv("USGC_VERIFY", "1", 1);
    RuntimeTest::SetUp();
  }
  void TearDown() override {
    RuntimeTest::TearDown();
    if (had_verify_)
      setenv("USGC_VERIFY", saved_verify_.c_str(), 1);
    else
      unsetenv("USGC_VERIFY");
  }

 private:
  bool had_verify_ = false;
  std::string saved_verify_;
};

}  // namespace usgc::testing
