// alloc/heap_profile.cpp — sampling, the tables of sampled blocks and call stacks, the exit
// report and usgc_heap_profile_write. The design, invariants and hot-path cost are in
// heap_profile.hpp; the output formats in heap_profile_writer.cpp.
//
// Tables (all under g_profile_lock, rank kHeapProfile, a leaf; memory from kernel_iface mappings,
// never malloc):
//   stacks   an array of StackEntry (capacity kMaxStacks, the address space reserved once and
//            touched as it fills), chained from a hash of the frames through kStackBuckets
//            buckets. Entry 0 collects the samples whose stack arrived when the array was full.
//   blocks   open addressing with linear probing and backward-shift deletion, keyed by block
//            start; doubled (a new mapping, rehashed) above half full.
#include "alloc/heap_profile.hpp"

#include <dlfcn.h>
#include <link.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "alloc/stack_walk.hpp"
#include "kernel_iface/environment.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/random.hpp"
#include "kernel_iface/spin_lock.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "usgc/usgc.h"

namespace usgc::alloc {

HeapProfileOptions g_heap_profile_options;

namespace {

using kernel::LockRank;
using kernel::SpinLock;
using kernel::SpinLockGuard;

constexpr uint32_t kMaxStacks = 1u << 17;
constexpr uint32_t kStackBuckets = 1u << 16;
constexpr uint64_t kInitialBlockSlots = 1u << 12;

struct StackEntry {
  uint64_t hash;
  uint32_t depth;
  uint32_t next;  // index of the next entry of the bucket, 0: none (entry 0 is never chained)
  uintptr_t frames[kHeapProfileMaxFrames];
  uint64_t samples;
  double allocated_objects;
  double allocated_bytes;
};

struct BlockSlot {
  uintptr_t address;  // 0: empty
  uint64_t size;      // requested bytes
  uint32_t stack;
  // The bytes its sampling probability was computed for (the block size of a direct class), or 0:
  // the requested size (heap_profile.hpp, "Sampling").
  uint32_t sampled_bytes;
};

// All under g_profile_lock (written and read only with it held).
constinit SpinLock g_profile_lock{LockRank::kHeapProfile};
StackEntry* g_stacks = nullptr;  // kMaxStacks entries, mapped on the first sample
uint32_t* g_stack_buckets = nullptr;
uint32_t g_stack_count = 0;
BlockSlot* g_blocks = nullptr;
uint64_t g_block_slots = 0;  // a power of two
uint64_t g_block_count = 0;
bool g_tables_failed = false;  // a mapping failed: sampling stops (said once)

// The recursion guard: set while this thread samples, so what the unwinder allocates is not.
constinit thread_local bool t_in_profiler __attribute__((tls_model("initial-exec"))) = false;
constinit thread_local uint64_t t_random_state __attribute__((tls_model("initial-exec"))) = 0;

// usgc's own code: the build moves every library object's code into the section usgc_text (see
// safepoint/code_ranges.hpp), so [__start_usgc_text, __stop_usgc_text) is usgc, linked into a
// program or as a shared object alike. Frames inside it are dropped from the top of each stack.
// The executable's own code (its first executable segment) tells usgc's allocations for itself
// from the program's in the leak report. Computed on the first sample or snapshot (a race computes
// the same values twice).
std::atomic<int> g_ranges_state{0};  // 1: computed (release: the ranges below are set)
uintptr_t g_program_text_start = 0;
uintptr_t g_program_text_end = 0;

uint64_t next_random() {
  uint64_t x = t_random_state;
  if (x == 0) x = kernel::random_u64() | 1;
  x ^= x << 13;  // xorshift64
  x ^= x >> 7;
  x ^= x << 17;
  t_random_state = x;
  return x;
}

// ln and exp without libm (a C program linking libusgc.a need not add -lm). ln: x = m * 2^e
// with m in [1, 2), ln m = 2 atanh((m-1)/(m+1)) by its series (|t| <= 1/3: 14 terms reach 1e-15).
double natural_log(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  int exponent = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double mantissa;
  std::memcpy(&mantissa, &bits, sizeof(mantissa));
  double t = (mantissa - 1) / (mantissa + 1), t2 = t * t, term = t, sum = 0;
  for (int k = 1; k < 30; k += 2, term *= t2) sum += term / k;
  return exponent * 0.6931471805599453 + 2 * sum;
}

// 1 - exp(-x) for x >= 0, accurate for small x too.
double one_minus_exp_minus(double x) {
  if (x > 40) return 1.0;
  if (x < 1e-3) return x - x * x / 2 + x * x * x / 6;
  // exp(-x) = exp(-x / 2^k)^(2^k) with the series on a small argument.
  int halvings = 0;
  double y = x;
  while (y > 0.125) {
    y /= 2;
    ++halvings;
  }
  double term = 1, sum = 1;
  for (int k = 1; k < 16; ++k) {
    term *= -y / k;
    sum += term;
  }
  while (halvings-- > 0) sum *= sum;
  return 1 - sum;
}

// The estimate one sample of `size` bytes stands for: 1 / (1 - exp(-size/R)) allocations.
double weight_of(uint64_t size, uint64_t interval) {
  if (interval <= 1 || size == 0) return 1.0;
  double probability =
      one_minus_exp_minus(static_cast<double>(size) / static_cast<double>(interval));
  return probability > 0 ? 1.0 / probability : 1.0;
}

int find_program_text(dl_phdr_info* info, size_t, void*) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {  // the first object is the executable
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD || (header.p_flags & PF_X) == 0) continue;
    g_program_text_start = info->dlpi_addr + header.p_vaddr;
    g_program_text_end = g_program_text_start + header.p_memsz;
    break;
  }
  return 1;
}

