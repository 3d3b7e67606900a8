// Result<T>: a value or an Error, returned across module edges instead of throwing.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ivr {

// Error codes mirror the public IVR_E* codes so the C shim maps them 1:1.
enum class Errc {
  invalid_argument = -1,
  no_memory = -2,
  bad_state = -3,
  not_found = -4,
  gone = -5,
  io = -6,
  sip = -7,
  media = -8,
  version = -9,
  busy = -10,
  parse = -11,
  unsupported = -12,
  internal = -99,
};

struct Error {
  Errc code = Errc::internal;
  std::string message;  // names the field and the reason
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  Result(Errc code, std::string message) : v_(Error{code, std::move(message)}) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T &value() & { return std::get<0>(v_); }
  const T &value() const & { return std::get<0>(v_); }
  T &&value() && { return std::get<0>(std::move(v_)); }
  T *operator->() { return &std::get<0>(v_); }
  const T *operator->() const { return &std::get<0>(v_); }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  const Error &error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Status: Result without a value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  Status(Errc code, std::string message) : error_{code, std::move(message)}, ok_(false) {}
  static Status success() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error &error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace ivr
