// jitgen/interpreter/executor_internal.hpp — the Executor class and its Frame, shared by the two
// files that define its members: executor.cpp (the instruction loop, allocation, loads, stores,
// globals, arithmetic) and executor_calls.cpp (calls, spawns, unknown code, channels). Internal to
// the interpreter: include executor.hpp elsewhere.
//
// Invariants (executor.hpp names them): the rooting rule — a reference read out of a slot is used
// before the next usgc call that may collect, or is in a slot again by then; every check of
// checked mode is a call into decision_checks.hpp made before the operation it guards; a Frame is
// linked into the goroutine's shadow stack for exactly the lifetime of its call_function
// activation; the executor polls at every call and every back edge.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "jitgen/interpreter/channel_ops.hpp"
#include "jitgen/interpreter/executor.hpp"
#include "usgc/safepoint.h"

namespace usgc::jitgen::interpreter::detail {

using escape::OwnershipClass;
using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;

constexpr uint32_t kScratchSlots = 2;  // references the executor itself holds (spawn packs)
constexpr uint32_t kInlineSlots = 16;
constexpr size_t kStackReserveBytes = 64 * 1024;
constexpr uint64_t kStepFlush = 4096;  // local steps added to the run's count in batches

enum class Flow : uint8_t { kReturned, kStopped };

// One activation: the locals of `function` (executor.hpp, "Frames"). Not movable: its usgc_frame
// is linked into the goroutine's shadow stack while it runs.
struct Frame {
  Frame(const ir::Function& function_in, const FunctionLayout& layout_in, uint32_t index,
        uint32_t depth_in, uint32_t serial_in, const Frame* caller,
        const std::vector<uint32_t>* caller_frame_sites_in)
      : function(function_in),
        layout(layout_in),
        function_index(index),
        depth(depth_in),
        serial(serial_in),
        caller_serial(caller != nullptr ? caller->serial : 0),
        caller_frame_sites(caller_frame_sites_in) {
    uint32_t reference_count = layout.reference_slots + kScratchSlots;
    if (reference_count <= kInlineSlots) {
      references = inline_references;
    } else {
      heap_references = std::make_unique<void*[]>(reference_count);
      references = heap_references.get();
    }
    if (layout.scalar_slots <= kInlineSlots) {
      scalars = inline_scalars;
    } else {
      heap_scalars = std::make_unique<int64_t[]>(layout.scalar_slots);
      scalars = heap_scalars.get();
    }
    std::memset(references, 0, reference_count * sizeof(void*));
    std::memset(scalars, 0, layout.scalar_slots * sizeof(int64_t));
    gc_frame.slots = references;
    gc_frame.count = reference_count;
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  uint64_t read(const Operand& operand) const {
    switch (operand.kind) {
      case OperandKind::Local: {
        uint32_t slot = layout.slot_of_local[operand.local_index];
        return layout.local_is_reference[operand.local_index]
                   ? reinterpret_cast<uint64_t>(references[slot])
                   : static_cast<uint64_t>(scalars[slot]);
      }
      case OperandKind::Integer:
      case OperandKind::Boolean:
        return static_cast<uint64_t>(operand.integer_value);
      case OperandKind::Null:
        return 0;
    }
    return 0;
  }
  void* reference(const Operand& operand) const { return reinterpret_cast<void*>(read(operand)); }
  int64_t scalar(const Operand& operand) const { return static_cast<int64_t>(read(operand)); }
  bool is_reference(const Operand& operand) const {
    return operand.kind == OperandKind::Local && layout.local_is_reference[operand.local_index];
  }
  void write(uint32_t local, uint64_t value) {
    uint32_t slot = layout.slot_of_local[local];
    if (layout.local_is_reference[local]) {
      references[slot] = reinterpret_cast<void*>(value);
    } else {
      scalars[slot] = static_cast<int64_t>(value);
    }
  }
  // The address of a local's slot (a root slot for references): channel elements go there.
  void* slot_address(uint32_t local) {
    uint32_t slot = layout.slot_of_local[local];
    return layout.local_is_reference[local] ? static_cast<void*>(&references[slot])
                                            : static_cast<void*>(&scalars[slot]);
  }
  void*& scratch(uint32_t index) { return references[layout.reference_slots + index]; }

  const ir::Function& function;
  const FunctionLayout& layout;
  const uint32_t function_index;
  const uint32_t depth;
  const uint32_t serial;
  const uint32_t caller_serial;
  // Sites this activation allocates in its caller's frame (escape::CallerFrameCall), or nullptr;
  // when set, returning keeps the arena (usgc_frame_pop_keeping_arena).
  const std::vector<uint32_t>* const caller_frame_sites;
  usgc_frame gc_frame{};
  void** references = nullptr;
  int64_t* scalars = nullptr;
  void* inline_references[kInlineSlots];
  int64_t inline_scalars[kInlineSlots];
  std::unique_ptr<void*[]> heap_references;
  std::unique_ptr<int64_t[]> heap_scalars;
};

class Executor {
 public:
  explicit Executor(RunState& run)
      : run_(run),
        module_(run.module),
        layout_(run.layout),
        allocations_(run.layout.site_count(), 0),
        stack_base_(static_cast<char*>(__builtin_frame_address(0))) {}

