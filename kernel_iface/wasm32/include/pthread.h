/* kernel_iface/wasm32/include/pthread.h — threads on the WebAssembly back end of kernel_iface:
 * there are none (wasm32-wasi, one instance, one thread). wasi-libc has no <pthread.h>; this one
 * gives usgc's layers the calls they make, and pthread_create always fails with EAGAIN, so
 * a layer that can run with fewer threads (the shared collector's markers: "fewer markers, still
 * correct") runs single-threaded. Thread-specific keys (the allocator's thread-exit hook) are a
 * small table whose destructors never run: the one thread never exits before the instance ends.
 * pthread_atfork registers nothing: WASI has no fork. Included only by the wasm32 build
 * (tools/build-wasm-runtime.sh puts this folder on the include path). */
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
typedef unsigned pthread_key_t;
enum { USGC_WASM32_PTHREAD_KEYS = 8 };
/* The values of the keys, one thread. Defined once by kernel_iface/wasm32/threads_wasm32.cpp. */
extern void* usgc_wasm32_pthread_key_values[USGC_WASM32_PTHREAD_KEYS];
extern unsigned usgc_wasm32_pthread_key_count;
static inline int pthread_key_create(pthread_key_t* key, void (*destructor)(void*)) {
  (void)destructor;
  if (usgc_wasm32_pthread_key_count == USGC_WASM32_PTHREAD_KEYS) return EAGAIN;
  *key = usgc_wasm32_pthread_key_count++;
  return 0;
}
static inline int pthread_setspecific(pthread_key_t key, const void* value) {
  if (key >= usgc_wasm32_pthread_key_count) return EINVAL;
  usgc_wasm32_pthread_key_values[key] = (void*)value;
  return 0;
}
static inline void* pthread_getspecific(pthread_key_t key) {
  return key < usgc_wasm32_pthread_key_count ? usgc_wasm32_pthread_key_values[key] : 0;
}
static inline int pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  (void)prepare;
  (void)parent;
  (void)child;
  return 0;
}
#ifdef __cplusplus
}
#endif
#endif /* USGC_KERNEL_IFACE_WASM32_PTHREAD_H */
