// tests/jitgen/random_usir_statements.cpp — the generator's statements: allocations, field and
// element access, guards, branches, counted loops, array fills, list walks and builds, globals,
// unknown code and ints. The design and the invariants: random_usir_program.cpp.
#include "tests/jitgen/random_usir_generator.hpp"

#include <algorithm>

namespace usgc::jitgen::random_usir {
namespace generator {

// ---------------------------------------------------------------------------------------------
// Statements.

void FunctionGenerator::statements(uint32_t count) {
  for (uint32_t attempts = 0, made = 0; made < count && attempts < 8 * count; ++attempts)
    if (statement()) ++made;
}

bool FunctionGenerator::statement() {
  const bool nest = scope().depth < program_.options.max_nesting;
  const uint32_t roll = random_.below(100);
  if (roll < 9) return allocate_object();
  if (roll < 19) return store_field();
  if (roll < 27) return load_field();
  if (roll < 32) return nest && guard();
  if (roll < 35) return nest && branch_on_comparison();
  if (roll < 39) return nest && counted_loop();
  if (roll < 44) return allocate_array();
  if (roll < 49) return store_element();
  if (roll < 53) return load_element();
  if (roll < 56) return nest && fill_array();
  if (roll < 59) return nest && walk_list();
  if (roll < 62) return nest && build_list();
  if (roll < 72) return call_helper();
  if (roll < 79) return nest && spawn_worker();
  if (roll < 80) return spawn_and_forget();
  if (roll < 84) return nest && local_channel();
  if (roll < 88) return store_global();
  if (roll < 92) return load_global();
  if (roll < 96) return unknown_code();
  return arithmetic();
}

bool FunctionGenerator::allocate_object() {
  fresh_object(random_.below(static_cast<uint32_t>(program_.structs.size())));
  return true;
}

bool FunctionGenerator::store_field() {
  std::optional<uint32_t> base = pick_nonnull_object();
  if (!base) return false;
  const StructShape& s = program_.structs[locals_[*base].type.structure];
  const FieldShape& field = s.fields[random_.below(static_cast<uint32_t>(s.fields.size()))];
  const std::string value = value_of(field.type);
  emit("store " + name(*base) + "." + field.name + ", " + value);
  return true;
}

bool FunctionGenerator::load_field() {
  std::optional<uint32_t> base = pick_nonnull_object();
  if (!base) return false;
  const StructShape& s = program_.structs[locals_[*base].type.structure];
  const FieldShape& field = s.fields[random_.below(static_cast<uint32_t>(s.fields.size()))];
  const uint32_t result = destination(field.type, false);
  emit(name(result) + " = load " + name(*base) + "." + field.name);
  assign(result, false);
  if (is_reference(field.type) && scope().depth < program_.options.max_nesting &&
      random_.percent(55))
    guard(result);
  return true;
}

// `if %m != null { ... }` (for a dynamic array also `len %m > 0`): inside, %m is non-null, frozen.
bool FunctionGenerator::guard(std::optional<uint32_t> chosen) {
  if (!chosen) {
    std::vector<uint32_t> candidates;
    for (uint32_t l = 0; l < locals_.size(); ++l) {
      const TypeKind kind = locals_[l].type.kind;
      if (locals_[l].use == LocalUse::kPlain &&
          (kind == TypeKind::kObject || kind == TypeKind::kDynamicArray) && !known_nonnull(l))
        candidates.push_back(l);
    }
    if (candidates.empty()) return false;
    chosen = candidates[random_.below(static_cast<uint32_t>(candidates.size()))];
  }
  const uint32_t m = *chosen;
  emit(name(condition_) + " = ne " + name(m) + ", null");
  auto inside = [this, m] {
    scope().frozen.insert(m);
    assign(m, true, 1);
    statements(random_.between(1, 3));
  };
  std::function<void()> then_arm = inside;
  if (locals_[m].type.kind == TypeKind::kDynamicArray) {
    then_arm = [this, m, inside] {
      scope().frozen.insert(m);
      const uint32_t length = new_local("n", int_type(), LocalUse::kFrozenInt, false);
      emit(name(length) + " = len " + name(m));
      emit(name(condition_) + " = gt " + name(length) + ", 0");
      branch(inside, {});
    };
  }
  std::function<void()> else_arm;
  if (random_.percent(25)) else_arm = [this] { statements(random_.between(1, 2)); };
  branch(then_arm, else_arm);
  return true;
}

bool FunctionGenerator::branch_on_comparison() {
  const uint32_t s = random_.below(static_cast<uint32_t>(program_.structs.size()));
  std::optional<uint32_t> left = pick_any(object_type(s));
  if (left && random_.percent(35)) {
    const std::string right = object_value(s, true, true);
    emit(name(condition_) + (random_.percent(50) ? " = eq " : " = ne ") + name(*left) + ", " +
         right);
  } else {
    static const char* const kComparisons[] = {"lt", "le", "gt", "ge", "eq", "ne"};
    const std::string a = int_value(), b = int_value();
    emit(name(condition_) + " = " + kComparisons[random_.below(6)] + " " + a + ", " + b);
  }
  std::function<void()> else_arm;
  if (random_.percent(50)) else_arm = [this] { statements(random_.between(1, 2)); };
  branch([this] { statements(random_.between(1, 3)); }, else_arm);
  return true;
}

bool FunctionGenerator::counted_loop() {
  const uint32_t trips = random_.between(1, program_.options.max_loop_trips);
  if (!affordable(trips * 16)) return false;
  loop(std::to_string(trips), trips, [this](uint32_t) { statements(random_.between(1, 3)); });
  return true;
}

bool FunctionGenerator::allocate_array() {
  const int32_t element =
      random_.percent(75)
          ? static_cast<int32_t>(random_.below(static_cast<uint32_t>(program_.structs.size())))
          : -1;
  ValueType type = dynamic_array(element);
  if (random_.percent(45))
    type = {TypeKind::kFixedArray, element, random_.between(1, kMaximumArrayLength)};
  uint32_t length = 0;
  fresh_array(type, &length);
  return true;
}

// A non-null array and its known length (fixed: the type's; dynamic: the scope's minimum).
static std::optional<std::pair<uint32_t, uint32_t>> known_array(
    const std::vector<LocalVariable>& locals, const Scope& scope, SplitMix64& random) {
  std::vector<std::pair<uint32_t, uint32_t>> candidates;
  for (uint32_t local : scope.nonnull) {
    const ValueType& type = locals[local].type;
    if (locals[local].use != LocalUse::kPlain) continue;
    if (type.kind == TypeKind::kFixedArray) candidates.push_back({local, type.length});
    if (type.kind == TypeKind::kDynamicArray && scope.minimum_length.at(local) > 0)
      candidates.push_back({local, scope.minimum_length.at(local)});
  }
  if (candidates.empty()) return std::nullopt;
  return candidates[random.below(static_cast<uint32_t>(candidates.size()))];
}

bool FunctionGenerator::store_element() {
  auto array = known_array(locals_, scope(), random_);
  if (!array) return false;
  const ValueType element = locals_[array->first].type.structure < 0
                                ? int_type()
                                : object_type(locals_[array->first].type.structure);
  const std::string index = std::to_string(random_.below(array->second));
  const std::string value = value_of(element);
  emit("store " + name(array->first) + "[" + index + "], " + value);
  return true;
}

bool FunctionGenerator::load_element() {
  auto array = known_array(locals_, scope(), random_);
  if (!array) return false;
  const ValueType element = locals_[array->first].type.structure < 0
                                ? int_type()
                                : object_type(locals_[array->first].type.structure);
  const uint32_t result = destination(element, false);
  emit(name(result) + " = load " + name(array->first) + "[" +
       std::to_string(random_.below(array->second)) + "]");
  assign(result, false);
  if (is_reference(element) && scope().depth < program_.options.max_nesting && random_.percent(50))
    guard(result);
  return true;
}

// `for %k < len %a { store %a[%k], v }`: indices below `len` are always in range.
bool FunctionGenerator::fill_array() {
  auto array = known_array(locals_, scope(), random_);
  if (!array) return false;
  const uint32_t a = array->first;
  const ValueType& type = locals_[a].type;
  const uint32_t trips = type.kind == TypeKind::kFixedArray ? type.length : kMaximumArrayLength;
  if (!affordable(trips * 12)) return false;
  const uint32_t length = new_local("n", int_type(), LocalUse::kFrozenInt, false);
  emit(name(length) + " = len " + name(a));
  loop(name(length), trips, [this, a](uint32_t k) {
    const int32_t element = locals_[a].type.structure;
    const std::string value =
        element < 0 ? int_value() : object_value(static_cast<uint32_t>(element), false, false);
    emit("store " + name(a) + "[" + name(k) + "], " + value);
    if (element >= 0 && random_.percent(40)) {
      const uint32_t back = destination(object_type(static_cast<uint32_t>(element)), false);
      emit(name(back) + " = load " + name(a) + "[" + name(k) + "]");
      assign(back, false);
    }
    if (random_.percent(30)) statements(1);
  });
  return true;
}

// A struct with a field pointing at its own type (S0 always has `next`).
static std::pair<uint32_t, const FieldShape*> self_link(const std::vector<StructShape>& structs,
                                                        SplitMix64& random) {
  std::vector<std::pair<uint32_t, const FieldShape*>> links;
  for (uint32_t s = 0; s < structs.size(); ++s)
    for (const FieldShape& field : structs[s].fields)
      if (field.type == object_type(s)) links.push_back({s, &field});
  return links[random.below(static_cast<uint32_t>(links.size()))];
}

// `for %k < K && %cur != null { ...; %cur = load %cur.next }`.
bool FunctionGenerator::walk_list() {
  const auto [s, field] = self_link(program_.structs, random_);
  const uint32_t trips = random_.between(1, kMaximumListWalk);
  if (!affordable(trips * 12)) return false;
  const std::string start = object_value(s, true, true);
  const uint32_t cur = new_local("cur", object_type(s), LocalUse::kPlain, false);
  const uint32_t counter = new_local("k", int_type(), LocalUse::kFrozenInt, false);
  const std::string head = label("walk"), check = label("check"), body = label("step"),
                    exit = label("walked");
  emit(name(cur) + " = " + start);
  emit(name(counter) + " = 0");
  terminate("jmp " + head);
  begin_block(head);
  emit(name(condition_) + " = lt " + name(counter) + ", " + std::to_string(trips));
  terminate("br " + name(condition_) + ", " + check + ", " + exit);
  begin_block(check);
  emit(name(condition_) + " = ne " + name(cur) + ", null");
  terminate("br " + name(condition_) + ", " + body + ", " + exit);
  begin_block(body);
  push_scope(trips);
  scope().frozen.insert(cur);
  assign(cur, true);
  statements(random_.between(0, 2));
  emit_joins();
  pop_scope();
  emit(name(cur) + " = load " + name(cur) + "." + field->name);
  emit(name(counter) + " = add " + name(counter) + ", 1");
  terminate("jmp " + head);
  begin_block(exit);
  return true;
}

// `%list = ...; for %k < K { %node = new S; store %node.next, %list; %list = %node }`.
bool FunctionGenerator::build_list() {
  const auto [s, field] = self_link(program_.structs, random_);
  const uint32_t trips = random_.between(1, 4);
  if (!affordable(trips * 12)) return false;
  const std::string start = object_value(s, true, true);
  const uint32_t list = new_local("list", object_type(s), LocalUse::kPlain, false);
  emit(name(list) + " = " + start);
  loop(std::to_string(trips), trips, [this, s = s, field = field, list](uint32_t k) {
    const uint32_t node = destination(object_type(s), true);
    emit(name(node) + " = new " + program_.structs[s].name);
    assign(node, true);
    emit("store " + name(node) + "." + field->name + ", " + name(list));
    emit("store " + name(node) + ".v, " + name(k));
    if (node != list) {
      emit(name(list) + " = " + name(node));
      assign(list, true);
    }
    if (random_.percent(30)) statements(1);
  });
  return true;
}

// ---------------------------------------------------------------------------------------------
// Globals, unknown code, ints.

bool FunctionGenerator::store_global() {
  const GlobalShape& global =
      program_.globals[random_.below(static_cast<uint32_t>(program_.globals.size()))];
  const std::string value = value_of(global.type);
  emit("store @" + global.name + ", " + value);
  return true;
}

bool FunctionGenerator::load_global() {
  const GlobalShape& global =
      program_.globals[random_.below(static_cast<uint32_t>(program_.globals.size()))];
  const uint32_t result = destination(global.type, false);
  emit(name(result) + " = load @" + global.name);
  if (global.type.kind == TypeKind::kInt) return true;
  assign(result, false);
  if (scope().depth < program_.options.max_nesting && random_.percent(60))
    guard(result);  // objects a global reaches
  return true;
}

bool FunctionGenerator::unknown_code() {
  std::string arguments;
  for (uint32_t n = random_.below(3); n > 0; --n) {
    const uint32_t roll = random_.below(100);
    const uint32_t s = random_.below(static_cast<uint32_t>(program_.structs.size()));
    std::string value = roll < 60   ? object_value(s, true, true)
                        : roll < 80 ? array_value(dynamic_array(static_cast<int32_t>(s)))
                                    : int_value();
    arguments += (arguments.empty() ? "" : ", ") + value;
  }
  const uint32_t roll = random_.below(100);
  if (roll < 45) {
    emit("call unknown(" + arguments + ")");
  } else if (roll < 80) {
    const uint32_t s = random_.below(static_cast<uint32_t>(program_.structs.size()));
    const ValueType type =
        random_.percent(75) ? object_type(s) : dynamic_array(static_cast<int32_t>(s));
    const uint32_t result = destination(type, false);
    emit(name(result) + " = call unknown(" + arguments + ")");
    assign(result, false);
    if (scope().depth < program_.options.max_nesting && random_.percent(50)) guard(result);
  } else {
    emit("go unknown(" + arguments + ")");
  }
  return true;
}

bool FunctionGenerator::arithmetic() {
  static const char* const kOperators[] = {"add", "sub", "mul", "div", "rem"};
  const char* op = kOperators[random_.below(5)];
  const std::string a = int_value();
  const std::string b =
      op[0] == 'd' || op[0] == 'r' ? std::to_string(random_.between(1, 7)) : int_value();
  const uint32_t result = int_destination();
  emit(name(result) + " = " + op + " " + a + ", " + b);
  return true;
}

}  // namespace generator

}  // namespace usgc::jitgen::random_usir
