// jitgen/x86_64/stubs.hpp — the hand-written stubs of compiled code, one emitter function per
// stub: an inline fast path (marked, so the disassembly shows it and a test checks it
// instruction by instruction) and, where it has one, an out-of-line slow path the caller emits
// after the function body (ColdCode). Register convention: register_convention.hpp.
//
// The fast paths (exact sequences; tests/jitgen/jit_stub_sequence_test.cpp):
//   frame_push (3)          push (R << 1) | 1          ; a compact usgc_frame (usgc/object.h):
//                                                      ; its count, its R slots just above
//                           push qword [r15+8]         ; previous = frames
//                           mov  qword [r15+8], rsp    ; frames = this frame
//                         (4 where the pop restores arena_top: then `push qword [r15+0x10]`,
//                         the arena mark, below the record; FramePop::kRestoreArena)
//   frame_pop (6)           mov rcx, [rbp-8R-16]; mov [r15+8], rcx        ; frames = previous
//                           mov rcx, [rbp-8R-24]; mov [r15+0x10], rcx     ; arena_top = mark
//                           leave; ret
//                         (4, without the arena_top restore, where the function cannot move
//                         arena_top: FramePop::kArenaUnchanged)
//   frame_pop_keeping_arena (4)  the same without the arena_top restore
//   poll (2)                mov r11, qword fs:[tpoff]; test byte [r11], 0
//   private_alloc (7)       mov  rax, [r15+run.next]   ; runs[class]
//                           lea  rcx, [rax+slot_bytes]
//                           cmp  rcx, [r15+run.limit]
//                           ja   slow                  ; usgc_alloc_private_slow (the refill)
//                           mov  [r15+run.next], rcx
//                           mov  dword [rax], header_low      ; type and class bits
//                           mov  dword [rax+4], r14d          ; owner: the heap id
//                         then `add rax, 8` (the object pointer; the slow path returns it)
//   stack_alloc (7 + zeroing)  the same on arena_top/arena_limit, the payload words zeroed
//                           (the arena is reused LIFO), class bits STACK_LOCAL; slow:
//                           usgc_jit_alloc_stack_slow (makes the arena, or a substitute)
//   barrier (2, +4 when the value may be STACK_LOCAL), object in RAX:
//                           cmp  dword [rax-4], r14d   ; is the target mine?
//                           jne  slow                  ; usgc_write_slow(object, field, value)
//                          [test value, value; je store; test byte [value-8], 3; je slow]
//                           mov  [field], value        ; the store itself
//                         out of line, before the call: target and value (or null) matching
//                         old_private_key under USGC_HEADER_OLD_KEY_MASK (my old private
//                         objects, no old cycle marking) → the store, no call (usgc/gc.h)
//   shared / global allocation: a call to usgc_alloc (no inline part).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include <xbyak/xbyak.h>

#include "jitgen/x86_64/compiled_module.hpp"

namespace usgc::jitgen::x86_64 {

// Where a root slot of a temporary frame gets its value: zero (a dead local), a cache register,
// or input i of the function ([rbp + 16 + 8 i] once the temporary frame's RBP is set).
struct RootSource {
  enum class Kind : uint8_t { kZero, kRegister, kInput } kind = Kind::kZero;
  Xbyak::Reg64 reg;
  uint32_t input = 0;
};

// What a stub's slow path does around its runtime call so that the compiled code's register
// cache (register_cache.hpp) survives it: store the dirty reference locals into their root slots
// (the call may collect), push the cache registers the call would clobber, pop them after. The
// fast path never sees any of it.
// In code that runs without its shadow-stack frame (a shrink-wrapped path, docs/jit.md) there
// are no slots to store into: the slow path pushes a temporary frame instead, whose root slots
// hold every reference local live there (`frame_roots`, one per reference slot, highest slot
// first), and unlinks it after the call (the arena top is left as the call made it).
struct ColdSave {
  std::vector<std::pair<Xbyak::Address, Xbyak::Reg64>> root_stores;
  std::vector<Xbyak::Reg64> saved;  // caller-saved cache registers in use
  bool temporary_frame = false;
  std::vector<RootSource> frame_roots;  // temporary_frame: the R root slots, slot R-1 first
};

class Emitter : public Xbyak::CodeGenerator {
 public:
  Emitter(size_t bytes, void* buffer) : Xbyak::CodeGenerator(bytes, buffer) {}
  uint32_t here() const { return static_cast<uint32_t>(getSize()); }
  void mark(const char* name, uint32_t begin) { marks.push_back({begin, here(), name}); }
  // Calls a C function at an absolute address (RSP must be 16-aligned).
  void call_absolute(const void* function) {
    mov(rax, reinterpret_cast<uint64_t>(function));
    call(rax);
  }

