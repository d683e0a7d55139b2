// tests/runtime/thread_names_test.cpp — the runtime's own threads carry names (usgc-m<N> for the
// machines, usgc-monitor, usgc-scavenger, usgc-mark<N> for the shared collector's helpers), so
// ps, top and a scheduler trace (perf sched, the pause attribution of docs/benchmarks.md) tell
// them apart from each other and from the embedder's threads.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kernel_iface/thread_control.hpp"
#include "tests/support/runtime_fixture.hpp"
#include "tests/support/thread_names.hpp"

namespace usgc::testing {
namespace {

using RuntimeThreadNames = RuntimeTest;

TEST_F(RuntimeThreadNames, MachinesTheMonitorAndTheScavengerAreNamed) {
  std::string machine;
  run_main([&] { machine = thread_name(kernel::thread_id()); });
  EXPECT_EQ(machine.rfind("usgc-m", 0), 0u) << "the main goroutine ran on \"" << machine << "\"";
  const std::set<std::string> names = names_of_this_process();
  EXPECT_EQ(names.count("usgc-monitor"), 1u);
  EXPECT_EQ(names.count("usgc-scavenger"), 1u);
}

}  // namespace
}  // namespace usgc::testing
