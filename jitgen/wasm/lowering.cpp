// jitgen/wasm/lowering.cpp — the .usir to WebAssembly lowering (lowering.hpp).
//
// One wasm function per function variant (as the x86-64 JIT: a variant per set of sites
// allocated in the caller's frame). Every parameter and result is an i64; scalar locals are wasm
// locals; reference locals are the 8-byte slots of the function's shadow-stack frame in linear
// memory (wasm_abi.h), so the collector finds them. Control flow: blocks keep their order;
// a forward edge is one `br` out of nested wasm blocks, a back edge sets a block index and
// branches to a loop whose head dispatches with `br_table` (after the poll).
// Compile time only; the sequences it emits are the hot paths (see docs/wasm.md for counts).
#include "jitgen/wasm/lowering.hpp"

#include <algorithm>
#include <map>

#include "jitgen/interpreter/program_layout.hpp"
#include "jitgen/wasm/module_writer.hpp"
#include "jitgen/wasm/wasm_abi.h"
#include "jitgen/x86_64/stack_values.hpp"
#include "usgc/object.h"

namespace usgc::jitgen::wasm {

static_assert(USGC_HEADER_CLASS_MASK == 3 && USGC_HEADER_ARRAY == 0x8 &&
                  USGC_HEADER_TYPE_SHIFT == 8 && USGC_HEADER_OWNER_SHIFT == 32,
              "the wasm runtime's header bits are object.h's");

using escape::OwnershipClass;
using interpreter::SiteLayout;
using interpreter::SiteShape;
using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;
namespace op = opcode;

namespace {

constexpr uint32_t kSlotSizes[USGC_WASM_CLASS_COUNT] = USGC_WASM_CLASS_SLOT_SIZES;
constexpr uint32_t kMaxInlineStackBytes = 4096;
constexpr uint8_t kI32Shl = 0x74, kI64GeU = 0x5A;

// Imported functions, in import order.
enum Import : uint32_t {
  kAllocPrivateSlow,
  kAlloc,
  kAllocStackSlow,
  kAllocArray,
  kBarrierSlow,
  kGlobalStore,
  kPollSlow,
  kGcStress,
  kRegisterType,
  kTypeReferenceWord,
  kReserve,
  kSetGlobalRoots,
  kMakeChan,
  kChanSend,
  kChanReceive,
  kChanClose,
  kTransfer,
  kGo,
  kGoReady,
  kRegisterValueType,
  kUnknownKeep,
  kUnknownNewest,
  kRuntimeError,
  kSuspend,
  kImportCount
};
// Imported globals: the mutator record's address (immutable); the running goroutine's heap id,
// shadow-stack pointer and limit (mutable: the host sets them at a goroutine switch).
enum ImportedGlobal : uint32_t { kMutator, kHeapId, kShadowSp, kShadowLimit };

int size_class_of(uint32_t bytes) {
  for (int c = 0; c < USGC_WASM_CLASS_COUNT; ++c)
    if (bytes <= kSlotSizes[c]) return c;
  return -1;
}

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

class Lowering {
 public:
  Lowering(const ir::Module& module, const escape::EscapeAnalysis& analysis,
           const interpreter::ProgramLayout& layout, const LowerOptions& options)
      : ir_(module), analysis_(analysis), layout_(layout), options_(options) {
    may_stack_ = x86_64::locals_that_may_hold_stack_objects(module, analysis, layout);
  }

