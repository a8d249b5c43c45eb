#pragma once
// Prometheus text exposition format 0.0.4, by hand: lock-free instruments and a writer.
// Knows nothing of runq; runq_metrics.hpp holds runq's own metrics.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace runq::metrics {

// A monotonically growing count. One relaxed atomic add per event: cheap on hot paths.
class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf is implicit).
// observe() is a few relaxed atomic adds, no lock.
class Histogram {
 public:
  explicit Histogram(std::span<const double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;      // without +Inf
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  // Taken while others observe: count is the +Inf bucket, so the three always agree.
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
};

using Label = std::pair<std::string_view, std::string_view>;
using Labels = std::initializer_list<Label>;

// `\` -> `\\`, `"` -> `\"`, newline -> `\n` (label values).
std::string escape_label_value(std::string_view v);
// `\` -> `\\`, newline -> `\n` (HELP text).
std::string escape_help(std::string_view v);
// A sample value: integers without a fraction, +Inf, -Inf, NaN as Prometheus spells them.
std::string format_value(double v);

// Builds one exposition: family() once per metric name, then its samples.
class TextWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, Labels labels, double value);
  // name_bucket{...,le="..."} (cumulative, ending with +Inf), name_sum, name_count.
  void histogram(std::string_view name, const std::vector<Label>& labels,
                 const Histogram::Snapshot& h);
  const std::string& text() const { return out_; }

 private:
  void write_sample(std::string_view name, std::span<const Label> labels,
                    const Label* extra, std::string_view value);
  std::string out_;
};

}  // namespace runq::metrics
