#include "injector/inspect/layouts.h"

#include <memory>

#include "injector/inspect/layouts_generated.h"

namespace pyrewind::inspect {
namespace {

constexpr size_t kBuiltCount = sizeof kBuiltLayouts / sizeof kBuiltLayouts[0] - 1;  // minus the end marker

}  // namespace

const PythonLayout* layout_for(int major, int minor) {
  // Filled once: the probes compute a few values (bitfield positions) at run time.
  static const auto tables = [] {
    auto filled = std::make_unique<PythonLayout[]>(kBuiltCount);
    for (size_t i = 0; i < kBuiltCount; ++i) kBuiltLayouts[i].fill(&filled[i]);
    return filled;
  }();
  for (size_t i = 0; i < kBuiltCount; ++i)
    if (kBuiltLayouts[i].major == major && kBuiltLayouts[i].minor == minor) return &tables[i];
  return nullptr;
}

std::string supported_versions() {
  std::string text;
  for (size_t i = 0; i < kBuiltCount; ++i) {
    if (!text.empty()) text += ", ";
    text += std::to_string(kBuiltLayouts[i].major) + "." + std::to_string(kBuiltLayouts[i].minor);
  }
  return text.empty() ? "none (no Python headers were found at build time)" : text;
}

}  // namespace pyrewind::inspect
