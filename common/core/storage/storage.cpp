#include "common/core/storage/storage.hpp"

#include <algorithm>

#include "common/core/storage/s3/s3_storage.hpp"

namespace walvault {

bool is_valid_storage_key(std::string_view key) {
  if (key.empty() || key.size() > 1024) return false;
  std::size_t start = 0;
  while (start <= key.size()) {
    auto slash = key.find('/', start);
    std::string_view part = key.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    for (char c : part)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

Result<std::vector<std::string>> Storage::list(const std::string& prefix) {
  auto objects = list_objects(prefix);
  if (!objects) return std::unexpected(objects.error());
  std::vector<std::string> keys;
  keys.reserve(objects->size());
  for (auto& object : *objects) keys.push_back(std::move(object.key));
  return keys;
}

Result<void> Storage::sync(const std::string&) { return {}; }

Result<std::vector<std::string>> Storage::list_children(const std::string& prefix) {
  auto objects = list_objects(prefix);
  if (!objects) return std::unexpected(objects.error());
  std::vector<std::string> children;
  const std::size_t skip = prefix.empty() ? 0 : prefix.size() + 1;
  for (const auto& object : *objects) {
    if (object.key.size() <= skip) continue;
    std::string child = object.key.substr(skip, object.key.find('/', skip) - skip);
    if (children.empty() || children.back() != child) children.push_back(std::move(child));
  }
  std::sort(children.begin(), children.end());
  children.erase(std::unique(children.begin(), children.end()), children.end());
  return children;
}

Result<Storage::Removed> Storage::remove_all(const std::string& prefix) {
  auto objects = list_objects(prefix);
  if (!objects) return std::unexpected(objects.error());
  Removed removed;
  for (const auto& object : *objects) {
    if (auto r = remove(object.key); !r) return std::unexpected(r.error());
    ++removed.objects;
    removed.bytes += object.size;
  }
  return removed;
}

Result<std::unique_ptr<Storage>> open_storage(std::string_view location, const StorageOptions& options) {
  if (location.empty()) return fail(ErrorKind::invalid, "no repository given (option 'repo')");
  if (location.starts_with("s3://")) {
    const std::string_view rest = location.substr(5);
    const std::size_t slash = rest.find('/');
    S3Settings settings;
    settings.bucket = std::string(rest.substr(0, slash));
    settings.prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    settings.region = options.s3_region;
    settings.endpoint = options.s3_endpoint.empty() ? "https://s3." + options.s3_region + ".amazonaws.com" : options.s3_endpoint;
    settings.path_style = options.s3_path_style;
    settings.storage_class = options.s3_storage_class;
    settings.http.ca_file = options.s3_ca_file;
    settings.http.verify_tls = options.s3_verify_tls;
    settings.http.low_speed_time = options.s3_timeout;
    settings.credentials = s3::Credentials{options.s3_key, options.s3_key_secret, options.s3_session_token};
    settings.credentials_file = options.s3_credentials_file;
    auto storage = open_s3_storage(std::move(settings));
    if (!storage) return fail(storage.error().kind, "repository '" + std::string(location) + "': " + storage.error().message);
    return storage;
  }
  if (location.starts_with("file://")) location.remove_prefix(7);
  if (location.find("://") != std::string_view::npos)
    return fail(ErrorKind::invalid, "repository '" + std::string(location) + "': unknown scheme (use a path or s3://)");
  if (!location.starts_with("/"))
    return fail(ErrorKind::invalid, "repository '" + std::string(location) + "' must be an absolute path");
  return open_posix_storage(std::string(location));
}

}  // namespace walvault
