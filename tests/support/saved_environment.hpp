// tests/support/saved_environment.hpp — puts an environment variable back after a test changed it:
// fixtures that set USGC_* variables before usgc_init (which reads them) declare one per variable
// as a member, so the next test starts with the environment the binary was started with.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace usgc::testing {

// Saves an environment variable at construction and puts it back at destruction.
class SavedEnvironmentVariable {
 public:
  explicit SavedEnvironmentVariable(const char* name) : name_(name) {
    if (const char* value = std::getenv(name)) value_ = value;
  }
  // Saves it, then sets it to `value` (nullptr: unsets it) — as a fixture's member, for the whole
  // test: members are built before SetUp starts the runtime.
  SavedEnvironmentVariable(const char* name, const char* value) : SavedEnvironmentVariable(name) {
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~SavedEnvironmentVariable() {
    if (value_) {
      setenv(name_, value_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  SavedEnvironmentVariable(const SavedEnvironmentVariable&) = delete;
  SavedEnvironmentVariable& operator=(const SavedEnvironmentVariable&) = delete;

 private:
  const char* name_;
  std::optional<std::string> value_;
};

}  // namespace usgc::testing
