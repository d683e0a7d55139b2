// jitgen/ir/verifier.hpp — the semantic pass of the UltraScript IR, shared by the parser (it runs
// on every syntactically clean .usir text) and by JIT front ends (on builder IR), so both report
// exactly the same diagnostics for the same module.
//
// verify() resolves every name to its index (locals, fields, globals, callees, labels) and checks:
//   * definitions: no duplicate type, field, global, function, local or label; `unknown` is not a
//     function name; locals are ordered parameters, captures, variables;
//   * types: every struct named is defined; values never have a bare struct type (`*S`, not `S`);
//     `new` takes a struct or `[N]T`;
//   * operands: each operation gets the kinds it needs (a pointer to a struct before `.field`, an
//     array before `[i]`, a channel for send/recv/close, bool for br, int for lengths and
//     indices) and every store, send, argument, return and result is type-correct;
//   * calls and spawns: direct callees exist and get as many arguments and captures as they
//     declare;
//   * control flow: every function has a block, every block ends with exactly one terminator (br,
//     jmp, ret) as its last instruction, every target label exists.
// Diagnostics are in the module's order (declarations, then functions top to bottom), each at the
// text position when there is one (parsed IR), else at the `@line:col` annotation (builder IR).
//
// Invariant: the resolution invariant of module.hpp holds after a call that returns nothing.
#pragma once

#include <vector>

#include "jitgen/ir/diagnostics.hpp"
#include "jitgen/ir/module.hpp"

namespace usgc::jitgen::ir {

std::vector<Diagnostic> verify(Module& module, size_t diagnostic_limit = kDefaultDiagnosticLimit);

}  // namespace usgc::jitgen::ir
