// kernel_iface/address_sanitizer.cpp — the hook that adds usgc's view of an address to an
// AddressSanitizer report (address_sanitizer.hpp). Only the asan build has code here.
#include "kernel_iface/address_sanitizer.hpp"

#include <atomic>

namespace usgc::kernel {

namespace {

// Written once at startup, read (relaxed) only while ASan reports: a plain pointer would do, but
// the report may come from any thread.
std::atomic<AsanReportDescriber> g_describer{nullptr};

#if USGC_ASAN
// ASan calls this with its report's text, after printing it and before it stops the process.
void describe_reported_address(const char*) {
  AsanReportDescriber describer = g_describer.load(std::memory_order_relaxed);
  void* address = __asan_get_report_address();
  if (describer != nullptr && address != nullptr) describer(address);
}
#endif

}  // namespace

void set_asan_report_describer(AsanReportDescriber describer) {
  g_describer.store(describer, std::memory_order_relaxed);
#if USGC_ASAN
  __asan_set_error_report_callback(describe_reported_address);
#endif
}

}  // namespace usgc::kernel
