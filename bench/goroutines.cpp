// goroutines: the cost of a goroutine and of a channel hand-off in usgc's M:N runtime — the
// benchmark of suite=goroutines (bench/run_runtime.sh runs it beside bench/go/spawn.go and
// bench/go/pingpong.go, which do the same work in Go).
//
// Cases (at the default number of Ps, USGC_PROCS or the online cores; with --procs N, at N Ps and
// named with the suffix -procsN):
//   spawn              the main goroutine adds N to a wait group, starts N goroutines that each
//                      only call usgc_waitgroup_done, and waits: spawn-to-finish time / N
//                      (ns per goroutine).
//   pingpong           two goroutines bounce a uint64 (incremented by the second) over two
//                      unbuffered channels R times: time / R (ns per round trip).
//   pingpong-buffered  the same over two channels of capacity 1.
// One runtime per process (usgc_init once, usgc_shutdown at the end; bench/run_runtime.sh runs
// one process per number of Ps). Each measurement is preceded by an unrecorded warm-up of a
// tenth of its size.
//
// Output: one SAMPLE line per measurement and, at the end, one RESULT line per case with the
// median over the repetitions (the format of bench/run_all.sh):
//   SAMPLE suite=goroutines case=<case> impl=usgc metric=ns_per_goroutine value=<ns> unit=ns
//   RESULT suite=goroutines case=<case> impl=usgc metric=ns_per_goroutine value=<ns> unit=ns
// (metric=ns_per_round_trip for the ping-pongs). run_runtime.sh interleaves repetitions of this
// program with the Go programs' and takes the medians of the SAMPLE lines itself. A wrong
// result (a lost value) is an ERROR line and exit status 1; a runtime call that fails is an
// ERROR line naming it and exit status 1 (usgc_go failing in spawn: an ERROR line for that case,
// which then has no RESULT, and the other cases go on).
//
// Usage: goroutines [--reps R] [--spawn N] [--round-trips R] [--procs N]
//                   [--cases "spawn pingpong pingpong-buffered"] [--quick]
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.hpp"
#include "usgc/runtime.h"

