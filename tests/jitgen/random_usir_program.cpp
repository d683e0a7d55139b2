// tests/jitgen/random_usir_program.cpp — the random .usir generator (random_usir_program.hpp).
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
#include "tests/jitgen/random_usir_program.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace usgc::jitgen::random_usir {
namespace {

constexpr uint32_t kMaximumArrayLength =
    6;                                // every array a program allocates is this short or less
constexpr uint32_t kMaximumSize = 4;  // size parameters get 1..kMaximumSize
constexpr uint32_t kMaximumListWalk = 6;

enum class TypeKind : uint8_t { kInt, kBool, kObject, kDynamicArray, kFixedArray, kChannel };

// A value type of the generated programs. `structure` is the struct of kObject, or the element
// `*S` of arrays and channels (-1: int elements).
struct ValueType {
  TypeKind kind = TypeKind::kInt;
  int32_t structure = -1;
  uint32_t length = 0;  // kFixedArray
  friend bool operator==(const ValueType&, const ValueType&) = default;
};
ValueType int_type() {
  return {};
}
ValueType bool_type() {
  return {TypeKind::kBool, -1, 0};
}
ValueType object_type(uint32_t s) {
  return {TypeKind::kObject, static_cast<int32_t>(s), 0};
}
ValueType dynamic_array(int32_t element) {
  return {TypeKind::kDynamicArray, element, 0};
}
ValueType channel_of(int32_t element) {
  return {TypeKind::kChannel, element, 0};
}
bool is_reference(const ValueType& t) {
  return t.kind != TypeKind::kInt && t.kind != TypeKind::kBool;
}

struct FieldShape {
  std::string name;
  ValueType type;
};
struct StructShape {
  std::string name;
  std::vector<FieldShape> fields;  // fields[0] is `v: int`
};
struct GlobalShape {
  std::string name;
  ValueType type;
};

enum class InputRole : uint8_t {
  kObject,
  kArray,
  kInt,
  kSize,
  kDepth,
  kDone,
  kMessagesIn,
  kMessagesOut
};
struct InputShape {
  std::string name;
  ValueType type;
  InputRole role = InputRole::kObject;
  bool capture = false;
  uint32_t count = 0;  // messages: how many the worker receives or sends
};

enum class FunctionKind : uint8_t { kMain, kHelper, kRecursive, kMutual, kWorker };
struct FunctionShape {
  std::string name;
  FunctionKind kind = FunctionKind::kHelper;
  std::vector<InputShape> inputs;  // parameters, then captures
  std::optional<ValueType> result;
  bool result_nonnull = false;  // callers may dereference the result unguarded
  uint32_t partner = 0;         // kRecursive: itself; kMutual: the other of the pair
  uint32_t branching = 1;       // recursive calls per activation
  bool closes_out = false;      // kWorker with kMessagesOut: closes it after its sends
  uint64_t own_cost = 0;        // one activation, recursive calls excluded
  uint64_t total_cost = 0;      // one call from outside, everything included
  bool called = false;
  std::string text;
  const InputShape* input(InputRole role) const {
    for (const InputShape& shape : inputs)
      if (shape.role == role) return &shape;
    return nullptr;
  }
};

uint64_t activations(const FunctionShape& f) {
  if (f.kind != FunctionKind::kRecursive && f.kind != FunctionKind::kMutual) return 1;
  uint64_t count = 0, level = 1;
  for (uint32_t depth = 0; depth <= kMaximumRecursionDepth; ++depth, level *= f.branching)
    count += level;
  return count;
}

// What a local is for (only kPlain locals are picked by general statements).
enum class LocalUse : uint8_t { kPlain, kFrozenInt, kConfined, kMessage, kChannel, kCondition };
struct LocalVariable {
  std::string name;
  ValueType type;
  bool input = false;
  LocalUse use = LocalUse::kPlain;
  bool anchor = false;  // only ever holds non-null values
};

struct Scope {
  std::vector<uint32_t> nonnull;  // oldest first
  std::set<uint32_t> frozen;
  std::map<uint32_t, uint32_t> minimum_length;  // non-null dynamic arrays
  uint64_t multiplier = 1;
  uint32_t depth = 0;
  std::vector<std::pair<uint32_t, uint32_t>> joins;  // done channel, receives owed
};

struct BlockText {
  std::string label;
  std::vector<std::string> lines;
  bool terminated = false;
};

class ProgramGenerator;

class FunctionGenerator {
 public:
  FunctionGenerator(ProgramGenerator& program, uint32_t index);
  void generate();

