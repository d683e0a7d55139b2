// jitgen/escape/function_graph.cpp — the per-function constraint solver (function_graph.hpp).
// Keeps the determinism invariant and the first-reason rule named there.
#include "jitgen/escape/function_graph.hpp"

#include <string>
#include <string_view>

namespace usgc::jitgen::escape {
namespace {

using ir::Instruction;
using ir::Opcode;
using ir::Operand;
using ir::OperandKind;

// Reason chains longer than this are cut (recursion through summaries can only lengthen a chain
// a bounded number of times, but a reader needs the first links, not fifty).
constexpr size_t kMaximumReasonSteps = 24;

// The short reason of an argument that escapes in a callee: "passed to F, where it is <why>",
// with <why> the callee's innermost reason, so that a chain of N calls gives a short reason of
// bounded length, not one nesting N callee names (the whole path is in the reason chain).
std::string passed_to_reason(const std::string& callee_name, const std::string& callee_reason) {
  static constexpr std::string_view kWhere = ", where it is ";
  size_t last = callee_reason.rfind(kWhere);
  std::string_view innermost = callee_reason;
  if (last != std::string::npos) innermost.remove_prefix(last + kWhere.size());
  return "passed to " + callee_name + std::string(kWhere) + std::string(innermost);
}

std::vector<ReasonStep> chain(std::vector<ReasonStep> first, const std::vector<ReasonStep>& rest) {
  for (const ReasonStep& step : rest) {
    if (first.size() >= kMaximumReasonSteps) break;
    first.push_back(step);
  }
  return first;
}

class Solver {
 public:
  Solver(const SiteTable& sites, uint32_t function_index,
         const std::vector<FunctionSummary>& summaries, const ModuleHeap& heap,
         const ChannelWorld& channels)
      : sites_(sites),
        module_(sites.module()),
        function_(module_.functions[function_index]),
        function_index_(function_index),
        summaries_(summaries),
        heap_(heap),
        channels_(channels) {
    graph_.points_to.resize(function_.locals.size());
    // Each input starts out pointing at its phantom object (the caller's region).
    for (uint32_t input = 0; input < function_.parameter_count + function_.capture_count; ++input)
      if (module_.types.is_reference(function_.locals[input].type))
        graph_.points_to[input].insert(AbstractValue::input(input));
  }

  FunctionGraph run() {
    do {
      changed_ = false;
      for (uint32_t b = 0; b < function_.blocks.size(); ++b) {
        const ir::Block& block = function_.blocks[b];
        for (uint32_t i = 0; i < block.instructions.size(); ++i) apply(b, i, block.instructions[i]);
      }
    } while (changed_);
    record_frame_escapes();
    record_external_channel();
    derive_summary();
    graph_.heap_sites_read = std::move(heap_sites_read_);
    return std::move(graph_);
  }

 private:
  std::string where(ir::SourcePosition position) const {
    return format_position(module_.file_name, position);
  }
  std::string local_name(const Operand& operand) const {
    return operand.kind == OperandKind::Local ? "%" + operand.local_name : "a constant";
  }
  std::string input_name(uint32_t function, uint32_t input) const {
    return "%" + module_.functions[function].locals[input].name;
  }
  bool own_site(AbstractValue value) const {
    return value.kind == ValueKind::Site &&
           sites_.location(value.index).function_index == function_index_;
  }

  ValueSet values_of(const Operand& operand) const {
    if (operand.kind != OperandKind::Local) return {};
    return graph_.points_to[operand.local_index];
  }

  void add_points_to(uint32_t local, const ValueSet& values) {
    if (!module_.types.is_reference(function_.locals[local].type)) return;
    for (AbstractValue value : values) changed_ |= graph_.points_to[local].insert(value).second;
  }

  void add_fact(const ValueSet& values, OwnershipClass level, const std::string& short_reason,
                const std::vector<ReasonStep>& reasons) {
    for (AbstractValue value : values) {
      // External is global already; Received keeps its global facts only (channel_world.hpp:
      // a received object made global makes the mailbox global), every received object being
      // shared already.
      if (value.kind == ValueKind::External) continue;
      if (value.kind == ValueKind::Received && level != OwnershipClass::GlobalShared) continue;
      if (!fact_keys_.insert({value, level}).second) continue;  // the first-reason rule
      graph_.facts.push_back({value, level, short_reason, reasons});
    }
  }

