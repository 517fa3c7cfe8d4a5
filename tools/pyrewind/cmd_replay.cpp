// `pyrewind replay FILE [-c "cmd; cmd"]`: the time-travel debugger (tools/replay/) at a
// terminal. Interactive with line editing and history (libedit) when stdin is a terminal;
// otherwise, and with -c, it runs the given commands and prints a transcript.
#include <editline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_input.h"
#include "tools/reader/recording.h"
#include "tools/replay/debugger.h"
#include "tools/replay/index.h"
#include "tools/replay/sample_debugger.h"

namespace pyrewind::cli {
namespace {

constexpr const char* kPrompt = "(rwd) ";

// "a; b 'x;y'; c" -> {"a", "b 'x;y'", "c"}: semicolons inside quotes belong to the command.
std::vector<std::string> split_commands(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';') {
      out.push_back(current);
      current.clear();
      continue;
    }
    current += c;
  }
  out.push_back(current);
  return out;
}

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t");
  return first == std::string::npos ? "" : s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool flush(replay::Session& debugger) {
  const std::string text = debugger.take_output();
  return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0;
}

std::string history_file() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.pyrewind_history" : "";
}

}  // namespace

int replay_command(const ReplayOptions& options) {
  auto recording = open_recording(options.file, /*streamed=*/false);
  if (!recording) return kExitBadRecording;

  // A sampled recording is read into memory whole (tools/replay/sample_debugger.h): no index.
  std::unique_ptr<replay::ReplayIndex> index;
  std::unique_ptr<replay::Session> session;
  if (recording->header().mode() == "sample") {
    session = std::make_unique<replay::SampleDebugger>(*recording);
  } else {
    const bool progress_shown = ::isatty(STDERR_FILENO);
    index = std::make_unique<replay::ReplayIndex>(*recording, [&](uint64_t done, uint64_t total) {
      if (progress_shown && total > 16)
        std::fprintf(stderr, "\rpyrewind: indexing %s: %llu/%llu chunks", options.file.c_str(),
                     static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    });
    if (progress_shown && !index->loaded_from_cache() && recording->summary().chunks_size() > 16)
      std::fprintf(stderr, "\n");
    session = std::make_unique<replay::Debugger>(*recording, *index);
  }
  replay::Session& debugger = *session;
  if (!debugger.start()) {
    flush(debugger);
    return kExitBadRecording;
  }
  if (!flush(debugger)) return kExitIoError;

  auto run = [&](const std::string& command, bool echo) {
    if (echo) std::printf("%s%s\n", kPrompt, trim(command).c_str());
    const bool go_on = debugger.execute(command);
    if (!flush(debugger)) return false;
    return go_on;
  };

  if (!options.commands.empty()) {
    for (const std::string& command : split_commands(options.commands))
      if (!run(command, true)) break;
    return std::ferror(stdout) ? kExitIoError : kExitOk;
  }

  if (!::isatty(STDIN_FILENO)) {
    std::string line;
    while (std::getline(std::cin, line))
      if (!run(line, true)) break;
    return std::ferror(stdout) ? kExitIoError : kExitOk;
  }

  const std::string history = history_file();
  using_history();
  if (!history.empty()) read_history(history.c_str());
  std::string last;
  for (;;) {
    char* input = readline(kPrompt);
    if (!input) {  // end of input (Ctrl-D)
      std::printf("\n");
      break;
    }
    std::string line = input;
    std::free(input);
    if (line.find_first_not_of(" \t") == std::string::npos) {
      line = last;  // an empty line repeats the last command, as in pdb
    } else {
      add_history(line.c_str());
      last = line;
    }
    if (!run(line, false)) break;
  }
  if (!history.empty()) write_history(history.c_str());
  return kExitOk;
}

}  // namespace pyrewind::cli
