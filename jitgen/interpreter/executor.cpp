// jitgen/interpreter/executor.cpp — the instruction loop (executor.hpp): allocation, loads and
// stores, globals, arithmetic, and the entry function's run. Calls, spawns, unknown code and
// channels are in executor_calls.cpp; the class is in executor_internal.hpp. Keeps the rooting rule
// and the call-depth guard named in executor.hpp; every check of checked mode is a call into
// decision_checks.hpp made before the operation it guards.
#include <algorithm>
#include <cstring>

#include "jitgen/interpreter/executor_internal.hpp"

namespace usgc::jitgen::interpreter {
namespace detail {

Executor::~Executor() {
  flush_steps();
  for (size_t site = 0; site < allocations_.size(); ++site)
    if (allocations_[site] != 0)
      run_.allocations_per_site[site].fetch_add(allocations_[site], std::memory_order_relaxed);
  if (substitutes_ != 0) run_.stack_substitutes.fetch_add(substitutes_, std::memory_order_relaxed);
  for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
    if (class_counts_[c] != 0)
      run_.allocations_per_class[c].fetch_add(class_counts_[c], std::memory_order_relaxed);
  if (caller_frame_allocations_ != 0)
    run_.caller_frame_allocations.fetch_add(caller_frame_allocations_, std::memory_order_relaxed);
}

void* Executor::allocate(Frame& frame, const Instruction& instruction, uint32_t site_index,
                         uint64_t length) {
  stress_collection();  // before: every reference is in a slot now (the rooting rule)
  const SiteLayout& site = layout_.site(site_index);
  const bool in_caller_frame = frame.caller_frame_sites != nullptr &&
                               std::binary_search(frame.caller_frame_sites->begin(),
                                                  frame.caller_frame_sites->end(), site_index);
  const OwnershipClass decided = in_caller_frame ? OwnershipClass::StackLocal : site.decided;
  usgc_ownership ownership = usgc_class_of(decided);
  void* object = site.shape == SiteShape::kDynamicArray
                     ? usgc_alloc_array(site.type, length, ownership)
                 : site.fixed_array_length != 0
                     ? usgc_alloc_array(site.type, site.fixed_array_length, ownership)
                     : usgc_alloc(site.type, ownership);
  if (object == nullptr) {
    runtime_error(instruction, std::string("out of memory: ") + usgc_last_error());
    return nullptr;
  }
  if (site.shape == SiteShape::kBoundedArray) *object_word(object, 0) = site.bounded_length;
  if (decided == OwnershipClass::StackLocal) {
    if (site.check_word_offset != 0)
      *reinterpret_cast<uint64_t*>(static_cast<char*>(object) + site.check_word_offset) =
          in_caller_frame ? frame_stamp(frame.depth - 1, frame.caller_serial)
                          : frame_stamp(frame.depth, frame.serial);
    if (usgc_ownership_of(object) != USGC_STACK_LOCAL) ++substitutes_;
  }
  ++allocations_[site_index];
  ++class_counts_[static_cast<size_t>(decided)];
  caller_frame_allocations_ += in_caller_frame;
  return object;
}

Flow Executor::execute_allocation(Frame& frame, uint32_t block, uint32_t index,
                                  const Instruction& instruction) {
  uint32_t site_index = layout_.site_at(frame.function_index, block, index);
  const SiteLayout& site = layout_.site(site_index);
  uint64_t length = 0;
  if (instruction.opcode != Opcode::New) {
    int64_t size = frame.scalar(instruction.operands[0]);
    if (size < 0)
      return runtime_error(instruction, std::string(instruction.opcode == Opcode::NewArray
                                                        ? "newarray: negative length "
                                                        : "makechan: negative capacity ") +
                                            std::to_string(size));
    length = static_cast<uint64_t>(size);
  }
  void* object = allocate(frame, instruction, site_index, length);
  if (object == nullptr) return Flow::kStopped;
  if (site.shape == SiteShape::kChannel) {
    usgc_chan* channel = site.element_is_reference ? usgc_chan_make_refs(length)
                                                   : usgc_chan_make(sizeof(int64_t), length);
    if (channel == nullptr) return runtime_error(instruction, "makechan: out of memory");
    run_.channels.add(channel);
    *static_cast<usgc_chan**>(object) = channel;
  }
  frame.write(instruction.result_index, reinterpret_cast<uint64_t>(object));
  return Flow::kReturned;
}

uint64_t* Executor::locate(Frame& frame, const Instruction& instruction, bool* is_reference,
                           Flow* flow) {
  *flow = Flow::kReturned;
  const Operand& base_operand = instruction.operands[0];
  void* base = frame.reference(base_operand);
  ir::TypeId base_type = local_type(frame, base_operand);
  bool field = instruction.opcode == Opcode::LoadField || instruction.opcode == Opcode::StoreField;
  uint64_t index = 0;
  if (field) {
    *is_reference = layout_.struct_layout(layout_.struct_of_pointer(base_type))
                        .field_is_reference[instruction.field_index];
    if (base == nullptr) {
      *flow =
          runtime_error(instruction, "nil pointer dereference (field " + instruction.field_name +
                                         " of %" + base_operand.local_name + ")");
      return nullptr;
    }
    index = instruction.field_index;
  } else {
    *is_reference = is_reference_type(module_.types.node(base_type).element);
    int64_t position = frame.scalar(instruction.operands[1]);
    uint64_t length = base == nullptr ? 0 : array_length(base);
    if (position < 0 || static_cast<uint64_t>(position) >= length) {
      *flow = runtime_error(
          instruction, "index out of range [" + std::to_string(position) + "] with length " +
                           std::to_string(length) +
                           (base == nullptr ? " (%" + base_operand.local_name + " is null)" : ""));
      return nullptr;
    }
    index = 1 + static_cast<uint64_t>(position);
  }
  if (checked()) {
    if (auto violation = check_access(context(frame, instruction), base)) {
      *flow = violated(std::move(*violation));
      return nullptr;
    }
  }
  return object_word(base, index);
}

Flow Executor::execute_load(Frame& frame, const Instruction& instruction) {
  bool reference = false;
  Flow flow;
  uint64_t* word = locate(frame, instruction, &reference, &flow);
  if (word == nullptr) return flow;
  void* base = frame.reference(instruction.operands[0]);
  uint64_t value =
      reference ? reinterpret_cast<uint64_t>(usgc_read(base, reinterpret_cast<void* const*>(word)))
                : __atomic_load_n(word, __ATOMIC_RELAXED);
  frame.write(instruction.result_index, value);
  return Flow::kReturned;
}

Flow Executor::execute_store(Frame& frame, const Instruction& instruction) {
  bool reference = false;
  Flow flow;
  uint64_t* word = locate(frame, instruction, &reference, &flow);
  if (word == nullptr) return flow;
  void* base = frame.reference(instruction.operands[0]);
  const Operand& value_operand = instruction.operands.back();
  if (!reference) {
    __atomic_store_n(word, frame.read(value_operand), __ATOMIC_RELAXED);
    return Flow::kReturned;
  }
  void* value = frame.reference(value_operand);
  if (checked() && value != nullptr)
    if (auto violation = check_access(context(frame, instruction), value))
      return violated(std::move(*violation));
  if (checked_escapes())
    if (auto violation = check_store(context(frame, instruction), base, value))
      return violated(std::move(*violation));
  usgc_write(base, reinterpret_cast<void**>(word), value);
  return Flow::kReturned;
}

Flow Executor::execute_length(Frame& frame, const Instruction& instruction) {
  void* base = frame.reference(instruction.operands[0]);
  if (base != nullptr && checked())
    if (auto violation = check_access(context(frame, instruction), base))
      return violated(std::move(*violation));
  frame.write(instruction.result_index, base == nullptr ? 0 : array_length(base));
  return Flow::kReturned;
}

Flow Executor::execute_global(Frame& frame, const Instruction& instruction) {
  uint32_t slot = run_.slot_of_global[instruction.global_index];
  bool reference = run_.global_is_reference[instruction.global_index];
  if (instruction.opcode == Opcode::LoadGlobal) {
    uint64_t value =
        reference
            ? reinterpret_cast<uint64_t>(
                  __atomic_load_n(&run_.reference_globals[slot], __ATOMIC_ACQUIRE))
            : static_cast<uint64_t>(run_.scalar_globals[slot].load(std::memory_order_relaxed));
    frame.write(instruction.result_index, value);
    return Flow::kReturned;
  }
  const Operand& value_operand = instruction.operands[0];
  if (!reference) {
    run_.scalar_globals[slot].store(frame.scalar(value_operand), std::memory_order_relaxed);
    return Flow::kReturned;
  }
  void* value = frame.reference(value_operand);
  if (check_value_published(frame, instruction, value, OwnershipClass::GlobalShared,
                            "publish/global", "it is stored into global @",
                            instruction.global_name) == Flow::kStopped)
    return Flow::kStopped;
  usgc_global_store(&run_.reference_globals[slot], value);
  return Flow::kReturned;
}

Flow Executor::execute_binary(Frame& frame, const Instruction& instruction) {
  int64_t a = frame.scalar(instruction.operands[0]);
  int64_t b = frame.scalar(instruction.operands[1]);
  auto ua = static_cast<uint64_t>(a), ub = static_cast<uint64_t>(b);
  uint64_t result = 0;
  switch (instruction.binary_operator) {
    case ir::BinaryOperator::Add:
      result = ua + ub;
      break;
    case ir::BinaryOperator::Sub:
      result = ua - ub;
      break;
    case ir::BinaryOperator::Mul:
      result = ua * ub;
      break;
    case ir::BinaryOperator::Div:
    case ir::BinaryOperator::Rem: {
      if (b == 0) return runtime_error(instruction, "integer divide by zero");
      bool div = instruction.binary_operator == ir::BinaryOperator::Div;
      if (b == -1) {  // Go: MinInt64 / -1 == MinInt64, and x % -1 == 0
        result = div ? 0 - ua : 0;
      } else {
        result = static_cast<uint64_t>(div ? a / b : a % b);
      }
      break;
    }
    case ir::BinaryOperator::Lt:
      result = a < b;
      break;
    case ir::BinaryOperator::Le:
      result = a <= b;
      break;
    case ir::BinaryOperator::Gt:
      result = a > b;
      break;
    case ir::BinaryOperator::Ge:
      result = a >= b;
      break;
    case ir::BinaryOperator::Eq:
      result = ua == ub;
      break;
    case ir::BinaryOperator::Ne:
      result = ua != ub;
      break;
    case ir::BinaryOperator::And:
      result = (ua & ub) & 1;
      break;
    case ir::BinaryOperator::Or:
      result = (ua | ub) & 1;
      break;
  }
  frame.write(instruction.result_index, result);
  return Flow::kReturned;
}

Flow Executor::run_blocks(Frame& frame, uint64_t* result) {
  uint32_t block = 0;
  for (;;) {
    const std::vector<Instruction>& instructions = frame.function.blocks[block].instructions;
    uint32_t next = block;
    for (uint32_t index = 0; index < instructions.size(); ++index) {
      const Instruction& instruction = instructions[index];
      ++local_steps_;
      Flow flow = Flow::kReturned;
      switch (instruction.opcode) {
        case Opcode::Copy:
          frame.write(instruction.result_index, frame.read(instruction.operands[0]));
          break;
        case Opcode::Binary:
          flow = execute_binary(frame, instruction);
          break;
        case Opcode::New:
        case Opcode::NewArray:
        case Opcode::MakeChan:
          flow = execute_allocation(frame, block, index, instruction);
          break;
        case Opcode::LoadField:
        case Opcode::LoadIndex:
          flow = execute_load(frame, instruction);
          break;
        case Opcode::StoreField:
        case Opcode::StoreIndex:
          flow = execute_store(frame, instruction);
          break;
        case Opcode::Length:
          flow = execute_length(frame, instruction);
          break;
        case Opcode::LoadGlobal:
        case Opcode::StoreGlobal:
          flow = execute_global(frame, instruction);
          break;
        case Opcode::Call:
          flow = execute_call(frame, block, index, instruction);
          break;
        case Opcode::Go:
          flow = execute_go(frame, instruction);
          break;
        case Opcode::Send:
          flow = execute_send(frame, instruction);
          break;
        case Opcode::Receive:
          flow = execute_receive(frame, instruction);
          break;
        case Opcode::Close:
          flow = execute_close(frame, instruction);
          break;
        case Opcode::Branch:
          next = instruction.target_blocks[frame.scalar(instruction.operands[0]) != 0 ? 0 : 1];
          break;
        case Opcode::Jump:
          next = instruction.target_blocks[0];
          break;
        case Opcode::Return: {
          uint64_t value = instruction.operands.empty() ? 0 : frame.read(instruction.operands[0]);
          if (checked_escapes() && !instruction.operands.empty() &&
              frame.is_reference(instruction.operands[0])) {
            if (auto violation = check_return(context(frame, instruction),
                                              reinterpret_cast<void*>(value), frame.depth))
              return violated(std::move(*violation));
          }
          *result = value;
          return Flow::kReturned;
        }
      }
      if (flow == Flow::kStopped) return flow;
    }
    if (next <= block && !checkpoint()) return Flow::kStopped;  // a back edge
    block = next;
  }
}

}  // namespace detail

void run_entry_function(RunState& run) {
  const ir::Function* entry = run.module.find_function(run.options.entry);
  uint32_t entry_index = static_cast<uint32_t>(entry - run.module.functions.data());
  uint64_t result = 0;
  detail::Flow flow;
  {
    detail::Executor executor(run);
    flow = executor.call_function(
        entry_index, 0,
        [&](detail::Frame& frame) {
          for (uint32_t i = 0; i < entry->parameter_count; ++i)
            if (!frame.layout.local_is_reference[i] && i < run.options.arguments.size())
              frame.write(i, static_cast<uint64_t>(run.options.arguments[i]));
        },
        &result);
  }
  if (flow == detail::Flow::kReturned) {
    if (entry->result_type.valid() && !run.module.types.is_reference(entry->result_type)) {
      std::lock_guard<std::mutex> guard(run.outcome_lock);
      run.returned_value = static_cast<int64_t>(result);
    }
    run.stop(RunStatus::kCompleted);
  }
}

}  // namespace usgc::jitgen::interpreter
