// jitgen/ir/lexer.cpp — the .usir tokenizer (invariants in lexer.hpp).
#include "jitgen/ir/lexer.hpp"

#include <cstdio>

namespace usgc::jitgen::ir {

namespace {

bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_identifier_char(char c) {
  return is_identifier_start(c) || is_digit(c);
}

Token make_token(TokenKind kind, std::string_view text, SourcePosition position) {
  Token token;
  token.kind = kind;
  token.text = text;
  token.position = position;
  return token;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(source) {}

  std::vector<Token> run() {
    while (offset_ < source_.size()) {
      char c = source_[offset_];
      if (c == ' ' || c == '\t' || c == '\r') {
        advance();
      } else if (c == '\n') {
        push(TokenKind::Newline, offset_, 1);
        advance();
      } else if (c == '/' && peek(1) == '/') {
        while (offset_ < source_.size() && source_[offset_] != '\n') advance();
      } else if (is_identifier_start(c)) {
        size_t start = offset_;
        SourcePosition position = here();
        while (offset_ < source_.size() && is_identifier_char(source_[offset_])) advance();
        tokens_.push_back(
            make_token(TokenKind::Identifier, source_.substr(start, offset_ - start), position));
      } else if (c == '%') {
        lex_prefixed_name(TokenKind::Local);
      } else if (c == '@') {
        if (is_digit(peek(1)))
          lex_position();
        else
          lex_prefixed_name(TokenKind::Global);
      } else if (is_digit(c) || (c == '-' && is_digit(peek(1)))) {
        lex_integer();
      } else if (c == '-' && peek(1) == '>') {
        push(TokenKind::Arrow, offset_, 2);
        advance();
        advance();
      } else {
        TokenKind kind = TokenKind::Invalid;
        switch (c) {
          case '{':
            kind = TokenKind::LeftBrace;
            break;
          case '}':
            kind = TokenKind::RightBrace;
            break;
          case '(':
            kind = TokenKind::LeftParen;
            break;
          case ')':
            kind = TokenKind::RightParen;
            break;
          case '[':
            kind = TokenKind::LeftBracket;
            break;
          case ']':
            kind = TokenKind::RightBracket;
            break;
          case ',':
            kind = TokenKind::Comma;
            break;
          case ':':
            kind = TokenKind::Colon;
            break;
          case '.':
            kind = TokenKind::Dot;
            break;
          case '=':
            kind = TokenKind::Equals;
            break;
          case '*':
            kind = TokenKind::Star;
            break;
          default:
            break;
        }
        push(kind, offset_, 1);
        advance();
      }
    }
    // The end invariant: a final Newline (if the text did not end with one), then End.
    if (tokens_.empty() || tokens_.back().kind != TokenKind::Newline)
      tokens_.push_back(make_token(TokenKind::Newline, std::string_view(), here()));
    tokens_.push_back(make_token(TokenKind::End, std::string_view(), here()));
    return std::move(tokens_);
  }

 private:
  char peek(size_t ahead) const {
    return offset_ + ahead < source_.size() ? source_[offset_ + ahead] : '\0';
  }
  SourcePosition here() const { return {line_, column_}; }
  void advance() {
    if (source_[offset_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++offset_;
  }
  void push(TokenKind kind, size_t start, size_t length) {
    tokens_.push_back(make_token(kind, source_.substr(start, length), here()));
  }

  void lex_prefixed_name(TokenKind kind) {
    SourcePosition position = here();
    size_t sigil = offset_;
    advance();
    size_t start = offset_;
    while (offset_ < source_.size() && is_identifier_char(source_[offset_])) advance();
    if (offset_ == start) {  // a lone `%` or `@`
      tokens_.push_back(make_token(TokenKind::Invalid, source_.substr(sigil, 1), position));
      return;
    }
    tokens_.push_back(make_token(kind, source_.substr(start, offset_ - start), position));
  }

  // Reads digits into *value; false when the number exceeds `limit`.
  bool read_unsigned(uint64_t limit, uint64_t* value) {
    bool fits = true;
    *value = 0;
    while (offset_ < source_.size() && is_digit(source_[offset_])) {
      uint64_t digit = static_cast<uint64_t>(source_[offset_] - '0');
      if (*value > (limit - digit) / 10) fits = false;
      if (fits) *value = *value * 10 + digit;
      advance();
    }
    return fits;
  }

  void lex_integer() {
    SourcePosition position = here();
    size_t start = offset_;
    bool negative = source_[offset_] == '-';
    if (negative) advance();
    uint64_t magnitude = 0;
    // INT64_MIN's magnitude is one more than INT64_MAX's.
    uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    bool fits = read_unsigned(limit, &magnitude);
    Token token = make_token(TokenKind::Integer, std::string_view(), position);
    token.overflowed = !fits;
    token.integer_value =
        negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    token.text = source_.substr(start, offset_ - start);
    tokens_.push_back(token);
  }

  void lex_position() {  // @line:col
    SourcePosition position = here();
    size_t start = offset_;
    advance();  // '@'
    uint64_t line = 0, column = 0;
    bool fits = read_unsigned(UINT32_MAX, &line);
    Token token = make_token(TokenKind::Position, std::string_view(), position);
    if (peek(0) == ':' && is_digit(peek(1))) {
      advance();
      fits = read_unsigned(UINT32_MAX, &column) && fits;
    } else {
      token.kind = TokenKind::Invalid;  // `@12` without `:col`
    }
    token.overflowed = !fits || line == 0 || column == 0;
    token.position_value = {static_cast<uint32_t>(line), static_cast<uint32_t>(column)};
    token.text = source_.substr(start, offset_ - start);
    tokens_.push_back(token);
  }

  std::string_view source_;
  size_t offset_ = 0;
  uint32_t line_ = 1;
  uint32_t column_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  return Lexer(source).run();
}

const char* token_kind_name(TokenKind kind) {
  switch (kind) {
    case TokenKind::Identifier:
      return "identifier";
    case TokenKind::Local:
      return "local";
    case TokenKind::Global:
      return "global";
    case TokenKind::Position:
      return "position";
    case TokenKind::Integer:
      return "integer";
    case TokenKind::LeftBrace:
      return "'{'";
    case TokenKind::RightBrace:
      return "'}'";
    case TokenKind::LeftParen:
      return "'('";
    case TokenKind::RightParen:
      return "')'";
    case TokenKind::LeftBracket:
      return "'['";
    case TokenKind::RightBracket:
      return "']'";
    case TokenKind::Comma:
      return "','";
    case TokenKind::Colon:
      return "':'";
    case TokenKind::Dot:
      return "'.'";
    case TokenKind::Equals:
      return "'='";
    case TokenKind::Star:
      return "'*'";
    case TokenKind::Arrow:
      return "'->'";
    case TokenKind::Newline:
      return "end of line";
    case TokenKind::End:
      return "end of file";
    case TokenKind::Invalid:
      return "invalid character";
  }
  return "token";
}

std::string describe_token(const Token& token) {
  switch (token.kind) {
    case TokenKind::Identifier:
      return "'" + std::string(token.text) + "'";
    case TokenKind::Local:
      return "'%" + std::string(token.text) + "'";
    case TokenKind::Global:
      return "'@" + std::string(token.text) + "'";
    case TokenKind::Position:
    case TokenKind::Integer:
      return "'" + std::string(token.text) + "'";
    case TokenKind::Invalid: {
      std::string shown;
      for (char c : token.text) {
        unsigned char byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f) {
          shown += c;
        } else {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
          shown += escaped;
        }
      }
      return "invalid token '" + shown + "'";
    }
    default:
      return token_kind_name(token.kind);
  }
}

}  // namespace usgc::jitgen::ir
