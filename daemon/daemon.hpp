#pragma once
// walvaultd as an object: one repository, index and socket, the archiver's and restorer's
// handlers, the timers, and a life cycle a test can drive without signals: run() serves until
// stop(); reload() is what SIGHUP does, stop() what SIGTERM does (a drain bounded by
// shutdown-timeout). The configuration is one immutable snapshot, swapped whole on reload.
#include <future>
#include <memory>

#include "common/core/config.hpp"
#include "common/core/index.hpp"
#include "common/core/repository.hpp"

namespace walvault {

class Daemon {
 public:
  Daemon(DaemonCommandLine command_line, DaemonConfig config, std::unique_ptr<Repository> repository,
         std::unique_ptr<Index> index, GetEnv getenv);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Takes the socket lock, binds, checks, repairs the index, then serves until stopped.
  // 0 after a clean drain; 1 when start-up failed or shutdown-timeout cut the drain short.
  int run();
  // Before run(): SIGHUP reloads, SIGTERM and SIGINT stop (walvaultd; tests call reload/stop).
  void handle_signals();
  // What SIGHUP does, from any thread; it runs on the daemon's loop once run() serves. The
  // outcome: an error when the new configuration was refused (the running one stays).
  std::future<Result<void>> reload();
  // From any thread: stop accepting, let open connections finish within shutdown-timeout.
  // Also SIGTERM and SIGINT.
  void stop();
  // The drain ran out of time: worker threads may still be inside a request, and destroying
  // the daemon waits for them (walvaultd exits at once instead; nothing acknowledged is lost).
  bool stopped_by_deadline() const;
  // The configuration the daemon runs with now (restart-only options as at start-up).
  std::shared_ptr<const DaemonConfig> config() const;

 private:
  class Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace walvault
