#include "common/base/protocol.hpp"

namespace walvault::protocol {

namespace {

std::string sanitize(std::string_view value) {
  std::string out(value);
  for (char& c : out)
    if (c == '\n' || c == '\0' || c == '\r') c = ' ';
  return out;
}

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

}  // namespace

std::optional<std::string_view> Message::field(std::string_view key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return std::string_view(v);
  return std::nullopt;
}

Message& Message::set(std::string key, std::string value) {
  fields.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::string_view Message::head() const {
  std::string_view view(line);
  return view.substr(0, view.find(' '));
}

std::string_view Message::argument() const {
  std::string_view view(line);
  auto space = view.find(' ');
  return space == std::string_view::npos ? std::string_view{} : view.substr(space + 1);
}

std::string serialize(const Message& message) {
  std::string out = sanitize(message.line);
  for (const auto& [key, value] : message.fields) {
    std::string clean = sanitize(value);
    if (key == "message" && clean.size() > k_max_message_text) {
      clean.resize(k_max_message_text - 3);
      clean += "...";
    }
    out += '\n';
    out += key;
    out += '=';
    out += clean;
  }
  return out;
}

Result<Message> parse(std::string_view payload) {
  if (payload.find('\0') != std::string_view::npos)
    return fail(ErrorKind::invalid, "protocol error: NUL byte in message");
  Message message;
  auto newline = payload.find('\n');
  message.line = std::string(payload.substr(0, newline));
  if (message.line.empty()) return fail(ErrorKind::invalid, "protocol error: empty first line");
  while (newline != std::string_view::npos) {
    payload.remove_prefix(newline + 1);
    newline = payload.find('\n');
    std::string_view field = payload.substr(0, newline);
    if (field.empty()) continue;
    auto eq = field.find('=');
    if (eq == std::string_view::npos || !valid_key(field.substr(0, eq)))
      return fail(ErrorKind::invalid, "protocol error: malformed field '" + sanitize(field.substr(0, 64)) + "'");
    message.fields.emplace_back(std::string(field.substr(0, eq)), std::string(field.substr(eq + 1)));
  }
  return message;
}

Result<std::string> encode_frame(const Message& message) {
  std::string payload = serialize(message);
  if (payload.empty() || payload.size() > k_max_frame_payload)
    return fail(ErrorKind::invalid, "protocol error: frame of " + std::to_string(payload.size()) +
                                        " bytes (allowed 1.." + std::to_string(k_max_frame_payload) + ")");
  std::string frame(4, '\0');
  const auto size = static_cast<std::uint32_t>(payload.size());
  frame[0] = static_cast<char>(size >> 24);
  frame[1] = static_cast<char>(size >> 16);
  frame[2] = static_cast<char>(size >> 8);
  frame[3] = static_cast<char>(size);
  return frame + payload;
}

Result<void> FrameDecoder::feed(std::string_view bytes) {
  m_buffer.append(bytes);
  if (m_buffer.size() >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(m_buffer.data());
    const std::uint32_t size = std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
    if (size == 0 || size > k_max_frame_payload)
      return fail(ErrorKind::invalid, "protocol error: frame length " + std::to_string(size) + " (allowed 1.." +
                                          std::to_string(k_max_frame_payload) + ")");
    // A peer that sends more than one frame plus a second header is misbehaving; bound it.
    if (m_buffer.size() > 2 * (k_max_frame_payload + 4))
      return fail(ErrorKind::invalid, "protocol error: too much unread data");
  }
  return {};
}

std::optional<std::string> FrameDecoder::next() {
  if (m_buffer.size() < 4) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(m_buffer.data());
  const std::uint32_t size = std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
  if (size == 0 || size > k_max_frame_payload || m_buffer.size() < 4 + size) return std::nullopt;
  std::string payload = m_buffer.substr(4, size);
  m_buffer.erase(0, 4 + size);
  return payload;
}

Message ok() { return Message{"OK", {}}; }

Message not_found(std::string text) {
  Message m{"NOTFOUND", {}};
  m.set("message", std::move(text));
  return m;
}

Message error(const Failure& failure) {
  Message m{"ERR " + std::string(to_string(failure.kind)), {}};
  m.set("message", failure.message);
  return m;
}

Message busy(std::string text) {
  Message m{"BUSY", {}};
  m.set("message", std::move(text));
  return m;
}

}  // namespace walvault::protocol
