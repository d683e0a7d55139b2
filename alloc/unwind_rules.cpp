// alloc/unwind_rules.cpp — see unwind_rules.hpp. The formats: .eh_frame_hdr (version, encodings,
// a sorted table of (initial location, FDE) pairs, both DW_EH_PE_datarel | sdata4 relative to the
// header), .eh_frame's CIE and FDE records (LSB Core, "Exception Frames") and the DWARF call frame
// instructions (DWARF 4, section 6.4). Only the registers the rule needs are tracked: rbp (6),
// rsp (7) and the return address column (16); every other register's rules are parsed and
// ignored.
#include "alloc/unwind_rules.hpp"

#include <link.h>

#include <cstddef>
#include <cstring>

namespace usgc::alloc {
namespace {

constexpr uint64_t kRegisterRbp = 6;
constexpr uint64_t kRegisterRsp = 7;
constexpr uint64_t kRegisterReturnAddress = 16;
constexpr int kMaxSegments = 16;
constexpr int kMaxRememberedStates = 8;

// DW_EH_PE_* pointer encodings.
constexpr uint8_t kEncodingOmit = 0xff;
constexpr uint8_t kEncodingDatarelSdata4 = 0x3b;

// Internal: the address lies in the object but no FDE covers it (code without CFI).
// find_unwind_rule then does what libgcc does there (x86_64_fallback_frame_state): a signal
// trampoline (rt_sigreturn) is libgcc's to unwind, anything else is the walk's last frame.
constexpr auto kNotCovered = static_cast<UnwindRule::Kind>(7);
// movq $15 (rt_sigreturn), %rax; syscall — at the return address.
constexpr uint8_t kSigreturnCode[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};

// The readable loaded segments of the object being read.
struct Segments {
  uintptr_t start[kMaxSegments];
  uintptr_t end[kMaxSegments];
  int count = 0;
};

bool readable(const Segments& segments, uintptr_t address, uint64_t bytes) {
  if (address + bytes < address) return false;
  for (int i = 0; i < segments.count; ++i)
    if (address >= segments.start[i] && address + bytes <= segments.end[i]) return true;
  return false;
}

// Reads from [position, end), a span already checked to be readable; past its end it fails.
struct Cursor {
  uintptr_t position;
  uintptr_t end;
  bool failed = false;

  bool has(uint64_t bytes) {
    if (failed || end - position < bytes) failed = true;
    return !failed;
  }
  template <class T>
  T read() {
    T value{};
    if (!has(sizeof(T))) return value;
    std::memcpy(&value, reinterpret_cast<const void*>(position), sizeof(T));
    position += sizeof(T);
    return value;
  }
  void skip(uint64_t bytes) {
    if (has(bytes)) position += bytes;
  }
  // LEB128: seven bits a byte, low first; a signed value's last byte carries its sign in bit 6.
  uint64_t leb(bool is_signed) {
    uint64_t result = 0;
    for (unsigned shift = 0;; shift += 7) {
      auto byte = read<uint8_t>();
      if (failed || shift > 63) {
        failed = true;
        return 0;
      }
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) != 0) continue;
      if (is_signed && shift + 7 < 64 && (byte & 0x40) != 0) result |= ~uint64_t{0} << (shift + 7);
      return result;
    }
  }
  uint64_t uleb() { return leb(false); }
  int64_t sleb() { return static_cast<int64_t>(leb(true)); }
};

enum class Parse : uint8_t { kOk, kUnsupported, kMalformed };

