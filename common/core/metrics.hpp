#pragma once
// Prometheus metrics: the few instrument kinds walvaultd needs and the text exposition format
// (version 0.0.4) they render to. Instruments are updated on the push/get workers and read by
// a scrape: each keeps its own small lock, so a scrape sees every instrument whole (a
// histogram's count always equals its +Inf bucket) and never holds up more than one update.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace walvault::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Label values may hold anything (a repository URL, a segment name): backslash, double quote
// and newline are escaped as the format requires.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and newline escaped.
std::string escape_help(std::string_view text);
// A sample value: integers without a fraction, NaN, +Inf and -Inf spelled as Prometheus does.
std::string format_value(double value);

// Builds one exposition document: a family's HELP and TYPE lines, then its samples.
class ExpositionWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  const std::string& text() const { return m_text; }

 private:
  std::string m_text;
};

struct HistogramSnapshot {
  std::vector<double> bounds;          // upper bounds, ascending, without +Inf
  std::vector<std::uint64_t> buckets;  // cumulative counts, one per bound
  std::uint64_t count = 0;             // the +Inf bucket
  double sum = 0;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  HistogramSnapshot snapshot() const;

 private:
  mutable std::mutex m_mutex;
  std::vector<double> m_bounds;
  std::vector<std::uint64_t> m_counts;  // not cumulative; the last one is above every bound
  double m_sum = 0;
};

// Seconds from 1 ms to 2 min: a 16 MiB segment takes tens of milliseconds to push locally and
// can take tens of seconds against a slow object store.
std::vector<double> request_duration_bounds();

// Writes `name`'s _bucket, _sum and _count samples (the family line is the caller's).
void write_histogram(ExpositionWriter& out, std::string_view name, const Labels& labels, const HistogramSnapshot& h);

// A counter per label value (the `result` of a push): values appear as they are first counted.
class LabeledCounter {
 public:
  // `initial`: values shown as 0 before their first count, so rate() and alerts see them.
  explicit LabeledCounter(std::vector<std::string> initial = {});
  void add(const std::string& value, std::uint64_t n = 1);
  std::map<std::string, std::uint64_t> snapshot() const;

 private:
  mutable std::mutex m_mutex;
  std::map<std::string, std::uint64_t> m_counts;
};

}  // namespace walvault::metrics
