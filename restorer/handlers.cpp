#include "restorer/handlers.hpp"

namespace walvault {

void register_handlers(HandlerRegistry& registry, RestorerServices services) {
  registry.register_handler("GET", [services](Request& r) {
    return services.prefetch ? services.prefetch->handle(r) : services.fetch.handle(r);
  });
  services.backup_reads.register_handlers(registry);
  services.admin.register_handlers(registry);
}

}  // namespace walvault