// An encoded pointer (DW_EH_PE_*). `data_base`: the datarel base (0: none). Only absolute,
// pc-relative and data-relative values are computed, and no indirection: anything else is
// kUnsupported (its size is still skipped, so a personality pointer can be passed over).
Parse read_encoded(Cursor& cursor, uint8_t encoding, uintptr_t data_base, uint64_t* value) {
  uintptr_t field = cursor.position;
  uint64_t raw = 0;
  switch (encoding & 0x0f) {
    case 0x00:
    case 0x04:
    case 0x0c:
      raw = cursor.read<uint64_t>();
      break;
    case 0x01:
      raw = cursor.uleb();
      break;
    case 0x02:
      raw = cursor.read<uint16_t>();
      break;
    case 0x03:
      raw = cursor.read<uint32_t>();
      break;
    case 0x09:
      raw = static_cast<uint64_t>(cursor.sleb());
      break;
    case 0x0a:
      raw = static_cast<uint64_t>(static_cast<int64_t>(cursor.read<int16_t>()));
      break;
    case 0x0b:
      raw = static_cast<uint64_t>(static_cast<int64_t>(cursor.read<int32_t>()));
      break;
    default:
      return Parse::kUnsupported;
  }
  if (cursor.failed) return Parse::kMalformed;
  switch (encoding & 0x70) {
    case 0x00:
      break;
    case 0x10:
      raw += field;
      break;
    case 0x30:
      if (data_base == 0) return Parse::kUnsupported;
      raw += data_base;
      break;
    default:
      return Parse::kUnsupported;
  }
  if ((encoding & 0x80) != 0) return Parse::kUnsupported;
  *value = raw;
  return Parse::kOk;
}

struct RegisterRule {
  enum How : uint8_t { kUnspecified, kUndefined, kSameValue, kOffset, kOther };
  How how = kUnspecified;
  int64_t offset = 0;  // kOffset: saved at CFA + offset
};

struct FrameState {
  uint64_t cfa_register = kRegisterRsp;
  int64_t cfa_offset = 0;
  bool cfa_expression = false;
  RegisterRule rbp, rsp, return_address;

  RegisterRule* tracked(uint64_t reg) {
    if (reg == kRegisterRbp) return &rbp;
    if (reg == kRegisterRsp) return &rsp;
    if (reg == kRegisterReturnAddress) return &return_address;
    return nullptr;
  }
  const RegisterRule* tracked(uint64_t reg) const {
    return const_cast<FrameState*>(this)->tracked(reg);
  }
};

struct Cie {
  uint64_t code_alignment = 1;
  int64_t data_alignment = 1;
  uint8_t fde_encoding = 0;  // absptr
  bool has_augmentation_data = false;
  uintptr_t instructions = 0;
  uintptr_t end = 0;
};

void set_rule(FrameState* state, uint64_t reg, RegisterRule::How how, int64_t offset = 0) {
  if (RegisterRule* rule = state->tracked(reg)) *rule = RegisterRule{how, offset};
}

