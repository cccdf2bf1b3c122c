#include "common/core/repository_sync.hpp"

#include <map>

#include "common/base/fd.hpp"

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

std::vector<MemberSync> sync_members(Repository& repository, const std::function<void(const std::string&)>& progress) {
  ObjectStore& objects = repository.objects();
  const auto listings = list_members(objects);
  std::vector<MemberSync> results(listings.size());
  for (std::size_t i = 0; i < listings.size(); ++i) results[i].repository = objects.member(i).describe();
  if (objects.member_count() < 2) return results;
  MirrorStorage& mirror = *objects.mirror();
  auto identity = repository.read_identity();
  // Each key's first holder in configuration order: the copy's source.
  std::map<std::string, std::size_t> holders;
  for (std::size_t i = 0; i < listings.size(); ++i)
    if (!listings[i].error)
      for (const auto& [key, size] : listings[i].sizes) holders.try_emplace(key, i);
  for (std::size_t target = 0; target < listings.size(); ++target) {
    MemberSync& result = results[target];
    if (listings[target].error) {
      result.error = *listings[target].error;
      continue;
    }
    std::size_t done = 0;
    for (const auto& [key, holder] : holders) {
      const std::uint64_t size = listings[holder].sizes.at(key);
      auto held = listings[target].sizes.find(key);
      if (held != listings[target].sizes.end()) {
        if (held->second != size) result.differing.push_back(key);
        continue;
      }
      auto copied = copy_object(mirror.member(holder), mirror.member(target), key);
      if (!copied) {
        // Pruned between the listing and the copy: nothing to fill.
        if (copied.error().kind != ErrorKind::not_found) result.failed.push_back(key + ": " + copied.error().message);
        continue;
      }
      if (auto proof = prove(objects.member(target), key); !proof) {
        (void)objects.member(target).remove(key);
        result.failed.push_back(key + ": the copy is not sound (" + proof.error().message + "), removed again");
        continue;
      }
      ++result.copied;
      result.copied_bytes += *copied;
      if (++done % 64 == 0) progress("sync " + result.repository + ": " + std::to_string(done) + " object(s) copied");
    }
    if (!block_of(objects, target)) continue;
    if (!result.failed.empty() || !identity || !*identity) continue;
    // Last, so a sync cut short leaves the repository closed: its identity says "complete".
    auto written = mirror.member(target).put(std::string(k_identity_key), as_bytes(**identity), PutMode::create_only);
    if (!written && written.error().kind != ErrorKind::conflict) {
      result.error = written.error().message;
      continue;
    }
    mirror.set_write_block(target, std::nullopt);
    result.identity_written = true;
  }
  return results;
}

}  // namespace walvault
