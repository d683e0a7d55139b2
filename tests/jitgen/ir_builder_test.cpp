// tests/jitgen/ir_builder_test.cpp — the C++ builder: processData and its caller main, built
// programmatically, print exactly as tests/escape/process_data.usir parses and prints; builder IR
// is checked by the same verify() with the same messages as the parser's semantic pass; locals
// stay ordered.
#include <gtest/gtest.h>

#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace usgc::jitgen::ir {
namespace {

Operand local(std::string name) {
  return Operand::local(std::move(name));
}
Operand integer(int64_t value) {
  return Operand::integer(value);
}
SourcePosition at(uint32_t line, uint32_t column) {
  return {line, column};
}

BuildResult build_process_data() {
  ModuleBuilder builder("process_data.us");
  TypeId int_type = builder.int_type();
  TypeId point_pointer = builder.pointer_to("Point");
  TypeId result_pointer = builder.pointer_to("Result");
  builder.add_struct("Point", {{"x", int_type}, {"y", int_type}});
  builder.add_struct(
      "Result",
      {{"sum", int_type}, {"count", int_type}, {"points", builder.array_of(point_pointer)}});

  FunctionBuilder accumulate = builder.add_function("accumulate");
  accumulate.capture("shared", result_pointer).parameter("id", int_type).local("sum", int_type);
  accumulate.block("entry");
  accumulate.load_field("sum", "shared", "sum");
  accumulate.binary("sum", BinaryOperator::Add, local("sum"), local("id"));
  accumulate.store_field("shared", "sum", local("sum"));
  accumulate.ret();

  FunctionBuilder process = builder.add_function("processData", result_pointer);
  process.parameter("n", int_type)
      .local("i", int_type)
      .local("more", builder.bool_type())
      .local("scratch", point_pointer)
      .local("kept", point_pointer)
      .local("x", int_type)
      .local("points", builder.array_of(point_pointer))
      .local("private", result_pointer)
      .local("shared", result_pointer);
  process.block("entry");
  process.new_array("points", point_pointer, local("n"), at(2, 13));
  process.new_object("private", builder.struct_type("Result"), at(3, 14));
  process.new_object("shared", builder.struct_type("Result"), at(4, 13));
  process.copy("i", integer(0));
  process.jump("loop");
  process.block("loop");
  process.binary("more", BinaryOperator::Lt, local("i"), local("n"));
  process.branch(local("more"), "body", "done");
  process.block("body");
  process.new_object("scratch", builder.struct_type("Point"), at(7, 16));
  process.store_field("scratch", "x", local("i"));
  process.load_field("x", "scratch", "x");
  process.new_object("kept", builder.struct_type("Point"), at(9, 13));
  process.store_field("kept", "y", local("x"));
  process.store_index("points", local("i"), local("kept"));
  process.binary("i", BinaryOperator::Add, local("i"), integer(1));
  process.jump("loop");
  process.block("done");
  process.store_field("private", "points", local("points"));
  process.store_field("private", "count", local("n"));
  process.go("accumulate", {local("n")}, {local("shared")}, at(14, 3));
  process.ret(local("private"));

  FunctionBuilder main = builder.add_function("main", int_type);
  main.local("round", int_type)
      .local("more", builder.bool_type())
      .local("result", result_pointer)
      .local("count", int_type)
      .local("total", int_type)
      .local("points", builder.array_of(point_pointer))
      .local("last", point_pointer)
      .local("y", int_type);
  main.block("entry");
  main.copy("round", integer(0));
  main.copy("total", integer(0));
  main.jump("loop");
  main.block("loop");
  main.binary("more", BinaryOperator::Lt, local("round"), integer(20));
  main.branch(local("more"), "body", "done");
  main.block("body");
  main.call("result", "processData", {integer(10)});
  main.load_field("count", "result", "count");
  main.load_field("points", "result", "points");
  main.load_index("last", "points", integer(9));
  main.load_field("y", "last", "y");
  main.binary("total", BinaryOperator::Add, local("total"), local("count"));
  main.binary("total", BinaryOperator::Add, local("total"), local("y"));
  main.binary("round", BinaryOperator::Add, local("round"), integer(1));
  main.jump("loop");
  main.block("done");
  main.ret(local("total"));
  return builder.finish();
}

TEST(IrBuilder, ProcessDataPrintsLikeTheParsedCorpusFile) {
  BuildResult built = build_process_data();
  ASSERT_TRUE(built.ok()) << format_diagnostics(built.diagnostics);
  ParseResult parsed = parse_module(
      testing::read_text_file(testing::source_root() / "tests/escape/process_data.usir"),
      "process_data.usir");
  ASSERT_TRUE(parsed.ok()) << format_diagnostics(parsed.diagnostics);
  EXPECT_EQ(print_module(built.module), print_module(parsed.module));
}

TEST(IrBuilder, BuiltModuleIsResolvedAndReportsSitesAtSourcePositions) {
  BuildResult built = build_process_data();
  ASSERT_TRUE(built.ok());
  const Function* process = built.module.find_function("processData");
  ASSERT_NE(process, nullptr);
  std::vector<SourcePosition> sites;
  for (const Block& block : process->blocks)
    for (const Instruction& instruction : block.instructions) {
      if (is_allocation_site(instruction.opcode)) sites.push_back(instruction.site_position());
      if (instruction.opcode == Opcode::Go) {
        EXPECT_EQ(instruction.callee_index, 0u);
        EXPECT_EQ(instruction.captures[0].local_index, 8u);  // %shared: n + 7 vars before it
      }
    }
  std::vector<SourcePosition> expected = {at(2, 13), at(3, 14), at(4, 13), at(7, 16), at(9, 13)};
  EXPECT_EQ(sites, expected);
}

TEST(IrBuilder, LocalsStayOrderedWhateverTheDeclarationOrder) {
  BuildResult built = build_process_data();
  const Function* accumulate = built.module.find_function("accumulate");
  ASSERT_NE(accumulate, nullptr);
  ASSERT_EQ(accumulate->locals.size(), 3u);
  EXPECT_EQ(accumulate->locals[0].name, "id");
  EXPECT_EQ(accumulate->locals[1].name, "shared");
  EXPECT_EQ(accumulate->locals[2].name, "sum");
  EXPECT_EQ(accumulate->parameter_count, 1u);
  EXPECT_EQ(accumulate->capture_count, 1u);
}

// The same erroneous module, written as text and built with the builder, gets the same messages
// (positions differ: builder IR has only the @line:col annotations given to it).
TEST(IrBuilder, VerifyGivesTheParsersSemanticDiagnostics) {
  ParseResult parsed = parse_module(
      "type Node { next: *Node }\n"
      "func f(%a: int) {\n"
      "  var %n: *Node\n"
      "  var %c: chan *Node\n"
      "entry:\n"
      "  %n = new Node @1:1\n"
      "  store %a.next, %n @2:1\n"
      "  send %n, %n @3:1\n"
      "  call f(%n, %n) @4:1\n"
      "  %n = load @nowhere @5:1\n"
      "  jmp missing @6:1\n"
      "tail:\n"
      "  send %c, %n @7:1\n"
      "}\n",
      "t.usir");
  ModuleBuilder builder("t.usir");
  builder.add_struct("Node", {{"next", builder.pointer_to("Node")}});
  FunctionBuilder function = builder.add_function("f");
  function.parameter("a", builder.int_type())
      .local("n", builder.pointer_to("Node"))
      .local("c", builder.channel_of(builder.pointer_to("Node")));
  function.block("entry");
  function.new_object("n", builder.struct_type("Node"), at(1, 1));
  function.store_field("a", "next", local("n"), at(2, 1));
  function.send(local("n"), local("n"), at(3, 1));
  function.call("", "f", {local("n"), local("n")}, {}, at(4, 1));
  function.load_global("n", "nowhere", at(5, 1));
  function.jump("missing", at(6, 1));
  function.block("tail");
  function.send(local("c"), local("n"), at(7, 1));
  BuildResult built = builder.finish();

  auto messages = [](const std::vector<Diagnostic>& diagnostics) {
    std::vector<std::string> result;
    for (const Diagnostic& diagnostic : diagnostics) result.push_back(diagnostic.message);
    return result;
  };
  std::vector<std::string> expected = {
      "store: expected a pointer to a struct before '.next', found '%a' of type int",
      "send: expected a channel, found '%n' of type *Node",
      "call f: expected 1 arguments, found 2",
      "undefined global '@nowhere'",
      "undefined label 'missing' in function 'f'",
      "block 'tail' does not end with a terminator: expected br, jmp or ret after this 'send'",
  };
  EXPECT_EQ(messages(parsed.diagnostics), expected);
  EXPECT_EQ(messages(built.diagnostics), expected);
  // Builder diagnostics point at the annotations.
  ASSERT_EQ(built.diagnostics.size(), expected.size());
  EXPECT_EQ(built.diagnostics[0].position, at(2, 1));
  EXPECT_EQ(built.diagnostics[0].to_string(),
            "t.usir:2:1: store: expected a pointer to a struct before '.next', found '%a' of type "
            "int");
  // verify() on the parsed module gives what the parser gave.
  EXPECT_EQ(verify(parsed.module), parsed.diagnostics);
}

TEST(IrBuilder, MalformedInstructionsAreDiagnosedNotTrusted) {
  ModuleBuilder builder("t.usir");
  FunctionBuilder function = builder.add_function("f");
  Instruction send_without_operands;
  send_without_operands.opcode = Opcode::Send;
  send_without_operands.source_position = at(1, 1);
  function.append(send_without_operands);
  Instruction store_with_constant_base;
  store_with_constant_base.opcode = Opcode::StoreField;
  store_with_constant_base.operands = {integer(1), integer(2)};
  store_with_constant_base.field_name = "x";
  function.append(store_with_constant_base);
  function.ret();
  BuildResult built = builder.finish();
  std::vector<std::string> lines;
  for (const Diagnostic& diagnostic : built.diagnostics) lines.push_back(diagnostic.to_string());
  std::vector<std::string> expected = {
      "t.usir:1:1: malformed 'send': expected 2 operands, found 0",
      "t.usir: 'store': the object or array must be a local",
  };
  EXPECT_EQ(lines, expected);
}

}  // namespace
}  // namespace usgc::jitgen::ir
