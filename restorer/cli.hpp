#pragma once
// The `walvault` admin CLI. Most verbs are one request: the daemon writes the document into a
// pipe the CLI passes and answers OK exit=N. `restore` runs here, in the CLI (restore_client.cpp).
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/base/error.hpp"
#include "common/base/protocol.hpp"
#include "common/base/socket_client.hpp"

namespace walvault {

inline constexpr int k_exit_ok = 0;
inline constexpr int k_exit_check_failed = 1;
inline constexpr int k_exit_usage = 2;

// walvault VERB [OPTIONS] [--json]: 0 done / all checks hold; 1 a check failed or the target is
// unreachable (reason on stderr or in the document); 2 usage or connection error.
int run_walvault_cli(int argc, const char* const* argv);

struct DocumentReply {
  protocol::Message response;
  std::string document;
};
// Sends `request` with a pipe for the document (and our stderr for progress lines when
// `progress`), and collects both.
Result<DocumentReply> exchange_document(const ClientOptions& options, const protocol::Message& request, bool progress);
// The CLI's exit status for an admin answer; prints the reason to stderr.
int exit_code_of(const protocol::Message& response);

// `walvault restore` (restore_client.cpp). With `report`, nothing is printed on stdout: the
// JSON document `--json` would print is stored there (errors still go to stderr).
int run_restore(const ClientOptions& options, const std::map<std::string, std::string>& values, bool as_json,
                nlohmann::json* report = nullptr);

// Now, UTC, to the second: 2026-12-07T02:08:30Z (restore_client.cpp).
std::string utc_now_text();

// `walvault drill` (drill_client.cpp): restore into a scratch directory, start PostgreSQL there,
// check it, report RTO and RPO, record the result in walvaultd.
int run_drill(const ClientOptions& options, const std::map<std::string, std::string>& values, bool as_json);

}  // namespace walvault
