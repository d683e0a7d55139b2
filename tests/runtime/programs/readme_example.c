/* tests/runtime/programs/readme_example.c — the goroutine example of README.md, as C99, plus
 * checks: it must compile as plain C against the public headers, link against libusgc, and
 * print what it received. Run by tests/runtime/c_api.test.sh. */
#include <stdbool.h>
#include <stdio.h>

#include <usgc/usgc.h>

static void worker(void* arg) {
  usgc_chan* results = arg;
  long answer = 42;
  usgc_chan_send(results, &answer); /* parks the goroutine, never the thread */
}

static long g_value = 0;
static bool g_ok = false;

static void main_goroutine(void* unused) {
  (void)unused;
  usgc_chan* results = usgc_chan_make(sizeof(long), 0);
  usgc_go(worker, results, NULL);
  usgc_chan_recv(results, &g_value, &g_ok);
  /* The worker has returned from its send, but may still be finishing: wait for it before the
   * channel goes away. */
  while (usgc_goroutine_count() > 1) usgc_yield();
  usgc_chan_destroy(results);
}

int main(void) {
  if (usgc_init(NULL) != 0) return 2;
  if (usgc_run_main(main_goroutine, NULL) != 0) return 3;
  usgc_stop_info info;
  if (usgc_stop_the_world(&info) != 0 || usgc_start_the_world() != 0) return 4;
  printf("received %ld ok=%d\n", g_value, g_ok ? 1 : 0);
  return usgc_shutdown();
}
