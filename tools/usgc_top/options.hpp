// tools/usgc_top/options.hpp — usgc-top's command line. Not on any hot path.
#pragma once

#include <cstdio>

namespace usgc::top {

struct Options {
  double delay_seconds = 1.0;
  bool delay_given = false;
  long iterations = -1;  // -1: until q
  int detail_pid = 0;
  bool once = false;
  bool json = false;
  int heap_profile_pid = 0;  // --heap-profile PID: ask PID for its heap profile and wait
  double heap_profile_timeout_seconds = 15;
};

void usage(FILE* out);
// False (after a message on stderr) when the command line is wrong; exits 0 after --help.
bool parse_options(int argc, char** argv, Options* options);

}  // namespace usgc::top
