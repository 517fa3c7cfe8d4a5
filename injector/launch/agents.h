// Where the per-version agents and the preload shim are installed, and which versions exist.
#pragma once

#include <string>
#include <vector>

namespace pyrewind::injector {

constexpr const char* kAgentDirEnv = "PYREWIND_AGENT_DIR";
constexpr const char* kPreloadFileName = "libpyrewind-preload.so";

// $PYREWIND_AGENT_DIR if set (tests), else <directory of this executable>/../lib/pyrewind,
// which is right both in the build tree (bin/ next to lib/pyrewind) and when installed under
// a prefix. Absolute and canonical when the directory exists.
std::string agent_dir();

// "pyrewind-agent-cpython-3.<minor>.so"
std::string agent_file_name(int minor);

// Minor versions (of 3.x) with an agent file in `dir`, ascending.
std::vector<int> available_agent_minors(const std::string& dir);

// "3.9, 3.10 and 3.12"; "none" for an empty list.
std::string describe_versions(const std::vector<int>& minors);

}  // namespace pyrewind::injector
