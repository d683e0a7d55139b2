// jitgen/ir/parser.cpp — recursive descent over the tokens of lexer.hpp. The grammar (also in
// docs/usir.md):
//
//   module      := { declaration | NEWLINE }
//   declaration := 'type' NAME '{' [field {(',' | NEWLINE) field}] '}'
//                | 'global' NAME ':' type
//                | 'func' NAME '(' [param {',' param}] ')' ['captures' '(' param {',' param} ')']
//                  ['->' type] '{' NEWLINE { 'var' param NEWLINE } { block } '}'
//   field       := NAME ':' type          param := LOCAL ':' type
//   type        := 'int' | 'bool' | '*' NAME | '[' [INTEGER] ']' type | 'chan' type | NAME
//   block       := LABEL ':' [NEWLINE] { instruction NEWLINE }
//   instruction := [LOCAL '='] operation [POSITION]
//
// Invariants: the recovery rule and bounded work of parser.hpp. Every parse_* function either
// succeeds, or reports exactly one diagnostic and returns false, leaving recovery to its caller.
#include "jitgen/ir/parser.hpp"

#include "jitgen/ir/lexer.hpp"
#include "jitgen/ir/verifier.hpp"

namespace usgc::jitgen::ir {

namespace {

struct BinaryMnemonic {
  const char* name;
  BinaryOperator binary_operator;
};
constexpr BinaryMnemonic kBinaryMnemonics[] = {
    {"add", BinaryOperator::Add}, {"sub", BinaryOperator::Sub}, {"mul", BinaryOperator::Mul},
    {"div", BinaryOperator::Div}, {"rem", BinaryOperator::Rem}, {"lt", BinaryOperator::Lt},
    {"le", BinaryOperator::Le},   {"gt", BinaryOperator::Gt},   {"ge", BinaryOperator::Ge},
    {"eq", BinaryOperator::Eq},   {"ne", BinaryOperator::Ne},   {"and", BinaryOperator::And},
    {"or", BinaryOperator::Or},
};

class Parser {
 public:
  Parser(std::string_view source, std::string file_name, size_t diagnostic_limit)
      : tokens_(tokenize(source)),
        diagnostics_(file_name, diagnostic_limit),
        diagnostic_limit_(diagnostic_limit) {
    module_.file_name = std::move(file_name);
  }

  ParseResult run() {
    parse_declarations();
    ParseResult result;
    if (diagnostics_.error_count() == 0) {
      result.diagnostics = verify(module_, diagnostic_limit_);
    } else {
      result.diagnostics = diagnostics_.take();
    }
    result.module = std::move(module_);
    return result;
  }

 private:
  // ---- tokens ----------------------------------------------------------------------------
  const Token& current() const { return tokens_[index_]; }
  const Token& peek(size_t ahead) const {
    size_t at = index_ + ahead;
    return at < tokens_.size() ? tokens_[at] : tokens_.back();
  }
  bool at(TokenKind kind) const { return current().kind == kind; }
  bool at_keyword(std::string_view keyword) const {
    return at(TokenKind::Identifier) && current().text == keyword;
  }
  bool at_line_end() const { return at(TokenKind::Newline) || at(TokenKind::End); }
  void advance() {
    if (current().kind != TokenKind::End) ++index_;
  }

  bool error_here(const std::string& expected) {
    diagnostics_.report(current().position,
                        "expected " + expected + ", found " + describe_token(current()));
    return false;
  }
  bool error_at(SourcePosition position, std::string message) {
    diagnostics_.report(position, std::move(message));
    return false;
  }
  bool expect(TokenKind kind, const std::string& expected) {
    if (!at(kind)) return error_here(expected);
    advance();
    return true;
  }
  bool expect_line_end() {
    if (at(TokenKind::End)) return true;
    if (!at(TokenKind::Newline)) return error_here("end of line");
    advance();
    return true;
  }
  void skip_newlines() {
    while (at(TokenKind::Newline)) advance();
  }
  // Consumes the rest of the current line including its Newline.
  void skip_line() {
    while (!at_line_end()) advance();
    advance();
  }
  bool at_declaration_keyword() const {
    return at_keyword("type") || at_keyword("global") || at_keyword("func");
  }
  // The recovery rule, declaration level.
  void recover_to_declaration() {
    skip_line();
    while (!at(TokenKind::End) && !at_declaration_keyword()) skip_line();
  }

