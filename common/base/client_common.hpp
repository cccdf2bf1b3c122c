#pragma once
// Command-line handling shared by the tiny clients (archive-push, archive-get).
#include <string>
#include <vector>

#include "common/base/error.hpp"
#include "common/base/socket_client.hpp"

namespace walvault {

struct ClientCommandLine {
  ClientOptions options;
  std::vector<std::string> positional;
  bool help = false;
  bool version = false;
};

// Options: --socket PATH, --timeout SECONDS, --connect-timeout SECONDS, --help, --version;
// `--name=value` works too. The socket falls back to $WALVAULT_SOCKET, then the default.
Result<ClientCommandLine> parse_client_command_line(int argc, const char* const* argv);

// Help text for the shared options, appended to each client's usage.
extern const char* const k_client_options_help;

}  // namespace walvault
