#include "common/core/document.hpp"

#include <cstdio>
#include <iterator>

#include "common/core/client_output.hpp"

namespace walvault {

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(k_units)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", value, k_units[unit]);
  return buf;
}

AdminOutput failed_output(const Failure& failure) {
  AdminOutput out;
  out.exit_code = 1;
  out.reason = failure.message;
  if (failure.kind == ErrorKind::invalid) out.error = failure;
  out.json = nlohmann::ordered_json{{"error", failure.message}};
  out.text = failure.message + "\n";
  return out;
}

protocol::Message serve_document(Request& request, const std::function<AdminOutput()>& verb) {
  if (!request.fd) return protocol::error({ErrorKind::invalid, "no output descriptor was passed with the request"});
  AdminOutput output = verb();
  if (output.error) {
    request.fd.reset();
    request.progress_fd.reset();
    return protocol::error(*output.error);
  }
  const bool as_json = request.message.field("format") == std::optional<std::string_view>("json");
  protocol::Message response = protocol::ok();
  response.set("exit", std::to_string(output.exit_code));
  if (output.exit_code != 0 && !output.reason.empty()) response.set("message", output.reason);
  return respond_with_document(request, as_json ? output.json.dump(2) + "\n" : output.text, std::move(response));
}

}  // namespace walvault
