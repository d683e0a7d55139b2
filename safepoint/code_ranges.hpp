// safepoint/code_ranges.hpp — whose code an interrupted program counter is in, for asynchronous
// safepoints (async_safepoint.hpp):
//
//   kUsgc           usgc's own code: the library's functions, its trampolines. The build puts
//                   all of it in one section, usgc_text (Makefile: objcopy renames .text and
//                   .text.* of every library object), so the range is [__start_usgc_text,
//                   __stop_usgc_text) alike in libusgc.a linked into a program and in libusgc.so.
//   kSystemLibrary  the C library, the dynamic loader, libstdc++, libgcc, libm, the vDSO and the
//                   sanitizer runtimes, the libraries usgc calls (libnuma, liburing), and
//                   whichever object provides malloc (a preloaded jemalloc; the program
//                   itself when it links its own malloc: then program code is never stopped
//                   while running, only while blocked)
//                   (found by name with dl_iterate_phdr when the runtime starts): code that may
//                   hold a lock of its own (malloc's arena lock) or be called by usgc itself, so
//                   it is stopped only while blocked in a system call, never while running.
//   kPollingCode    code generated at run time that polls at every function entry and loop back
//                   edge (the JIT's modules), registered with usgc_safepoint_register_polling_code:
//                   its inline sequences are not safe points, so like usgc's own code it is
//                   never stopped between polls.
//   kOther          everything else: the program and its other libraries.
//
// Invariant: the table of system libraries is written once by code_ranges_initialize (before the
// asynchronous signal handler is installed) and read-only afterwards, so the handler reads it
// without a lock; the polling-code slots are published with release stores and read with
// acquire loads (code_ranges.cpp), also without a lock.
//
// Execution context: classify_code_address is signal-safe (reads the fixed table).
#pragma once

#include <cstddef>
#include <cstdint>

namespace usgc::safepoint {

enum class CodeOwner : uint8_t { kUsgc, kSystemLibrary, kPollingCode, kOther };

// Registers / withdraws a range of polling code (usgc_safepoint_register_polling_code): 0, EINVAL
// or ENOSPC. Lock-free; any context but a signal handler.
int register_polling_code(const void* code, size_t bytes);
int unregister_polling_code(const void* code);

// Builds the table (idempotent). Normal context.
void code_ranges_initialize();

CodeOwner classify_code_address(uintptr_t address);

// usgc's own code range (tests, documentation).
uintptr_t usgc_code_begin();
uintptr_t usgc_code_end();

}  // namespace usgc::safepoint