  // Around a slow path's call (RSP 16-aligned before `save` and after `restore`, or, with a
  // temporary frame, RSP as at the function's entry: 8 below 16-aligned); the call's arguments
  // are set up between the two. Neither touches RAX RCX RDX (the stubs' operands).
  void save(const ColdSave& save);
  void restore(const ColdSave& save);
  // Pushes root slots from `roots` (slot R-1 first), after `push rbp; mov rbp, rsp`.
  void push_roots(const std::vector<RootSource>& roots);

  // A label that lives as long as the emitter (xbyak labels must not be copied before use).
  Xbyak::Label& label() { return labels_.emplace_back(); }

  std::vector<StubMark> marks;
  // Out-of-line code of the function being compiled, emitted after its body.
  std::vector<std::function<void()>> cold;
  // What the next stub's slow path saves (the compiler sets it before emitting a stub).
  ColdSave cold_save;

 private:
  std::deque<Xbyak::Label> labels_;
};

// The byte offset of usgc_current_poll from the thread pointer (initial-exec TLS: the same on
// every thread).
int32_t poll_slot_thread_offset();

// How a frame's epilogue treats mutator->arena_top: restore it from the frame's arena mark (the
// frame's STACK_LOCAL objects die), keep it (a variant allocating in its caller's frame), or
// leave it because nothing the function does can have moved it (no STACK_LOCAL allocation, no
// caller-frame variant called, no runtime operation: Compiler::variant_moves_arena).
enum class FramePop : uint8_t { kRestoreArena, kKeepArena, kArenaUnchanged };
// Compiled frames push a compact usgc_frame (usgc/object.h): two words, `previous` and this
// word (the count, tagged), their root slots right above; the arena mark, only in frames whose
// pop restores arena_top, is the word right below (register_convention.hpp).
inline constexpr int32_t kCompactFrameBytes = 16;
inline constexpr int32_t kArenaMarkBytes = 8;
uint32_t compact_frame_word(uint32_t reference_slots);
void emit_frame_push(Emitter& e, uint32_t reference_slots, FramePop kind);
// `frame_offset`: the record's offset from RBP (-8 R - 16).
void emit_frame_pop(Emitter& e, int32_t frame_offset, FramePop kind);
void emit_poll(Emitter& e);
// RAX = the new object afterwards, or a jump to `failed` (null from the slow path: no memory).
void emit_private_alloc(Emitter& e, const usgc_type_layout* layout, const Xbyak::Label& failed);
void emit_stack_alloc(Emitter& e, const usgc_type_layout* layout, const Xbyak::Label& failed);
// Stores `value` into the reference word `field` (based on RAX, the object, and at most RCX).
// `value` is any register but RAX, RCX and R11 (a scratch or a cache register); `check_value`:
// the value may be a STACK_LOCAL object (stack_values.hpp). `object_home`: a cache register that
// holds the object across the slow path's call (saved around it, or RBX); the slow path then
// puts it back in RAX, so RAX holds the object after the barrier on every path.
void emit_barrier(Emitter& e, const Xbyak::Address& field, const Xbyak::Reg64& value,
                  bool check_value, std::optional<Xbyak::Reg64> object_home = std::nullopt);

}  // namespace usgc::jitgen::x86_64
