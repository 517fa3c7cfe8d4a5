// Which code is traced (file-path globs plus default excludes) and which locals are redacted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pyrewind::ring {
struct AgentConfig;
}

namespace pyrewind::agent {

class Filters {
 public:
  // Reads the patterns from the (untrusted) config block; false on malformed data.
  bool load(const ring::AgentConfig& config, std::string* error);
  // Directory of the standard library ("/usr/lib/python3.11/"), known once Python runs.
  void set_stdlib_dir(std::string dir);
  // The pseudo-file name of the program itself ("<string>" for -c, "<stdin>"): the one
  // pseudo-file traced by default (others are generated code such as namedtuple templates).
  void set_main_pseudo_file(std::string name) { main_pseudo_file_ = std::move(name); }

  // An explicit --include match wins over the default excludes; --exclude wins over both.
  bool traces_file(std::string_view path) const;
  // Case-insensitive substring match against the redact patterns.
  bool redacts_name(std::string_view name) const;

 private:
  bool default_excluded(std::string_view path) const;

  std::vector<std::string> includes_;
  std::vector<std::string> excludes_;
  std::vector<std::string> redact_lowercase_;
  bool default_excludes_ = true;
  bool redact_ = true;
  std::string stdlib_dir_;
  std::string main_pseudo_file_;
};

}  // namespace pyrewind::agent
