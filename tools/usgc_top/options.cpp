// tools/usgc_top/options.cpp — the command line (see options.hpp).
#include "tools/usgc_top/options.hpp"

#include <cstdlib>
#include <string>

#include "tools/usgc_top/text.hpp"

namespace usgc::top {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: usgc-top [-d SECONDS] [-n ITERATIONS] [-p PID] [--once | --json]\n"
               "       usgc-top --heap-profile PID [--timeout SECONDS]\n"
               "  lists this user's processes using usgc from their statistics blocks in /dev/shm\n"
               "  -d SECONDS    refresh delay (default 1; with --once/--json: the gap between the "
               "two samples)\n"
               "  -n N          stop after N refreshes\n"
               "  -p PID        show the detail view of PID\n"
               "  --once        one plain-text snapshot (also when stdout is not a terminal)\n"
               "  --json        one JSON array of the processes\n"
               "  --heap-profile PID  ask PID (running with USGC_PROF=1) to write its heap profile "
               "now;\n"
               "                prints the file's path (exit 0) or why not (exit 1)\n"
               "  --timeout S   how long --heap-profile waits for the answer (default 15)\n"
               "  keys: Up/Down select, Enter detail, m/a/p/c sort, h heap profile, q quit\n");
}

bool parse_options(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "usgc-top: %s needs a value\n", what);
        return nullptr;
      }
      return argv[++i];
    };
    if (argument == "--once") {
      options->once = true;
    } else if (argument == "--json") {
      options->json = true;
    } else if (argument == "-h" || argument == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (argument == "-d") {
      const char* text = value("-d");
      char* end = nullptr;
      double seconds = text ? std::strtod(text, &end) : 0;
      if (text == nullptr || *end != '\0' || !(seconds >= 0.05 && seconds <= 3600)) {
        std::fprintf(stderr, "usgc-top: -d wants seconds between 0.05 and 3600\n");
        return false;
      }
      options->delay_seconds = seconds;
      options->delay_given = true;
    } else if (argument == "-n") {
      const char* text = value("-n");
      char* end = nullptr;
      long count = text ? std::strtol(text, &end, 10) : 0;
      if (text == nullptr || *end != '\0' || count <= 0) {
        std::fprintf(stderr, "usgc-top: -n wants a positive count\n");
        return false;
      }
      options->iterations = count;
    } else if (argument == "--heap-profile") {
      const char* text = value("--heap-profile");
      char* end = nullptr;
      long pid = text ? std::strtol(text, &end, 10) : 0;
      if (text == nullptr || *end != '\0' || pid <= 0 || pid > 0x7fffffff) {
        std::fprintf(stderr, "usgc-top: --heap-profile wants a process id\n");
        return false;
      }
      options->heap_profile_pid = static_cast<int>(pid);
    } else if (argument == "--timeout") {
      const char* text = value("--timeout");
      char* end = nullptr;
      double seconds = text ? std::strtod(text, &end) : 0;
      if (text == nullptr || *end != '\0' || !(seconds >= 0.1 && seconds <= 3600)) {
        std::fprintf(stderr, "usgc-top: --timeout wants seconds between 0.1 and 3600\n");
        return false;
      }
      options->heap_profile_timeout_seconds = seconds;
    } else if (argument == "-p") {
      const char* text = value("-p");
      char* end = nullptr;
      long pid = text ? std::strtol(text, &end, 10) : 0;
      if (text == nullptr || *end != '\0' || pid <= 0 || pid > 0x7fffffff) {
        std::fprintf(stderr, "usgc-top: -p wants a process id\n");
        return false;
      }
      options->detail_pid = static_cast<int>(pid);
    } else {
      std::fprintf(stderr, "usgc-top: unknown argument %s\n", printable_text(argument).c_str());
      usage(stderr);
      return false;
    }
  }
  return true;
}

}  // namespace usgc::top
