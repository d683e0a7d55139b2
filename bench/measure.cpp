// measure: runs one command and reports its wall time, peak RSS and exit status — the timing
// helper of bench/run_all.sh (a benchmark helper, not a benchmark).
//
// Why not /usr/bin/time: GNU time prints wall time in 10 ms steps; this uses CLOCK_MONOTONIC
// (nanoseconds) and wait4's rusage, whose ru_maxrss covers the command and every descendant it
// waited for (so `g++` reports its cc1plus). Environment variables given with --env are set in
// the child only, so an LD_PRELOAD allocator never runs inside the measurer itself.
//
// Usage: measure RESULT_FILE [--env NAME=VALUE]... -- COMMAND [ARGS...]
// The command inherits stdin, stdout and stderr. RESULT_FILE gets one line:
//   "<wall seconds> <peak RSS KiB> <status> <CPU seconds>"
// status: exit code, or 128 + signal number; CPU seconds: user + system time of the command and
// its waited-for descendants (less sensitive than wall time to other load on the machine).
// measure's own exit code is 0 if it could run and wait for the command, 2 otherwise.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

double now_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int usage() {
  std::fprintf(stderr, "usage: measure RESULT_FILE [--env NAME=VALUE]... -- COMMAND [ARGS...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const char* result_path = argv[1];
  std::vector<std::string> env_assignments;
  int i = 2;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (std::strcmp(argv[i], "--env") != 0 || i + 1 >= argc ||
        std::strchr(argv[i + 1], '=') == nullptr)
      return usage();
    env_assignments.emplace_back(argv[++i]);
  }
  if (i + 1 >= argc) return usage();
  char** command = argv + i + 1;

  const double start = now_seconds();
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "measure: fork failed: %s\n", std::strerror(errno));
    return 2;
  }
  if (child == 0) {
    for (const std::string& assignment : env_assignments) {
      const std::size_t eq = assignment.find('=');
      setenv(assignment.substr(0, eq).c_str(), assignment.c_str() + eq + 1, 1);
    }
    execvp(command[0], command);
    std::fprintf(stderr, "measure: cannot run %s: %s\n", command[0], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  rusage usage_of_child{};
  while (wait4(child, &status, 0, &usage_of_child) < 0) {
    if (errno != EINTR) {
      std::fprintf(stderr, "measure: wait4 failed: %s\n", std::strerror(errno));
      return 2;
    }
  }
  const double wall_seconds = now_seconds() - start;
  const int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

  FILE* result = std::fopen(result_path, "w");
  if (result == nullptr) {
    std::fprintf(stderr, "measure: cannot write %s: %s\n", result_path, std::strerror(errno));
    return 2;
  }
  const double cpu_seconds =
      static_cast<double>(usage_of_child.ru_utime.tv_sec + usage_of_child.ru_stime.tv_sec) +
      static_cast<double>(usage_of_child.ru_utime.tv_usec + usage_of_child.ru_stime.tv_usec) * 1e-6;
  std::fprintf(result, "%.6f %ld %d %.6f\n", wall_seconds, usage_of_child.ru_maxrss, exit_status,
               cpu_seconds);
  return std::fclose(result) == 0 ? 0 : 2;
}
