// tests/jitgen/random_usir_calls.cpp — the generator's calls, spawns and channel episodes, and the
// bodies of workers and recursive functions.
// The design and the invariants: random_usir_program.cpp.
#include "tests/jitgen/random_usir_generator.hpp"

#include <algorithm>

namespace usgc::jitgen::random_usir {
namespace generator {

// ---------------------------------------------------------------------------------------------
// Calls and goroutines.

// Later functions of the wanted kind whose cost fits `trips` times; uncalled ones preferred.
std::optional<uint32_t> FunctionGenerator::pick_callee(bool workers, uint64_t trips) {
  std::vector<uint32_t> candidates, uncalled;
  for (uint32_t j = index_ + 1; j < program_.functions.size(); ++j) {
    const FunctionShape& f = program_.functions[j];
    if (shape_.kind == FunctionKind::kMutual && j == shape_.partner) continue;  // not accounted yet
    if ((f.kind == FunctionKind::kWorker) != workers || !affordable(trips * f.total_cost + 16))
      continue;
    candidates.push_back(j);
    if (!f.called) uncalled.push_back(j);
  }
  if (!uncalled.empty() && random_.percent(70))
    return uncalled[random_.below(static_cast<uint32_t>(uncalled.size()))];
  if (candidates.empty()) return std::nullopt;
  return candidates[random_.below(static_cast<uint32_t>(candidates.size()))];
}

std::vector<std::string> FunctionGenerator::arguments_for(uint32_t callee, uint32_t depth,
                                                          uint32_t done, uint32_t channel) {
  std::vector<std::string> arguments;
  for (const InputShape& input : program_.functions[callee].inputs) {
    std::string value = argument(input, depth, done, channel);
    if (input.capture && value[0] != '%') {  // captures name locals: a constant goes through one
      const uint32_t local = new_local("n", int_type(), LocalUse::kFrozenInt, false);
      emit(name(local) + " = " + value);
      value = name(local);
    }
    arguments.push_back(value);
  }
  return arguments;
}

// The result of a call: kept non-null when the callee promises it, else guarded maybe.
void FunctionGenerator::call_with_result(uint32_t callee, const std::string& call) {
  const FunctionShape& f = program_.functions[callee];
  if (!f.result || random_.percent(15)) return emit("call " + call);
  const bool nonnull = f.result->kind == TypeKind::kObject && f.result_nonnull;
  const uint32_t result = destination(*f.result, nonnull);
  emit(name(result) + " = call " + call);
  if (f.result->kind == TypeKind::kInt) return;
  assign(result, nonnull);
  if (!nonnull && scope().depth < program_.options.max_nesting && random_.percent(40))
    guard(result);
}

bool FunctionGenerator::call_helper(std::optional<uint32_t> forced) {
  std::optional<uint32_t> callee = forced;
  if (!callee) callee = pick_callee(random_.percent(80) ? false : true, 1);
  if (!callee) return false;
  FunctionShape& f = program_.functions[*callee];
  f.called = true;
  if (f.kind != FunctionKind::kWorker) {
    const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, 0, 0);
    call_with_result(*callee, call_text(*callee, arguments));
    charge_call(f.total_cost);
    return true;
  }
  // A worker called directly: nobody runs beside it, so its channels are buffered for all of
  // its traffic, and what it receives is sent before the call.
  const uint32_t done = new_local("done", channel_of(-1), LocalUse::kChannel, true);
  emit(name(done) + " = makechan int, 1");
  uint32_t channel = 0;
  const InputShape* messages = f.input(InputRole::kMessagesIn);
  if (messages == nullptr) messages = f.input(InputRole::kMessagesOut);
  const uint32_t s = messages != nullptr ? static_cast<uint32_t>(messages->type.structure) : 0;
  if (messages != nullptr) {
    channel = new_local("ch", messages->type, LocalUse::kChannel, true);
    emit(name(channel) + " = makechan *" + program_.structs[s].name + ", " +
         std::to_string(messages->count));
    if (messages->role == InputRole::kMessagesIn) {
      send_messages(channel, s, messages->count);
      if (random_.percent(40)) emit("close " + name(channel));
    }
  }
  const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, done, channel);
  emit("call " + call_text(*callee, arguments));
  charge_call(f.total_cost);
  if (messages != nullptr && messages->role == InputRole::kMessagesOut)
    receive_messages(
        channel, s,
        random_.between(0, messages->count) + (f.closes_out && random_.percent(30) ? 1 : 0));
  return true;
}

