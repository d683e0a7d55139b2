// jitgen/interpreter/run_state.cpp — the channel registry and the stop protocol (run_state.hpp).
#include "jitgen/interpreter/run_state.hpp"

namespace usgc::jitgen::interpreter {

ChannelRegistry::~ChannelRegistry() {
  destroy_all();
}

void ChannelRegistry::add(usgc_chan* channel) {
  auto* entry = new Entry{channel, head_.load(std::memory_order_relaxed)};
  // Release: nothing reads the entry before destroy_all (after the run); the CAS only orders
  // concurrent pushes.
  while (!head_.compare_exchange_weak(entry->next, entry, std::memory_order_release,
                                      std::memory_order_relaxed)) {
  }
}

void ChannelRegistry::destroy_all() {
  Entry* entry = head_.exchange(nullptr, std::memory_order_acquire);
  while (entry != nullptr) {
    Entry* next = entry->next;
    usgc_chan_destroy(entry->channel);  // no goroutine of the run is left to wait on it
    delete entry;
    entry = next;
  }
}

RunState::RunState(const ir::Module& module_in, const escape::EscapeAnalysis& analysis_in,
                   const ProgramLayout& layout_in, const RunOptions& options_in)
    : module(module_in),
      analysis(analysis_in),
      layout(layout_in),
      options(options_in),
      decision_of_site(analysis_in.sites.size(), nullptr),
      allocations_per_site(analysis_in.sites.size()) {
  for (const escape::SiteDecision& decision : analysis.sites)
    decision_of_site[decision.site_index] = &decision;
  uint32_t references = 0, scalars = 0;
  for (const ir::Global& global : module.globals) {
    bool reference = module.types.is_reference(global.type);
    global_is_reference.push_back(reference);
    slot_of_global.push_back(reference ? references++ : scalars++);
  }
  reference_globals = std::make_unique<void*[]>(references);
  scalar_globals = std::make_unique<std::atomic<int64_t>[]>(scalars);
}

void RunState::stop(RunStatus status, std::string message,
                    std::optional<CheckViolation> violation) {
  {
    std::lock_guard<std::mutex> guard(outcome_lock);
    if (!outcome_set) {  // the first end wins: a failure after the entry returned is not one
      outcome_set = true;
      outcome_status = status;
      outcome_message = std::move(message);
      outcome_violation = std::move(violation);
    }
  }
  // Release: a goroutine that sees `stopping` also sees the outcome (it may report nothing more).
  stopping.store(true, std::memory_order_release);
  // Acquire: the hook's context, as the runner made it before publishing the hook.
  if (const StopHook* hook = stop_hook.load(std::memory_order_acquire)) hook->call(hook->context);
  if (!stop_channel_closed.exchange(true, std::memory_order_acq_rel) && stop_channel != nullptr)
    usgc_chan_close(stop_channel);
}

std::string RunState::where(ir::SourcePosition position) const {
  return escape::format_position(module.file_name, position);
}

}  // namespace usgc::jitgen::interpreter