  // ---- declarations ----------------------------------------------------------------------
  void parse_declarations() {
    while (!at(TokenKind::End) && !diagnostics_.full()) {
      if (at(TokenKind::Newline)) {
        advance();
        continue;
      }
      bool ok;
      if (at_keyword("type")) {
        ok = parse_type_definition();
      } else if (at_keyword("global")) {
        ok = parse_global();
      } else if (at_keyword("func")) {
        ok = parse_function();
      } else {
        ok = error_here("'type', 'global' or 'func'");
      }
      if (!ok) recover_to_declaration();
    }
  }

  bool parse_name(std::string* name, SourcePosition* position, const std::string& what) {
    if (!at(TokenKind::Identifier)) return error_here(what);
    *name = std::string(current().text);
    *position = current().position;
    advance();
    return true;
  }

  bool parse_type_definition() {
    StructDefinition definition;
    definition.position = current().position;
    advance();  // 'type'
    SourcePosition name_position;
    if (!parse_name(&definition.name, &name_position, "a type name")) return false;
    if (!expect(TokenKind::LeftBrace, "'{'")) return false;
    skip_newlines();
    while (!at(TokenKind::RightBrace)) {
      Field field;
      if (!parse_name(&field.name, &field.position, "a field name or '}'")) return false;
      if (!expect(TokenKind::Colon, "':'")) return false;
      field.type = parse_type(0);
      if (!field.type.valid()) return false;
      definition.fields.push_back(std::move(field));
      if (at(TokenKind::Comma)) {
        advance();
        skip_newlines();
      } else if (at(TokenKind::Newline)) {
        skip_newlines();
      } else if (!at(TokenKind::RightBrace)) {
        return error_here("',' or '}'");
      }
    }
    advance();  // '}'
    module_.structs.push_back(std::move(definition));
    return expect_line_end();
  }

  bool parse_global() {
    Global global;
    global.position = current().position;
    advance();  // 'global'
    SourcePosition name_position;
    if (!parse_name(&global.name, &name_position, "a global name")) return false;
    if (!expect(TokenKind::Colon, "':'")) return false;
    global.type = parse_type(0);
    if (!global.type.valid()) return false;
    module_.globals.push_back(std::move(global));
    return expect_line_end();
  }

  // `%name: type`
  bool parse_local_declaration(LocalKind kind, Function* function) {
    Local local;
    local.kind = kind;
    local.position = current().position;
    if (!at(TokenKind::Local)) return error_here("a local name like '%x'");
    local.name = std::string(current().text);
    advance();
    if (!expect(TokenKind::Colon, "':'")) return false;
    local.type = parse_type(0);
    if (!local.type.valid()) return false;
    function->locals.push_back(std::move(local));
    return true;
  }

  bool parse_declaration_list(LocalKind kind, Function* function, uint32_t* count) {
    if (!expect(TokenKind::LeftParen, "'('")) return false;
    if (at(TokenKind::RightParen)) {
      advance();
      return true;
    }
    while (true) {
      if (!parse_local_declaration(kind, function)) return false;
      ++*count;
      if (at(TokenKind::Comma)) {
        advance();
        continue;
      }
      return expect(TokenKind::RightParen, "',' or ')'");
    }
  }

  bool parse_function() {
    Function function;
    function.position = current().position;
    advance();  // 'func'
    SourcePosition name_position;
    if (!parse_name(&function.name, &name_position, "a function name")) return false;
    if (!parse_declaration_list(LocalKind::Parameter, &function, &function.parameter_count))
      return false;
    if (at_keyword("captures")) {
      advance();
      if (!parse_declaration_list(LocalKind::Capture, &function, &function.capture_count))
        return false;
    }
    if (at(TokenKind::Arrow)) {
      advance();
      function.result_type = parse_type(0);
      if (!function.result_type.valid()) return false;
    }
    if (!expect(TokenKind::LeftBrace, "'{'")) return false;
    if (!expect_line_end()) return false;
    module_.functions.push_back(std::move(function));
    parse_function_body(&module_.functions.back());
    return true;  // the body recovers by itself
  }

