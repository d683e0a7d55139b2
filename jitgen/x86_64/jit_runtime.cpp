// jitgen/x86_64/jit_runtime.cpp — the calls compiled code makes (jit_runtime.hpp) and the C++
// side of a compiled run: entering compiled code on a goroutine, spawned goroutines, the counts.
// The messages are the interpreter's (jitgen/interpreter/executor.cpp and executor_calls.cpp),
// word for word: a compiled run and an interpreted one of the same program report the same
// runtime errors.
#include "jitgen/x86_64/jit_runtime.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "jitgen/interpreter/channel_ops.hpp"
#include "jitgen/interpreter/unknown_world.hpp"
#include "jitgen/x86_64/compiled_module.hpp"

namespace usgc::jitgen::x86_64 {
namespace {

using interpreter::ChannelOutcome;
using interpreter::RunState;
using interpreter::RunStatus;
using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;

constexpr size_t kStackReserveBytes = 64 * 1024;

static_assert(offsetof(JitGoroutine, stack_limit) == kGoroutineStackLimit);
static_assert(offsetof(JitGoroutine, unwound) == kGoroutineUnwound);
static_assert(offsetof(JitGoroutine, reference_globals) == kGoroutineReferenceGlobals);
static_assert(offsetof(JitGoroutine, scalar_globals) == kGoroutineScalarGlobals);
static_assert(offsetof(JitGoroutine, entry_frame) == kGoroutineEntryFrame);
static_assert(offsetof(JitGoroutine, counters) == kGoroutineCounters);

const Instruction& instruction_of(const ir::Module& module, uint32_t function, uint32_t block,
                                  uint32_t instruction) {
  return module.functions[function].blocks[block].instructions[instruction];
}

uint32_t stop_with_runtime_error(RunState& run, const Instruction& instruction,
                                 const std::string& what) {
  run.stop(RunStatus::kRuntimeError,
           run.where(instruction.site_position()) + ": runtime error: " + what);
  return 1;
}

// The slots of one compiled frame, as the compiler laid them out (register_convention.hpp).
class FrameView {
 public:
  FrameView(const CompiledModule& module, const OperationSite& site, char* frame)
      : layout_(module.layout().function(site.function)),
        function_(module.module().functions[site.function]),
        references_(reinterpret_cast<uint64_t*>(frame + site.reference_base)),
        scalars_(reinterpret_cast<uint64_t*>(frame + site.scalar_base)) {}

  uint64_t* slot(uint32_t local) const {
    uint32_t index = layout_.slot_of_local[local];
    return layout_.local_is_reference[local] ? &references_[index] : &scalars_[index];
  }
  bool is_reference(const Operand& operand) const {
    return operand.kind == OperandKind::Local && layout_.local_is_reference[operand.local_index];
  }
  uint64_t read(const Operand& operand) const {
    switch (operand.kind) {
      case OperandKind::Local:
        return *slot(operand.local_index);
      case OperandKind::Integer:
      case OperandKind::Boolean:
        return static_cast<uint64_t>(operand.integer_value);
      case OperandKind::Null:
        return 0;
    }
    return 0;
  }
  void* reference(const Operand& operand) const { return reinterpret_cast<void*>(read(operand)); }
  const ir::Function& function() const { return function_; }