  // content(target) ⊇ values; `origin` describes the store (for reasons).
  void add_content(AbstractValue target, const ValueSet& values, const ReasonStep& origin) {
    switch (target.kind) {
      case ValueKind::External:
        add_fact(values, OwnershipClass::GlobalShared, "stored into an object a global reaches",
                 {{origin.position, origin.fact + ", an object reachable from a global"}});
        return;
      case ValueKind::Received:
        if (channels_.received_level == OwnershipClass::GlobalShared) {
          add_fact(values, OwnershipClass::GlobalShared,
                   "stored into a received object, which may be one a global reaches",
                   chain({{origin.position, origin.fact + ", an object received from a channel"}},
                         channels_.reasons));
        } else {
          add_fact(
              values, OwnershipClass::GoroutineShared,
              "stored into an object other goroutines reach",
              {{origin.position,
                origin.fact + ", an object received from a channel (other goroutines reach it)"}});
        }
        return;
      case ValueKind::Site:
      case ValueKind::Input:
        for (AbstractValue value : values) {
          if (!graph_.contents[target].insert(value).second) continue;
          changed_ = true;
          graph_.content_origins.emplace(std::pair{target, value}, origin);
        }
        return;
    }
  }

  ValueSet load_from(AbstractValue object) const {
    ValueSet result;
    if (object.kind == ValueKind::Site) {
      heap_sites_read_.insert(object.index);
      auto in_heap = heap_.find(object.index);
      if (in_heap != heap_.end()) result = in_heap->second;
    } else {
      result.insert(object);  // Input, External, Received: a collapsed region
    }
    auto local = graph_.contents.find(object);
    if (local != graph_.contents.end()) result.insert(local->second.begin(), local->second.end());
    return result;
  }

  void apply(uint32_t block_index, uint32_t instruction_index, const Instruction& instruction) {
    const std::string at = where(instruction.site_position());
    switch (instruction.opcode) {
      case Opcode::Copy:
        add_points_to(instruction.result_index, values_of(instruction.operands[0]));
        return;
      case Opcode::New:
      case Opcode::NewArray:
      case Opcode::MakeChan:
        add_points_to(
            instruction.result_index,
            {AbstractValue::site(sites_.site_of(function_index_, block_index, instruction_index))});
        return;
      case Opcode::LoadField:
      case Opcode::LoadIndex:
        for (AbstractValue object : values_of(instruction.operands[0]))
          add_points_to(instruction.result_index, load_from(object));
        return;
      case Opcode::StoreField:
      case Opcode::StoreIndex: {
        const Operand& base = instruction.operands[0];
        const Operand& value =
            instruction.operands[instruction.opcode == Opcode::StoreField ? 1 : 2];
        ValueSet stored = values_of(value);
        if (stored.empty()) return;
        std::string into = instruction.opcode == Opcode::StoreField
                               ? local_name(base) + "." + instruction.field_name
                               : "an element of " + local_name(base);
        ReasonStep origin{
            instruction.site_position(),
            "stored into " + into + " at " + at + " (through variable " + local_name(value) + ")"};
        for (AbstractValue object : values_of(base)) add_content(object, stored, origin);
        return;
      }
      case Opcode::LoadGlobal:
        add_points_to(instruction.result_index, {AbstractValue::external()});
        return;
      case Opcode::StoreGlobal:
        add_fact(values_of(instruction.operands[0]), OwnershipClass::GlobalShared,
                 "stored into global @" + instruction.global_name,
                 {{instruction.site_position(), "stored into global @" + instruction.global_name +
                                                    " at " + at + " through variable " +
                                                    local_name(instruction.operands[0])}});
        return;
      case Opcode::Call:
      case Opcode::Go:
        apply_call(instruction, at);
        return;
      case Opcode::Send: {
        ReasonStep step{instruction.site_position(),
                        "sent on the channel " + local_name(instruction.operands[0]) + " at " + at +
                            " through variable " + local_name(instruction.operands[1])};
        add_fact(values_of(instruction.operands[1]), OwnershipClass::GoroutineShared,
                 "sent on a channel", {step});
        add_sent(values_of(instruction.operands[1]), step);
        return;
      }
      case Opcode::Receive:
        add_points_to(instruction.result_index, {AbstractValue::received()});
        return;
      case Opcode::Return:
        if (instruction.operands.empty()) return;
        for (AbstractValue value : values_of(instruction.operands[0])) {
          if (!graph_.returned.insert(value).second) continue;
          changed_ = true;
          graph_.return_origins.emplace(
              value, ReasonStep{instruction.site_position(),
                                "returned from " + function_.name + " at " + at +
                                    " through variable " + local_name(instruction.operands[0])});
        }
        return;
      case Opcode::Binary:
      case Opcode::Length:
      case Opcode::Close:
      case Opcode::Branch:
      case Opcode::Jump:
        return;
    }
  }

