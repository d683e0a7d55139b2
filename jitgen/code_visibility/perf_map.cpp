// jitgen/code_visibility/perf_map.cpp — see perf_map.hpp.
#include "jitgen/code_visibility/perf_map.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernel_iface/append_file.hpp"
#include "kernel_iface/process_info.hpp"
#include "kernel_iface/shared_memory.hpp"

namespace usgc::jitgen {

bool perf_map_enabled() {
  const char* value = std::getenv("USGC_PERF_MAP");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

std::string perf_map_path(int process_id) {
  char path[64];
  std::snprintf(path, sizeof(path), "%s/perf-%d.map", kPerfMapDirectory, process_id);
  return path;
}

std::string format_perf_map_lines(std::span<const CompiledSymbol> symbols) {
  std::string lines;
  for (const CompiledSymbol& symbol : symbols) {
    char numbers[48];
    std::snprintf(numbers, sizeof(numbers), "%lx %zx ",
                  static_cast<unsigned long>(reinterpret_cast<uintptr_t>(symbol.start)),
                  symbol.size_bytes);
    lines += numbers;
    lines += symbol.name;
    lines += '\n';
  }
  return lines;
}

kernel::Status append_to_perf_map(std::span<const CompiledSymbol> symbols) {
  std::string path = perf_map_path(kernel::current_process_id());
  kernel::Result<int> opened = kernel::open_append_file(path.c_str(), kPerfMapFileMode);
  if (!opened.ok()) return opened.status();
  kernel::ScopedFile file(opened.value());
  std::string lines = format_perf_map_lines(symbols);
  return kernel::append_all(file.get(), lines.data(), lines.size());
}

}  // namespace usgc::jitgen
