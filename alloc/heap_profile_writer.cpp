// alloc/heap_profile_writer.cpp — the heap profile's outputs: the pprof file, the stderr summary
// and the leak report. Not on any hot path (exit, or usgc_heap_profile_write); never allocates
// through malloc (buffers are mappings), so it runs at exit whatever state the heap is in.
//
// The file is pprof's profile.proto (github.com/google/pprof/proto/profile.proto), gzip'd, with
// the four sample types of Go's heap profiles, so `go tool pprof` and `pprof` read it as they
// read a Go heap profile: alloc_objects/count, alloc_space/bytes, inuse_objects/count,
// inuse_space/bytes (the default view, as for Go), period_type space/bytes, period = the sampling
// interval. Values are the unbiased estimates (heap_profile.hpp), rounded. Locations carry
// addresses only, with one Mapping per executable segment of each loaded object (from
// dl_iterate_phdr): pprof symbolizes them from the binaries with binutils, as for perf profiles.
// The gzip stream uses stored (uncompressed) deflate blocks: any gzip reader takes them, and no
// compression library is needed inside malloc.
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <new>

#include "alloc/heap_profile.hpp"
#include "kernel_iface/append_file.hpp"
#include "kernel_iface/clock.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/shared_memory.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::alloc {
namespace {

// A growable byte buffer in mappings of its own.
class Bytes {
 public:
  Bytes() = default;
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  ~Bytes() {
    if (data_ != nullptr) (void)kernel::unmap(data_, capacity_);
  }
  bool failed() const { return failed_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  void put(const void* bytes, size_t count) {
    if (!reserve(count)) return;
    std::memcpy(data_ + size_, bytes, count);
    size_ += count;
  }
  void put_byte(uint8_t byte) { put(&byte, 1); }
  void put_varint(uint64_t value) {
    uint8_t encoded[10];
    size_t length = 0;
    do {
      encoded[length++] = static_cast<uint8_t>((value & 0x7f) | (value >= 0x80 ? 0x80 : 0));
      value >>= 7;
    } while (value != 0);
    put(encoded, length);
  }

 private:
  bool reserve(size_t count) {
    if (failed_) return false;
    if (size_ + count <= capacity_) return true;
    size_t capacity = capacity_ == 0 ? size_t{1} << 16 : capacity_;
    while (capacity < size_ + count) capacity *= 2;
    kernel::Result<void*> mapped = kernel::map_aligned(capacity, kernel::os_page_size());
    if (!mapped.ok()) {
      failed_ = true;
      return false;
    }
    auto* grown = static_cast<uint8_t*>(mapped.value());
    if (data_ != nullptr) {
      std::memcpy(grown, data_, size_);
      (void)kernel::unmap(data_, capacity_);
    }
    data_ = grown;
    capacity_ = capacity;
    return true;
  }

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  bool failed_ = false;
};

// ---- protocol buffers: only varint (0) and length-delimited (2) fields are needed ----
size_t varint_size(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

void put_key(Bytes& out, uint32_t field, uint32_t wire_type) {
  out.put_varint((uint64_t{field} << 3) | wire_type);
}

void put_varint_field(Bytes& out, uint32_t field, uint64_t value) {
  put_key(out, field, 0);
  out.put_varint(value);
}

size_t varint_field_size(uint32_t field, uint64_t value) {
  return varint_size(uint64_t{field} << 3) + varint_size(value);
}

// A message of varint fields only (ValueType, Mapping, Location): field numbers and values.
struct VarintMessage {
  uint32_t fields[6];
  uint64_t values[6];
  uint32_t count = 0;
  void add(uint32_t field, uint64_t value) {
    fields[count] = field;
    values[count++] = value;
  }
  size_t size() const {
    size_t total = 0;
    for (uint32_t i = 0; i < count; ++i) total += varint_field_size(fields[i], values[i]);
    return total;
  }
  void put_as_field(Bytes& out, uint32_t field) const {
    put_key(out, field, 2);
    out.put_varint(size());
    for (uint32_t i = 0; i < count; ++i) put_varint_field(out, fields[i], values[i]);
  }
};

void put_string(Bytes& out, const char* text) {
  size_t length = std::strlen(text);
  put_key(out, 6, 2);  // Profile.string_table
  out.put_varint(length);
  out.put(text, length);
}

// ---- what the profile refers to ----
constexpr uint32_t kMaxMappings = 512;
struct Mapping {
  uintptr_t start, limit, file_offset;
  uint32_t
      object;  // index into the objects' names (string table index = kFirstObjectString + object)
};
struct Mappings {
  Mapping mappings[kMaxMappings];
  uint32_t count = 0;
  char names[128][512];
  uint32_t name_count = 0;
};

int collect_mapping(dl_phdr_info* info, size_t, void* data) {
  auto* all = static_cast<Mappings*>(data);
  if (all->name_count == 128) return 1;
  uint32_t object = all->name_count;
  char* name = all->names[object];
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
    std::strncpy(name, info->dlpi_name, sizeof(all->names[0]) - 1);
    name[sizeof(all->names[0]) - 1] = '\0';
  } else if (object == 0) {  // the executable comes first, without a name
    if (!kernel::read_executable_path(name, sizeof(all->names[0])).ok()) name[0] = '\0';
  } else {
    name[0] = '\0';
  }
  bool any = false;
  for (int i = 0; i < info->dlpi_phnum && all->count < kMaxMappings; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type != PT_LOAD || (header.p_flags & PF_X) == 0) continue;
    uintptr_t start = info->dlpi_addr + header.p_vaddr;
    // Page-aligned like the kernel's mapping, as pprof expects of /proc/self/maps entries.
    uintptr_t page_delta = header.p_vaddr & 4095;
    all->mappings[all->count++] = {start - page_delta, start + header.p_memsz,
                                   header.p_offset - page_delta, object};
    any = true;
  }
  if (any) all->name_count++;
  return 0;
}

uint32_t mapping_of(const Mappings& all, uintptr_t address) {
  for (uint32_t i = 0; i < all.count; ++i)
    if (address >= all.mappings[i].start && address < all.mappings[i].limit) return i + 1;
  return 0;
}

// Location ids: one per distinct address (open addressing over a mapping).
struct LocationTable {
  uintptr_t* addresses = nullptr;  // 0: empty
  uint32_t* ids = nullptr;
  uint64_t slots = 0;
  size_t bytes = 0;
  uint32_t next_id = 1;
  bool init(uint64_t frames) {
    slots = 64;
    while (slots < frames * 2) slots *= 2;
    bytes = (slots * (sizeof(uintptr_t) + sizeof(uint32_t)) + 4095) & ~size_t{4095};
    kernel::Result<void*> mapped = kernel::map_aligned(bytes, kernel::os_page_size());
    if (!mapped.ok()) return false;
    addresses = static_cast<uintptr_t*>(mapped.value());
    ids = reinterpret_cast<uint32_t*>(addresses + slots);
    return true;
  }
  ~LocationTable() {
    if (addresses != nullptr) (void)kernel::unmap(addresses, bytes);
  }
  // The id of `address`; *is_new when it was just given one.
  uint32_t id_of(uintptr_t address, bool* is_new) {
    for (uint64_t i = (address * 0x9e3779b97f4a7c15ull >> 17) & (slots - 1);;
         i = (i + 1) & (slots - 1)) {
      if (addresses[i] == address) {
        *is_new = false;
        return ids[i];
      }
      if (addresses[i] == 0) {
        addresses[i] = address;
        ids[i] = next_id++;
        *is_new = true;
        return ids[i];
      }
    }
  }
};

int64_t rounded(double value) {
  return value <= 0 ? 0 : static_cast<int64_t>(value + 0.5);
}

bool encode_profile(const HeapProfileSnapshot& snapshot, Bytes& out) {
  // The string table: fixed strings first, then one name per object.
  static const char* const kStrings[] = {"",      "alloc_objects", "count",       "alloc_space",
                                         "bytes", "inuse_objects", "inuse_space", "space"};
  constexpr uint64_t kFirstObjectString = 8;
  auto* mappings = static_cast<Mappings*>(nullptr);
  kernel::Result<void*> mapped =
      kernel::map_aligned((sizeof(Mappings) + 4095) & ~size_t{4095}, kernel::os_page_size());
  if (!mapped.ok()) return false;
  mappings = new (mapped.value()) Mappings;
  ::dl_iterate_phdr(collect_mapping, mappings);

  const uint64_t types[4][2] = {{1, 2}, {3, 4}, {5, 2}, {6, 4}};
  for (const auto& type : types) {
    VarintMessage value_type;
    value_type.add(1, type[0]);
    value_type.add(2, type[1]);
    value_type.put_as_field(out, 1);  // Profile.sample_type
  }
  uint64_t frames = 0;
  for (uint32_t i = 0; i < snapshot.count; ++i) frames += snapshot.sites[i].depth;
  LocationTable locations;
  bool ok = locations.init(frames + 1);
  for (uint32_t i = 0; ok && i < snapshot.count; ++i) {
    const HeapProfileSite& site = snapshot.sites[i];
    if (site.samples == 0 && site.live_samples == 0) continue;
    uint32_t ids[kHeapProfileMaxFrames];
    for (uint32_t f = 0; f < site.depth; ++f) {
      bool is_new;
      ids[f] = locations.id_of(site.frames[f], &is_new);
      if (is_new) {
        VarintMessage location;
        location.add(1, ids[f]);
        location.add(2, mapping_of(*mappings, site.frames[f]));
        location.add(3, site.frames[f]);
        location.put_as_field(out, 4);  // Profile.location
      }
    }
    int64_t values[4] = {rounded(site.allocated_objects), rounded(site.allocated_bytes),
                         rounded(site.live_objects), rounded(site.live_bytes)};
    size_t ids_size = 0, values_size = 0;
    for (uint32_t f = 0; f < site.depth; ++f) ids_size += varint_size(ids[f]);
    for (int64_t value : values) values_size += varint_size(static_cast<uint64_t>(value));
    size_t sample_size = (site.depth == 0 ? 0 : 1 + varint_size(ids_size) + ids_size) + 1 +
                         varint_size(values_size) + values_size;
    put_key(out, 2, 2);  // Profile.sample
    out.put_varint(sample_size);
    if (site.depth != 0) {
      put_key(out, 1, 2);  // Sample.location_id, packed
      out.put_varint(ids_size);
      for (uint32_t f = 0; f < site.depth; ++f) out.put_varint(ids[f]);
    }
    put_key(out, 2, 2);  // Sample.value, packed
    out.put_varint(values_size);
    for (int64_t value : values) out.put_varint(static_cast<uint64_t>(value));
  }
  for (uint32_t i = 0; i < mappings->count; ++i) {
    const Mapping& mapping = mappings->mappings[i];
    VarintMessage message;
    message.add(1, i + 1);
    message.add(2, mapping.start);
    message.add(3, mapping.limit);
    message.add(4, mapping.file_offset);
    message.add(5, kFirstObjectString + mapping.object);
    message.put_as_field(out, 3);  // Profile.mapping
  }
  for (const char* text : kStrings) put_string(out, text);
  for (uint32_t i = 0; i < mappings->name_count; ++i) put_string(out, mappings->names[i]);
  put_varint_field(out, 9, kernel::realtime_ns());  // Profile.time_nanos
  VarintMessage period_type;
  period_type.add(1, 7);  // "space"
  period_type.add(2, 4);  // "bytes"
  period_type.put_as_field(out, 11);
  put_varint_field(out, 12, snapshot.sample_interval_bytes);  // Profile.period
  (void)kernel::unmap(mappings, (sizeof(Mappings) + 4095) & ~size_t{4095});
  return ok && !out.failed();
}

// ---- gzip with stored deflate blocks (RFC 1951 3.2.4, RFC 1952) ----
uint32_t crc32_of(const uint8_t* data, size_t size) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[n] = c;
    }
    ready = true;
  }
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

