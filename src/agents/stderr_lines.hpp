#pragma once
// What a command job's child writes on stderr: `::progress <percent> <step>` directives
// become progress events, other lines are logged, and a bounded tail of them is kept for
// the error message of a failed job.
#include "runq/jobs/agent.hpp"

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace runq::agents::detail {

// `::progress <percent> <step text>` -> (percent, step).
struct ProgressLine {
  double percent;  // clamped to 0..100
  std::optional<std::string> step;
};

// The line is meant as a progress directive (well-formed or not).
bool is_progress_directive(std::string_view line);
// A directive's values; nullopt if it is malformed.
std::optional<ProgressLine> parse_progress(std::string_view line);

class StderrHandler {
 public:
  StderrHandler(const std::string& job_id, jobs::ProgressSink& sink) : job_id_(job_id), sink_(sink) {}

  void feed(const char* data, std::size_t n);  // bytes as they arrive
  void finish();                               // the stream ended: flush a last line
  std::string tail() const;                    // the last log lines, '\n'-separated

 private:
  void line(std::string_view l);

  const std::string& job_id_;
  jobs::ProgressSink& sink_;
  std::string partial_;
  std::deque<std::string> tail_;
  std::size_t tail_bytes_ = 0;
  int steps_completed_ = 0;
};

}  // namespace runq::agents::detail
