#pragma once
// Writing to the descriptors a walvault client passed with its request (the document pipe and
// the terminal for progress lines). A client that stops reading must never hold a daemon
// thread for longer than a bound: the document write gives up after an idle limit, and a
// progress line that cannot be written at once is dropped (it is advisory).
#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>

#include "common/base/error.hpp"
#include "common/base/protocol.hpp"
#include "common/core/request.hpp"

namespace walvault {

// How long a document write may make no progress before the daemon gives up on the client.
// The walvault CLI drains its pipe on a thread of its own, so only a stuck or hostile client
// ever reaches it.
inline constexpr std::chrono::seconds k_client_output_idle_limit{30};

// Writes all of `data` to `fd`; fails (ErrorKind::timeout) when no byte could be written for
// `idle_limit`. A pipe or terminal is switched to non-blocking for the write and restored
// after, so the client's own use of the descriptor is unchanged.
Result<void> write_client_output(int fd, std::span<const std::byte> data, std::chrono::milliseconds idle_limit,
                                 std::string_view what);

// Best effort, never blocks: writes `line` when the descriptor can take it now, else drops it.
void write_progress(int fd, std::string_view line);

// Answers a request that carries a document: writes `document` into the request's first
// descriptor, closes both passed descriptors (so the client sees the end of the document),
// and returns `response`, or an error when the document could not be delivered.
protocol::Message respond_with_document(Request& request, std::string_view document, protocol::Message response,
                                        std::chrono::milliseconds idle_limit = k_client_output_idle_limit);

}  // namespace walvault