  void parse_function_body(Function* function) {
    while (!diagnostics_.full()) {
      if (at(TokenKind::Newline)) {
        advance();
        continue;
      }
      if (at(TokenKind::End)) {
        error_here("'}' closing function '" + function->name + "'");
        return;
      }
      if (at(TokenKind::RightBrace)) {
        advance();
        if (!expect_line_end()) skip_line();
        return;
      }
      if (at_declaration_keyword()) {  // a missing '}': leave the line to the declaration loop
        error_here("'}' closing function '" + function->name + "'");
        return;
      }
      if (at_keyword("var")) {
        bool ok;
        if (!function->blocks.empty()) {
          ok = error_at(current().position,
                        "expected an instruction, found 'var' (declare locals before the first "
                        "block label)");
        } else {
          advance();
          ok = parse_local_declaration(LocalKind::Variable, function) && expect_line_end();
        }
        if (!ok) skip_line();
        continue;
      }
      if (at(TokenKind::Identifier) && peek(1).kind == TokenKind::Colon) {
        Block block;
        block.label = std::string(current().text);
        block.position = current().position;
        function->blocks.push_back(std::move(block));
        advance();
        advance();
        if (at(TokenKind::Newline)) advance();
        continue;
      }
      if (function->blocks.empty()) {
        error_here("a block label like 'entry:' before the first instruction");
        skip_line();
        continue;
      }
      Instruction instruction;
      if (parse_instruction(&instruction)) {
        function->blocks.back().instructions.push_back(std::move(instruction));
      } else {
        skip_line();  // the recovery rule, instruction level
      }
    }
  }

  // ---- types -----------------------------------------------------------------------------
  TypeId parse_type(int depth) {
    if (depth >= kMaximumTypeNesting) {
      error_here("a type nested at most " + std::to_string(kMaximumTypeNesting) + " deep");
      return kInvalidType;
    }
    TypeTable& types = module_.types;
    if (at(TokenKind::Star)) {
      advance();
      if (!at(TokenKind::Identifier) || current().text == "int" || current().text == "bool" ||
          current().text == "chan") {
        error_here("a struct name after '*'");
        return kInvalidType;
      }
      TypeId pointer = types.pointer_to_struct(current().text);
      advance();
      return pointer;
    }
    if (at(TokenKind::LeftBracket)) {
      advance();
      uint64_t length = kDynamicLength;
      if (at(TokenKind::Integer)) {
        if (current().overflowed || current().integer_value < 0) {
          error_here("a non-negative array length");
          return kInvalidType;
        }
        length = static_cast<uint64_t>(current().integer_value);
        advance();
      }
      if (!expect(TokenKind::RightBracket,
                  length == kDynamicLength ? "array length or ']'" : "']'"))
        return kInvalidType;
      TypeId element = parse_type(depth + 1);
      return element.valid() ? types.array_of(element, length) : kInvalidType;
    }
    if (at(TokenKind::Identifier)) {
      std::string_view name = current().text;
      if (name == "int") {
        advance();
        return types.int_type();
      }
      if (name == "bool") {
        advance();
        return types.bool_type();
      }
      if (name == "chan") {
        advance();
        TypeId element = parse_type(depth + 1);
        return element.valid() ? types.channel_of(element) : kInvalidType;
      }
      TypeId struct_type = types.struct_type(name);
      advance();
      return struct_type;
    }
    error_here("a type");
    return kInvalidType;
  }

