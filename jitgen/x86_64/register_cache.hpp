// jitgen/x86_64/register_cache.hpp — the compiler's register cache: locals of the block being
// compiled kept in registers, written back to their frame slots only where something needs
// the slot (register_convention.hpp, "Locals in registers").
//
// The cache registers are RBX RSI RDI R8 R9 R10 (never a pinned register, never RAX RCX RDX
// R11, which instructions and stubs use as scratch). Each holds at most one local, clean (the
// slot has the same value) or dirty (the slot is stale). A read of a local not cached loads it
// into a free register (clean); an assignment gives the local a register and marks it dirty.
// A local is in at most one register.
//
// Invariants the compiler keeps with it (compiler.hpp):
//   - at a block's start the cache is empty (blocks may have several predecessors): the block's
//     end stores every dirty local that is live out (liveness.hpp) and forgets the rest; a
//     block whose only predecessor comes before it starts with that predecessor's registers
//     (snapshot/restore), all clean;
//   - before anything that can collect or reads slots, every reference local that is live there
//     is in its slot (the roots stay precise): a call of a compiled function stores the dirty
//     locals live after it, then forgets every register (callees clobber them); a call into the
//     runtime on the main path (shared allocation, channels, `go`, unknown code, globals,
//     --gc-stress) stores every dirty local first and forgets after; the slow path of an inline
//     stub (allocation refill, barrier) stores the dirty references and saves the cache
//     registers around its call (ColdSave), so the fast path keeps them;
//   - a dead local's register may be reused without storing it: its slot keeps an older value,
//     which, for a reference, is an object that stayed rooted since (it only lives longer).
// Compile time only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "jitgen/ir/ir.hpp"
#include "jitgen/x86_64/stubs.hpp"

namespace usgc::jitgen::x86_64 {

class RegisterCache {
 public:
  struct Entry {
    int64_t local = -1;  // -1: free
    bool dirty = false;
    bool locked = false;
  };
  using Snapshot = std::vector<Entry>;

  explicit RegisterCache(Emitter& emitter) : e_(emitter) {}

  // A new function variant: `slot` gives a local's frame slot, `is_reference` its kind.
  void start_function(std::function<Xbyak::Address(uint32_t)> slot,
                      const std::vector<bool>* is_reference);
  // The instruction being compiled: `live_after` its live-after set. The registers holding its
  // operands are locked for the whole instruction (a read of another operand never takes them,
  // even when they are dead after it); every other register is unlocked.
  void start_instruction(const ir::Instruction& instruction, const std::vector<bool>* live_after);

  // A register holding `local`'s value, locked for the rest of the instruction (not given to
  // another local before the next start_instruction). At most 3 reads of uncached locals per
  // instruction (calls pass their inputs through `cached` instead).
  Xbyak::Reg64 read(uint32_t local);
  // The register `local`'s new value goes into (marked dirty); the caller writes it.
  Xbyak::Reg64 define(uint32_t local);
  // The register caching `local` (no load, no lock), or nothing.
  std::optional<Xbyak::Reg64> cached(uint32_t local) const {
    int k = register_of(local);
    if (k < 0) return std::nullopt;
    return register_at(k);
  }

  // Marks the cached `local` dirty: its slot was not written (a frame made with the value in
  // its register, compiler_frames.cpp), so the usual write-backs store it where it is needed.
  void mark_dirty(uint32_t local) {
    if (int k = register_of(local); k >= 0) entries_[k].dirty = true;
  }
  // Stores the dirty locals (all, or those `live` says), which stay cached, now clean.
  void store_dirty(const std::vector<bool>* live = nullptr);
  // Empties the cache (after code that clobbers the registers or writes slots).
  void forget_all();
  // Frees `reg` (storing its local if dirty and live) before code that clobbers it.
  void evict(const Xbyak::Reg64& reg);
  // What a stub's slow path must do around its runtime call (stubs.hpp ColdSave); without
  // `store_roots` only the registers to save (the caller roots the references otherwise).
  ColdSave cold_save(bool store_roots = true) const;

  // The cache at a block's end, after its live dirty locals were stored, every entry clean: the
  // state a block entered only from there starts with (restore). A local left dirty was dead
  // there: its register is still right for any read, and nothing reads its slot.
  Snapshot snapshot() const {
    Snapshot state = entries_;
    for (Entry& entry : state) entry = Entry{entry.local, false, false};
    return state;
  }
  void restore(const Snapshot& state) { entries_ = state; }

 private:
  int register_of(uint32_t local) const;
  static Xbyak::Reg64 register_at(int index);
  int take_register();  // a free or freed unlocked register
  void store(int index);

  Emitter& e_;
  std::function<Xbyak::Address(uint32_t)> slot_;
  const std::vector<bool>* is_reference_ = nullptr;
  const std::vector<bool>* live_after_ = nullptr;
  std::vector<Entry> entries_;  // by index into kCacheRegisters
};

}  // namespace usgc::jitgen::x86_64
