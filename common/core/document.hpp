#pragma once
// What an admin verb computes (a model rendered twice: JSON for tools, text for people) and
// the one responder that delivers it to the walvault CLI: the chosen rendering into the
// descriptor the CLI passed, then OK with exit=<code>. Used by every verb of either side
// (restorer's STATUS..REINDEX, archiver's PRUNE and BACKUP).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/base/error.hpp"
#include "common/base/protocol.hpp"
#include "common/core/request.hpp"

namespace walvault {

// 1536 -> "1.5 KiB": sizes in documents meant for people.
std::string human_bytes(std::uint64_t bytes);

struct AdminOutput {
  nlohmann::ordered_json json;
  std::string text;
  int exit_code = 0;
  std::string reason;            // exit 1: one line for stderr (what failed)
  std::optional<Failure> error;  // the request itself was wrong (bad value): ERR, no document
};

// A failure of the verb itself as its document (exit 1; ERR for a bad request value).
AdminOutput failed_output(const Failure& failure);

// Runs `verb` and delivers its output: format=json picks the JSON rendering, else text.
protocol::Message serve_document(Request& request, const std::function<AdminOutput()>& verb);

}  // namespace walvault
