#include "common/core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace walvault::metrics {

namespace {

// The format's escapes: backslash and newline always, the double quote inside label values.
std::string escaped(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view value) { return escaped(value, true); }

std::string escape_help(std::string_view text) { return escaped(text, false); }

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counts and Unix times print whole; 2^53 is where a double stops holding every integer.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
    return buffer;
  }
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

void ExpositionWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  m_text += "# HELP ";
  m_text += name;
  m_text += ' ';
  m_text += escape_help(help);
  m_text += "\n# TYPE ";
  m_text += name;
  m_text += ' ';
  m_text += type;
  m_text += '\n';
}

void ExpositionWriter::sample(std::string_view name, const Labels& labels, double value) {
  m_text += name;
  if (!labels.empty()) {
    m_text += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) m_text += ',';
      m_text += labels[i].first;
      m_text += "=\"";
      m_text += escape_label_value(labels[i].second);
      m_text += '"';
    }
    m_text += '}';
  }
  m_text += ' ';
  m_text += format_value(value);
  m_text += '\n';
}

Histogram::Histogram(std::vector<double> bounds) : m_bounds(std::move(bounds)), m_counts(m_bounds.size() + 1, 0) {
  std::sort(m_bounds.begin(), m_bounds.end());
}

void Histogram::observe(double value) {
  const auto at = static_cast<std::size_t>(std::lower_bound(m_bounds.begin(), m_bounds.end(), value) - m_bounds.begin());
  std::lock_guard lock(m_mutex);
  ++m_counts[at];
  m_sum += value;
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot out;
  out.bounds = m_bounds;
  std::lock_guard lock(m_mutex);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < m_bounds.size(); ++i) {
    running += m_counts[i];
    out.buckets.push_back(running);
  }
  out.count = running + m_counts.back();
  out.sum = m_sum;
  return out;
}

std::vector<double> request_duration_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

void write_histogram(ExpositionWriter& out, std::string_view name, const Labels& labels, const HistogramSnapshot& h) {
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof le, "%g", h.bounds[i]);  // 0.0025, 1, 120: as client libraries write them
    Labels with_le = labels;
    with_le.emplace_back("le", le);
    out.sample(bucket, with_le, static_cast<double>(h.buckets[i]));
  }
  Labels inf = labels;
  inf.emplace_back("le", "+Inf");
  out.sample(bucket, inf, static_cast<double>(h.count));
  out.sample(std::string(name) + "_sum", labels, h.sum);
  out.sample(std::string(name) + "_count", labels, static_cast<double>(h.count));
}

LabeledCounter::LabeledCounter(std::vector<std::string> initial) {
  for (auto& value : initial) m_counts.emplace(std::move(value), 0);
}

void LabeledCounter::add(const std::string& value, std::uint64_t n) {
  std::lock_guard lock(m_mutex);
  m_counts[value] += n;
}

std::map<std::string, std::uint64_t> LabeledCounter::snapshot() const {
  std::lock_guard lock(m_mutex);
  return m_counts;
}

}  // namespace walvault::metrics
