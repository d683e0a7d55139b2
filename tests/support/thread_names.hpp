// tests/support/thread_names.hpp — what the kernel calls a thread of this process (its comm, as
// ps, top and perf show it): one thread's, and every thread's. Reads /proc; tests only.
#pragma once

#include <dirent.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace usgc::testing {

// "" when the thread does not exist (or /proc cannot be read).
inline std::string thread_name(int tid) {
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

inline std::set<std::string> names_of_this_process() {
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

}  // namespace usgc::testing
