// jitgen/x86_64/stubs.cpp — the stub emitters of stubs.hpp. Each fast path is written out
// instruction by instruction and marked; the slow paths go to Emitter::cold.
#include "jitgen/x86_64/stubs.hpp"

#include <cstddef>

#include "jitgen/x86_64/register_convention.hpp"
#include "usgc/safepoint.h"

namespace usgc::jitgen::x86_64 {
namespace {

using namespace Xbyak::util;

constexpr int32_t kFramesOffset = 8;
constexpr int32_t kArenaTopOffset = 16;
constexpr int32_t kArenaLimitOffset = 24;
constexpr int32_t kRunsOffset = 32;
constexpr int32_t kOldPrivateKeyOffset = 592;
static_assert(offsetof(usgc_mutator, old_private_key) == kOldPrivateKeyOffset, "usgc_mutator ABI");
constexpr int32_t kRunBytes = 16;

// Zeroes words [1, payload_words] of the object at RAX (the arena is not zero above its top).
void zero_payload(Emitter& e, uint32_t payload_words) {
  if (payload_words == 0) return;
  if (payload_words <= 8) {
    e.xor_(ecx, ecx);
    for (uint32_t i = 1; i <= payload_words; ++i) e.mov(e.qword[rax + 8 * i], rcx);
    return;
  }
  e.mov(rdx, rax);
  e.lea(rdi, e.ptr[rax + 8]);
  e.xor_(eax, eax);
  e.mov(ecx, payload_words);
  e.rep();
  e.stosq();
  e.mov(rax, rdx);
}

}  // namespace

int32_t poll_slot_thread_offset() {
  uintptr_t thread_pointer = 0;
  __asm__("mov %%fs:0, %0" : "=r"(thread_pointer));
  return static_cast<int32_t>(reinterpret_cast<uintptr_t>(&usgc_current_poll) - thread_pointer);
}

void Emitter::push_roots(const std::vector<RootSource>& roots) {
  for (const RootSource& root : roots) {
    switch (root.kind) {
      case RootSource::Kind::kZero:
        push(0);
        break;
      case RootSource::Kind::kRegister:
        push(root.reg);
        break;
      case RootSource::Kind::kInput:
        push(qword[rbp + 16 + 8 * static_cast<int32_t>(root.input)]);
        break;
    }
  }
}

// A temporary frame is laid out as a real one (register_convention.hpp: the roots right below
// RBP, then the compact record, no arena mark); RAX RCX RDX survive it, R11 is clobbered (free
// outside a poll).
void Emitter::save(const ColdSave& save) {
  const size_t roots = save.frame_roots.size();
  if (save.temporary_frame) {
    push(rbp);
    mov(rbp, rsp);
    push_roots(save.frame_roots);
    push(compact_frame_word(static_cast<uint32_t>(roots)));
    push(qword[r15 + kFramesOffset]);
    mov(qword[r15 + kFramesOffset], rsp);
  }
  for (const auto& [slot, reg] : save.root_stores) mov(slot, reg);
  for (const Xbyak::Reg64& reg : save.saved) push(reg);
  // Entry RSP is 8 below 16-aligned; RBP, the roots and the 2 frame words are pushed above.
  const size_t words = save.saved.size() + (save.temporary_frame ? roots : 0);
  if (words % 2 != 0) sub(rsp, 8);
}

void Emitter::restore(const ColdSave& save) {
  const size_t roots = save.frame_roots.size();
  const size_t words = save.saved.size() + (save.temporary_frame ? roots : 0);
  if (words % 2 != 0) add(rsp, 8);
  for (size_t k = save.saved.size(); k-- > 0;) pop(save.saved[k]);
  if (save.temporary_frame) {
    mov(r11, qword[rbp - static_cast<int32_t>(8 * roots) - kCompactFrameBytes]);
    mov(qword[r15 + kFramesOffset], r11);
    leave();
  }
}

uint32_t compact_frame_word(uint32_t reference_slots) {
  return (reference_slots << 1) | USGC_FRAME_COMPACT;
}

void emit_frame_push(Emitter& e, uint32_t reference_slots, FramePop kind) {
  uint32_t begin = e.here();
  e.push(compact_frame_word(reference_slots));
  e.push(e.qword[r15 + kFramesOffset]);
  e.mov(e.qword[r15 + kFramesOffset], rsp);
  if (kind == FramePop::kRestoreArena) e.push(e.qword[r15 + kArenaTopOffset]);  // the arena mark
  e.mark("frame_push", begin);
}

void emit_frame_pop(Emitter& e, int32_t frame_offset, FramePop kind) {
  uint32_t begin = e.here();
  e.mov(rcx, e.qword[rbp + frame_offset]);
  e.mov(e.qword[r15 + kFramesOffset], rcx);
  if (kind == FramePop::kRestoreArena) {
    e.mov(rcx, e.qword[rbp + frame_offset - kArenaMarkBytes]);
    e.mov(e.qword[r15 + kArenaTopOffset], rcx);
  }
  e.leave();
  e.ret();
  e.mark(kind == FramePop::kKeepArena ? "frame_pop_keeping_arena" : "frame_pop", begin);
}

void emit_poll(Emitter& e) {
  static const int32_t offset = poll_slot_thread_offset();
  uint32_t begin = e.here();
  // mov r11, qword fs:[offset]: 64 REX.WR 8B ModRM(00 011 100) SIB(00 100 101) disp32
  e.db(0x64);
  e.db(0x4C);
  e.db(0x8B);
  e.db(0x1C);
  e.db(0x25);
  e.dd(static_cast<uint32_t>(offset));
  e.test(e.byte[r11], 0);
  e.mark("poll", begin);
}

void emit_private_alloc(Emitter& e, const usgc_type_layout* layout, const Xbyak::Label& failed) {
  const int32_t next = kRunsOffset + kRunBytes * static_cast<int32_t>(layout->size_class);
  const uint32_t header_low = static_cast<uint32_t>(layout->header_bits);
  Xbyak::Label& slow = e.label();
  Xbyak::Label& join = e.label();
  uint32_t begin = e.here();
  e.mov(rax, e.qword[r15 + next]);
  e.lea(rcx, e.ptr[rax + layout->slot_bytes]);
  e.cmp(rcx, e.qword[r15 + next + 8]);
  e.ja(slow, Emitter::T_NEAR);
  e.mov(e.qword[r15 + next], rcx);
  e.mov(e.dword[rax], header_low);
  e.mov(e.dword[rax + 4], r14d);
  e.mark("private_alloc", begin);
  e.add(rax, 8);
  e.L(join);
  e.cold.push_back([&e, layout, &slow, &join, &failed, save = e.cold_save]() {
    e.L(slow);
    e.save(save);
    e.mov(rdi, reinterpret_cast<uint64_t>(layout));
    e.call_absolute(reinterpret_cast<const void*>(&usgc_alloc_private_slow));
    e.restore(save);
    e.test(rax, rax);
    e.jz(failed, Emitter::T_NEAR);
    e.jmp(join, Emitter::T_NEAR);
  });
}

void emit_stack_alloc(Emitter& e, const usgc_type_layout* layout, const Xbyak::Label& failed) {
  const uint32_t header_low =
      static_cast<uint32_t>(layout->header_bits) & ~static_cast<uint32_t>(USGC_HEADER_CLASS_MASK);
  Xbyak::Label& slow = e.label();
  Xbyak::Label& join = e.label();
  uint32_t begin = e.here();
  e.mov(rax, e.qword[r15 + kArenaTopOffset]);
  e.lea(rcx, e.ptr[rax + layout->slot_bytes]);
  e.cmp(rcx, e.qword[r15 + kArenaLimitOffset]);
  e.ja(slow, Emitter::T_NEAR);
  e.mov(e.qword[r15 + kArenaTopOffset], rcx);
  zero_payload(e, layout->slot_bytes / 8 - 1);
  e.mov(e.dword[rax], header_low);
  e.mov(e.dword[rax + 4], r14d);
  e.mark("stack_alloc", begin);
  e.add(rax, 8);
  e.L(join);
  e.cold.push_back([&e, layout, &slow, &join, &failed, save = e.cold_save]() {
    e.L(slow);
    e.save(save);
    e.mov(rdi, r13);
    e.mov(rsi, reinterpret_cast<uint64_t>(layout));
    e.call_absolute(reinterpret_cast<const void*>(&usgc_jit_alloc_stack_slow));
    e.restore(save);
    e.test(rax, rax);
    e.jz(failed, Emitter::T_NEAR);
    e.jmp(join, Emitter::T_NEAR);
  });
}

void emit_barrier(Emitter& e, const Xbyak::Address& field, const Xbyak::Reg64& value,
                  bool check_value, std::optional<Xbyak::Reg64> object_home) {
  Xbyak::Label& slow = e.label();
  Xbyak::Label& store = e.label();
  Xbyak::Label& join = e.label();
  uint32_t begin = e.here();
  e.cmp(e.dword[rax - 4], r14d);
  e.jne(slow, Emitter::T_NEAR);
  if (check_value) {
    e.test(value, value);
    e.je(store);
    e.test(e.byte[value - 8], static_cast<uint8_t>(USGC_HEADER_CLASS_MASK));
    e.je(slow, Emitter::T_NEAR);
  }
  e.L(store);
  e.mov(field, value);
  e.mark(check_value ? "barrier_checking_value" : "barrier", begin);
  e.L(join);
  e.cold.push_back([&e, field, value, object_home, &slow, &join, save = e.cold_save]() {
    // Before the call: an old private target of mine takes a null or old private value of mine
    // with a plain store outside its old cycle's mark (usgc_write's second path, usgc/gc.h).
    Xbyak::Label& call = e.label();
    Xbyak::Label& store_old = e.label();
    e.L(slow);
    e.mov(r11, USGC_HEADER_OLD_KEY_MASK);
    e.and_(r11, e.qword[rax - 8]);
    e.cmp(r11, e.qword[r15 + kOldPrivateKeyOffset]);
    e.jne(call, Emitter::T_NEAR);
    e.test(value, value);
    e.je(store_old, Emitter::T_NEAR);
    e.mov(r11, USGC_HEADER_OLD_KEY_MASK);
    e.and_(r11, e.qword[value - 8]);
    e.cmp(r11, e.qword[r15 + kOldPrivateKeyOffset]);
    e.jne(call, Emitter::T_NEAR);
    e.L(store_old);
    e.mov(field, value);
    e.jmp(join, Emitter::T_NEAR);
    e.L(call);
    e.save(save);
    if (value != rdx) e.mov(rdx, value);  // first: the value may be in RSI or RDI
    e.lea(rsi, field);
    e.mov(rdi, rax);
    e.call_absolute(reinterpret_cast<const void*>(&usgc_write_slow));
    e.restore(save);
    if (object_home) e.mov(rax, *object_home);
    e.jmp(join, Emitter::T_NEAR);
  });
}

}  // namespace usgc::jitgen::x86_64
