// kernel_iface/wasm32/advise_batch_wasm32.cpp — advise_batch.hpp on the WebAssembly back end
// (wasm32-wasi, built only by tools/build-wasm-runtime.sh).
//
// There is no process_madvise and no madvise: advise_batch answers ENOSYS (callers fall back to
// one range at a time), advise_one does MADV_DONTNEED as virtual_memory.hpp's decommit does here
// (it zeroes the range: what MADV_DONTNEED's readers expect) and answers ENOSYS for the advices
// that have no meaning in linear memory (guards, populating). Single-threaded; no state.
#include <cerrno>

#include "kernel_iface/advise_batch.hpp"
#include "kernel_iface/virtual_memory.hpp"

namespace usgc::kernel {

Status advise_batch(std::span<const AdviseRange> ranges, BatchAdvice) {
  if (ranges.empty()) return Status::success();
  return Status::failure(ENOSYS);
}

Status advise_one(const AdviseRange& range, BatchAdvice advice) {
  if (advice != BatchAdvice::kDontNeed) return Status::failure(ENOSYS);
  return decommit(range.address, range.bytes);
}

}  // namespace usgc::kernel
