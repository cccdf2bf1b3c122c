#pragma once
// notify-command: walvaultd tells a program of the operator's about events (a backup finished
// or failed, archiving failing for a while and recovering, a prune that failed) by running it
// with one JSON document on its stdin. Runs happen one at a time on a thread of their own: a
// slow or hanging command never holds up a push, a get or a backup. The queue is bounded
// (events beyond it are dropped and logged) and each run is bounded by notify-timeout, after
// which the command is killed.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace walvault {

struct NotifySettings {
  std::string command;  // an absolute path; empty: off
  std::chrono::seconds timeout{30};
};

class Notifier {
 public:
  static constexpr std::size_t k_queue_limit = 64;
  // Read for every run, so a reload applies to the next event.
  explicit Notifier(std::function<NotifySettings()> settings);
  ~Notifier();  // queued events are dropped; a run in progress ends within its timeout
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues `event` (an object with at least "event": its type); adds "time" (UTC, ISO 8601) and
  // "version". Never blocks; does nothing when notify-command is empty.
  void notify(nlohmann::ordered_json event);

  // Runs a command once with `event` on stdin and waits (bounded by `timeout`): exit 0 is
  // success; otherwise the error says how it ended and what it printed (first bytes).
  static std::string run_once(const NotifySettings& settings, const std::string& document);

  std::uint64_t sent() const;
  std::uint64_t failed() const;
  std::uint64_t dropped() const;
  // Blocks until the queue is empty and no run is in progress (tests).
  void wait_idle();

 private:
  void loop();

  std::function<NotifySettings()> m_settings;
  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  std::condition_variable m_idle;
  std::deque<std::string> m_queue;
  bool m_running = false;
  bool m_stop = false;
  std::uint64_t m_sent = 0, m_failed = 0, m_dropped = 0;
  std::thread m_thread;
};

// Archiving failing for a while: fed the push counters every few seconds; says when failures
// with no success in between have lasted `after` (once per episode), and when a push succeeds
// again after that.
class ArchiveFailureWatch {
 public:
  enum class Change { none, failing, recovered };
  // `failed`/`succeeded`: push counters since start (error, refused, conflict / stored, duplicate).
  Change update(std::uint64_t failed, std::uint64_t succeeded, std::int64_t now_us, std::chrono::seconds after);
  std::int64_t failing_since_us() const { return m_first_failure_us; }

 private:
  std::uint64_t m_failed = 0, m_succeeded = 0;
  std::int64_t m_first_failure_us = 0;  // 0: not failing
  bool m_reported = false;
};

}  // namespace walvault
