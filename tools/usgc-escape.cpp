// tools/usgc-escape.cpp — prints the escape analysis' decision for every allocation site of a
// .usir program (issue 6), in the manner of `go build -gcflags=-m`:
//
//   usgc-escape [-m | -m=1 | -m=2] [--json] prog.usir
//
//   prog.usir:12:5: new Point: stack (does not escape)
//   prog.usir:14:3: new Result: shared (captured by a goroutine)
//
// -m=2 adds each decision's reason chain, one fact per line, indented by four spaces; --json
// prints one JSON object instead (with -m=2: the chains too). The text output ends with a
// summary — counts and percentages per class — on stdout after one blank line, so the whole
// report is one stream that `grep ': stack'` or `tail` can read; --json carries it as "summary".
//
// Exit status: 0 after a report; 2 for a usage error, an unreadable file or malformed input (the
// parser's diagnostics, `file:line:col: message`, on stderr). Never crashes on any input: the
// parser bounds its work and the analysis only runs on verified modules.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "jitgen/escape/escape.hpp"
#include "jitgen/ir/ir.hpp"

namespace {

constexpr int kExitUsage = 2;

void print_usage(FILE* stream) {
  std::fprintf(stream,
               "usage: usgc-escape [-m | -m=1 | -m=2] [--json] prog.usir\n"
               "  prints the ownership class the escape analysis gives each allocation site\n"
               "  -m, -m=1   one line per site (the default)\n"
               "  -m=2       also the reason chain of each decision\n"
               "  --json     machine-readable output\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace usgc::jitgen;
  bool with_reasons = false;
  bool json = false;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument == "-m" || argument == "-m=1") {
      with_reasons = false;
    } else if (argument == "-m=2") {
      with_reasons = true;
    } else if (argument == "--json") {
      json = true;
    } else if (argument == "-h" || argument == "--help") {
      print_usage(stdout);
      return 0;
    } else if (argument.size() > 1 && argument[0] == '-') {
      std::fprintf(stderr, "usgc-escape: unknown option '%s'\n", argv[i]);
      print_usage(stderr);
      return kExitUsage;
    } else if (!path.empty()) {
      std::fprintf(stderr, "usgc-escape: one program at a time ('%s' and '%s' given)\n",
                   path.c_str(), argv[i]);
      print_usage(stderr);
      return kExitUsage;
    } else {
      path = argument;
    }
  }
  if (path.empty()) {
    std::fprintf(stderr, "usgc-escape: no .usir program given\n");
    print_usage(stderr);
    return kExitUsage;
  }

  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    std::fprintf(stderr, "usgc-escape: cannot read '%s': it is a directory\n", path.c_str());
    return kExitUsage;
  }
  std::ifstream stream(path, std::ios::binary);
  std::stringstream text;
  if (stream) text << stream.rdbuf();
  if (!stream || stream.bad()) {
    std::fprintf(stderr, "usgc-escape: cannot read '%s': no such file or not readable\n",
                 path.c_str());
    return kExitUsage;
  }

  ir::ParseResult parsed = ir::parse_module(text.str(), path);
  if (!parsed.ok()) {
    std::fputs(ir::format_diagnostics(parsed.diagnostics).c_str(), stderr);
    std::fprintf(stderr, "usgc-escape: %s is malformed; no analysis\n", path.c_str());
    return kExitUsage;
  }

  escape::EscapeAnalysis analysis = escape::analyze_escapes(parsed.module);
  if (json) {
    std::fputs(escape::format_json(analysis, with_reasons).c_str(), stdout);
  } else {
    std::fputs(escape::format_decisions(analysis, with_reasons).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fputs(escape::format_summary(analysis).c_str(), stdout);
  }
  return 0;
}
