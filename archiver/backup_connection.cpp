#include "archiver/backup_connection.hpp"

#include <cctype>

#include "common/core/pgdata.hpp"

namespace walvault {

namespace {

bool is_uri(std::string_view text) { return text.starts_with("postgresql://") || text.starts_with("postgres://"); }

// %XX sequences of a URI part, as libpq decodes them.
std::string percent_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// Runs pg_basebackup as `who` (root walvaultd only); nullopt without a passwd entry to take
// its groups from.
std::optional<RunAs> as_user(const UserIdentity& who) {
  if (who.groups.empty()) return std::nullopt;
  return RunAs{who.uid, who.groups.front(), who.groups};
}

ConninfoParts split_uri_password(std::string_view uri) {
  ConninfoParts parts;
  std::string text(uri);
  const std::size_t authority = text.find("://") + 3;
  const std::size_t end = text.find('/', authority);  // libpq: the user info ends at the last '@' before it
  const std::size_t at = text.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at != std::string::npos && at >= authority) {
    const std::size_t colon = text.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      parts.password = percent_decoded(text.substr(colon + 1, at - colon - 1));
      text.erase(colon, at - colon);
    }
  }
  // ?password=... (or &password=...) in the query.
  const std::size_t query = text.find('?');
  if (query != std::string::npos) {
    std::string kept;
    std::size_t pos = query + 1;
    while (pos <= text.size()) {
      std::size_t amp = text.find('&', pos);
      const std::string param = text.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      if (param.starts_with("password=")) parts.password = percent_decoded(param.substr(9));
      else if (!param.empty()) kept += (kept.empty() ? "" : "&") + param;
      if (amp == std::string::npos) break;
      pos = amp + 1;
    }
    text = text.substr(0, query) + (kept.empty() ? "" : "?" + kept);
  }
  parts.conninfo = text;
  return parts;
}

}  // namespace

ConninfoParts split_password(std::string_view conninfo) {
  if (is_uri(conninfo)) return split_uri_password(conninfo);
  // key = value pairs; a value is 'single quoted' (\\ and \' escapes) or runs to the next blank.
  ConninfoParts parts;
  std::size_t pos = 0;
  const std::size_t n = conninfo.size();
  auto skip_blanks = [&] {
    while (pos < n && std::isspace(static_cast<unsigned char>(conninfo[pos]))) ++pos;
  };
  while (true) {
    skip_blanks();
    if (pos >= n) break;
    const std::size_t item_start = pos;
    while (pos < n && conninfo[pos] != '=' && !std::isspace(static_cast<unsigned char>(conninfo[pos]))) ++pos;
    const std::string key(conninfo.substr(item_start, pos - item_start));
    skip_blanks();
    if (pos >= n || conninfo[pos] != '=') {  // not key=value: libpq refuses it, so may we
      parts.conninfo += (parts.conninfo.empty() ? "" : " ") + std::string(conninfo.substr(item_start));
      parts.malformed = true;
      break;
    }
    ++pos;
    skip_blanks();
    std::string value;
    if (pos < n && conninfo[pos] == '\'') {
      ++pos;
      while (pos < n && conninfo[pos] != '\'') {
        if (conninfo[pos] == '\\' && pos + 1 < n) ++pos;
        value += conninfo[pos++];
      }
      if (pos < n) ++pos;  // the closing quote
    } else {
      while (pos < n && !std::isspace(static_cast<unsigned char>(conninfo[pos]))) {
        if (conninfo[pos] == '\\' && pos + 1 < n) ++pos;
        value += conninfo[pos++];
      }
    }
    if (key == "password") {
      parts.password = value;
      continue;
    }
    parts.conninfo += (parts.conninfo.empty() ? "" : " ") + std::string(conninfo.substr(item_start, pos - item_start));
  }
  return parts;
}

