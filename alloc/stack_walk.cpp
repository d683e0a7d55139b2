// alloc/stack_walk.cpp — see stack_walk.hpp: the rule cache, the walk, the libgcc fallback.
//
// The cache: kCacheEntries direct-mapped entries (sequence, key, value), mapped on the first walk
// (kernel_iface mapping, never malloc; about 200 KiB of address space, touched as it fills).
// value = generation (low 32 bits of dlpi_adds + dlpi_subs) << 32 | packed UnwindRule. Seqlock
// per entry (Boehm, "Can seqlocks get along with programming language memory models?"):
//   writer: CAS sequence even -> odd (acquire), release fence, key and value (relaxed),
//           sequence odd -> even + 2 (release);
//   reader: sequence (acquire), key and value (relaxed), acquire fence, sequence again (relaxed);
//           equal and even: key and value belong together.
// A fork while an entry is odd leaves it odd in the child: that slot then always misses.
#include "alloc/stack_walk.hpp"

#include <pthread.h>
#include <unwind.h>

#include <atomic>

#include "alloc/unwind_rules.hpp"
#include "kernel_iface/mapping_lookup.hpp"
#include "kernel_iface/virtual_memory.hpp"

// The main thread's stack pointer at process start (the dynamic loader's; weak: null if absent).
extern "C" void* __libc_stack_end __attribute__((weak));

// The bounds of the usgc_text section (the linker defines them; weak: zero if it is absent).
extern "C" const char __start_usgc_text[] __attribute__((weak, visibility("hidden")));
extern "C" const char __stop_usgc_text[] __attribute__((weak, visibility("hidden")));

