// tests/gc/heap_validate_test.cpp — usgc_heap_validate (usgc/validate.h): the verifier on demand
// reports what it walked (every rooted object, their bytes and references, the goroutines), works
// without USGC_VERIFY, refuses misuse (EINVAL, EPERM), and stops the process naming the object
// when the heap is corrupt, or a root refers to a popped STACK_LOCAL object.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "tests/support/runtime_fixture.hpp"
#include "usgc/usgc.h"

namespace {

using usgc::testing::run_main;

struct Cell {
  Cell* next;
  int64_t value;
};

usgc_type_id cell_type() {
  static usgc_type_id type = [] {
    static const size_t offsets[] = {offsetof(Cell, next)};
    usgc_type_info info = {"Cell", USGC_KIND_OBJECT, sizeof(Cell), offsets, 1};
    return usgc_register_type(&info);
  }();
  return type;
}

// A list of n cells of one class, rooted in *root.
void build_list(void** root, int n, usgc_ownership ownership) {
  *root = nullptr;
  for (int i = 0; i < n; ++i) {
    auto* cell = static_cast<Cell*>(usgc_alloc(cell_type(), ownership));
    ASSERT_NE(cell, nullptr) << usgc_last_error();
    cell->value = i;
    usgc_write(cell, reinterpret_cast<void**>(&cell->next), *root);
    *root = cell;
  }
}

class HeapValidateTest : public usgc::testing::RuntimeTest {
 protected:
  void SetUp() override {
    ::unsetenv("USGC_VERIFY");  // on demand: not because every collection verifies
    RuntimeTest::SetUp();
  }
};

TEST_F(HeapValidateTest, ReportsEveryRootedObjectAndItsReferences) {
  run_main([] {
    USGC_ROOTS(roots, 2);
    build_list(&roots[0], 300, USGC_GOROUTINE_PRIVATE);
    build_list(&roots[1], 200, USGC_GOROUTINE_SHARED);
    usgc_heap_report report{};
    report.version = USGC_HEAP_REPORT_VERSION;
    ASSERT_EQ(usgc_heap_validate(&report), 0);
    EXPECT_GE(report.verifications, 1u);
    EXPECT_GE(report.objects_checked, 500u);
    EXPECT_GE(report.bytes_checked, 500u * (8 + sizeof(Cell)));
    // Two root slots, and the 299 + 199 links of the lists.
    EXPECT_GE(report.roots_checked, 2u);
    EXPECT_GE(report.references_checked, 2u + 299u + 199u);
    EXPECT_GE(report.goroutines_checked, 1u);
    // The lists are intact after the verified collection.
    int64_t sum = 0;
    for (auto* cell = static_cast<Cell*>(roots[0]); cell != nullptr; cell = cell->next)
      sum += cell->value;
    EXPECT_EQ(sum, 299 * 300 / 2);
  });
}

TEST_F(HeapValidateTest, MisuseIsRefused) {
  usgc_heap_report report{};
  report.version = USGC_HEAP_REPORT_VERSION;
  EXPECT_EQ(usgc_heap_validate(&report), EPERM);  // not a goroutine
  run_main([] {
    usgc_heap_report wrong{};
    wrong.version = 99;
    EXPECT_EQ(usgc_heap_validate(&wrong), EINVAL);
    EXPECT_EQ(usgc_heap_validate(nullptr), EINVAL);
  });
}

using HeapValidateDeathTest = HeapValidateTest;

TEST_F(HeapValidateDeathTest, ACorruptHeaderStopsTheProcessNamingTheObject) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_main([] {
                 USGC_ROOTS(roots, 1);
                 build_list(&roots[0], 10, USGC_GOROUTINE_SHARED);
                 auto* second = static_cast<Cell*>(roots[0])->next;
                 reinterpret_cast<uint64_t*>(second)[-1] |= 0x80;  // a bit no header uses
                 usgc_heap_report report{};
                 report.version = USGC_HEAP_REPORT_VERSION;
                 usgc_heap_validate(&report);
               }),
               "USGC_VERIFY: unknown header bits: object 0x[0-9a-f]+");
}

// A root left pointing at a STACK_LOCAL object whose frame was popped, its memory given to a
// newer object since (the word before it is zero now): the verifier names the popped object and
// does not blame the collector ("a reachable object was freed").
TEST_F(HeapValidateDeathTest, AReferenceToAPoppedStackObjectIsNamedAsSuch) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_main([] {
                 USGC_ROOTS(outer, 1);
                 {
                   USGC_ROOTS(inner, 2);
                   inner[0] = usgc_alloc(cell_type(), USGC_STACK_LOCAL);
                   inner[1] = usgc_alloc(cell_type(), USGC_STACK_LOCAL);
                   outer[0] = inner[1];  // outlives the frame: what a wrong decision does
                 }
                 USGC_ROOTS(newer, 1);
                 newer[0] = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 64, USGC_STACK_LOCAL);
                 usgc_heap_report report{};
                 report.version = USGC_HEAP_REPORT_VERSION;
                 usgc_heap_validate(&report);
               }),
               "USGC_VERIFY: a STACK_LOCAL object is referenced after its frame was popped: "
               "object 0x[0-9a-f]+ .*the word before it reads 0x0\\)");
}

}  // namespace
