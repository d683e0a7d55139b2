// jitgen/ir/lexer.hpp — the tokens of the .usir text format (docs/usir.md).
//
// The lexer turns the whole text into a vector of tokens in one pass; it never fails: a byte it
// cannot use becomes an Invalid token that the parser reports ("found invalid character ..."),
// so every error, lexical or syntactic, goes through the parser's one recovery path.
//
// Invariants:
//   * the token vector always ends with exactly one End token, and every line ends with a
//     Newline token before the next line's tokens (comments `//` run to the end of the line and
//     produce nothing), so the parser can always skip to the next line or the end.
//   * token text is a view into the source, which must outlive the tokens.
//   * numbers that do not fit (int64 literals, uint32 positions) are marked `overflowed`, never
//     wrapped: the parser reports them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jitgen/ir/diagnostics.hpp"

namespace usgc::jitgen::ir {

enum class TokenKind : uint8_t {
  Identifier,  // type, func, new, Point, loop, ...
  Local,       // %name (text excludes the `%`)
  Global,      // @name (text excludes the `@`)
  Position,    // @12:5 (position_value)
  Integer,     // 42, -7 (integer_value)
  LeftBrace,
  RightBrace,
  LeftParen,
  RightParen,
  LeftBracket,
  RightBracket,
  Comma,
  Colon,
  Dot,
  Equals,
  Star,
  Arrow,
  Newline,
  End,
  Invalid,  // a byte that starts no token
};

struct Token {
  TokenKind kind = TokenKind::End;
  std::string_view text;
  SourcePosition position;
  int64_t integer_value = 0;
  SourcePosition position_value;  // Position tokens
  bool overflowed = false;        // Integer / Position that does not fit
};

std::vector<Token> tokenize(std::string_view source);

// How a token is named in "expected X, found Y" messages: `identifier 'foo'`, `'%p'`,
// `end of line`, `invalid character '\x01'`.
std::string describe_token(const Token& token);
const char* token_kind_name(TokenKind kind);

}  // namespace usgc::jitgen::ir
