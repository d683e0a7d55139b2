// jitgen/ir/printer.hpp — prints a Module as canonical .usir text (docs/usir.md).
//
// Canonical form: declarations in module order (types, then globals, then functions, each group
// separated by a blank line; functions separated by a blank line); a type on one line
// (`type Point { x: int, y: int }`); a function header with its parameters, `captures(...)` and
// `-> result`; `var` lines indented by 2; labels in column 1; instructions indented by 2, one per
// line, a `@line:col` annotation after an instruction that has a source position. Comments and
// spacing of the input are not kept.
//
// Invariants:
//   * the round-trip invariant: for every text x that parses cleanly,
//     print(parse(print(parse(x)))) == print(parse(x)), and every `@line:col` annotation of x is
//     on the same instruction in parse(print(parse(x))).
//   * printing never needs a verified module: it prints names as written, so a module with
//     errors prints too (useful in diagnostics and tests); an invalid type prints `<no type>`.
#pragma once

#include <string>

#include "jitgen/ir/module.hpp"

namespace usgc::jitgen::ir {

std::string print_module(const Module& module);
std::string print_instruction(const Module& module, const Instruction& instruction);

}  // namespace usgc::jitgen::ir
