#include "archiver/push_client.hpp"

int main(int argc, char** argv) { return walvault::run_archive_push(argc, argv); }
