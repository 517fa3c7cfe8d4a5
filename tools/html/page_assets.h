// The viewer page around a recording's data (generated at build time by embed_page.cmake from
// viewer.html, viewer.css and viewer.js): kPageHead, then the data scripts, then kPageTail.
#pragma once

#include <string_view>

namespace pyrewind::html {
extern const std::string_view kPageHead;
extern const std::string_view kPageTail;
}  // namespace pyrewind::html
