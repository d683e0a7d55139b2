// jitgen/wasm/lowering.cpp — the .usir to WebAssembly lowering (lowering.hpp): the module as a
// whole. Declares the runtime's imports, makes one wasm function per function variant (lowered by
// lowering_function.cpp), then writes `init` (type registration, the reference globals, the
// allocation counters), `go_entry` (every spawned goroutine's body) and the `usgc.meta` section
// the node host reads. lowering_context.hpp describes how the lowering's files divide the work.
// Compile time only.
#include "jitgen/wasm/lowering.hpp"

#include "jitgen/wasm/lowering_context.hpp"
#include "jitgen/x86_64/stack_values.hpp"
#include "usgc/object.h"

namespace usgc::jitgen::wasm {

static_assert(USGC_HEADER_CLASS_MASK == 3 && USGC_HEADER_ARRAY == 0x8 &&
                  USGC_HEADER_TYPE_SHIFT == 8 && USGC_HEADER_OWNER_SHIFT == 32,
              "the wasm runtime's header bits are object.h's");

namespace lowering_detail {
namespace {

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A goroutine may block here: the module needs the coroutine transform (asyncify).
bool may_block(const Instruction& instruction) {
  return (instruction.opcode == Opcode::Go && !instruction.callee_unknown) ||
         instruction.opcode == Opcode::Send || instruction.opcode == Opcode::Receive;
}

}  // namespace

Lowering::Lowering(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                   const interpreter::ProgramLayout& layout, const LowerOptions& options)
    : ir_(module), analysis_(analysis), layout_(layout), options_(options) {
  may_stack_ = x86_64::locals_that_may_hold_stack_objects(module, analysis, layout);
}

std::optional<std::vector<uint8_t>> Lowering::run(std::string* error) {
  for (const ir::Function& function : ir_.functions)
    for (const ir::Block& block : function.blocks)
      for (const Instruction& instruction : block.instructions)
        if (may_block(instruction) && options_.uses_goroutines != nullptr)
          *options_.uses_goroutines = true;
  if (layout_.site_count() + USGC_WASM_FIRST_TYPE >= 65535) {
    *error = ir_.file_name + ": too many allocation sites for the WebAssembly target";
    return std::nullopt;
  }
  declare_imports();
  for (uint32_t f = 0; f < ir_.functions.size(); ++f) variant_of(f, {});
  init_function_ = w_.declare_function({{}, {}});
  go_entry_function_ = w_.declare_function({{ValueType::kI32}, {}});
  for (size_t v = 0; v < variants_.size(); ++v) lower_variant(v);  // grows while lowering
  if (!error_.empty()) {
    *error = error_;
    return std::nullopt;
  }
  emit_init();
  emit_go_entry();
  w_.export_function("go_entry", go_entry_function_);
  for (uint32_t f = 0; f < ir_.functions.size(); ++f)
    w_.export_function("usir:" + ir_.functions[f].name, variants_[f].wasm_function);
  w_.export_function("init", init_function_);
  w_.export_global("counters", counters_global_);
  emit_meta();
  return w_.finish(error);
}

void Lowering::declare_imports() {
  using V = ValueType;
  const V i32 = V::kI32, i64 = V::kI64;
  w_.import_memory("usgc", "memory", 1);
  w_.import_function("usgc", "usgc_wasm_alloc_private_slow", {{i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_alloc", {{i32, i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_alloc_stack_slow", {{i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_alloc_array", {{i32, i64, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_barrier_slow", {{i32, i32, i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_global_store", {{i32, i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_poll_slow", {{}, {}});
  w_.import_function("usgc", "usgc_wasm_gc_stress", {{}, {}});
  w_.import_function("usgc", "usgc_wasm_register_type", {{i32, i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_type_reference_word", {{i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_reserve", {{i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_set_global_roots", {{i32, i32}, {}});
  w_.import_function("usgc", "usgc_wasm_makechan", {{i32, i64, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_chan_send", {{i32, i64, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_chan_recv", {{i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_chan_close", {{i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_transfer", {{}, {i64}});
  w_.import_function("usgc", "usgc_wasm_go", {{i32, i32, i64}, {i32}});
  w_.import_function("usgc", "usgc_wasm_go_ready", {{i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_register_value_type", {{i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_unknown_keep", {{i32, i32}, {i32}});
  w_.import_function("usgc", "usgc_wasm_unknown_newest", {{i32}, {i32}});
  w_.import_function("host", "runtime_error", {{i32, i64, i64}, {}});
  w_.import_function("host", "suspend", {{}, {i64}});
  w_.import_global("usgc", "mutator", i32, true);
  w_.import_global("usgc", "heap_id", i32, true);
  w_.import_global("usgc", "shadow_sp", i32, true);
  w_.import_global("usgc", "shadow_limit", i32, true);
  w_.import_global("usgc", "poll_flag", i32);
  ssp_global_ = kShadowSp;
  references_global_ = w_.add_global(i32, true, 0);
  counters_global_ = w_.add_global(i32, true, 0);
  uint32_t references = 0;
  for (const ir::Global& global : ir_.globals) {
    bool reference = ir_.types.is_reference(global.type);
    global_is_reference_.push_back(reference);
    global_slot_.push_back(reference ? references++ : w_.add_global(i64, true, 0));
  }
  reference_globals_ = references;
}

size_t Lowering::variant_of(uint32_t function, const std::vector<uint32_t>& sites) {
  auto key = std::make_pair(function, sites);
  auto found = variant_index_.find(key);
  if (found != variant_index_.end()) return found->second;
  const ir::Function& f = ir_.functions[function];
  ModuleWriter::Signature signature;
  signature.params.assign(f.parameter_count + f.capture_count, ValueType::kI64);
  signature.results = {ValueType::kI64};
  variants_.push_back({function, sites, w_.declare_function(signature)});
  variant_index_.emplace(std::move(key), variants_.size() - 1);
  return variants_.size() - 1;
}

void Lowering::emit_init() {
  Code c;
  for (uint32_t s = 0; s < layout_.site_count(); ++s) {
    const SiteLayout& site = layout_.site(s);
    uint32_t kind = USGC_WASM_KIND_STRUCT, payload = 0;
    if (site.shape == SiteShape::kStruct) {
      payload = 8 * static_cast<uint32_t>(ir_.structs[site.struct_index].fields.size());
    } else if (site.shape == SiteShape::kChannel) {
      kind = site.element_is_reference ? USGC_WASM_KIND_REFERENCE_CHANNEL
                                       : USGC_WASM_KIND_SCALAR_CHANNEL;
    } else {
      kind =
          site.element_is_reference ? USGC_WASM_KIND_REFERENCE_ARRAY : USGC_WASM_KIND_SCALAR_ARRAY;
    }
    c.i32_const(static_cast<int32_t>(type_id_of_site(s)));
    c.i32_const(static_cast<int32_t>(kind));
    c.i32_const(static_cast<int32_t>(payload));
    c.call(kRegisterType);
    c.drop();
    c.i32_const(static_cast<int32_t>(type_id_of_site(s)));
    c.i32_const(static_cast<int32_t>(site.value_type.index));
    c.call(kRegisterValueType);
    c.drop();
    if (site.shape == SiteShape::kStruct) {
      const auto& fields = layout_.struct_layout(site.struct_index).field_is_reference;
      for (uint32_t k = 0; k < fields.size(); ++k) {
        if (!fields[k]) continue;
        c.i32_const(static_cast<int32_t>(type_id_of_site(s)));
        c.i32_const(static_cast<int32_t>(k));
        c.call(kTypeReferenceWord);
        c.drop();
      }
    }
  }
  c.i32_const(static_cast<int32_t>(8 * reference_globals_));
  c.call(kReserve);
  c.global_set(references_global_);
  c.global_get(references_global_);
  c.i32_const(static_cast<int32_t>(reference_globals_));
  c.call(kSetGlobalRoots);
  c.i32_const(static_cast<int32_t>(16 * layout_.site_count()));
  c.call(kReserve);
  c.global_set(counters_global_);
  w_.define_function(init_function_, {}, c);
}

// go_entry(g): the body of every goroutine the program spawns: dispatches on the record's go
// target and calls that function's variant with the inputs `go` wrote into the record.
void Lowering::emit_go_entry() {
  Code c;
  const uint32_t targets = static_cast<uint32_t>(go_targets_.size());
  for (uint32_t k = 0; k <= targets; ++k) c.block();
  std::vector<uint32_t> table(targets);
  for (uint32_t k = 0; k < targets; ++k) table[k] = k;
  c.local_get(0);
  c.i32_load(USGC_WASM_GOROUTINE_TARGET);
  c.br_table(table, targets);
  for (uint32_t k = 0; k < targets; ++k) {
    c.end();
    const ir::Function& callee = ir_.functions[go_targets_[k]];
    for (uint32_t i = 0; i < callee.parameter_count + callee.capture_count; ++i) {
      c.local_get(0);
      c.i64_load(USGC_WASM_GOROUTINE_INPUTS + 8 * i);
    }
    c.call(variants_[go_target_variants_[k]].wasm_function);
    c.drop();
    c.return_();
  }
  c.end();
  c.unreachable();
  w_.define_function(go_entry_function_, {}, c);
}

void Lowering::emit_meta() {
  std::string json = "{\"file\":" + json_string(ir_.file_name) + ",\"functions\":[";
  for (size_t f = 0; f < ir_.functions.size(); ++f) {
    const ir::Function& function = ir_.functions[f];
    json += f == 0 ? "" : ",";
    json += "{\"name\":" + json_string(function.name) +
            ",\"parameters\":" + std::to_string(function.parameter_count) + ",\"params\":[";
    for (uint32_t p = 0; p < function.parameter_count + function.capture_count; ++p)
      json += std::string(p == 0 ? "" : ",") +
              (ir_.types.is_reference(function.locals[p].type) ? "\"ref\"" : "\"int\"");
    const char* result = !function.result_type.valid()                  ? "none"
                         : ir_.types.is_reference(function.result_type) ? "ref"
                                                                        : "int";
    json += std::string("],\"result\":\"") + result + "\"}";
  }
  json += "],\"sites\":[";
  for (uint32_t s = 0; s < layout_.site_count(); ++s) {
    const escape::SiteDecision& decision = analysis_.sites[s];
    json += std::string(s == 0 ? "" : ",") +
            "{\"at\":" + json_string(escape::format_position(ir_.file_name, decision.position)) +
            ",\"class\":\"" + escape::ownership_class_short_name(layout_.site(s).decided) + "\"}";
  }
  json += "],\"errors\":[";
  for (size_t e = 0; e < errors_.size(); ++e)
    json += std::string(e == 0 ? "" : ",") + json_string(errors_[e]);
  json += "]}";
  w_.add_custom("usgc.meta", std::vector<uint8_t>(json.begin(), json.end()));
}

// A message with {a}/{b} placeholders (the host fills in the values); `exit` 1 for a runtime
// error, the host's "limit" status for the stack check. Returns its id.
uint32_t Lowering::error_id(const std::string& what, ir::SourcePosition position) {
  errors_.push_back(escape::format_position(ir_.file_name, position) + ": " + what);
  return static_cast<uint32_t>(errors_.size() - 1);
}

uint32_t Lowering::runtime_error(const std::string& what) {
  return error_id("runtime error: " + what, instruction_->site_position());
}

// The current instruction as a publication site (runtime/publication_site.cpp): the id + 1 of its
// message for a STACK_LOCAL object the collector finds deeper in what it publishes; the host puts
// the collector's message in place of {gc}.
int32_t Lowering::publication_site() {
  return static_cast<int32_t>(runtime_error("{gc}") + 1);
}

// The i32 on the stack non-zero: raise (an `if` around it).
void Lowering::raise_if(uint32_t id, int32_t a_local, int32_t b_local) {
  c_.if_();
  raise(id, a_local, b_local);
  c_.end();
}

// Calls the host's runtime_error (it does not return); a and b are i64 locals or constants.
void Lowering::raise(uint32_t id, int32_t a_local, int32_t b_local) {
  c_.i32_const(static_cast<int32_t>(id));
  if (a_local >= 0) {
    c_.local_get(static_cast<uint32_t>(a_local));
  } else {
    c_.i64_const(0);
  }
  if (b_local >= 0) {
    c_.local_get(static_cast<uint32_t>(b_local));
  } else {
    c_.i64_const(0);
  }
  c_.call(kRuntimeError);
  c_.unreachable();
}

}  // namespace lowering_detail

std::optional<std::vector<uint8_t>> lower_module(const ir::Module& module,
                                                 const escape::EscapeAnalysis& analysis,
                                                 const LowerOptions& options, std::string* error) {
  std::optional<interpreter::ProgramLayout> layout =
      interpreter::ProgramLayout::build(module, analysis, error);
  if (!layout) return std::nullopt;
  lowering_detail::Lowering lowering(module, analysis, *layout, options);
  return lowering.run(error);
}

}  // namespace usgc::jitgen::wasm
