// jitgen/interpreter/executor.cpp — the instruction loop (executor.hpp). Keeps the rooting rule
// and the call-depth guard named there; every check of checked mode is a call into
// decision_checks.hpp made before the operation it guards.
#include "jitgen/interpreter/executor.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

#include "jitgen/interpreter/channel_ops.hpp"
#include "jitgen/interpreter/unknown_world.hpp"
#include "usgc/safepoint.h"

namespace usgc::jitgen::interpreter {
namespace {

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

  ~Executor() {
    flush_steps();
    for (size_t site = 0; site < allocations_.size(); ++site)
      if (allocations_[site] != 0)
        run_.allocations_per_site[site].fetch_add(allocations_[site], std::memory_order_relaxed);
    if (substitutes_ != 0)
      run_.stack_substitutes.fetch_add(substitutes_, std::memory_order_relaxed);
    for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
      if (class_counts_[c] != 0)
        run_.allocations_per_class[c].fetch_add(class_counts_[c], std::memory_order_relaxed);
    if (caller_frame_allocations_ != 0)
      run_.caller_frame_allocations.fetch_add(caller_frame_allocations_, std::memory_order_relaxed);
  }

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

  Flow execute_allocation(Frame& frame, uint32_t block, uint32_t index,
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

  // ---- field and element access --------------------------------------------------------------
  bool is_reference_type(ir::TypeId type) const { return module_.types.is_reference(type); }
  ir::TypeId local_type(const Frame& frame, const Operand& operand) const {
    return frame.function.locals[operand.local_index].type;
  }

  // The word a load or store touches, after the nil, bounds and access checks; nullptr after
  // the run was stopped (*flow says so).
  uint64_t* locate(Frame& frame, const Instruction& instruction, bool* is_reference, Flow* flow) {
    *flow = Flow::kReturned;
    const Operand& base_operand = instruction.operands[0];
    void* base = frame.reference(base_operand);
    ir::TypeId base_type = local_type(frame, base_operand);
    bool field =
        instruction.opcode == Opcode::LoadField || instruction.opcode == Opcode::StoreField;
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
            instruction,
            "index out of range [" + std::to_string(position) + "] with length " +
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

  Flow execute_load(Frame& frame, const Instruction& instruction) {
    bool reference = false;
    Flow flow;
    uint64_t* word = locate(frame, instruction, &reference, &flow);
    if (word == nullptr) return flow;
    void* base = frame.reference(instruction.operands[0]);
    uint64_t value =
        reference
            ? reinterpret_cast<uint64_t>(usgc_read(base, reinterpret_cast<void* const*>(word)))
            : __atomic_load_n(word, __ATOMIC_RELAXED);
    frame.write(instruction.result_index, value);
    return Flow::kReturned;
  }

  Flow execute_store(Frame& frame, const Instruction& instruction) {
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

  Flow execute_length(Frame& frame, const Instruction& instruction) {
    void* base = frame.reference(instruction.operands[0]);
    if (base != nullptr && checked())
      if (auto violation = check_access(context(frame, instruction), base))
        return violated(std::move(*violation));
    frame.write(instruction.result_index, base == nullptr ? 0 : array_length(base));
    return Flow::kReturned;
  }

  // ---- globals -----------------------------------------------------------------------------
  Flow execute_global(Frame& frame, const Instruction& instruction) {
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
    if (checked() && value != nullptr) {
      CheckContext check = context(frame, instruction);
      if (auto violation = check_access(check, value)) return violated(std::move(*violation));
      if (checked_escapes())
        if (auto violation =
                check_publish(check, value, OwnershipClass::GlobalShared, "publish/global",
                              "it is stored into global @" + instruction.global_name))
          return violated(std::move(*violation));
    }
    usgc_global_store(&run_.reference_globals[slot], value);
    return Flow::kReturned;
  }

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

  Flow execute_call(Frame& frame, uint32_t block, uint32_t index, const Instruction& instruction) {
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

  Flow execute_unknown(Frame& frame, const Instruction& instruction) {
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

  // `go f(...)`: the inputs travel in a pack (a shared reference array: [0] a byte array holding
  // the run, the callee and the scalar inputs; [1..] the reference inputs), which usgc_go_object
  // publishes and keeps as a root of the new goroutine.
  Flow execute_go(Frame& frame, const Instruction& instruction) {
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

  // ---- channels ----------------------------------------------------------------------------
  Flow channel_failure(const Instruction& instruction, ChannelOutcome outcome, int error) {
    if (outcome == ChannelOutcome::kStopped) return Flow::kStopped;
    if (outcome == ChannelOutcome::kClosed)
      return runtime_error(instruction, "send on closed channel");
    return runtime_error(instruction,
                         std::string("channel operation failed: ") + std::strerror(error));
  }

  Flow execute_send(Frame& frame, const Instruction& instruction) {
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
      if (checked() && value != nullptr) {
        CheckContext check = context(frame, instruction);
        if (auto violation = check_access(check, value)) return violated(std::move(*violation));
        if (checked_escapes())
          if (auto violation =
                  check_publish(check, value, OwnershipClass::GoroutineShared, "publish/send",
                                "it is sent on the channel %" + instruction.operands[0].local_name))
            return violated(std::move(*violation));
      }
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

  Flow execute_receive(Frame& frame, const Instruction& instruction) {
    void* channel = frame.reference(instruction.operands[0]);
    if (checked() && channel != nullptr)
      if (auto violation = check_access(context(frame, instruction), channel))
        return violated(std::move(*violation));
    bool ok = false;
    int error = 0;
    ChannelOutcome outcome =
        channel_receive(run_, channel_of_object(channel),
                        frame.slot_address(instruction.result_index), &ok, &error);
    return outcome == ChannelOutcome::kDone ? Flow::kReturned
                                            : channel_failure(instruction, outcome, error);
  }

  Flow execute_close(Frame& frame, const Instruction& instruction) {
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

  // ---- arithmetic ----------------------------------------------------------------------------
  Flow execute_binary(Frame& frame, const Instruction& instruction) {
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

  // ---- the loop ------------------------------------------------------------------------------
  Flow run_blocks(Frame& frame, uint64_t* result) {
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

}  // namespace

void run_entry_function(RunState& run) {
  const ir::Function* entry = run.module.find_function(run.options.entry);
  uint32_t entry_index = static_cast<uint32_t>(entry - run.module.functions.data());
  uint64_t result = 0;
  Flow flow;
  {
    Executor executor(run);
    flow = executor.call_function(
        entry_index, 0,
        [&](Frame& frame) {
          for (uint32_t i = 0; i < entry->parameter_count; ++i)
            if (!frame.layout.local_is_reference[i] && i < run.options.arguments.size())
              frame.write(i, static_cast<uint64_t>(run.options.arguments[i]));
        },
        &result);
  }
  if (flow == Flow::kReturned) {
    if (entry->result_type.valid() && !run.module.types.is_reference(entry->result_type)) {
      std::lock_guard<std::mutex> guard(run.outcome_lock);
      run.returned_value = static_cast<int64_t>(result);
    }
    run.stop(RunStatus::kCompleted);
  }
}

void goroutine_entry(void* pack) {
  void* words = usgc_array_read(pack, 0);
  const auto* data = static_cast<const uint64_t*>(usgc_array_data(words));
  RunState& run = *reinterpret_cast<RunState*>(data[0]);
  const auto callee = static_cast<uint32_t>(data[1]);
  {
    Executor executor(run);
    uint64_t ignored = 0;
    executor.call_function(
        callee, 0,
        [&](Frame& frame) {
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
