#include "restorer/cli.hpp"

int main(int argc, char** argv) { return walvault::run_walvault_cli(argc, argv); }
