// kernel_iface/environment.hpp — the one reader of usgc's USGC_* environment variables.
//
// Every variable usgc reads has one entry in the table of environment.cpp (its name, what it
// accepts, its bounds); every layer reads its variables through the functions below, so the rules
// are the same for all, and the README's configuration table states them once:
//   - values are read with secure_getenv: a setuid or setgid program linked with usgc is not
//     steered by its caller (it sees every variable as unset and uses the defaults);
//   - unset or empty: the default, silently;
//   - a number is decimal digits only (no sign, no space), sizes may end in K, M, G or T (powers
//     of 1024, optionally followed by "iB" or "B"); the range is checked on the full 64-bit value,
//     with overflow refused, before any narrowing;
//   - a bad value (malformed, overflowing, out of range, an unknown word) is refused with one
//     line on stderr naming the variable, the value (escaped, cut to 64 bytes) and the accepted
//     range (once per value: a variable read again is silent), and the default is used. Nothing
//     fails: the allocator reads its variables where it cannot fail (the first malloc), so the
//     runtime's variables follow the same rule.
//
// Context: allocator and init paths. Nothing here allocates or takes a lock (secure_getenv and
// print_message do neither), so it may run inside the first malloc.
#pragma once

#include <cstdint>

namespace usgc::kernel {

// Every variable usgc reads, in the order of the README's configuration table.
enum class EnvironmentVariableId : uint32_t {
  kDecayMs,          // USGC_DECAY_MS
  kDecommit,         // USGC_DECOMMIT
  kStats,            // USGC_STATS
  kStatsIntervalMs,  // USGC_STATS_INTERVAL_MS
  kProcs,            // USGC_PROCS
  kStackSize,        // USGC_STACK_SIZE
  kStackGuard,       // USGC_STACK_GUARD
  kPreemptUs,        // USGC_PREEMPT_US
  kGcPercent,        // USGC_GC_PERCENT
  kGcGenerational,   // USGC_GC_GENERATIONAL
  kGcConcurrent,     // USGC_GC_CONCURRENT
  kHeapMax,          // USGC_HEAP_MAX
  kTrace,            // USGC_TRACE
  kVerify,           // USGC_VERIFY
  kSafepointArming,  // USGC_SAFEPOINT_ARMING
  kProf,             // USGC_PROF
  kProfSample,       // USGC_PROF_SAMPLE
  kProfFile,         // USGC_PROF_FILE
  kLeaks,            // USGC_LEAKS
  kGcIncremental,    // USGC_GC_INCREMENTAL
  kSafepointWait,    // USGC_SAFEPOINT_WAIT
  kSafepointAck,     // USGC_SAFEPOINT_ACK
  kSafepointClaim,   // USGC_SAFEPOINT_CLAIM
  kTracePauseUs,     // USGC_TRACE_PAUSE_US
  kCount
};

enum class EnvironmentKind : uint8_t {
  kNumber,   // decimal digits in [minimum, maximum]
  kSize,     // like kNumber, with an optional K/M/G/T suffix
  kBoolean,  // 0/off/false/no or 1/on/true/yes: 0 or 1
  kChoice,   // one of `choices`: its index
  kPath,  // a file name: 1..maximum bytes, no control character (read with read_environment_path)
};

struct EnvironmentVariable {
  const char* name;
  EnvironmentKind kind;
  uint64_t minimum;  // kNumber, kSize: the accepted range, inclusive
  uint64_t maximum;
  const char* unit;            // kNumber, kSize: "bytes", "ms", ... for messages
  const char* off_word;        // kNumber, kSize: a word also accepted (e.g. "off"), or nullptr
  const char* const* choices;  // kChoice: the accepted words, nullptr-terminated
};

// The value read_environment_number returns for the variable's off_word.
constexpr uint64_t kEnvironmentOff = ~uint64_t{0};

// The table entry of a variable, and the number of entries.
const EnvironmentVariable& environment_variable(EnvironmentVariableId id);
constexpr uint32_t kEnvironmentVariableCount = static_cast<uint32_t>(EnvironmentVariableId::kCount);

// The variable's text (secure_getenv), or nullptr when unset or empty.
const char* environment_text(EnvironmentVariableId id);

// kNumber / kSize / kBoolean: the value, checked against the variable's range; default_value when
// unset, empty or refused (with the one-line message). kEnvironmentOff for the off_word.
uint64_t read_environment_number(EnvironmentVariableId id, uint64_t default_value);

// kChoice: the index of the word in `choices`; default_index when unset, empty or refused.
uint32_t read_environment_choice(EnvironmentVariableId id, uint32_t default_index);

// USGC_TRACE's choices, in the order of its table in environment.cpp (read_environment_choice's
// index): each layer compares with its own.
enum TraceChoice : uint32_t {
  kTraceOff = 0,
  kTraceGc = 1,
  kTraceSafepoint = 2,
  kTraceFootprint = 3
};

// kPath: the variable's text when acceptable, else default_path (with the one-line message when
// refused; unset or empty gives default_path silently).
const char* read_environment_path(EnvironmentVariableId id, const char* default_path);

// A value is refused with a message once (read again, the same bad value is silent); tests start
// from a clean slate with this.
void forget_refused_environment_values();

// The parser itself, for tests: true and *value when `text` is acceptable for `variable`; else
// false and, when `why` is not null, the text of the accepted range in why (NUL-terminated).
bool parse_environment_value(const EnvironmentVariable& variable, const char* text, uint64_t* value,
                             char* why, uint32_t why_bytes);

}  // namespace usgc::kernel
