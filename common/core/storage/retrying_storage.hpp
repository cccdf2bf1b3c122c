#pragma once
// The one place that decides retries of storage calls: a Storage in front of another that
// tries a call again when it fails with a transient failure (Failure::transient), with
// bounded exponential backoff and full jitter, and gives up after a few attempts with the last
// failure (its message says how often it was tried). Refused, permanent and absent answers
// pass through at once. ObjectStore puts one in front of every backend, so no caller retries.
//
// Streamed writes retry their start (create); a failed append or commit surfaces, because
// bytes already handed over cannot be taken back here (a backend with resumable parts, such as
// an S3 multipart upload, retries a part inside itself).
#include <chrono>
#include <functional>
#include <memory>

#include "common/core/storage/storage.hpp"

namespace walvault {

struct RetryPolicy {
  int attempts = 5;                                 // calls in all, the first included
  std::chrono::milliseconds first_delay{50};        // before the second call; doubles after each
  std::chrono::milliseconds max_delay{2000};        // cap of one wait
  // Waits (tests replace it to run without sleeping and to count the waits).
  std::function<void(std::chrono::milliseconds)> sleep;
};

std::unique_ptr<Storage> make_retrying_storage(std::unique_ptr<Storage> inner, RetryPolicy policy = {});

}  // namespace walvault
