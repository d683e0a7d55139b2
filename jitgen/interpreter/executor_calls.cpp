// jitgen/interpreter/executor_calls.cpp — the executor's calls, spawns (`go`), calls into code the
// analysis cannot see, and channel operations (the class: executor_internal.hpp). Every reference
// that crosses to another goroutine or to unknown code is checked in checked mode before it
// crosses (check_inputs, the send's publish check); a spawn's inputs travel in a pack that
// usgc_go_object keeps as the new goroutine's root until goroutine_entry has copied them into its
// first frame (the rooting rule).
#include <cerrno>
#include <cstring>
#include <optional>

#include "jitgen/interpreter/executor_internal.hpp"
#include "jitgen/interpreter/unknown_world.hpp"

namespace usgc::jitgen::interpreter {
namespace detail {

Flow Executor::check_inputs(Frame& frame, const Instruction& instruction, OwnershipClass required,
                            const char* rule) {
  std::optional<CheckViolation> found;
  for_each_input(instruction, [&](uint32_t, const Operand& operand, bool capture) {
    if (found || !frame.is_reference(operand)) return;
    void* value = frame.reference(operand);
    if (value == nullptr) return;
    CheckContext check = context(frame, instruction);
    if ((found = check_access(check, value)) || !checked_escapes()) return;
    std::string what =
        instruction.callee_unknown
            ? "it is passed as %" + operand.local_name + " to code the analysis cannot see"
            : std::string("it is ") + (capture ? "captured" : "passed") + " as %" +
                  operand.local_name + " by the goroutine spawned here (running " +
                  instruction.callee_name + ")";
    found = check_publish(check, value, required, rule, what);
  });
  return found ? violated(std::move(*found)) : Flow::kReturned;
}

Flow Executor::execute_call(Frame& frame, uint32_t block, uint32_t index,
                            const Instruction& instruction) {
  if (instruction.callee_unknown) return execute_unknown(frame, instruction);
  uint64_t result = 0;
  Flow flow = call_function(
      instruction.callee_index, frame.depth + 1,
      [&](Frame& callee) {
        for_each_input(instruction, [&](uint32_t input, const Operand& operand, bool) {
          callee.write(input, frame.read(operand));
        });
      },
      &result, &frame, layout_.caller_frame_sites(frame.function_index, block, index));
  if (flow == Flow::kStopped) return flow;
  if (!instruction.result_name.empty()) frame.write(instruction.result_index, result);
  return Flow::kReturned;
}

Flow Executor::execute_unknown(Frame& frame, const Instruction& instruction) {
  if (checked() && check_inputs(frame, instruction, OwnershipClass::GlobalShared,
                                "publish/unknown") == Flow::kStopped)
    return Flow::kStopped;
  for_each_input(instruction, [&](uint32_t, const Operand& operand, bool) {
    if (frame.is_reference(operand)) keep_in_unknown_world(run_, frame.reference(operand));
  });
  if (instruction.opcode == Opcode::Call && !instruction.result_name.empty()) {
    ir::TypeId type = frame.function.locals[instruction.result_index].type;
    frame.write(instruction.result_index,
                is_reference_type(type)
                    ? reinterpret_cast<uint64_t>(newest_in_unknown_world(run_, type))
                    : 0);
  }
  return Flow::kReturned;
}

Flow Executor::execute_go(Frame& frame, const Instruction& instruction) {
  if (instruction.callee_unknown) return execute_unknown(frame, instruction);
  if (checked() && check_inputs(frame, instruction, OwnershipClass::GoroutineShared,
                                "publish/spawn") == Flow::kStopped)
    return Flow::kStopped;
  uint64_t reference_inputs = 0, scalar_inputs = 0;
  for_each_input(instruction, [&](uint32_t, const Operand& operand, bool) {
    ++(frame.is_reference(operand) || operand.kind == OperandKind::Null ? reference_inputs
                                                                        : scalar_inputs);
  });
  void*& pack = frame.scratch(0);
  void*& words = frame.scratch(1);
  pack = usgc_alloc_array(USGC_TYPE_REF_ARRAY, 1 + reference_inputs, USGC_GOROUTINE_SHARED);
  if (pack == nullptr)
    return runtime_error(instruction, std::string("go: out of memory: ") + usgc_last_error());
  words = usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 8 * (2 + scalar_inputs), USGC_GOROUTINE_SHARED);
  if (words == nullptr)
    return runtime_error(instruction, std::string("go: out of memory: ") + usgc_last_error());
  auto* data = static_cast<uint64_t*>(usgc_array_data(words));
  data[0] = reinterpret_cast<uint64_t>(&run_);
  data[1] = instruction.callee_index;
  usgc_array_write(pack, 0, words);
  uint64_t next_reference = 1, next_scalar = 2;
  for_each_input(instruction, [&](uint32_t, const Operand& operand, bool) {
    if (frame.is_reference(operand) || operand.kind == OperandKind::Null)
      usgc_array_write(pack, next_reference++, frame.reference(operand));
    else
      data[next_scalar++] = frame.read(operand);
  });
  run_.live_goroutines.fetch_add(1, std::memory_order_relaxed);
  usgc_waitgroup_add(&run_.goroutines, 1);
  int status = usgc_go_object(goroutine_entry, pack);
  pack = nullptr;
  words = nullptr;
  if (status != 0) {
    run_.live_goroutines.fetch_sub(1, std::memory_order_relaxed);
    usgc_waitgroup_done(&run_.goroutines);
    return runtime_error(instruction,
                         std::string("go: cannot start a goroutine: ") + std::strerror(status));
  }
  run_.goroutines_started.fetch_add(1, std::memory_order_relaxed);
  return Flow::kReturned;
}

Flow Executor::channel_failure(const Instruction& instruction, ChannelOutcome outcome, int error) {
  if (outcome == ChannelOutcome::kStopped) return Flow::kStopped;
  if (outcome == ChannelOutcome::kClosed)
    return runtime_error(instruction, "send on closed channel");
  return runtime_error(instruction,
                       std::string("channel operation failed: ") + std::strerror(error));
}

Flow Executor::execute_send(Frame& frame, const Instruction& instruction) {
  void* channel = frame.reference(instruction.operands[0]);
  const Operand& value_operand = instruction.operands[1];
  bool reference =
      is_reference_type(module_.types.node(local_type(frame, instruction.operands[0])).element);
  if (checked() && channel != nullptr)
    if (auto violation = check_access(context(frame, instruction), channel))
      return violated(std::move(*violation));
  int64_t scalar_value = 0;
  void* null_value = nullptr;
  const void* element = nullptr;
  if (reference) {
    void* value = frame.reference(value_operand);
    if (check_value_published(frame, instruction, value, OwnershipClass::GoroutineShared,
                              "publish/send", "it is sent on the channel %",
                              instruction.operands[0].local_name) == Flow::kStopped)
      return Flow::kStopped;
    // A root slot (channel_ops.hpp); a null constant needs none.
    element = value_operand.kind == OperandKind::Local
                  ? frame.slot_address(value_operand.local_index)
                  : &null_value;
  } else {
    scalar_value = frame.scalar(value_operand);
    element = &scalar_value;
  }
  int error = 0;
  ChannelOutcome outcome = channel_send(run_, channel_of_object(channel), element, &error);
  return outcome == ChannelOutcome::kDone ? Flow::kReturned
                                          : channel_failure(instruction, outcome, error);
}

Flow Executor::execute_receive(Frame& frame, const Instruction& instruction) {
  void* channel = frame.reference(instruction.operands[0]);
  if (checked() && channel != nullptr)
    if (auto violation = check_access(context(frame, instruction), channel))
      return violated(std::move(*violation));
  bool ok = false;
  int error = 0;
  ChannelOutcome outcome = channel_receive(
      run_, channel_of_object(channel), frame.slot_address(instruction.result_index), &ok, &error);
  return outcome == ChannelOutcome::kDone ? Flow::kReturned
                                          : channel_failure(instruction, outcome, error);
}

Flow Executor::execute_close(Frame& frame, const Instruction& instruction) {
  void* channel = frame.reference(instruction.operands[0]);
  if (channel == nullptr) return runtime_error(instruction, "close of nil channel");
  if (checked())
    if (auto violation = check_access(context(frame, instruction), channel))
      return violated(std::move(*violation));
  int status = usgc_chan_close(channel_of_object(channel));
  if (status == EPIPE) return runtime_error(instruction, "close of closed channel");
  run_.channel_progress.fetch_add(1, std::memory_order_relaxed);
  return Flow::kReturned;
}

}  // namespace detail

void goroutine_entry(void* pack) {
  void* words = usgc_array_read(pack, 0);
  const auto* data = static_cast<const uint64_t*>(usgc_array_data(words));
  RunState& run = *reinterpret_cast<RunState*>(data[0]);
  const auto callee = static_cast<uint32_t>(data[1]);
  {
    detail::Executor executor(run);
    uint64_t ignored = 0;
    executor.call_function(
        callee, 0,
        [&](detail::Frame& frame) {
          uint64_t next_reference = 1, next_scalar = 2;
          const uint32_t inputs = frame.function.parameter_count + frame.function.capture_count;
          for (uint32_t input = 0; input < inputs; ++input)
            frame.write(input,
                        frame.layout.local_is_reference[input]
                            ? reinterpret_cast<uint64_t>(usgc_array_read(pack, next_reference++))
                            : data[next_scalar++]);
        },
        &ignored);
  }
  run.live_goroutines.fetch_sub(1, std::memory_order_relaxed);
  usgc_waitgroup_done(&run.goroutines);
}

}  // namespace usgc::jitgen::interpreter
