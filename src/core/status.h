// Status and Result: errors as values on the hot path (the LevelDB way), with a code that callers
// branch on (never on message text) and a message for people.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace iotpipe {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kError,             // unclassified (older call sites); prefer a specific code below
    kNotFound,          // a file, key or name that does not exist
    kInvalidArgument,   // the caller's input is wrong (bad flag, bad SQL, bad config)
    kCorruption,        // stored bytes fail a check (checksum, footer, format)
    kIOError,           // the disk or the OS failed (ENOSPC, EIO, failed fsync/rename)
    kUnavailable,       // a peer or resource is not there right now (broker down, queue full): retry
    kPermissionDenied,  // refused by policy (read-only query door, token)
    kTimedOut,          // gave up after a time limit
    kAlreadyExists,     // a name, port or lock already taken
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status Error(std::string msg) { return Status(Code::kError, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status PermissionDenied(std::string msg) { return Status(Code::kPermissionDenied, std::move(msg)); }
  static Status TimedOut(std::string msg) { return Status(Code::kTimedOut, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsPermissionDenied() const { return code_ == Code::kPermissionDenied; }
  bool IsTimedOut() const { return code_ == Code::kTimedOut; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  const std::string& message() const {
    static const std::string kOk = "OK";
    return msg_ ? *msg_ : kOk;
  }
  // The same code with context in front: "writing x: <message>".
  Status Prefixed(const std::string& context) const { return ok() ? *this : Status(code_, context + ": " + message()); }

 private:
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::optional<std::string> msg_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}       // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) {}  // NOLINT
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