void compute_ranges() {
  if (g_ranges_state.load(std::memory_order_acquire) == 1) return;
  ::dl_iterate_phdr(find_program_text, nullptr);
  // Release: pairs with the acquire above; readers see the range.
  g_ranges_state.store(1, std::memory_order_release);
}

bool is_program_code(uintptr_t address) {
  return address >= g_program_text_start && address < g_program_text_end;
}

// usgc allocated this for itself (libnuma's topology at start, ...): the top frame is not the
// program's, and usgc's code comes before any of the program's below it.
bool made_by_usgc(const uintptr_t* frames, uint32_t depth) {
  if (depth == 0 || is_program_code(frames[0])) return false;
  for (uint32_t i = 1; i < depth; ++i) {
    if (is_program_code(frames[i])) return false;
    if (is_usgc_code_address(frames[i])) return true;
  }
  return false;
}

uint64_t hash_of_frames(const uintptr_t* frames, uint32_t depth) {
  uint64_t hash = 0x9e3779b97f4a7c15ull ^ depth;
  for (uint32_t i = 0; i < depth; ++i) {
    hash ^= frames[i];
    hash *= 0xff51afd7ed558ccdull;
    hash ^= hash >> 32;
  }
  return hash;
}

uint64_t slot_of(uintptr_t address, uint64_t slots) {
  uint64_t hash = (address >> 4) * 0x9e3779b97f4a7c15ull;
  return (hash >> 20) & (slots - 1);
}

// Maps zeroed memory for a table; false (and sampling stops) when the kernel refuses.
void* map_table(size_t bytes) {
  size_t page = kernel::os_page_size();
  kernel::Result<void*> mapped = kernel::map_aligned((bytes + page - 1) & ~(page - 1), page);
  if (!mapped.ok()) {
    if (!g_tables_failed)
      kernel::print_message(
          "heap profile: cannot map %zu bytes for its tables (errno %d): "
          "sampling stops here",
          bytes, mapped.error());
    g_tables_failed = true;
    return nullptr;
  }
  return mapped.value();
}

void unmap_table(void* table, size_t bytes) {
  size_t page = kernel::os_page_size();
  (void)kernel::unmap(table, (bytes + page - 1) & ~(page - 1));  // address space only
}