 private:
  // --- text and cost ---
  void emit(const std::string& line);
  void terminate(const std::string& line) {
    emit(line);
    blocks_.back().terminated = true;
  }
  void begin_block(const std::string& label) { blocks_.push_back({label, {}, false}); }
  std::string label(const char* prefix) { return prefix + std::to_string(++labels_); }
  bool affordable(uint64_t estimate) const {
    return cost_ + estimate * scope().multiplier <= budget_;
  }
  void charge_call(uint64_t total) { cost_ += total * scope().multiplier; }

  // --- scopes and locals ---
  Scope& scope() { return scopes_.back(); }
  const Scope& scope() const { return scopes_.back(); }
  void push_scope(uint64_t trips = 1);
  void pop_scope() { scopes_.pop_back(); }
  uint32_t new_local(const std::string& prefix, ValueType type, LocalUse use, bool anchor);
  std::string name(uint32_t local) const { return "%" + locals_[local].name; }
  bool known_nonnull(uint32_t local) const;
  void assign(uint32_t local, bool nonnull, uint32_t minimum_length = 0);
  uint32_t destination(ValueType type, bool nonnull);
  uint32_t int_destination() { return destination(int_type(), false); }
  std::optional<uint32_t> pick_nonnull(ValueType type, uint32_t minimum_length = 0);
  std::optional<uint32_t> pick_any(ValueType type, LocalUse use = LocalUse::kPlain);
  std::optional<uint32_t> pick_nonnull_object();

  // --- values (operand text) ---
  std::string int_value();
  std::string fresh_object(uint32_t s);
  std::string nonnull_object(uint32_t s);
  std::string object_value(uint32_t s, bool allow_maybe, bool allow_null);
  std::string fresh_array(ValueType type, uint32_t* length_out);
  std::string nonnull_array(ValueType type);
  std::string array_value(ValueType type);
  std::string value_of(ValueType type);
  std::string send_value(uint32_t s);
  std::string argument(const InputShape& input, uint32_t depth_local, uint32_t done,
                       uint32_t channel);
  std::string call_text(uint32_t callee, const std::vector<std::string>& arguments) const;

  // --- statements ---
  void statements(uint32_t count);
  bool statement();
  bool allocate_object();
  bool store_field();
  bool load_field();
  bool guard(std::optional<uint32_t> chosen = {});
  bool branch_on_comparison();
  bool counted_loop();
  bool allocate_array();
  bool store_element();
  bool load_element();
  bool fill_array();
  bool walk_list();
  bool build_list();
  bool call_helper(std::optional<uint32_t> forced = {});
  bool spawn_worker(std::optional<uint32_t> forced = {});
  bool spawn_and_forget();
  bool local_channel();
  bool store_global();
  bool load_global();
  bool unknown_code();
  bool arithmetic();
  void loop(const std::string& bound, uint64_t trips, const std::function<void(uint32_t)>& body);
  void branch(const std::function<void()>& then_arm, const std::function<void()>& else_arm);
  std::optional<uint32_t> pick_callee(bool workers, uint64_t trips);
  std::vector<std::string> arguments_for(uint32_t callee, uint32_t depth, uint32_t done,
                                         uint32_t channel);
  void call_with_result(uint32_t callee, const std::string& call);
  void receive(uint32_t channel, uint32_t s);
  void use_received(uint32_t received, uint32_t depth);
  void send_messages(uint32_t channel, uint32_t s, uint32_t count);
  void receive_messages(uint32_t channel, uint32_t s, uint32_t count);
  void emit_joins();
  void emit_return();
  void recursion();
  void worker_protocol();

  ProgramGenerator& program_;
  SplitMix64& random_;
  const uint32_t index_;
  FunctionShape& shape_;
  uint64_t budget_;
  uint64_t cost_ = 0;
  std::vector<LocalVariable> locals_;
  std::vector<Scope> scopes_;
  std::vector<BlockText> blocks_;
  uint32_t labels_ = 0;
  uint32_t names_ = 0;
  uint32_t condition_ = 0;
  uint32_t depth_local_ = UINT32_MAX;
};

class ProgramGenerator {
 public:
  ProgramGenerator(uint64_t seed, const GeneratorOptions& options)
      : random(seed), options(options) {}
  RandomUsirProgram generate(uint64_t seed);

