#include "common/core/base_backup.hpp"

#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/base/text.hpp"

namespace walvault {

namespace {

using json = nlohmann::ordered_json;
constexpr int k_backup_format = 1;

json optional_int(const std::optional<std::int64_t>& value) { return value ? json(*value) : json(nullptr); }

// nlohmann's get<integer>() converts whatever number it finds: a float out of range is undefined
// behaviour (found by tests/fuzz/fuzz_backup_files), a negative or too large one wraps. A
// backup.json field is an integer in T's range, or the document is corrupt.
template <class T>
T integer_at(const json& object, const char* key) {
  const json& value = object.at(key);
  if (value.is_number_unsigned()) {
    const auto n = value.get<std::uint64_t>();
    if (std::in_range<T>(n)) return static_cast<T>(n);
  } else if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    if (std::in_range<T>(n)) return static_cast<T>(n);
  } else {
    throw std::invalid_argument(std::string("'") + key + "' is not an integer");
  }
  throw std::out_of_range(std::string("'") + key + "' is out of range");
}

}  // namespace

bool is_valid_backup_id(std::string_view id) {
  // YYYYMMDDTHHMMSSZ, optionally -N when two backups start within one second.
  if (id.size() < 16 || id[8] != 'T' || id[15] != 'Z') return false;
  if (!all_digits(id.substr(0, 8)) || !all_digits(id.substr(9, 6))) return false;
  if (id.size() == 16) return true;
  return id[16] == '-' && id.size() <= 20 && all_digits(id.substr(17));
}

std::string backup_id_for(std::int64_t unix_us) {
  const std::time_t seconds = static_cast<std::time_t>(unix_us / 1000000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string backup_directory_key(std::string_view id) { return std::string(k_backup_prefix) + "/" + std::string(id); }
std::string backup_info_key(std::string_view id) { return backup_directory_key(id) + "/backup.json"; }
std::string backup_chunk_key(std::string_view id, std::size_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "/chunk-%05zu.tar", number);
  return backup_directory_key(id) + name;
}

std::map<std::string, const StoredBackup*> stored_by_backup_file(const std::vector<StoredBackup>& stored) {
  std::map<std::string, const StoredBackup*> out;
  for (const auto& s : stored) out[s.backup_file] = &s;
  return out;
}

std::string render_backup_info(const StoredBackup& b) {
  json chunks = json::array();
  for (const auto& c : b.chunks)
    chunks.push_back(json{{"key", c.key}, {"plain_size", c.plain_size}, {"stored_size", c.stored_size},
                          {"sha256", c.sha256}, {"entries", c.entries}});
  json doc{{"format", k_backup_format},
           {"id", b.id},
           {"label", b.label},
           {"timeline", b.timeline},
           {"start_lsn", b.start_lsn},
           {"stop_lsn", b.stop_lsn},
           {"checkpoint_lsn", b.checkpoint_lsn},
           {"backup_file", b.backup_file},
           {"start_us", optional_int(b.start_us)},
           {"stop_us", optional_int(b.stop_us)},
           {"started_at_us", b.started_at_us},
           {"finished_at_us", b.finished_at_us},
           {"plain_bytes", b.plain_bytes},
           {"stored_bytes", b.stored_bytes},
           {"files", b.files},
           {"has_manifest", b.has_manifest},
           {"pg_version", b.pg_version},
           {"system_identifier", std::to_string(b.system_identifier)},
           {"chunks", chunks}};
  return doc.dump(1) + "\n";
}

Result<StoredBackup> parse_backup_info(std::string_view text, std::string_view what) {
  auto corrupt = [&](const std::string& why) {
    return fail(ErrorKind::corrupt, "backup description '" + std::string(what) + "' is not valid: " + why);
  };
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt("not a JSON object");
  try {
    if (integer_at<int>(doc, "format") != k_backup_format)
      return corrupt("format " + std::to_string(integer_at<int>(doc, "format")) + " is not known to this walvault");
    StoredBackup b;
    b.id = doc.at("id").get<std::string>();
    if (!is_valid_backup_id(b.id)) return corrupt("bad id '" + b.id + "'");
    b.label = doc.at("label").get<std::string>();
    b.timeline = integer_at<std::uint32_t>(doc, "timeline");
    b.start_lsn = integer_at<std::uint64_t>(doc, "start_lsn");
    b.stop_lsn = integer_at<std::uint64_t>(doc, "stop_lsn");
    b.checkpoint_lsn = integer_at<std::uint64_t>(doc, "checkpoint_lsn");
    b.backup_file = doc.at("backup_file").get<std::string>();
    if (!doc.at("start_us").is_null()) b.start_us = integer_at<std::int64_t>(doc, "start_us");
    if (!doc.at("stop_us").is_null()) b.stop_us = integer_at<std::int64_t>(doc, "stop_us");
    b.started_at_us = integer_at<std::int64_t>(doc, "started_at_us");
    b.finished_at_us = integer_at<std::int64_t>(doc, "finished_at_us");
    b.plain_bytes = integer_at<std::uint64_t>(doc, "plain_bytes");
    b.stored_bytes = integer_at<std::uint64_t>(doc, "stored_bytes");
    b.files = integer_at<std::uint64_t>(doc, "files");
    b.has_manifest = doc.at("has_manifest").get<bool>();
    b.pg_version = integer_at<int>(doc, "pg_version");
    b.system_identifier = std::stoull(doc.at("system_identifier").get<std::string>());
    const std::string prefix = backup_directory_key(b.id) + "/";
    for (const auto& c : doc.at("chunks")) {
      BackupChunk chunk;
      chunk.key = c.at("key").get<std::string>();
      // A chunk key is always inside its own backup's directory: a tampered description
      // cannot point restore at some other object.
      if (!chunk.key.starts_with(prefix) || chunk.key.find("..") != std::string::npos)
        return corrupt("chunk key '" + chunk.key + "' is outside " + prefix);
      chunk.plain_size = integer_at<std::uint64_t>(c, "plain_size");
      chunk.stored_size = integer_at<std::uint64_t>(c, "stored_size");
      chunk.sha256 = c.at("sha256").get<std::string>();
      chunk.entries = integer_at<std::uint64_t>(c, "entries");
      b.chunks.push_back(std::move(chunk));
    }
    if (b.chunks.empty()) return corrupt("no chunks");
    return b;
  } catch (const std::exception& e) {
    return corrupt(e.what());
  }
}

}  // namespace walvault
