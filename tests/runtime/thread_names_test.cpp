// tests/runtime/thread_names_test.cpp — the runtime's own threads carry names (usgc-m<N> for the
// machines, usgc-monitor, usgc-scavenger, usgc-mark<N> for the shared collector's helpers), so
// ps, top and a scheduler trace (perf sched, the pause attribution of docs/benchmarks.md) tell
// them apart from each other and from the embedder's threads.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "kernel_iface/thread_control.hpp"
#include "tests/support/runtime_fixture.hpp"

namespace usgc::testing {
namespace {

std::string thread_name(int tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
  std::FILE* file = std::fopen(path, "r");
  if (file == nullptr) return "";
  char name[32] = {};
  if (std::fgets(name, sizeof name, file) == nullptr) name[0] = '\0';
  std::fclose(file);
  name[std::strcspn(name, "\n")] = '\0';
  return name;
}

std::set<std::string> names_of_this_process() {
  std::set<std::string> names;
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return names;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    names.insert(thread_name(std::atoi(entry->d_name)));
  }
  closedir(tasks);
  return names;
}

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