  std::string spelling(const ValueType& t) const {
    std::string element = t.structure < 0 ? "int" : "*" + structs[t.structure].name;
    switch (t.kind) {
      case TypeKind::kInt:
        return "int";
      case TypeKind::kBool:
        return "bool";
      case TypeKind::kObject:
        return element;
      case TypeKind::kDynamicArray:
        return "[]" + element;
      case TypeKind::kFixedArray:
        return "[" + std::to_string(t.length) + "]" + element;
      case TypeKind::kChannel:
        return "chan " + element;
    }
    return "?";
  }
  bool confined() const { return mode != ChannelMode::kUnrestricted; }
  bool stores_into_received() const { return mode != ChannelMode::kReadOnlyReceives; }

  SplitMix64 random;
  const GeneratorOptions& options;
  ChannelMode mode = ChannelMode::kFreshSends;
  std::vector<StructShape> structs;
  std::vector<GlobalShape> globals;
  std::vector<FunctionShape> functions;

 private:
  void make_types();
  void make_signatures();
  InputShape make_input(InputRole role, uint32_t serial);
};

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
// Calls and goroutines.

// Later functions of the wanted kind whose cost fits `trips` times; uncalled ones preferred.
std::optional<uint32_t> FunctionGenerator::pick_callee(bool workers, uint64_t trips) {
  std::vector<uint32_t> candidates, uncalled;
  for (uint32_t j = index_ + 1; j < program_.functions.size(); ++j) {
    const FunctionShape& f = program_.functions[j];
    if (shape_.kind == FunctionKind::kMutual && j == shape_.partner) continue;  // not accounted yet
    if ((f.kind == FunctionKind::kWorker) != workers || !affordable(trips * f.total_cost + 16))
      continue;
    candidates.push_back(j);
    if (!f.called) uncalled.push_back(j);
  }
  if (!uncalled.empty() && random_.percent(70))
    return uncalled[random_.below(static_cast<uint32_t>(uncalled.size()))];
  if (candidates.empty()) return std::nullopt;
  return candidates[random_.below(static_cast<uint32_t>(candidates.size()))];
}

std::vector<std::string> FunctionGenerator::arguments_for(uint32_t callee, uint32_t depth,
                                                          uint32_t done, uint32_t channel) {
  std::vector<std::string> arguments;
  for (const InputShape& input : program_.functions[callee].inputs) {
    std::string value = argument(input, depth, done, channel);
    if (input.capture && value[0] != '%') {  // captures name locals: a constant goes through one
      const uint32_t local = new_local("n", int_type(), LocalUse::kFrozenInt, false);
      emit(name(local) + " = " + value);
      value = name(local);
    }
    arguments.push_back(value);
  }
  return arguments;
}

// The result of a call: kept non-null when the callee promises it, else guarded maybe.
void FunctionGenerator::call_with_result(uint32_t callee, const std::string& call) {
  const FunctionShape& f = program_.functions[callee];
  if (!f.result || random_.percent(15)) return emit("call " + call);
  const bool nonnull = f.result->kind == TypeKind::kObject && f.result_nonnull;
  const uint32_t result = destination(*f.result, nonnull);
  emit(name(result) + " = call " + call);
  if (f.result->kind == TypeKind::kInt) return;
  assign(result, nonnull);
  if (!nonnull && scope().depth < program_.options.max_nesting && random_.percent(40))
    guard(result);
}

bool FunctionGenerator::call_helper(std::optional<uint32_t> forced) {
  std::optional<uint32_t> callee = forced;
  if (!callee) callee = pick_callee(random_.percent(80) ? false : true, 1);
  if (!callee) return false;
  FunctionShape& f = program_.functions[*callee];
  f.called = true;
  if (f.kind != FunctionKind::kWorker) {
    const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, 0, 0);
    call_with_result(*callee, call_text(*callee, arguments));
    charge_call(f.total_cost);
    return true;
  }
  // A worker called directly: nobody runs beside it, so its channels are buffered for all of
  // its traffic, and what it receives is sent before the call.
  const uint32_t done = new_local("done", channel_of(-1), LocalUse::kChannel, true);
  emit(name(done) + " = makechan int, 1");
  uint32_t channel = 0;
  const InputShape* messages = f.input(InputRole::kMessagesIn);
  if (messages == nullptr) messages = f.input(InputRole::kMessagesOut);
  const uint32_t s = messages != nullptr ? static_cast<uint32_t>(messages->type.structure) : 0;
  if (messages != nullptr) {
    channel = new_local("ch", messages->type, LocalUse::kChannel, true);
    emit(name(channel) + " = makechan *" + program_.structs[s].name + ", " +
         std::to_string(messages->count));
    if (messages->role == InputRole::kMessagesIn) {
      send_messages(channel, s, messages->count);
      if (random_.percent(40)) emit("close " + name(channel));
    }
  }
  const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, done, channel);
  emit("call " + call_text(*callee, arguments));
  charge_call(f.total_cost);
  if (messages != nullptr && messages->role == InputRole::kMessagesOut)
    receive_messages(
        channel, s,
        random_.between(0, messages->count) + (f.closes_out && random_.percent(30) ? 1 : 0));
  return true;
}

