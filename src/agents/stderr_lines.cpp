#include "stderr_lines.hpp"

#include "runq/util/utf8.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace runq::agents::detail {

namespace {

constexpr std::size_t kMaxStderrLine = 64 * 1024;  // longer lines are cut into pieces
constexpr std::size_t kTailLines = 20;
constexpr std::size_t kTailLineBytes = 512;
constexpr std::size_t kTailBytes = 4096;

}  // namespace

bool is_progress_directive(std::string_view line) {
  constexpr std::string_view kTag = "::progress";
  return line.substr(0, kTag.size()) == kTag &&
         (line.size() == kTag.size() || line[kTag.size()] == ' ' ||
          line[kTag.size()] == '\t');
}

std::optional<ProgressLine> parse_progress(std::string_view line) {
  std::string_view rest = line.substr(std::string_view("::progress").size());
  auto skip_space = [&] {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  };
  skip_space();
  std::size_t end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
  std::string number(rest.substr(0, end));
  rest.remove_prefix(end);
  if (!number.empty() && number.back() == '%') number.pop_back();
  if (number.empty()) return std::nullopt;
  char* stop = nullptr;
  errno = 0;
  double pct = std::strtod(number.c_str(), &stop);
  if (stop != number.c_str() + number.size() || errno != 0 || !std::isfinite(pct))
    return std::nullopt;
  pct = std::clamp(pct, 0.0, 100.0);
  skip_space();
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  ProgressLine p{pct, std::nullopt};
  if (!rest.empty()) p.step = util::to_valid_utf8(std::string(rest));
  return p;
}

void StderrHandler::feed(const char* data, std::size_t n) {
  partial_.append(data, n);
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = partial_.find('\n', start);
    if (nl == std::string::npos) break;
    line(std::string_view(partial_).substr(start, nl - start));
    start = nl + 1;
  }
  partial_.erase(0, start);
  while (partial_.size() > kMaxStderrLine) {
    line(std::string_view(partial_).substr(0, kMaxStderrLine));
    partial_.erase(0, kMaxStderrLine);
  }
}

void StderrHandler::finish() {
  if (!partial_.empty()) line(partial_);
  partial_.clear();
}

std::string StderrHandler::tail() const {
  std::string out;
  for (const auto& l : tail_) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

void StderrHandler::line(std::string_view l) {
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (is_progress_directive(l)) {
    if (auto p = parse_progress(l)) {
      sink_.progress(p->percent, p->step, steps_completed_++, std::nullopt);
    } else {
      spdlog::debug("job {}: ignoring malformed progress line: {}", job_id_, l);
    }
    return;
  }
  spdlog::info("job {}: {}", job_id_, l);
  std::string kept(l.substr(0, kTailLineBytes));
  if (kept.size() < l.size()) kept += "...";
  tail_bytes_ += kept.size();
  tail_.push_back(std::move(kept));
  while (tail_.size() > kTailLines || (tail_.size() > 1 && tail_bytes_ > kTailBytes)) {
    tail_bytes_ -= tail_.front().size();
    tail_.pop_front();
  }
}

}  // namespace runq::agents::detail
