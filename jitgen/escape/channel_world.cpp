// jitgen/escape/channel_world.cpp — the channel-contents rule (channel_world.hpp): the mailbox is
// everything reachable from what any function may send; it is global when it holds an External
// value or a GLOBAL_SHARED site, or when unknown code may send on a channel it can reach.
#include "jitgen/escape/channel_world.hpp"

namespace usgc::jitgen::escape {

std::vector<MailboxValue> mailbox_contents(const std::vector<FunctionGraph>& graphs,
                                           const ModuleHeap& heap) {
  std::vector<MailboxValue> mailbox;
  ValueSet seen;
  for (const FunctionGraph& graph : graphs)
    for (AbstractValue root : graph.sent)
      for (AbstractValue value : reachable_values(graph, heap, {root}))
        if (value.context_free() && seen.insert(value).second)
          mailbox.push_back({value, &graph.send_origins.at(root), value != root});
  return mailbox;
}

std::optional<ReceivedMadeGlobal> received_made_global(
    const SiteTable& sites, const std::vector<FunctionGraph>& graphs, const ModuleHeap& heap,
    const std::vector<OwnershipClass>& site_classes) {
  for (const FunctionGraph& graph : graphs)
    for (const EscapeFact& fact : graph.facts)
      if (fact.target.kind == ValueKind::Received && fact.level == OwnershipClass::GlobalShared)
        return ReceivedMadeGlobal{"a received object it may be is " + fact.short_reason,
                                  fact.reasons};
  for (const auto& [site, contents] : heap)
    if (contents.count(AbstractValue::received()) &&
        site_classes[site] == OwnershipClass::GlobalShared)
      return ReceivedMadeGlobal{
          "a received object it may be is reachable from a global object",
          {{sites.instruction(site).site_position(),
            sites.describe_at(site) + " is global and holds an object received from a channel"}}};
  return std::nullopt;
}

ChannelWorld decide_channel_world(const SiteTable& sites, const std::vector<FunctionGraph>& graphs,
                                  const ModuleHeap& heap,
                                  const std::vector<OwnershipClass>& site_classes,
                                  const std::vector<std::string>& site_short_reasons) {
  ChannelWorld world;
  auto global = [&](std::vector<ReasonStep> reasons) {
    world.received_level = OwnershipClass::GlobalShared;
    world.reasons = std::move(reasons);
    return world;
  };
  // 1. A global object in the mailbox, first in module order.
  for (const MailboxValue& entry : mailbox_contents(graphs, heap)) {
    const char* how = entry.reached_from_sent ? ", which reaches " : ", being ";
    if (entry.value.kind == ValueKind::External)
      return global({{entry.sent->position,
                      entry.sent->fact + how +
                          "an object a global reaches: any received object may be one"}});
    if (entry.value.kind == ValueKind::Site &&
        site_classes[entry.value.index] == OwnershipClass::GlobalShared)
      return global(
          {{entry.sent->position, entry.sent->fact + how + sites.describe_at(entry.value.index) +
                                      " (global: " + site_short_reasons[entry.value.index] +
                                      "): any received object may be one"}});
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
      return global(
          {*unknown->unknown_code,
           {graph.external_channel->position,
            graph.external_channel->fact + ": that code may send objects a global reaches on it, "
                                           "and any received object may be one"}});
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
