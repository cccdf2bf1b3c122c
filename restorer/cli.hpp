#pragma once
namespace walvault {
// walvault VERB [OPTIONS] [--json]: 0 done / all checks hold; 1 a check failed or the target is
// unreachable (reason on stderr or in the document); 2 usage or connection error.
int run_walvault_cli(int argc, const char* const* argv);
}  // namespace walvault
