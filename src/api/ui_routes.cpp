// The dashboard's routes: / and /ui redirect to /ui/, which serves ui/index.html; /ui/NAME
// serves the other files of ui/, compiled in (ui_files.hpp). They hold no data, so they
// need no key; the page asks for one and calls the API itself.
#include "runq/api/router.hpp"

#include "responses.hpp"
#include "ui_files.hpp"

#include <algorithm>

namespace runq::api {

namespace {

// The page's own scripts and styles only: no inline script or style, no other origin, no
// framing. A job's fields are text the page never runs, and this makes sure of it.
constexpr std::string_view kCsp = "default-src 'self'; frame-ancestors 'none'";

const UiFile* find_file(std::string_view name) {
  const auto files = ui_files();
  const auto it = std::lower_bound(files.begin(), files.end(), name,
                                   [](const UiFile& f, std::string_view n) { return f.name < n; });
  return it != files.end() && it->name == name ? &*it : nullptr;
}

// True if If-None-Match names `etag` (a list of quoted tags, or *).
bool etag_matches(const std::string* if_none_match, std::string_view etag) {
  if (!if_none_match) return false;
  const std::string_view v = *if_none_match;
  return v == "*" || v.find(etag) != std::string_view::npos;
}

}  // namespace

std::optional<http::Response> Router::ui_redirect(Call& /*call*/) {
  http::Response r;
  r.status = 302;
  r.content_type.clear();
  r.headers.push_back({"Location", "/ui/"});
  return r;
}

std::optional<http::Response> Router::ui_file(Call& call) {
  const UiFile* file = find_file(call.id.empty() ? "index.html" : std::string_view(call.id));
  if (!file) return error_response(404, "Not Found");
  http::Response r;
  // Revalidated on every load (a new binary may serve new files), answered by 304 when
  // the file is unchanged.
  r.headers.push_back({"ETag", std::string(file->etag)});
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"Content-Security-Policy", std::string(kCsp)});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  if (etag_matches(call.request.header("if-none-match"), file->etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = std::string(file->content_type);
  r.body = std::string(file->body);
  return r;
}

}  // namespace runq::api
