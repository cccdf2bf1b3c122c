#pragma once
// One mutex per name in use, so concurrent pushes of the same name are serialised (the second
// sees the first's object and answers duplicate/conflict) while different names run in parallel.
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>

namespace walvault {

class NameLocks {
 public:
  class Guard {
   public:
    Guard(NameLocks& locks, std::string name) : m_locks(locks), m_name(std::move(name)) {
      std::unique_lock lock(m_locks.m_mutex);
      m_locks.m_released.wait(lock, [&] { return !m_locks.m_held.contains(m_name); });
      m_locks.m_held.insert(m_name);
    }
    ~Guard() {
      {
        std::lock_guard lock(m_locks.m_mutex);
        m_locks.m_held.erase(m_name);
      }
      m_locks.m_released.notify_all();
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    NameLocks& m_locks;
    std::string m_name;
  };

 private:
  std::mutex m_mutex;
  std::condition_variable m_released;
  std::set<std::string> m_held;
};

}  // namespace walvault
