// Fuzz target: what a base backup leaves as text: the .backup history file PostgreSQL archives,
// backup_label, and walvault's backup.json (the backup's own record in the repository).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/core/backup_file.hpp"
#include "common/core/backup_label.hpp"
#include "common/core/base_backup.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)walvault::parse_backup_history(text, "000000010000000000000002.00000028.backup");
  (void)walvault::parse_backup_label(text);
  (void)walvault::parse_backup_info(text, "backup.json");
  return 0;
}