  void apply_call(const Instruction& instruction, const std::string& at) {
    const bool spawn = instruction.opcode == Opcode::Go;
    std::vector<const Operand*> inputs;
    for (const Operand& operand : instruction.operands) inputs.push_back(&operand);
    for (const Operand& operand : instruction.captures) inputs.push_back(&operand);
    std::vector<ValueSet> arguments;
    for (const Operand* operand : inputs) arguments.push_back(values_of(*operand));

    if (instruction.callee_unknown) {
      if (!graph_.unknown_code)
        graph_.unknown_code = ReasonStep{instruction.site_position(),
                                         std::string(spawn ? "a goroutine" : "a function") +
                                             " the analysis cannot see runs at " + at};
      for (size_t i = 0; i < inputs.size(); ++i) {
        std::string fact = spawn ? "passed as " + local_name(*inputs[i]) +
                                       " to the goroutine spawned at " + at +
                                       ", running a function the analysis cannot see"
                                 : "passed as " + local_name(*inputs[i]) +
                                       " to a function the analysis cannot see at " + at;
        add_fact(arguments[i], OwnershipClass::GlobalShared,
                 spawn ? "passed to an unknown goroutine" : "passed to an unknown function",
                 {{instruction.site_position(), fact}});
      }
      if (!instruction.result_name.empty())
        add_points_to(instruction.result_index, {AbstractValue::external()});
      return;
    }

    const uint32_t callee = instruction.callee_index;
    const FunctionSummary& summary = summaries_[callee];
    const std::string& callee_name = instruction.callee_name;
    const uint32_t argument_count = static_cast<uint32_t>(instruction.operands.size());
    if (spawn) {
      for (uint32_t i = 0; i < inputs.size(); ++i) {
        bool capture = i >= argument_count;
        std::string fact = capture ? "captured by the goroutine spawned at " + at +
                                         " through variable " + local_name(*inputs[i])
                                   : "passed as argument " + local_name(*inputs[i]) +
                                         " to the goroutine spawned at " + at + " (running " +
                                         callee_name + ")";
        add_fact(arguments[i], OwnershipClass::GoroutineShared,
                 capture ? "captured by a goroutine" : "passed to a goroutine",
                 {{instruction.site_position(), fact}});
      }
    }
    for (uint32_t i = 0; i < inputs.size(); ++i) {
      if (!summary.input_sent[i]) continue;
      add_sent(arguments[i],
               {instruction.site_position(),
                "passed as " + local_name(*inputs[i]) + " to " + callee_name + " (as " +
                    input_name(callee, i) + ") at " + at + ", which may send it on a channel"});
    }
    for (uint32_t i = 0; i < inputs.size(); ++i) {
      if (summary.input_level[i] < OwnershipClass::GoroutineShared) continue;
      ReasonStep step{instruction.site_position(), "passed as " + local_name(*inputs[i]) + " to " +
                                                       callee_name + " (as " +
                                                       input_name(callee, i) + ") at " + at};
      add_fact(arguments[i], summary.input_level[i],
               passed_to_reason(callee_name, summary.input_short_reasons[i]),
               chain({step}, summary.input_reasons[i]));
    }
    for (uint32_t j = 0; j < inputs.size(); ++j) {
      // The callee's view of input j is one collapsed region: a store into it may be a store
      // into any object reachable from the argument, not only into the argument's own objects.
      if (summary.inputs_stored_into_input[j].empty() &&
          summary.values_stored_into_input[j].empty())
        continue;  // the region (a walk of everything reachable) only when a store needs it
      const ValueSet region = reachable_values(graph_, heap_, arguments[j], &heap_sites_read_);
      for (uint32_t i : summary.inputs_stored_into_input[j]) {
        ReasonStep origin{instruction.site_position(),
                          callee_name + " (called at " + at + ") stores " + input_name(callee, i) +
                              " into the object of " + input_name(callee, j)};
        for (AbstractValue object : region) add_content(object, arguments[i], origin);
      }
      if (summary.values_stored_into_input[j].empty()) continue;
      ReasonStep origin{instruction.site_position(), callee_name + " (called at " + at +
                                                         ") stores it into the object of " +
                                                         input_name(callee, j)};
      for (AbstractValue object : region)
        add_content(object, summary.values_stored_into_input[j], origin);
    }
    for (const auto& [site, input] : summary.inputs_stored_into_site) {
      ReasonStep origin{instruction.site_position(), callee_name + " (called at " + at +
                                                         ") stores " + input_name(callee, input) +
                                                         " into " + sites_.describe_at(site)};
      add_content(AbstractValue::site(site), arguments[input], origin);
    }
    if (spawn || instruction.result_name.empty()) return;
    ValueSet result = summary.returned_values;
    for (uint32_t i = 0; i < inputs.size(); ++i) {
      if (!summary.input_returned[i]) continue;
      ValueSet region = reachable_values(graph_, heap_, arguments[i], &heap_sites_read_);
      result.insert(region.begin(), region.end());
    }
    add_points_to(instruction.result_index, result);
  }