 private:
  const interpreter::FunctionLayout& layout_;
  const ir::Function& function_;
  uint64_t* references_;
  uint64_t* scalars_;
};

template <typename Visit>
void for_each_input(const Instruction& instruction, Visit&& visit) {
  for (const Operand& operand : instruction.operands) visit(operand, false);
  for (const Operand& operand : instruction.captures) visit(operand, true);
}

uint32_t channel_failure(RunState& run, const Instruction& instruction, ChannelOutcome outcome,
                         int error) {
  if (outcome == ChannelOutcome::kStopped) return 1;
  if (outcome == ChannelOutcome::kClosed)
    return stop_with_runtime_error(run, instruction, "send on closed channel");
  return stop_with_runtime_error(run, instruction,
                                 std::string("channel operation failed: ") + std::strerror(error));
}

uint32_t make_channel(JitGoroutine& g, const OperationSite& site, const FrameView& frame,
                      const Instruction& instruction) {
  RunState& run = *g.run;
  int64_t capacity = static_cast<int64_t>(frame.read(instruction.operands[0]));
  if (capacity < 0)
    return stop_with_runtime_error(run, instruction,
                                   "makechan: negative capacity " + std::to_string(capacity));
  usgc_jit_gc_stress(&g);
  const interpreter::SiteLayout& layout = g.jit->module->layout().site(site.site);
  void* object = usgc_alloc(layout.type, site.ownership);
  if (object == nullptr)
    return stop_with_runtime_error(run, instruction,
                                   std::string("out of memory: ") + usgc_last_error());
  if (site.ownership == USGC_STACK_LOCAL && usgc_ownership_of(object) != USGC_STACK_LOCAL)
    ++g.substitutes;
  ++g.counters[site.counter];
  usgc_chan* channel = layout.element_is_reference
                           ? usgc_chan_make_refs(static_cast<size_t>(capacity))
                           : usgc_chan_make(sizeof(int64_t), static_cast<size_t>(capacity));
  if (channel == nullptr)
    return stop_with_runtime_error(run, instruction, "makechan: out of memory");
  run.channels.add(channel);
  *static_cast<usgc_chan**>(object) = channel;
  *frame.slot(instruction.result_index) = reinterpret_cast<uint64_t>(object);
  return 0;
}

uint32_t unknown_code(JitGoroutine& g, const FrameView& frame, const Instruction& instruction) {
  RunState& run = *g.run;
  for_each_input(instruction, [&](const Operand& operand, bool) {
    if (frame.is_reference(operand))
      interpreter::keep_in_unknown_world(run, frame.reference(operand));
  });
  if (instruction.opcode == Opcode::Call && !instruction.result_name.empty()) {
    ir::TypeId type = frame.function().locals[instruction.result_index].type;
    *frame.slot(instruction.result_index) =
        run.module.types.is_reference(type)
            ? reinterpret_cast<uint64_t>(interpreter::newest_in_unknown_world(run, type))
            : 0;
  }
  return 0;
}

// `go f(...)`: the interpreter's pack (a shared reference array: [0] a byte array with the run,
// the callee and the scalar inputs; [1..] the reference inputs), started on usgc_go_object.
uint32_t spawn(JitGoroutine& g, const FrameView& frame, const Instruction& instruction) {
  RunState& run = *g.run;
  uint64_t reference_inputs = 0, scalar_inputs = 0;
  for_each_input(instruction, [&](const Operand& operand, bool) {
    ++(frame.is_reference(operand) || operand.kind == OperandKind::Null ? reference_inputs
                                                                        : scalar_inputs);
  });
  void* roots[2] = {nullptr, nullptr};
  usgc_frame root_frame = {nullptr, roots, 2, nullptr};
  usgc_frame_push(&root_frame);
  uint32_t status = 0;
  roots[0] = usgc_alloc_array(USGC_TYPE_REF_ARRAY, 1 + reference_inputs, USGC_GOROUTINE_SHARED);
  if (roots[0] != nullptr)
    roots[1] =
        usgc_alloc_array(USGC_TYPE_BYTE_ARRAY, 8 * (2 + scalar_inputs), USGC_GOROUTINE_SHARED);
  if (roots[0] == nullptr || roots[1] == nullptr) {
    status = stop_with_runtime_error(run, instruction,
                                     std::string("go: out of memory: ") + usgc_last_error());
  } else {
    auto* data = static_cast<uint64_t*>(usgc_array_data(roots[1]));
    data[0] = reinterpret_cast<uint64_t>(g.jit);
    data[1] = instruction.callee_index;
    usgc_array_write(roots[0], 0, roots[1]);
    uint64_t next_reference = 1, next_scalar = 2;
    for_each_input(instruction, [&](const Operand& operand, bool) {
      if (frame.is_reference(operand) || operand.kind == OperandKind::Null)
        usgc_array_write(roots[0], next_reference++, frame.reference(operand));
      else
        data[next_scalar++] = frame.read(operand);
    });
    run.live_goroutines.fetch_add(1, std::memory_order_relaxed);
    usgc_waitgroup_add(&run.goroutines, 1);
    int started = usgc_go_object(usgc_jit_goroutine_entry, roots[0]);
    if (started != 0) {
      run.live_goroutines.fetch_sub(1, std::memory_order_relaxed);
      usgc_waitgroup_done(&run.goroutines);
      status = stop_with_runtime_error(
          run, instruction, std::string("go: cannot start a goroutine: ") + std::strerror(started));
    } else {
      run.goroutines_started.fetch_add(1, std::memory_order_relaxed);
    }
  }
  usgc_frame_pop(&root_frame);
  return status;
}

uint32_t send(JitGoroutine& g, const FrameView& frame, const Instruction& instruction) {
  RunState& run = *g.run;
  void* channel = frame.reference(instruction.operands[0]);
  const Operand& value = instruction.operands[1];
  const ir::TypeId channel_type = frame.function().locals[instruction.operands[0].local_index].type;
  const bool reference = run.module.types.is_reference(run.module.types.node(channel_type).element);
  int64_t scalar_value = 0;
  void* null_value = nullptr;
  const void* element = nullptr;
  if (reference) {
    element = value.kind == OperandKind::Local
                  ? static_cast<const void*>(frame.slot(value.local_index))
                  : &null_value;
  } else {
    scalar_value = static_cast<int64_t>(frame.read(value));
    element = &scalar_value;
  }
  int error = 0;
  ChannelOutcome outcome =
      interpreter::channel_send(run, interpreter::channel_of_object(channel), element, &error);
  return outcome == ChannelOutcome::kDone ? 0 : channel_failure(run, instruction, outcome, error);
}

uint32_t receive(JitGoroutine& g, const FrameView& frame, const Instruction& instruction) {
  RunState& run = *g.run;
  void* channel = frame.reference(instruction.operands[0]);
  bool ok = false;
  int error = 0;
  ChannelOutcome outcome =
      interpreter::channel_receive(run, interpreter::channel_of_object(channel),
                                   frame.slot(instruction.result_index), &ok, &error);
  return outcome == ChannelOutcome::kDone ? 0 : channel_failure(run, instruction, outcome, error);
}

uint32_t close_channel(JitGoroutine& g, const FrameView& frame, const Instruction& instruction) {
  RunState& run = *g.run;
  void* channel = frame.reference(instruction.operands[0]);
  if (channel == nullptr) return stop_with_runtime_error(run, instruction, "close of nil channel");
  int status = usgc_chan_close(interpreter::channel_of_object(channel));
  if (status == EPIPE) return stop_with_runtime_error(run, instruction, "close of closed channel");
  run.channel_progress.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// Runs compiled `function_index` on the calling goroutine with `inputs`; the result when it
// returned normally (the run not stopped under it).
std::optional<uint64_t> run_on_this_goroutine(const JitRun& jit, uint32_t function_index,
                                              const uint64_t* inputs, uint64_t count) {
  JitGoroutine* g = create_jit_goroutine(jit, static_cast<char*>(__builtin_frame_address(0)),
                                         jit.run->stack_bytes);
  if (g == nullptr) {
    jit.run->stop(RunStatus::kSetupError, jit.run->module.file_name + ": out of memory");
    return std::nullopt;
  }
  // The arena floor (compiled_module.hpp): arena_top is never null under a compiled frame.
  if (g->mutator->arena_top == nullptr)
    (void)usgc_alloc_stack_slow(jit.module->arena_floor_layout());
  uint64_t result =
      jit.module->enter_thunk()(jit.module->function_code(function_index), g, inputs, count);
  bool completed = g->unwound == 0;
  finish_jit_goroutine(g);
  if (!completed) return std::nullopt;
  return result;
}

}  // namespace

JitGoroutine* create_jit_goroutine(const JitRun& jit, char* stack_top, size_t stack_bytes) {
  const size_t counters = 2 * jit.module->layout().site_count();
  void* memory = std::calloc(1, sizeof(JitGoroutine) + 8 * counters);
  if (memory == nullptr) return nullptr;
  auto* g = static_cast<JitGoroutine*>(memory);
  g->mutator = usgc_current_mutator;
  g->stopping = &jit.run->stopping;
  g->stack_limit.store(
      stack_bytes > 2 * kStackReserveBytes ? stack_top - stack_bytes + kStackReserveBytes : nullptr,
      std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> guard(jit.lock);
    g->next_live = jit.live;
    if (jit.live != nullptr) jit.live->previous_live = g;
    jit.live = g;
    if (jit.stopped) g->stack_limit.store(kStoppedStackLimit, std::memory_order_relaxed);
  }
  g->reference_globals = jit.run->reference_globals.get();
  g->scalar_globals = jit.run->scalar_globals.get();
  g->run = jit.run;
  g->jit = &jit;
  return g;
}

void finish_jit_goroutine(JitGoroutine* g) {
  {
    std::lock_guard<std::mutex> guard(g->jit->lock);
    (g->previous_live != nullptr ? g->previous_live->next_live : g->jit->live) = g->next_live;
    if (g->next_live != nullptr) g->next_live->previous_live = g->previous_live;
  }
  RunState& run = *g->run;
  const size_t sites = g->jit->module->layout().site_count();
  uint64_t per_class[escape::kOwnershipClassCount] = {};
  uint64_t caller_frame = 0;
  for (size_t site = 0; site < sites; ++site) {
    uint64_t decided = g->counters[site], in_caller_frame = g->counters[sites + site];
    if (decided + in_caller_frame == 0) continue;
    run.allocations_per_site[site].fetch_add(decided + in_caller_frame, std::memory_order_relaxed);
    per_class[static_cast<size_t>(
        g->jit->module->layout().site(static_cast<uint32_t>(site)).decided)] += decided;
    per_class[static_cast<size_t>(escape::OwnershipClass::StackLocal)] += in_caller_frame;
    caller_frame += in_caller_frame;
  }
  for (size_t c = 0; c < escape::kOwnershipClassCount; ++c)
    if (per_class[c] != 0)
      run.allocations_per_class[c].fetch_add(per_class[c], std::memory_order_relaxed);
  if (caller_frame != 0)
    run.caller_frame_allocations.fetch_add(caller_frame, std::memory_order_relaxed);
  if (g->substitutes != 0)
    run.stack_substitutes.fetch_add(g->substitutes, std::memory_order_relaxed);
  std::free(g);
}

namespace {

// The run's stop hook (RunState::stop_hook): every goroutine in compiled code leaves at its next
// framed call (kStoppedStackLimit).
void stop_compiled_goroutines(void* context) {
  const JitRun& jit = *static_cast<const JitRun*>(context);
  std::lock_guard<std::mutex> guard(jit.lock);
  jit.stopped = true;
  // Release: a goroutine that sees the limit sees `stopping` (stored before the hook ran).
  for (JitGoroutine* g = jit.live; g != nullptr; g = g->next_live)
    g->stack_limit.store(kStoppedStackLimit, std::memory_order_release);
}

}  // namespace

// The entry goroutine of a compiled run (interpreter::run_program_with's runner).
void run_compiled_entry(RunState& run, void* context) {
  JitRun& jit = *static_cast<JitRun*>(context);
  jit.run = &run;
  jit.stop_hook = {&stop_compiled_goroutines, &jit};
  // Release: the hook's JitRun as made here, for a stop() on another thread.
  run.stop_hook.store(&jit.stop_hook, std::memory_order_release);
  if (run.is_stopping()) stop_compiled_goroutines(&jit);  // a stop before the hook was there
  const ir::Function* entry = run.module.find_function(run.options.entry);
  const uint32_t entry_index = static_cast<uint32_t>(entry - run.module.functions.data());
  std::vector<uint64_t> inputs(entry->parameter_count, 0);
  const interpreter::FunctionLayout& layout = jit.module->layout().function(entry_index);
  for (uint32_t i = 0; i < entry->parameter_count; ++i)
    if (!layout.local_is_reference[i] && i < run.options.arguments.size())
      inputs[i] = static_cast<uint64_t>(run.options.arguments[i]);
  std::optional<uint64_t> result =
      run_on_this_goroutine(jit, entry_index, inputs.data(), inputs.size());
  if (!result) return;
  if (entry->result_type.valid() && !run.module.types.is_reference(entry->result_type)) {
    std::lock_guard<std::mutex> guard(run.outcome_lock);
    run.returned_value = static_cast<int64_t>(*result);
  }
  run.stop(RunStatus::kCompleted);
}

interpreter::RunResult run_compiled(const CompiledModule& compiled,
                                    const interpreter::RunOptions& options) {
  // Compiled code makes no decision checks; what the run reports is the unchecked run's.
  interpreter::RunOptions unchecked = options;
  unchecked.checked = false;
  JitRun jit;
  jit.module = &compiled;
  return interpreter::run_program_with(compiled.module(), compiled.analysis(), unchecked,
                                       run_compiled_entry, &jit);
}

}  // namespace usgc::jitgen::x86_64

using usgc::jitgen::x86_64::JitGoroutine;

extern "C" uint32_t usgc_jit_operation(JitGoroutine* g, uint32_t operation, char* frame_pointer) {
  using namespace usgc::jitgen::x86_64;
  const CompiledModule& module = *g->jit->module;
  const OperationSite& site = module.operation(operation);
  const usgc::jitgen::ir::Instruction& instruction =
      instruction_of(module.module(), site.function, site.block, site.instruction);
  FrameView frame(module, site, frame_pointer);
  switch (instruction.opcode) {
    case Opcode::MakeChan:
      return make_channel(*g, site, frame, instruction);
    case Opcode::Call:
      return unknown_code(*g, frame, instruction);
    case Opcode::Go:
      return instruction.callee_unknown ? unknown_code(*g, frame, instruction)
                                        : spawn(*g, frame, instruction);
    case Opcode::Send:
      return send(*g, frame, instruction);
    case Opcode::Receive:
      return receive(*g, frame, instruction);
    case Opcode::Close:
      return close_channel(*g, frame, instruction);
    default:
      return stop_with_runtime_error(*g->run, instruction, "internal error: no such operation");
  }
}

extern "C" void usgc_jit_runtime_error(JitGoroutine* g, uint32_t error, int64_t a, uint64_t b) {
  using namespace usgc::jitgen::x86_64;
  const CompiledModule& module = *g->jit->module;
  RunState& run = *g->run;
  const ErrorSite& site = module.error_site(error);
  const usgc::jitgen::ir::Instruction& instruction =
      instruction_of(module.module(), site.function, site.block, site.instruction);
  switch (site.kind) {
    case ErrorKind::kNilField:
      stop_with_runtime_error(run, instruction,
                              "nil pointer dereference (field " + instruction.field_name + " of %" +
                                  instruction.operands[0].local_name + ")");
      return;
    case ErrorKind::kIndex: {
      const void* base = reinterpret_cast<const void*>(b);
      uint64_t length = base == nullptr ? 0 : *static_cast<const uint64_t*>(base);
      stop_with_runtime_error(
          run, instruction,
          "index out of range [" + std::to_string(a) + "] with length " + std::to_string(length) +
              (base == nullptr ? " (%" + instruction.operands[0].local_name + " is null)" : ""));
      return;
    }
    case ErrorKind::kDivideByZero:
      stop_with_runtime_error(run, instruction, "integer divide by zero");
      return;
    case ErrorKind::kNegativeLength:
      stop_with_runtime_error(run, instruction, "newarray: negative length " + std::to_string(a));
      return;
    case ErrorKind::kOutOfMemory:
      stop_with_runtime_error(run, instruction, std::string("out of memory: ") + usgc_last_error());
      return;
    case ErrorKind::kStackOverflow: {
      // The stop hook's limit (kStoppedStackLimit), or an overflow after the run stopped: the
      // run's outcome is set, nothing to report; compiled code unwinds.
      if (run.is_stopping()) return;
      const usgc::jitgen::ir::Function& function = module.module().functions[site.function];
      run.stop(RunStatus::kLimitExceeded,
               run.where(function.position) + ": call depth limit: calling " + function.name +
                   " would overflow the goroutine stack of " +
                   std::to_string(run.stack_bytes / 1024) + " KiB (USGC_STACK_SIZE)");
      return;
    }
  }
}

extern "C" void* usgc_jit_alloc_stack_slow(JitGoroutine* g, const usgc_type_layout* layout) {
  void* object = usgc_alloc_stack_slow(layout);
  if (object != nullptr && usgc_ownership_of(object) != USGC_STACK_LOCAL) ++g->substitutes;
  return object;
}

extern "C" void usgc_jit_gc_stress(JitGoroutine* g) {
  uint32_t every = g->run->options.gc_stress_every;
  if (every == 0 || ++g->since_stress < every) return;
  g->since_stress = 0;
  static constexpr usgc_gc_kind kRotation[] = {USGC_GC_PRIVATE, USGC_GC_SHARED_MINOR,
                                               USGC_GC_PRIVATE, USGC_GC_SHARED};
  usgc_gc_collect(kRotation[g->stress_turn++ % 4]);
}

extern "C" void usgc_jit_goroutine_entry(void* pack) {
  using namespace usgc::jitgen::x86_64;
  void* words = usgc_array_read(pack, 0);
  const auto* data = static_cast<const uint64_t*>(usgc_array_data(words));
  const JitRun& jit = *reinterpret_cast<const JitRun*>(data[0]);
  const auto callee = static_cast<uint32_t>(data[1]);
  RunState& run = *jit.run;
  const usgc::jitgen::ir::Function& function = run.module.functions[callee];
  const usgc::jitgen::interpreter::FunctionLayout& layout = jit.module->layout().function(callee);
  const uint32_t count = function.parameter_count + function.capture_count;
  std::vector<uint64_t> inputs(count, 0);
  uint64_t next_reference = 1, next_scalar = 2;
  for (uint32_t input = 0; input < count; ++input)
    inputs[input] = layout.local_is_reference[input]
                        ? reinterpret_cast<uint64_t>(usgc_array_read(pack, next_reference++))
                        : data[next_scalar++];
  if (!run.is_stopping()) (void)run_on_this_goroutine(jit, callee, inputs.data(), count);
  run.live_goroutines.fetch_sub(1, std::memory_order_relaxed);
  usgc_waitgroup_done(&run.goroutines);
}
