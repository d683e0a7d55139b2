// jitgen/escape/channel_world.cpp — the channel-contents rule (channel_world.hpp): the mailbox is
// everything reachable from what any function may send; it is global when it holds an External
// value or a GLOBAL_SHARED site, or when unknown code may send on a channel it can reach.
#include "jitgen/escape/channel_world.hpp"

namespace usgc::jitgen::escape {

ChannelWorld decide_channel_world(const SiteTable& sites, const std::vector<FunctionGraph>& graphs,
                                  const ModuleHeap& heap, const std::vector<OwnershipClass>& site_classes,
                                  const std::vector<std::string>& site_short_reasons) {
  ChannelWorld world;
  auto global = [&](std::vector<ReasonStep> reasons) {
    world.received_level = OwnershipClass::GlobalShared;
    world.reasons = std::move(reasons);
    return world;
  };
  // 1. A global object in the mailbox, first in module order (function, then value order).
  for (const FunctionGraph& graph : graphs) {
    for (AbstractValue root : graph.sent) {
      const ReasonStep& sent = graph.send_origins.at(root);
      for (AbstractValue value : reachable_values(graph, heap, {root})) {
        const bool reached_from = value != root;
        if (value.kind == ValueKind::External) {
          return global({{sent.position, sent.fact + (reached_from ? ", which reaches" : ", being") +
                                             " an object a global reaches: any received object may be one"}});
        }
        if (value.kind == ValueKind::Site && site_classes[value.index] == OwnershipClass::GlobalShared) {
          return global({{sent.position, sent.fact + (reached_from ? ", which reaches " : ", being ") +
                                             sites.describe_at(value.index) + " (global: " +
                                             site_short_reasons[value.index] +
                                             "): any received object may be one"}});
        }
      }
    }
  }
  // 2. Unknown code with a channel it can reach.
  const FunctionGraph* unknown = nullptr;
  for (const FunctionGraph& graph : graphs)
    if (graph.unknown_code) {
      unknown = &graph;
      break;
    }
  if (unknown == nullptr) return world;
  for (const FunctionGraph& graph : graphs)
    if (graph.external_channel)
      return global({*unknown->unknown_code,
                     {graph.external_channel->position,
                      graph.external_channel->fact +
                          ": that code may send objects a global reaches on it, and any received object may be one"}});
  for (uint32_t site = 0; site < sites.size(); ++site) {
    if (sites.instruction(site).opcode != ir::Opcode::MakeChan ||
        site_classes[site] != OwnershipClass::GlobalShared)
      continue;
    return global({*unknown->unknown_code,
                   {sites.instruction(site).site_position(),
                    sites.describe_at(site) + " is global (" + site_short_reasons[site] +
                        "): that code may send objects a global reaches on it, and any received "
                        "object may be one"}});
  }
  return world;
}

}  // namespace usgc::jitgen::escape