  void add_sent(const ValueSet& values, const ReasonStep& origin) {
    for (AbstractValue value : values)
      if (graph_.sent.insert(value).second) graph_.send_origins.emplace(value, origin);
  }

  // A local channel of references that may be External: code the analysis cannot see may
  // reach it (through a global, or because that code made or was given it) and send on it.
  void record_external_channel() {
    for (const ir::Local& local : function_.locals) {
      if (module_.types.kind(local.type) != ir::TypeKind::Channel ||
          !module_.types.is_reference(module_.types.node(local.type).element))
        continue;
      const uint32_t index = static_cast<uint32_t>(&local - function_.locals.data());
      if (!graph_.points_to[index].count(AbstractValue::external())) continue;
      graph_.external_channel =
          ReasonStep{local.position, "the channel in %" + local.name + " (in " + function_.name +
                                         ") may be one a global or unknown code reaches"};
      return;
    }
  }

  // Own sites that outlive the frame: returned, stored into a caller's object, or of a size not
  // known when the frame is laid out.
  void record_frame_escapes() {
    for (AbstractValue value : graph_.returned) {
      if (!own_site(value)) continue;
      add_fact({value}, OwnershipClass::GoroutinePrivate, "returned from " + function_.name,
               {graph_.return_origins.at(value)});
    }
    const uint32_t input_count = function_.parameter_count + function_.capture_count;
    for (uint32_t j = 0; j < input_count; ++j) {
      auto contents = graph_.contents.find(AbstractValue::input(j));
      if (contents == graph_.contents.end()) continue;
      for (AbstractValue value : contents->second) {
        if (!own_site(value)) continue;
        const ReasonStep& origin = graph_.content_origins.at({AbstractValue::input(j), value});
        add_fact({value}, OwnershipClass::GoroutinePrivate, "stored into an object of the caller",
                 {{origin.position, origin.fact + ", an object the caller passed as " +
                                        input_name(function_index_, j)}});
      }
    }
    for (uint32_t site = 0; site < sites_.size(); ++site) {
      if (!own_site(AbstractValue::site(site))) continue;
      const Instruction& allocation = sites_.instruction(site);
      if (allocation.opcode == Opcode::New) continue;
      const Operand& size = allocation.operands[0];
      if (size.kind == OperandKind::Integer) continue;
      std::string what = allocation.opcode == Opcode::NewArray ? "length" : "capacity";
      add_fact({AbstractValue::site(site)}, OwnershipClass::GoroutinePrivate, "size not bounded",
               {{allocation.site_position(),
                 "its size is not bounded: the " + what + " " + local_name(size) + " at " +
                     where(allocation.site_position()) + " is not a constant"}});
    }
  }

