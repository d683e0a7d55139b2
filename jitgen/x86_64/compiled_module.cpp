// jitgen/x86_64/compiled_module.cpp — CompiledModule (compiled_module.hpp): runs the compiler
// (compiler.hpp) into a heap buffer, copies the code into a read-write mapping, seals it
// read+execute, registers it with the safepoints and announces it to profilers and debuggers.
// Invariant: the mapping is never writable and executable at once; it is unmapped only after
// the code was withdrawn from the debuggers and unregistered.
#include <cstring>
#include <string>

#include "jitgen/x86_64/compiler.hpp"
#include "kernel_iface/code_memory.hpp"
#include "kernel_iface/virtual_memory.hpp"
#include "usgc/safepoint.h"

namespace usgc::jitgen::x86_64 {

CompiledModule::CompiledModule(const ir::Module& module, const escape::EscapeAnalysis& analysis,
                               interpreter::ProgramLayout layout, const CompileOptions& options)
    : module_(module), analysis_(analysis), layout_(std::move(layout)), options_(options) {}

CompiledModule::~CompiledModule() {
  withdraw_compiled_module(visible_);  // before the code goes away (a debugger may read it)
  if (registered_for_safepoints_) (void)usgc_safepoint_unregister_polling_code(mapping_);
  if (mapping_ != nullptr) (void)kernel::unmap_code(mapping_, mapping_bytes_);
}

const void* CompiledModule::entry(std::string_view function_name) const {
  for (uint32_t f = 0; f < module_.functions.size(); ++f)
    if (module_.functions[f].name == function_name) return function_code(f);
  return nullptr;
}

std::unique_ptr<CompiledModule> CompiledModule::compile(const ir::Module& module,
                                                        const escape::EscapeAnalysis& analysis,
                                                        const CompileOptions& options,
                                                        std::string* error) {
  std::optional<interpreter::ProgramLayout> layout =
      interpreter::ProgramLayout::build(module, analysis, error, /*check_words=*/false);
  if (!layout) return nullptr;
  std::unique_ptr<CompiledModule> compiled(
      new CompiledModule(module, analysis, std::move(*layout), options));
  const size_t sites = compiled->layout_.site_count();
  compiled->site_layouts_ = std::make_unique<usgc_type_layout[]>(sites == 0 ? 1 : sites);
  for (size_t s = 0; s < sites; ++s) {
    const SiteLayout& site = compiled->layout_.site(static_cast<uint32_t>(s));
    usgc_type_layout& type_layout = compiled->site_layouts_[s];
    if (site.shape == SiteShape::kDynamicArray ||
        usgc_type_layout_of(site.type, &type_layout) != 0) {
      type_layout.size_class = UINT32_MAX;  // never inlined
    }
  }
  {
    // The arena floor: one tiny STACK_LOCAL object each goroutine makes before its first
    // compiled frame, so the arena's top is never null under a compiled frame (stubs.hpp).
    static const usgc_type_id floor_type = [] {
      usgc_type_info info = {"usgc-jit-arena-floor", USGC_KIND_OBJECT, 8, nullptr, 0};
      return usgc_register_type(&info);
    }();
    if (floor_type == 0 || usgc_type_layout_of(floor_type, &compiled->arena_floor_layout_) != 0) {
      *error = module.file_name + ": cannot register the JIT's arena floor type";
      return nullptr;
    }
  }
  compiled->base_offsets_.assign(module.functions.size(), 0);

  size_t instructions = 0;
  for (const ir::Function& function : module.functions)
    for (const ir::Block& block : function.blocks) instructions += block.instructions.size();
  size_t capacity = 4096 + 256 * instructions;
  std::vector<uint8_t> buffer;
  for (int attempt = 0;; ++attempt) {
    buffer.assign(capacity, 0);
    compiled->operations_.clear();
    compiled->errors_.clear();
    compiled->functions_.clear();
    try {
      Emitter emitter(capacity, buffer.data());
      Compiler compiler(*compiled, emitter);
      compiler.number_globals();
      compiler.compile_all();
      emitter.ready();
      compiled->code_bytes_ = emitter.getSize();
      compiled->marks_ = std::move(emitter.marks);
      break;
    } catch (const Xbyak::Error& failure) {
      if (failure == Xbyak::ERR_CODE_IS_TOO_BIG && attempt < 4) {
        capacity *= 4;
        continue;
      }
      *error = module.file_name + ": code generation failed: " + failure.what();
      return nullptr;
    }
  }

  const size_t page = kernel::os_page_size();
  const size_t mapping_bytes = (compiled->code_bytes_ + page - 1) / page * page;
  kernel::Result<void*> mapped = kernel::map_code_writable(mapping_bytes);
  if (!mapped.ok()) {
    *error = module.file_name + ": cannot map " + std::to_string(mapping_bytes) +
             " bytes for code: " + std::strerror(mapped.error());
    return nullptr;
  }
  compiled->mapping_ = mapped.value();
  compiled->mapping_bytes_ = mapping_bytes;
  std::memcpy(compiled->mapping_, buffer.data(), compiled->code_bytes_);
  if (options.after_code_written != nullptr)
    options.after_code_written(compiled->mapping_, mapping_bytes, options.hook_argument);
  kernel::Status sealed = kernel::seal_code_executable(compiled->mapping_, mapping_bytes);
  if (!sealed.ok()) {
    *error = module.file_name +
             ": cannot make the code executable (mprotect): " + std::strerror(sealed.error());
    return nullptr;
  }
  compiled->code_ = static_cast<const uint8_t*>(compiled->mapping_);
  // The code polls at every entry and back edge; its inline sequences are not safe points, so
  // asynchronous safepoints must leave it alone (usgc/safepoint.h).
  int registered = usgc_safepoint_register_polling_code(compiled->mapping_, mapping_bytes);
  if (registered != 0) {
    *error = module.file_name +
             ": cannot register the code with the safepoints: " + std::strerror(registered) +
             " (at most " + std::to_string(USGC_MAX_POLLING_CODE_RANGES) +
             " modules loaded at once)";
    return nullptr;
  }
  compiled->registered_for_safepoints_ = true;
  std::vector<CompiledSymbol> symbols;
  for (const CompiledFunction& function : compiled->functions_)
    symbols.push_back(
        {function.function_index == UINT32_MAX ? function.name : "usir:" + function.name,
         compiled->code_ + function.offset, function.size});
  compiled->visible_ = announce_compiled_module(module.file_name, symbols);
  return compiled;
}

}  // namespace usgc::jitgen::x86_64
