// tests/jitgen/programs/visible_jit_code.cpp — a tiny program with one "JIT-compiled" function,
// run under gdb by tests/jitgen/code_visibility_gdb.test.sh.
//
// It places a hand-assembled function (tests/jitgen/executable_code_blob.hpp) in executable
// memory, announces it as `usgc_jit_visible_answer` in module "visible_jit_code" through
// jitgen/code_visibility, and calls it; the function calls back into
// `visible_jit_code_breakpoint`, where the test's gdb stops and looks at the backtrace. With
// "withdraw" as argument it withdraws the module before the call, so the debugger must no
// longer name the code. With "spin N" it calls the function N times more (through a callback that
// only returns), for a profiler (tests/jitgen/code_visibility_perf.test.sh) to sample it; run with
// USGC_PERF_MAP=1 for perf to name it. Prints "visible_jit_code: result 43" on success.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "jitgen/code_visibility/code_visibility.hpp"
#include "tests/jitgen/executable_code_blob.hpp"

extern "C" [[gnu::noinline]] int visible_jit_code_identity(int value) {
  return value;
}

extern "C" [[gnu::noinline]] int visible_jit_code_breakpoint(int value) {
  asm volatile("" ::: "memory");
  return value + 1;
}

int main(int argc, char** argv) {
  bool withdraw = argc > 1 && std::strcmp(argv[1], "withdraw") == 0;
  long spins = argc > 2 && std::strcmp(argv[1], "spin") == 0 ? std::atol(argv[2]) : 0;
  usgc::test::ExecutableCodeBlob blob;
  if (!blob.ok()) {
    std::fprintf(stderr, "visible_jit_code: cannot map executable memory\n");
    return 2;
  }
  usgc::jitgen::CompiledSymbol symbol{"usgc_jit_visible_answer", blob.start(),
                                      usgc::test::ExecutableCodeBlob::size_bytes()};
  usgc::jitgen::VisibleModule* module =
      usgc::jitgen::announce_compiled_module("visible_jit_code", {&symbol, 1});
  if (module == nullptr) return 3;
  if (withdraw) {
    usgc::jitgen::withdraw_compiled_module(module);
    module = nullptr;
  }
  std::printf("visible_jit_code: pid %d, code at %p\n", static_cast<int>(getpid()), blob.start());
  int result = blob.function()(visible_jit_code_breakpoint, 41);
  long sum = 0;
  for (long i = 0; i < spins; ++i) sum += blob.function()(visible_jit_code_identity, 1);
  if (sum != 2 * spins) return 4;
  usgc::jitgen::withdraw_compiled_module(module);
  std::printf("visible_jit_code: result %d\n", result);
  return result == 43 ? 0 : 1;
}
