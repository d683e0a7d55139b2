// jitgen/interpreter/decision_checks.cpp — the rules of checked mode (decision_checks.hpp).
#include "jitgen/interpreter/decision_checks.hpp"

#include <cstdio>

namespace usgc::jitgen::interpreter {
namespace {

using escape::OwnershipClass;

struct StackFrame {
  uint32_t depth;
  uint32_t serial;
};

// The class decided for this object: STACK_LOCAL when it was made so (in the arena, or as a
// stack substitute) — its site's decision, or a per-call one (escape::CallerFrameCall) — else
// its site's decision.
OwnershipClass class_of_object(const SiteLayout& site, const void* object) {
  uint64_t header = USGC_HEADER_OF(object);
  bool stack = (header & USGC_HEADER_CLASS_MASK) == USGC_STACK_LOCAL ||
               (header & USGC_HEADER_STACK_SUBSTITUTE) != 0;
  return stack ? OwnershipClass::StackLocal : site.decided;
}

// The frame of a STACK_LOCAL object, when its layout has a check word.
std::optional<StackFrame> frame_of(const SiteLayout& site, const void* object) {
  if (class_of_object(site, object) != OwnershipClass::StackLocal || site.check_word_offset == 0)
    return std::nullopt;
  uint64_t stamp =
      *reinterpret_cast<const uint64_t*>(static_cast<const char*>(object) + site.check_word_offset);
  return StackFrame{static_cast<uint32_t>(stamp >> 32), static_cast<uint32_t>(stamp)};
}

const char* class_name(OwnershipClass ownership) {
  return escape::ownership_class_short_name(ownership);
}

CheckViolation violation(const CheckContext& context, const char* rule, const SiteLayout& site,
                         const void* object, const std::string& what) {
  const escape::SiteDecision& decision = *context.run.decision_of_site[site.site_index];
  ir::SourcePosition at = context.instruction.site_position();
  OwnershipClass decided = class_of_object(site, object);
  std::string reason =
      decided == site.decided ? decision.short_reason : "allocated in its caller's frame at a call";
  return {rule, site.site_index, at,
          context.run.where(at) + ": checked mode: " + site.description + " was decided " +
              class_name(decided) + " (" + reason + "), but " + what + " (in " +
              context.function_name + ")"};
}

std::string describe_target(const SiteLayout& target, const void* object) {
  return target.description + " (" + class_name(class_of_object(target, object)) + ")";
}

// Every reference an IR program holds is to an object of one of its sites.
CheckViolation foreign_object(const CheckContext& context, const void* object) {
  ir::SourcePosition at = context.instruction.site_position();
  char address[32];
  std::snprintf(address, sizeof address, "%p", object);
  return {"interpreter/foreign-object", 0, at,
          context.run.where(at) + ": checked mode: object " + address +
              " was made by no site of this program (interpreter bug)"};
}

}  // namespace

std::optional<CheckViolation> check_access(const CheckContext& context, void* object) {
  const SiteLayout* site = context.run.layout.site_of_object(object);
  if (site == nullptr) return foreign_object(context, object);
  uint64_t header = USGC_HEADER_OF(object);
  auto ownership = static_cast<usgc_ownership>(header & USGC_HEADER_CLASS_MASK);
  if (ownership == USGC_STACK_LOCAL || ownership == USGC_GOROUTINE_PRIVATE) {
    // The owner is the goroutine's heap id, or its old-generation id (heap_id | 1) once a private
    // collection promoted the object (docs/gc.md, generations).
    uint64_t owner = header >> USGC_HEADER_OWNER_SHIFT;
    if ((owner | 1) != (usgc_current_mutator->heap_id | 1))
      return violation(context, "owner/foreign", *site, object,
                       "goroutine " + std::to_string(usgc_goroutine_self()) +
                           " reached it, and it belongs to another goroutine");
  }
  if ((header & USGC_HEADER_PUBLISHED) != 0 &&
      class_of_object(*site, object) < OwnershipClass::GoroutineShared)
    return violation(context, "header/published", *site, object,
                     "the runtime published it (other goroutines reach it)");
  if (std::optional<StackFrame> frame = frame_of(*site, object)) {
    const std::vector<uint32_t>& live = context.frames.serials;
    if (frame->depth >= live.size() || live[frame->depth] != frame->serial)
      return violation(context, "frame/dead", *site, object,
                       "it is used after the frame that allocated it returned");
  }
  return std::nullopt;
}

std::optional<CheckViolation> check_store(const CheckContext& context, void* target, void* value) {
  if (value == nullptr) return std::nullopt;
  const SiteLayout* target_site = context.run.layout.site_of_object(target);
  const SiteLayout* value_site = context.run.layout.site_of_object(value);
  if (target_site == nullptr) return foreign_object(context, target);
  if (value_site == nullptr) return foreign_object(context, value);
  const OwnershipClass target_class = class_of_object(*target_site, target);
  const OwnershipClass value_class = class_of_object(*value_site, value);
  if (target_class == OwnershipClass::StackLocal) {
    if (value_class != OwnershipClass::StackLocal) return std::nullopt;
    std::optional<StackFrame> value_frame = frame_of(*value_site, value);
    std::optional<StackFrame> target_frame = frame_of(*target_site, target);
    if (value_frame && target_frame && value_frame->depth > target_frame->depth)
      return violation(context, "frame-escape/store", *value_site, value,
                       "it is stored into " + describe_target(*target_site, target) +
                           ", an object of an older frame that outlives its own");
    return std::nullopt;
  }
  if (value_class >= target_class) return std::nullopt;
  if (value_class == OwnershipClass::StackLocal)
    return violation(context, "frame-escape/store", *value_site, value,
                     "it is stored into " + describe_target(*target_site, target) +
                         ", a heap object that outlives its frame");
  const char* consequence = target_class == OwnershipClass::GlobalShared ? "a global reaches it"
                            : target_class == OwnershipClass::GoroutineShared
                                ? "other goroutines reach it"
                                : "it outlives its frame";
  return violation(
      context, "class-order/store", *value_site, value,
      "it is stored into " + describe_target(*target_site, target) + ": " + consequence);
}

std::optional<CheckViolation> check_return(const CheckContext& context, void* value,
                                           uint32_t frame_depth) {
  if (value == nullptr) return std::nullopt;
  const SiteLayout* site = context.run.layout.site_of_object(value);
  if (site == nullptr) return foreign_object(context, value);
  std::optional<StackFrame> frame = frame_of(*site, value);
  if (frame && frame->depth >= frame_depth)
    return violation(context, "frame-escape/return", *site, value,
                     "it is returned from the frame that allocated it");
  return std::nullopt;
}

std::optional<CheckViolation> check_publish(const CheckContext& context, void* value,
                                            OwnershipClass required, const char* rule,
                                            const std::string& what) {
  if (value == nullptr) return std::nullopt;
  const SiteLayout* site = context.run.layout.site_of_object(value);
  if (site == nullptr) return foreign_object(context, value);
  if (class_of_object(*site, value) >= required) return std::nullopt;
  return violation(context, rule, *site, value, what);
}

}  // namespace usgc::jitgen::interpreter