  // Which inputs are reachable from `roots` (as reachable_values would find them), the walk
  // stopping once every input is found: on a call chain, whose objects link into a chain through
  // the heap, each function then walks only to its own inputs, not the whole chain. Stopping early
  // is exact (the answer cannot grow) and the heap entries looked up are recorded, so a growth of
  // one of them solves this function again.
  std::vector<bool> reachable_inputs(const ValueSet& roots, uint32_t input_count) {
    std::vector<bool> reached(input_count, false);
    uint32_t missing = input_count;
    ValueSet seen;
    std::vector<AbstractValue> pending;
    // Marks a value when it is first seen (not when it is expanded), so the walk stops as soon as
    // the last input shows up among the successors, before going deeper.
    auto see = [&](AbstractValue value) {
      if (!seen.insert(value).second) return;
      if (value.kind == ValueKind::Input && value.index < input_count && !reached[value.index]) {
        reached[value.index] = true;
        --missing;
      }
      pending.push_back(value);
    };
    for (AbstractValue root : roots) see(root);
    while (!pending.empty() && missing != 0) {
      AbstractValue value = pending.back();
      pending.pop_back();
      auto local = graph_.contents.find(value);
      if (local != graph_.contents.end())
        for (AbstractValue next : local->second) see(next);
      if (value.kind == ValueKind::Site && missing != 0) {
        heap_sites_read_.insert(value.index);
        auto shared = heap_.find(value.index);
        if (shared != heap_.end())
          for (AbstractValue next : shared->second) see(next);
      }
    }
    return reached;
  }

  void derive_summary() {
    const uint32_t input_count = function_.parameter_count + function_.capture_count;
    FunctionSummary& summary = graph_.summary;
    summary = FunctionSummary(input_count);
    for (const EscapeFact& fact : graph_.facts) {
      if (fact.level < OwnershipClass::GoroutineShared) continue;
      const std::vector<bool> reached = reachable_inputs({fact.target}, input_count);
      for (uint32_t i = 0; i < input_count; ++i) {
        if (!reached[i] || fact.level <= summary.input_level[i]) continue;
        summary.input_level[i] = fact.level;
        summary.input_short_reasons[i] = fact.short_reason;
        summary.input_reasons[i] = fact.reasons;
        if (fact.target != AbstractValue::input(i))
          summary.input_reasons[i] = chain(
              fact.reasons,
              {{fact.reasons.empty() ? ir::SourcePosition{} : fact.reasons[0].position,
                "the object of " + input_name(function_index_, i) + " is reachable from it"}});
      }
    }
    const std::vector<bool> sent = reachable_inputs(graph_.sent, input_count);
    for (uint32_t i = 0; i < input_count; ++i) {
      summary.input_returned[i] = graph_.returned.count(AbstractValue::input(i)) != 0;
      summary.input_sent[i] = sent[i];
    }
    for (const auto& [object, values] : graph_.contents) {
      for (AbstractValue value : values) {
        if (object.kind == ValueKind::Input) {
          if (value.kind == ValueKind::Input)
            summary.inputs_stored_into_input[object.index].insert(value.index);
          else
            summary.values_stored_into_input[object.index].insert(value);
        } else if (value.kind == ValueKind::Input) {
          summary.inputs_stored_into_site.insert({object.index, value.index});
        }
      }
    }
    for (AbstractValue value : graph_.returned)
      if (value.context_free()) summary.returned_values.insert(value);
  }

  const SiteTable& sites_;
  const ir::Module& module_;
  const ir::Function& function_;
  const uint32_t function_index_;
  const std::vector<FunctionSummary>& summaries_;
  const ModuleHeap& heap_;
  const ChannelWorld& channels_;
  FunctionGraph graph_;
  std::set<std::pair<AbstractValue, OwnershipClass>> fact_keys_;
  // The heap entries this solve looked up (load_from is const: a record, not state of the solve).
  mutable std::set<uint32_t> heap_sites_read_;
  bool changed_ = false;
};

}  // namespace

FunctionGraph solve_function(const SiteTable& sites, uint32_t function_index,
                             const std::vector<FunctionSummary>& summaries, const ModuleHeap& heap,
                             const ChannelWorld& channels) {
  return Solver(sites, function_index, summaries, heap, channels).run();
}

ValueSet reachable_values(const FunctionGraph& graph, const ModuleHeap& heap, const ValueSet& roots,
                          std::set<uint32_t>* heap_sites_read) {
  ValueSet seen;
  std::vector<AbstractValue> pending(roots.begin(), roots.end());
  while (!pending.empty()) {
    AbstractValue value = pending.back();
    pending.pop_back();
    if (!seen.insert(value).second) continue;
    auto local = graph.contents.find(value);
    if (local != graph.contents.end())
      pending.insert(pending.end(), local->second.begin(), local->second.end());
    if (value.kind == ValueKind::Site) {
      if (heap_sites_read != nullptr) heap_sites_read->insert(value.index);
      auto shared = heap.find(value.index);
      if (shared != heap.end())
        pending.insert(pending.end(), shared->second.begin(), shared->second.end());
    }
  }
  return seen;
}

}  // namespace usgc::jitgen::escape
