#include "common/core/repository_sync.hpp"

#include <algorithm>
#include <map>

#include "common/base/fd.hpp"

#include "common/core/index.hpp"
#include "common/core/object_store.hpp"

namespace walvault {

namespace {

// The prefixes that hold objects (docs/repository-format.md); the identity is the
// Repository's own, and a spool kept in a posix repository's directory is not an object.
constexpr const char* k_object_prefixes[] = {"wal", "backup"};

struct Listing {
  std::optional<std::string> error;
  std::map<std::string, std::uint64_t> sizes;  // key -> stored size
};

std::vector<Listing> list_members(ObjectStore& objects) {
  std::vector<Listing> listings(objects.member_count());
  for (std::size_t i = 0; i < listings.size(); ++i) {
    for (const char* prefix : k_object_prefixes) {
      auto listed = objects.member(i).list(prefix);
      if (!listed) {
        listings[i].error = listed.error().message;
        break;
      }
      for (const auto& object : *listed) listings[i].sizes.emplace(object.key, object.size);
    }
  }
  return listings;
}

// Proves a copied object where it now lives: head, body and digest, read to the end.
Result<void> prove(ObjectStore& objects, const std::string& key) {
  auto stream = objects.open_listed(key);
  if (!stream) return std::unexpected(stream.error());
  std::vector<std::byte> buffer(1 << 20);
  for (;;) {
    auto n = stream->read(buffer);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) return {};
  }
}

std::optional<std::string> block_of(ObjectStore& objects, std::size_t i) {
  return objects.mirror() ? objects.mirror()->write_block(i) : std::nullopt;
}

}  // namespace

MemberComparison compare_members(Repository& repository) {
  ObjectStore& objects = repository.objects();
  const auto listings = list_members(objects);
  // First holder of each key, and its size.
  std::map<std::string, std::uint64_t> all;
  for (const auto& listing : listings)
    for (const auto& [key, size] : listing.sizes) all.try_emplace(key, size);
  MemberComparison comparison;
  for (const auto& [key, size] : all) comparison.present.insert(key);
  for (std::size_t i = 0; i < listings.size(); ++i) {
    MemberState state;
    state.repository = objects.member(i).describe();
    state.write_block = block_of(objects, i);
    state.error = listings[i].error;
    if (!state.error) {
      state.objects = listings[i].sizes.size();
      for (const auto& [key, size] : all) {
        auto held = listings[i].sizes.find(key);
        if (held == listings[i].sizes.end()) state.missing.push_back(key);
        else if (held->second != size) state.differing.push_back(key);
      }
    }
    comparison.members.push_back(std::move(state));
  }
  return comparison;
}

std::vector<MemberSync> sync_members(Repository& repository, Index* index, const std::function<void(const std::string&)>& progress) {
  ObjectStore& objects = repository.objects();
  const auto listings = list_members(objects);
  std::vector<MemberSync> results(listings.size());
  for (std::size_t i = 0; i < listings.size(); ++i) results[i].repository = objects.member(i).describe();
  if (objects.member_count() < 2) return results;
  MirrorStorage& mirror = *objects.mirror();
  const bool all_listed = std::none_of(listings.begin(), listings.end(), [](const Listing& l) { return l.error.has_value(); });
  // Every key's holders in configuration order: the copy's sources, first one first.
  std::map<std::string, std::vector<std::size_t>> holders;
  for (std::size_t i = 0; i < listings.size(); ++i)
    if (!listings[i].error)
      for (const auto& [key, size] : listings[i].sizes) holders[key].push_back(i);
  // A WAL name retention pruned and a repository still holds (its removal failed there) is
  // not brought back into the others: the next prune removes it.
  auto pruned = [&](const std::string& key) {
    if (!index || !key.starts_with("wal/")) return false;
    auto was = index->was_pruned(base_name(key));
    return was && *was;
  };
  for (std::size_t target = 0; target < listings.size(); ++target) {
    MemberSync& result = results[target];
    if (listings[target].error) {
      result.error = *listings[target].error;
      continue;
    }
    std::size_t done = 0;
    for (const auto& [key, sources] : holders) {
      const std::uint64_t size = listings[sources.front()].sizes.at(key);
      auto held = listings[target].sizes.find(key);
      if (held != listings[target].sizes.end()) {
        if (held->second != size) result.differing.push_back(key);
        continue;
      }
      if (pruned(key)) continue;
      // From the first holder that gives a sound copy.
      std::optional<std::string> why;
      bool filled = false, vanished = true;
      for (std::size_t source : sources) {
        auto copied = copy_object(mirror.member(source), mirror.member(target), key);
        if (!copied) {
          if (copied.error().kind == ErrorKind::not_found) continue;  // pruned since the listing
          vanished = false;
          why = copied.error().message;
          if (copied.error().kind == ErrorKind::conflict) break;  // written meanwhile: never replaced
          continue;
        }
        vanished = false;
        if (auto proof = prove(objects.member(target), key); !proof) {
          why = "the copy from " + mirror.member(source).describe() + " is not sound (" + proof.error().message + ")";
          // Only a copy proven damaged is taken back; one that could not be read stays.
          if (proof.error().kind == ErrorKind::corrupt) (void)objects.member(target).remove(key);
          else break;
          continue;
        }
        ++result.copied;
        result.copied_bytes += *copied;
        filled = true;
        break;
      }
      if (!filled && !vanished) result.failed.push_back(key + ": " + why.value_or("not copied"));
      if (filled && ++done % 64 == 0) progress("sync " + result.repository + ": " + std::to_string(done) + " object(s) copied");
    }
    auto block = block_of(objects, target);
    if (!block) continue;
    // Opened again only when it is proven complete: every repository listed, nothing failed
    // or different, and the identity the others have (written last, so a sync cut short
    // leaves it closed and the next one carries on).
    if (!all_listed || !result.failed.empty() || !result.differing.empty()) {
      result.error = "left closed for writes: " + std::string(!all_listed ? "a repository could not be listed"
                                                               : "not every object is in it yet") + " (" + *block + ")";
      continue;
    }
    auto identity = repository.read_identity();
    const auto cluster = repository.system_identifier();
    if (!identity || !*identity ||
        (cluster && (*identity)->find("system-identifier=" + std::to_string(*cluster) + "\n") == std::string::npos)) {
      result.error = "left closed for writes: the other repositories' identity could not be read" +
                     (identity ? std::string() : ": " + identity.error().message);
      continue;
    }
    auto written = mirror.member(target).put(std::string(k_identity_key), as_bytes(**identity), PutMode::create_only);
    if (!written && written.error().kind != ErrorKind::conflict) {
      result.error = "left closed for writes: " + written.error().message;
      continue;
    }
    if (!written) {
      // It has an identity already (it was unreachable at start): it must name this cluster.
      auto own = mirror.member(target).get(std::string(k_identity_key));
      if (!own || !*own || (cluster && std::string(as_text(**own)).find("system-identifier=" + std::to_string(*cluster) + "\n") ==
                                           std::string::npos)) {
        result.error = "left closed for writes: its walvault.repo does not name cluster " +
                       (cluster ? std::to_string(*cluster) : std::string("(none)"));
        continue;
      }
    }
    mirror.set_write_block(target, std::nullopt);
    result.identity_written = static_cast<bool>(written);
  }
  return results;
}

}  // namespace walvault