bool ensure_tables() {
  if (g_stacks != nullptr) return true;
  if (g_tables_failed) return false;
  auto* stacks = static_cast<StackEntry*>(map_table(sizeof(StackEntry) * kMaxStacks));
  auto* buckets = static_cast<uint32_t*>(map_table(sizeof(uint32_t) * kStackBuckets));
  auto* blocks = static_cast<BlockSlot*>(map_table(sizeof(BlockSlot) * kInitialBlockSlots));
  if (stacks == nullptr || buckets == nullptr || blocks == nullptr) return false;
  g_stacks = stacks;
  g_stack_buckets = buckets;
  g_blocks = blocks;
  g_block_slots = kInitialBlockSlots;
  g_stack_count = 1;  // entry 0: stacks that found the array full
  return true;
}

uint32_t intern_stack(const uintptr_t* frames, uint32_t depth) {
  uint64_t hash = hash_of_frames(frames, depth);
  uint32_t* bucket = &g_stack_buckets[hash & (kStackBuckets - 1)];
  for (uint32_t index = *bucket; index != 0; index = g_stacks[index].next) {
    StackEntry& entry = g_stacks[index];
    if (entry.hash == hash && entry.depth == depth &&
        std::memcmp(entry.frames, frames, depth * sizeof(uintptr_t)) == 0)
      return index;
  }
  if (g_stack_count == kMaxStacks) return 0;
  uint32_t index = g_stack_count++;
  StackEntry& entry = g_stacks[index];
  entry.hash = hash;
  entry.depth = depth;
  std::memcpy(entry.frames, frames, depth * sizeof(uintptr_t));
  entry.next = *bucket;
  *bucket = index;
  return index;
}

void insert_block(BlockSlot* table, uint64_t slots, const BlockSlot& block) {
  for (uint64_t i = slot_of(block.address, slots);; i = (i + 1) & (slots - 1)) {
    if (table[i].address == 0 || table[i].address == block.address) {
      table[i] = block;
      return;
    }
  }
}

bool grow_blocks() {
  uint64_t slots = g_block_slots * 2;
  auto* table = static_cast<BlockSlot*>(map_table(sizeof(BlockSlot) * slots));
  if (table == nullptr) return false;
  for (uint64_t i = 0; i < g_block_slots; ++i)
    if (g_blocks[i].address != 0) insert_block(table, slots, g_blocks[i]);
  unmap_table(g_blocks, sizeof(BlockSlot) * g_block_slots);
  g_blocks = table;
  g_block_slots = slots;
  return true;
}

BlockSlot* find_block(uintptr_t address) {
  for (uint64_t i = slot_of(address, g_block_slots);; i = (i + 1) & (g_block_slots - 1)) {
    if (g_blocks[i].address == address) return &g_blocks[i];
    if (g_blocks[i].address == 0) return nullptr;
  }
}

// Backward-shift deletion: no tombstones, lookups stay short.
void remove_block(BlockSlot* slot) {
  uint64_t mask = g_block_slots - 1;
  uint64_t hole = static_cast<uint64_t>(slot - g_blocks);
  for (uint64_t i = (hole + 1) & mask; g_blocks[i].address != 0; i = (i + 1) & mask) {
    uint64_t home = slot_of(g_blocks[i].address, g_block_slots);
    // Move the entry into the hole if its home is not between the hole and it (cyclically).
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      g_blocks[hole] = g_blocks[i];
      hole = i;
    }
  }
  g_blocks[hole].address = 0;
  g_block_count--;
}

void record_sample(void* block, size_t size, size_t sampled_bytes, const uintptr_t* frames,
                   uint32_t depth) {
  double weight = weight_of(sampled_bytes, g_heap_profile_options.sample_interval_bytes);
  SpinLockGuard guard(g_profile_lock);
  if (!ensure_tables()) return;
  if ((g_block_count + 1) * 2 > g_block_slots && !grow_blocks()) return;
  uint32_t stack = intern_stack(frames, depth);
  StackEntry& entry = g_stacks[stack];
  entry.samples++;
  entry.allocated_objects += weight;
  entry.allocated_bytes += weight * static_cast<double>(size);
  BlockSlot slot{reinterpret_cast<uintptr_t>(block), size, stack,
                 sampled_bytes == size ? 0 : static_cast<uint32_t>(sampled_bytes)};
  if (find_block(slot.address) == nullptr) g_block_count++;
  insert_block(g_blocks, g_block_slots, slot);
}

