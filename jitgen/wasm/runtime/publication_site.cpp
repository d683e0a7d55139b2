// jitgen/wasm/runtime/publication_site.cpp — which lowered operation a publication serves, so
// that the collector's fatal checks inside it are reported at that operation's source position.
//
// The lowered code checks the value it publishes itself (a store, a global store, a send, a `go`,
// an argument of unknown code: a STACK_LOCAL value is its own positioned error). An object deeper
// in the graph is found only by the collector while it publishes (gc/publication.cpp): it stops
// the program with kernel::fatal, naming the operation but not the source. So every publishing
// slow path takes a site argument — the id of a message the lowering registered at that
// instruction ("FILE:LINE:COL: runtime error: {gc}", plus 1; 0: none) — and keeps it in
// g_publication_site while the collector works. fatal() hands its message to the reporter
// installed here (kernel_iface/fatal.hpp): inside a publication it keeps the message and the site
// for the host (usgc_wasm_fatal_site, usgc_wasm_fatal_message) and traps; the host prints the
// site's message with the collector's in place of {gc} and exits 1, as for every runtime error.
// Outside a publication the reporter returns and fatal() prints and aborts as usual.
// Single-threaded (one instance, one thread). Hot path: none (publication slow paths only: one
// store before and one after the collector's call).
#include <cstdint>
#include <cstring>

#include "jitgen/wasm/runtime/runtime.h"
#include "kernel_iface/fatal.hpp"

namespace {

uint32_t g_publication_site = 0;  // the site being served, 0 outside a publication
uint32_t g_fatal_site = 0;        // the site of the fatal message, once one stopped the run
char g_fatal_message[512];        // that message (NUL-terminated)

void report_at_publication_site(const char* message) {
  if (g_publication_site == 0) return;
  g_fatal_site = g_publication_site;
  size_t length = std::strlen(message);
  if (length >= sizeof(g_fatal_message)) length = sizeof(g_fatal_message) - 1;
  std::memcpy(g_fatal_message, message, length);
  g_fatal_message[length] = '\0';
  __builtin_trap();  // the host reads the two words below and reports
}

}  // namespace

extern "C" {

void publication_site_enter(uint32_t site) {
  g_publication_site = site;
}

void publication_site_leave(void) {
  g_publication_site = 0;
}

void publication_site_install_reporter(void) {
  usgc::kernel::set_fatal_reporter(report_at_publication_site);
}

// After a trap: the publication site whose collector check stopped the run (its message id + 1),
// or 0 when the trap was something else.
uint32_t EXPORT(usgc_wasm_fatal_site)(void) {
  return g_fatal_site;
}

// The collector's message of that stop (the address of a NUL-terminated string).
uint32_t EXPORT(usgc_wasm_fatal_message)(void) {
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(g_fatal_message));
}

}  // extern "C"
