#include "archiver/handlers.hpp"

#include "archiver/backup_verb.hpp"
#include "common/core/document.hpp"
#include "common/core/time_format.hpp"

namespace walvault {

void register_handlers(HandlerRegistry& registry, ArchiverServices services) {
  registry.register_handler("PUSH", [services](Request& r) {
    const bool backup_file = r.message.argument().ends_with(".backup");
    protocol::Message response = services.ingest.handle(r);
    if (backup_file && response.head() == "OK" && services.after_backup_file) services.after_backup_file();
    return response;
  });
  registry.register_handler("BACKUP", [services](Request& r) { return serve_backup_request(services.backups, r); },
                            Lane::long_running);
  registry.register_handler(
      "PRUNE",
      [services](Request& r) {
        return serve_document(r, [&] { return render_prune(services.pruner.run(r.message.field("dry-run").has_value(), now_unix_us())); });
      },
      Lane::admin);
}

}  // namespace walvault
