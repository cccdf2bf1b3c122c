#pragma once
// A setting a component reads each time it needs it. In walvaultd it reads the current
// configuration snapshot (daemon/daemon.cpp), so a SIGHUP swaps one pointer instead of
// updating every component behind its own mutex; a test gives a constant, or a lambda over a
// variable it changes.
#include <functional>
#include <utility>

namespace walvault {

template <typename T>
class LiveSetting {
 public:
  LiveSetting(T constant) : m_read([constant = std::move(constant)] { return constant; }) {}  // NOLINT: implicit on purpose
  explicit LiveSetting(std::function<T()> read) : m_read(std::move(read)) {}

  T operator()() const { return m_read(); }

 private:
  std::function<T()> m_read;
};

}  // namespace walvault
