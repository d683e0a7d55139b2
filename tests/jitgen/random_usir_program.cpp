// tests/jitgen/random_usir_program.cpp — the random .usir generator (random_usir_program.hpp):
// the program level, values and control flow; its statements and calls are in
// random_usir_statements.cpp and random_usir_calls.cpp, its classes in random_usir_generator.hpp.
//
// A program is a few struct types (`v: int`, pointer fields, sometimes a `[]*S` field; S0 always
// has `next: *S0` for lists), a few globals, `main` and helpers of four kinds: plain helpers,
// self-recursive ones, mutually recursive pairs and workers (goroutine bodies with a done channel
// and maybe a message channel). Signatures are chosen first; bodies are then written from the
// last function to the first, so every direct callee's cost is known when a call is written (a
// mutual pair is adjacent and accounted together). A body is a random sequence of statements —
// allocations, field and element loads and stores, guards, counted loops, list walks and builds,
// array fills, calls, spawns, channel episodes, globals, unknown code — each written as complete
// .usir instructions into labelled blocks.
//
// How the header's invariants are kept, by name:
//   * no-panic: a Scope records the locals known non-null at the current point (`nonnull`) and
//     the known minimum length of non-null dynamic arrays. Locals of "anchor kind" only ever get
//     non-null values; other locals may get anything and are non-null only after an assignment
//     of a non-null value in the same scope or inside a guard. Entering a scope freezes every
//     non-anchor local the parent knows non-null (no assignment inside may make it null, even on
//     a later loop iteration); a child's findings are dropped when it ends. Dynamic-array anchors
//     are never assigned twice by different statements, so their length stays known.
//   * termination: loop counters, lengths and depths are frozen ints nobody else assigns; the
//     cost model charges every instruction times the trip counts around it, a call or spawn the
//     callee's total, a recursive function (activations) x (its own body).
//   * matched traffic: a spawn registers a join (receives on its done channel) in the current
//     scope, written before the scope's terminator; message traffic of a spawn is written right
//     after it, in the same scope.
//   * the channel-region rule: received values go into "confined" locals no general statement
//     reads; sends in ChannelMode::kFreshSends take "message" locals that are freshly allocated
//     and never used for anything else.
#include "tests/jitgen/random_usir_generator.hpp"

#include <algorithm>

