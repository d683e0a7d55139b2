// usgc/gc.hpp — C++20 wrappers over the garbage-collected heap of usgc/gc.h. Header-only: every
// function is inline and compiles to the C call it wraps (or to the C header's inline fast path).
//
//   usgc::Roots<N>        a shadow-stack frame of N reference slots: pushed by the constructor,
//                         popped by the destructor (which also frees the STACK_LOCAL objects
//                         allocated since). Neither copyable nor movable: frames are LIFO. Only
//                         on a goroutine (usgc_run_main, usgc_go, an attached thread).
//   usgc::Handle          a local handle (a root of the calling goroutine), move-only RAII.
//   usgc::GlobalHandle    a global handle (publishes its object; any thread), move-only RAII.
//   usgc::Type<T>         a registered type: Type<Node>::object<offsetof(Node, left), ...>("Node").
//   usgc::alloc           typed usgc_alloc / usgc_alloc_array.
//   usgc::write, read     typed barriers: write(obj, &obj->field, value), read(obj, &obj->field).
//
// Invariants (the rules of usgc/gc.h, restated for C++):
//   - GC objects are raw storage, zeroed by the allocator and never constructed or destroyed:
//     T must be standard-layout and trivially copyable (checked at compile time), and reference
//     fields are plain T* members at 8-aligned offsets.
//   - A raw T* held across an allocation (which may collect) must also be in a Roots slot, a
//     handle or a GC object. The collector never moves objects, so the raw pointer stays valid.
//   - Every store of a reference into a GC object goes through usgc::write (never `obj->f = v`).
//   - No exception crosses the C API: nothing here throws; failures are a null result plus errno
//     and usgc_last_error(), as in C.
#ifndef USGC_GC_HPP
#define USGC_GC_HPP

#include <cstddef>
#include <type_traits>
#include <utility>

#include "usgc/usgc.h"

namespace usgc {

// Storage the collector may hand out as a T: zeroed bytes, no constructor, no destructor.
template <class T>
concept GcStorable = std::is_standard_layout_v<T> && std::is_trivially_copyable_v<T>;

// ---- roots -----------------------------------------------------------------------------------

template <std::size_t N>
class Roots {
  static_assert(N > 0, "usgc::Roots needs at least one slot");

 public:
  Roots() noexcept { usgc_frame_push(&frame_); }  // slots_ are zero before the push
  ~Roots() { usgc_frame_pop(&frame_); }
  Roots(const Roots&) = delete;
  Roots& operator=(const Roots&) = delete;

  void*& operator[](std::size_t index) noexcept { return slots_[index]; }
  void* operator[](std::size_t index) const noexcept { return slots_[index]; }
  // Typed access to a slot: roots.get<Node>(0).
  template <class T>
  T* get(std::size_t index) const noexcept {
    return static_cast<T*>(slots_[index]);
  }
  static constexpr std::size_t size() noexcept { return N; }

 private:
  void* slots_[N] = {};  // declared before frame_: initialized first
  usgc_frame frame_{nullptr, slots_, N, nullptr};
};

// ---- handles ---------------------------------------------------------------------------------

template <usgc_handle (*New)(void*), void* (*Get)(usgc_handle), void (*Delete)(usgc_handle)>
class BasicHandle {
 public:
  BasicHandle() noexcept = default;
  // A null object gives an empty handle; so does a failed usgc_*handle_new (errno says why).
  explicit BasicHandle(void* object) noexcept : handle_(object != nullptr ? New(object) : 0) {}
  BasicHandle(BasicHandle&& other) noexcept : handle_(std::exchange(other.handle_, 0)) {}
  BasicHandle& operator=(BasicHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, 0);
    }
    return *this;
  }
  BasicHandle(const BasicHandle&) = delete;
  BasicHandle& operator=(const BasicHandle&) = delete;
  ~BasicHandle() { reset(); }

  template <class T = void>
  T* get() const noexcept {
    return handle_ != 0 ? static_cast<T*>(Get(handle_)) : nullptr;
  }
  explicit operator bool() const noexcept { return handle_ != 0; }
  usgc_handle id() const noexcept { return handle_; }
  // Gives up ownership: the caller deletes the returned handle with the C API.
  usgc_handle release() noexcept { return std::exchange(handle_, 0); }
  void reset() noexcept {
    if (handle_ != 0) Delete(std::exchange(handle_, 0));
  }

 private:
  usgc_handle handle_ = 0;
};

