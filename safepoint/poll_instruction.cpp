// safepoint/poll_instruction.cpp — see poll_instruction.hpp for the accepted forms and the
// "decode within the instruction" invariant.
#include "safepoint/poll_instruction.hpp"

namespace usgc::safepoint {
namespace {

constexpr size_t kMaxLegacyPrefixes = 4;

bool is_accepted_legacy_prefix(uint8_t byte) {
  switch (byte) {
    case 0x66:  // operand size
    case 0x67:  // address size
    case 0x26:  // ES
    case 0x2E:  // CS
    case 0x36:  // SS
    case 0x3E:  // DS
    case 0x64:  // FS
    case 0x65:  // GS
      return true;
    default:
      return false;
  }
}

bool is_rex(uint8_t byte) {
  return (byte & 0xF0) == 0x40;
}

// What an accepted opcode needs after it: the ModRM.reg value it requires (or -1 for any) and
// the size of its immediate.
struct OpcodeForm {
  bool accepted;
  int required_reg;
  size_t immediate_bytes;
};

OpcodeForm form_of(uint8_t opcode) {
  switch (opcode) {
    case 0x84:  // test r/m8, r8
    case 0x85:  // test r/m, r
    case 0x8A:  // mov r8, r/m8
    case 0x8B:  // mov r, r/m
    case 0x38:  // cmp r/m8, r8
    case 0x39:  // cmp r/m, r
    case 0x3A:  // cmp r8, r/m8
    case 0x3B:  // cmp r, r/m
      return OpcodeForm{true, -1, 0};
    case 0x80:  // group 1, /7 = cmp r/m8, imm8
    case 0x83:  // group 1, /7 = cmp r/m, imm8 (sign-extended)
      return OpcodeForm{true, 7, 1};
    case 0xF6:  // group 3, /0 = test r/m8, imm8
      return OpcodeForm{true, 0, 1};
    default:
      return OpcodeForm{false, -1, 0};
  }
}

}  // namespace

size_t poll_instruction_length(std::span<const uint8_t> code) {
  const size_t available = code.size() < kMaxInstructionBytes ? code.size() : kMaxInstructionBytes;
  size_t at = 0;

  size_t prefixes = 0;
  while (at < available && is_accepted_legacy_prefix(code[at])) {
    if (++prefixes > kMaxLegacyPrefixes) return 0;
    ++at;
  }
  if (at < available && is_rex(code[at])) ++at;  // a legacy prefix after it would be refused below
  if (at >= available) return 0;

  const OpcodeForm form = form_of(code[at]);
  if (!form.accepted) return 0;
  ++at;
  if (at >= available) return 0;

  const uint8_t modrm = code[at++];
  const unsigned mod = modrm >> 6;
  const unsigned reg = (modrm >> 3) & 7;
  const unsigned rm = modrm & 7;
  if (mod == 3) return 0;  // register operand: no load
  if (form.required_reg >= 0 && reg != static_cast<unsigned>(form.required_reg)) return 0;

  size_t displacement_bytes = mod == 1 ? 1 : mod == 2 ? 4 : 0;
  if (rm == 4) {  // a SIB byte follows (rsp and r12 bases are encoded this way)
    if (at >= available) return 0;
    const uint8_t sib = code[at++];
    if (mod == 0 && (sib & 7) == 5) displacement_bytes = 4;  // no base, disp32 (also with REX.B)
  } else if (mod == 0 && rm == 5) {
    displacement_bytes = 4;  // RIP-relative disp32 (also with REX.B: r13 needs mod 01)
  }

  const size_t length = at + displacement_bytes + form.immediate_bytes;
  return length <= available ? length : 0;
}

}  // namespace usgc::safepoint
