// tests/safepoint/poll_instruction_test.cpp — the poll instruction decoder
// (safepoint/poll_instruction.hpp) on encodings produced by GNU as 2.40 (`as enc.s; objdump -d`),
// each written next to the AT&T source line it came from.
//
// Proves: the two emitted poll forms (C inline `testb $0, (%reg)`, the JIT's
// `test byte ptr [base + disp], imm8`) decode to their full length with every base register
// (rsp/r12 need a SIB byte, rbp/r13 a displacement even for 0) and disp 0/8/32; and that every
// other load (mov, cmp, test r/m,r), an index register, RIP-relative or absolute addressing,
// prefixes, REX.W/R/X, stores, register operands and truncated input give 0.
#include "safepoint/poll_instruction.hpp"

#include "kernel_iface/virtual_memory.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

namespace usgc::safepoint {
namespace {

struct Encoding {
  const char* source;  // what `as` assembled
  std::vector<uint8_t> bytes;
};

size_t decode(const std::vector<uint8_t>& bytes) {
  return poll_instruction_length(std::span<const uint8_t>(bytes.data(), bytes.size()));
}

// Every encoding alone, and followed by bytes of a next instruction (which must not count).
void expect_full_length(const std::vector<Encoding>& encodings) {
  for (const Encoding& encoding : encodings) {
    EXPECT_EQ(decode(encoding.bytes), encoding.bytes.size()) << encoding.source;
    std::vector<uint8_t> followed = encoding.bytes;
    for (uint8_t next : {0x90, 0x48, 0x8b, 0x00, 0xc3}) followed.push_back(next);
    EXPECT_EQ(decode(followed), encoding.bytes.size())
        << encoding.source << " followed by more code";
  }
}

void expect_not_a_poll(const std::vector<Encoding>& encodings) {
  for (const Encoding& encoding : encodings) {
    EXPECT_EQ(decode(encoding.bytes), 0u) << encoding.source;
  }
}

TEST(PollInstruction, TestbZeroThroughEveryBaseRegister) {
  expect_full_length({
      {"testb $0, (%rax)", {0xf6, 0x00, 0x00}},
      {"testb $0, (%rbx)", {0xf6, 0x03, 0x00}},
      {"testb $0, (%rcx)", {0xf6, 0x01, 0x00}},
      {"testb $0, (%rdx)", {0xf6, 0x02, 0x00}},
      {"testb $0, (%rsi)", {0xf6, 0x06, 0x00}},
      {"testb $0, (%rdi)", {0xf6, 0x07, 0x00}},
      {"testb $0, (%rsp)  (rm=100: SIB 0x24)", {0xf6, 0x04, 0x24, 0x00}},
      {"testb $0, 0x0(%rbp)  (mod=00 rm=101 is RIP-relative: disp8 0)", {0xf6, 0x45, 0x00, 0x00}},
      {"testb $0, (%r8)", {0x41, 0xf6, 0x00, 0x00}},
      {"testb $0, (%r9)", {0x41, 0xf6, 0x01, 0x00}},
      {"testb $0, (%r10)", {0x41, 0xf6, 0x02, 0x00}},
      {"testb $0, (%r11)", {0x41, 0xf6, 0x03, 0x00}},
      {"testb $0, (%r12)  (like rsp: SIB)", {0x41, 0xf6, 0x04, 0x24, 0x00}},
      {"testb $0, 0x0(%r13)  (like rbp: disp8 0)", {0x41, 0xf6, 0x45, 0x00, 0x00}},
      {"testb $0, (%r14)", {0x41, 0xf6, 0x06, 0x00}},
      {"testb $0, (%r15)", {0x41, 0xf6, 0x07, 0x00}},
  });
}

TEST(PollInstruction, JitFormWithDisplacements) {
  // The JIT's `test byte ptr [base + disp], imm8`: any base, disp 0/8/32, any imm8.
  expect_full_length({
      {"testb $0, 0x40(%r12)", {0x41, 0xf6, 0x44, 0x24, 0x40, 0x00}},
      {"testb $0, 0x4000(%r13)", {0x41, 0xf6, 0x85, 0x00, 0x40, 0x00, 0x00, 0x00}},
      {"testb $0, -0x80(%rbp)", {0xf6, 0x45, 0x80, 0x00}},
      {"testb $0, 0x7fffffff(%r15)", {0x41, 0xf6, 0x87, 0xff, 0xff, 0xff, 0x7f, 0x00}},
      {"testb $0, 0x10(%rsp)", {0xf6, 0x44, 0x24, 0x10, 0x00}},
      {"testb $0, 0x1000(%rsp)", {0xf6, 0x84, 0x24, 0x00, 0x10, 0x00, 0x00, 0x00}},
      {"testb $0x1, 0x8(%r14)", {0x41, 0xf6, 0x46, 0x08, 0x01}},
      {"testb $0xff, 0x12345678(%rdi)", {0xf6, 0x87, 0x78, 0x56, 0x34, 0x12, 0xff}},
      {"rex testb $0, (%rax)  (an empty REX 40)", {0x40, 0xf6, 0x00, 0x00}},
  });
}

TEST(PollInstruction, OnlyTheEmittedFormsAreAccepted) {
  // A stray load from a poll page is not a poll: skipping it would resume with its destination
  // never loaded. It must chain like any other fault.
  expect_not_a_poll({
      {"test %al, (%rax)", {0x84, 0x00}},
      {"test %eax, (%r11)", {0x41, 0x85, 0x03}},
      {"mov (%rax), %al", {0x8a, 0x00}},
      {"mov (%r12), %eax", {0x41, 0x8b, 0x04, 0x24}},
      {"mov 0x18(%r13), %r15", {0x4d, 0x8b, 0x7d, 0x18}},
      {"mov (%rsp), %rdx", {0x48, 0x8b, 0x14, 0x24}},
      {"cmp 0x0(%rbp), %al", {0x3a, 0x45, 0x00}},
      {"cmp %cl, (%rdi)", {0x38, 0x0f}},
      {"cmpb $0x0, (%rax)  (80 /7 ib)", {0x80, 0x38, 0x00}},
      {"cmpl $0x0, (%rax)  (83 /7 ib)", {0x83, 0x38, 0x00}},
      {"cmpq $-1, (%r12)", {0x49, 0x83, 0x3c, 0x24, 0xff}},
      {"testb $0, 0x100(%rip)  (no base register)", {0xf6, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00}},
      {"testb $0, 0x10(%rsp,%rcx,8)  (an index)", {0xf6, 0x44, 0xcc, 0x10, 0x00}},
      {"testb $0, (%r8,%r15,2)  (REX.X, an index)", {0x43, 0xf6, 0x04, 0x78, 0x00}},
      {"testb $0, 0x0(%r13,%rax,1)", {0x41, 0xf6, 0x44, 0x05, 0x00, 0x00}},
      {"testb $0, 0x12345678(,%rax,4)", {0xf6, 0x04, 0x85, 0x78, 0x56, 0x34, 0x12, 0x00}},
      {"testb $0, 0x12345678  (absolute: SIB 0x25)",
       {0xf6, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12, 0x00}},
      {"SIB with no index but scale 8", {0xf6, 0x04, 0xe4, 0x00}},
      {"REX.W testb", {0x48, 0xf6, 0x00, 0x00}},
      {"REX.R testb", {0x44, 0xf6, 0x00, 0x00}},
      {"testb $0, %fs:(%rax)  (a segment prefix)", {0x64, 0xf6, 0x00, 0x00}},
      {"data16 testb", {0x66, 0xf6, 0x00, 0x00}},
      {"addr32 testb $0, (%eax)", {0x67, 0xf6, 0x00, 0x00}},
  });
}

TEST(PollInstruction, StoresRegisterOperandsAndOtherInstructionsAreNotPolls) {
  expect_not_a_poll({
      {"mov %al, (%rax)  (a store)", {0x88, 0x00}},
      {"mov %rax, (%rax)  (a store)", {0x48, 0x89, 0x00}},
      {"test %eax, %ecx  (mod=11: no memory)", {0x85, 0xc1}},
      {"mov %rax, %rbx  (mod=11)", {0x48, 0x89, 0xc3}},
      {"testb $0, %al as f6 c0 00 (mod=11)", {0xf6, 0xc0, 0x00}},
      {"test $0x0, %al  (a8: no memory operand)", {0xa8, 0x00}},
      {"addl $0x1, (%rax)  (83 /0: a read-modify-write)", {0x83, 0x00, 0x01}},
      {"notb (%rax)  (f6 /2)", {0xf6, 0x10}},
      {"f6 /1 (an undocumented alias of test)", {0xf6, 0x08, 0x00}},
      {"testl $0x0, (%rax)  (f7: not accepted)", {0xf7, 0x00, 0x00, 0x00, 0x00, 0x00}},
      {"lock prefix before a test", {0xf0, 0xf6, 0x00, 0x00}},
      {"rep prefix before a test", {0xf3, 0xf6, 0x00, 0x00}},
      {"lea (%rax), %rax", {0x48, 0x8d, 0x00}},
      {"movzbl (%rax), %eax  (0f escape)", {0x0f, 0xb6, 0x00}},
      {"nop", {0x90}},
      {"ret", {0xc3}},
      {"two REX prefixes", {0x40, 0x41, 0xf6, 0x00, 0x00}},
      {"REX only", {0x41}},
      {"nothing", {}},
  });
}

TEST(PollInstruction, TruncatedInputIsNotAPoll) {
  const std::vector<std::vector<uint8_t>> complete = {
      {0xf6, 0x00, 0x00},                                // testb $0, (%rax)
      {0x41, 0xf6, 0x04, 0x24, 0x00},                    // testb $0, (%r12)
      {0x41, 0xf6, 0x85, 0x00, 0x40, 0x00, 0x00, 0x00},  // testb $0, 0x4000(%r13)
      {0xf6, 0x84, 0x24, 0x00, 0x10, 0x00, 0x00, 0x00},  // testb $0, 0x1000(%rsp)
      {0xf6, 0x45, 0x00, 0x00},                          // testb $0, 0x0(%rbp)
  };
  for (const std::vector<uint8_t>& bytes : complete) {
    ASSERT_EQ(decode(bytes), bytes.size());
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      std::vector<uint8_t> truncated(bytes.begin(),
                                     bytes.begin() + static_cast<std::ptrdiff_t>(cut));
      EXPECT_EQ(decode(truncated), 0u) << "first " << cut << " of " << bytes.size() << " bytes";
    }
  }
}

TEST(PollInstruction, NeverLongerThanItsForm) {
  // REX + opcode + ModRM + SIB + disp32 + imm8 = 9: the longest accepted form.
  std::vector<uint8_t> longest = {0x41, 0xf6, 0x84, 0x24, 0x78, 0x56, 0x34, 0x12, 0x00};
  EXPECT_EQ(decode(longest), 9u);
  std::vector<uint8_t> long_span(64, 0x90);
  long_span[0] = 0xf6;
  long_span[1] = 0x00;
  long_span[2] = 0x00;
  EXPECT_EQ(decode(long_span), 3u);
}

// "Decode within the instruction": an instruction that ends right before an unreadable page is
// decoded without touching that page, although the span handed over runs 15 bytes into it (as
// the fault handler's span from the faulting RIP may). A read past the instruction would crash.
TEST(PollInstruction, ReadsOnlyTheInstructionsOwnBytes) {
  const size_t page = kernel::os_page_size();
  kernel::Result<void*> mapped = kernel::map_aligned(2 * page, page);
  ASSERT_TRUE(mapped.ok());
  uint8_t* first = static_cast<uint8_t*>(mapped.value());
  ASSERT_TRUE(kernel::protect(first + page, page, kernel::Access::kNone).ok());
  const std::vector<std::vector<uint8_t>> instructions = {
      {0xf6, 0x00, 0x00},                                // testb $0, (%rax)
      {0x41, 0xf6, 0x85, 0x00, 0x40, 0x00, 0x00, 0x00},  // testb $0, 0x4000(%r13)
      {0xf6, 0x44, 0x24, 0x10, 0x00},                    // testb $0, 0x10(%rsp)
      {0x88, 0x00},                                      // mov %al, (%rax): refused at the opcode
      {0x48, 0x89, 0xc3},                                // mov %rax, %rbx: refused at the ModRM
  };
  for (const std::vector<uint8_t>& bytes : instructions) {
    uint8_t* start = first + page - bytes.size();
    std::memcpy(start, bytes.data(), bytes.size());
    const size_t length =
        poll_instruction_length(std::span<const uint8_t>(start, kMaxInstructionBytes));
    EXPECT_TRUE(length == 0 || length == bytes.size());
  }
  ASSERT_TRUE(kernel::unmap(first, 2 * page).ok());
}

}  // namespace
}  // namespace usgc::safepoint