// Valid only on the goroutine that made it; keeps a private object private.
using Handle = BasicHandle<usgc_handle_new, usgc_handle_get, usgc_handle_delete>;
// Publishes its object; usable (and destructible) on any thread.
using GlobalHandle =
    BasicHandle<usgc_global_handle_new, usgc_global_handle_get, usgc_global_handle_delete>;

// ---- types -----------------------------------------------------------------------------------

// A registered type whose objects (or array elements) are T. Id 0 means registration failed.
template <class T>
class Type {
 public:
  constexpr Type() noexcept = default;
  constexpr explicit Type(usgc_type_id id) noexcept : id_(id) {}

  // A plain object; Offsets are the byte offsets of T's reference members, given with
  // offsetof(T, member). They live in static storage, so the registry may keep the pointer.
  template <std::size_t... Offsets>
  static Type object(const char* name) noexcept {
    static_assert(GcStorable<T>,
                  "GC objects are zeroed raw storage: T must be standard-layout "
                  "and trivially copyable");
    static_assert(((Offsets % 8 == 0) && ...), "reference fields must be 8-aligned");
    static_assert(((Offsets + sizeof(void*) <= sizeof(T)) && ...), "offset outside T");
    static constexpr std::size_t kOffsets[sizeof...(Offsets) + 1] = {Offsets..., 0};
    usgc_type_info info{name, USGC_KIND_OBJECT, sizeof(T), kOffsets, sizeof...(Offsets)};
    return Type(usgc_register_type(&info));
  }
  // Arrays of T elements that hold no references.
  static Type scalar_array(const char* name) noexcept {
    static_assert(GcStorable<T>, "array elements must be standard-layout, trivially copyable");
    usgc_type_info info{name, USGC_KIND_SCALAR_ARRAY, sizeof(T), nullptr, 0};
    return Type(usgc_register_type(&info));
  }

  constexpr usgc_type_id id() const noexcept { return id_; }
  constexpr explicit operator bool() const noexcept { return id_ != 0; }

 private:
  usgc_type_id id_ = 0;
};

// The built-in array types of usgc/gc.h.
inline constexpr Type<void*> kRefArray{USGC_TYPE_REF_ARRAY};
inline constexpr Type<unsigned char> kByteArray{USGC_TYPE_BYTE_ARRAY};

// ---- allocation ------------------------------------------------------------------------------

// A zeroed T; nullptr with errno and usgc_last_error() on failure.
template <class T>
T* alloc(usgc_type_id type, usgc_ownership ownership) noexcept {
  static_assert(GcStorable<T>, "GC objects are zeroed raw storage");
  return static_cast<T*>(usgc_alloc(type, ownership));
}
template <class T>
T* alloc(Type<T> type, usgc_ownership ownership) noexcept {
  return alloc<T>(type.id(), ownership);
}
// An array: the returned pointer is the array object (its length word); elements via data<T>().
template <class T>
void* alloc_array(Type<T> type, std::size_t length, usgc_ownership ownership) noexcept {
  return usgc_alloc_array(type.id(), length, ownership);
}
template <class T>
T* array_data(void* array) noexcept {
  return static_cast<T*>(usgc_array_data(array));
}
inline std::size_t array_length(const void* array) noexcept {
  return usgc_array_length(array);
}

// ---- barriers --------------------------------------------------------------------------------

// obj->field = value through the write barrier. `value` converts like an assignment would
// (nullptr, a derived class); `field` must be a reference member of `object`.
template <class T, class F>
void write(T* object, F** field, std::type_identity_t<F*> value) noexcept {
  usgc_write(object, reinterpret_cast<void**>(field),
             const_cast<void*>(static_cast<const void*>(value)));
}
template <class T, class F>
F* read(const T* object, F* const* field) noexcept {
  return static_cast<F*>(usgc_read(object, reinterpret_cast<void* const*>(field)));
}
// Elements of a reference array (bounds checked by usgc_array_write).
inline void array_write(void* array, std::size_t index, void* value) noexcept {
  usgc_array_write(array, index, value);
}
template <class V = void>
V* array_read(const void* array, std::size_t index) noexcept {
  return static_cast<V*>(usgc_array_read(array, index));
}

// ---- collection and statistics ---------------------------------------------------------------

inline int collect(usgc_gc_kind kind) noexcept {
  return usgc_gc_collect(kind);
}
inline usgc_gc_stats gc_stats() noexcept {
  usgc_gc_stats stats{};
  stats.version = USGC_GC_STATS_VERSION;
  usgc_gc_get_stats(&stats);
  return stats;
}

}  // namespace usgc

#endif  // USGC_GC_HPP
