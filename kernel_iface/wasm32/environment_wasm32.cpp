// kernel_iface/wasm32/environment_wasm32.cpp — what kernel_iface/environment.cpp needs of libc
// that wasi-libc lacks. secure_getenv: glibc's getenv that answers nothing in a set-user-id
// process; a WebAssembly instance has no such privilege change, so it is getenv (the host
// decides which variables the instance sees). Built only by tools/build-wasm-runtime.sh.
#include <cstdlib>

extern "C" char* secure_getenv(const char* name) {
  return std::getenv(name);
}
