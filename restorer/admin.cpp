#include "restorer/admin.hpp"

#include <mutex>

namespace walvault {

Admin::Admin(Repository& repository, Index& index, Indexer& indexer, std::function<nlohmann::ordered_json()> daemon_state,
             LiveSetting<CheckThresholds> thresholds)
    : m_repository(repository), m_index(index), m_indexer(indexer), m_daemon_state(std::move(daemon_state)),
      m_thresholds(std::move(thresholds)) {}

void Admin::register_handlers(HandlerRegistry& registry) {
  // Admin documents go to a client that may read slowly or not at all: their own lane, so
  // they can never hold up PUSH and GET (and the write gives up after an idle limit).
  registry.register_handler("STATUS", [this](Request& r) { return serve(r, [&] { return status(); }); }, Lane::admin);
  registry.register_handler("LIST", [this](Request& r) { return serve(r, [&] { return list(r.message); }); }, Lane::admin);
  registry.register_handler("TIMELINES", [this](Request& r) { return serve(r, [&] { return timelines(); }); }, Lane::admin);
  registry.register_handler("CHECK", [this](Request& r) { return serve(r, [&] { return check(r.message); }); }, Lane::admin);
  // VERIFY and REINDEX read the whole repository: never on the push workers.
  registry.register_handler("VERIFY", [this](Request& r) { return serve(r, [&] { return verify(r.progress_fd.get()); }); },
                            Lane::long_running);
  registry.register_handler("PLAN", [this](Request& r) { return serve(r, [&] { return plan(r.message); }); }, Lane::admin);
  registry.register_handler("REINDEX", [this](Request& r) { return serve(r, [&] { return reindex(); }); }, Lane::long_running);
  // SYNC copies whole repositories: the long-running lane, one at a time with backups.
  registry.register_handler("SYNC", [this](Request& r) { return serve(r, [&] { return sync(r.progress_fd.get()); }); },
                            Lane::long_running);
  // REKEY rewrites every encrypted object's head: the long-running lane too.
  registry.register_handler("REKEY", [this](Request& r) { return serve(r, [&] { return rekey(r.progress_fd.get()); }); },
                            Lane::long_running);
}

void Admin::set_retention_probe(std::function<RetentionView()> probe) {
  std::lock_guard lock(m_mutex);
  m_retention_probe = std::move(probe);
}

std::optional<RetentionView> Admin::retention_view() {
  std::function<RetentionView()> probe;
  {
    std::lock_guard lock(m_mutex);
    probe = m_retention_probe;
  }
  if (!probe) return std::nullopt;
  return probe();
}

protocol::Message Admin::serve(Request& request, const std::function<AdminOutput()>& verb) { return serve_document(request, verb); }

AdminOutput Admin::status() {
  return status_verb(sources(), m_thresholds(), m_daemon_state ? m_daemon_state() : nlohmann::ordered_json::object());
}
AdminOutput Admin::list(const protocol::Message& request) { return list_verb(sources(), request); }
AdminOutput Admin::timelines() { return timelines_verb(sources()); }
AdminOutput Admin::check(const protocol::Message& request) { return check_verb(sources(), request, m_thresholds(), retention_view()); }
AdminOutput Admin::verify(int progress_fd) {
  return verify_verb(sources(), progress_fd, retention_view().value_or(RetentionView{}));
}
AdminOutput Admin::plan(const protocol::Message& request) { return plan_verb(sources(), request); }
AdminOutput Admin::reindex() { return reindex_verb(m_indexer); }
AdminOutput Admin::sync(int progress_fd) { return sync_verb(sources(), progress_fd); }
AdminOutput Admin::rekey(int progress_fd) { return rekey_verb(sources(), progress_fd); }

}  // namespace walvault
