// free_cost_profiled: counts the instructions of every free of a run of small blocks, exactly
// (ptrace single-stepping, tests/support/single_step.hpp), to show how many frees leave the fast
// path. Meant to run under LD_PRELOAD with the heap profile on (USGC_PROF=1 and a
// USGC_PROF_SAMPLE that samples a few of the blocks): only the sampled blocks' frees may take the
// slow path, not the frees of the blocks that share a page with a sample.
//
// A traced child allocates `blocks` blocks of `size` bytes, then frees each between two int3
// breakpoints; the parent counts each free's instructions.
//
// Usage: free_cost_profiled [blocks=4000] [size=32]
// Output: "free_cost_profiled blocks=N frees_counted=N fast_instructions=F slow_frees=S
// max_instructions=M" where F is the fewest instructions a free took (the fast path, with the
// program's and the preload library's PLT jumps) and a slow free is one of more than F + 4; exit 2
// if the child cannot be traced.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/single_step.hpp"

namespace {

long g_blocks = 4000;
long g_size = 32;

void child_main() {
  if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) _exit(3);
  raise(SIGSTOP);
  std::vector<void*> blocks(static_cast<size_t>(g_blocks));
  for (void*& block : blocks) block = malloc(static_cast<size_t>(g_size));
  for (void* block : blocks) {
    void* volatile pointer = block;
    void* p = pointer;
    asm volatile("int3" ::: "memory");
    free(p);
    asm volatile("int3");
  }
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_blocks = std::atol(argv[1]);
  if (argc > 2) g_size = std::atol(argv[2]);
  std::string why;
  pid_t child = usgc::testing::start_traced_child(child_main, &why);
  if (child < 0) {
    std::fprintf(stderr, "free_cost_profiled: %s\n", why.c_str());
    return 2;
  }
  std::vector<long> counts;
  for (long i = 0; i < g_blocks; ++i) {
    if (!usgc::testing::wait_for_breakpoint(child)) break;
    long instructions = usgc::testing::count_to_next_breakpoint(child);
    if (instructions < 0) break;
    counts.push_back(instructions);
  }
  usgc::testing::finish_traced_child(child);
  long counted = static_cast<long>(counts.size()), slow = 0, fewest = 0, most = 0;
  for (long instructions : counts) {
    if (fewest == 0 || instructions < fewest) fewest = instructions;
    if (instructions > most) most = instructions;
  }
  for (long instructions : counts) slow += instructions > fewest + 4 ? 1 : 0;
  std::printf(
      "free_cost_profiled blocks=%ld frees_counted=%ld fast_instructions=%ld slow_frees=%ld "
      "max_instructions=%ld\n",
      g_blocks, counted, fewest, slow, most);
  return counted == g_blocks ? 0 : 1;
}