// `go worker(...)` once or in a counted loop, with the done channel and the message traffic the
// worker's signature promises (the matched-traffic invariant), the join owed to this scope.
bool FunctionGenerator::spawn_worker(std::optional<uint32_t> forced) {
  uint32_t copies = random_.percent(30) ? random_.between(2, 3) : 1;
  std::optional<uint32_t> callee = forced;
  if (!callee) callee = pick_callee(true, copies);
  if (!callee) return false;
  FunctionShape& f = program_.functions[*callee];
  if (f.closes_out) copies = 1;  // only one goroutine may close the channel it sends on
  if (!affordable(copies * f.total_cost + 16)) return false;
  f.called = true;
  const uint32_t done = new_local("done", channel_of(-1), LocalUse::kChannel, true);
  emit(name(done) + " = makechan int, " + std::to_string(copies));
  const InputShape* messages = f.input(InputRole::kMessagesIn);
  if (messages == nullptr) messages = f.input(InputRole::kMessagesOut);
  uint32_t channel = 0, s = 0, total = 0;
  bool sent_before = false;
  if (messages != nullptr) {
    s = static_cast<uint32_t>(messages->type.structure);
    total = copies * messages->count;
    const uint32_t roll = random_.below(3);
    const uint32_t capacity = roll == 0 ? 0 : roll == 1 ? 1 : total;
    channel = new_local("ch", messages->type, LocalUse::kChannel, true);
    emit(name(channel) + " = makechan *" + program_.structs[s].name + ", " +
         std::to_string(capacity));
    if (messages->role == InputRole::kMessagesIn && capacity >= total && random_.percent(50)) {
      send_messages(channel, s, total);  // all buffered before anyone receives
      if (random_.percent(40)) emit("close " + name(channel));
      sent_before = true;
    }
  }
  auto spawn = [this, callee, done, channel](uint32_t) {
    const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, done, channel);
    emit("go " + call_text(*callee, arguments));
  };
  if (copies == 1) {
    spawn(0);
  } else {
    loop(std::to_string(copies), copies, spawn);
  }
  charge_call(copies * f.total_cost);
  if (messages != nullptr && messages->role == InputRole::kMessagesIn && !sent_before) {
    send_messages(channel, s, total);
    if (random_.percent(30)) emit("close " + name(channel));
  }
  if (messages != nullptr && messages->role == InputRole::kMessagesOut)
    receive_messages(channel, s, total + (f.closes_out && random_.percent(40) ? 1 : 0));
  scope().joins.push_back({done, copies});
  return true;
}

// `go helper(...)` nobody waits for: it finishes, or is stopped when main returns.
bool FunctionGenerator::spawn_and_forget() {
  std::optional<uint32_t> callee = pick_callee(false, 1);
  if (!callee) return false;
  FunctionShape& f = program_.functions[*callee];
  f.called = true;
  const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, 0, 0);
  emit("go " + call_text(*callee, arguments));
  charge_call(f.total_cost);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Channels.

bool FunctionGenerator::local_channel() {
  const uint32_t s = random_.below(static_cast<uint32_t>(program_.structs.size()));
  const uint32_t count = random_.between(1, 3);
  if (!affordable(count * 16)) return false;
  const uint32_t channel =
      new_local("ch", channel_of(static_cast<int32_t>(s)), LocalUse::kChannel, true);
  emit(name(channel) + " = makechan *" + program_.structs[s].name + ", " +
       std::to_string(count + random_.below(2)));
  send_messages(channel, s, count);
  const bool closed = random_.percent(35);
  if (closed) emit("close " + name(channel));
  receive_messages(channel, s, count + (closed && random_.percent(50) ? 1 : 0));
  return true;
}

void FunctionGenerator::send_messages(uint32_t channel, uint32_t s, uint32_t count) {
  auto send_one = [this, channel, s](uint32_t) {
    const std::string value = send_value(s);
    emit("send " + name(channel) + ", " + value);
  };
  if (count > 1 && random_.percent(40)) return loop(std::to_string(count), count, send_one);
  for (uint32_t i = 0; i < count; ++i) send_one(0);
}