void put_le32(Bytes& out, uint32_t value) {
  uint8_t bytes[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                      static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
  out.put(bytes, 4);
}

void gzip_stored(const Bytes& in, Bytes& out) {
  static const uint8_t kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  out.put(kHeader, sizeof(kHeader));
  size_t offset = 0;
  do {
    size_t chunk = in.size() - offset > 65535 ? 65535 : in.size() - offset;
    bool last = offset + chunk == in.size();
    out.put_byte(last ? 1 : 0);  // BFINAL, BTYPE 00 (stored)
    uint16_t length = static_cast<uint16_t>(chunk);
    uint16_t inverse = static_cast<uint16_t>(~length);
    uint8_t lengths[4] = {static_cast<uint8_t>(length), static_cast<uint8_t>(length >> 8),
                          static_cast<uint8_t>(inverse), static_cast<uint8_t>(inverse >> 8)};
    out.put(lengths, 4);
    out.put(in.data() + offset, chunk);
    offset += chunk;
  } while (offset < in.size());
  put_le32(out, crc32_of(in.data(), in.size()));
  put_le32(out, static_cast<uint32_t>(in.size()));
}

// ---- text ----
__attribute__((format(printf, 3, 4))) void kernel_format(char* buffer, size_t bytes,
                                                         const char* format, ...) {
  va_list args;
  va_start(args, format);
  kernel::format_message(buffer, bytes, format, args);
  va_end(args);
}

// "function+0xoffset (object)" of an address, or "0xaddress (object)".
void describe_frame(uintptr_t address, char* buffer, size_t bytes) {
  Dl_info info;
  std::memset(&info, 0, sizeof(info));
  if (::dladdr(reinterpret_cast<void*>(address), &info) == 0 || info.dli_fname == nullptr) {
    kernel_format(buffer, bytes, "%p", reinterpret_cast<void*>(address));
    return;
  }
  if (info.dli_sname != nullptr) {
    kernel_format(buffer, bytes, "%s+0x%lx (%s)", info.dli_sname,
                  static_cast<unsigned long>(address - reinterpret_cast<uintptr_t>(info.dli_saddr)),
                  info.dli_fname);
  } else {
    kernel_format(
        buffer, bytes, "%p (%s+0x%lx)", reinterpret_cast<void*>(address), info.dli_fname,
        static_cast<unsigned long>(address - reinterpret_cast<uintptr_t>(info.dli_fbase)));
  }
}

// Indices of the sites with the largest `key`, up to `limit` of them, largest first.
template <typename Key>
uint32_t top_sites(const HeapProfileSnapshot& snapshot, Key key, uint32_t* top, uint32_t limit) {
  uint32_t count = 0;
  for (uint32_t i = 0; i < snapshot.count; ++i) {
    double value = key(snapshot.sites[i]);
    if (value <= 0) continue;
    uint32_t at = count < limit ? count++ : limit;
    if (at == limit && value <= key(snapshot.sites[top[limit - 1]])) continue;
    if (at == limit) at = limit - 1;
    while (at > 0 && key(snapshot.sites[top[at - 1]]) < value) {
      top[at] = top[at - 1];
      --at;
    }
    top[at] = i;
  }
  return count;
}

}  // namespace

