#include "restorer/get_client.hpp"

int main(int argc, char** argv) { return walvault::run_archive_get(argc, argv); }
