#pragma once
namespace walvault {
// archive-push PATH: 0 = stored durably; 1 = anything else (never above 125, which would make
// PostgreSQL restart its archiver).
int run_archive_push(int argc, const char* const* argv);
}  // namespace walvault