// `go worker(...)` once or in a counted loop, with the done channel and the message traffic the
// worker's signature promises (the matched-traffic invariant), the join owed to this scope.
bool FunctionGenerator::spawn_worker(std::optional<uint32_t> forced) {
  uint32_t copies = random_.percent(30) ? random_.between(2, 3) : 1;
  std::optional<uint32_t> callee = forced;
  if (!callee) callee = pick_callee(true, copies);
  if (!callee) return false;
  FunctionShape& f = program_.functions[*callee];
  if (f.closes_out) copies = 1;  // only one goroutine may close the channel it sends on
  if (!affordable(copies * f.total_cost + 16)) return false;
  f.called = true;
  const uint32_t done = new_local("done", channel_of(-1), LocalUse::kChannel, true);
  emit(name(done) + " = makechan int, " + std::to_string(copies));
  const InputShape* messages = f.input(InputRole::kMessagesIn);
  if (messages == nullptr) messages = f.input(InputRole::kMessagesOut);
  uint32_t channel = 0, s = 0, total = 0;
  bool sent_before = false;
  if (messages != nullptr) {
    s = static_cast<uint32_t>(messages->type.structure);
    total = copies * messages->count;
    const uint32_t roll = random_.below(3);
    const uint32_t capacity = roll == 0 ? 0 : roll == 1 ? 1 : total;
    channel = new_local("ch", messages->type, LocalUse::kChannel, true);
    emit(name(channel) + " = makechan *" + program_.structs[s].name + ", " +
         std::to_string(capacity));
    if (messages->role == InputRole::kMessagesIn && capacity >= total && random_.percent(50)) {
      send_messages(channel, s, total);  // all buffered before anyone receives
      if (random_.percent(40)) emit("close " + name(channel));
      sent_before = true;
    }
  }
  auto spawn = [this, callee, done, channel](uint32_t) {
    const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, done, channel);
    emit("go " + call_text(*callee, arguments));
  };
  if (copies == 1) {
    spawn(0);
  } else {
    loop(std::to_string(copies), copies, spawn);
  }
  charge_call(copies * f.total_cost);
  if (messages != nullptr && messages->role == InputRole::kMessagesIn && !sent_before) {
    send_messages(channel, s, total);
    if (random_.percent(30)) emit("close " + name(channel));
  }
  if (messages != nullptr && messages->role == InputRole::kMessagesOut)
    receive_messages(channel, s, total + (f.closes_out && random_.percent(40) ? 1 : 0));
  scope().joins.push_back({done, copies});
  return true;
}

