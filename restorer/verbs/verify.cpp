// VERIFY: read every object back and prove it (WAL content checks, the index's digest, each
// base backup chunk against backup.json), then look for gaps where recovery needs WAL.
#include <map>
#include <set>

#include "common/core/client_output.hpp"
#include "common/core/object_store.hpp"
#include "common/core/sha256.hpp"
#include "common/core/time_format.hpp"
#include "common/core/wal_checks.hpp"
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string verify_text(const json& m) {
  std::string text;
  for (const auto& p : m["problems"])
    text += "FAILED  " + p["object"].get<std::string>() + ": " + p["problem"].get<std::string>() + "\n";
  if (!m["key_ids"].empty() && (m["key_ids"].size() > 1 || !m["key_ids"].contains("none"))) {
    text += "opened by key:";
    for (const auto& [id, n] : m["key_ids"].items()) text += " " + (id == "none" ? std::string("unencrypted") : "key id " + id) + " " + n.dump() + ",";
    text.back() = '\n';
  }
  return text + m["objects"].dump() + " object(s) and " + m["backup_chunks"].dump() + " base backup chunk(s) verified, " +
         std::to_string(m["problems"].size()) + " problem(s)\n";
}

// How many proven objects each key opened ("none": unencrypted), all repositories together:
// after `walvault rekey`, an old key id still listed here is still needed.
using KeyTally = std::map<std::string, std::uint64_t>;
void tally(KeyTally& keys, const ObjectHeader& header) { ++keys[header.cipher ? key_id_text(header.key_id) : "none"]; }

// Every chunk of every stored base backup decoded and proven against backup.json, streamed
// (a chunk can be larger than memory should hold). The number proven.
template <typename Problem>
std::size_t verify_backup_chunks(const VerbSources& sources, ObjectStore& objects, int progress_fd, const Problem& problem,
                                 KeyTally& keys) {
  std::size_t verified = 0;
  auto stored = sources.index.stored_backups();
  if (!stored) {
    problem("backup", stored.error().message);
    return 0;
  }
  std::vector<std::byte> buffer(1 << 20);
  for (const auto& backup : *stored) {
    for (const auto& chunk : backup.chunks) {
      if (progress_fd >= 0)
        write_progress(progress_fd, "\rverifying backup " + backup.id + " " + std::string(base_name(chunk.key)) + "      ");
      auto reader = objects.open_listed(chunk.key, ReadChecks::expecting(chunk.sha256));
      Result<std::size_t> n = reader ? Result<std::size_t>(1) : Result<std::size_t>(std::unexpected(reader.error()));
      std::uint64_t bytes = 0;
      while (n && *n > 0) {
        n = reader->read(buffer);
        if (n) bytes += *n;
      }
      if (!n) problem(chunk.key, n.error().message);
      else if (bytes != chunk.plain_size) problem(chunk.key, "decodes to a size other than backup.json records");
      else {
        ++verified;
        tally(keys, reader->header());
      }
    }
  }
  return verified;
}

// Every WAL object of one repository read back and proven; the names seen.
template <typename Problem>
std::set<std::string> verify_wal_objects(const VerbSources& sources, ObjectStore& objects, int progress_fd, const Problem& problem,
                                         KeyTally& keys) {
  std::set<std::string> seen;
  auto listed = objects.list("wal");
  if (!listed) {
    problem(objects.describe(), listed.error().message);
    return seen;
  }
  std::size_t done = 0;
  for (const auto& info : *listed) {
    ++done;
    if (progress_fd >= 0 && (done % 16 == 0 || done == listed->size()))
      write_progress(progress_fd, "\rverified " + std::to_string(done) + "/" + std::to_string(listed->size()) + " objects");
    const std::string file_name(base_name(info.key));
    auto name = parse_wal_name(file_name);
    if (!name || object_key(*name) != info.key) continue;
    seen.insert(file_name);
    auto read = objects.read(info.key);
    if (!read || !*read) {
      problem(info.key, read ? "listed, then gone before it could be read" : read.error().message);
      continue;
    }
    const OpenedObject* opened = &**read;
    tally(keys, opened->header);
    if (auto r = check_wal_content(sources.repository, opened->plain, *name, file_name); !r) {
      problem(info.key, r.error().message);
      continue;
    }
    auto row = sources.index.find(file_name);
    if (!row) {
      problem(info.key, row.error().message);
    } else if (!*row) {
      problem(info.key, "not in the index (run 'walvault reindex')");
    } else if ((*row)->sha256 != to_hex(opened->header.plain_sha256) || (*row)->plain_size != opened->plain.size()) {
      problem(info.key, "content differs from what the index recorded when it was archived");
    }
  }
  write_progress(progress_fd, "\n");
  return seen;
}

}  // namespace

AdminOutput verify_verb(const VerbSources& sources, int progress_fd, const RetentionView& retention) {
  json model{{"ok", true}, {"objects", 0}, {"backup_chunks", 0}, {"problems", json::array()}};
  ObjectStore& all = sources.repository.objects();
  const std::size_t count = all.member_count();
  std::string where;  // with several repositories, each problem names its repository
  auto problem = [&](const std::string& object, const std::string& text) {
    model["problems"].push_back(json{{"object", where + object}, {"problem", text}});
    model["ok"] = false;
  };
  // Each repository's own copy is proven: reads are served by the first sound copy, so damage
  // in one repository would otherwise stay hidden until it is needed.
  std::size_t objects = 0, chunks = 0;
  KeyTally keys;
  for (std::size_t i = 0; i < count; ++i) {
    ObjectStore& member = all.member(i);
    if (count > 1) where = member.describe() + ": ";
    const auto seen = verify_wal_objects(sources, member, progress_fd, problem, keys);
    objects = std::max(objects, seen.size());
    if (auto names = sources.index.names()) {
      for (const auto& n : *names)
        if (!seen.contains(n)) problem(n, "in the index but missing from the repository");
    }
    chunks = std::max(chunks, verify_backup_chunks(sources, member, progress_fd, problem, keys));
  }
  where.clear();
  model["objects"] = objects;
  model["backup_chunks"] = chunks;
  model["key_ids"] = keys;
  auto segments = sources.index.segments();
  auto rows = sources.index.timelines();
  auto backups = sources.index.backups();
  if (segments && rows && backups) {
    // Gaps where recovery needs WAL (older WAL is pruned on purpose by retention).
    std::uint64_t from_lsn = 0;
    for (const auto& name : required_gaps(*segments, *rows, *backups, retention, from_lsn))
      problem(name, "gap: segment missing where recovery needs it (from " + format_lsn(from_lsn) +
                        " on the path to the newest timeline, or inside a base backup's own WAL)");
  }
  const std::size_t problems = model["problems"].size();
  return from_model(std::move(model), verify_text, problems ? 1 : 0,
                    problems ? std::to_string(problems) + " problem(s) found by verify" : "");
}

}  // namespace walvault