// Runs call frame instructions over [cursor) while the location stays <= target.
Parse execute(Cursor cursor, const Cie& cie, uintptr_t location, uintptr_t target,
              FrameState* state, const FrameState& initial) {
  FrameState remembered[kMaxRememberedStates];
  int remembered_count = 0;
  while (cursor.position < cursor.end && location <= target) {
    auto op = cursor.read<uint8_t>();
    uint8_t operand = op & 0x3f;
    switch (op & 0xc0) {
      case 0x40:  // DW_CFA_advance_loc
        location += operand * cie.code_alignment;
        continue;
      case 0x80:  // DW_CFA_offset
        set_rule(state, operand, RegisterRule::kOffset,
                 static_cast<int64_t>(cursor.uleb()) * cie.data_alignment);
        if (cursor.failed) return Parse::kMalformed;
        continue;
      case 0xc0:  // DW_CFA_restore
        if (RegisterRule* rule = state->tracked(operand)) *rule = *initial.tracked(operand);
        continue;
      default:
        break;
    }
    uint64_t reg = 0;
    uint64_t value = 0;
    switch (op) {
      case 0x00:  // DW_CFA_nop
        break;
      case 0x01:  // DW_CFA_set_loc
        if (Parse parse = read_encoded(cursor, cie.fde_encoding, 0, &value); parse != Parse::kOk)
          return parse;
        location = value;
        break;
      case 0x02:  // DW_CFA_advance_loc1, 2, 4
        location += cursor.read<uint8_t>() * cie.code_alignment;
        break;
      case 0x03:
        location += cursor.read<uint16_t>() * cie.code_alignment;
        break;
      case 0x04:
        location += cursor.read<uint32_t>() * cie.code_alignment;
        break;
      case 0x05:  // DW_CFA_offset_extended
        reg = cursor.uleb();
        set_rule(state, reg, RegisterRule::kOffset,
                 static_cast<int64_t>(cursor.uleb()) * cie.data_alignment);
        break;
      case 0x06:  // DW_CFA_restore_extended
        reg = cursor.uleb();
        if (RegisterRule* rule = state->tracked(reg)) *rule = *initial.tracked(reg);
        break;
      case 0x07:  // DW_CFA_undefined
        set_rule(state, cursor.uleb(), RegisterRule::kUndefined);
        break;
      case 0x08:  // DW_CFA_same_value
        set_rule(state, cursor.uleb(), RegisterRule::kSameValue);
        break;
      case 0x09:  // DW_CFA_register
        reg = cursor.uleb();
        (void)cursor.uleb();
        set_rule(state, reg, RegisterRule::kOther);
        break;
      case 0x0a:  // DW_CFA_remember_state
        if (remembered_count == kMaxRememberedStates) return Parse::kUnsupported;
        remembered[remembered_count++] = *state;
        break;
      case 0x0b:  // DW_CFA_restore_state
        if (remembered_count == 0) return Parse::kMalformed;
        *state = remembered[--remembered_count];
        break;
      case 0x0c:  // DW_CFA_def_cfa
        state->cfa_register = cursor.uleb();
        state->cfa_offset = static_cast<int64_t>(cursor.uleb());
        state->cfa_expression = false;
        break;
      case 0x0d:  // DW_CFA_def_cfa_register
        state->cfa_register = cursor.uleb();
        state->cfa_expression = false;
        break;
      case 0x0e:  // DW_CFA_def_cfa_offset
        state->cfa_offset = static_cast<int64_t>(cursor.uleb());
        state->cfa_expression = false;
        break;
      case 0x0f:  // DW_CFA_def_cfa_expression
        cursor.skip(cursor.uleb());
        state->cfa_expression = true;
        break;
      case 0x10:  // DW_CFA_expression
        reg = cursor.uleb();
        cursor.skip(cursor.uleb());
        set_rule(state, reg, RegisterRule::kOther);
        break;
      case 0x11:  // DW_CFA_offset_extended_sf
        reg = cursor.uleb();
        set_rule(state, reg, RegisterRule::kOffset, cursor.sleb() * cie.data_alignment);
        break;
      case 0x12:  // DW_CFA_def_cfa_sf
        state->cfa_register = cursor.uleb();
        state->cfa_offset = cursor.sleb() * cie.data_alignment;
        state->cfa_expression = false;
        break;
      case 0x13:  // DW_CFA_def_cfa_offset_sf
        state->cfa_offset = cursor.sleb() * cie.data_alignment;
        state->cfa_expression = false;
        break;
      case 0x14:  // DW_CFA_val_offset
        reg = cursor.uleb();
        (void)cursor.uleb();
        set_rule(state, reg, RegisterRule::kOther);
        break;
      case 0x15:  // DW_CFA_val_offset_sf
        reg = cursor.uleb();
        (void)cursor.sleb();
        set_rule(state, reg, RegisterRule::kOther);
        break;
      case 0x16:  // DW_CFA_val_expression
        reg = cursor.uleb();
        cursor.skip(cursor.uleb());
        set_rule(state, reg, RegisterRule::kOther);
        break;
      case 0x2e:  // DW_CFA_GNU_args_size (landing pads only)
        (void)cursor.uleb();
        break;
      case 0x2f:  // DW_CFA_GNU_negative_offset_extended
        reg = cursor.uleb();
        set_rule(state, reg, RegisterRule::kOffset,
                 -static_cast<int64_t>(cursor.uleb()) * cie.data_alignment);
        break;
      default:  // DW_CFA_GNU_window_save, vendor opcodes
        return Parse::kUnsupported;
    }
    if (cursor.failed) return Parse::kMalformed;
  }
  return cursor.failed ? Parse::kMalformed : Parse::kOk;
}

UnwindRule rule_of_parse(Parse parse) {
  return UnwindRule::of_kind(parse == Parse::kUnsupported ? UnwindRule::kFallback
                                                          : UnwindRule::kEnd);
}