int heap_profile_write_file(const HeapProfileSnapshot& snapshot, const char* path) {
  Bytes profile;
  if (!encode_profile(snapshot, profile)) return ENOMEM;
  Bytes compressed;
  gzip_stored(profile, compressed);
  if (compressed.failed()) return ENOMEM;
  kernel::Result<int> file = kernel::open_output_file(path, 0644);
  if (!file.ok()) return file.error();
  kernel::Status written = kernel::append_all(file.value(), compressed.data(), compressed.size());
  kernel::Status closed = kernel::close_file(file.value());
  if (!written.ok()) return written.error();
  return closed.ok() ? 0 : closed.error();
}

void heap_profile_print_summary(const HeapProfileSnapshot& snapshot, const char* path) {
  double live = 0, allocated = 0;
  uint64_t samples = 0;
  for (uint32_t i = 0; i < snapshot.count; ++i) {
    live += snapshot.sites[i].live_bytes;
    allocated += snapshot.sites[i].allocated_bytes;
    samples += snapshot.sites[i].samples;
  }
  kernel::print_message(
      "heap profile: %lu samples (1 per %lu bytes): %lu bytes live, %lu allocated (estimates); "
      "written to %s (read it with: go tool pprof PROGRAM %s)",
      static_cast<unsigned long>(samples),
      static_cast<unsigned long>(snapshot.sample_interval_bytes),
      static_cast<unsigned long>(rounded(live)), static_cast<unsigned long>(rounded(allocated)),
      path, path);
  uint32_t top[5];
  uint32_t count = top_sites(
      snapshot, [](const HeapProfileSite& site) { return site.live_bytes; }, top, 5);
  for (uint32_t i = 0; i < count; ++i) {
    const HeapProfileSite& site = snapshot.sites[top[i]];
    char where[600];
    if (site.depth == 0)
      kernel_format(where, sizeof(where), "(stack unknown)");
    else
      describe_frame(site.frames[0], where, sizeof(where));
    kernel::print_message("  %lu bytes live in %lu blocks, %lu allocated: %s",
                          static_cast<unsigned long>(rounded(site.live_bytes)),
                          static_cast<unsigned long>(rounded(site.live_objects)),
                          static_cast<unsigned long>(rounded(site.allocated_bytes)), where);
  }
}

