// tests/alloc/unwind_rules_test.cpp — the CFI reader behind the heap profile's stack walk
// (alloc/unwind_rules.hpp) on a made-up .eh_frame_hdr + CIE + FDE: the rule at each address of a
// function with a push-rbp prologue, remember/restore state, a CFA expression and an undefined
// return address; damaged tables (lengths and counts out of bounds) end the walk instead of
// reading outside the ranges it may read; and 20 000 randomly damaged copies never make it read
// outside them (the copy sits between two inaccessible pages: a stray read faults the test).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "alloc/unwind_rules.hpp"
#include "kernel_iface/virtual_memory.hpp"

using namespace usgc::alloc;

namespace {

// Builds, at `base`: the header (at 0), the CIE (at 32), the FDE (after it). The function it
// describes starts at `function` (never read) and is 0x40 bytes long.
struct Table {
  std::vector<uint8_t> bytes;
  size_t cie = 32;
  size_t fde = 0;
  size_t header_bytes = 20;
};

void put32(std::vector<uint8_t>& bytes, size_t at, uint32_t value) {
  std::memcpy(&bytes[at], &value, 4);
}

Table build_table(uintptr_t base, uintptr_t function) {
  Table table;
  std::vector<uint8_t>& b = table.bytes;
  b.assign(32, 0);
  // CIE: length, id 0, version 1, "zR", code align 1, data align -8, RA column 16, augmentation
  // data (1 byte: FDE pointers pc-relative sdata4), then DW_CFA_def_cfa rsp+8, DW_CFA_offset r16.
  const uint8_t cie[] = {0, 0,    0,  0, 0,    0,    0, 0, 1,    'z', 'R', 0,
                         1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1,   0,   0};
  b.insert(b.end(), cie, cie + sizeof(cie));
  put32(b, table.cie, sizeof(cie) - 4);
  table.fde = b.size();
  const uint8_t fde[] = {0,    0,    0,    0,           // length
                         0,    0,    0,    0,           // CIE pointer
                         0,    0,    0,    0,           // pc_begin (pc-relative)
                         0x40, 0,    0,    0,           // pc_range
                         0,                             // augmentation data: none
                         0x41, 0x0e, 16,   0x86, 2,     // +1: push rbp: CFA rsp+16, rbp at CFA-16
                         0x43, 0x0d, 6,                 // +4: mov rsp,rbp: CFA rbp+16
                         0x50, 0x0a, 0x0c, 7,    8,     // +0x14: remember; CFA rsp+8 (an epilogue)
                         0x41, 0x0b,                    // +0x15: restore: CFA rbp+16 again
                         0x44, 0x0f, 2,    0x77, 0x10,  // +0x19: CFA by a DWARF expression
                         0x44, 0x07, 16,                // +0x1d: return address undefined
                         0,    0,    0};
  b.insert(b.end(), fde, fde + sizeof(fde));
  put32(b, table.fde, sizeof(fde) - 4);
  put32(b, table.fde + 4, static_cast<uint32_t>(table.fde + 4 - table.cie));
  auto field = base + table.fde + 8;
  put32(b, table.fde + 8, static_cast<uint32_t>(static_cast<int32_t>(function - field)));
  // Header: version 1, eh_frame_ptr pcrel sdata4, count udata4, table datarel sdata4; one entry.
  b[0] = 1;
  b[1] = 0x1b;
  b[2] = 0x03;
  b[3] = 0x3b;
  put32(b, 4, static_cast<uint32_t>(table.cie - 4));
  put32(b, 8, 1);
  put32(b, 12, static_cast<uint32_t>(static_cast<int32_t>(function - base)));
  put32(b, 16, static_cast<uint32_t>(table.fde));
  return table;
}

// Memory for a table with an inaccessible page on each side.
struct GuardedBuffer {
  uint8_t* data = nullptr;
  size_t page = usgc::kernel::os_page_size();
  void* mapping = nullptr;
  GuardedBuffer() {
    usgc::kernel::Result<void*> mapped = usgc::kernel::map_aligned(3 * page, page);
    EXPECT_TRUE(mapped.ok());
    mapping = mapped.value();
    EXPECT_TRUE(usgc::kernel::protect(mapping, page, usgc::kernel::Access::kNone).ok());
    EXPECT_TRUE(usgc::kernel::protect(static_cast<uint8_t*>(mapping) + 2 * page, page,
                                      usgc::kernel::Access::kNone)
                    .ok());
    data = static_cast<uint8_t*>(mapping) + page;
  }
  ~GuardedBuffer() { (void)usgc::kernel::unmap(mapping, 3 * page); }
};

UnwindRule rule_at(const GuardedBuffer& buffer, const Table& table, uintptr_t address,
                   size_t header_bytes = 0) {
  auto base = reinterpret_cast<uintptr_t>(buffer.data);
  UnwindReadableRange range{base, base + buffer.page};
  return unwind_rule_from_eh_frame_hdr(
      address, base, header_bytes != 0 ? header_bytes : table.header_bytes, &range, 1);
}

TEST(UnwindRules, RuleAtEachAddressOfAFunction) {
  GuardedBuffer buffer;
  auto base = reinterpret_cast<uintptr_t>(buffer.data);
  uintptr_t function = base + 0x10000;
  Table table = build_table(base, function);
  std::memcpy(buffer.data, table.bytes.data(), table.bytes.size());

  UnwindRule entry = rule_at(buffer, table, function);
  EXPECT_EQ(entry.kind, UnwindRule::kStep);
  EXPECT_FALSE(entry.cfa_from_rbp);
  EXPECT_EQ(entry.cfa_offset, 8u);
  EXPECT_FALSE(entry.rbp_saved);

  UnwindRule pushed = rule_at(buffer, table, function + 1);
  EXPECT_EQ(pushed.kind, UnwindRule::kStep);
  EXPECT_EQ(pushed.cfa_offset, 16u);
  EXPECT_TRUE(pushed.rbp_saved);
  EXPECT_EQ(pushed.rbp_slot, 2);

  for (uintptr_t offset : {4, 0x13, 0x15, 0x18}) {
    UnwindRule body = rule_at(buffer, table, function + offset);
    EXPECT_EQ(body.kind, UnwindRule::kStep) << offset;
    EXPECT_TRUE(body.cfa_from_rbp) << offset;
    EXPECT_EQ(body.cfa_offset, 16u) << offset;
    EXPECT_TRUE(body.rbp_saved) << offset;
  }
  UnwindRule epilogue = rule_at(buffer, table, function + 0x14);
  EXPECT_EQ(epilogue.kind, UnwindRule::kStep);
  EXPECT_FALSE(epilogue.cfa_from_rbp);
  EXPECT_EQ(epilogue.cfa_offset, 8u);

  EXPECT_EQ(rule_at(buffer, table, function + 0x19).kind, UnwindRule::kFallback);
  EXPECT_EQ(rule_at(buffer, table, function + 0x1d).kind, UnwindRule::kOutermost);
  // Outside the function: before it, and past its range.
  EXPECT_EQ(rule_at(buffer, table, function - 1).kind, UnwindRule::kFallback);
  EXPECT_EQ(rule_at(buffer, table, function + 0x40).kind, UnwindRule::kFallback);
}

TEST(UnwindRules, DamagedTablesEndTheWalk) {
  GuardedBuffer buffer;
  auto base = reinterpret_cast<uintptr_t>(buffer.data);
  uintptr_t function = base + 0x10000;
  Table good = build_table(base, function);

  Table long_fde = good;  // an FDE that runs past the readable range
  put32(long_fde.bytes, long_fde.fde, 0x100000);
  std::memcpy(buffer.data, long_fde.bytes.data(), long_fde.bytes.size());
  EXPECT_EQ(rule_at(buffer, long_fde, function + 1).kind, UnwindRule::kEnd);

  Table far_cie = good;  // a CIE pointer that leaves the range
  put32(far_cie.bytes, far_cie.fde + 4, 0x7fff0000);
  std::memcpy(buffer.data, far_cie.bytes.data(), far_cie.bytes.size());
  EXPECT_EQ(rule_at(buffer, far_cie, function + 1).kind, UnwindRule::kEnd);

  Table many = good;  // more table entries than the header holds
  put32(many.bytes, 8, 1000);
  std::memcpy(buffer.data, many.bytes.data(), many.bytes.size());
  EXPECT_EQ(rule_at(buffer, many, function + 1).kind, UnwindRule::kEnd);

  std::memcpy(buffer.data, good.bytes.data(), good.bytes.size());
  // A header said to extend past the readable range.
  EXPECT_EQ(rule_at(buffer, good, function + 1, buffer.page + 8).kind, UnwindRule::kEnd);
  EXPECT_EQ(rule_at(buffer, good, function + 1).kind, UnwindRule::kStep);
}

TEST(UnwindRules, RandomlyDamagedTablesAreReadOnlyInsideTheirRange) {
  GuardedBuffer buffer;
  auto base = reinterpret_cast<uintptr_t>(buffer.data);
  uintptr_t function = base + 0x10000;
  Table good = build_table(base, function);
  // The table at the very end of the readable page: a read past it faults.
  size_t offset = buffer.page - ((good.bytes.size() + 7) & ~size_t{7});
  Table placed = build_table(base + offset, function);
  uint64_t seed = 20261205;
  std::mt19937_64 random(seed);
  int kinds[5] = {};
  for (int trial = 0; trial < 20000; ++trial) {
    std::vector<uint8_t> bytes = placed.bytes;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) bytes[random() % bytes.size()] = static_cast<uint8_t>(random());
    std::memset(buffer.data, 0, buffer.page);
    std::memcpy(buffer.data + offset, bytes.data(), bytes.size());
    UnwindReadableRange range{base, base + buffer.page};
    UnwindRule rule = unwind_rule_from_eh_frame_hdr(function + random() % 0x48, base + offset,
                                                    placed.header_bytes, &range, 1);
    ASSERT_LE(rule.kind, UnwindRule::kFallback) << "seed " << seed << " trial " << trial;
    kinds[rule.kind]++;
  }
  // The damage produced every outcome but "empty".
  EXPECT_EQ(kinds[UnwindRule::kEmpty], 0);
  EXPECT_GT(kinds[UnwindRule::kStep], 0);
  EXPECT_GT(kinds[UnwindRule::kOutermost], 0);
  EXPECT_GT(kinds[UnwindRule::kEnd], 0);
  EXPECT_GT(kinds[UnwindRule::kFallback], 0);
}

}  // namespace