  ~Executor();

  // Calls `function_index` at `depth` from `caller` (nullptr for a goroutine's first function);
  // `fill(frame)` writes its inputs into the new frame before the frame is pushed (nothing
  // collects in between: the rooting rule).
  template <typename Fill>
  Flow call_function(uint32_t function_index, uint32_t depth, Fill&& fill, uint64_t* result,
                     const Frame* caller = nullptr,
                     const std::vector<uint32_t>* caller_frame_sites = nullptr) {
    if (!checkpoint()) return Flow::kStopped;
    const ir::Function& function = module_.functions[function_index];
    char* here = static_cast<char*>(__builtin_frame_address(0));
    size_t used = static_cast<size_t>(stack_base_ - here);
    uint32_t limit = run_.options.max_call_depth;
    if (used + kStackReserveBytes > run_.stack_bytes || (limit != 0 && depth >= limit)) {
      run_.stop(RunStatus::kLimitExceeded,
                run_.where(function.position) + ": call depth limit: calling " + function.name +
                    " at depth " + std::to_string(depth) +
                    (limit != 0 && depth >= limit
                         ? " (RunOptions::max_call_depth " + std::to_string(limit) + ")"
                         : " would overflow the goroutine stack of " +
                               std::to_string(run_.stack_bytes / 1024) + " KiB (USGC_STACK_SIZE)"));
      return Flow::kStopped;
    }
    Frame frame(function, layout_.function(function_index), function_index, depth,
                frames_.next_serial++, caller, caller_frame_sites);
    fill(frame);
    usgc_frame_push(&frame.gc_frame);
    frames_.serials.push_back(frame.serial);
    Flow flow = run_blocks(frame, result);
    frames_.serials.pop_back();
    if (frame.caller_frame_sites != nullptr || quarantines_stack_objects()) {
      usgc_frame_pop_keeping_arena(&frame.gc_frame);
    } else {
      usgc_frame_pop(&frame.gc_frame);
    }
    return flow;
  }

 private:
  // ---- the stop protocol, steps, polls --------------------------------------------------------
  bool checkpoint() {
    // The flag poll, not the page poll: this loop is usgc's own C++ code, so a requested stop is
    // an explicit branch to the slow path here (no fault, no signal, no sigreturn: 12-15 us less
    // per stop on the VM of docs/benchmarks.md). Every arming sets the flag with the page
    // (safepoint/stop_the_world.cpp); compiled code keeps the fault-based page poll.
    usgc_safepoint_poll_flag();
    if (local_steps_ >= kStepFlush) flush_steps();
    return !run_.is_stopping();
  }
  void flush_steps() {
    if (local_steps_ == 0) return;
    uint64_t total = run_.steps.fetch_add(local_steps_, std::memory_order_relaxed) + local_steps_;
    local_steps_ = 0;
    if (run_.options.max_steps != 0 && total > run_.options.max_steps)
      run_.stop(RunStatus::kLimitExceeded, run_.module.file_name + ": step limit: more than " +
                                               std::to_string(run_.options.max_steps) +
                                               " instructions executed");
  }

  Flow runtime_error(const Instruction& instruction, const std::string& what) {
    run_.stop(RunStatus::kRuntimeError,
              run_.where(instruction.site_position()) + ": runtime error: " + what);
    return Flow::kStopped;
  }
  Flow violated(CheckViolation violation) {
    std::string message = violation.message;
    run_.stop(RunStatus::kCheckViolation, std::move(message), std::move(violation));
    return Flow::kStopped;
  }
  CheckContext context(const Frame& frame, const Instruction& instruction) const {
    return {run_, frames_, instruction, frame.function.name};
  }
  bool checked() const { return run_.options.checked; }
  bool checked_escapes() const { return run_.options.checked && run_.options.check_escape_points; }
  // Checked mode, a reference `value` about to become reachable at class `required` (a global
  // store, a send): the access check, then with the escape-point rules the publish check, whose
  // message says `what` + `name`. kStopped after a violation.
  Flow check_value_published(const Frame& frame, const Instruction& instruction, void* value,
                             OwnershipClass required, const char* rule, const char* what,
                             const std::string& name) {
    if (!checked() || value == nullptr) return Flow::kReturned;
    CheckContext check = context(frame, instruction);
    if (auto violation = check_access(check, value)) return violated(std::move(*violation));
    if (checked_escapes())
      if (auto violation = check_publish(check, value, required, rule, what + name))
        return violated(std::move(*violation));
    return Flow::kReturned;
  }
  // The quarantine (executor.hpp, "Frames"): with the use rules alone, popped frames keep their
  // STACK_LOCAL objects.
  bool quarantines_stack_objects() const {
    return run_.options.checked && !run_.options.check_escape_points;
  }

