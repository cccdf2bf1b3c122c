#include "daemon/controller.hpp"

int main(int argc, char** argv) { return walvault::run_walvaultd(argc, argv); }
