// jitgen/code_visibility/perf_map.hpp — the perf map file of compiled code (perf's "JIT map"
// convention, tools/perf/Documentation/jit-interface.txt).
//
// perf-<pid>.map in the temporary directory: one line per function, "START SIZE name\n", START
// and SIZE in lower-case hex without 0x. perf(1) reads it when it meets samples in anonymous
// executable memory of process <pid>; the directory is /tmp because that is where perf looks
// (it does not honour TMPDIR), the same file V8 (--perf-basic-prof) and the JVM's
// perf-map-agent write.
//
// Safety (kernel_iface/append_file.hpp): opened O_APPEND | O_NOFOLLOW | O_CLOEXEC, refused
// unless a regular file owned by us; one module's lines go out in one write(2), so modules
// announced at once from several threads never interleave. Created with mode 0600, not the
// 0644 V8 and perf-map-agent get from fopen(): the file holds code addresses, which tell any
// local user where this process's executable memory is (an ASLR leak), and every reader that
// can use it can read 0600 — perf run by the same user, or by root (a non-root user cannot
// profile another user's process at all under perf_event_paranoid >= 1).
// The file is opened per announcement and closed again: no descriptor stays open (a fork child
// writes its own perf-<pid>.map; nothing to reset), and withdrawn code leaves its lines (perf
// maps only grow; a later line for the same addresses is the newer code).
// Not on a hot path: once per compiled module, only when enabled.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "jitgen/code_visibility/code_visibility.hpp"
#include "kernel_iface/result.hpp"

namespace usgc::jitgen {

inline constexpr const char kPerfMapDirectory[] = "/tmp";
inline constexpr unsigned kPerfMapFileMode = 0600;

// True when the environment asks for a perf map (USGC_PERF_MAP=1). Read at every announcement,
// so an embedder or a test may set it at any time before compiling.
bool perf_map_enabled();

// "/tmp/perf-<pid>.map".
std::string perf_map_path(int process_id);

// The lines for `symbols`, "START SIZE name\n" each.
std::string format_perf_map_lines(std::span<const CompiledSymbol> symbols);

// Appends the lines to this process's perf map (one write). The errno of the failed open/write.
kernel::Status append_to_perf_map(std::span<const CompiledSymbol> symbols);

}  // namespace usgc::jitgen