  // ---- allocation --------------------------------------------------------------------------
  void stress_collection() {
    if (run_.options.gc_stress_every == 0 || ++since_stress_ < run_.options.gc_stress_every) return;
    since_stress_ = 0;
    static constexpr usgc_gc_kind kRotation[] = {USGC_GC_PRIVATE, USGC_GC_SHARED_MINOR,
                                                 USGC_GC_PRIVATE, USGC_GC_SHARED};
    usgc_gc_collect(kRotation[stress_turn_++ % 4]);
  }

  // The object of `site_index` for `frame`, stamped and counted; nullptr after a runtime error.
  void* allocate(Frame& frame, const Instruction& instruction, uint32_t site_index,
                 uint64_t length);
  Flow execute_allocation(Frame& frame, uint32_t block, uint32_t index,
                          const Instruction& instruction);

  // ---- field and element access --------------------------------------------------------------
  bool is_reference_type(ir::TypeId type) const { return module_.types.is_reference(type); }
  ir::TypeId local_type(const Frame& frame, const Operand& operand) const {
    return frame.function.locals[operand.local_index].type;
  }

  // The word a load or store touches, after the nil, bounds and access checks; nullptr after
  // the run was stopped (*flow says so).
  uint64_t* locate(Frame& frame, const Instruction& instruction, bool* is_reference, Flow* flow);
  Flow execute_load(Frame& frame, const Instruction& instruction);
  Flow execute_store(Frame& frame, const Instruction& instruction);
  Flow execute_length(Frame& frame, const Instruction& instruction);

  // ---- globals -----------------------------------------------------------------------------
  Flow execute_global(Frame& frame, const Instruction& instruction);

  // ---- calls, spawns, unknown code ------------------------------------------------------------
  // Operands then captures: the callee's inputs in order.
  template <typename Visit>
  static void for_each_input(const Instruction& instruction, Visit&& visit) {
    uint32_t input = 0;
    for (const Operand& operand : instruction.operands) visit(input++, operand, false);
    for (const Operand& operand : instruction.captures) visit(input++, operand, true);
  }

  // Checks that every reference input may be published at class `required`.
  Flow check_inputs(Frame& frame, const Instruction& instruction, OwnershipClass required,
                    const char* rule);
  Flow execute_call(Frame& frame, uint32_t block, uint32_t index, const Instruction& instruction);
  Flow execute_unknown(Frame& frame, const Instruction& instruction);

  // `go f(...)`: the inputs travel in a pack (a shared reference array: [0] a byte array holding
  // the run, the callee and the scalar inputs; [1..] the reference inputs), which usgc_go_object
  // publishes and keeps as a root of the new goroutine.
  Flow execute_go(Frame& frame, const Instruction& instruction);

  // ---- channels ----------------------------------------------------------------------------
  Flow channel_failure(const Instruction& instruction, ChannelOutcome outcome, int error);
  Flow execute_send(Frame& frame, const Instruction& instruction);
  Flow execute_receive(Frame& frame, const Instruction& instruction);
  Flow execute_close(Frame& frame, const Instruction& instruction);

  // ---- arithmetic ----------------------------------------------------------------------------
  Flow execute_binary(Frame& frame, const Instruction& instruction);

  // ---- the loop ------------------------------------------------------------------------------
  Flow run_blocks(Frame& frame, uint64_t* result);

  RunState& run_;
  const ir::Module& module_;
  const ProgramLayout& layout_;
  LiveFrames frames_;
  std::vector<uint64_t> allocations_;
  uint64_t class_counts_[escape::kOwnershipClassCount] = {};
  uint64_t caller_frame_allocations_ = 0;
  uint64_t substitutes_ = 0;
  uint64_t local_steps_ = 0;
  uint32_t since_stress_ = 0;
  uint32_t stress_turn_ = 0;
  char* const stack_base_;
};

}  // namespace usgc::jitgen::interpreter::detail
