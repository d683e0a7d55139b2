// jitgen/ir/ir.hpp — the umbrella header of the UltraScript IR (jitgen/ir): the data structures
// (module.hpp, types.hpp), the .usir parser and printer, the verifier and the C++ builder. The
// format is described in docs/usir.md. Other layers (the escape analysis, usgc-escape, the
// interpreter) include only this header.
//
// jitgen/ir is standard C++ only: it depends on nothing else of usgc (no allocator, no runtime)
// and never runs inside the allocator, so it uses std::string and std::vector freely.
#pragma once

#include "jitgen/ir/builder.hpp"
#include "jitgen/ir/diagnostics.hpp"
#include "jitgen/ir/lexer.hpp"
#include "jitgen/ir/module.hpp"
#include "jitgen/ir/parser.hpp"
#include "jitgen/ir/printer.hpp"
#include "jitgen/ir/types.hpp"
#include "jitgen/ir/verifier.hpp"