// The CIE at `cie` (its length word), checked and read into *out.
Parse read_cie(uintptr_t cie, const Segments& segments, Cie* out) {
  if (!readable(segments, cie, 8)) return Parse::kMalformed;
  uint32_t length;
  std::memcpy(&length, reinterpret_cast<const void*>(cie), sizeof(length));
  if (length == 0xffffffff) return Parse::kUnsupported;  // 64-bit DWARF
  if (length < 4 || !readable(segments, cie, uint64_t{4} + length)) return Parse::kMalformed;
  Cursor cursor{cie + 4, cie + 4 + length};
  if (cursor.read<uint32_t>() != 0) return Parse::kMalformed;  // not a CIE
  auto version = cursor.read<uint8_t>();
  if (version != 1 && version != 3 && version != 4) return Parse::kUnsupported;
  char augmentation[8];
  size_t augmentation_length = 0;
  for (;;) {
    auto c = cursor.read<uint8_t>();
    if (cursor.failed) return Parse::kMalformed;
    if (c == 0) break;
    if (augmentation_length + 1 == sizeof(augmentation)) return Parse::kUnsupported;
    augmentation[augmentation_length++] = static_cast<char>(c);
  }
  if (version == 4 && (cursor.read<uint8_t>() != 8 || cursor.read<uint8_t>() != 0))
    return Parse::kUnsupported;  // address size 8, no segment selector
  out->code_alignment = cursor.uleb();
  out->data_alignment = cursor.sleb();
  uint64_t return_register = version == 1 ? cursor.read<uint8_t>() : cursor.uleb();
  if (cursor.failed) return Parse::kMalformed;
  if (return_register != kRegisterReturnAddress) return Parse::kUnsupported;
  if (augmentation_length > 0) {
    if (augmentation[0] != 'z') return Parse::kUnsupported;  // "eh" and other old forms
    uint64_t data_bytes = cursor.uleb();
    if (cursor.failed || !cursor.has(data_bytes)) return Parse::kMalformed;
    Cursor data{cursor.position, cursor.position + data_bytes};
    cursor.position += data_bytes;
    out->has_augmentation_data = true;
    for (size_t i = 1; i < augmentation_length; ++i) {
      uint64_t ignored = 0;
      switch (augmentation[i]) {
        case 'R':
          out->fde_encoding = data.read<uint8_t>();
          break;
        case 'L':
          (void)data.read<uint8_t>();
          break;
        case 'P':
          if (Parse parse = read_encoded(data, data.read<uint8_t>(), 0, &ignored);
              parse == Parse::kMalformed)
            return parse;
          break;
        default:  // 'S' (a signal frame: libgcc's own handling), 'B', 'G', ...
          return Parse::kUnsupported;
      }
      if (data.failed) return Parse::kMalformed;
    }
  }
  out->instructions = cursor.position;
  out->end = cursor.end;
  return Parse::kOk;
}

