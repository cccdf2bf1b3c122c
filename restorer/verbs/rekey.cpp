// REKEY: after a key rotation, wrap every encrypted object's data key with the current key
// (encryption-key-file), repository by repository, so the old key files can go. Bodies are
// copied as they are, never re-encrypted. Plain objects are counted, not encrypted (that
// would rewrite them; new objects are written encrypted). Exit 1 when an object could not be
// moved (its key is not held, or storage failed), or when no current key is configured.
#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/client_output.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

constexpr const char* k_rekeyed_prefixes[] = {"wal", "backup"};

std::string rekey_text(const json& m) {
  if (!m["error"].is_null()) return "FAILED  " + m["error"].get<std::string>() + "\n";
  std::string text;
  for (const auto& r : m["repositories"]) {
    const std::string where = r["repository"].get<std::string>();
    text += (r["ok"].get<bool>() ? "ok      " : "FAILED  ") + where + ": " + r["moved"].dump() + " of " + r["objects"].dump() +
            " object(s) moved to key id " + m["key_id"].get<std::string>() + ", " + r["current"].dump() + " already under it, " +
            r["plain"].dump() + " unencrypted\n";
    if (!r["error"].is_null()) text += "  not listed: " + r["error"].get<std::string>() + "\n";
    for (const auto& f : r["failed"]) text += "  not moved: " + f.get<std::string>() + "\n";
  }
  if (m["ok"].get<bool>()) text += "every encrypted object is under key id " + m["key_id"].get<std::string>() +
                                   ": the old key files may be removed from encryption-old-key-files\n";
  return text;
}

// A failed index write leaves a stale count in status and check, never a wrong object: logged.
void record_key_id(Index& index, const std::string& key, std::uint32_t key_id) {
  if (auto r = index.set_key_id(base_name(key), key_id); !r)
    spdlog::warn("rekey: unable to record key id {} for '{}' in the index: {}", key_id_text(key_id), key, r.error().message);
}

}  // namespace

AdminOutput rekey_verb(const VerbSources& sources, int progress_fd) {
  ObjectStore& objects = sources.repository.objects();
  const Keyring* keys = objects.keys();
  json model{{"ok", false}, {"key_id", nullptr}, {"error", nullptr}, {"repositories", json::array()}};
  if (!keys || !keys->current()) {
    model["error"] = "no encryption-key-file is configured: rekey moves objects to the current key";
    return from_model(std::move(model), rekey_text, 1, "no current key");
  }
  model["key_id"] = key_id_text(keys->current()->id());
  bool ok = true;
  std::uint64_t done = 0;
  for (std::size_t i = 0; i < objects.member_count(); ++i) {
    ObjectStore& member = objects.member(i);
    json r{{"repository", member.describe()}, {"ok", true}, {"objects", 0}, {"moved", 0}, {"current", 0}, {"plain", 0},
           {"failed", json::array()}, {"error", nullptr}};
    std::uint64_t count = 0, moved = 0, current = 0, plain = 0;
    for (const char* prefix : k_rekeyed_prefixes) {
      auto listed = member.list_keys(prefix);
      if (!listed) {
        r["error"] = listed.error().message;
        r["ok"] = false;
        break;
      }
      for (const auto& key : *listed) {
        auto outcome = member.rekey(key);
        if (!outcome) {
          if (outcome.error().kind == ErrorKind::not_found) continue;  // pruned since the listing
          r["failed"].push_back(key + ": " + outcome.error().message);
          r["ok"] = false;
        } else {
          if (*outcome == ObjectStore::Rekeyed::moved) ++moved;
          else if (*outcome == ObjectStore::Rekeyed::current) ++current;
          else ++plain;
          // The index's key ids (status, check) describe the first repository's copies.
          if (i == 0 && key.starts_with("wal/"))
            record_key_id(sources.index, key, *outcome == ObjectStore::Rekeyed::plain ? 0 : keys->current()->id());
        }
        ++count;
        if (++done % 64 == 0) write_progress(progress_fd, "\rrekey " + member.describe() + ": " + std::to_string(done) + " object(s)");
      }
    }
    r["objects"] = count;
    r["moved"] = moved;
    r["current"] = current;
    r["plain"] = plain;
    ok = ok && r["ok"].get<bool>();
    model["repositories"].push_back(std::move(r));
  }
  write_progress(progress_fd, "\n");
  model["ok"] = ok;
  return from_model(std::move(model), rekey_text, ok ? 0 : 1, ok ? "" : "objects not moved to the current key");
}

}  // namespace walvault
