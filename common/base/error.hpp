#pragma once
// Failures as values: every fallible function below the edge returns Result<T>.
#include "common/base/expected.hpp"
#include <string>
#include <string_view>

namespace walvault {

enum class ErrorKind {
  invalid,    // bad name, bad request, bad option
  forbidden,  // peer not allowed
  refused,    // not WAL of this cluster
  conflict,   // same name, different content
  not_found,  // proven not archived (decided by the reader that owns the rule, never by errno)
  corrupt,    // stored object fails verification
  io,         // operating-system or storage failure
  no_space,   // ENOSPC / EDQUOT: reported apart so operators see it
  timeout,
  busy,
  internal,
};

std::string_view to_string(ErrorKind kind);
// Inverse of to_string for the wire protocol; unknown words map to internal.
ErrorKind error_kind_from_string(std::string_view word);

struct Failure {
  ErrorKind kind;
  std::string message;  // lowercase, names the operation, the quoted object and the cause
  // Set by a storage backend for a failure that may pass by itself (a timeout, a throttled or
  // unavailable service, EAGAIN): the one retry wrapper (common/core/storage/retrying_storage)
  // tries again; callers never do.
  bool transient = false;
};

// How storage failures are told apart. Absent is a value (nullopt), never an error: it shows
// here only for completeness of the categories.
enum class FailureCategory {
  absent,     // not_found
  transient,  // worth retrying: may succeed unchanged
  refused,    // the request itself is wrong or not allowed (invalid, forbidden, refused, conflict)
  permanent,  // anything else: retrying cannot help (EIO, corrupt, no space, ...)
};
FailureCategory category_of(const Failure& failure);
std::string_view to_string(FailureCategory category);

template <typename T>
using Result = std::expected<T, Failure>;

inline std::unexpected<Failure> fail(ErrorKind kind, std::string message) {
  return std::unexpected<Failure>(Failure{kind, std::move(message)});
}

// "unable to <operation> '<path>': [<errno>] <strerror>", the one template for OS errors.
std::string os_error_text(std::string_view operation, std::string_view path, int err);
// A Failure from errno after a failed system call; ENOSPC/EDQUOT become no_space, everything
// else (ENOENT included) is io; EAGAIN, EINTR, EBUSY, ETIMEDOUT and ESTALE are transient. A missing file is never "not there" by itself: readers that
// can be asked for something absent test for it and return it as a value.
std::unexpected<Failure> fail_os(std::string_view operation, std::string_view path, int err);

}  // namespace walvault