Result<PgConnection> choose_connection(const std::string& daemon_conninfo, const std::string& pgdata,
                                       const CallerConnection& caller, uid_t daemon_uid) {
  PgConnection connection;
  auto take_conninfo = [&](const std::string& text) {
    ConninfoParts parts = split_password(text);
    connection.dbname = parts.conninfo;
    if (!parts.password.empty()) connection.environment.push_back("PGPASSWORD=" + parts.password);
  };
  if (!daemon_conninfo.empty()) {
    take_conninfo(daemon_conninfo);
    connection.source = "walvaultd's pg-conninfo";
    return connection;
  }
  const bool caller_says = !caller.dbname.empty() || !caller.environment.empty();
  std::vector<std::string> from;
  if (!pgdata.empty()) {
    auto postmaster = read_postmaster_pid(pgdata);
    auto owner = owner_of(pgdata);
    if ((!postmaster || !owner) && !caller_says) return std::unexpected(!postmaster ? postmaster.error() : owner.error());
    if (postmaster && owner) {
      std::string host = postmaster->socket_directory;
      if (host.empty()) host = postmaster->listen_address == "*" ? "localhost" : postmaster->listen_address;
      connection.environment.push_back("PGHOST=" + host);
      connection.environment.push_back("PGPORT=" + std::to_string(postmaster->port));
      if (!owner->name.empty()) connection.environment.push_back("PGUSER=" + owner->name);
      if (daemon_uid == 0 && owner->uid != 0 && !caller_says) {
        // Peer authentication (Debian's default for local connections) then sees the
        // cluster's own user, not root.
        connection.run_as = as_user(*owner);
        if (!owner->home.empty()) connection.environment.push_back("HOME=" + owner->home);
      }
      from.push_back("pgdata '" + pgdata + "' (host " + host + ", port " + std::to_string(postmaster->port) +
                     (owner->name.empty() ? "" : ", user " + owner->name) + ")");
    }
  }
  if (!caller.environment.empty()) {
    std::string names;
    for (const auto& [name, value] : caller.environment) {
      std::erase_if(connection.environment, [&](const std::string& e) { return e.starts_with(name + "="); });
      connection.environment.push_back(name + "=" + value);
      names += (names.empty() ? "" : ", ") + name;
    }
    from.push_back("the caller's " + names);
  }
  if (!caller.dbname.empty()) {
    if (split_password(caller.dbname).malformed)
      return fail(ErrorKind::invalid, "walvault backup -d: not a connection string (expected key=value pairs or a postgresql:// URI)");
    take_conninfo(caller.dbname);
    from.push_back("walvault backup -d");
  }
  if (caller_says && daemon_uid == 0 && caller.uid != 0) {
    // The caller's parameters (a host, a passfile, certificates) with the caller's privileges,
    // never with root's.
    const UserIdentity who = identity_of_uid(caller.uid);
    connection.run_as = as_user(who);
    if (!connection.run_as)
      return fail(ErrorKind::forbidden, "uid " + std::to_string(caller.uid) + " has no passwd entry here, so walvaultd cannot run "
                                        "pg_basebackup as that user with its -d or PG* settings; use walvaultd's pgdata or pg-conninfo");
    std::erase_if(connection.environment, [](const std::string& e) { return e.starts_with("HOME="); });
    if (!who.home.empty()) connection.environment.push_back("HOME=" + who.home);
  }
  if (from.empty())
    return fail(ErrorKind::invalid, "walvaultd knows no PostgreSQL to back up: set pgdata (the data directory; host and port "
                                    "come from its postmaster.pid) or pg-conninfo in walvaultd and reload (SIGHUP), or run "
                                    "'walvault backup -d CONNINFO' (or with PGHOST/PGPORT/PGUSER set)");
  std::string source;
  for (auto it = from.rbegin(); it != from.rend(); ++it) source += (source.empty() ? "" : " over ") + *it;
  connection.source = source;
  return connection;
}

}  // namespace walvault
