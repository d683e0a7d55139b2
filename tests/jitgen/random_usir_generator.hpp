// tests/jitgen/random_usir_generator.hpp — the random .usir generator's shapes and its two
// generators (ProgramGenerator, FunctionGenerator), internal to random_usir_program.cpp (program
// level, values, control flow), random_usir_statements.cpp (statements, globals, ints) and
// random_usir_calls.cpp (calls, goroutines, channels, bodies). The design and how the invariants
// of random_usir_program.hpp are kept are written atop random_usir_program.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/jitgen/random_usir_program.hpp"

namespace usgc::jitgen::random_usir::generator {

inline constexpr uint32_t kMaximumArrayLength =
    6;  // every array a program allocates is this short or less
inline constexpr uint32_t kMaximumSize = 4;  // size parameters get 1..kMaximumSize
inline constexpr uint32_t kMaximumListWalk = 6;

enum class TypeKind : uint8_t { kInt, kBool, kObject, kDynamicArray, kFixedArray, kChannel };

// A value type of the generated programs. `structure` is the struct of kObject, or the element
// `*S` of arrays and channels (-1: int elements).
struct ValueType {
  TypeKind kind = TypeKind::kInt;
  int32_t structure = -1;
  uint32_t length = 0;  // kFixedArray
  friend bool operator==(const ValueType&, const ValueType&) = default;
};
inline ValueType int_type() {
  return {};
}
inline ValueType bool_type() {
  return {TypeKind::kBool, -1, 0};
}
inline ValueType object_type(uint32_t s) {
  return {TypeKind::kObject, static_cast<int32_t>(s), 0};
}
inline ValueType dynamic_array(int32_t element) {
  return {TypeKind::kDynamicArray, element, 0};
}
inline ValueType channel_of(int32_t element) {
  return {TypeKind::kChannel, element, 0};
}
inline bool is_reference(const ValueType& t) {
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

inline uint64_t activations(const FunctionShape& f) {
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

}  // namespace usgc::jitgen::random_usir::generator