void heap_profile_print_leaks(const HeapProfileSnapshot& snapshot) {
  bool exact = snapshot.sample_interval_bytes <= 1;
  double bytes = 0, blocks = 0;
  uint32_t sites = 0;
  for (uint32_t i = 0; i < snapshot.count; ++i) {
    if (snapshot.sites[i].live_samples == 0 || snapshot.sites[i].made_by_usgc) continue;
    bytes += snapshot.sites[i].live_bytes;
    blocks += snapshot.sites[i].live_objects;
    ++sites;
  }
  if (sites == 0) {
    kernel::print_message("leak report: no block allocated%s is still allocated at exit",
                          exact ? "" : " (of the sampled ones)");
    return;
  }
  constexpr uint32_t kShownSites = 20;
  uint32_t top[kShownSites];
  uint32_t count = top_sites(
      snapshot,
      [](const HeapProfileSite& site) { return site.made_by_usgc ? 0.0 : site.live_bytes; }, top,
      kShownSites);
  for (uint32_t i = 0; i < count; ++i) {
    const HeapProfileSite& site = snapshot.sites[top[i]];
    kernel::print_message("leak: %lu bytes in %lu blocks%s still allocated, from:",
                          static_cast<unsigned long>(rounded(site.live_bytes)),
                          static_cast<unsigned long>(rounded(site.live_objects)),
                          exact ? "" : " (estimated)");
    uint32_t shown = site.depth < 8 ? site.depth : 8;
    for (uint32_t f = 0; f < shown; ++f) {
      char where[600];
      describe_frame(site.frames[f], where, sizeof(where));
      kernel::print_message("    #%u %s", f, where);
    }
    if (site.depth == 0) kernel::print_message("    (stack unknown: too many distinct stacks)");
  }
  if (count < sites) kernel::print_message("leak: ... and %u more sites", sites - count);
  kernel::print_message("SUMMARY: %lu bytes in %lu blocks still allocated at exit, from %u sites%s",
                        static_cast<unsigned long>(rounded(bytes)),
                        static_cast<unsigned long>(rounded(blocks)), sites,
                        exact ? "" : " (estimated from samples)");
}

}  // namespace usgc::alloc
