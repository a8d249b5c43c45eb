#pragma once
// The dashboard's files (ui/), compiled in by cmake/embed_ui.cmake. Internal to the api layer.
#include <span>
#include <string_view>

namespace runq::api {

struct UiFile {
  std::string_view name;          // "app.js": served at /ui/app.js
  std::string_view content_type;  // from the extension
  std::string_view etag;          // quoted, from the content's SHA-256
  std::string_view body;
};

// Every file of ui/, sorted by name.
std::span<const UiFile> ui_files();

}  // namespace runq::api
