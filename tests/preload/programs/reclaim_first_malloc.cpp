// reclaim_first_malloc: a thread's very first allocation takes a page of a segment another thread
// left behind at its exit. Meant to run under LD_PRELOAD with the heap profile sampling every
// allocation (USGC_PROF=1 USGC_PROF_SAMPLE=1): the reclaimed page is then the class's first and is
// cut at its head, and it holds blocks on both of its free lists. Until 2026-12-05 the refill
// collected that cut page and broke the profile's cut invariant ("heap profile: cut invariant
// broken", an abort, on the thread's next allocation of the class).
//
// Each round: thread A allocates `blocks` blocks of `size` bytes, frees every third (they go to the
// page's local free list while its free list still has blocks), exits with the others live; thread
// B starts, allocates blocks of the same size first thing, writes and checks them, frees them. The
// main thread frees A's live blocks at the end and checks their contents.
//
// Usage: reclaim_first_malloc [rounds=20] [size=512] [blocks=3]
// Output: "reclaim_first_malloc rounds=N ok" (exit 0), or a line naming the corrupted block (exit
// 1).
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

size_t g_size = 512;
size_t g_blocks = 3;

struct Round {
  std::vector<unsigned char*> live;  // A's blocks left allocated (main frees them)
  int number = 0;
  bool corrupted = false;
};

void* thread_a(void* argument) {
  Round* round = static_cast<Round*>(argument);
  std::vector<unsigned char*> made;
  made.reserve(g_blocks);
  round->live.reserve(g_blocks);
  for (size_t i = 0; i < g_blocks; ++i) {
    auto* block = static_cast<unsigned char*>(malloc(g_size));
    if (block == nullptr) abort();
    memset(block, 0x40 + round->number % 64, g_size);
    made.push_back(block);
  }
  for (size_t i = 0; i < made.size(); ++i) {
    if (i % 3 == 1) {
      free(made[i]);
    } else {
      round->live.push_back(made[i]);
    }
  }
  return nullptr;
}

void* thread_b(void* argument) {
  Round* round = static_cast<Round*>(argument);
  // First thing: blocks of A's size class, from A's abandoned page.
  unsigned char* blocks[8];
  for (unsigned char*& block : blocks) {
    block = static_cast<unsigned char*>(malloc(g_size));
    if (block == nullptr) abort();
    memset(block, 0x11, g_size);
  }
  for (unsigned char* block : blocks) {
    for (size_t i = 0; i < g_size; ++i) {
      if (block[i] != 0x11) round->corrupted = true;
    }
    free(block);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  if (argc > 2) g_size = static_cast<size_t>(atol(argv[2]));
  if (argc > 3) g_blocks = static_cast<size_t>(atol(argv[3]));
  if (rounds <= 0 || g_size == 0 || g_blocks == 0) {
    fprintf(stderr, "usage: reclaim_first_malloc [rounds>0] [size>0] [blocks>0]\n");
    return 2;
  }
  std::vector<Round> all(static_cast<size_t>(rounds));
  for (int r = 0; r < rounds; ++r) {
    Round& round = all[static_cast<size_t>(r)];
    round.number = r;
    pthread_t thread;
    if (pthread_create(&thread, nullptr, thread_a, &round) != 0) return 2;
    pthread_join(thread, nullptr);
    if (pthread_create(&thread, nullptr, thread_b, &round) != 0) return 2;
    pthread_join(thread, nullptr);
  }
  for (Round& round : all) {
    if (round.corrupted) {
      printf("reclaim_first_malloc: round %d: thread B's blocks were overwritten\n", round.number);
      return 1;
    }
    for (unsigned char* block : round.live) {
      for (size_t i = 0; i < g_size; ++i) {
        if (block[i] != 0x40 + round.number % 64) {
          printf("reclaim_first_malloc: round %d: block %p byte %zu changed\n", round.number,
                 static_cast<void*>(block), i);
          return 1;
        }
      }
      free(block);
    }
  }
  printf("reclaim_first_malloc rounds=%d ok\n", rounds);
  return 0;
}
