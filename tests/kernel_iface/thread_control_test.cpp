// tests/kernel_iface/thread_control_test.cpp — naming a thread (kernel::name_current_thread): the
// kernel shows the name in /proc (what ps, top and perf read), cut to 15 bytes.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "kernel_iface/thread_control.hpp"
#include "tests/support/thread_names.hpp"

namespace usgc::testing {
namespace {

TEST(ThreadName, TheKernelShowsTheNameCutToFifteenBytes) {
  std::string shown, cut;
  std::thread([&] {
    ASSERT_TRUE(kernel::name_current_thread("usgc-test").ok());
    shown = thread_name(kernel::thread_id());
    ASSERT_TRUE(kernel::name_current_thread("usgc-a-name-longer-than-fifteen").ok());
    cut = thread_name(kernel::thread_id());
  }).join();
  EXPECT_EQ(shown, "usgc-test");
  EXPECT_EQ(cut, "usgc-a-name-lon");
}

}  // namespace
}  // namespace usgc::testing
