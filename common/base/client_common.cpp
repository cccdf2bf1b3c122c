#include "common/base/client_common.hpp"

#include <cstdlib>
#include <string_view>

namespace walvault {

const char* const k_client_options_help =
    "Options:\n"
    "  --socket PATH            walvaultd's socket (default: $WALVAULT_SOCKET, else /run/walvault/walvault.sock)\n"
    "  --timeout SECONDS        how long to wait for walvaultd's answer (default 300)\n"
    "  --connect-timeout SECONDS how long to retry while walvaultd is not accepting (default 1)\n"
    "  --help                   this text\n"
    "  --version                the version\n";

namespace {

Result<std::chrono::milliseconds> parse_seconds(std::string_view option, const std::string& value) {
  char* end = nullptr;
  double seconds = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !(seconds > 0) || seconds > 86400)
    return fail(ErrorKind::invalid, "option '" + std::string(option) + "' needs seconds between 0 and 86400, not '" + value + "'");
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

}  // namespace

Result<ClientCommandLine> parse_client_command_line(int argc, const char* const* argv, const ClientOptionsFor& extra) {
  ClientCommandLine result;
  const char* env_socket = std::getenv("WALVAULT_SOCKET");
  result.options.socket_path = env_socket && *env_socket ? env_socket : std::string(protocol::k_default_socket);

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    const ClientOptionSpec spec = extra ? extra(result.positional) : ClientOptionSpec{};
    if (arg == "--help" || arg == "-h") {
      result.help = true;
      continue;
    }
    if (arg == "--version") {
      result.version = true;
      continue;
    }
    if (arg == "--") {
      for (++i; i < argc; ++i) result.positional.emplace_back(argv[i]);
      break;
    }
    if (auto alias = spec.short_value.find(std::string(arg)); alias != spec.short_value.end()) {
      if (i + 1 >= argc) return fail(ErrorKind::invalid, "option '" + std::string(arg) + "' needs a value");
      result.values[alias->second] = argv[++i];
      continue;
    }
    if (arg.starts_with("--")) {
      std::string name(arg.substr(2));
      std::string value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
        has_value = true;
      }
      const bool shared = name == "socket" || name == "timeout" || name == "connect-timeout";
      if (spec.flag_options.contains(name)) {
        if (has_value) return fail(ErrorKind::invalid, "option '--" + name + "' takes no value");
        result.values[name] = "1";
        continue;
      }
      if (!shared && !spec.value_options.contains(name))
        return fail(ErrorKind::invalid, "unknown option '--" + name + "'" + (spec.owner.empty() ? "" : " for " + spec.owner));
      if (!has_value) {
        if (i + 1 >= argc) return fail(ErrorKind::invalid, "option '--" + name + "' needs a value");
        value = argv[++i];
      }
      if (name == "socket") {
        if (value.empty()) return fail(ErrorKind::invalid, "option '--socket' needs a path");
        result.options.socket_path = value;
      } else if (name == "timeout") {
        auto ms = parse_seconds("--timeout", value);
        if (!ms) return std::unexpected(ms.error());
        result.options.timeout = *ms;
        result.timeout_given = true;
      } else if (name == "connect-timeout") {
        auto ms = parse_seconds("--connect-timeout", value);
        if (!ms) return std::unexpected(ms.error());
        result.options.connect_timeout = *ms;
      } else {
        result.values[name] = value;
      }
      continue;
    }
    result.positional.emplace_back(arg);
  }
  return result;
}

}  // namespace walvault
