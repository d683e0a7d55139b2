// kernel_iface/result.hpp — the error currency of usgc's OS layer.
//
// Every wrapper around a system call returns either a Status (success or an errno) or a
// Result<T> (a value or an errno). Both are [[nodiscard]]: an error the caller does not look at
// is a compile warning, and the build has no warnings. No exceptions cross this layer (it runs
// inside malloc, before constructors, and in signal handlers).
#pragma once

#include <cerrno>

namespace usgc::kernel {

class [[nodiscard]] Status {
 public:
  static Status success() { return Status(0); }
  static Status failure(int error_number) { return Status(error_number == 0 ? EIO : error_number); }

  bool ok() const { return error_number_ == 0; }
  // The errno of the failed call; 0 when ok().
  int error() const { return error_number_; }

 private:
  explicit Status(int error_number) : error_number_(error_number) {}
  int error_number_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  static Result success(T value) { return Result(value, 0); }
  static Result failure(int error_number) {
    return Result(T{}, error_number == 0 ? EIO : error_number);
  }

  bool ok() const { return error_number_ == 0; }
  int error() const { return error_number_; }
  // The value; meaningful only when ok().
  T value() const { return value_; }
  Status status() const { return ok() ? Status::success() : Status::failure(error_number_); }

 private:
  Result(T value, int error_number) : value_(value), error_number_(error_number) {}
  T value_;
  int error_number_;
};

}  // namespace usgc::kernel
