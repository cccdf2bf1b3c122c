#include "common/core/storage/s3/credentials.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/base/text.hpp"

namespace walvault::s3 {

namespace {

std::string_view strip_comment(std::string_view line) {
  const std::size_t hash = line.find_first_of("#;");
  return hash == std::string_view::npos ? line : line.substr(0, hash);
}

}  // namespace

Result<Credentials> parse_credentials_file(const std::string& text, const std::string& path) {
  // Sections seen, and the keys of the one that counts: [default] wins, else keys before any
  // section, else the only section there is.
  std::map<std::string, std::map<std::string, std::string>> sections;
  std::string section;  // "" : before any section
  std::istringstream lines(text);
  std::string raw;
  for (int number = 1; std::getline(lines, raw); ++number) {
    const std::string_view line = trim_blanks(strip_comment(raw));
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') return fail(ErrorKind::invalid, "s3-credentials-file '" + path + "' line " + std::to_string(number) + ": expected [section]");
      section = std::string(trim_blanks(line.substr(1, line.size() - 2)));
      sections[section];
      continue;
    }
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return fail(ErrorKind::invalid, "s3-credentials-file '" + path + "' line " + std::to_string(number) + ": expected name = value");
    sections[section][std::string(trim_blanks(line.substr(0, eq)))] = std::string(trim_blanks(line.substr(eq + 1)));
  }
  const std::map<std::string, std::string>* chosen = nullptr;
  if (auto it = sections.find("default"); it != sections.end()) chosen = &it->second;
  else if (auto top = sections.find(""); top != sections.end() && !top->second.empty()) chosen = &top->second;
  else if (sections.size() == 1) chosen = &sections.begin()->second;
  if (!chosen)
    return fail(ErrorKind::invalid, "s3-credentials-file '" + path + "' has several sections and no [default] one");
  auto value = [&](const char* name) {
    auto it = chosen->find(name);
    return it == chosen->end() ? std::string() : it->second;
  };
  Credentials credentials{value("aws_access_key_id"), value("aws_secret_access_key"), value("aws_session_token")};
  if (credentials.key_id.empty() || credentials.secret.empty())
    return fail(ErrorKind::invalid, "s3-credentials-file '" + path + "' lacks aws_access_key_id or aws_secret_access_key");
  return credentials;
}

bool CredentialSource::Stamp::operator==(const Stamp& other) const {
  return device == other.device && inode == other.inode && size == other.size && modified.tv_sec == other.modified.tv_sec &&
         modified.tv_nsec == other.modified.tv_nsec;
}

CredentialSource::CredentialSource(Credentials fixed) : m_credentials(std::move(fixed)) {}

CredentialSource::CredentialSource(CredentialSource&& other) noexcept
    : m_path(std::move(other.m_path)), m_credentials(std::move(other.m_credentials)), m_stamp(other.m_stamp), m_warned(other.m_warned) {}

Result<CredentialSource> CredentialSource::from_file(std::string path) {
  CredentialSource source;
  source.m_path = std::move(path);
  if (auto r = source.reload(); !r) return fail(ErrorKind::invalid, r.error().message);
  return source;
}

Result<void> CredentialSource::reload() {
  // stat follows symbolic links, so a Kubernetes secret's swapped ..data link shows as a new inode.
  struct stat st{};
  if (::stat(m_path.c_str(), &st) != 0) return fail(ErrorKind::io, "s3-credentials-file '" + m_path + "': " + std::strerror(errno));
  if (st.st_mode & S_IROTH)
    return fail(ErrorKind::invalid, "s3-credentials-file '" + m_path + "' is readable by others (mode " +
                                        std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                                        std::to_string(st.st_mode & 7) + "): chmod o-r it (0600 or 0640; in Kubernetes, defaultMode: 0440)");
  std::ifstream in(m_path, std::ios::binary);
  if (!in) return fail(ErrorKind::io, "s3-credentials-file '" + m_path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  auto credentials = parse_credentials_file(text.str(), m_path);
  if (!credentials) return std::unexpected(credentials.error());
  m_credentials = std::move(*credentials);
  m_stamp = Stamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  return {};
}

Credentials CredentialSource::current() {
  std::lock_guard lock(m_mutex);
  if (m_path.empty()) return m_credentials;
  struct stat st{};
  if (::stat(m_path.c_str(), &st) == 0) {
    const Stamp now{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
    if (!(now == m_stamp)) {
      const std::string previous_key = m_credentials.key_id;
      if (auto r = reload(); !r) {
        if (!m_warned) spdlog::warn("{}; signing with the credentials read before", r.error().message);
        m_warned = true;
      } else {
        m_warned = false;
        spdlog::info("s3-credentials-file '{}' re-read: access key {}{}", m_path, m_credentials.key_id,
                     m_credentials.key_id == previous_key ? " (unchanged)" : "");
      }
    }
  } else if (!m_warned) {
    spdlog::warn("s3-credentials-file '{}': {}; signing with the credentials read before", m_path, std::strerror(errno));
    m_warned = true;
  }
  return m_credentials;
}

}  // namespace walvault::s3
