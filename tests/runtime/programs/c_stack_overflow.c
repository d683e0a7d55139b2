/* tests/runtime/programs/c_stack_overflow.c — plain C recursing without bound on a goroutine, as
 * a user's C library might: the goroutine's stack guard must stop it with the runtime's message
 * ("goroutine N: stack overflow") and death by SIGSEGV. Run by
 * tests/runtime/stack_overflow.test.sh. With an argument "nested", the overflow happens on the
 * 1000th of 1000 live goroutines. */
#include <stdio.h>
#include <string.h>

#include <usgc/usgc.h>

static volatile int g_limit = 1 << 30;

static int recurse(int depth) {
  volatile char frame[256];
  frame[0] = (char)depth;
  if (depth >= g_limit) return 0;
  return recurse(depth + 1) + frame[0];
}

static void overflow(void* unused) {
  (void)unused;
  recurse(0);
}

static void park(void* chan) {
  int value;
  bool ok;
  usgc_chan_recv(chan, &value, &ok);
}

static void main_goroutine(void* arg) {
  if (arg != NULL) {
    usgc_chan* gate = usgc_chan_make(sizeof(int), 0);
    for (int i = 0; i < 999; ++i) usgc_go(park, gate, NULL);
  }
  usgc_go(overflow, NULL, NULL);
  for (;;) usgc_sleep_ns(1000000);
}

int main(int argc, char** argv) {
  if (usgc_init(NULL) != 0) return 2;
  int nested = argc > 1 && strcmp(argv[1], "nested") == 0;
  usgc_run_main(main_goroutine, nested ? (void*)1 : NULL);
  puts("not reached: the overflow should have killed the process");
  return 1;
}
