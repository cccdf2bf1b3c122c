#pragma once
// A request as the daemon's handlers see it, and the registry they register in by verb, so
// walvaultd is composition (archiver registers PUSH, restorer registers GET), not a switch.
#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/base/fd.hpp"
#include "common/base/protocol.hpp"

namespace walvault {

struct Request {
  protocol::Message message;
  UniqueFd fd;           // the first descriptor passed with the request, if any
  UniqueFd progress_fd;  // a second one: where long admin verbs report progress (a terminal)
  UniqueFd reply_fd;     // set by a handler: passed back with the response (GET's handoff)
  uid_t peer_uid = 0;
  pid_t peer_pid = 0;
};

// Runs on a worker thread; returns the response.
using Handler = std::function<protocol::Message(Request&)>;

// Where a handler runs: short work on the fixed worker pool; work that lasts as long as a base
// backup or a restore stream on a lane of its own, so it can never hold up PUSH and GET (a
// backup waits for the WAL it needs to be pushed: on a shared pool that could deadlock).
// Admin documents (status, list, check, ...) on a small lane of their own: their client may
// read slowly, and a verb like status must not wait behind a running backup either.
enum class Lane { worker, admin, long_running };

struct RegisteredHandler {
  Handler handler;
  Lane lane = Lane::worker;
};

class HandlerRegistry {
 public:
  void register_handler(std::string verb, Handler handler, Lane lane = Lane::worker) {
    m_handlers[std::move(verb)] = RegisteredHandler{std::move(handler), lane};
  }
  const RegisteredHandler* find(std::string_view verb) const {
    auto it = m_handlers.find(verb);
    return it == m_handlers.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, RegisteredHandler, std::less<>> m_handlers;
};

}  // namespace walvault
