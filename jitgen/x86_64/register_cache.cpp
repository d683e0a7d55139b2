// jitgen/x86_64/register_cache.cpp — the compiler's register cache (register_cache.hpp).
#include "jitgen/x86_64/register_cache.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

using namespace Xbyak::util;

// RBX first: the C helpers preserve it, so a slow path need not save it.
const Xbyak::Reg64 kCacheRegisters[] = {rbx, rsi, rdi, r8, r9, r10};
constexpr int kCacheRegisterCount = 6;

}  // namespace

void RegisterCache::start_function(std::function<Xbyak::Address(uint32_t)> slot,
                                   const std::vector<bool>* is_reference) {
  slot_ = std::move(slot);
  is_reference_ = is_reference;
  live_after_ = nullptr;
  entries_.assign(kCacheRegisterCount, Entry{});
}

void RegisterCache::start_instruction(const ir::Instruction& instruction,
                                      const std::vector<bool>* live_after) {
  live_after_ = live_after;
  for (Entry& entry : entries_) entry.locked = false;
  auto lock = [&](const ir::Operand& operand) {
    if (operand.kind != ir::OperandKind::Local) return;
    int k = register_of(operand.local_index);
    if (k >= 0) entries_[k].locked = true;
  };
  for (const ir::Operand& operand : instruction.operands) lock(operand);
  for (const ir::Operand& operand : instruction.captures) lock(operand);
}

Xbyak::Reg64 RegisterCache::register_at(int index) {
  return kCacheRegisters[index];
}

int RegisterCache::register_of(uint32_t local) const {
  for (int k = 0; k < kCacheRegisterCount; ++k)
    if (entries_[k].local == static_cast<int64_t>(local)) return k;
  return -1;
}

void RegisterCache::store(int index) {
  Entry& entry = entries_[index];
  e_.mov(slot_(static_cast<uint32_t>(entry.local)), kCacheRegisters[index]);
  entry.dirty = false;
}

int RegisterCache::take_register() {
  // A free register, else one whose local is dead, else a clean one, else a dirty one (stored).
  int dead = -1, clean = -1, dirty = -1;
  for (int k = 0; k < kCacheRegisterCount; ++k) {
    const Entry& entry = entries_[k];
    if (entry.locked) continue;
    if (entry.local < 0) return k;
    bool live = live_after_ == nullptr || (*live_after_)[static_cast<size_t>(entry.local)];
    if (!live && dead < 0) dead = k;
    if (!entry.dirty && clean < 0) clean = k;
    if (dirty < 0) dirty = k;
  }
  int k = dead >= 0 ? dead : clean >= 0 ? clean : dirty;
  if (k < 0) throw Xbyak::Error(Xbyak::ERR_INTERNAL);  // every register locked: a compiler bug
  if (k != dead && entries_[k].dirty) store(k);
  entries_[k] = Entry{};
  return k;
}

Xbyak::Reg64 RegisterCache::read(uint32_t local) {
  int k = register_of(local);
  if (k < 0) {
    k = take_register();
    e_.mov(kCacheRegisters[k], slot_(local));
    entries_[k].local = local;
  }
  entries_[k].locked = true;
  return kCacheRegisters[k];
}

Xbyak::Reg64 RegisterCache::define(uint32_t local) {
  int k = register_of(local);
  if (k < 0) {
    k = take_register();
    entries_[k].local = local;
  }
  entries_[k].dirty = true;
  entries_[k].locked = true;
  return kCacheRegisters[k];
}

void RegisterCache::store_dirty(const std::vector<bool>* live) {
  for (int k = 0; k < kCacheRegisterCount; ++k) {
    const Entry& entry = entries_[k];
    if (entry.local < 0 || !entry.dirty) continue;
    if (live != nullptr && !(*live)[static_cast<size_t>(entry.local)]) continue;
    store(k);
  }
}

void RegisterCache::forget_all() {
  entries_.assign(kCacheRegisterCount, Entry{});
}

void RegisterCache::evict(const Xbyak::Reg64& reg) {
  for (int k = 0; k < kCacheRegisterCount; ++k) {
    if (kCacheRegisters[k] != reg || entries_[k].local < 0) continue;
    bool live = live_after_ == nullptr || (*live_after_)[static_cast<size_t>(entries_[k].local)];
    if (entries_[k].dirty && live) store(k);
    entries_[k] = Entry{};
  }
}

ColdSave RegisterCache::cold_save(bool store_roots) const {
  ColdSave save;
  for (int k = 0; k < kCacheRegisterCount; ++k) {
    const Entry& entry = entries_[k];
    if (entry.local < 0) continue;
    if (store_roots && entry.dirty && (*is_reference_)[static_cast<size_t>(entry.local)])
      save.root_stores.emplace_back(slot_(static_cast<uint32_t>(entry.local)), kCacheRegisters[k]);
    if (kCacheRegisters[k] != rbx) save.saved.push_back(kCacheRegisters[k]);
  }
  return save;
}

}  // namespace usgc::jitgen::x86_64
