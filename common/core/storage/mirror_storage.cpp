#include "common/core/storage/mirror_storage.hpp"

#include <algorithm>
#include <map>

namespace walvault {

namespace {

constexpr std::size_t k_copy_piece = 4u << 20;

class MirrorWriter final : public ObjectWriter {
 public:
  explicit MirrorWriter(std::vector<std::unique_ptr<ObjectWriter>> writers) : m_writers(std::move(writers)) {}
  Result<void> append(std::span<const std::byte> data) override {
    for (auto& writer : m_writers)
      if (auto r = writer->append(data); !r) return r;
    return {};
  }
  // In member order; a failure leaves the members before it holding the object, which is
  // what a failed put of a whole object does too: the caller's write failed and is retried.
  Result<void> commit() override {
    for (auto& writer : m_writers)
      if (auto r = writer->commit(); !r) return r;
    return {};
  }

 private:
  std::vector<std::unique_ptr<ObjectWriter>> m_writers;
};

}  // namespace

MirrorStorage::MirrorStorage(std::vector<std::unique_ptr<Storage>> members)
    : m_members(std::move(members)), m_blocks(m_members.size()) {}

std::optional<std::string> MirrorStorage::write_block(std::size_t i) const {
  std::lock_guard lock(m_mutex);
  return m_blocks.at(i);
}

void MirrorStorage::set_write_block(std::size_t i, std::optional<std::string> reason) {
  std::lock_guard lock(m_mutex);
  m_blocks.at(i) = std::move(reason);
}

std::string MirrorStorage::describe() const {
  std::string text;
  for (const auto& member : m_members) text += (text.empty() ? "" : " + ") + member->describe();
  return text;
}

Result<void> MirrorStorage::writable() const {
  std::lock_guard lock(m_mutex);
  for (std::size_t i = 0; i < m_blocks.size(); ++i)
    if (m_blocks[i]) return fail(ErrorKind::refused, *m_blocks[i]);
  return {};
}

template <typename T, typename Call>
Result<std::optional<T>> MirrorStorage::first_present(Call call) {
  std::optional<Failure> first_error;
  for (auto& member : m_members) {
    Result<std::optional<T>> got = call(*member);
    if (got && *got) return got;
    if (!got && !first_error) first_error = got.error();
  }
  if (first_error) return std::unexpected(*first_error);
  return std::optional<T>();
}

Result<void> MirrorStorage::put(const std::string& key, std::span<const std::byte> data, PutMode mode) {
  if (auto r = writable(); !r) return r;
  if (mode == PutMode::create_only) {
    auto held = exists(key);
    if (!held) return std::unexpected(held.error());
    if (*held) return fail(ErrorKind::conflict, "object '" + key + "' already exists in " + describe());
  }
  // Every member was just found without the key (or is replaced whole): a backend that would
  // ask again first need not.
  const PutMode member_mode = creates_only(mode) ? PutMode::create_after_lookup : mode;
  for (auto& member : m_members)
    if (auto r = member->put(key, data, member_mode); !r) return r;
  return {};
}

Result<std::optional<std::vector<std::byte>>> MirrorStorage::get(const std::string& key, std::optional<std::size_t> max_bytes) {
  return first_present<std::vector<std::byte>>([&](Storage& s) { return s.get(key, max_bytes); });
}

Result<bool> MirrorStorage::exists(const std::string& key) {
  std::optional<Failure> first_error;
  for (auto& member : m_members) {
    auto held = member->exists(key);
    if (held && *held) return true;
    if (!held && !first_error) first_error = held.error();
  }
  if (first_error) return std::unexpected(*first_error);
  return false;
}

Result<std::unique_ptr<ObjectWriter>> MirrorStorage::create(const std::string& key, PutMode mode) {
  if (auto r = writable(); !r) return std::unexpected(r.error());
  if (mode == PutMode::create_only) {
    auto held = exists(key);
    if (!held) return std::unexpected(held.error());
    if (*held) return fail(ErrorKind::conflict, "object '" + key + "' already exists in " + describe());
  }
  const PutMode member_mode = creates_only(mode) ? PutMode::create_after_lookup : mode;
  std::vector<std::unique_ptr<ObjectWriter>> writers;
  for (auto& member : m_members) {
    auto writer = member->create(key, member_mode);
    if (!writer) return std::unexpected(writer.error());
    writers.push_back(std::move(*writer));
  }
  return std::unique_ptr<ObjectWriter>(std::make_unique<MirrorWriter>(std::move(writers)));
}

Result<std::optional<std::unique_ptr<ObjectReader>>> MirrorStorage::open_read(const std::string& key) {
  return first_present<std::unique_ptr<ObjectReader>>([&](Storage& s) { return s.open_read(key); });
}

Result<void> MirrorStorage::remove(const std::string& key) {
  // Every member is asked even after a failure, so one member that is down does not keep the
  // others from pruning; the failure is still the answer (the caller tries again later).
  std::optional<Failure> first_error;
  for (auto& member : m_members)
    if (auto r = member->remove(key); !r && !first_error) first_error = r.error();
  if (first_error) return std::unexpected(*first_error);
  return {};
}

Result<std::optional<ObjectInfo>> MirrorStorage::info(const std::string& key) {
  return first_present<ObjectInfo>([&](Storage& s) { return s.info(key); });
}

Result<std::vector<ObjectInfo>> MirrorStorage::list_objects(const std::string& prefix) {
  std::map<std::string, ObjectInfo> all;
  for (auto& member : m_members) {
    auto listed = member->list_objects(prefix);
    if (!listed) return std::unexpected(listed.error());
    for (auto& object : *listed) all.try_emplace(object.key, std::move(object));
  }
  std::vector<ObjectInfo> objects;
  objects.reserve(all.size());
  for (auto& [key, object] : all) objects.push_back(std::move(object));
  return objects;
}

Result<std::optional<Storage::Space>> MirrorStorage::space() {
  std::optional<Space> fullest;
  for (auto& member : m_members) {
    auto space = member->space();
    if (!space) return std::unexpected(space.error());
    if (!*space || !(*space)->total) continue;
    if (!fullest || (*space)->used() > fullest->used()) fullest = **space;
  }
  return fullest;
}

Result<void> MirrorStorage::sync(const std::string& key) {
  for (auto& member : m_members)
    if (auto r = member->sync(key); !r) return r;
  return {};
}

Result<std::vector<std::string>> MirrorStorage::list_children(const std::string& prefix) {
  std::vector<std::string> children;
  for (auto& member : m_members) {
    auto listed = member->list_children(prefix);
    if (!listed) return std::unexpected(listed.error());
    children.insert(children.end(), listed->begin(), listed->end());
  }
  std::sort(children.begin(), children.end());
  children.erase(std::unique(children.begin(), children.end()), children.end());
  return children;
}

Result<Storage::Removed> MirrorStorage::remove_all(const std::string& prefix) {
  // Counted once, by the largest member's share (the same objects are in each).
  Removed most;
  std::optional<Failure> first_error;
  for (auto& member : m_members) {
    auto removed = member->remove_all(prefix);
    if (!removed) {
      if (!first_error) first_error = removed.error();
      continue;
    }
    if (removed->objects > most.objects) most = *removed;
  }
  if (first_error) return std::unexpected(*first_error);
  return most;
}

Result<Storage::Removed> MirrorStorage::remove_abandoned_writes() {
  Removed all;
  for (auto& member : m_members) {
    auto removed = member->remove_abandoned_writes();
    if (!removed) return std::unexpected(removed.error());
    all.objects += removed->objects;
    all.bytes += removed->bytes;
  }
  return all;
}

Result<std::uint64_t> copy_object(Storage& from, Storage& to, const std::string& key) {
  auto reader = from.open_read(key);
  if (!reader) return std::unexpected(reader.error());
  if (!*reader) return fail(ErrorKind::not_found, "object '" + key + "' vanished from " + from.describe() + " before it was copied");
  auto writer = to.create(key, PutMode::create_only);
  if (!writer) return std::unexpected(writer.error());
  std::vector<std::byte> piece(std::min<std::uint64_t>(k_copy_piece, std::max<std::uint64_t>((**reader)->size(), 1)));
  std::uint64_t copied = 0;
  for (;;) {
    auto n = (**reader)->read(piece);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) break;
    if (auto r = (*writer)->append(std::span(piece).first(*n)); !r) return std::unexpected(r.error());
    copied += *n;
  }
  if (copied != (**reader)->size())
    return fail(ErrorKind::io, "object '" + key + "' in " + from.describe() + " read as " + std::to_string(copied) +
                                   " bytes, not its " + std::to_string((**reader)->size()));
  if (auto r = (*writer)->commit(); !r) return std::unexpected(r.error());
  return copied;
}

}  // namespace walvault
