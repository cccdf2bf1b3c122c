// REINDEX: rebuild the index from the repository; loud about objects that are gone.
#include "restorer/verbs/verb.hpp"
#include "restorer/verbs/verb_support.hpp"

namespace walvault {

namespace {

using namespace verbs;

std::string reindex_text(const json& m) {
  std::string text = "reindexed " + m["indexed"].dump() + " object(s) from the repository";
  if (m["unreadable"].get<std::uint64_t>())
    text += "; " + m["unreadable"].dump() + " unreadable (see walvaultd's log, run 'walvault verify')";
  text += "\n";
  const auto lost = m["lost"].get<std::uint64_t>();
  if (lost) {
    // Loud on purpose: the archive shrank behind walvault's back.
    text += "LOST: " + std::to_string(lost) +
            " object(s) the index listed as archived are gone from the repository; they stay recorded as lost "
            "(archive-get fails on them instead of answering 'not there'):\n";
    for (const auto& name : m["lost_names"]) text += "  " + name.get<std::string>() + "\n";
    if (lost > m["lost_names"].size())
      text += "  ... and " + std::to_string(lost - m["lost_names"].size()) + " more (see walvaultd's log)\n";
    text += "restore them from a copy if you have one, and take a new base backup ('walvault backup')\n";
  }
  return text;
}

}  // namespace

AdminOutput reindex_verb(Indexer& indexer) {
  auto report = indexer.rebuild();
  if (!report) return failed_output(report.error());
  json model{{"indexed", report->added},
             {"unreadable", report->unreadable},
             {"lost", report->lost_count},
             {"lost_names", report->lost_names}};
  return from_model(std::move(model), reindex_text, report->unreadable || report->lost_count ? 1 : 0);
}

}  // namespace walvault