  // ---- instructions ----------------------------------------------------------------------
  bool parse_operand(Operand* operand) {
    const Token& token = current();
    if (token.kind == TokenKind::Local) {
      *operand = Operand::local(std::string(token.text), token.position);
    } else if (token.kind == TokenKind::Integer) {
      if (token.overflowed) return error_here("an integer that fits in 64 bits");
      *operand = Operand::integer(token.integer_value, token.position);
    } else if (token.kind == TokenKind::Identifier && token.text == "true") {
      *operand = Operand::boolean(true, token.position);
    } else if (token.kind == TokenKind::Identifier && token.text == "false") {
      *operand = Operand::boolean(false, token.position);
    } else if (token.kind == TokenKind::Identifier && token.text == "null") {
      *operand = Operand::null(token.position);
    } else {
      return error_here("an operand (a local, an integer, true, false or null)");
    }
    advance();
    return true;
  }

  bool parse_operand_into(std::vector<Operand>* operands) {
    Operand operand;
    if (!parse_operand(&operand)) return false;
    operands->push_back(std::move(operand));
    return true;
  }

  bool parse_operand_list(std::vector<Operand>* operands) {
    if (!expect(TokenKind::LeftParen, "'('")) return false;
    if (at(TokenKind::RightParen)) {
      advance();
      return true;
    }
    while (true) {
      if (!parse_operand_into(operands)) return false;
      if (at(TokenKind::Comma)) {
        advance();
        continue;
      }
      return expect(TokenKind::RightParen, "',' or ')'");
    }
  }

  bool parse_local_operand(std::vector<Operand>* operands, const std::string& what) {
    if (!at(TokenKind::Local)) return error_here(what);
    return parse_operand_into(operands);
  }

  // `callee(args) [captures(locals)]`, for call and go.
  bool parse_call_tail(Instruction* instruction) {
    if (!at(TokenKind::Identifier)) return error_here("a function name or 'unknown'");
    instruction->callee_name = std::string(current().text);
    instruction->callee_unknown = current().text == "unknown";
    advance();
    if (!parse_operand_list(&instruction->operands)) return false;
    if (at_keyword("captures")) {
      advance();
      if (!parse_operand_list(&instruction->captures)) return false;
    }
    return true;
  }

  // The memory operand of load / store: `%p.field`, `%a[index]` or `@global`.
  bool parse_memory_operand(Instruction* instruction, bool is_store) {
    if (at(TokenKind::Global)) {
      instruction->opcode = is_store ? Opcode::StoreGlobal : Opcode::LoadGlobal;
      instruction->global_name = std::string(current().text);
      advance();
      return true;
    }
    if (!parse_local_operand(&instruction->operands,
                             "'%local.field', '%local[index]' or '@global'"))
      return false;
    if (at(TokenKind::Dot)) {
      advance();
      if (!at(TokenKind::Identifier)) return error_here("a field name after '.'");
      instruction->opcode = is_store ? Opcode::StoreField : Opcode::LoadField;
      instruction->field_name = std::string(current().text);
      advance();
      return true;
    }
    if (at(TokenKind::LeftBracket)) {
      advance();
      if (!parse_operand_into(&instruction->operands)) return false;
      if (!expect(TokenKind::RightBracket, "']'")) return false;
      instruction->opcode = is_store ? Opcode::StoreIndex : Opcode::LoadIndex;
      return true;
    }
    return error_here("'.field' or '[index]'");
  }