namespace usgc::alloc {
namespace {

constexpr uint32_t kCacheBits = 13;
constexpr uint32_t kCacheEntries = 1u << kCacheBits;
constexpr uint32_t kMaxSteps = 256;
constexpr uint32_t kMaxStackLookups = 16;  // per thread; then its walks off its stack use libgcc

struct CacheEntry {
  std::atomic<uint64_t> sequence;  // odd while being written
  std::atomic<uint64_t> key;       // the address the rule is for
  std::atomic<uint64_t> value;     // generation << 32 | rule
};

// Published once (release: the mapping is zeroed before readers see it); never unmapped.
std::atomic<CacheEntry*> g_cache{nullptr};
std::atomic<bool> g_cache_failed{false};

// Counters (relaxed: statistics).
std::atomic<uint64_t> g_walks{0};
std::atomic<uint64_t> g_fallbacks{0};
std::atomic<uint64_t> g_rule_misses{0};
std::atomic<uint64_t> g_ended_early{0};
std::atomic<uint64_t> g_stack_lookups{0};

// The calling thread's own stack mapping, [t_stack_low, t_stack_high) (stack_bounds_of), and how
// many times it looked a stack up.
constinit thread_local uintptr_t t_stack_low __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local uintptr_t t_stack_high __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local uint32_t t_stack_lookups __attribute__((tls_model("initial-exec"))) = 0;

CacheEntry* rule_cache() {
  CacheEntry* cache = g_cache.load(std::memory_order_acquire);  // pairs with the CAS below
  if (cache != nullptr || g_cache_failed.load(std::memory_order_relaxed)) return cache;
  size_t page = kernel::os_page_size();
  size_t bytes = (sizeof(CacheEntry) * kCacheEntries + page - 1) & ~(page - 1);
  kernel::Result<void*> mapped = kernel::map_aligned(bytes, page);
  if (!mapped.ok()) {
    g_cache_failed.store(true, std::memory_order_relaxed);
    return nullptr;
  }
  auto* fresh = static_cast<CacheEntry*>(mapped.value());
  // Release: the zeroed mapping before the pointer; acquire on failure pairs with the winner's.
  if (g_cache.compare_exchange_strong(cache, fresh, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
    return fresh;
  (void)kernel::unmap(fresh, bytes);  // another thread published first
  return cache;
}

uint32_t slot_of(uintptr_t address) {
  return static_cast<uint32_t>((address * 0x9e3779b97f4a7c15ull) >> (64 - kCacheBits));
}

bool cache_read(CacheEntry* cache, uintptr_t address, uint32_t generation, UnwindRule* rule) {
  CacheEntry& entry = cache[slot_of(address)];
  uint64_t before = entry.sequence.load(std::memory_order_acquire);  // pairs with the writer's
  uint64_t key = entry.key.load(std::memory_order_relaxed);          // release store
  uint64_t value = entry.value.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);  // the loads above before the re-check
  if ((before & 1) != 0 || entry.sequence.load(std::memory_order_relaxed) != before) return false;
  if (key != address || static_cast<uint32_t>(value >> 32) != generation) return false;
  *rule = UnwindRule::unpack(static_cast<uint32_t>(value));
  return rule->kind != UnwindRule::kEmpty;
}

void cache_write(CacheEntry* cache, uintptr_t address, uint32_t generation, UnwindRule rule) {
  CacheEntry& entry = cache[slot_of(address)];
  uint64_t sequence = entry.sequence.load(std::memory_order_relaxed);
  if ((sequence & 1) != 0) return;
  // Acquire: the data stores below stay after the claim.
  if (!entry.sequence.compare_exchange_strong(sequence, sequence + 1, std::memory_order_acquire,
                                              std::memory_order_relaxed))
    return;                                             // another writer has it: leave it to them
  std::atomic_thread_fence(std::memory_order_release);  // odd sequence before the data
  entry.key.store(address, std::memory_order_relaxed);
  entry.value.store(static_cast<uint64_t>(generation) << 32 | rule.pack(),
                    std::memory_order_relaxed);
  // Release: pairs with the reader's acquire load of the sequence.
  entry.sequence.store(sequence + 2, std::memory_order_release);
}

UnwindRule rule_at(CacheEntry* cache, uintptr_t address, uint32_t generation) {
  UnwindRule rule;
  if (cache != nullptr && cache_read(cache, address, generation, &rule)) return rule;
  g_rule_misses.fetch_add(1, std::memory_order_relaxed);
  uint64_t rule_generation = 0;
  rule = find_unwind_rule(address, &rule_generation);
  if (cache != nullptr) cache_write(cache, address, static_cast<uint32_t>(rule_generation), rule);
  return rule;
}

uintptr_t load_word(uintptr_t address) {
  return *reinterpret_cast<const uintptr_t*>(address);
}

// The walk proper. Records like libgcc's callback in libgcc_walk below.
uint32_t walk(CacheEntry* cache, uint32_t generation, const StackWalkRegisters& registers,
              uintptr_t stack_low, uintptr_t stack_high, uintptr_t* frames, uint32_t max_frames,
              StackWalkEnd* end) {
  uintptr_t pc = registers.pc;
  uintptr_t sp = registers.sp;
  uintptr_t fp = registers.fp;
  uint32_t depth = 0;
  *end = StackWalkEnd::kMaxSteps;
  if (max_frames == 0) {
    *end = StackWalkEnd::kMaxFrames;
    return 0;
  }
  if (sp < stack_low || sp >= stack_high || (sp & 7) != 0) {
    *end = StackWalkEnd::kOutOfBounds;
    return 0;
  }
  for (uint32_t step = 0; step < kMaxSteps; ++step) {
    if (pc == 0) {  // a zero return address ends a stack (libgcc stops there too)
      *end = StackWalkEnd::kOutermost;
      break;
    }
    if (depth != 0 || !is_usgc_code_address(pc)) {
      frames[depth++] = pc - 1;
      if (depth == max_frames) {
        *end = StackWalkEnd::kMaxFrames;
        break;
      }
    }
    UnwindRule rule = rule_at(cache, step == 0 ? pc : pc - 1, generation);
    if (rule.kind != UnwindRule::kStep) {
      *end = rule.kind == UnwindRule::kOutermost  ? StackWalkEnd::kOutermost
             : rule.kind == UnwindRule::kFallback ? StackWalkEnd::kFallback
                                                  : StackWalkEnd::kNoObject;
      break;
    }
    uintptr_t cfa = (rule.cfa_from_rbp ? fp : sp) + rule.cfa_offset;
    // Strictly above this frame (so the walk ends), below the top, aligned: the return address
    // slot [cfa - 8, cfa) is then inside [sp, stack_high).
    if (cfa <= sp || cfa > stack_high || (cfa & 7) != 0) {
      *end = StackWalkEnd::kOutOfBounds;
      break;
    }
    if (rule.rbp_saved) {
      uintptr_t slot = cfa - 8 * uintptr_t{rule.rbp_slot};
      if (slot < stack_low || slot > cfa - 8) {
        *end = StackWalkEnd::kOutOfBounds;
        break;
      }
      fp = load_word(slot);
    }
    pc = load_word(cfa - 8);
    sp = cfa;
  }
  return depth;
}

struct LibgccWalk {
  uintptr_t* frames;
  uint32_t max_frames;
  uint32_t depth;
};

_Unwind_Reason_Code collect_frame(_Unwind_Context* context, void* data) {
  auto* walk = static_cast<LibgccWalk*>(data);
  uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  // usgc's own frames at the top (malloc, operator new, the allocator's paths).
  if (walk->depth == 0 && is_usgc_code_address(ip)) return _URC_NO_REASON;
  if (walk->depth == walk->max_frames) return _URC_END_OF_STACK;
  walk->frames[walk->depth++] = ip - 1;  // the call, not the return address
  return _URC_NO_REASON;
}

[[gnu::noinline]] uint32_t libgcc_walk(uintptr_t* frames, uint32_t max_frames) {
  LibgccWalk walk{frames, max_frames, 0};
  _Unwind_Backtrace(collect_frame, &walk);
  return walk.depth;
}

// Bounds for a walk from `sp`: the mapping that holds it, [*low, *high). The thread's own stack
// is cached (it is never unmapped while the thread runs): the main thread's ("[stack]", or the
// mapping that holds __libc_stack_end, the stack pointer at process start: under valgrind the main
// stack is an unnamed mapping), or for any other thread the mapping that also holds its thread
// descriptor (glibc puts it at the top of the thread's stack). Any other stack (a goroutine's, a
// coroutine's, a signal stack) may be unmapped and its range reused, so it is looked up for this
// walk only, at most kMaxStackLookups times per thread; then its walks go to libgcc.
bool stack_bounds_of(uintptr_t sp, uintptr_t* low, uintptr_t* high) {
  if (sp >= t_stack_low && sp < t_stack_high) {
    *low = t_stack_low;
    *high = t_stack_high;
    return true;
  }
  if (t_stack_lookups >= kMaxStackLookups) return false;
  t_stack_lookups++;
  g_stack_lookups.fetch_add(1, std::memory_order_relaxed);
  kernel::Result<kernel::MappingRange> mapping = kernel::find_mapping_containing(sp);
  if (!mapping.ok() || !mapping.value().readable) return false;
  const kernel::MappingRange& range = mapping.value();
  *low = range.start;
  *high = range.end;
  auto descriptor = reinterpret_cast<uintptr_t>(pthread_self());
  auto initial_stack =
      reinterpret_cast<uintptr_t>(&__libc_stack_end != nullptr ? __libc_stack_end : nullptr);
  auto holds = [&](uintptr_t address) { return address >= range.start && address < range.end; };
  if (range.process_stack || holds(descriptor) || (initial_stack != 0 && holds(initial_stack))) {
    t_stack_low = range.start;
    t_stack_high = range.end;
  }
  return true;
}

}  // namespace

bool is_usgc_code_address(uintptr_t address) {
  return address >= reinterpret_cast<uintptr_t>(__start_usgc_text) &&
         address < reinterpret_cast<uintptr_t>(__stop_usgc_text);
}

uint32_t stack_walk_capture(uintptr_t* frames, uint32_t max_frames, StackWalkMethod method) {
  if (method == StackWalkMethod::kLibgcc) return libgcc_walk(frames, max_frames);
  StackWalkRegisters registers;
  // The pc of the second instruction and rsp, rbp as they are there: one state of this frame,
  // which its own CFI describes.
  asm volatile(
      "lea 0(%%rip), %0\n\t"
      "mov %%rsp, %1\n\t"
      "mov %%rbp, %2"
      : "=&r"(registers.pc), "=&r"(registers.sp), "=&r"(registers.fp));
  g_walks.fetch_add(1, std::memory_order_relaxed);
  CacheEntry* cache = rule_cache();
  uintptr_t stack_low = 0;
  uintptr_t stack_high = 0;
  if (cache == nullptr || !stack_bounds_of(registers.sp, &stack_low, &stack_high)) {
    g_fallbacks.fetch_add(1, std::memory_order_relaxed);
    return libgcc_walk(frames, max_frames);
  }
  auto generation = static_cast<uint32_t>(loaded_objects_generation());
  StackWalkEnd end;
  uint32_t depth =
      walk(cache, generation, registers, registers.sp, stack_high, frames, max_frames, &end);
  if (end == StackWalkEnd::kFallback) {
    g_fallbacks.fetch_add(1, std::memory_order_relaxed);
    return libgcc_walk(frames, max_frames);
  }
  if (end != StackWalkEnd::kOutermost && end != StackWalkEnd::kMaxFrames)
    g_ended_early.fetch_add(1, std::memory_order_relaxed);
  return depth;
}

uint32_t stack_walk_from(const StackWalkRegisters& registers, uintptr_t stack_low,
                         uintptr_t stack_high, uintptr_t* frames, uint32_t max_frames,
                         StackWalkEnd* end) {
  auto generation = static_cast<uint32_t>(loaded_objects_generation());
  return walk(rule_cache(), generation, registers, stack_low, stack_high, frames, max_frames, end);
}

StackWalkCounters stack_walk_counters() {
  return StackWalkCounters{
      g_walks.load(std::memory_order_relaxed), g_fallbacks.load(std::memory_order_relaxed),
      g_rule_misses.load(std::memory_order_relaxed), g_ended_early.load(std::memory_order_relaxed),
      g_stack_lookups.load(std::memory_order_relaxed)};
}

}  // namespace usgc::alloc
