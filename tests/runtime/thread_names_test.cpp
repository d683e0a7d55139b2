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
  // The monitor and the scavenger name themselves as they start, which on a loaded machine can be
  // after usgc_init and the main goroutine have returned (a fresh-clone CI run saw the scavenger
  // still unnamed): wait for both, bounded.
  std::set<std::string> names;
  EXPECT_TRUE(eventually([&] {
    names = names_of_this_process();
    return names.count("usgc-monitor") == 1 && names.count("usgc-scavenger") == 1;
  })) << "monitor "
      << names.count("usgc-monitor") << ", scavenger " << names.count("usgc-scavenger");
}

}  // namespace
}  // namespace usgc::testing