namespace {

using usgc::bench::median;
using usgc::bench::now_ns;
using usgc::bench::words;

[[noreturn]] void fail(const char* what, int error) {
  std::printf("ERROR suite=goroutines impl=usgc reason=\"%s failed: %s\"\n", what,
              std::strerror(error));
  std::fflush(stdout);
  std::exit(1);
}

void check(int error, const char* what) {
  if (error != 0) fail(what, error);
}

// ---- spawn --------------------------------------------------------------------------------

struct SpawnJob {
  uint64_t count = 0;
  uint64_t elapsed_ns = 0;
  usgc_waitgroup group = USGC_WAITGROUP_INIT;
  uint64_t spawned = 0;  // < count when usgc_go failed
  int spawn_error = 0;
};

void spawned_goroutine(void* argument) {
  check(usgc_waitgroup_done(static_cast<usgc_waitgroup*>(argument)), "usgc_waitgroup_done");
}

void spawn_main(void* argument) {
  auto* job = static_cast<SpawnJob*>(argument);
  uint64_t start_ns = now_ns();
  check(usgc_waitgroup_add(&job->group, static_cast<int64_t>(job->count)), "usgc_waitgroup_add");
  for (job->spawned = 0; job->spawned < job->count; ++job->spawned) {
    job->spawn_error = usgc_go(spawned_goroutine, &job->group, nullptr);
    if (job->spawn_error != 0) {
      // Reported as an ERROR line for this case (never a number); the runs go on.
      check(usgc_waitgroup_add(&job->group, -static_cast<int64_t>(job->count - job->spawned)),
            "usgc_waitgroup_add");
      break;
    }
  }
  check(usgc_waitgroup_wait(&job->group), "usgc_waitgroup_wait");
  job->elapsed_ns = now_ns() - start_ns;
}

// ---- ping-pong ----------------------------------------------------------------------------

struct PingPongJob {
  uint64_t round_trips = 0;
  size_t capacity = 0;
  usgc_chan* ping = nullptr;
  usgc_chan* pong = nullptr;
  usgc_waitgroup echo_done = USGC_WAITGROUP_INIT;
  uint64_t elapsed_ns = 0;
  uint64_t wrong = 0;
};

void echo_goroutine(void* argument) {
  auto* job = static_cast<PingPongJob*>(argument);
  for (uint64_t i = 0; i < job->round_trips; ++i) {
    uint64_t value = 0;
    check(usgc_chan_recv(job->ping, &value, nullptr), "usgc_chan_recv");
    ++value;
    check(usgc_chan_send(job->pong, &value), "usgc_chan_send");
  }
  check(usgc_waitgroup_done(&job->echo_done), "usgc_waitgroup_done");
}

void pingpong_main(void* argument) {
  auto* job = static_cast<PingPongJob*>(argument);
  check(usgc_waitgroup_add(&job->echo_done, 1), "usgc_waitgroup_add");
  check(usgc_go(echo_goroutine, job, nullptr), "usgc_go");
  uint64_t start_ns = now_ns();
  for (uint64_t i = 0; i < job->round_trips; ++i) {
    check(usgc_chan_send(job->ping, &i), "usgc_chan_send");
    uint64_t value = 0;
    check(usgc_chan_recv(job->pong, &value, nullptr), "usgc_chan_recv");
    if (value != i + 1) ++job->wrong;
  }
  job->elapsed_ns = now_ns() - start_ns;
  check(usgc_waitgroup_wait(&job->echo_done), "usgc_waitgroup_wait");
}

// ---- the runtime -----------------------------------------------------------------------

// Waits until the goroutines of the last measurement have exited: usgc_run_main returns when
// the main goroutine has returned, and the exits of the last goroutines it waited for may still
// be in flight for a moment.
void wait_for_goroutines() {
  for (int i = 0; i < 100000 && usgc_goroutine_count() != 0; ++i) {
    timespec pause{0, 100000};
    nanosleep(&pause, nullptr);
  }
}

// ns per goroutine of one spawn measurement (after a warm-up of count / 10); a negative value
// when usgc_go failed (the ERROR line is printed here).
double measure_spawn(uint64_t count, const char* case_name) {
  SpawnJob warm_up;
  warm_up.count = std::max<uint64_t>(count / 10, 1);
  check(usgc_run_main(spawn_main, &warm_up), "usgc_run_main");
  wait_for_goroutines();
  SpawnJob job;
  job.count = count;
  if (warm_up.spawn_error == 0) check(usgc_run_main(spawn_main, &job), "usgc_run_main");
  wait_for_goroutines();
  const SpawnJob& failed = warm_up.spawn_error != 0 ? warm_up : job;
  if (failed.spawn_error != 0) {
    std::printf(
        "ERROR suite=goroutines case=%s impl=usgc reason=\"usgc_go failed (%s) after %" PRIu64
        " goroutines alive at once, of %" PRIu64 "\"\n",
        case_name, std::strerror(failed.spawn_error), failed.spawned, failed.count);
    std::fflush(stdout);
    return -1;
  }
  return static_cast<double>(job.elapsed_ns) / static_cast<double>(count);
}

double measure_pingpong(uint64_t round_trips, size_t capacity, const char* case_name) {
  double result = 0;
  for (int warm = 1; warm >= 0; --warm) {
    PingPongJob job;
    job.round_trips = warm ? std::max<uint64_t>(round_trips / 10, 1) : round_trips;
    job.capacity = capacity;
    job.ping = usgc_chan_make(sizeof(uint64_t), capacity);
    job.pong = usgc_chan_make(sizeof(uint64_t), capacity);
    if (job.ping == nullptr || job.pong == nullptr) fail("usgc_chan_make", errno);
    check(usgc_run_main(pingpong_main, &job), "usgc_run_main");
    if (job.wrong != 0) {
      std::printf("ERROR suite=goroutines case=%s impl=usgc reason=\"%" PRIu64 " of %" PRIu64
                  " round trips returned a wrong value\"\n",
                  case_name, job.wrong, job.round_trips);
      std::fflush(stdout);
      std::exit(1);
    }
    check(usgc_chan_destroy(job.ping), "usgc_chan_destroy");
    check(usgc_chan_destroy(job.pong), "usgc_chan_destroy");
    result = static_cast<double>(job.elapsed_ns) / static_cast<double>(job.round_trips);
    wait_for_goroutines();
  }
  return result;
}

int usage() {
  std::fprintf(stderr,
               "usage: goroutines [--reps R] [--spawn N] [--round-trips R] [--procs N]\n"
               "                  [--cases \"spawn pingpong pingpong-buffered\"] [--quick]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  uint64_t spawn_count = 100000;
  uint64_t round_trips = 1000000;
  uint32_t procs = 0;  // 0: USGC_PROCS or the online cores
  std::string case_list = "spawn pingpong pingpong-buffered";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--reps" && has_value)
      reps = std::atoi(argv[++i]);
    else if (arg == "--spawn" && has_value)
      spawn_count = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--round-trips" && has_value)
      round_trips = std::strtoull(argv[++i], nullptr, 10);
    else if (arg == "--procs" && has_value)
      procs = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    else if (arg == "--cases" && has_value)
      case_list = argv[++i];
    else if (arg == "--quick")
      spawn_count = 10000, round_trips = 20000, reps = 1;
    else
      return usage();
  }
  if (reps < 1 || spawn_count == 0 || round_trips == 0) return usage();

  usgc_config config;
  check(usgc_config_from_environment(&config), "usgc_config_from_environment");
  std::string suffix = procs == 0 ? "" : "-procs" + std::to_string(procs);
  if (procs != 0) config.procs = procs;
  check(usgc_init(&config), "usgc_init");

  std::vector<std::string> case_order;
  std::map<std::string, std::vector<double>> samples;
  std::map<std::string, const char*> metric_of;
  std::set<std::string> failed_cases;  // a case that failed once has no figure
  for (int rep = 0; rep < reps; ++rep) {
    for (const std::string& kind : words(case_list)) {
      std::string name = kind + suffix;
      if (failed_cases.count(name) != 0) continue;
      double value;
      const char* metric;
      if (kind == "spawn") {
        value = measure_spawn(spawn_count, name.c_str());
        metric = "ns_per_goroutine";
      } else if (kind == "pingpong" || kind == "pingpong-buffered") {
        value = measure_pingpong(round_trips, kind == "pingpong" ? 0 : 1, name.c_str());
        metric = "ns_per_round_trip";
      } else {
        std::fprintf(stderr, "goroutines: unknown case '%s'\n", kind.c_str());
        return 2;
      }
      if (samples.find(name) == samples.end()) case_order.push_back(name);
      metric_of[name] = metric;
      if (value < 0) {
        failed_cases.insert(name);
        continue;
      }
      samples[name].push_back(value);
      std::printf("SAMPLE suite=goroutines case=%s impl=usgc metric=%s value=%.1f unit=ns\n",
                  name.c_str(), metric, value);
      std::fflush(stdout);
    }
  }
  check(usgc_shutdown(), "usgc_shutdown");
  for (const std::string& name : case_order) {
    if (failed_cases.count(name) != 0) continue;
    std::printf("RESULT suite=goroutines case=%s impl=usgc metric=%s value=%.1f unit=ns\n",
                name.c_str(), metric_of[name], median(samples[name]));
  }
  return failed_cases.empty() ? 0 : 1;
}
