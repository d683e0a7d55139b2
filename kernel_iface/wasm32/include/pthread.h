/* kernel_iface/wasm32/include/pthread.h — threads on the WebAssembly back end of kernel_iface:
 * there are none (wasm32-wasi, one instance, one thread). wasi-libc has no <pthread.h>; this one
 * gives usgc's layers the two calls they make, and pthread_create always fails with EAGAIN, so
 * a layer that can run with fewer threads (the shared collector's markers: "fewer markers, still
 * correct") runs single-threaded. Included only by the wasm32 build (tools/build-wasm-runtime.sh
 * puts this folder on the include path). */
#ifndef USGC_KERNEL_IFACE_WASM32_PTHREAD_H
#define USGC_KERNEL_IFACE_WASM32_PTHREAD_H
#include <errno.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef unsigned long pthread_t;
typedef struct pthread_attr_t pthread_attr_t;
static inline int pthread_create(pthread_t* thread, const pthread_attr_t* attributes,
                                 void* (*start)(void*), void* argument) {
  (void)thread;
  (void)attributes;
  (void)start;
  (void)argument;
  return EAGAIN;
}
static inline int pthread_join(pthread_t thread, void** result) {
  (void)thread;
  (void)result;
  return ESRCH;
}
#ifdef __cplusplus
}
#endif
#endif /* USGC_KERNEL_IFACE_WASM32_PTHREAD_H */
