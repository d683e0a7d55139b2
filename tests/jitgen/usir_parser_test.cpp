// tests/jitgen/usir_parser_test.cpp — the .usir parser: the corpus parses cleanly; malformed
// text gets `file:line:col: message` diagnostics naming what was expected and found; recovery
// reports several errors per run, up to the cap; the semantic pass catches undefined names,
// wrong operand kinds, duplicates, missing terminators and arity mismatches.
#include <gtest/gtest.h>

#include "jitgen/ir/ir.hpp"
#include "tests/jitgen/usir_test_support.hpp"

namespace usgc::jitgen::ir {
namespace {

std::vector<std::string> diagnostic_lines(std::string_view text) {
  ParseResult result = parse_module(text, "t.usir");
  std::vector<std::string> lines;
  for (const Diagnostic& diagnostic : result.diagnostics) lines.push_back(diagnostic.to_string());
  return lines;
}

TEST(UsirParser, EveryCorpusFileParsesWithoutDiagnostics) {
  std::vector<std::filesystem::path> files = testing::usir_corpus_files();
  ASSERT_GE(files.size(), 12u) << "the corpus tests/escape/ is missing or too small";
  for (const auto& path : files) {
    ParseResult result = parse_module(testing::read_text_file(path), path.filename().string());
    EXPECT_TRUE(result.ok()) << path << ":\n" << format_diagnostics(result.diagnostics);
  }
}

TEST(UsirParser, CorpusCoversEveryInstructionKind) {
  std::vector<bool> seen(static_cast<size_t>(Opcode::Return) + 1, false);
  bool unknown_call = false, go_with_captures = false, global_store = false;
  for (const auto& path : testing::usir_corpus_files()) {
    ParseResult result = parse_module(testing::read_text_file(path), path.string());
    for (const Function& function : result.module.functions)
      for (const Block& block : function.blocks)
        for (const Instruction& instruction : block.instructions) {
          seen[static_cast<size_t>(instruction.opcode)] = true;
          unknown_call |= instruction.callee_unknown;
          go_with_captures |= instruction.opcode == Opcode::Go && !instruction.captures.empty();
          global_store |= instruction.opcode == Opcode::StoreGlobal;
        }
  }
  for (size_t opcode = 0; opcode < seen.size(); ++opcode)
    EXPECT_TRUE(seen[opcode]) << "no corpus program uses opcode " << opcode;
  EXPECT_TRUE(unknown_call);
  EXPECT_TRUE(go_with_captures);
  EXPECT_TRUE(global_store);
}

TEST(UsirParser, ResolvesNamesAndKeepsPositions) {
  ParseResult result = parse_module(
      "type Point { x: int, next: *Point }\n"
      "global head: *Point\n"
      "func f(%n: int) -> *Point {\n"
      "  var %p: *Point\n"
      "entry:\n"
      "  %p = new Point @40:7\n"
      "  store %p.next, %p\n"
      "  store @head, %p\n"
      "  ret %p\n"
      "}\n",
      "f.usir");
  ASSERT_TRUE(result.ok()) << format_diagnostics(result.diagnostics);
  const Function& function = result.module.functions[0];
  ASSERT_EQ(function.locals.size(), 2u);
  EXPECT_EQ(function.parameter_count, 1u);
  const std::vector<Instruction>& instructions = function.blocks[0].instructions;
  EXPECT_EQ(instructions[0].opcode, Opcode::New);
  EXPECT_EQ(instructions[0].result_index, 1u);
  EXPECT_EQ(instructions[0].text_position, (SourcePosition{6, 3}));
  EXPECT_EQ(instructions[0].site_position(), (SourcePosition{40, 7}));
  EXPECT_EQ(instructions[1].field_index, 1u);
  EXPECT_EQ(instructions[1].site_position(), (SourcePosition{7, 3}));
  EXPECT_EQ(instructions[2].global_index, 0u);
  EXPECT_EQ(result.module.types.spelling(result.module.globals[0].type), "*Point");
}

TEST(UsirParser, SyntaxErrorsSayWhatWasExpectedAndFound) {
  EXPECT_EQ(diagnostic_lines("type Point { x: int y: int }\n"),
            std::vector<std::string>{"t.usir:1:21: expected ',' or '}', found 'y'"});
  EXPECT_EQ(diagnostic_lines("global : int\n"),
            std::vector<std::string>{"t.usir:1:8: expected a global name, found ':'"});
  EXPECT_EQ(diagnostic_lines("func f() {\nentry:\n  %p = blah 1\n}\n"),
            std::vector<std::string>{
                "t.usir:3:8: expected an operation (new, newarray, makechan, load, len, recv, "
                "call, add, ...) or an operand, found 'blah'"});
  EXPECT_EQ(diagnostic_lines("func f() {\nentry:\n  ret $\n}\n"),
            std::vector<std::string>{"t.usir:3:7: expected an operand (a local, an integer, true, "
                                     "false or null), found invalid token '$'"});
  EXPECT_EQ(diagnostic_lines("func f() {\nentry:\n  ret\n"),
            std::vector<std::string>{"t.usir:4:1: expected '}' closing function 'f', found end "
                                     "of file"});
  EXPECT_EQ(diagnostic_lines("func f() {\n  ret\n}\n"),
            std::vector<std::string>{"t.usir:2:3: expected a block label like 'entry:' before "
                                     "the first instruction, found 'ret'"});
  EXPECT_EQ(diagnostic_lines("func f() {\nentry:\n  %x = 99999999999999999999\n}\n"),
            std::vector<std::string>{"t.usir:3:8: expected an integer that fits in 64 bits, "
                                     "found '99999999999999999999'"});
  EXPECT_EQ(diagnostic_lines("func f() {\nentry:\n  ret @0:3\n}\n"),
            std::vector<std::string>{"t.usir:3:7: expected a position '@line:col' with 1-based "
                                     "numbers, found '@0:3'"});
}

TEST(UsirParser, RecoversToReportSeveralErrorsInOneRun) {
  std::vector<std::string> lines = diagnostic_lines(
      "type Point { x: int y: int }\n"  // 1
      "global : int\n"                  // 2
      "func f(%a *Point) {\n"           // 3: header error, body skipped
      "entry:\n"
      "  ret\n"
      "}\n"
      "func h() {\n"  // 7
      "  var %p: *Point\n"
      "entry:\n"
      "  %p = new\n"      // 10
      "  store %p.x 1\n"  // 11
      "  var %z: int\n"   // 12
      "  br %p, a b\n"    // 13
      "}\n"
      "junk\n"  // 15
      "func k() {\n");
  std::vector<std::string> expected = {
      "t.usir:1:21: expected ',' or '}', found 'y'",
      "t.usir:2:8: expected a global name, found ':'",
      "t.usir:3:11: expected ':', found '*'",
      "t.usir:10:11: expected a type, found end of line",
      "t.usir:11:14: expected ',', found '1'",
      "t.usir:12:3: expected an instruction, found 'var' (declare locals before the first block "
      "label)",
      "t.usir:13:12: expected ',', found 'b'",
      "t.usir:15:1: expected 'type', 'global' or 'func', found 'junk'",
      "t.usir:17:1: expected '}' closing function 'k', found end of file",
  };
  EXPECT_EQ(lines, expected);
}

TEST(UsirParser, DiagnosticsAreCapped) {
  std::string text = "func f() {\nentry:\n";
  for (int line = 0; line < 200; ++line) text += "  %x = blah\n";  // one error per line
  std::vector<std::string> lines = diagnostic_lines(text + "}\n");
  ASSERT_EQ(lines.size(), kDefaultDiagnosticLimit + 1);
  EXPECT_EQ(lines.back(), "t.usir:23:8: too many errors, stopping");
  // Declaration-level recovery skips to the next declaration: one error for a run of junk.
  std::string junk;
  for (int line = 0; line < 200; ++line) junk += "junk\n";
  EXPECT_EQ(diagnostic_lines(junk).size(), 1u);
}

TEST(UsirParser, SemanticErrorsAreReportedTogether) {
  std::vector<std::string> lines = diagnostic_lines(
      "type Point { x: int, y: int, next: *Point }\n"  // 1
      "type Point { z: int }\n"                        // 2
      "type Bad { a: *Missing, b: Point }\n"           // 3
      "global g: chan *Point\n"                        // 4
      "global g: int\n"                                // 5
      "\n"
      "func f(%a: *Point, %b: int) -> *Point {\n"  // 7
      "  var %c: chan int\n"
      "  var %x: int\n"
      "  var %a: int\n"  // 10
      "entry:\n"
      "  store %x.y, 1\n"  // 12
      "  send %x, %a\n"
      "  send %c, %a\n"
      "  %x = load %a.nope\n"  // 15
      "  %q = new Point\n"
      "  %x = call f(%a)\n"
      "  %x = call g(%a, 1)\n"
      "  br %x, entry, nowhere\n"
      "b2:\n"  // 20
      "  %x = load @nothere\n"
      "  %x = add %x, 1\n"
      "}\n"
      "func g() {\n"
      "entry:\n"  // 25
      "  ret 5\n"
      "empty:\n"
      "}\n");
  std::vector<std::string> expected = {
      "t.usir:2:1: duplicate type 'Point' (first defined at 1:1)",
      "t.usir:3:12: undefined type 'Missing'",
      "t.usir:3:25: field 'Bad.b': struct type 'Point' cannot be a value type (objects are used "
      "through '*Point')",
      "t.usir:5:1: duplicate global '@g' (first defined at 4:1)",
      "t.usir:10:7: duplicate local '%a' in function 'f' (first defined at 7:8)",
      "t.usir:12:9: store: expected a pointer to a struct before '.y', found '%x' of type int",
      "t.usir:13:8: send: expected a channel, found '%x' of type int",
      "t.usir:14:12: send: expected a value of type int, found '%a' of type *Point",
      "t.usir:15:3: type 'Point' has no field 'nope'",
      "t.usir:16:3: undefined local '%q'",
      "t.usir:17:3: call f: expected 2 arguments, found 1",
      "t.usir:18:3: call g: expected 0 arguments, found 2",
      "t.usir:19:6: br: expected a bool condition, found '%x' of type int",
      "t.usir:19:3: undefined label 'nowhere' in function 'f'",
      "t.usir:21:3: undefined global '@nothere'",
      "t.usir:22:3: block 'b2' does not end with a terminator: expected br, jmp or ret after "
      "this 'add'",
      "t.usir:26:7: ret: function 'g' returns nothing, found a value",
      "t.usir:27:1: block 'empty' is empty: it must end with a terminator (br, jmp or ret)",
  };
  EXPECT_EQ(lines, expected);
}

TEST(UsirParser, CallsSpawnsAndChannelsAreTypeChecked) {
  const char* prelude =
      "type Box { v: int }\n"
      "func worker(%n: int) captures(%box: *Box) {\n"
      "entry:\n"
      "  ret\n"
      "}\n"
      "func main() {\n"
      "  var %box: *Box\n"
      "  var %ch: chan *Box\n"
      "  var %n: int\n"
      "entry:\n";
  auto errors_of = [&](const std::string& body) {
    return diagnostic_lines(std::string(prelude) + body + "  ret\n}\n");
  };
  EXPECT_EQ(errors_of("  go worker(1) captures(%box)\n  call worker(2) captures(%box)\n"),
            std::vector<std::string>{});
  EXPECT_EQ(errors_of("  go worker(1)\n"),
            std::vector<std::string>{"t.usir:11:3: go worker: expected 1 captured variables, "
                                     "found 0"});
  EXPECT_EQ(errors_of("  go worker(%box) captures(%box)\n"),
            std::vector<std::string>{"t.usir:11:13: go worker, argument '%n': expected a value "
                                     "of type int, found '%box' of type *Box"});
  EXPECT_EQ(errors_of("  go worker(1) captures(%ch)\n"),
            std::vector<std::string>{"t.usir:11:25: go worker, capture '%box': expected a value "
                                     "of type *Box, found '%ch' of type chan *Box"});
  EXPECT_EQ(errors_of("  go missing(1)\n"),
            std::vector<std::string>{"t.usir:11:3: undefined function 'missing'"});
  EXPECT_EQ(errors_of("  %n = call worker(1) captures(%box)\n"),
            std::vector<std::string>{"t.usir:11:3: call worker: function 'worker' returns "
                                     "nothing, found a result '%n'"});
  EXPECT_EQ(errors_of("  %n = recv %box\n"),
            std::vector<std::string>{"t.usir:11:13: recv: expected a channel, found '%box' of "
                                     "type *Box"});
  EXPECT_EQ(errors_of("  %n = recv %ch\n"),
            std::vector<std::string>{"t.usir:11:3: recv yields *Box but '%n' has type int"});
  EXPECT_EQ(errors_of("  %ch = makechan int, 1\n"),
            std::vector<std::string>{"t.usir:11:3: makechan yields chan int but '%ch' has type "
                                     "chan *Box"});
  EXPECT_EQ(errors_of("  send %ch, null\n  call unknown(%box, %ch, 3)\n  go unknown(%box)\n"),
            std::vector<std::string>{});
  EXPECT_EQ(errors_of("  %box = new [4]int\n"),
            std::vector<std::string>{"t.usir:11:3: new yields [4]int but '%box' has type *Box"});
  EXPECT_EQ(errors_of("  %box = new *Box\n"),
            std::vector<std::string>{"t.usir:11:3: new: expected a struct name or a fixed-size "
                                     "array '[N]T', found *Box"});
}

TEST(UsirParser, NeverCrashesOnPathologicalInput) {
  std::string deep_type = "global g: ";
  for (int depth = 0; depth < 10000; ++depth) deep_type += "[]";
  deep_type += "int\n";
  EXPECT_FALSE(parse_module(deep_type, "t.usir").ok());
  EXPECT_FALSE(parse_module(std::string(1000, '{'), "t.usir").ok());
  EXPECT_FALSE(parse_module(std::string("\0\xff\x80%@-", 7), "t.usir").ok());
  EXPECT_TRUE(parse_module("", "t.usir").ok());
  EXPECT_TRUE(parse_module("// only a comment", "t.usir").ok());
}

}  // namespace
}  // namespace usgc::jitgen::ir
