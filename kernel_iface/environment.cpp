// kernel_iface/environment.cpp — the table of usgc's environment variables and their one parser
// (see environment.hpp for the rules). Allocation- and lock-free: it runs inside the first malloc.
#include "kernel_iface/environment.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernel_iface/fatal.hpp"

namespace usgc::kernel {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kTiB = 1024 * kGiB;

const char* const kDecommitChoices[] = {"auto", "io_uring", "madvise", "process_madvise", nullptr};
const char* const kTraceChoices[] = {"off", "gc", "safepoint", "footprint", nullptr};
const char* const kArmingChoices[] = {"mprotect", "swap", nullptr};
const char* const kWaitChoices[] = {"sleep", "spin", nullptr};
const char* const kAckChoices[] = {"trampoline", "handler", nullptr};

// The bounds, in the order of EnvironmentVariableId (checked by the static_assert below and the
// test that every id finds its own name). The README's configuration table states the same.
const EnvironmentVariable kVariables[] = {
    {"USGC_DECAY_MS", EnvironmentKind::kNumber, 0, 3600000, "ms", nullptr, nullptr},
    {"USGC_DECOMMIT", EnvironmentKind::kChoice, 0, 0, nullptr, nullptr, kDecommitChoices},
    {"USGC_STATS", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_STATS_INTERVAL_MS", EnvironmentKind::kNumber, 1, 3600000, "ms", nullptr, nullptr},
    {"USGC_PROCS", EnvironmentKind::kNumber, 1, 1024, "Ps", nullptr, nullptr},
    {"USGC_STACK_SIZE", EnvironmentKind::kSize, 8 * kKiB, 1 * kGiB, "bytes", nullptr, nullptr},
    // At least one page: a goroutine that overflows its stack must fault.
    {"USGC_STACK_GUARD", EnvironmentKind::kSize, 4 * kKiB, 64 * kMiB, "bytes", nullptr, nullptr},
    {"USGC_PREEMPT_US", EnvironmentKind::kNumber, 0, 60000000, "us", nullptr, nullptr},
    {"USGC_GC_PERCENT", EnvironmentKind::kNumber, 1, 100000, "%", "off", nullptr},
    {"USGC_GC_GENERATIONAL", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_GC_CONCURRENT", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_HEAP_MAX", EnvironmentKind::kSize, 1 * kMiB, 64 * kTiB, "bytes", nullptr, nullptr},
    {"USGC_TRACE", EnvironmentKind::kChoice, 0, 0, nullptr, nullptr, kTraceChoices},
    {"USGC_VERIFY", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_SAFEPOINT_ARMING", EnvironmentKind::kChoice, 0, 0, nullptr, nullptr, kArmingChoices},
    {"USGC_PROF", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    // 1: every allocation (what the leak report uses by default); 1G: about one per GiB.
    {"USGC_PROF_SAMPLE", EnvironmentKind::kSize, 1, 1 * kGiB, "bytes", nullptr, nullptr},
    {"USGC_PROF_FILE", EnvironmentKind::kPath, 1, 4095, "bytes", nullptr, nullptr},
    {"USGC_LEAKS", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_GC_INCREMENTAL", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_SAFEPOINT_WAIT", EnvironmentKind::kChoice, 0, 0, nullptr, nullptr, kWaitChoices},
    {"USGC_SAFEPOINT_ACK", EnvironmentKind::kChoice, 0, 0, nullptr, nullptr, kAckChoices},
    {"USGC_SAFEPOINT_CLAIM", EnvironmentKind::kBoolean, 0, 1, nullptr, nullptr, nullptr},
    {"USGC_TRACE_PAUSE_US", EnvironmentKind::kNumber, 1, 60000000, "us", nullptr, nullptr},
};
static_assert(sizeof(kVariables) / sizeof(kVariables[0]) == kEnvironmentVariableCount,
              "one table entry per EnvironmentVariableId");

const char* const kFalseWords[] = {"0", "off", "false", "no", nullptr};
const char* const kTrueWords[] = {"1", "on", "true", "yes", nullptr};

int index_of(const char* const* words, const char* text) {
  for (int i = 0; words[i] != nullptr; ++i)
    if (std::strcmp(words[i], text) == 0) return i;
  return -1;
}

// A bounded, NUL-terminated text builder over a caller's buffer.
struct Text {
  Text(char* text_buffer, uint32_t text_capacity) : buffer(text_buffer), capacity(text_capacity) {
    if (capacity != 0) buffer[0] = '\0';
  }
  char* buffer;
  uint32_t capacity;
  uint32_t length = 0;
  void put(char c) {
    if (length + 1 < capacity) buffer[length++] = c;
    if (capacity != 0) buffer[length] = '\0';
  }
  void put(const char* s) {
    while (*s != '\0') put(*s++);
  }
  void put_number(uint64_t value) {
    char digits[24];
    int count = 0;
    do {
      digits[count++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (count > 0) put(digits[--count]);
  }
  // A size: exact in the largest unit that divides it ("16K", "1G", "4096").
  void put_size(uint64_t value) {
    static const char kUnits[] = {'T', 'G', 'M', 'K'};
    static const uint64_t kScales[] = {kTiB, kGiB, kMiB, kKiB};
    for (int i = 0; i < 4; ++i) {
      if (value != 0 && value % kScales[i] == 0) {
        put_number(value / kScales[i]);
        put(kUnits[i]);
        return;
      }
    }
    put_number(value);
  }
};

void describe_range(const EnvironmentVariable& variable, Text* out) {
  switch (variable.kind) {
    case EnvironmentKind::kNumber:
    case EnvironmentKind::kSize:
      out->put("want ");
      if (variable.kind == EnvironmentKind::kSize) {
        out->put_size(variable.minimum);
        out->put("..");
        out->put_size(variable.maximum);
        out->put(" bytes (digits, optional K/M/G/T suffix)");
      } else {
        out->put_number(variable.minimum);
        out->put("..");
        out->put_number(variable.maximum);
        out->put(' ');
        out->put(variable.unit);
        out->put(" (decimal digits)");
      }
      if (variable.off_word != nullptr) {
        out->put(" or ");
        out->put(variable.off_word);
      }
      break;
    case EnvironmentKind::kBoolean:
      out->put("want 0/off/false/no or 1/on/true/yes");
      break;
    case EnvironmentKind::kChoice:
      out->put("want one of ");
      for (int i = 0; variable.choices[i] != nullptr; ++i) {
        if (i != 0) out->put(", ");
        out->put(variable.choices[i]);
      }
      break;
    case EnvironmentKind::kPath:
      out->put("want a file name of ");
      out->put_number(variable.minimum);
      out->put("..");
      out->put_number(variable.maximum);
      out->put(" bytes without control characters");
      break;
  }
}

bool is_acceptable_path(const EnvironmentVariable& variable, const char* text) {
  size_t length = 0;
  for (const char* p = text; *p != '\0'; ++p, ++length) {
    auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7f || length >= variable.maximum) return false;
  }
  return length >= variable.minimum;
}

// Decimal digits with an optional size suffix; false on anything else or on overflow.
bool parse_unsigned(const char* text, bool size_suffix, uint64_t* value) {
  const char* p = text;
  if (*p < '0' || *p > '9') return false;
  uint64_t number = 0;
  for (; *p >= '0' && *p <= '9'; ++p) {
    auto digit = static_cast<uint64_t>(*p - '0');
    if (number > (~uint64_t{0} - digit) / 10) return false;  // would overflow 64 bits
    number = number * 10 + digit;
  }
  if (size_suffix && *p != '\0') {
    uint64_t scale = 1;
    switch (*p) {
      case 'k':
      case 'K':
        scale = kKiB;
        break;
      case 'm':
      case 'M':
        scale = kMiB;
        break;
      case 'g':
      case 'G':
        scale = kGiB;
        break;
      case 't':
      case 'T':
        scale = kTiB;
        break;
      case 'b':
      case 'B':
        scale = 1;
        --p;  // "512B": the B is the unit below
        break;
      default:
        return false;
    }
    ++p;
    if (scale != 1 && *p == 'i') ++p;  // "KiB"
    if (*p == 'B' || *p == 'b') ++p;
    if (number != 0 && scale > ~uint64_t{0} / number) return false;
    number *= scale;
  }
  if (*p != '\0') return false;
  *value = number;
  return true;
}

// A hash of the last value refused per variable (FNV-1a; 0: none yet): a variable read twice
// (usgc_config_from_environment, then usgc_init) is refused once, a different bad value again.
// Relaxed: a duplicate line in a race is harmless, and this runs inside malloc (no lock).
std::atomic<uint64_t> g_last_refused[kEnvironmentVariableCount];

uint64_t hash_of(const char* text) {
  uint64_t hash = 14695981039346656037ull;
  for (const char* p = text; *p != '\0'; ++p)
    hash = (hash ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
  return hash | 1;  // never 0
}

void refuse(const EnvironmentVariable& variable, const char* text, const char* default_text) {
  const auto index = static_cast<uint32_t>(&variable - kVariables);
  if (g_last_refused[index].exchange(hash_of(text), std::memory_order_relaxed) == hash_of(text))
    return;  // this value was refused already
  // The value as the user gave it, escaped (a control byte would reach their terminal) and cut.
  char shown[64 * 4 + 8];
  Text out(shown, sizeof(shown));
  size_t length = std::strlen(text);
  for (size_t i = 0; i < length && i < 64; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.put(static_cast<char>(c));
    } else {
      static const char kHex[] = "0123456789abcdef";
      out.put("\\x");
      out.put(kHex[c >> 4]);
      out.put(kHex[c & 15]);
    }
  }
  if (length > 64) out.put("...");
  char range[160];
  Text range_text(range, sizeof(range));
  describe_range(variable, &range_text);
  print_message("%s=\"%s\" refused: %s; using the default (%s)", variable.name, shown, range,
                default_text);
}

}  // namespace

void forget_refused_environment_values() {
  for (std::atomic<uint64_t>& last : g_last_refused) last.store(0, std::memory_order_relaxed);
}

const EnvironmentVariable& environment_variable(EnvironmentVariableId id) {
  return kVariables[static_cast<uint32_t>(id)];
}

const char* environment_text(EnvironmentVariableId id) {
  const char* text = ::secure_getenv(environment_variable(id).name);
  return text == nullptr || *text == '\0' ? nullptr : text;
}

bool parse_environment_value(const EnvironmentVariable& variable, const char* text, uint64_t* value,
                             char* why, uint32_t why_bytes) {
  uint64_t parsed = 0;
  bool ok = false;
  switch (variable.kind) {
    case EnvironmentKind::kNumber:
    case EnvironmentKind::kSize:
      if (variable.off_word != nullptr && std::strcmp(text, variable.off_word) == 0) {
        parsed = kEnvironmentOff;
        ok = true;
      } else {
        ok = parse_unsigned(text, variable.kind == EnvironmentKind::kSize, &parsed) &&
             parsed >= variable.minimum && parsed <= variable.maximum;
      }
      break;
    case EnvironmentKind::kBoolean:
      if (index_of(kFalseWords, text) >= 0) {
        parsed = 0;
        ok = true;
      } else if (index_of(kTrueWords, text) >= 0) {
        parsed = 1;
        ok = true;
      }
      break;
    case EnvironmentKind::kPath:
      ok = is_acceptable_path(variable, text);
      break;
    case EnvironmentKind::kChoice: {
      int index = index_of(variable.choices, text);
      ok = index >= 0;
      parsed = ok ? static_cast<uint64_t>(index) : 0;
      break;
    }
  }
  if (ok && value != nullptr) *value = parsed;
  if (!ok && why != nullptr && why_bytes != 0) {
    Text out(why, why_bytes);
    describe_range(variable, &out);
  }
  return ok;
}

uint64_t read_environment_number(EnvironmentVariableId id, uint64_t default_value) {
  const EnvironmentVariable& variable = environment_variable(id);
  const char* text = environment_text(id);
  if (text == nullptr) return default_value;
  uint64_t value = 0;
  if (parse_environment_value(variable, text, &value, nullptr, 0)) return value;
  char shown_default[32];
  Text out(shown_default, sizeof(shown_default));
  if (default_value == kEnvironmentOff && variable.off_word != nullptr) {
    out.put(variable.off_word);
  } else if (variable.kind == EnvironmentKind::kSize && default_value == 0) {
    out.put("none");
  } else if (variable.kind == EnvironmentKind::kSize) {
    out.put_size(default_value);
  } else {
    out.put_number(default_value);
  }
  refuse(variable, text, shown_default);
  return default_value;
}

uint32_t read_environment_choice(EnvironmentVariableId id, uint32_t default_index) {
  const EnvironmentVariable& variable = environment_variable(id);
  const char* text = environment_text(id);
  if (text == nullptr) return default_index;
  uint64_t value = 0;
  if (parse_environment_value(variable, text, &value, nullptr, 0))
    return static_cast<uint32_t>(value);
  refuse(variable, text, variable.choices[default_index]);
  return default_index;
}

const char* read_environment_path(EnvironmentVariableId id, const char* default_path) {
  const EnvironmentVariable& variable = environment_variable(id);
  const char* text = environment_text(id);
  if (text == nullptr) return default_path;
  if (parse_environment_value(variable, text, nullptr, nullptr, 0)) return text;
  refuse(variable, text, default_path);
  return default_path;
}

}  // namespace usgc::kernel
