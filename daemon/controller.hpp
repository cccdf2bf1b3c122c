#pragma once
// walvaultd's fixed start-up order: args -> --check-config -> logging -> config -> repository ->
// lock + socket -> signals (HUP reloads, TERM/INT drain) -> run.
namespace walvault {

// Returns the process exit code: 0 after a clean drain, 1 on a runtime failure, 2 on a usage
// or configuration error.
int run_walvaultd(int argc, const char* const* argv);

}  // namespace walvault