const char* default_profile_path(char* buffer, size_t bytes) {
  std::snprintf(buffer, bytes, "usgc-%d.heap.pb.gz", kernel::current_process_id());
  return buffer;
}

}  // namespace

void heap_profile_initialize() {
  using kernel::EnvironmentVariableId;
  HeapProfileOptions options;
  options.profile = kernel::read_environment_number(EnvironmentVariableId::kProf, 0) == 1;
  options.leaks = kernel::read_environment_number(EnvironmentVariableId::kLeaks, 0) == 1;
  // The leak report wants every block unless the user chose a rate.
  uint64_t default_interval = options.leaks ? 1 : options.sample_interval_bytes;
  if (options.profile || options.leaks ||
      kernel::environment_text(EnvironmentVariableId::kProfSample)) {
    options.sample_interval_bytes =
        kernel::read_environment_number(EnvironmentVariableId::kProfSample, default_interval);
  }
  if (options.profile) {  // refused now, at start, rather than at exit
    char path[64];
    (void)kernel::read_environment_path(EnvironmentVariableId::kProfFile,
                                        default_profile_path(path, sizeof(path)));
  }
  g_heap_profile_options = options;
}

int64_t heap_profile_next_countdown() {
  if (!heap_profile_active()) return INT64_MAX;
  uint64_t interval = g_heap_profile_options.sample_interval_bytes;
  if (interval <= 1) return 0;
  // An exponential of mean `interval`: -ln(U) * interval, U uniform in (0, 1].
  double uniform = static_cast<double>((next_random() >> 11) + 1) * (1.0 / 9007199254740992.0);
  double countdown = -natural_log(uniform) * static_cast<double>(interval);
  return countdown < 4.0e18 ? static_cast<int64_t>(countdown) : INT64_MAX / 2;
}

void heap_profile_sample(Heap* heap, void* block, size_t size) {
  heap->sample_countdown_bytes = heap_profile_next_countdown();
  if (block != nullptr) heap_profile_record(block, size, size);
}

void heap_profile_record(void* block, size_t size, size_t sampled_bytes) {
  if (t_in_profiler || !heap_profile_active()) return;
  t_in_profiler = true;
  compute_ranges();
  uintptr_t frames[kHeapProfileMaxFrames];
  uint32_t depth = stack_walk_capture(frames, kHeapProfileMaxFrames, StackWalkMethod::kCachedRules);
  record_sample(block, size, sampled_bytes, frames, depth);
  t_in_profiler = false;
}

void heap_profile_forget(const void* block) {
  SpinLockGuard guard(g_profile_lock);
  if (g_blocks == nullptr) return;
  if (BlockSlot* slot = find_block(reinterpret_cast<uintptr_t>(block))) remove_block(slot);
}

void heap_profile_moved(const void* old_block, const void* new_block, size_t size) {
  SpinLockGuard guard(g_profile_lock);
  if (g_blocks == nullptr) return;
  BlockSlot* slot = find_block(reinterpret_cast<uintptr_t>(old_block));
  if (slot == nullptr) return;
  BlockSlot moved = *slot;
  remove_block(slot);
  moved.address = reinterpret_cast<uintptr_t>(new_block);
  moved.size = size;
  g_block_count++;
  insert_block(g_blocks, g_block_slots, moved);  // never fuller than before
}

void heap_profile_before_fork() {
  g_profile_lock.lock();
}

void heap_profile_after_fork() {
  g_profile_lock.unlock();
}

