#pragma once
// The one command-line parser of the clients: archive-push, archive-get and walvault.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/socket_client.hpp"

namespace walvault {

struct ClientCommandLine {
  ClientOptions options;
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // a caller's own options; flags as "1"
  bool help = false;
  bool version = false;
  bool timeout_given = false;
};

// Options a caller adds to the shared ones (walvault's verbs each have their own).
struct ClientOptionSpec {
  std::set<std::string> value_options;             // --name VALUE or --name=VALUE
  std::set<std::string> flag_options;              // --name
  std::map<std::string, std::string> short_value;  // "-d" VALUE stands for --dbname VALUE
  std::string owner;                               // named in "unknown option" errors ("'list'")
};
// The spec for the arguments seen so far (walvault's depends on its verb, the first positional).
using ClientOptionsFor = std::function<ClientOptionSpec(const std::vector<std::string>& positional)>;

// Options: --socket PATH, --timeout SECONDS, --connect-timeout SECONDS (both 0 < s <= 86400),
// --help/-h, --version, and the caller's own; `--name=value` works too, `--` ends options. The
// socket falls back to $WALVAULT_SOCKET, then the default.
Result<ClientCommandLine> parse_client_command_line(int argc, const char* const* argv, const ClientOptionsFor& extra = {});

// Help text for the shared options, appended to each client's usage.
extern const char* const k_client_options_help;

}  // namespace walvault
