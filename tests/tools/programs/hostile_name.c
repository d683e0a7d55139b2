/* tests/tools/programs/hostile_name.c — a process that names itself with terminal escape
 * sequences (prctl PR_SET_NAME, as any process may) and then allocates through malloc, so that
 * usgc (under LD_PRELOAD) publishes a statistics block whose command is hostile. Run by
 * tests/tools/usgc_top_hostile.test.sh.
 *
 *   hostile-name SECONDS    (allocates until then, or until SIGTERM)
 *
 * The name (14 bytes; the kernel keeps 15): ESC [2J (clear screen), ESC ]0;PWN BEL (set the
 * window title), and 0xC2 0x9B (CSI as UTF-8).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int signal_number) {
  (void)signal_number;
  g_stop = 1;
}

int main(int argc, char** argv) {
  static const char kName[] = "\x1b[2J\x1b]0;PWN\x07\xc2\x9b";
  if (prctl(PR_SET_NAME, kName, 0, 0, 0) != 0) {
    perror("prctl(PR_SET_NAME)");
    return 1;
  }
  signal(SIGTERM, on_signal);
  double seconds = argc > 1 ? atof(argv[1]) : 30;
  time_t end = time(NULL) + (time_t)seconds;
  void* keep[256] = {0};
  unsigned round = 0;
  while (!g_stop && time(NULL) < end) {
    for (int i = 0; i < 256; ++i) {
      free(keep[i]);
      keep[i] = malloc(64 + (size_t)((round * 37 + (unsigned)i * 11) % 4000));
      if (keep[i] != NULL) memset(keep[i], i, 64);
    }
    ++round;
    struct timespec pause = {0, 2000000};
    nanosleep(&pause, NULL);
  }
  for (int i = 0; i < 256; ++i) free(keep[i]);
  return 0;
}