bool heap_profile_take_snapshot(HeapProfileSnapshot* snapshot) {
  *snapshot = HeapProfileSnapshot{};
  snapshot->sample_interval_bytes = g_heap_profile_options.sample_interval_bytes;
  compute_ranges();
  SpinLockGuard guard(g_profile_lock);
  if (g_stacks == nullptr) return true;  // nothing sampled yet
  size_t bytes = sizeof(HeapProfileSite) * g_stack_count;
  auto* sites = static_cast<HeapProfileSite*>(map_table(bytes));
  if (sites == nullptr) return false;
  for (uint32_t i = 0; i < g_stack_count; ++i) {
    const StackEntry& entry = g_stacks[i];
    HeapProfileSite& site = sites[i];
    site.depth = entry.depth;
    std::memcpy(site.frames, entry.frames, entry.depth * sizeof(uintptr_t));
    site.samples = entry.samples;
    site.allocated_objects = entry.allocated_objects;
    site.allocated_bytes = entry.allocated_bytes;
    site.made_by_usgc = made_by_usgc(entry.frames, entry.depth);
  }
  for (uint64_t i = 0; i < g_block_slots; ++i) {
    const BlockSlot& block = g_blocks[i];
    if (block.address == 0) continue;
    double weight = weight_of(block.sampled_bytes != 0 ? block.sampled_bytes : block.size,
                              snapshot->sample_interval_bytes);
    HeapProfileSite& site = sites[block.stack];
    site.live_objects += weight;
    site.live_bytes += weight * static_cast<double>(block.size);
    site.live_samples++;
  }
  snapshot->sites = sites;
  snapshot->count = g_stack_count;
  snapshot->mapped_bytes = bytes;
  return true;
}

void heap_profile_release_snapshot(HeapProfileSnapshot* snapshot) {
  if (snapshot->sites != nullptr) unmap_table(snapshot->sites, snapshot->mapped_bytes);
  *snapshot = HeapProfileSnapshot{};
}

namespace {

int write_profile(const char* path, bool print_summary = true) {
  char default_path[64];
  if (path == nullptr) {
    path = kernel::read_environment_path(kernel::EnvironmentVariableId::kProfFile,
                                         default_profile_path(default_path, sizeof(default_path)));
  }
  bool was_in_profiler = t_in_profiler;
  t_in_profiler = true;  // what the writer's libc calls allocate is not sampled
  HeapProfileSnapshot snapshot;
  int error = heap_profile_take_snapshot(&snapshot) ? 0 : ENOMEM;
  if (error == 0) error = heap_profile_write_file(snapshot, path);
  if (error == 0 && print_summary) heap_profile_print_summary(snapshot, path);
  heap_profile_release_snapshot(&snapshot);
  t_in_profiler = was_in_profiler;
  return error;
}

// At exit (a destructor, like the stats block's: it runs after the program's own destructors
// and atexit handlers): the profile and its summary, then the leak report.
__attribute__((destructor)) void heap_profile_at_exit() {
  if (g_heap_profile_options.profile) {
    int error = write_profile(nullptr);
    if (error != 0) kernel::print_message("heap profile: not written (errno %d)", error);
  }
  if (g_heap_profile_options.leaks) {
    t_in_profiler = true;
    HeapProfileSnapshot snapshot;
    if (heap_profile_take_snapshot(&snapshot)) heap_profile_print_leaks(snapshot);
    heap_profile_release_snapshot(&snapshot);
    t_in_profiler = false;
  }
}

}  // namespace

int heap_profile_write_requested(uint32_t number, char* path, size_t path_bytes) {
  if (!g_heap_profile_options.profile) return ENOTSUP;
  if (path_bytes == 0) return EINVAL;
  // The exit profile's path (USGC_PROF_FILE or the default), numbered: "x.pb.gz" -> "x.<n>.pb.gz",
  // anything else -> "<path>.<n>". Only `number` varies, and it is this process's own count.
  char default_path[64];
  const char* base =
      kernel::read_environment_path(kernel::EnvironmentVariableId::kProfFile,
                                    default_profile_path(default_path, sizeof(default_path)));
  size_t length = std::strlen(base);
  static constexpr char kSuffix[] = ".pb.gz";
  size_t suffix = sizeof(kSuffix) - 1;
  size_t stem = length > suffix && std::strcmp(base + length - suffix, kSuffix) == 0
                    ? length - suffix
                    : length;
  int written = std::snprintf(path, path_bytes, "%.*s.%u%s", static_cast<int>(stem), base, number,
                              base + stem);
  if (written < 0 || static_cast<size_t>(written) >= path_bytes) return ENAMETOOLONG;
  return write_profile(path, false);
}

}  // namespace usgc::alloc

extern "C" int usgc_heap_profile_write(const char* path) {
  if (!usgc::alloc::g_heap_profile_options.profile) return ENOTSUP;
  return usgc::alloc::write_profile(path);
}
