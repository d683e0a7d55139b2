// alloc/unwind_rules.hpp — the unwind rule of one code address, read from the loaded objects'
// .eh_frame_hdr and .eh_frame (the DWARF call frame information of the LSB's "Exception Frames"),
// reduced to the few forms a cheap stack walk can apply (alloc/stack_walk.hpp caches them).
//
// A rule says how to get from a frame (pc, rsp, rbp) to its caller's on x86-64:
//   CFA       = rsp + cfa_offset, or rbp + cfa_offset (cfa_from_rbp)
//   caller pc = the word at CFA - 8 (the return address, where a call left it)
//   caller rsp = CFA
//   caller rbp = the word at CFA - 8 * rbp_slot when rbp_saved, else rbp unchanged
// which is what compiled code's CFI says everywhere except in stack-realigning prologues, signal
// trampolines, PLT stubs and hand-written code with DWARF expressions: those get kFallback (the
// walk then asks libgcc, which interprets everything). Other registers never matter: a CFA of
// compiled x86-64 code is always defined from rsp or rbp.
//
// Kinds:
//   kStep      the rule above;
//   kOutermost the return address is undefined (_start, a thread's or goroutine's entry): this
//              frame is the last one;
//   kEnd       no object holds the pc (JIT code, a stray address), or no FDE covers it and it
//              is not a signal trampoline (libgcc also ends there), or its FDE is malformed or
//              out of its object's bounds: the walk stops at this frame, cleanly;
//   kFallback  valid CFI the rule cannot express, a signal trampoline without an FDE, or an
//              object without a sorted .eh_frame_hdr table: libgcc's unwinder decides.
// Reading: every byte read from an object is first checked to lie inside one of its loaded,
// readable segments (the program headers dl_iterate_phdr reports), and it is read while the
// loader's list lock is held, so no dlclose unmaps it meanwhile. Nothing allocates.
// Not on a hot path: once per return address the walk's cache has not seen.
#pragma once

#include <cstdint>

namespace usgc::alloc {

struct UnwindRule {
  enum Kind : uint8_t { kEmpty = 0, kStep = 1, kOutermost = 2, kEnd = 3, kFallback = 4 };
  static constexpr uint32_t kMaxCfaOffset = (1u << 20) - 1;
  static constexpr uint32_t kMaxRbpSlot = 127;

  Kind kind = kEmpty;
  bool cfa_from_rbp = false;
  bool rbp_saved = false;
  uint8_t rbp_slot = 0;     // rbp saved at CFA - 8 * rbp_slot (1..kMaxRbpSlot)
  uint32_t cfa_offset = 0;  // 0..kMaxCfaOffset

  // 32 bits: kind 3 | cfa_from_rbp 1 | rbp_saved 1 | rbp_slot 7 | cfa_offset 20.
  uint32_t pack() const {
    return static_cast<uint32_t>(kind) | (cfa_from_rbp ? 1u << 3 : 0) | (rbp_saved ? 1u << 4 : 0) |
           (static_cast<uint32_t>(rbp_slot) << 5) | (cfa_offset << 12);
  }
  static UnwindRule unpack(uint32_t bits) {
    UnwindRule rule;
    rule.kind = static_cast<Kind>(bits & 7);
    rule.cfa_from_rbp = (bits >> 3) & 1;
    rule.rbp_saved = (bits >> 4) & 1;
    rule.rbp_slot = static_cast<uint8_t>((bits >> 5) & 0x7f);
    rule.cfa_offset = bits >> 12;
    return rule;
  }
  static UnwindRule of_kind(Kind kind) {
    UnwindRule rule;
    rule.kind = kind;
    return rule;
  }
};

// The rule in effect at `address` (for a caller frame: its return address - 1, the call). Walks
// the loaded objects with dl_iterate_phdr (the loader's list lock); `objects_generation`, when
// not null, gets the loader's count of object loads and unloads (dlpi_adds + dlpi_subs) seen.
UnwindRule find_unwind_rule(uintptr_t address, uint64_t* objects_generation);

// The rule at `address` from an .eh_frame_hdr at [header, header + header_bytes) whose records
// may be read only inside `ranges` (what find_unwind_rule does for a loaded object, given its
// readable segments): for tests of the parser on made-up and damaged tables. An address no FDE
// covers gives kFallback here (the code bytes are not at hand to check for a signal trampoline).
struct UnwindReadableRange {
  uintptr_t start;
  uintptr_t end;
};
UnwindRule unwind_rule_from_eh_frame_hdr(uintptr_t address, uintptr_t header, uint64_t header_bytes,
                                         const UnwindReadableRange* ranges, int range_count);

// The loader's count of object loads and unloads (dlpi_adds + dlpi_subs): a change means objects
// may have come or gone, so cached rules may be stale. One dl_iterate_phdr call that stops at the
// first object (the loader's list lock, about a hundred instructions).
uint64_t loaded_objects_generation();

}  // namespace usgc::alloc
