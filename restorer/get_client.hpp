#pragma once
namespace walvault {
// archive-get NAME PATH: 0 = PATH written, complete and verified; 1 = not in the archive (or
// any failure in standby mode); 126 = any other failure during archive recovery, so
// PostgreSQL stops instead of promoting early on missing WAL.
int run_archive_get(int argc, const char* const* argv);
}  // namespace walvault