void FunctionGenerator::receive_messages(uint32_t channel, uint32_t s, uint32_t count) {
  auto receive_one = [this, channel, s](uint32_t) { receive(channel, s); };
  if (count > 1 && random_.percent(40)) return loop(std::to_string(count), count, receive_one);
  for (uint32_t i = 0; i < count; ++i) receive_one(0);
}

// `%r = recv %ch`, then what the channel mode allows with %r (the channel-region rule).
void FunctionGenerator::receive(uint32_t channel, uint32_t s) {
  if (!program_.confined()) {
    const uint32_t result = destination(object_type(s), false);
    emit(name(result) + " = recv " + name(channel));
    assign(result, false);
    if (scope().depth < program_.options.max_nesting + 1 && random_.percent(70)) guard(result);
    return;
  }
  std::optional<uint32_t> reused = pick_any(object_type(s), LocalUse::kConfined);
  const uint32_t received = reused && !scope().frozen.count(*reused) && random_.percent(40)
                                ? *reused
                                : new_local("r", object_type(s), LocalUse::kConfined, false);
  emit(name(received) + " = recv " + name(channel));
  use_received(received, 0);
}

void FunctionGenerator::use_received(uint32_t received, uint32_t depth) {
  const StructShape& s = program_.structs[locals_[received].type.structure];
  std::vector<const FieldShape*> links;
  for (const FieldShape& field : s.fields)
    if (field.type.kind == TypeKind::kObject) links.push_back(&field);
  emit(name(condition_) + " = ne " + name(received) + ", null");
  branch(
      [&] {
        scope().frozen.insert(received);
        for (uint32_t n = random_.between(1, 3); n > 0; --n) {
          const uint32_t roll = random_.below(100);
          const FieldShape* link =
              links.empty() ? nullptr : links[random_.below(static_cast<uint32_t>(links.size()))];
          if (roll < 25 || (link == nullptr && roll < 90)) {
            const uint32_t value = int_destination();
            emit(name(value) + " = load " + name(received) + ".v");
          } else if (roll < 40) {
            const std::string value = int_value();
            emit("store " + name(received) + ".v, " + value);
          } else if (roll < 65) {  // an object loaded out of a received one is confined too
            std::optional<uint32_t> reused = pick_any(link->type, LocalUse::kConfined);
            const uint32_t inner = reused && !scope().frozen.count(*reused) && random_.percent(30)
                                       ? *reused
                                       : new_local("r", link->type, LocalUse::kConfined, false);
            emit(name(inner) + " = load " + name(received) + "." + link->name);
            if (depth < 1) use_received(inner, depth + 1);
          } else if (roll < 90 && program_.stores_into_received()) {
            const uint32_t target = static_cast<uint32_t>(link->type.structure);
            std::string value = "null";
            std::optional<uint32_t> confined = pick_any(link->type, LocalUse::kConfined);
            const uint32_t pick = random_.below(100);
            if (pick < 30 && confined) {
              value = name(*confined);
            } else if (pick < 90 && program_.mode == ChannelMode::kStoresIntoReceived) {
              value = object_value(target, true, true);
            } else if (pick < 90) {  // kFreshSends: a new object only the received one holds
              const uint32_t fresh = new_local("msg", link->type, LocalUse::kMessage, true);
              emit(name(fresh) + " = new " + program_.structs[target].name);
              value = name(fresh);
            }
            emit("store " + name(received) + "." + link->name + ", " + value);
          } else if (program_.options.allow_received_published_globally) {
            const GlobalShape* global = nullptr;
            for (const GlobalShape& g : program_.globals)
              if (g.type == locals_[received].type) global = &g;
            if (global != nullptr && random_.percent(50)) {
              emit("store @" + global->name + ", " + name(received));
            } else {
              emit("call unknown(" + name(received) + ")");
            }
          }
        }
      },
      {});
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

// ---------------------------------------------------------------------------------------------
// Bodies.

// The worker's side of its message traffic, at the top level of its body.
void FunctionGenerator::worker_protocol() {
  for (InputRole role : {InputRole::kMessagesIn, InputRole::kMessagesOut}) {
    const InputShape* messages = shape_.input(role);
    if (messages == nullptr) continue;
    uint32_t channel = 0;
    while (locals_[channel].name != messages->name) ++channel;
    const uint32_t s = static_cast<uint32_t>(messages->type.structure);
    if (role == InputRole::kMessagesIn) {
      receive_messages(channel, s, messages->count);
    } else {
      send_messages(channel, s, messages->count);
      if (shape_.closes_out) emit("close " + name(channel));
    }
  }
}

// `if %depth > 0 { call self-or-partner(%depth - 1, ...); ...; ret } else { ...; ret }`.
void FunctionGenerator::recursion() {
  statements(random_.below(3));
  emit(name(condition_) + " = gt " + name(depth_local_) + ", 0");
  const std::string recurse = label("recurse"), base = label("base");
  terminate("br " + name(condition_) + ", " + recurse + ", " + base);
  begin_block(recurse);
  push_scope();
  const uint32_t less = new_local("less", int_type(), LocalUse::kFrozenInt, false);
  emit(name(less) + " = sub " + name(depth_local_) + ", 1");
  const FunctionShape& target = program_.functions[shape_.partner];
  for (uint32_t b = 0; b < shape_.branching; ++b) {
    const std::vector<std::string> arguments = arguments_for(shape_.partner, less, 0, 0);
    const std::string call = call_text(shape_.partner, arguments);
    if (!target.result || target.result->kind != TypeKind::kObject || !target.result_nonnull) {
      call_with_result(shape_.partner, call);
      continue;
    }
    const uint32_t s = static_cast<uint32_t>(target.result->structure);
    const uint32_t result = destination(object_type(s), true);
    emit(name(result) + " = call " + call);
    assign(result, true);
    const FieldShape* field = nullptr;  // hang the result under a new node: lists and trees
    for (const StructShape& owner : program_.structs)
      for (const FieldShape& f : owner.fields)
        if (f.type == object_type(s) && random_.percent(50)) field = &f;
    if (field != nullptr && shape_.result && shape_.result->kind == TypeKind::kObject) {
      uint32_t owner = 0;
      while (
          !(program_.structs[owner].fields.data() <= field &&
            field < program_.structs[owner].fields.data() + program_.structs[owner].fields.size()))
        ++owner;
      const std::string node = fresh_object(owner);
      emit("store " + node + "." + field->name + ", " + name(result));
    }
  }
  statements(random_.below(3));
  emit_joins();
  emit_return();
  pop_scope();
  begin_block(base);
  push_scope();
  statements(random_.between(0, 3));
  emit_joins();
  emit_return();
  pop_scope();
}

void FunctionGenerator::generate() {
  begin_block("entry");
  const uint32_t top = random_.between(2, std::max<uint32_t>(2, program_.options.max_statements));
  switch (shape_.kind) {
    case FunctionKind::kMain:
      statements(top);
      for (uint32_t j = 1; j < program_.functions.size(); ++j) {  // reach what nobody calls
        const FunctionShape& f = program_.functions[j];
        if (f.called || !affordable(f.total_cost + 16)) continue;
        if (f.kind == FunctionKind::kWorker) {
          spawn_worker(j);
        } else {
          call_helper(j);
        }
      }
      emit_joins();
      emit_return();
      break;
    case FunctionKind::kHelper:
      statements(top);
      emit_joins();
      emit_return();
      break;
    case FunctionKind::kWorker: {
      const uint32_t before = random_.below(top + 1);
      statements(before);
      worker_protocol();
      statements(top - before);
      emit_joins();
      emit("send %" + shape_.input(InputRole::kDone)->name + ", 1");
      emit_return();
      break;
    }
    case FunctionKind::kRecursive:
    case FunctionKind::kMutual:
      recursion();
      break;
  }
  shape_.own_cost = cost_;

  std::string params, captures;
  for (const InputShape& input : shape_.inputs) {
    std::string& list = input.capture ? captures : params;
    list += (list.empty() ? "%" : ", %") + input.name + ": " + program_.spelling(input.type);
  }
  std::string& text = shape_.text;
  text = "func " + shape_.name + "(" + params + ")";
  if (!captures.empty()) text += " captures(" + captures + ")";
  if (shape_.result) text += " -> " + program_.spelling(*shape_.result);
  text += " {\n";
  for (const LocalVariable& local : locals_)
    if (!local.input) text += "  var %" + local.name + ": " + program_.spelling(local.type) + "\n";
  for (const BlockText& block : blocks_) {
    text += block.label + ":\n";
    for (const std::string& line : block.lines) text += line + "\n";
  }
  text += "}\n";
}

}  // namespace

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
