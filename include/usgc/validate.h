/* usgc/validate.h — built-in validation: the heap verifier on demand and a bounded self test.
 *
 * usgc_heap_validate runs a full shared collection with the heap verifier on (as USGC_VERIFY=1 does
 * for every collection) and reports what it walked. A violation stops the process with a message
 * naming the object, its header and what refers to it: continuing would corrupt memory.
 * usgc_self_test stresses the caller's runtime for a bounded time (allocation in every ownership
 * class, publication through stores and channels, private and shared collections, checked
 * contents, then usgc_heap_validate) and returns pass or fail with counts.
 * `usgc-demo --self-test [SECONDS]` runs it. Both are called from a goroutine. */
#ifndef USGC_VALIDATE_H
#define USGC_VALIDATE_H

#include <stdint.h>

#include "usgc/gc.h"
#include "usgc/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define USGC_HEAP_REPORT_VERSION 1
typedef struct usgc_heap_report {
  uint32_t version; /* USGC_HEAP_REPORT_VERSION, set by the caller */
  uint32_t reserved;
  uint64_t objects_checked;    /* distinct reachable private and shared objects */
  uint64_t bytes_checked;      /* their sizes, headers included */
  uint64_t references_checked; /* root slots and reference fields checked */
  uint64_t roots_checked;      /* root slots holding an object (goroutines' and global) */
  uint64_t goroutines_checked; /* goroutines (and attached threads) whose roots were walked */
  uint64_t verifications;      /* collections verified during the call (1, more if others ran) */
} usgc_heap_report;

/* 0 and *report filled; EINVAL (NULL or wrong version), EPERM (not a goroutine). */
USGC_GC_API int usgc_heap_validate(usgc_heap_report* report);

#define USGC_SELF_TEST_VERSION 1
typedef struct usgc_self_test_result {
  uint32_t version; /* USGC_SELF_TEST_VERSION, set by the caller */
  uint32_t passed;  /* 1: every check held */
  uint64_t rounds;  /* rounds of the workers, all together */
  uint64_t objects_allocated;
  uint64_t objects_published; /* sent to another goroutine, so shared */
  uint64_t messages;          /* channel messages received */
  uint64_t collections;       /* explicit private and shared collections */
  uint64_t checks;            /* contents checked after collections */
  uint64_t failures;          /* checks that did not hold (then passed = 0) */
  usgc_heap_report heap;      /* the final usgc_heap_validate */
  char first_failure[128];    /* what the first failed check saw, or "" */
} usgc_self_test_result;

/* Runs the self test for about `seconds` (0 < seconds <= 3600) on the caller's runtime, from a
 * goroutine; returns 0 (see result->passed), EINVAL or EPERM, or ENOMEM when it could not start. */
USGC_RUNTIME_API int usgc_self_test(double seconds, usgc_self_test_result* result);

#ifdef __cplusplus
}
#endif

#endif /* USGC_VALIDATE_H */
