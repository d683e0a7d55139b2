// safepoint/poll_instruction.hpp — recognizes the exact safepoint poll instructions usgc's ABI
// emits, and their length, so the fault handler can resume after one.
//
// A poll is one x86-64 instruction that reads a byte of the poll page and writes only the flags:
// `test byte ptr [base + disp], imm8` (F6 /0 ib). When its load faults on an armed poll page
// nothing of it has happened, and resuming after it is what executing it would have done, bar
// the flags (emitted code treats them as clobbered by a poll). Exactly these encodings are
// accepted, and nothing else: any other instruction that faults on a poll page (a stray `mov`
// or `cmp` load, a store, an access with an index register) is a real fault and is chained like
// any other — skipping it would resume with its destination never loaded.
//
//   [REX 40|41] F6 ModRM [SIB] [disp8|disp32] imm8
//     REX: none, 40, or 41 (REX.B: base r8-r15); W, R and X must be clear
//     ModRM.reg = 0 (/0 = test); ModRM.mod 00, 01 or 10 (11 is a register: no load)
//     mod 00 with rm 101 (RIP-relative) is refused: a poll goes through a base register
//     rm 100: a SIB byte with no index (index 100, scale 00) and a real base (not base 101 with
//       mod 00, which means "no base, disp32"): how rsp and r12 bases are encoded
//     imm8: any value
// Who emits which form:
//   - usgc_safepoint_poll (include/usgc/safepoint.h, C inline): `testb $0, (%reg)` for whichever
//     register the compiler picks: F6 /0 with mod 00 (rsp/r12 with SIB 24; rbp/r13 need mod 01
//     and a zero disp8), REX 41 for r8-r15;
//   - the JIT (jitgen/x86_64): F6 /0 ib on any general register base, disp 0, 8 or 32 bits, no
//     index.
// No legacy prefix is accepted (neither emitter uses one).
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
