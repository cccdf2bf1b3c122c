#include "common/base/error.hpp"

#include <cerrno>
#include <cstring>

namespace walvault {

namespace {
struct KindName {
  ErrorKind kind;
  std::string_view name;
};
constexpr KindName k_kind_names[] = {
    {ErrorKind::invalid, "invalid"},     {ErrorKind::forbidden, "forbidden"},
    {ErrorKind::refused, "refused"},     {ErrorKind::conflict, "conflict"},
    {ErrorKind::not_found, "not-found"}, {ErrorKind::corrupt, "corrupt"},
    {ErrorKind::io, "io"},               {ErrorKind::no_space, "no-space"},
    {ErrorKind::timeout, "timeout"},     {ErrorKind::busy, "busy"},
    {ErrorKind::internal, "internal"},
};
}  // namespace

std::string_view to_string(ErrorKind kind) {
  for (const auto& entry : k_kind_names)
    if (entry.kind == kind) return entry.name;
  return "internal";
}

ErrorKind error_kind_from_string(std::string_view word) {
  for (const auto& entry : k_kind_names)
    if (entry.name == word) return entry.kind;
  return ErrorKind::internal;
}

std::string os_error_text(std::string_view operation, std::string_view path, int err) {
  std::string text = "unable to ";
  text += operation;
  text += " '";
  text += path;
  text += "': [";
  text += std::to_string(err);
  text += "] ";
  text += std::strerror(err);
  return text;
}

std::unexpected<Failure> fail_os(std::string_view operation, std::string_view path, int err) {
  ErrorKind kind = ErrorKind::io;
  if (err == ENOSPC || err == EDQUOT) kind = ErrorKind::no_space;
  Failure failure{kind, os_error_text(operation, path, err)};
  // What a loaded machine or a network filesystem may report for a moment; a local EIO is
  // damage, not weather, and stays permanent.
  failure.transient = err == EAGAIN || err == EINTR || err == EBUSY || err == ETIMEDOUT || err == ESTALE;
  return std::unexpected(std::move(failure));
}

FailureCategory category_of(const Failure& failure) {
  switch (failure.kind) {
    case ErrorKind::not_found: return FailureCategory::absent;
    case ErrorKind::invalid:
    case ErrorKind::forbidden:
    case ErrorKind::refused:
    case ErrorKind::conflict: return FailureCategory::refused;
    default: return failure.transient ? FailureCategory::transient : FailureCategory::permanent;
  }
}

std::string_view to_string(FailureCategory category) {
  switch (category) {
    case FailureCategory::absent: return "absent";
    case FailureCategory::transient: return "transient";
    case FailureCategory::refused: return "refused";
    case FailureCategory::permanent: return "permanent";
  }
  return "permanent";
}

}  // namespace walvault
