#include "runq/metrics/prometheus.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace runq::metrics {

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()),
      buckets_(new std::atomic<std::uint64_t>[upper_bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::observe(double value) {
  // le is "less than or equal": the first bound >= value.
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);  // shortest text that reads back as the same double
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name,
                 escape_help(help), name, type);
}

void TextWriter::write_sample(std::string_view name, std::span<const Label> labels,
                              const Label* extra, std::string_view value) {
  out_ += name;
  if (!labels.empty() || extra) {
    out_ += '{';
    bool first = true;
    auto put = [&](const Label& l) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.first;
      out_ += "=\"";
      out_ += escape_label_value(l.second);
      out_ += '"';
    };
    for (const auto& l : labels) put(l);
    if (extra) put(*extra);
    out_ += '}';
  }
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void TextWriter::sample(std::string_view name, Labels labels, double value) {
  write_sample(name, std::span<const Label>(labels.begin(), labels.size()), nullptr,
               format_value(value));
}

void TextWriter::histogram(std::string_view name, const std::vector<Label>& labels,
                           const Histogram::Snapshot& h) {
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < h.cumulative.size(); ++i) {
    const std::string le =
        i < h.upper_bounds.size() ? format_value(h.upper_bounds[i]) : std::string("+Inf");
    const Label extra{"le", le};
    write_sample(bucket, labels, &extra, format_value(static_cast<double>(h.cumulative[i])));
  }
  write_sample(std::string(name) + "_sum", labels, nullptr, format_value(h.sum));
  write_sample(std::string(name) + "_count", labels, nullptr,
               format_value(static_cast<double>(h.count)));
}

}  // namespace runq::metrics