namespace usgc::jitgen::random_usir {
namespace generator {

// ---------------------------------------------------------------------------------------------
// Program level: types, globals, signatures, assembly.

void ProgramGenerator::make_types() {
  const uint32_t count = random.between(2, 4);
  for (uint32_t s = 0; s < count; ++s)
    structs.push_back({"S" + std::to_string(s), {{"v", int_type()}}});
  for (uint32_t s = 0; s < count; ++s) {
    std::vector<FieldShape>& fields = structs[s].fields;
    if (s == 0) fields.push_back({"next", object_type(0)});
    for (uint32_t f = 0, n = random.between(s == 0 ? 0 : 1, 2); f < n; ++f) {
      uint32_t target = random.below(count);
      fields.push_back(
          {(target == s ? "link" : "to") + std::to_string(fields.size()), object_type(target)});
    }
    if (random.percent(40))
      fields.push_back({"items", dynamic_array(static_cast<int32_t>(random.below(count)))});
  }
  for (uint32_t g = 0, n = random.between(1, 3); g < n; ++g)
    globals.push_back({"g" + std::to_string(g), object_type(random.below(count))});
  if (random.percent(40))
    globals.push_back({"garray", dynamic_array(static_cast<int32_t>(random.below(count)))});
  if (random.percent(40)) globals.push_back({"gcount", int_type()});
}

InputShape ProgramGenerator::make_input(InputRole role, uint32_t serial) {
  const std::string n = std::to_string(serial);
  const int32_t s = static_cast<int32_t>(random.below(static_cast<uint32_t>(structs.size())));
  switch (role) {
    case InputRole::kObject:
      return {"p" + n, object_type(s), role};
    case InputRole::kArray:
      return {"arr" + n, dynamic_array(random.percent(75) ? s : -1), role};
    case InputRole::kInt:
      return {"x" + n, int_type(), role};
    case InputRole::kSize:
      return {"size" + n, int_type(), role};
    case InputRole::kDepth:
      return {"depth", int_type(), role};
    case InputRole::kDone:
      return {"done", channel_of(-1), role};
    case InputRole::kMessagesIn:
      return {"in", channel_of(s), role, false, random.between(1, 3)};
    case InputRole::kMessagesOut:
      return {"out", channel_of(s), role, false, random.between(1, 3)};
  }
  return {};
}

void ProgramGenerator::make_signatures() {
  functions.push_back({"main", FunctionKind::kMain});
  const uint32_t helpers = random.between(2, std::max<uint32_t>(2, options.max_helpers));
  while (functions.size() <= helpers) {
    const uint32_t index = static_cast<uint32_t>(functions.size());
    uint32_t roll = random.below(100);
    FunctionKind kind = roll < 34                       ? FunctionKind::kHelper
                        : roll < 66                     ? FunctionKind::kWorker
                        : roll < 86 || index == helpers ? FunctionKind::kRecursive
                                                        : FunctionKind::kMutual;
    for (uint32_t member = 0; member < (kind == FunctionKind::kMutual ? 2u : 1u); ++member) {
      FunctionShape f;
      const uint32_t at = index + member;
      f.kind = kind;
      f.partner = kind == FunctionKind::kMutual ? index + 1 - member : at;
      const char* prefix = kind == FunctionKind::kHelper      ? "helper"
                           : kind == FunctionKind::kWorker    ? "worker"
                           : kind == FunctionKind::kRecursive ? "rec"
                                                              : "mutual";
      f.name = prefix + std::to_string(at);
      uint32_t serial = 0;
      if (kind == FunctionKind::kRecursive || kind == FunctionKind::kMutual) {
        f.inputs.push_back(make_input(InputRole::kDepth, serial++));
        f.branching = kind == FunctionKind::kRecursive && random.percent(35) ? 2 : 1;
      }
      if (kind == FunctionKind::kWorker) {
        f.inputs.push_back(make_input(InputRole::kDone, serial++));
        if (random.percent(65)) {
          f.inputs.push_back(make_input(
              random.percent(50) ? InputRole::kMessagesIn : InputRole::kMessagesOut, serial++));
          f.closes_out = f.inputs.back().role == InputRole::kMessagesOut && random.percent(40);
        }
      }
      for (uint32_t n = random.below(kind == FunctionKind::kHelper ? 4 : 3); n > 0; --n) {
        uint32_t r = random.below(100);
        InputRole role = r < 55   ? InputRole::kObject
                         : r < 70 ? InputRole::kArray
                         : r < 85 ? InputRole::kInt
                                  : InputRole::kSize;
        f.inputs.push_back(make_input(role, serial++));
      }
      for (InputShape& input : f.inputs)
        input.capture = input.role != InputRole::kDepth && random.percent(25);
      std::stable_sort(
          f.inputs.begin(), f.inputs.end(),
          [](const InputShape& a, const InputShape& b) { return !a.capture && b.capture; });
      if (kind != FunctionKind::kWorker) {
        uint32_t r = random.below(100);
        if (r < 60) {
          f.result = object_type(random.below(static_cast<uint32_t>(structs.size())));
          f.result_nonnull = random.percent(70);
        } else if (r < 80) {
          f.result = int_type();
        }
      }
      functions.push_back(std::move(f));
    }
  }
}

RandomUsirProgram ProgramGenerator::generate(uint64_t seed) {
  const bool global_ok = options.allow_global_on_channels;
  if (global_ok && options.allow_received_published_globally && random.percent(60)) {
    mode = ChannelMode::kUnrestricted;
  } else if (global_ok && random.percent(60)) {
    mode = ChannelMode::kStoresIntoReceived;
  } else {
    mode = random.percent(50) ? ChannelMode::kFreshSends : ChannelMode::kReadOnlyReceives;
  }
  make_types();
  make_signatures();
  for (uint32_t f = static_cast<uint32_t>(functions.size()); f-- > 0;) {
    FunctionGenerator(*this, f).generate();
    FunctionShape& shape = functions[f];
    if (shape.kind == FunctionKind::kMutual && shape.partner > f) {  // the pair is complete
      FunctionShape& other = functions[shape.partner];
      shape.total_cost = other.total_cost = activations(shape) * (shape.own_cost + other.own_cost);
    } else if (shape.kind != FunctionKind::kMutual) {
      shape.total_cost = activations(shape) * shape.own_cost;
    }
  }
  std::string text;
  for (const StructShape& s : structs) {
    text += "type " + s.name + " {";
    for (size_t i = 0; i < s.fields.size(); ++i)
      text += (i == 0 ? " " : ", ") + s.fields[i].name + ": " + spelling(s.fields[i].type);
    text += " }\n";
  }
  text += "\n";
  for (const GlobalShape& g : globals) text += "global " + g.name + ": " + spelling(g.type) + "\n";
  for (const FunctionShape& f : functions) text += "\n" + f.text;
  return {seed, "random-" + std::to_string(seed) + ".usir", std::move(text), mode};
}

// ---------------------------------------------------------------------------------------------
// Function level: locals, scopes, values.

FunctionGenerator::FunctionGenerator(ProgramGenerator& program, uint32_t index)
    : program_(program), random_(program.random), index_(index), shape_(program.functions[index]) {
  const GeneratorOptions& options = program.options;
  budget_ =
      shape_.kind == FunctionKind::kMain ? options.main_step_budget : options.helper_step_budget;
  if (shape_.kind == FunctionKind::kRecursive) budget_ /= activations(shape_);
  if (shape_.kind == FunctionKind::kMutual) budget_ /= 2 * activations(shape_);
  scopes_.emplace_back();
  for (const InputShape& input : shape_.inputs) {
    LocalUse use = input.role == InputRole::kSize || input.role == InputRole::kDepth
                       ? LocalUse::kFrozenInt
                   : input.type.kind == TypeKind::kChannel ? LocalUse::kChannel
                                                           : LocalUse::kPlain;
    locals_.push_back({input.name, input.type, true, use, is_reference(input.type)});
    const uint32_t local = static_cast<uint32_t>(locals_.size() - 1);
    if (use == LocalUse::kPlain && is_reference(input.type)) assign(local, true, 1);
    if (input.role == InputRole::kDepth) depth_local_ = local;
  }
  condition_ = new_local("cond", bool_type(), LocalUse::kCondition, false);
}

void FunctionGenerator::emit(const std::string& line) {
  blocks_.back().lines.push_back("  " + line);
  cost_ += scope().multiplier;
}

void FunctionGenerator::push_scope(uint64_t trips) {
  Scope child = scope();
  for (uint32_t local : child.nonnull)
    if (!locals_[local].anchor) child.frozen.insert(local);
  child.multiplier *= trips;
  ++child.depth;
  child.joins.clear();
  scopes_.push_back(std::move(child));
}

uint32_t FunctionGenerator::new_local(const std::string& prefix, ValueType type, LocalUse use,
                                      bool anchor) {
  locals_.push_back({prefix + std::to_string(++names_), type, false, use, anchor});
  return static_cast<uint32_t>(locals_.size() - 1);
}

bool FunctionGenerator::known_nonnull(uint32_t local) const {
  const std::vector<uint32_t>& nonnull = scope().nonnull;
  return std::find(nonnull.begin(), nonnull.end(), local) != nonnull.end();
}

void FunctionGenerator::assign(uint32_t local, bool nonnull, uint32_t minimum_length) {
  Scope& s = scope();
  s.nonnull.erase(std::remove(s.nonnull.begin(), s.nonnull.end(), local), s.nonnull.end());
  s.minimum_length.erase(local);
  if (!nonnull) return;
  s.nonnull.push_back(local);
  if (locals_[local].type.kind == TypeKind::kDynamicArray) s.minimum_length[local] = minimum_length;
}

// A local to assign a value of `type` to: an existing one the rules allow, or a new one.
uint32_t FunctionGenerator::destination(ValueType type, bool nonnull) {
  std::vector<uint32_t> candidates;
  for (uint32_t l = 0; l < locals_.size(); ++l) {
    const LocalVariable& local = locals_[l];
    if (local.use != LocalUse::kPlain || !(local.type == type) || scope().frozen.count(l)) continue;
    if (local.anchor && !nonnull) continue;
    if (type.kind == TypeKind::kDynamicArray && (local.anchor || nonnull))
      continue;  // lengths stay known
    candidates.push_back(l);
  }
  if (!candidates.empty() && random_.percent(45))
    return candidates[random_.below(static_cast<uint32_t>(candidates.size()))];
  const char* prefix = type.kind == TypeKind::kInt      ? "i"
                       : type.kind == TypeKind::kObject ? (nonnull ? "o" : "m")
                                                        : "a";
  bool anchor = nonnull && (type.kind == TypeKind::kDynamicArray || random_.percent(70));
  return new_local(prefix, type, LocalUse::kPlain, anchor);
}

std::optional<uint32_t> FunctionGenerator::pick_nonnull(ValueType type, uint32_t minimum_length) {
  std::vector<uint32_t> candidates;
  for (uint32_t local : scope().nonnull) {
    if (!(locals_[local].type == type) || locals_[local].use != LocalUse::kPlain) continue;
    if (type.kind == TypeKind::kDynamicArray && scope().minimum_length.at(local) < minimum_length)
      continue;
    candidates.push_back(local);
  }
  if (candidates.empty()) return std::nullopt;
  for (size_t i = candidates.size(); i-- > 0;)  // the newest first: values flow into each other
    if (random_.percent(40)) return candidates[i];
  return candidates[random_.below(static_cast<uint32_t>(candidates.size()))];
}

std::optional<uint32_t> FunctionGenerator::pick_any(ValueType type, LocalUse use) {
  std::vector<uint32_t> candidates;
  for (uint32_t l = 0; l < locals_.size(); ++l)
    if (locals_[l].use == use && locals_[l].type == type) candidates.push_back(l);
  if (candidates.empty()) return std::nullopt;
  return candidates[random_.below(static_cast<uint32_t>(candidates.size()))];
}

std::optional<uint32_t> FunctionGenerator::pick_nonnull_object() {
  std::vector<uint32_t> candidates, inputs;
  for (uint32_t local : scope().nonnull)
    if (locals_[local].type.kind == TypeKind::kObject && locals_[local].use == LocalUse::kPlain) {
      candidates.push_back(local);
      if (locals_[local].input) inputs.push_back(local);
    }
  if (!inputs.empty() && random_.percent(30))
    return inputs[random_.below(static_cast<uint32_t>(inputs.size()))];
  if (candidates.empty()) return std::nullopt;
  for (size_t i = candidates.size(); i-- > 0;)
    if (random_.percent(40)) return candidates[i];
  return candidates[0];
}

std::string FunctionGenerator::int_value() {
  std::vector<uint32_t> ints;
  for (uint32_t l = 0; l < locals_.size(); ++l)
    if (locals_[l].type.kind == TypeKind::kInt &&
        (locals_[l].use == LocalUse::kPlain || locals_[l].use == LocalUse::kFrozenInt))
      ints.push_back(l);
  if (ints.empty() || random_.percent(45))
    return std::to_string(static_cast<int32_t>(random_.below(16)) - 3);
  return name(ints[random_.below(static_cast<uint32_t>(ints.size()))]);
}

std::string FunctionGenerator::fresh_object(uint32_t s) {
  uint32_t local = destination(object_type(s), true);
  emit(name(local) + " = new " + program_.structs[s].name);
  assign(local, true);
  if (random_.percent(40)) emit("store " + name(local) + ".v, " + int_value());
  return name(local);
}

std::string FunctionGenerator::nonnull_object(uint32_t s) {
  if (std::optional<uint32_t> local = pick_nonnull(object_type(s)); local && random_.percent(70))
    return name(*local);
  return fresh_object(s);
}

std::string FunctionGenerator::object_value(uint32_t s, bool allow_maybe, bool allow_null) {
  uint32_t roll = random_.below(100);
  if (allow_null && roll < 10) return "null";
  if (allow_maybe && roll < 30)
    if (std::optional<uint32_t> local = pick_any(object_type(s))) return name(*local);
  return nonnull_object(s);
}

// A new array of `type` (dynamic: newarray with a constant, a frozen local or a size parameter).
std::string FunctionGenerator::fresh_array(ValueType type, uint32_t* length_out) {
  const std::string element =
      type.structure < 0 ? "int" : "*" + program_.structs[type.structure].name;
  uint32_t length = random_.between(1, kMaximumArrayLength);
  if (type.kind == TypeKind::kFixedArray) {
    uint32_t local = destination(type, true);
    emit(name(local) + " = new [" + std::to_string(type.length) + "]" + element);
    assign(local, true);
    *length_out = type.length;
    return name(local);
  }
  std::string operand = std::to_string(length);
  uint32_t roll = random_.below(100);
  const InputShape* size = shape_.input(InputRole::kSize);
  if (size != nullptr && roll < 30) {
    operand = "%" + size->name;
    length = 1;
  } else if (roll < 65) {
    uint32_t n = new_local("n", int_type(), LocalUse::kFrozenInt, false);
    emit(name(n) + " = " + operand);
    operand = name(n);
  }
  uint32_t local = destination(type, true);
  emit(name(local) + " = newarray " + element + ", " + operand);
  assign(local, true, length);
  *length_out = length;
  return name(local);
}

std::string FunctionGenerator::nonnull_array(ValueType type) {
  if (std::optional<uint32_t> local = pick_nonnull(type, 1); local && random_.percent(70))
    return name(*local);
  uint32_t length = 0;
  return fresh_array(type, &length);
}

std::string FunctionGenerator::array_value(ValueType type) {
  if (random_.percent(25))
    if (std::optional<uint32_t> local = pick_any(type)) return name(*local);
  return nonnull_array(type);
}

std::string FunctionGenerator::value_of(ValueType type) {
  switch (type.kind) {
    case TypeKind::kInt:
      return int_value();
    case TypeKind::kObject:
      return object_value(static_cast<uint32_t>(type.structure), true, true);
    default:
      return array_value(type);
  }
}

// What a send puts on a channel of *S: in kFreshSends a new message object (with maybe a new
// child) nothing else uses; otherwise any object.
std::string FunctionGenerator::send_value(uint32_t s) {
  if (program_.mode != ChannelMode::kFreshSends) return object_value(s, true, false);
  uint32_t message = new_local("msg", object_type(s), LocalUse::kMessage, true);
  emit(name(message) + " = new " + program_.structs[s].name);
  emit("store " + name(message) + ".v, " + int_value());
  for (const FieldShape& field : program_.structs[s].fields)
    if (field.type.kind == TypeKind::kObject && random_.percent(40)) {
      uint32_t child = new_local("msg", field.type, LocalUse::kMessage, true);
      emit(name(child) + " = new " + program_.structs[field.type.structure].name);
      emit("store " + name(message) + "." + field.name + ", " + name(child));
      break;
    }
  return name(message);
}

std::string FunctionGenerator::argument(const InputShape& input, uint32_t depth_local,
                                        uint32_t done, uint32_t channel) {
  switch (input.role) {
    case InputRole::kObject:
      return nonnull_object(static_cast<uint32_t>(input.type.structure));
    case InputRole::kArray:
      return nonnull_array(input.type);
    case InputRole::kInt:
      return int_value();
    case InputRole::kSize:
      return std::to_string(random_.between(1, kMaximumSize));
    case InputRole::kDepth:
      return depth_local != UINT32_MAX ? name(depth_local)
                                       : std::to_string(random_.between(0, kMaximumRecursionDepth));
    case InputRole::kDone:
      return name(done);
    case InputRole::kMessagesIn:
    case InputRole::kMessagesOut:
      return name(channel);
  }
  return "?";
}

std::string FunctionGenerator::call_text(uint32_t callee,
                                         const std::vector<std::string>& arguments) const {
  const FunctionShape& f = program_.functions[callee];
  std::string params, captures;
  for (size_t i = 0; i < f.inputs.size(); ++i) {
    std::string& list = f.inputs[i].capture ? captures : params;
    list += (list.empty() ? "" : ", ") + arguments[i];
  }
  return f.name + "(" + params + ")" + (captures.empty() ? "" : " captures(" + captures + ")");
}

// ---------------------------------------------------------------------------------------------
// Control flow helpers.

// `%k = 0; head: br (lt %k, bound), body, exit; body: ...; %k = add %k, 1; jmp head; exit:` with
// the body in a child scope whose instructions cost `trips` times.
void FunctionGenerator::loop(const std::string& bound, uint64_t trips,
                             const std::function<void(uint32_t)>& body) {
  const uint32_t counter = new_local("k", int_type(), LocalUse::kFrozenInt, false);
  const std::string head = label("head"), next = label("body"), exit = label("exit");
  emit(name(counter) + " = 0");
  terminate("jmp " + head);
  begin_block(head);
  emit(name(condition_) + " = lt " + name(counter) + ", " + bound);
  terminate("br " + name(condition_) + ", " + next + ", " + exit);
  begin_block(next);
  push_scope(trips);
  body(counter);
  emit_joins();
  emit(name(counter) + " = add " + name(counter) + ", 1");
  pop_scope();
  terminate("jmp " + head);
  begin_block(exit);
}

// `br %cond, then, else-or-join`, each arm in a child scope, both arms jumping to the join.
void FunctionGenerator::branch(const std::function<void()>& then_arm,
                               const std::function<void()>& else_arm) {
  const std::string then_label = label("then"), join = label("join");
  const std::string else_label = else_arm ? label("else") : join;
  terminate("br " + name(condition_) + ", " + then_label + ", " + else_label);
  for (const auto& [arm, at] :
       {std::pair{&then_arm, then_label}, std::pair{&else_arm, else_label}}) {
    if (!*arm) continue;
    begin_block(at);
    push_scope();
    (*arm)();
    emit_joins();
    pop_scope();
    terminate("jmp " + join);
  }
  begin_block(join);
}

void FunctionGenerator::emit_joins() {
  std::vector<std::pair<uint32_t, uint32_t>> joins = std::move(scope().joins);
  scope().joins.clear();
  for (const auto& [done, count] : joins) {
    auto join_one = [this, done = done](uint32_t) {
      uint32_t result = int_destination();
      emit(name(result) + " = recv " + name(done));
    };
    if (count == 1) {
      join_one(0);
    } else {
      loop(std::to_string(count), count, join_one);
    }
  }
}

void FunctionGenerator::emit_return() {
  if (!shape_.result) return terminate("ret");
  std::string value;
  if (shape_.result->kind == TypeKind::kInt) {
    value = int_value();
  } else {
    const uint32_t s = static_cast<uint32_t>(shape_.result->structure);
    const InputShape* from_input = nullptr;
    for (const InputShape& input : shape_.inputs)
      if (input.type == *shape_.result) from_input = &input;
    if (from_input != nullptr && random_.percent(25)) {
      value = "%" + from_input->name;  // returned from a parameter
    } else {
      value = shape_.result_nonnull ? nonnull_object(s) : object_value(s, true, true);
    }
  }
  terminate("ret " + value);
}

}  // namespace generator

using generator::ProgramGenerator;

const char* channel_mode_name(ChannelMode mode) {
  switch (mode) {
    case ChannelMode::kUnrestricted:
      return "unrestricted";
    case ChannelMode::kFreshSends:
      return "fresh sends";
    case ChannelMode::kReadOnlyReceives:
      return "read-only receives";
    case ChannelMode::kStoresIntoReceived:
      return "stores into received";
  }
  return "?";
}

RandomUsirProgram generate_random_program(uint64_t seed, const GeneratorOptions& options) {
  return ProgramGenerator(seed, options).generate(seed);
}

}  // namespace usgc::jitgen::random_usir
