#pragma once
// Daemon logging (spdlog to stderr): "text" for people and journald, "json" for collectors.
#include <string_view>

#include "common/base/error.hpp"

namespace walvault::logging {

// Safe to call again (SIGHUP): replaces the level and format of the one logger.
Result<void> configure(std::string_view level, std::string_view format);

}  // namespace walvault::logging
