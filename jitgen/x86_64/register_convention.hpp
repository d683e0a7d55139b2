// jitgen/x86_64/register_convention.hpp — the register and frame convention of code compiled by
// the x86-64 baseline JIT (jitgen/x86_64), and what each out-of-line call clobbers.
//
// Pinned registers (callee-saved in the SysV ABI, so every C/C++ helper preserves them):
//   R15  usgc_mutator* of the running goroutine (usgc/object.h). The record is the goroutine's own
//        (gc/mutator.hpp: embedded in the goroutine, never moved), so it does not change when the
//        goroutine parks, is preempted at a poll or resumes on another worker thread: it is loaded
//        once, when the goroutine enters compiled code (the entry thunk), and never reloaded.
//   R14  the goroutine's heap id (usgc_mutator.heap_id; ids fit 32 bits, the header's owner half).
//        Constant for the goroutine's life, loaded with R15. "Is this object mine?" is one
//        `cmp dword [obj - 4], r14d`; a header's owner half is one `mov dword [slot + 4], r14d`.
//   R13  JitGoroutine* (jit_runtime.hpp): per-goroutine counters, the run, the stack limit.
//   R12  &RunState::stopping (the run's stop flag): `cmp byte [r12], 0` at back edges (the
//        interpreter's checkpoint, jitgen/interpreter/run_state.hpp). Calls test nothing: a stop
//        reaches the next framed call through the stack limit (below, "Errors and stops").
//   RBP  frame pointer of the compiled function (frames below).
// Scratch: RAX RCX RDX (operands of one instruction, the stubs), R11 (the poll).
// Locals in registers (register_cache.hpp): RBX RSI RDI R8 R9 R10 cache the locals of the block
// being compiled, each dirty (its frame slot stale) or clean. Live dirty locals go back to their
// slots at the block's end and before every call of a compiled function; every dirty local
// before a call into the runtime on the main path; the dirty references before a stub's slow
// path, which also pushes and pops the caller-saved cache registers around its call. So at
// every point that can collect (runtime calls, allocation refills, polls, callees) every live
// reference is in its root slot, and no cached value is kept across a compiled call (callees
// clobber all six: RBX is not preserved between compiled functions; the entry thunk saves it
// for its C caller).
//
// The safepoint poll (usgc/safepoint.h, the poll ABI): the poll page pointer is read from the
// thread's usgc_current_poll at each poll, not cached, so a handshake or a preemption (which
// swap that pointer, safepoint/stop_the_world.cpp) reaches a compiled loop as fast as a
// stop-the-world (which protects the global page):
//     mov  r11, qword fs:[tpoff(usgc_current_poll)]    ; initial-exec TLS: one load
//     test byte [r11], 0                               ; the poll: F6 /0 ib, REX.B, no index
// Only the `test` touches the page (the one instruction the fault handler steps over). The
// trampoline saves and restores every register, so a poll clobbers R11 (its own load) and the
// flags, nothing else; the goroutine may resume on another thread: nothing compiled keeps a
// thread-local address across a poll (the next poll reloads the pointer through FS).
//
// Compiled functions (internal convention, not the C ABI): the caller stores input i
// (parameters, then captures) at [rsp + 8 i] and calls; the result comes back in RAX. A callee
// preserves RBP and R12-R15 and may clobber everything else (RBX included). Frame, RBP-relative:
//     [rbp + 16 + 8 i]          input i
//     [rbp + 8]                 return address
//     [rbp]                     caller's RBP
//     [rbp - 8 R, rbp)          R reference slots (the roots: every reference local)
//     [rbp - 8 R - 16]          a compact usgc_frame {previous, (R << 1) | USGC_FRAME_COMPACT}
//                               (usgc/object.h): the collector finds the R slots right above
//                               it, from its own address; no slots pointer, no arena_mark
//     [rbp - 8 R - 24]          the arena mark (arena_top at entry), only in a frame whose
//                               epilogue restores arena_top (FramePop::kRestoreArena)
//     [.. - 8 S, ..)            S scalar slots (int and bool locals)
//     [rsp, rsp + 8 A)          outgoing inputs of the widest call; RSP 16-aligned at calls
// The prologue pushes the slots (inputs copied in, the rest zero), then the record, and links
// it (mutator->frames = rsp) before anything that may collect: the poll at entry comes after
// it. The epilogue unlinks it and restores mutator->arena_top from the arena mark (popping the
// frame's STACK_LOCAL objects), or leaves arena_top (a variant compiled for a call that
// allocates in the caller's frame: "stack when called at"; or a function that cannot move it:
// no STACK_LOCAL allocation, no caller-frame variant called, no runtime operation), and then
// has no arena mark. Nothing but the epilogue reads the mark (the unwind restores arena_top
// from the entry thunk's frame).
// Shrink-wrapping (compiler_frames.cpp, "frames only where they are needed"): blocks that cannot
// collect on their main path and reach a return run before any prologue, RBP still the
// caller's, RSP the entry's (8 below 16-aligned), locals in cache registers, inputs read at
// [rsp + 8 + 8 i]; they return with a bare `ret`. An edge from them into a framed block runs
// the prologue there (slots from the cache registers and inputs, dead references zero); a
// slow path among them links a temporary frame of the same layout (RBP pushed, every live
// reference in its root slot, the compact record) around its call and unlinks it after.
//
// Calls out of compiled code, all through `mov rax, imm64; call rax` with RSP 16-aligned:
//   usgc_alloc_private_slow(layout)        refill; may collect (every reference is in a slot)
//   jit_alloc_stack_slow(ctx, layout)      usgc_alloc_stack_slow + substitute counting
//   usgc_alloc / usgc_alloc_array          GOROUTINE_SHARED, GLOBAL_SHARED, large and dynamic
//   usgc_write_slow(object, field, value)  the barrier's slow path
//   usgc_global_store(slot, value)         reference globals (publication)
//   jit_operation(ctx, op, rbp)            channels, go, unknown code (jit_runtime.hpp): reads
//                                          and writes the frame's slots through RBP
//   jit_runtime_error(ctx, error, a, b)    formats the interpreter's positioned message, stops
//                                          the run; called by the module's runtime-error stub,
//                                          which then unwinds (below)
//   jit_gc_stress(ctx)                     --gc-stress N: a collection every N allocations
// Errors and stops (the unwind protocol): nothing compiled tests a flag after a call. The entry
// thunk saves the C caller's registers, mutator->frames and arena_top in its frame and points
// JitGoroutine::entry_frame at it (saving the enclosing one: entries nest). A runtime error
// jumps to the module's runtime-error stub (ESI the error site, RDX RCX its values), which
// aligns RSP, reports the error with every frame still linked, and jumps to the unwind stub; a
// runtime operation that returns 1 (the run is stopping) and a back edge that sees the stop
// flag jump to the unwind stub directly. The unwind stub reloads RBP from entry_frame,
// restores frames and arena_top as they were at entry (every compiled frame of this entry
// unlinked at once, its STACK_LOCAL objects freed), sets JitGoroutine::unwound and returns 0
// from the thunk. A stop made elsewhere (another goroutine's error, a deadlock, the entry
// returning) reaches a goroutine in compiled code at its next framed call: the run's stop
// hook sets JitGoroutine::stack_limit above every stack, the prologue's stack check fails,
// and its report, seeing the run stopping, reports nothing and unwinds.
// Each clobbers exactly the SysV caller-saved set (RAX RCX RDX RSI RDI R8-R11, flags, vector
// registers) and preserves the pinned registers and RBX. Calls that may park or switch the
// goroutine (channel operations, `go`, collections) return on the same goroutine with its pinned
// registers intact (the context switch saves callee-saved registers).
#pragma once

#include <cstdint>

namespace usgc::jitgen::x86_64 {

// Register numbers (the x86-64 encoding: RAX 0 ... R15 15).
inline constexpr int kMutatorRegister = 15;
inline constexpr int kHeapIdRegister = 14;
inline constexpr int kGoroutineRegister = 13;
inline constexpr int kStopFlagRegister = 12;
inline constexpr int kPollScratchRegister = 11;

}  // namespace usgc::jitgen::x86_64
