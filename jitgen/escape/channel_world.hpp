// jitgen/escape/channel_world.hpp — what a `recv` may yield, as far as a store into a received
// object is concerned (the channel-contents rule of the escape analysis).
//
// The analysis does not tell channels apart: every value sent on any channel, and everything
// reachable from it, may come out of any `recv` (one mailbox per module, the sound reading of a
// flow-insensitive analysis). A store into a received object therefore makes the stored value
// reachable from whatever the mailbox may hold:
//   * GoroutineShared: other goroutines reach a received object (the usual case);
//   * GlobalShared: the mailbox may hold an object a global reaches — a site decided
//     GLOBAL_SHARED or an External value is sent (or reachable from a sent object), or code the
//     analysis cannot see runs while a channel of references is reachable from a global or from
//     that code (unknown code may send what the globals reach on it).
// Invariants:
//   * monotone: the level only rises with more facts; analysis.cpp solves the module with the
//     shared level first and, when decide_channel_world() says global, once more with it — the
//     second solution's facts are a superset, so one more round never changes the level back.
//   * deterministic: the reason is that of the first offending value in module order.
// The rule also runs the other way (received_made_global): a received object that becomes
// global makes every site in the mailbox global (analysis.cpp, step 3).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "jitgen/escape/decision.hpp"
#include "jitgen/escape/function_graph.hpp"

namespace usgc::jitgen::escape {

// The mailbox: every value reachable from what any function may send, first occurrence in
// module order, with the send that carries it (its root's first send).
struct MailboxValue {
  AbstractValue value;
  const ReasonStep* sent;
  bool reached_from_sent;  // not sent itself: reachable from a sent object
};
std::vector<MailboxValue> mailbox_contents(const std::vector<FunctionGraph>& graphs,
                                           const ModuleHeap& heap);

// The other direction of the same rule: a received object made global (stored into a global or
// a global object, given to unknown code) may be any object in the mailbox, so every site there
// is global. The first such fact on Received in module order, or a GLOBAL_SHARED site whose
// content holds a received object; nullopt when there is none.
struct ReceivedMadeGlobal {
  std::string short_reason;
  std::vector<ReasonStep> reasons;
};
std::optional<ReceivedMadeGlobal> received_made_global(
    const SiteTable& sites, const std::vector<FunctionGraph>& graphs, const ModuleHeap& heap,
    const std::vector<OwnershipClass>& site_classes);

// `site_classes[s]` / `site_short_reasons[s]`: site s's class after propagation (analysis.cpp,
// step 3) in the solution `graphs`/`heap`.
ChannelWorld decide_channel_world(const SiteTable& sites, const std::vector<FunctionGraph>& graphs,
                                  const ModuleHeap& heap,
                                  const std::vector<OwnershipClass>& site_classes,
                                  const std::vector<std::string>& site_short_reasons);

}  // namespace usgc::jitgen::escape
