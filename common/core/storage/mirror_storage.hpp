#pragma once
// Several repositories as one key space (`repo` given more than once): a write is done in
// every member or it failed; a read asks the members in order and answers "absent" only when
// every member answered absent (an error on one plus absent on another is an error, never
// "not there": pgBackRest's issue #2402). Members keep their own retry wrappers, so a
// transient failure of one is retried there, not by repeating the write on all of them.
//
// A member can be closed for writes (its identity is missing: new, deleted, or a filesystem
// that is not mounted): every write then fails naming it, until `walvault sync` has copied the
// others into it and opened it again. Reads still ask it (an empty member answers absent).
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/core/storage/storage.hpp"

namespace walvault {

class MirrorStorage final : public Storage {
 public:
  explicit MirrorStorage(std::vector<std::unique_ptr<Storage>> members);

  std::size_t member_count() const { return m_members.size(); }
  Storage& member(std::size_t i) { return *m_members.at(i); }
  // nullopt: open for writes; otherwise why not (the text of every refused write).
  std::optional<std::string> write_block(std::size_t i) const;
  void set_write_block(std::size_t i, std::optional<std::string> reason);
  // ErrorKind::refused with the first closed member's reason; every write checks it.
  Result<void> writable() const;

  std::string describe() const override;
  // create_only: asks every member first; when any holds the key, nothing is written and the
  // answer is a conflict (the caller compares content per member), so two members never end
  // up with different content under one name. create_after_lookup: the caller has just found
  // the key absent in every member (the ingest asks each), so no member is asked again.
  Result<void> put(const std::string& key, std::span<const std::byte> data, PutMode mode) override;
  Result<std::optional<std::vector<std::byte>>> get(const std::string& key, std::optional<std::size_t> max_bytes) override;
  Result<bool> exists(const std::string& key) override;
  Result<std::unique_ptr<ObjectWriter>> create(const std::string& key, PutMode mode) override;
  Result<std::optional<std::unique_ptr<ObjectReader>>> open_read(const std::string& key) override;
  Result<void> remove(const std::string& key) override;
  Result<std::optional<ObjectInfo>> info(const std::string& key) override;
  // The union of the members' objects (the first member's size and time for a key they share);
  // an error on any member is an error.
  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix) override;
  // The fullest member's space (what a disk-usage threshold must watch).
  Result<std::optional<Space>> space() override;
  // Durable in every member; a member that lacks it is an error (the backend's). Filling one is
  // the ingest's (per repository, content compared) and `walvault sync`'s, never done here.
  Result<void> sync(const std::string& key) override;
  Result<std::vector<std::string>> list_children(const std::string& prefix) override;
  Result<Removed> remove_all(const std::string& prefix) override;
  Result<Removed> remove_abandoned_writes() override;

 private:
  // The first answer that is not "absent", in member order; errors only when no member had it.
  template <typename T, typename Call>
  Result<std::optional<T>> first_present(Call call);

  std::vector<std::unique_ptr<Storage>> m_members;
  mutable std::mutex m_mutex;
  std::vector<std::optional<std::string>> m_blocks;
};

// Copies one object's stored bytes from `from` to `to` (create-only: never overwrites),
// streamed in pieces. ErrorKind::not_found when `from` no longer has it.
Result<std::uint64_t> copy_object(Storage& from, Storage& to, const std::string& key);

}  // namespace walvault