  bool parse_value_operation(Instruction* instruction) {
    if (!at(TokenKind::Identifier) || current().text == "true" || current().text == "false" ||
        current().text == "null") {
      instruction->opcode = Opcode::Copy;
      return parse_operand_into(&instruction->operands);
    }
    std::string_view mnemonic = current().text;
    for (const BinaryMnemonic& binary : kBinaryMnemonics) {
      if (mnemonic == binary.name) {
        advance();
        instruction->opcode = Opcode::Binary;
        instruction->binary_operator = binary.binary_operator;
        return parse_operand_into(&instruction->operands) && expect(TokenKind::Comma, "','") &&
               parse_operand_into(&instruction->operands);
      }
    }
    if (mnemonic == "new") {
      advance();
      instruction->opcode = Opcode::New;
      instruction->allocated_type = parse_type(0);
      return instruction->allocated_type.valid();
    }
    if (mnemonic == "newarray" || mnemonic == "makechan") {
      advance();
      instruction->opcode = mnemonic == "newarray" ? Opcode::NewArray : Opcode::MakeChan;
      instruction->allocated_type = parse_type(0);
      return instruction->allocated_type.valid() && expect(TokenKind::Comma, "','") &&
             parse_operand_into(&instruction->operands);
    }
    if (mnemonic == "load") {
      advance();
      return parse_memory_operand(instruction, false);
    }
    if (mnemonic == "len" || mnemonic == "recv") {
      advance();
      instruction->opcode = mnemonic == "len" ? Opcode::Length : Opcode::Receive;
      return parse_operand_into(&instruction->operands);
    }
    if (mnemonic == "call") {
      advance();
      instruction->opcode = Opcode::Call;
      return parse_call_tail(instruction);
    }
    return error_here(
        "an operation (new, newarray, makechan, load, len, recv, call, add, ...) "
        "or an operand");
  }

  bool parse_label_into(Instruction* instruction) {
    if (!at(TokenKind::Identifier)) return error_here("a block label");
    instruction->target_labels.push_back(std::string(current().text));
    advance();
    return true;
  }

  bool parse_effect_operation(Instruction* instruction) {
    if (!at(TokenKind::Identifier)) return error_here("an instruction");
    std::string_view mnemonic = current().text;
    if (mnemonic == "store") {
      advance();
      return parse_memory_operand(instruction, true) && expect(TokenKind::Comma, "','") &&
             parse_operand_into(&instruction->operands);
    }
    if (mnemonic == "call" || mnemonic == "go") {
      advance();
      instruction->opcode = mnemonic == "call" ? Opcode::Call : Opcode::Go;
      return parse_call_tail(instruction);
    }
    if (mnemonic == "send") {
      advance();
      instruction->opcode = Opcode::Send;
      return parse_operand_into(&instruction->operands) && expect(TokenKind::Comma, "','") &&
             parse_operand_into(&instruction->operands);
    }
    if (mnemonic == "close") {
      advance();
      instruction->opcode = Opcode::Close;
      return parse_operand_into(&instruction->operands);
    }
    if (mnemonic == "br") {
      advance();
      instruction->opcode = Opcode::Branch;
      return parse_operand_into(&instruction->operands) && expect(TokenKind::Comma, "','") &&
             parse_label_into(instruction) && expect(TokenKind::Comma, "','") &&
             parse_label_into(instruction);
    }
    if (mnemonic == "jmp") {
      advance();
      instruction->opcode = Opcode::Jump;
      return parse_label_into(instruction);
    }
    if (mnemonic == "ret") {
      advance();
      instruction->opcode = Opcode::Return;
      if (at_line_end() || at(TokenKind::Position)) return true;
      return parse_operand_into(&instruction->operands);
    }
    return error_here("an instruction (store, call, go, send, close, br, jmp, ret or '%x = ...')");
  }

  bool parse_instruction(Instruction* instruction) {
    instruction->text_position = current().position;
    bool ok;
    if (at(TokenKind::Local) && peek(1).kind == TokenKind::Equals) {
      instruction->result_name = std::string(current().text);
      instruction->result_position = current().position;
      advance();
      advance();
      ok = parse_value_operation(instruction);
    } else {
      ok = parse_effect_operation(instruction);
    }
    if (!ok) return false;
    if (at(TokenKind::Position)) {
      if (current().overflowed) return error_here("a position '@line:col' with 1-based numbers");
      instruction->source_position = current().position_value;
      advance();
    }
    return expect_line_end();
  }

  std::vector<Token> tokens_;
  size_t index_ = 0;
  DiagnosticList diagnostics_;
  size_t diagnostic_limit_;
  Module module_;
};

}  // namespace

ParseResult parse_module(std::string_view source, std::string file_name, size_t diagnostic_limit) {
  return Parser(source, std::move(file_name), diagnostic_limit).run();
}

}  // namespace usgc::jitgen::ir
