// safepoint/fork_child.hpp — the process after fork(): usgc's collected heap and goroutine runtime
// stay with the process that started them.
//
// fork() copies only the calling thread. In the child the runtime's other threads (the workers
// holding Ps, the monitor, the scavenger, the goroutines' machines) do not exist, and every lock
// one of them held at fork() stays held: a stop of the world would wait forever for Ps nobody
// runs, a spawned goroutine for a worker, and the block pool's or the stop operation's lock for a
// thread that is gone. Go and the JVM do not run their runtime in a fork child either: the child
// may exec. So while the runtime is up (safepoint_initialize to safepoint_shutdown) an atfork
// child handler marks the child, and from then on every usgc entry that could take such a lock or
// wait for such a thread refuses at once instead of hanging: ENOTRECOVERABLE (usgc_last_error
// names the call and the reason), NULL from an allocation; a void entry does the least that is
// correct without a collector (a store through the write barrier becomes a plain store: no
// collection ever runs in the child, so nothing needs recording). The first refusal prints one
// line to stderr. malloc and free keep working (the allocator has its own fork handlers), and so
// do exec and _exit. The handler also disarms the forking thread's poll, so compiled code that
// polls in the child never faults into a stop nobody can serve.
//
// Invariants: g_in_fork_child is written only by the atfork child handler, while the child has a
// single thread, and never cleared; relaxed reads (in the parent it is always false).
#pragma once

#include <atomic>

namespace usgc::safepoint {

extern std::atomic<bool> g_in_fork_child;

// Registers the atfork handler (once per process; safepoint_initialize calls it).
void watch_for_fork();

inline bool in_fork_child() {
  return g_in_fork_child.load(std::memory_order_relaxed);
}

// Why `operation` cannot run here, for usgc_last_error ("... in a fork() child: ...").
const char* fork_child_reason();

// A refused call: prints the one line (first refusal only), sets errno; returns ENOTRECOVERABLE.
int refuse_in_fork_child(const char* operation);

}  // namespace usgc::safepoint
