// safepoint/poll_instruction.cpp — see poll_instruction.hpp for the accepted forms and the
// "decode within the instruction" invariant.
#include "safepoint/poll_instruction.hpp"

namespace usgc::safepoint {
namespace {

constexpr uint8_t kTestRm8Imm8 = 0xF6;  // group 3; /0 = test r/m8, imm8

}  // namespace

size_t poll_instruction_length(std::span<const uint8_t> code) {
  const size_t available = code.size() < kMaxInstructionBytes ? code.size() : kMaxInstructionBytes;
  size_t at = 0;
  if (at < available && (code[at] == 0x40 || code[at] == 0x41)) ++at;  // REX, only B may be set
  if (at >= available || code[at] != kTestRm8Imm8) return 0;
  ++at;
  if (at >= available) return 0;

  const uint8_t modrm = code[at++];
  const unsigned mod = modrm >> 6;
  const unsigned reg = (modrm >> 3) & 7;
  const unsigned rm = modrm & 7;
  if (mod == 3 || reg != 0) return 0;  // a register operand, or not /0 (test)
  if (mod == 0 && rm == 5) return 0;   // RIP-relative: not a base register

  if (rm == 4) {  // a SIB byte follows: only "base, no index" (rsp and r12 bases)
    if (at >= available) return 0;
    const uint8_t sib = code[at++];
    const unsigned scale = sib >> 6;
    const unsigned index = (sib >> 3) & 7;
    const unsigned base = sib & 7;
    if (scale != 0 || index != 4) return 0;  // an index register (REX.X is refused above)
    if (mod == 0 && base == 5) return 0;     // no base, disp32: an absolute address
  }

  const size_t displacement_bytes = mod == 1 ? 1 : mod == 2 ? 4 : 0;
  const size_t length = at + displacement_bytes + 1;  // + imm8
  return length <= available ? length : 0;
}

}  // namespace usgc::safepoint
