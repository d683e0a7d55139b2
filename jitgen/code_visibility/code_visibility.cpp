// jitgen/code_visibility/code_visibility.cpp — see code_visibility.hpp: validates a module's
// symbols, builds its ELF symbol file, registers it with the debugger and appends it to the perf
// map, all under the code-visibility lock.
//
// The code-visibility lock (g_code_visibility_lock, a kernel::FutexMutex) guards the GDB
// descriptor's list (gdb_jit_interface.hpp) and orders perf map appends with registrations. It
// is a leaf: nothing else is taken while it is held (a JIT may hold its own locks when calling
// in, never the other way round); it is never taken on a hot path, in the allocator or in a
// signal handler. docs/HACKING.md lists it.
#include "jitgen/code_visibility/code_visibility.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "jitgen/code_visibility/elf_symbol_file.hpp"
#include "jitgen/code_visibility/gdb_jit_interface.hpp"
#include "jitgen/code_visibility/perf_map.hpp"
#include "kernel_iface/fatal.hpp"
#include "kernel_iface/futex_mutex.hpp"
#include "kernel_iface/process_info.hpp"

namespace usgc::jitgen {

struct VisibleModule {
  jit_code_entry entry;              // linked in the GDB descriptor's list while announced
  std::vector<uint8_t> symbol_file;  // entry.symfile_addr points here; immutable once built
};

namespace {

kernel::FutexMutex<kernel::LockRank::kCodeVisibility> g_code_visibility_lock;
// Relaxed: only makes the perf map failure message appear once per process.
std::atomic<bool> g_perf_map_failure_reported{false};

// Prints why `symbol` cannot be announced; false for a valid symbol.
bool reject_symbol(std::string_view module_name, const CompiledSymbol& symbol) {
  const char* why = nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(symbol.start);
  if (symbol.name.empty()) {
    why = "has an empty name";
  } else if (symbol.name.find('\0') != std::string::npos ||
             symbol.name.find('\n') != std::string::npos) {
    why = "has a NUL or newline in its name";
  } else if (symbol.start == nullptr) {
    why = "has a null start address";
  } else if (symbol.size_bytes == 0) {
    why = "has a size of 0 bytes";
  } else if (start + symbol.size_bytes < start) {
    why = "wraps around the address space";
  }
  if (why == nullptr) return false;
  // kernel::print_message knows %s, not %.*s: the names go through std::string (not the
  // allocator's context), a long name cut to 200 characters.
  std::string module(module_name);
  std::string name = symbol.name.substr(0, 200);
  kernel::print_message(
      "announce_compiled_module(\"%s\"): symbol \"%s\" at %p (%zu bytes) %s; the module is not "
      "announced to perf or the debugger",
      module.c_str(), name.c_str(), symbol.start, symbol.size_bytes, why);
  return true;
}

}  // namespace

VisibleModule* announce_compiled_module(std::string_view module_name,
                                        std::span<const CompiledSymbol> symbols) {
  if (symbols.empty()) {
    std::string module(module_name);
    kernel::print_message(
        "announce_compiled_module(\"%s\"): no symbols; the module is not announced",
        module.c_str());
    return nullptr;
  }
  for (const CompiledSymbol& symbol : symbols) {
    if (reject_symbol(module_name, symbol)) return nullptr;
  }
  auto* module = new VisibleModule{};
  module->symbol_file = build_elf_symbol_file(symbols);
  module->entry.symfile_addr = reinterpret_cast<const char*>(module->symbol_file.data());
  module->entry.symfile_size = module->symbol_file.size();

  kernel::FutexMutexGuard guard(g_code_visibility_lock);
  if (perf_map_enabled()) {
    kernel::Status appended = append_to_perf_map(symbols);
    if (!appended.ok() && !g_perf_map_failure_reported.exchange(true, std::memory_order_relaxed)) {
      std::string path = perf_map_path(kernel::current_process_id());
      kernel::print_message(
          "USGC_PERF_MAP=1: cannot append to %s (%s, errno %d); perf will not name JIT code "
          "(reported once)",
          path.c_str(), std::strerror(appended.error()), appended.error());
    }
  }
  gdb_register_entry_locked(&module->entry);
  return module;
}

void withdraw_compiled_module(VisibleModule* module) {
  if (module == nullptr) return;
  {
    kernel::FutexMutexGuard guard(g_code_visibility_lock);
    gdb_unregister_entry_locked(&module->entry);
  }
  delete module;
}

}  // namespace usgc::jitgen
