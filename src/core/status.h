// Status and Result: errors as values on the hot path (the LevelDB way).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace iotpipe {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status OK() { return Status(); }
  static Status Error(std::string msg) { return Status(std::move(msg)); }
  bool ok() const { return !msg_.has_value(); }
  const std::string& message() const {
    static const std::string kOk = "OK";
    return msg_ ? *msg_ : kOk;
  }

 private:
  explicit Status(std::string m) : msg_(std::move(m)) {}
  std::optional<std::string> msg_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                 // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) {}            // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace iotpipe
