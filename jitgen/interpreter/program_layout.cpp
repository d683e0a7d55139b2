// jitgen/interpreter/program_layout.cpp — site types, object words and local slots
// (program_layout.hpp).
#include "jitgen/interpreter/program_layout.hpp"

#include <algorithm>
#include <cerrno>
#include <map>
#include <mutex>

namespace usgc::jitgen::interpreter {
namespace {

constexpr uint64_t kWordBytes = 8;
// Bounded arrays above this many elements are laid out as dynamic arrays: a usgc object type
// of that size would be refused, and such an array is no stack candidate in any real frame.
constexpr uint64_t kMaximumBoundedLength = uint64_t{1} << 24;
// Bounded arrays up to this many elements are object types with one offset per reference element
// and a check word; longer ones use usgc's array kinds (pointer or scalar array) with their fixed
// length: registering them is O(1), not N offsets (and an N-number key) per site, at the price of
// the checked mode's stamp for those sites only.
constexpr uint64_t kMaximumInlineLayoutLength = 1024;

// Process-wide: the usgc type table outlives usgc_shutdown, so a type registered for one run
// serves every later run with the same name and layout.
std::mutex g_interned_types_lock;
std::map<std::string, usgc_type_id> g_interned_types;

usgc_type_id intern_type(const std::string& name, usgc_type_kind kind, size_t size,
                         const std::vector<size_t>& pointer_offsets, std::string* error) {
  std::string key = name + "|" + std::to_string(kind) + "|" + std::to_string(size);
  for (size_t offset : pointer_offsets) key += "," + std::to_string(offset);
  std::lock_guard<std::mutex> guard(g_interned_types_lock);
  auto found = g_interned_types.find(key);
  if (found != g_interned_types.end()) return found->second;
  usgc_type_info info = {name.c_str(), kind, size, pointer_offsets.data(), pointer_offsets.size()};
  usgc_type_id type = usgc_register_type(&info);
  if (type == 0) {
    *error = "cannot register the usgc type of " + name + ": " +
             (errno == ENOSPC ? "the type table is full" : usgc_last_error());
    return 0;
  }
  g_interned_types.emplace(std::move(key), type);
  return type;
}

}  // namespace

std::optional<ProgramLayout> ProgramLayout::build(const ir::Module& module,
                                                  const escape::EscapeAnalysis& analysis,
                                                  std::string* error, bool check_words) {
  const ir::TypeTable& types = module.types;
  ProgramLayout layout;

  std::map<std::string, uint32_t, std::less<>> struct_by_name;
  for (uint32_t s = 0; s < module.structs.size(); ++s) {
    struct_by_name.emplace(module.structs[s].name, s);
    StructLayout struct_layout;
    for (const ir::Field& field : module.structs[s].fields)
      struct_layout.field_is_reference.push_back(types.is_reference(field.type));
    layout.structs_.push_back(std::move(struct_layout));
  }
  layout.struct_of_type_.assign(types.size(), UINT32_MAX);
  for (uint32_t t = 0; t < types.size(); ++t) {
    const ir::TypeNode& node = types.node(ir::TypeId{t});
    if (node.kind != ir::TypeKind::Pointer) continue;
    auto found = struct_by_name.find(types.node(node.element).struct_name);
    if (found != struct_by_name.end()) layout.struct_of_type_[t] = found->second;
  }

  for (const ir::Function& function : module.functions) {
    FunctionLayout function_layout;
    for (const ir::Local& local : function.locals) {
      bool reference = types.is_reference(local.type);
      function_layout.local_is_reference.push_back(reference);
      function_layout.slot_of_local.push_back(reference ? function_layout.reference_slots++
                                                        : function_layout.scalar_slots++);
    }
    layout.functions_.push_back(std::move(function_layout));
    auto& blocks = layout.site_of_instruction_.emplace_back();
    for (const ir::Block& block : function.blocks)
      blocks.emplace_back(block.instructions.size(), UINT32_MAX);
  }

  layout.sites_.resize(analysis.sites.size());
  layout.site_of_type_.assign(USGC_MAX_TYPES + 1, -1);
  for (const escape::SiteDecision& decision : analysis.sites) {
    const ir::Instruction& instruction = module.functions[decision.function_index]
                                             .blocks[decision.block_index]
                                             .instructions[decision.instruction_index];
    const ir::Function& function = module.functions[decision.function_index];
    SiteLayout& site = layout.sites_[decision.site_index];
    site.site_index = decision.site_index;
    site.function_index = decision.function_index;
    site.decided = decision.ownership;
    site.value_type = function.locals[instruction.result_index].type;
    site.description =
        decision.allocation + " at " + escape::format_position(module.file_name, decision.position);
    layout.site_of_instruction_[decision.function_index][decision.block_index]
                               [decision.instruction_index] = decision.site_index;

    const std::string name = decision.allocation.substr(decision.allocation.find(' ') + 1) + "#" +
                             std::to_string(decision.site_index);
    std::vector<size_t> offsets;
    usgc_type_kind kind = USGC_KIND_OBJECT;
    size_t size = 0;
    const ir::TypeNode& allocated = types.node(instruction.allocated_type);
    switch (instruction.opcode) {
      case ir::Opcode::New:
        if (allocated.kind == ir::TypeKind::Struct) {
          site.shape = SiteShape::kStruct;
          site.struct_index = layout.struct_of_type_[site.value_type.index];
          const StructLayout& fields = layout.structs_[site.struct_index];
          for (size_t k = 0; k < fields.field_is_reference.size(); ++k)
            if (fields.field_is_reference[k]) offsets.push_back(k * kWordBytes);
          site.check_word_offset =
              static_cast<uint32_t>(fields.field_is_reference.size() * kWordBytes);
          size = site.check_word_offset + kWordBytes;
          break;
        }
        if (allocated.length > kMaximumBoundedLength) {  // not a silent zero-length array
          *error = escape::format_position(module.file_name, decision.position) + ": new [" +
                   std::to_string(allocated.length) + "]" + types.spelling(allocated.element) +
                   ": more than " + std::to_string(kMaximumBoundedLength) +
                   " elements (the limit of a fixed-size array; use newarray)";
          return std::nullopt;
        }
        site.bounded_length = allocated.length;  // `new [N]T`
        site.element_is_reference = types.is_reference(allocated.element);
        site.shape = SiteShape::kBoundedArray;
        break;
      case ir::Opcode::NewArray: {
        const ir::Operand& length = instruction.operands[0];
        site.element_is_reference = types.is_reference(instruction.allocated_type);
        bool bounded = length.kind == ir::OperandKind::Integer && length.integer_value >= 0 &&
                       static_cast<uint64_t>(length.integer_value) <= kMaximumBoundedLength;
        site.shape = bounded ? SiteShape::kBoundedArray : SiteShape::kDynamicArray;
        if (bounded) site.bounded_length = static_cast<uint64_t>(length.integer_value);
        break;
      }
      case ir::Opcode::MakeChan:
        site.shape = SiteShape::kChannel;
        site.element_is_reference = types.is_reference(instruction.allocated_type);
        site.check_word_offset = kWordBytes;
        size = 2 * kWordBytes;
        break;
      default:
        break;
    }
    if (site.shape == SiteShape::kBoundedArray &&
        site.bounded_length > kMaximumInlineLayoutLength) {
      kind = site.element_is_reference ? USGC_KIND_POINTER_ARRAY : USGC_KIND_SCALAR_ARRAY;
      size = kWordBytes;
      site.check_word_offset = 0;
      site.fixed_array_length = site.bounded_length;
    } else if (site.shape == SiteShape::kBoundedArray) {
      if (site.element_is_reference)
        for (uint64_t i = 0; i < site.bounded_length; ++i) offsets.push_back((1 + i) * kWordBytes);
      site.check_word_offset = static_cast<uint32_t>((1 + site.bounded_length) * kWordBytes);
      size = site.check_word_offset + kWordBytes;
    } else if (site.shape == SiteShape::kDynamicArray) {
      kind = site.element_is_reference ? USGC_KIND_POINTER_ARRAY : USGC_KIND_SCALAR_ARRAY;
      size = kWordBytes;
      site.check_word_offset = 0;
    }
    if (!check_words && site.check_word_offset != 0 && site.shape != SiteShape::kChannel) {
      size = std::max<size_t>(site.check_word_offset, kWordBytes);  // an empty struct: one word
      site.check_word_offset = 0;
    }
    site.type = intern_type(name, kind, size, offsets, error);
    if (site.type == 0) return std::nullopt;
    layout.site_of_type_[site.type] = static_cast<int32_t>(decision.site_index);
  }

  layout.caller_frame_list_of_instruction_ = layout.site_of_instruction_;
  for (auto& blocks : layout.caller_frame_list_of_instruction_)
    for (auto& instructions : blocks) instructions.assign(instructions.size(), UINT32_MAX);
  for (const escape::SiteDecision& decision : analysis.sites) {
    for (const escape::CallerFrameCall& call : decision.caller_frame_calls) {
      uint32_t& list =
          layout.caller_frame_list_of_instruction_[call.function_index][call.block_index]
                                                  [call.instruction_index];
      if (list == UINT32_MAX) {
        list = static_cast<uint32_t>(layout.caller_frame_lists_.size());
        layout.caller_frame_lists_.emplace_back();
      }
      layout.caller_frame_lists_[list].push_back(decision.site_index);
    }
  }
  for (std::vector<uint32_t>& sites : layout.caller_frame_lists_)
    std::sort(sites.begin(), sites.end());
  return layout;
}

}  // namespace usgc::jitgen::interpreter
