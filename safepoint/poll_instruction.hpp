// safepoint/poll_instruction.hpp — the length of a safepoint poll instruction, so the fault
// handler can resume after it.
//
// A poll is one x86-64 instruction that reads memory and writes only registers and flags; when
// its load faults on an armed poll page, nothing of it has happened, and skipping it after the
// safepoint is exactly what executing it would have done, bar the flags and the register a mov
// would have loaded (emitted code treats those as clobbered by a poll). Recognized, and nothing
// else (the fault is then a real crash):
//
//   [legacy prefixes] [REX 40-4F] opcode ModRM [SIB] [disp8|disp32] [imm8]
//     prefixes, at most 4: 66 (operand size), 67 (address size), 26 2E 36 3E 64 65 (segments);
//       REX must come last, right before the opcode
//     84 85        test r/m, r          8A 8B  mov r, r/m
//     38 39        cmp r/m, r           3A 3B  cmp r, r/m
//     80 /7 ib     cmp r/m8, imm8       83 /7 ib  cmp r/m, imm8
//     F6 /0 ib     test r/m8, imm8      (usgc_safepoint_poll: testb $0, (%reg) = F6 /0 00)
//     ModRM.mod 00, 01 or 10 (a memory operand; 11 is a register: not a poll), with a SIB byte
//     when rm = 100, disp32 and no base when mod = 00 and SIB.base = 101, RIP-relative disp32
//     when mod = 00 and rm = 101.
// REX.B/X/R never change the length (r12/r13 bases are encoded like rsp/rbp), nor does 66 or 67
// for these opcodes (their immediates are 8 bits).
//
// Invariant the handler relies on ("decode within the instruction"): the decoder reads the bytes
// of `code` in order and stops at the first one that cannot continue a poll, so it never reads
// past the end of the real instruction at the faulting RIP, which the CPU has already fetched.
//
// Execution context: signal handler (no allocation, no lock); pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace usgc::safepoint {

// The architectural maximum length of an x86 instruction.
inline constexpr size_t kMaxInstructionBytes = 15;

// The length in bytes of the poll instruction at the start of `code`, or 0 when the bytes do not
// start with one of the forms above (or end before the instruction does).
size_t poll_instruction_length(std::span<const uint8_t> code);

}  // namespace usgc::safepoint