// The rule at `address` from the FDE at `fde` (its length word).
UnwindRule rule_from_fde(uintptr_t address, uintptr_t fde, const Segments& segments) {
  if (!readable(segments, fde, 8)) return UnwindRule::of_kind(UnwindRule::kEnd);
  uint32_t length;
  std::memcpy(&length, reinterpret_cast<const void*>(fde), sizeof(length));
  if (length == 0xffffffff) return UnwindRule::of_kind(UnwindRule::kFallback);
  if (length < 4 || !readable(segments, fde, uint64_t{4} + length))
    return UnwindRule::of_kind(UnwindRule::kEnd);
  Cursor cursor{fde + 4, fde + 4 + length};
  auto cie_pointer = cursor.read<uint32_t>();
  if (cie_pointer == 0 || cie_pointer > fde + 4) return UnwindRule::of_kind(UnwindRule::kEnd);
  Cie cie;
  if (Parse parse = read_cie(fde + 4 - cie_pointer, segments, &cie); parse != Parse::kOk)
    return rule_of_parse(parse);
  uint64_t pc_begin = 0;
  uint64_t pc_range = 0;
  if (Parse parse = read_encoded(cursor, cie.fde_encoding, 0, &pc_begin); parse != Parse::kOk)
    return rule_of_parse(parse);
  if (Parse parse = read_encoded(cursor, cie.fde_encoding & 0x0f, 0, &pc_range);
      parse != Parse::kOk)
    return rule_of_parse(parse);
  // Not covered: the table's nearest entry ends before the address (code without CFI).
  if (address < pc_begin || address - pc_begin >= pc_range) return UnwindRule::of_kind(kNotCovered);
  if (cie.has_augmentation_data) cursor.skip(cursor.uleb());
  if (cursor.failed) return UnwindRule::of_kind(UnwindRule::kEnd);

  FrameState initial;
  Cursor cie_program{cie.instructions, cie.end};
  if (Parse parse = execute(cie_program, cie, 0, UINTPTR_MAX, &initial, initial);
      parse != Parse::kOk)
    return rule_of_parse(parse);
  FrameState state = initial;
  if (Parse parse = execute(cursor, cie, pc_begin, address, &state, initial); parse != Parse::kOk)
    return rule_of_parse(parse);

  UnwindRule rule;
  if (state.return_address.how == RegisterRule::kUndefined)  // whatever the CFA: the last frame
    return UnwindRule::of_kind(UnwindRule::kOutermost);
  if (state.cfa_expression ||
      (state.cfa_register != kRegisterRsp && state.cfa_register != kRegisterRbp) ||
      state.cfa_offset < 8 || state.cfa_offset > UnwindRule::kMaxCfaOffset)
    return UnwindRule::of_kind(UnwindRule::kFallback);
  if (state.return_address.how != RegisterRule::kOffset || state.return_address.offset != -8)
    return UnwindRule::of_kind(UnwindRule::kFallback);
  if (state.rsp.how == RegisterRule::kOffset || state.rsp.how == RegisterRule::kOther)
    return UnwindRule::of_kind(UnwindRule::kFallback);
  if (state.rbp.how == RegisterRule::kOther) return UnwindRule::of_kind(UnwindRule::kFallback);
  if (state.rbp.how == RegisterRule::kOffset) {
    int64_t offset = state.rbp.offset;
    if (offset >= 0 || offset % 8 != 0 || -offset / 8 > UnwindRule::kMaxRbpSlot)
      return UnwindRule::of_kind(UnwindRule::kFallback);
    rule.rbp_saved = true;
    rule.rbp_slot = static_cast<uint8_t>(-offset / 8);
  }
  rule.kind = UnwindRule::kStep;
  rule.cfa_from_rbp = state.cfa_register == kRegisterRbp;
  rule.cfa_offset = static_cast<uint32_t>(state.cfa_offset);
  return rule;
}

// The rule at `address` through the object's .eh_frame_hdr at [header, header + bytes).
UnwindRule rule_from_table(uintptr_t address, uintptr_t header, uint64_t bytes,
                           const Segments& segments) {
  if (bytes < 4 || !readable(segments, header, bytes)) return UnwindRule::of_kind(UnwindRule::kEnd);
  Cursor cursor{header, header + bytes};
  auto version = cursor.read<uint8_t>();
  auto frame_pointer_encoding = cursor.read<uint8_t>();
  auto count_encoding = cursor.read<uint8_t>();
  auto table_encoding = cursor.read<uint8_t>();
  // No sorted table (libgcc then searches .eh_frame linearly): not this walk's business.
  if (version != 1 || count_encoding == kEncodingOmit || table_encoding != kEncodingDatarelSdata4)
    return UnwindRule::of_kind(UnwindRule::kFallback);
  uint64_t ignored = 0;
  uint64_t count = 0;
  if (Parse parse = read_encoded(cursor, frame_pointer_encoding, header, &ignored);
      parse != Parse::kOk)
    return rule_of_parse(parse);
  if (Parse parse = read_encoded(cursor, count_encoding, header, &count); parse != Parse::kOk)
    return rule_of_parse(parse);
  if (count == 0) return UnwindRule::of_kind(kNotCovered);
  if (count > (cursor.end - cursor.position) / 8) return UnwindRule::of_kind(UnwindRule::kEnd);
  auto entry = [&](uint64_t i, int half) {
    int32_t value;
    std::memcpy(&value, reinterpret_cast<const void*>(cursor.position + i * 8 + half * 4), 4);
    return header + static_cast<int64_t>(value);
  };
  // The last entry whose initial location is <= address.
  if (address < entry(0, 0)) return UnwindRule::of_kind(kNotCovered);
  uint64_t low = 0;
  uint64_t high = count;  // entry(low) <= address < entry(high) (entry(count): beyond all)
  while (high - low > 1) {
    uint64_t middle = low + (high - low) / 2;
    if (entry(middle, 0) <= address) {
      low = middle;
    } else {
      high = middle;
    }
  }
  return rule_from_fde(address, entry(low, 1), segments);
}