  std::optional<std::vector<uint8_t>> run(std::string* error) {
    for (const ir::Function& function : ir_.functions)
      for (const ir::Block& block : function.blocks)
        for (const Instruction& instruction : block.instructions)
          if (may_block(instruction) && options_.uses_goroutines != nullptr)
            *options_.uses_goroutines = true;
    if (layout_.site_count() + 1 >= 65535) {
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

 private:
  struct Variant {
    uint32_t function = 0;
    std::vector<uint32_t> caller_frame_sites;
    uint32_t wasm_function = 0;
  };

  // ---- module parts --------------------------------------------------------------------------
  void declare_imports() {
    using V = ValueType;
    const V i32 = V::kI32, i64 = V::kI64;
    w_.import_memory("usgc", "memory", 1);
    w_.import_function("usgc", "usgc_wasm_alloc_private_slow", {{i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_alloc", {{i32, i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_alloc_stack_slow", {{i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_alloc_array", {{i32, i64, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_barrier_slow", {{i32, i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_global_store", {{i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_poll_slow", {{}, {}});
    w_.import_function("usgc", "usgc_wasm_gc_stress", {{}, {}});
    w_.import_function("usgc", "usgc_wasm_register_type", {{i32, i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_type_reference_word", {{i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_reserve", {{i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_set_global_roots", {{i32, i32}, {}});
    w_.import_function("usgc", "usgc_wasm_makechan", {{i32, i64, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_chan_send", {{i32, i64}, {i32}});
    w_.import_function("usgc", "usgc_wasm_chan_recv", {{i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_chan_close", {{i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_transfer", {{}, {i64}});
    w_.import_function("usgc", "usgc_wasm_go", {{i32, i32, i64}, {i32}});
    w_.import_function("usgc", "usgc_wasm_go_ready", {{i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_register_value_type", {{i32, i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_unknown_keep", {{i32}, {i32}});
    w_.import_function("usgc", "usgc_wasm_unknown_newest", {{i32}, {i32}});
    w_.import_function("host", "runtime_error", {{i32, i64, i64}, {}});
    w_.import_function("host", "suspend", {{}, {i64}});
    w_.import_global("usgc", "mutator", i32);
    w_.import_global("usgc", "heap_id", i32, true);
    w_.import_global("usgc", "shadow_sp", i32, true);
    w_.import_global("usgc", "shadow_limit", i32, true);
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

  size_t variant_of(uint32_t function, const std::vector<uint32_t>& sites) {
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

  uint32_t type_id_of_site(uint32_t site) const { return site + 1; }

  void emit_init() {
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
        kind = site.element_is_reference ? USGC_WASM_KIND_REFERENCE_ARRAY
                                         : USGC_WASM_KIND_SCALAR_ARRAY;
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
  void emit_go_entry() {
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

  void emit_meta() {
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

  // ---- errors --------------------------------------------------------------------------------
  // A message with {a}/{b} placeholders (the host fills in the values); `exit` 1 for a runtime
  // error, the host's "limit" status for the stack check. Returns its id.
  uint32_t error_id(const std::string& what, ir::SourcePosition position) {
    errors_.push_back(escape::format_position(ir_.file_name, position) + ": " + what);
    return static_cast<uint32_t>(errors_.size() - 1);
  }
  uint32_t runtime_error(const std::string& what) {
    return error_id("runtime error: " + what, instruction_->site_position());
  }
  // The i32 on the stack non-zero: raise (an `if` around it).
  void raise_if(uint32_t id, int32_t a_local = -1, int32_t b_local = -1) {
    c_.if_();
    raise(id, a_local, b_local);
    c_.end();
  }
  // Calls the host's runtime_error (it does not return); a and b are i64 locals or constants.
  void raise(uint32_t id, int32_t a_local = -1, int32_t b_local = -1) {
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

  // ---- locals ----------------------------------------------------------------------------------
  bool is_reference(uint32_t local) const { return function_layout_->local_is_reference[local]; }
  uint32_t slot_offset(uint32_t local) const {
    return USGC_WASM_FRAME_BYTES + 8 * function_layout_->slot_of_local[local];
  }
  // Pushes the operand's value (i64).
  void push(const Operand& operand) {
    switch (operand.kind) {
      case OperandKind::Local:
        if (is_reference(operand.local_index)) {
          c_.local_get(fp_);
          c_.i64_load(slot_offset(operand.local_index));
        } else {
          c_.local_get(scalar_local_[operand.local_index]);
        }
        return;
      case OperandKind::Integer:
      case OperandKind::Boolean:
        c_.i64_const(operand.integer_value);
        return;
      case OperandKind::Null:
        c_.i64_const(0);
        return;
    }
  }
  // Pops an i64 into local `local`.
  void set_local(uint32_t local) {
    if (!is_reference(local)) {
      c_.local_set(scalar_local_[local]);
      return;
    }
    c_.local_set(x_);
    c_.local_get(fp_);
    c_.local_get(x_);
    c_.i64_store(slot_offset(local));
  }
  void set_result(const Instruction& instruction) {
    if (instruction.result_name.empty()) {
      c_.drop();
    } else {
      set_local(instruction.result_index);
    }
  }

  // Instruction counts of the inline sequences (LowerOptions::stub_instructions): the `if`,
  // `else` and `end` around a slow-path arm count, the arm does not.
  void stub_start() {
    stub_begin_ = c_.instructions;
    stub_slow_ = 0;
  }
  void slow_start() { slow_begin_ = c_.instructions; }
  void slow_stop() { stub_slow_ += c_.instructions - slow_begin_; }
  void stub_finish(const std::string& name, uint32_t excluded = 0) {
    if (options_.stub_instructions != nullptr)
      options_.stub_instructions->emplace(name,
                                          c_.instructions - stub_begin_ - stub_slow_ - excluded);
  }

  void poll() {
    stub_start();
    c_.global_get(kMutator);
    c_.i32_load(USGC_WASM_MUTATOR_POLL);
    c_.if_();
    slow_start();
    c_.call(kPollSlow);
    slow_stop();
    c_.end();
    stub_finish("poll");
  }

  // ---- one variant ---------------------------------------------------------------------------
  void lower_variant(size_t index) {
    const Variant variant = variants_[index];
    function_ = variant.function;
    const ir::Function& function = ir_.functions[function_];
    function_layout_ = &layout_.function(function_);
    caller_frame_sites_ = &variant.caller_frame_sites;
    c_ = Code();
    const uint32_t inputs = function.parameter_count + function.capture_count;
    std::vector<ValueType> locals;
    scalar_local_.assign(function.locals.size(), UINT32_MAX);
    uint32_t next = inputs;
    for (uint32_t l = 0; l < function.locals.size(); ++l) {
      if (is_reference(l)) continue;
      if (l < inputs) {
        scalar_local_[l] = l;
      } else {
        scalar_local_[l] = next++;
        locals.push_back(ValueType::kI64);
      }
    }
    auto add_local = [&](ValueType type) {
      locals.push_back(type);
      return next++;
    };
    fp_ = add_local(ValueType::kI32);
    pc_ = add_local(ValueType::kI32);
    t0_ = add_local(ValueType::kI32);
    t1_ = add_local(ValueType::kI32);
    x_ = add_local(ValueType::kI64);
    y_ = add_local(ValueType::kI64);
    frame_bytes_ = USGC_WASM_FRAME_BYTES + 8 * function_layout_->reference_slots;

    // Prologue: the frame below the shadow-stack pointer, its stack check, slots, push, poll.
    stub_start();
    c_.global_get(ssp_global_);
    c_.i32_const(static_cast<int32_t>(frame_bytes_));
    c_.op(op::kI32Sub);
    c_.local_tee(fp_);
    c_.global_get(kShadowLimit);
    c_.op(op::kI32LtU);
    c_.if_();
    slow_start();
    raise(error_id("call depth limit: calling " + function.name +
                       " would overflow the goroutine's shadow stack (1024 KiB for main, 128 "
                       "KiB for the others)",
                   function.position));
    slow_stop();
    c_.end();
    c_.local_get(fp_);
    c_.global_set(ssp_global_);
    c_.local_get(fp_);
    c_.global_get(kMutator);
    c_.i32_load(USGC_WASM_MUTATOR_FRAMES);
    c_.i32_store(USGC_WASM_FRAME_PREVIOUS);
    c_.local_get(fp_);
    c_.local_get(fp_);
    c_.i32_const(USGC_WASM_FRAME_BYTES);
    c_.op(op::kI32Add);
    c_.i32_store(USGC_WASM_FRAME_SLOTS);
    c_.local_get(fp_);
    c_.i32_const(static_cast<int32_t>(function_layout_->reference_slots));
    c_.i32_store(USGC_WASM_FRAME_COUNT);
    c_.local_get(fp_);
    c_.global_get(kMutator);
    c_.i32_load(USGC_WASM_MUTATOR_ARENA_TOP);
    c_.i32_store(USGC_WASM_FRAME_ARENA_MARK);
    std::vector<int32_t> input_of_slot(function_layout_->reference_slots, -1);
    for (uint32_t input = 0; input < inputs; ++input)
      if (is_reference(input))
        input_of_slot[function_layout_->slot_of_local[input]] = static_cast<int32_t>(input);
    for (uint32_t k = 0; k < input_of_slot.size(); ++k) {
      c_.local_get(fp_);
      if (input_of_slot[k] >= 0) {
        c_.local_get(static_cast<uint32_t>(input_of_slot[k]));
      } else {
        c_.i64_const(0);
      }
      c_.i64_store(USGC_WASM_FRAME_BYTES + 8 * k);
    }
    c_.global_get(kMutator);
    c_.local_get(fp_);
    c_.i32_store(USGC_WASM_MUTATOR_FRAMES);
    stub_finish("frame_push_" + std::to_string(function_layout_->reference_slots));
    poll();

    // Blocks: loop { block_{n-1} { ... block_0 { br_table } code_0 } code_1 ... } code_{n-1} }.
    const uint32_t blocks = static_cast<uint32_t>(function.blocks.size());
    block_count_ = blocks;
    c_.loop();
    for (uint32_t b = 0; b < blocks; ++b) c_.block();
    std::vector<uint32_t> targets(blocks);
    for (uint32_t b = 0; b < blocks; ++b) targets[b] = b;
    c_.local_get(pc_);
    c_.br_table(targets, 0);
    for (block_ = 0; block_ < blocks; ++block_) {
      c_.end();
      extra_depth_ = 0;
      const auto& instructions = function.blocks[block_].instructions;
      for (instruction_index_ = 0; instruction_index_ < instructions.size(); ++instruction_index_) {
        instruction_ = &instructions[instruction_index_];
        lower_instruction(*instruction_);
      }
    }
    c_.end();  // the loop
    c_.unreachable();
    w_.define_function(variant.wasm_function, locals, c_);
  }

  // A branch to block `target` from the current block, `extra_depth_` wasm blocks deeper.
  void edge(uint32_t target) {
    if (target > block_) {
      if (target == block_ + 1 && extra_depth_ == 0) return;  // falls through
      c_.br(target - block_ - 1 + extra_depth_);
      return;
    }
    poll();
    c_.i32_const(static_cast<int32_t>(target));
    c_.local_set(pc_);
    c_.br(block_count_ - 1 - block_ + extra_depth_);
  }

  void lower_instruction(const Instruction& instruction) {
    switch (instruction.opcode) {
      case Opcode::Copy:
        push(instruction.operands[0]);
        return set_result(instruction);
      case Opcode::Binary:
        return lower_binary(instruction);
      case Opcode::New:
      case Opcode::NewArray:
      case Opcode::MakeChan:
        return lower_allocation(instruction);
      case Opcode::Send:
        return lower_send(instruction);
      case Opcode::Receive:
        return lower_receive(instruction);
      case Opcode::Close:
        return lower_close(instruction);
      case Opcode::Go:
        return lower_go(instruction);
      case Opcode::LoadField:
      case Opcode::StoreField:
        return lower_field(instruction);
      case Opcode::LoadIndex:
      case Opcode::StoreIndex:
        return lower_element(instruction);
      case Opcode::Length:
        push(instruction.operands[0]);
        c_.op(op::kI32WrapI64);
        c_.local_tee(t0_);
        c_.if_result(ValueType::kI64);
        c_.local_get(t0_);
        c_.i64_load(0);
        c_.else_();
        c_.i64_const(0);
        c_.end();
        return set_result(instruction);
      case Opcode::LoadGlobal:
      case Opcode::StoreGlobal:
        return lower_global(instruction);
      case Opcode::Call: {
        if (instruction.callee_unknown) return lower_unknown(instruction);
        for (const Operand& operand : instruction.operands) push(operand);
        for (const Operand& operand : instruction.captures) push(operand);
        const std::vector<uint32_t>* sites =
            layout_.caller_frame_sites(function_, block_, instruction_index_);
        size_t callee = variant_of(instruction.callee_index,
                                   sites != nullptr ? *sites : std::vector<uint32_t>{});
        c_.call(variants_[callee].wasm_function);
        return set_result(instruction);
      }
      case Opcode::Branch:
        push(instruction.operands[0]);
        c_.op(op::kI64Eqz);
        c_.if_();
        ++extra_depth_;
        edge(instruction.target_blocks[1]);
        c_.else_();
        edge(instruction.target_blocks[0]);
        --extra_depth_;
        c_.end();
        return;
      case Opcode::Jump:
        return edge(instruction.target_blocks[0]);
      case Opcode::Return: {
        if (!instruction.operands.empty()) {
          push(instruction.operands[0]);
        } else {
          c_.i64_const(0);
        }
        stub_start();
        c_.local_set(x_);
        // Frame pop: unlink, reset the arena (unless this variant's stack objects are its
        // caller's), release the shadow-stack space.
        c_.global_get(kMutator);
        c_.local_get(fp_);
        c_.i32_load(USGC_WASM_FRAME_PREVIOUS);
        c_.i32_store(USGC_WASM_MUTATOR_FRAMES);
        if (caller_frame_sites_->empty()) {
          c_.global_get(kMutator);
          c_.local_get(fp_);
          c_.i32_load(USGC_WASM_FRAME_ARENA_MARK);
          c_.i32_store(USGC_WASM_MUTATOR_ARENA_TOP);
        }
        c_.local_get(fp_);
        c_.i32_const(static_cast<int32_t>(frame_bytes_));
        c_.op(op::kI32Add);
        c_.global_set(ssp_global_);
        c_.local_get(x_);
        c_.return_();
        stub_finish(caller_frame_sites_->empty() ? "frame_pop" : "frame_pop_keep_arena");
        return;
      }
      default:
        error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
                 ": the WebAssembly target cannot lower this instruction";
        return;
    }
  }

  void lower_binary(const Instruction& instruction) {
    using ir::BinaryOperator;
    const BinaryOperator o = instruction.binary_operator;
    if (o == BinaryOperator::Div || o == BinaryOperator::Rem) {
      push(instruction.operands[0]);
      c_.local_set(x_);
      push(instruction.operands[1]);
      c_.local_tee(y_);
      c_.op(op::kI64Eqz);
      raise_if(runtime_error("integer divide by zero"));
      c_.local_get(y_);
      c_.i64_const(-1);
      c_.op(op::kI64Eq);
      c_.if_result(ValueType::kI64);
      c_.i64_const(0);  // Go: MinInt64 / -1 == MinInt64 (0 - x wraps), x % -1 == 0
      if (o == BinaryOperator::Div) {
        c_.local_get(x_);
        c_.op(op::kI64Sub);
      }
      c_.else_();
      c_.local_get(x_);
      c_.local_get(y_);
      c_.op(o == BinaryOperator::Div ? op::kI64DivS : op::kI64RemS);
      c_.end();
      return set_result(instruction);
    }
    push(instruction.operands[0]);
    push(instruction.operands[1]);
    switch (o) {
      case BinaryOperator::Add:
        c_.op(op::kI64Add);
        break;
      case BinaryOperator::Sub:
        c_.op(op::kI64Sub);
        break;
      case BinaryOperator::Mul:
        c_.op(op::kI64Mul);
        break;
      case BinaryOperator::And:
      case BinaryOperator::Or:
        c_.op(o == BinaryOperator::And ? op::kI64And : op::kI64Or);
        c_.i64_const(1);
        c_.op(op::kI64And);
        break;
      default: {
        uint8_t compare = o == BinaryOperator::Lt   ? op::kI64LtS
                          : o == BinaryOperator::Le ? op::kI64LeS
                          : o == BinaryOperator::Gt ? op::kI64GtS
                          : o == BinaryOperator::Ge ? op::kI64GeS
                          : o == BinaryOperator::Eq ? op::kI64Eq
                                                    : op::kI64Ne;
        c_.op(compare);
        c_.op(op::kI64ExtendI32U);
        break;
      }
    }
    set_result(instruction);
  }

  // ---- allocation ----------------------------------------------------------------------------
  void count(uint32_t counter) {
    c_.global_get(counters_global_);
    c_.global_get(counters_global_);
    c_.i64_load(8 * counter);
    c_.i64_const(1);
    c_.op(op::kI64Add);
    c_.i64_store(8 * counter);
  }

  void out_of_memory_check() {
    c_.local_get(t0_);
    c_.op(op::kI32Eqz);
    raise_if(runtime_error("out of memory: the WebAssembly memory cannot grow"));
  }

  void lower_allocation(const Instruction& instruction) {
    const uint32_t site_index = layout_.site_at(function_, block_, instruction_index_);
    const SiteLayout& site = layout_.site(site_index);
    const bool in_caller_frame =
        std::binary_search(caller_frame_sites_->begin(), caller_frame_sites_->end(), site_index);
    const OwnershipClass decided = in_caller_frame ? OwnershipClass::StackLocal : site.decided;
    const uint32_t ownership = static_cast<uint32_t>(interpreter::usgc_class_of(decided));
    const uint32_t counter =
        in_caller_frame ? static_cast<uint32_t>(layout_.site_count()) + site_index : site_index;
    const int32_t type = static_cast<int32_t>(type_id_of_site(site_index));

    if (site.shape == SiteShape::kDynamicArray && instruction.opcode == Opcode::New) {
      error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
               ": the WebAssembly target does not lower `new [N]T` this large";
      return;
    }
    if (instruction.opcode == Opcode::NewArray || instruction.opcode == Opcode::MakeChan) {
      const Operand& length = instruction.operands[0];
      if (!(length.kind == OperandKind::Integer && length.integer_value >= 0)) {
        push(length);
        c_.local_tee(y_);
        c_.i64_const(0);
        c_.op(op::kI64LtS);
        raise_if(runtime_error(instruction.opcode == Opcode::NewArray
                                   ? "newarray: negative length {a}"
                                   : "makechan: negative capacity {a}"),
                 static_cast<int32_t>(y_));
      }
    }
    if (options_.gc_stress) c_.call(kGcStress);
    if (site.shape == SiteShape::kChannel) {
      c_.i32_const(type);
      push(instruction.operands[0]);
      c_.i32_const(static_cast<int32_t>(ownership));
      c_.call(kMakeChan);
      c_.local_set(t0_);
      out_of_memory_check();
    } else if (site.shape == SiteShape::kDynamicArray) {
      c_.i32_const(type);
      push(instruction.operands[0]);
      c_.i32_const(static_cast<int32_t>(ownership));
      c_.call(kAllocArray);
      c_.local_set(t0_);
      out_of_memory_check();
    } else {
      const bool array = site.shape == SiteShape::kBoundedArray;
      const uint64_t payload64 =
          array ? 8 + 8 * site.bounded_length : 8 * ir_.structs[site.struct_index].fields.size();
      if (payload64 > 0x7fff0000u) {
        error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
                 ": object too large for the WebAssembly target";
        return;
      }
      const uint32_t payload = static_cast<uint32_t>(payload64);
      const int class_index = size_class_of(payload + 8);
      const int32_t header_low = static_cast<int32_t>(ownership | (array ? USGC_HEADER_ARRAY : 0) |
                                                      (static_cast<uint32_t>(type) << 8));
      if (decided == OwnershipClass::StackLocal && payload + 8 <= kMaxInlineStackBytes) {
        emit_stack_alloc(type, payload, header_low);
      } else if (decided == OwnershipClass::GoroutinePrivate && class_index >= 0) {
        emit_private_alloc(type, static_cast<uint32_t>(class_index), header_low);
      } else if (decided == OwnershipClass::StackLocal) {
        c_.i32_const(type);
        c_.i32_const(static_cast<int32_t>(payload));
        c_.call(kAllocStackSlow);
        c_.local_set(t0_);
        out_of_memory_check();
      } else {
        c_.i32_const(type);
        c_.i32_const(static_cast<int32_t>(payload));
        c_.i32_const(static_cast<int32_t>(ownership));
        c_.call(kAlloc);
        c_.local_set(t0_);
        out_of_memory_check();
      }
      if (array) {
        c_.local_get(t0_);
        c_.i64_const(static_cast<int64_t>(site.bounded_length));
        c_.i64_store(0);
      }
    }
    c_.local_get(t0_);
    c_.op(op::kI64ExtendI32U);
    set_result(instruction);
    count(counter);
  }

  // The stack arena bump: t0 = top; top + size <= limit, else the runtime's substitute; the
  // header's two halves stored; the payload zeroed (the arena is reused). Leaves t0 = object.
  void emit_stack_alloc(int32_t type, uint32_t payload, int32_t header_low) {
    const uint32_t size = (payload + 8 + 7) & ~7u;
    stub_start();
    c_.global_get(kMutator);
    c_.i32_load(USGC_WASM_MUTATOR_ARENA_TOP);
    c_.local_tee(t0_);
    c_.i32_const(static_cast<int32_t>(size));
    c_.op(op::kI32Add);
    c_.local_tee(t1_);
    c_.global_get(kMutator);
    c_.i32_load(USGC_WASM_MUTATOR_ARENA_LIMIT);
    c_.op(op::kI32GtU);
    c_.if_();
    slow_start();
    c_.i32_const(type);
    c_.i32_const(static_cast<int32_t>(payload));
    c_.call(kAllocStackSlow);
    c_.local_set(t0_);
    out_of_memory_check();
    slow_stop();
    c_.else_();
    c_.global_get(kMutator);
    c_.local_get(t1_);
    c_.i32_store(USGC_WASM_MUTATOR_ARENA_TOP);
    c_.local_get(t0_);
    c_.i32_const(header_low);
    c_.i32_store(0);
    c_.local_get(t0_);
    c_.global_get(kHeapId);
    c_.i32_store(4);
    for (uint32_t word = 0; word < payload / 8; ++word) {
      c_.local_get(t0_);
      c_.i64_const(0);
      c_.i64_store(8 + 8 * word);
    }
    c_.local_get(t0_);
    c_.i32_const(8);
    c_.op(op::kI32Add);
    c_.local_set(t0_);
    c_.end();
    stub_finish("stack_alloc_" + std::to_string(payload / 8));
  }

  // The private TLAB bump: t0 = run.next; next + slot <= run.limit, else the runtime's refill
  // (which returns a slot); header stored inline in both cases. Leaves t0 = object.
  void emit_private_alloc(int32_t type, uint32_t class_index, int32_t header_low) {
    (void)type;
    const uint32_t run = USGC_WASM_MUTATOR_RUNS + USGC_WASM_RUN_BYTES * class_index;
    stub_start();
    c_.global_get(kMutator);
    c_.i32_load(run);
    c_.local_tee(t0_);
    c_.i32_const(static_cast<int32_t>(kSlotSizes[class_index]));
    c_.op(op::kI32Add);
    c_.local_tee(t1_);
    c_.global_get(kMutator);
    c_.i32_load(run + 4);
    c_.op(op::kI32GtU);
    c_.if_();
    slow_start();
    c_.i32_const(static_cast<int32_t>(class_index));
    c_.call(kAllocPrivateSlow);
    c_.local_set(t0_);
    out_of_memory_check();
    slow_stop();
    c_.else_();
    c_.global_get(kMutator);
    c_.local_get(t1_);
    c_.i32_store(run);
    c_.end();
    c_.local_get(t0_);
    c_.i32_const(header_low);
    c_.i32_store(0);
    c_.local_get(t0_);
    c_.global_get(kHeapId);
    c_.i32_store(4);
    c_.local_get(t0_);
    c_.i32_const(8);
    c_.op(op::kI32Add);
    c_.local_set(t0_);
    stub_finish("private_alloc");
  }

  // ---- fields, elements, globals ------------------------------------------------------------
  bool value_may_be_stack(const Operand& value) const {
    return value.kind == OperandKind::Local && may_stack_[function_][value.local_index];
  }

  // The store of y (i64) into the reference word at t0 + offset of the object t0... with the
  // same-goroutine barrier: one load of the owner half and a compare; the slow path a call.
  void emit_barrier_store(uint32_t object_local, uint32_t address_local, uint32_t offset,
                          bool may_be_stack) {
    stub_start();
    uint32_t value_test = 0;
    c_.local_get(object_local);
    c_.i32_const(8);
    c_.op(op::kI32Sub);
    c_.i32_load(4);
    c_.global_get(kHeapId);
    c_.op(op::kI32Eq);
    if (may_be_stack) {  // and the value is not a STACK_LOCAL object
      value_test = c_.instructions;
      c_.local_get(y_);
      c_.op(op::kI64Eqz);
      c_.if_result(ValueType::kI32);
      c_.i32_const(1);
      c_.else_();
      c_.local_get(y_);
      c_.op(op::kI32WrapI64);
      c_.i32_const(8);
      c_.op(op::kI32Sub);
      c_.i32_load8_u(0);
      c_.i32_const(3);
      c_.op(op::kI32And);
      c_.i32_const(0);
      c_.op(op::kI32Ne);
      c_.end();
      c_.op(op::kI32And);
      value_test = c_.instructions - value_test;
      if (options_.stub_instructions != nullptr)
        options_.stub_instructions->emplace("barrier_value_test", value_test);
    }
    c_.if_();
    c_.local_get(address_local);
    c_.local_get(y_);
    c_.i64_store(offset);
    c_.else_();
    slow_start();
    c_.local_get(object_local);
    c_.local_get(address_local);
    c_.i32_const(static_cast<int32_t>(offset));
    c_.op(op::kI32Add);
    c_.local_get(y_);
    c_.op(op::kI32WrapI64);
    c_.call(kBarrierSlow);
    raise_if(runtime_error("a STACK_LOCAL object stored into a heap object (escape analysis bug)"));
    slow_stop();
    c_.end();
    stub_finish("barrier", value_test);
  }

  void lower_field(const Instruction& instruction) {
    const Operand& base = instruction.operands[0];
    const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
    const bool reference = layout_.struct_layout(layout_.struct_of_pointer(base_type))
                               .field_is_reference[instruction.field_index];
    push(base);
    c_.op(op::kI32WrapI64);
    c_.local_tee(t0_);
    c_.op(op::kI32Eqz);
    raise_if(runtime_error("nil pointer dereference (field " + instruction.field_name + " of %" +
                           base.local_name + ")"));
    const uint32_t offset = 8 * instruction.field_index;
    if (instruction.opcode == Opcode::LoadField) {
      c_.local_get(t0_);
      c_.i64_load(offset);
      return set_result(instruction);
    }
    const Operand& value = instruction.operands[1];
    if (!reference || value.kind == OperandKind::Null) {
      c_.local_get(t0_);
      push(value);
      c_.i64_store(offset);
      return;
    }
    push(value);
    c_.local_set(y_);
    emit_barrier_store(t0_, t0_, offset, value_may_be_stack(value));
  }

  void lower_element(const Instruction& instruction) {
    const Operand& base = instruction.operands[0];
    const ir::TypeId base_type = ir_.functions[function_].locals[base.local_index].type;
    const bool reference = ir_.types.is_reference(ir_.types.node(base_type).element);
    push(base);
    c_.op(op::kI32WrapI64);
    c_.local_set(t0_);
    push(instruction.operands[1]);
    c_.local_set(x_);
    c_.local_get(t0_);
    c_.op(op::kI32Eqz);
    c_.if_();
    raise(
        runtime_error("index out of range [{a}] with length 0 (%" + base.local_name + " is null)"),
        static_cast<int32_t>(x_));
    c_.end();
    c_.local_get(x_);
    c_.local_get(t0_);
    c_.i64_load(0);
    c_.op(kI64GeU);
    c_.if_();
    c_.local_get(t0_);
    c_.i64_load(0);
    c_.local_set(y_);
    raise(runtime_error("index out of range [{a}] with length {b}"), static_cast<int32_t>(x_),
          static_cast<int32_t>(y_));
    c_.end();
    c_.local_get(t0_);
    c_.local_get(x_);
    c_.op(op::kI32WrapI64);
    c_.i32_const(3);
    c_.op(kI32Shl);
    c_.op(op::kI32Add);
    c_.local_set(t1_);
    if (instruction.opcode == Opcode::LoadIndex) {
      c_.local_get(t1_);
      c_.i64_load(8);
      return set_result(instruction);
    }
    const Operand& value = instruction.operands[2];
    if (!reference || value.kind == OperandKind::Null) {
      c_.local_get(t1_);
      push(value);
      c_.i64_store(8);
      return;
    }
    push(value);
    c_.local_set(y_);
    emit_barrier_store(t0_, t1_, 8, value_may_be_stack(value));
  }

  // ---- goroutines and channels ---------------------------------------------------------------
  // After a channel call left its status (i32) on the stack: BLOCK suspends the goroutine
  // (host.suspend: an asyncify unwind; the resumed call returns what the partner handed over).
  // Leaves the i64 result: the resumed value, or `otherwise` (a call) when it did not block.
  void block_or(uint32_t otherwise) {
    c_.i32_const(USGC_WASM_CHAN_BLOCK);
    c_.op(op::kI32Eq);
    c_.if_result(ValueType::kI64);
    c_.call(kSuspend);
    c_.else_();
    if (otherwise == UINT32_MAX) {
      c_.local_get(t1_);
      c_.op(op::kI64ExtendI32U);
    } else {
      c_.call(otherwise);
    }
    c_.end();
  }

  void lower_send(const Instruction& instruction) {
    push(instruction.operands[0]);
    c_.op(op::kI32WrapI64);
    push(instruction.operands[1]);
    c_.call(kChanSend);
    c_.local_tee(t1_);
    block_or(UINT32_MAX);  // the status: DONE, CLOSED (also when resumed) or STACK_VALUE
    c_.op(op::kI32WrapI64);
    c_.local_tee(t1_);
    c_.if_();
    c_.local_get(t1_);
    c_.i32_const(USGC_WASM_CHAN_CLOSED);
    c_.op(op::kI32Eq);
    raise_if(runtime_error("send on closed channel"));
    raise(runtime_error("a STACK_LOCAL object sent on a channel (escape analysis bug)"));
    c_.end();
  }

  void lower_receive(const Instruction& instruction) {
    push(instruction.operands[0]);
    c_.op(op::kI32WrapI64);
    c_.call(kChanReceive);
    block_or(kTransfer);
    set_result(instruction);
  }

  void lower_close(const Instruction& instruction) {
    push(instruction.operands[0]);
    c_.op(op::kI32WrapI64);
    c_.local_tee(t0_);
    c_.op(op::kI32Eqz);
    raise_if(runtime_error("close of nil channel"));
    c_.local_get(t0_);
    c_.call(kChanClose);
    raise_if(runtime_error("close of closed channel"));
  }

  // `go f(...) captures(...)`: a goroutine record from the runtime, the inputs written into it,
  // then usgc_wasm_go_ready publishes the reference inputs and queues it (its body: go_entry).
  void lower_go(const Instruction& instruction) {
    if (instruction.callee_unknown) return lower_unknown(instruction);
    const uint32_t callee_index = instruction.callee_index;
    const ir::Function& callee = ir_.functions[callee_index];
    const uint32_t inputs = callee.parameter_count + callee.capture_count;
    if (inputs > USGC_WASM_GO_MAX_INPUTS) {
      error_ = escape::format_position(ir_.file_name, instruction.site_position()) +
               ": the WebAssembly target passes at most " +
               std::to_string(USGC_WASM_GO_MAX_INPUTS) + " inputs to a goroutine";
      return;
    }
    auto found = go_target_of_function_.find(callee_index);
    if (found == go_target_of_function_.end()) {
      found =
          go_target_of_function_.emplace(callee_index, static_cast<uint32_t>(go_targets_.size()))
              .first;
      go_targets_.push_back(callee_index);
      go_target_variants_.push_back(variant_of(callee_index, {}));
    }
    uint64_t references = 0;
    for (uint32_t i = 0; i < inputs; ++i)
      if (ir_.types.is_reference(callee.locals[i].type)) references |= uint64_t{1} << i;
    c_.i32_const(static_cast<int32_t>(found->second));
    c_.i32_const(static_cast<int32_t>(inputs));
    c_.i64_const(static_cast<int64_t>(references));
    c_.call(kGo);
    c_.local_tee(t0_);
    c_.op(op::kI32Eqz);
    raise_if(runtime_error("go: cannot start a goroutine: the WebAssembly memory cannot grow"));
    uint32_t input = 0;
    auto store_input = [&](const Operand& operand) {
      c_.local_get(t0_);
      push(operand);
      c_.i64_store(USGC_WASM_GOROUTINE_INPUTS + 8 * input++);
    };
    for (const Operand& operand : instruction.operands) store_input(operand);
    for (const Operand& operand : instruction.captures) store_input(operand);
    c_.local_get(t0_);
    c_.call(kGoReady);
    raise_if(runtime_error("a STACK_LOCAL object passed to a goroutine (escape analysis bug)"));
  }

  // `call unknown(...)` / `go unknown(...)`: the interpreter's unknown world
  // (runtime/unknown_world.c): reference arguments kept (published GLOBAL_SHARED), a reference
  // result the newest kept object of its type, an int/bool result 0; no goroutine starts.
  void lower_unknown(const Instruction& instruction) {
    auto keep = [&](const Operand& operand) {
      if (operand.kind != OperandKind::Local || !is_reference(operand.local_index)) return;
      push(operand);
      c_.op(op::kI32WrapI64);
      c_.call(kUnknownKeep);
      raise_if(runtime_error("a STACK_LOCAL object passed to unknown code (escape analysis bug)"));
    };
    for (const Operand& operand : instruction.operands) keep(operand);
    for (const Operand& operand : instruction.captures) keep(operand);
    if (instruction.opcode != Opcode::Call || instruction.result_name.empty()) return;
    const ir::TypeId type = ir_.functions[function_].locals[instruction.result_index].type;
    if (ir_.types.is_reference(type)) {
      c_.i32_const(static_cast<int32_t>(type.index));
      c_.call(kUnknownNewest);
      c_.op(op::kI64ExtendI32U);
    } else {
      c_.i64_const(0);
    }
    set_local(instruction.result_index);
  }

  void lower_global(const Instruction& instruction) {
    const uint32_t slot = global_slot_[instruction.global_index];
    if (!global_is_reference_[instruction.global_index]) {
      if (instruction.opcode == Opcode::LoadGlobal) {
        c_.global_get(slot);
        return set_result(instruction);
      }
      push(instruction.operands[0]);
      c_.global_set(slot);
      return;
    }
    if (instruction.opcode == Opcode::LoadGlobal) {
      c_.global_get(references_global_);
      c_.i64_load(8 * slot);
      return set_result(instruction);
    }
    c_.global_get(references_global_);
    c_.i32_const(static_cast<int32_t>(8 * slot));
    c_.op(op::kI32Add);
    push(instruction.operands[0]);
    c_.op(op::kI32WrapI64);
    c_.call(kGlobalStore);
    raise_if(runtime_error("a STACK_LOCAL object stored into a global (escape analysis bug)"));
  }

  const ir::Module& ir_;
  const escape::EscapeAnalysis& analysis_;
  const interpreter::ProgramLayout& layout_;
  const LowerOptions& options_;
  ModuleWriter w_;
  std::vector<std::vector<bool>> may_stack_;
  std::vector<Variant> variants_;
  std::map<std::pair<uint32_t, std::vector<uint32_t>>, size_t> variant_index_;
  std::vector<bool> global_is_reference_;
  std::vector<uint32_t> global_slot_;  // wasm global (scalar) or slot index (reference)
  uint32_t reference_globals_ = 0;
  uint32_t ssp_global_ = 0, references_global_ = 0, counters_global_ = 0;
  uint32_t init_function_ = 0, go_entry_function_ = 0;
  std::map<uint32_t, uint32_t> go_target_of_function_;  // function index -> go target
  std::vector<uint32_t> go_targets_;                    // go target -> function index
  std::vector<size_t> go_target_variants_;              // go target -> variant
  std::vector<std::string> errors_;
  std::string error_;

  // The variant being lowered.
  Code c_;
  uint32_t function_ = 0, block_ = 0, block_count_ = 0;
  size_t instruction_index_ = 0;
  const Instruction* instruction_ = nullptr;
  const interpreter::FunctionLayout* function_layout_ = nullptr;
  const std::vector<uint32_t>* caller_frame_sites_ = nullptr;
  std::vector<uint32_t> scalar_local_;
  uint32_t fp_ = 0, pc_ = 0, t0_ = 0, t1_ = 0, x_ = 0, y_ = 0;
  uint32_t frame_bytes_ = 0;
  uint32_t extra_depth_ = 0;
  uint32_t stub_begin_ = 0, stub_slow_ = 0, slow_begin_ = 0;
};

}  // namespace

std::optional<std::vector<uint8_t>> lower_module(const ir::Module& module,
                                                 const escape::EscapeAnalysis& analysis,
                                                 const LowerOptions& options, std::string* error) {
  std::optional<interpreter::ProgramLayout> layout =
      interpreter::ProgramLayout::build(module, analysis, error);
  if (!layout) return std::nullopt;
  Lowering lowering(module, analysis, *layout, options);
  return lowering.run(error);
}

}  // namespace usgc::jitgen::wasm