// `go helper(...)` nobody waits for: it finishes, or is stopped when main returns.
bool FunctionGenerator::spawn_and_forget() {
  std::optional<uint32_t> callee = pick_callee(false, 1);
  if (!callee) return false;
  FunctionShape& f = program_.functions[*callee];
  f.called = true;
  const std::vector<std::string> arguments = arguments_for(*callee, UINT32_MAX, 0, 0);
  emit("go " + call_text(*callee, arguments));
  charge_call(f.total_cost);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Channels.

bool FunctionGenerator::local_channel() {
  const uint32_t s = random_.below(static_cast<uint32_t>(program_.structs.size()));
  const uint32_t count = random_.between(1, 3);
  if (!affordable(count * 16)) return false;
  const uint32_t channel =
      new_local("ch", channel_of(static_cast<int32_t>(s)), LocalUse::kChannel, true);
  emit(name(channel) + " = makechan *" + program_.structs[s].name + ", " +
       std::to_string(count + random_.below(2)));
  send_messages(channel, s, count);
  const bool closed = random_.percent(35);
  if (closed) emit("close " + name(channel));
  receive_messages(channel, s, count + (closed && random_.percent(50) ? 1 : 0));
  return true;
}

void FunctionGenerator::send_messages(uint32_t channel, uint32_t s, uint32_t count) {
  auto send_one = [this, channel, s](uint32_t) {
    const std::string value = send_value(s);
    emit("send " + name(channel) + ", " + value);
  };
  if (count > 1 && random_.percent(40)) return loop(std::to_string(count), count, send_one);
  for (uint32_t i = 0; i < count; ++i) send_one(0);
}

void FunctionGenerator::receive_messages(uint32_t channel, uint32_t s, uint32_t count) {
  auto receive_one = [this, channel, s](uint32_t) { receive(channel, s); };
  if (count > 1 && random_.percent(40)) return loop(std::to_string(count), count, receive_one);
  for (uint32_t i = 0; i < count; ++i) receive_one(0);
}

// `%r = recv %ch`, then what the channel mode allows with %r (the channel-region rule).
void FunctionGenerator::receive(uint32_t channel, uint32_t s) {
  if (!program_.confined()) {
    const uint32_t result = destination(object_type(s), false);
    emit(name(result) + " = recv " + name(channel));
    assign(result, false);
    if (scope().depth < program_.options.max_nesting + 1 && random_.percent(70)) guard(result);
    return;
  }
  std::optional<uint32_t> reused = pick_any(object_type(s), LocalUse::kConfined);
  const uint32_t received = reused && !scope().frozen.count(*reused) && random_.percent(40)
                                ? *reused
                                : new_local("r", object_type(s), LocalUse::kConfined, false);
  emit(name(received) + " = recv " + name(channel));
  use_received(received, 0);
}

void FunctionGenerator::use_received(uint32_t received, uint32_t depth) {
  const StructShape& s = program_.structs[locals_[received].type.structure];
  std::vector<const FieldShape*> links;
  for (const FieldShape& field : s.fields)
    if (field.type.kind == TypeKind::kObject) links.push_back(&field);
  emit(name(condition_) + " = ne " + name(received) + ", null");
  branch(
      [&] {
        scope().frozen.insert(received);
        for (uint32_t n = random_.between(1, 3); n > 0; --n) {
          const uint32_t roll = random_.below(100);
          const FieldShape* link =
              links.empty() ? nullptr : links[random_.below(static_cast<uint32_t>(links.size()))];
          if (roll < 25 || (link == nullptr && roll < 90)) {
            const uint32_t value = int_destination();
            emit(name(value) + " = load " + name(received) + ".v");
          } else if (roll < 40) {
            const std::string value = int_value();
            emit("store " + name(received) + ".v, " + value);
          } else if (roll < 65) {  // an object loaded out of a received one is confined too
            std::optional<uint32_t> reused = pick_any(link->type, LocalUse::kConfined);
            const uint32_t inner = reused && !scope().frozen.count(*reused) && random_.percent(30)
                                       ? *reused
                                       : new_local("r", link->type, LocalUse::kConfined, false);
            emit(name(inner) + " = load " + name(received) + "." + link->name);
            if (depth < 1) use_received(inner, depth + 1);
          } else if (roll < 90 && program_.stores_into_received()) {
            const uint32_t target = static_cast<uint32_t>(link->type.structure);
            std::string value = "null";
            std::optional<uint32_t> confined = pick_any(link->type, LocalUse::kConfined);
            const uint32_t pick = random_.below(100);
            if (pick < 30 && confined) {
              value = name(*confined);
            } else if (pick < 90 && program_.mode == ChannelMode::kStoresIntoReceived) {
              value = object_value(target, true, true);
            } else if (pick < 90) {  // kFreshSends: a new object only the received one holds
              const uint32_t fresh = new_local("msg", link->type, LocalUse::kMessage, true);
              emit(name(fresh) + " = new " + program_.structs[target].name);
              value = name(fresh);
            }
            emit("store " + name(received) + "." + link->name + ", " + value);
          } else if (program_.options.allow_received_published_globally) {
            const GlobalShape* global = nullptr;
            for (const GlobalShape& g : program_.globals)
              if (g.type == locals_[received].type) global = &g;
            if (global != nullptr && random_.percent(50)) {
              emit("store @" + global->name + ", " + name(received));
            } else {
              emit("call unknown(" + name(received) + ")");
            }
          }
        }
      },
      {});
}

// ---------------------------------------------------------------------------------------------
// Bodies.

// The worker's side of its message traffic, at the top level of its body.
void FunctionGenerator::worker_protocol() {
  for (InputRole role : {InputRole::kMessagesIn, InputRole::kMessagesOut}) {
    const InputShape* messages = shape_.input(role);
    if (messages == nullptr) continue;
    uint32_t channel = 0;
    while (locals_[channel].name != messages->name) ++channel;
    const uint32_t s = static_cast<uint32_t>(messages->type.structure);
    if (role == InputRole::kMessagesIn) {
      receive_messages(channel, s, messages->count);
    } else {
      send_messages(channel, s, messages->count);
      if (shape_.closes_out) emit("close " + name(channel));
    }
  }
}

// `if %depth > 0 { call self-or-partner(%depth - 1, ...); ...; ret } else { ...; ret }`.
void FunctionGenerator::recursion() {
  statements(random_.below(3));
  emit(name(condition_) + " = gt " + name(depth_local_) + ", 0");
  const std::string recurse = label("recurse"), base = label("base");
  terminate("br " + name(condition_) + ", " + recurse + ", " + base);
  begin_block(recurse);
  push_scope();
  const uint32_t less = new_local("less", int_type(), LocalUse::kFrozenInt, false);
  emit(name(less) + " = sub " + name(depth_local_) + ", 1");
  const FunctionShape& target = program_.functions[shape_.partner];
  for (uint32_t b = 0; b < shape_.branching; ++b) {
    const std::vector<std::string> arguments = arguments_for(shape_.partner, less, 0, 0);
    const std::string call = call_text(shape_.partner, arguments);
    if (!target.result || target.result->kind != TypeKind::kObject || !target.result_nonnull) {
      call_with_result(shape_.partner, call);
      continue;
    }
    const uint32_t s = static_cast<uint32_t>(target.result->structure);
    const uint32_t result = destination(object_type(s), true);
    emit(name(result) + " = call " + call);
    assign(result, true);
    const FieldShape* field = nullptr;  // hang the result under a new node: lists and trees
    for (const StructShape& owner : program_.structs)
      for (const FieldShape& f : owner.fields)
        if (f.type == object_type(s) && random_.percent(50)) field = &f;
    if (field != nullptr && shape_.result && shape_.result->kind == TypeKind::kObject) {
      uint32_t owner = 0;
      while (
          !(program_.structs[owner].fields.data() <= field &&
            field < program_.structs[owner].fields.data() + program_.structs[owner].fields.size()))
        ++owner;
      const std::string node = fresh_object(owner);
      emit("store " + node + "." + field->name + ", " + name(result));
    }
  }
  statements(random_.below(3));
  emit_joins();
  emit_return();
  pop_scope();
  begin_block(base);
  push_scope();
  statements(random_.between(0, 3));
  emit_joins();
  emit_return();
  pop_scope();
}

void FunctionGenerator::generate() {
  begin_block("entry");
  const uint32_t top = random_.between(2, std::max<uint32_t>(2, program_.options.max_statements));
  switch (shape_.kind) {
    case FunctionKind::kMain:
      statements(top);
      for (uint32_t j = 1; j < program_.functions.size(); ++j) {  // reach what nobody calls
        const FunctionShape& f = program_.functions[j];
        if (f.called || !affordable(f.total_cost + 16)) continue;
        if (f.kind == FunctionKind::kWorker) {
          spawn_worker(j);
        } else {
          call_helper(j);
        }
      }
      emit_joins();
      emit_return();
      break;
    case FunctionKind::kHelper:
      statements(top);
      emit_joins();
      emit_return();
      break;
    case FunctionKind::kWorker: {
      const uint32_t before = random_.below(top + 1);
      statements(before);
      worker_protocol();
      statements(top - before);
      emit_joins();
      emit("send %" + shape_.input(InputRole::kDone)->name + ", 1");
      emit_return();
      break;
    }
    case FunctionKind::kRecursive:
    case FunctionKind::kMutual:
      recursion();
      break;
  }
  shape_.own_cost = cost_;

  std::string params, captures;
  for (const InputShape& input : shape_.inputs) {
    std::string& list = input.capture ? captures : params;
    list += (list.empty() ? "%" : ", %") + input.name + ": " + program_.spelling(input.type);
  }
  std::string& text = shape_.text;
  text = "func " + shape_.name + "(" + params + ")";
  if (!captures.empty()) text += " captures(" + captures + ")";
  if (shape_.result) text += " -> " + program_.spelling(*shape_.result);
  text += " {\n";
  for (const LocalVariable& local : locals_)
    if (!local.input) text += "  var %" + local.name + ": " + program_.spelling(local.type) + "\n";
  for (const BlockText& block : blocks_) {
    text += block.label + ":\n";
    for (const std::string& line : block.lines) text += line + "\n";
  }
  text += "}\n";
}

}  // namespace generator

}  // namespace usgc::jitgen::random_usir