struct Search {
  uintptr_t address;
  UnwindRule rule;
  bool found = false;
  uint64_t generation = 0;
};

int search_object(dl_phdr_info* info, size_t size, void* data) {
  auto* search = static_cast<Search*>(data);
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
    search->generation = info->dlpi_adds + info->dlpi_subs;
  Segments segments;
  bool contains = false;
  uintptr_t header = 0;
  uint64_t header_bytes = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& program_header = info->dlpi_phdr[i];
    uintptr_t start = info->dlpi_addr + program_header.p_vaddr;
    if (program_header.p_type == PT_LOAD) {
      uintptr_t end = start + program_header.p_memsz;
      if ((program_header.p_flags & PF_X) != 0 && search->address >= start && search->address < end)
        contains = true;
      if ((program_header.p_flags & PF_R) != 0 && segments.count < kMaxSegments) {
        segments.start[segments.count] = start;
        segments.end[segments.count] = end;
        segments.count++;
      }
    } else if (program_header.p_type == PT_GNU_EH_FRAME) {
      header = start;
      header_bytes = program_header.p_memsz;
    }
  }
  if (!contains) return 0;
  search->found = true;
  search->rule = header == 0 ? UnwindRule::of_kind(UnwindRule::kFallback)
                             : rule_from_table(search->address, header, header_bytes, segments);
  if (search->rule.kind == kNotCovered) {
    uintptr_t return_address = search->address + 1;
    bool sigreturn = readable(segments, return_address, sizeof(kSigreturnCode)) &&
                     std::memcmp(reinterpret_cast<const void*>(return_address), kSigreturnCode,
                                 sizeof(kSigreturnCode)) == 0;
    search->rule = UnwindRule::of_kind(sigreturn ? UnwindRule::kFallback : UnwindRule::kEnd);
  }
  return 1;
}

int first_object_generation(dl_phdr_info* info, size_t size, void* data) {
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
    *static_cast<uint64_t*>(data) = info->dlpi_adds + info->dlpi_subs;
  return 1;
}

}  // namespace

UnwindRule unwind_rule_from_eh_frame_hdr(uintptr_t address, uintptr_t header, uint64_t header_bytes,
                                         const UnwindReadableRange* ranges, int range_count) {
  Segments segments;
  for (int i = 0; i < range_count && segments.count < kMaxSegments; ++i) {
    segments.start[segments.count] = ranges[i].start;
    segments.end[segments.count] = ranges[i].end;
    segments.count++;
  }
  UnwindRule rule = rule_from_table(address, header, header_bytes, segments);
  return rule.kind == kNotCovered ? UnwindRule::of_kind(UnwindRule::kFallback) : rule;
}

UnwindRule find_unwind_rule(uintptr_t address, uint64_t* objects_generation) {
  Search search{address, UnwindRule::of_kind(UnwindRule::kEnd)};
  ::dl_iterate_phdr(search_object, &search);
  if (objects_generation != nullptr) *objects_generation = search.generation;
  return search.found ? search.rule : UnwindRule::of_kind(UnwindRule::kEnd);
}

uint64_t loaded_objects_generation() {
  uint64_t generation = 0;
  ::dl_iterate_phdr(first_object_generation, &generation);
  return generation;
}

}  // namespace usgc::alloc
