#include "daemon/controller.hpp"

#include <signal.h>
#include <sys/prctl.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>

#include "common/base/fd.hpp"
#include "common/core/config.hpp"
#include "common/core/index.hpp"
#include "common/core/logging.hpp"
#include "common/core/repository.hpp"
#include "daemon/daemon.hpp"

namespace walvault {

namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_failure = 1;
constexpr int k_exit_usage = 2;

const char* real_getenv(const char* name) { return std::getenv(name); }

std::string spool_directory(const DaemonConfig& config) {
  if (!config.spool.empty()) return config.spool;
  std::string repo = config.repos.front();
  if (repo.starts_with("file://")) repo = repo.substr(7);
  return repo;
}

}  // namespace

int run_walvaultd(int argc, const char* const* argv) {
  auto command_line = parse_daemon_command_line(argc, argv);
  if (!command_line) {
    std::cerr << "walvaultd: " << command_line.error().message << "\n";
    return k_exit_usage;
  }
  if (command_line->help) {
    std::cout << daemon_help();
    return k_exit_ok;
  }
  if (command_line->version) {
    std::cout << "walvaultd " << WALVAULT_VERSION << "\n";
    return k_exit_ok;
  }
  auto config = resolve_config(*command_line, real_getenv);
  if (!config) {
    std::cerr << "walvaultd: " << config.error().message << "\n";
    return k_exit_usage;
  }
  if (auto r = logging::configure(config->log_level, config->log_format); !r) {
    std::cerr << "walvaultd: " << r.error().message << "\n";
    return k_exit_usage;
  }
  if (!config->core_dumps && ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    std::cerr << "walvaultd: " << os_error_text("prctl(PR_SET_DUMPABLE, 0) for core-dumps = off", "walvaultd", errno) << "\n";
    return k_exit_failure;
  }
  // Key files are read once, at start (restart-only options): a bad one stops walvaultd here.
  auto keyring = Keyring::load(config->encryption_key_file, config->encryption_old_key_files);
  if (!keyring) {
    std::cerr << "walvaultd: " << keyring.error().message << "\n";
    return k_exit_usage;
  }
  const auto keys = std::make_shared<const Keyring>(std::move(*keyring));
  if (command_line->check_config) {
    // A check writes nothing: a repository without identity is reported, not created (it may be
    // an unmounted filesystem; the real start decides, knowing the index).
    auto repository = Repository::open(config->repos, /*allow_create=*/false, config->storage);
    if (!repository && repository.error().kind != ErrorKind::not_found) {
      std::cerr << "walvaultd: " << repository.error().message << "\n";
      return k_exit_usage;
    }
    if (repository) {
      if (auto* mirror = (*repository)->objects().mirror())
        for (std::size_t i = 0; i < mirror->member_count(); ++i)
          if (auto why = mirror->write_block(i)) std::cerr << "walvaultd: WARNING: " << *why << "\n";
      auto proven = (*repository)->use_keys(keys, /*may_write=*/false);
      if (!proven) {
        std::cerr << "walvaultd: " << proven.error().message << "\n";
        return k_exit_usage;
      }
      for (const auto& line : *proven) std::cout << "walvaultd: " << line << "\n";
      std::cout << "walvaultd: configuration OK (repository '" << (*repository)->describe() << "'";
    } else {
      std::cout << "walvaultd: configuration OK (no repository identity yet: " << repository.error().message
                << "; walvaultd creates it at its first start unless its index lists archived objects";
    }
    std::cout << ", socket '" << config->socket << "', compress " << to_string(config->compress) << ")\n";
    return k_exit_ok;
  }
  const std::string spool = spool_directory(*config);
  if (auto r = make_directories(spool); !r) {
    std::cerr << "walvaultd: " << r.error().message << "\n";
    return k_exit_failure;
  }
  auto checked = Index::open_checked(spool + "/index.db");
  if (!checked) {
    std::cerr << "walvaultd: " << checked.error().message << "\n";
    return k_exit_failure;
  }
  // A damaged index is never read as an empty one and never stops walvaultd for good: it is
  // moved aside, loudly, and rebuilt from the repository by the start-up repair.
  const bool index_was_damaged = !checked->moved_aside.empty();
  if (index_was_damaged)
    std::cerr << "walvaultd: ERROR: " << checked->damage << "; moved it aside to '" << checked->moved_aside
              << "' and rebuilding the index from the repository\n";
  auto index = Result<std::unique_ptr<Index>>(std::move(checked->index));
  // An index that remembers objects while the repository has no identity means this is not
  // the repository it indexed (an unmounted filesystem, a wrong path): never start a new,
  // empty repository over it, whose "not there" answers would end a recovery early.
  auto known = (*index)->names();
  const std::size_t known_objects = known ? known->size() : 0;
  // After a damaged index nothing remembers what was archived: never create a repository then.
  auto repository = Repository::open(config->repos, /*allow_create=*/known_objects == 0 && !index_was_damaged, config->storage);
  if (!repository) {
    std::cerr << "walvaultd: " << repository.error().message;
    if (repository.error().kind == ErrorKind::not_found && index_was_damaged)
      std::cerr << ", and the index was damaged, so nothing proves this is meant to be a new repository: is its "
                   "filesystem mounted? (to start a new one, create it with a sound index, e.g. after removing '"
                << checked->moved_aside << "')";
    else if (repository.error().kind == ErrorKind::not_found)
      std::cerr << ", but the index '" << (*index)->path() << "' lists " << known_objects
                << " object(s) archived there: is the repository's filesystem mounted? walvaultd will not start a new, "
                   "empty repository in its place (if this really is meant to be a new repository, remove the index)";
    std::cerr << "\n";
    return k_exit_failure;
  }
  if (auto* mirror = (*repository)->objects().mirror())
    for (std::size_t i = 0; i < mirror->member_count(); ++i)
      if (auto why = mirror->write_block(i)) spdlog::error("{}", *why);
  // Before the socket exists: a key that cannot open the repository never serves a byte.
  auto proven = (*repository)->use_keys(keys, /*may_write=*/true);
  if (!proven) {
    std::cerr << "walvaultd: " << proven.error().message << "\n";
    return k_exit_failure;
  }
  for (const auto& line : *proven) spdlog::info("{}", line);
  if (!keys->empty()) spdlog::info("encryption: {}", keys->describe());
  ::signal(SIGPIPE, SIG_IGN);  // a client that vanishes must not kill the daemon
  // Heap-allocated: after a drain cut short by shutdown-timeout its worker threads may still be
  // inside a request, and destroying it would wait for them; exit without destroying it.
  auto daemon = std::make_unique<Daemon>(std::move(*command_line), std::move(*config), std::move(*repository),
                                         std::move(*index), real_getenv);
  daemon->handle_signals();
  const int rc = daemon->run();
  if (daemon->stopped_by_deadline()) {
    spdlog::shutdown();
    std::_Exit(rc);
  }
  return rc;
}

}  // namespace walvault
