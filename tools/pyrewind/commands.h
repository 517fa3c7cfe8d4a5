// The pyrewind subcommands. main.cpp parses the command line; each command lives in its own
// cmd_*.cpp and returns the process exit status.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pyrewind::cli {

// Exit statuses of pyrewind's own failures (a traced program's status passes through `run`).
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 2,
  // Missing, unreadable or unsupported recording. A damaged one (truncated, bad CRC) is read
  // up to the damage with a warning and exit 0.
  kExitBadRecording = 3,
  kExitIoError = 4,        // cannot write the output (disk full, permission)
  kExitNotPython = 5,      // the program to run is not CPython (or not found)
  kExitNoAgent = 6,        // no agent build for that Python version
  // attach (README, "pyrewind attach"):
  kExitNoProcess = 7,          // no such process (or it exited during the attach)
  kExitPermission = 8,         // ptrace not allowed (credentials, Yama, not dumpable, another
                               // tracer), or the agent not readable by the target's user
  kExitTargetNotRunning = 9,   // stopped (SIGSTOP, a debugger) or exiting
  kExitUnsupportedTarget = 10, // another PID/mount namespace, or a Python version not identifiable
  kExitAttachFailed = 11,      // injection or agent start failed, or the agent never traced
  kExitAlreadyAttached = 12,   // already being recorded (another attach holds the lock, or the
                               // agent refused a second session)
  kExitInternal = 70,
};

struct TraceOptions {
  std::vector<std::string> include;   // file path globs; empty = everything not excluded
  std::vector<std::string> exclude;
  bool default_excludes = true;       // stdlib, site-/dist-packages, frozen, pyrewind
  bool capture_locals = true;
  bool call_repr = false;             // --repr
  bool redact = true;                 // --no-redact turns off
  std::vector<std::string> redact_patterns;  // empty: the defaults
  uint32_t max_string = 256;
  uint32_t max_items = 25;
  uint32_t max_depth = 3;
  uint64_t buffer_bytes = 64ull << 20;  // shared-memory ring size
  uint32_t max_overhead_percent = 0;    // 0: no budget
};

// Bounds of one recording (0: none). Reaching one stops the recording; the program runs on.
struct RecordingLimits {
  uint64_t max_bytes = 0;      // --max-size: the finished file's size
  double max_seconds = 0;      // --max-duration: from the start of tracing
};

// How the recording is written: one file, a rotated series, or a flight recorder.
struct SeriesOptions {
  uint64_t rotate_bytes = 0;             // --rotate: the next file of the series at this size
  std::string ring;                      // --ring SIZE|DURATION: keep only this much, in memory
  std::vector<std::string> trigger_on;   // --trigger-on: exception type names
};

struct RunOptions {
  std::string output = "pyrewind.rwd";
  TraceOptions trace;
  RecordingLimits limits;
  SeriesOptions series;
  std::vector<std::string> command;   // python3 [interpreter options] script|-m mod|-c code [args]
  bool quiet = false;
};

struct AttachOptions {
  int pid = 0;
  std::string output = "pyrewind.rwd";
  TraceOptions trace;
  RecordingLimits limits;             // max_seconds unused: --duration detaches instead
  SeriesOptions series;
  double duration_seconds = 0;        // 0: until Ctrl-C / SIGTERM or the process exits
  bool quiet = false;
};

struct InfoOptions {
  std::string file;
  bool json = false;
};

struct ExportOptions {
  std::string file;
  std::string format = "jsonl";
  std::string output = "-";           // "-" = stdout
  int64_t step = -1;                  // memoryviz: the step (seq) whose state is drawn
  // chrome, perfetto, speedscope, collapsed: the range (tools/analysis/range.h)
  std::string from;                   // "": from the start
  std::string to;                     // "": to the end
  int64_t thread = -1;                // -1: every thread
};

struct StatsOptions {
  std::string file;
  std::string format = "text";        // text | json
  std::string output = "-";
  std::string from;                   // as ExportOptions
  std::string to;
  int64_t thread = -1;
};

struct HtmlOptions {
  std::string file;
  std::string output = "pyrewind.html";  // "-" = stdout
  std::string from;                    // "" or a seq or a time such as 1.5s (tools/html/page.h)
  std::string to;
  int64_t thread = -1;                 // -1: every thread
  uint64_t max_steps = 20000;
};

struct StatusOptions {
  bool json = false;
};

struct DumpOptions {
  int pid = 0;
  bool locals = false;
  bool native = false;
  bool json = false;
  uint32_t max_string = 100;  // characters of a str/bytes local shown
};

struct SampleOptions {
  int pid = 0;                        // 0: start `command` and sample it
  std::vector<std::string> command;   // after --: the program to start
  std::string output = "pyrewind.rwd";
  uint32_t rate_hz = 100;
  double duration_seconds = 0;        // 0: until Ctrl-C / SIGTERM or the process exits
  bool idle = false;                  // profiles count idle samples too
  bool native = false;                // C frames too (threads stopped at each sample)
  bool subprocesses = false;          // also the Python processes descended from it
  bool quiet = false;
};

struct TopOptions {
  int pid = 0;
  uint32_t rate_hz = 100;
  double interval_seconds = 1;        // between refreshes
  uint32_t once = 0;                  // print this many refreshes as plain text, then exit
  bool idle = false;                  // count idle threads' samples too
  size_t rows = 20;                   // functions shown
};

struct TableOptions {
  std::string file;
  std::string at;                // FILE:LINE of the loop's header
  std::string vars;              // comma-separated columns; empty: what changes in the loop
  std::string format = "text";   // text | json
  std::string output = "-";
  size_t max_rows = 1000;        // per run of the loop
};

struct TriggerOptions {
  int session = 0;  // the traced process's pid or the collector's, as `status` lists them
  double wait_seconds = 5;
};

struct CtlOptions {
  int session = 0;     // as TriggerOptions
  std::string what;    // "trace" | "sample"
  std::string action;  // "on" | "off"
  uint32_t rate_hz = 100;  // sample on
  double wait_seconds = 3;
};

struct ReplayOptions {
  std::string file;
  std::string commands;  // -c: "cmd; cmd"; empty = interactive (or commands from stdin)
};

int run_command(const RunOptions& options);
int status_command(const StatusOptions& options);
int attach_command(const AttachOptions& options);
int info_command(const InfoOptions& options);
int export_command(const ExportOptions& options);
int stats_command(const StatsOptions& options);
int html_command(const HtmlOptions& options);
int memoryviz_command(const ExportOptions& options);  // export --format memoryviz (cmd_html.cpp)
int dump_command(const DumpOptions& options);
int sample_command(const SampleOptions& options);
int top_command(const TopOptions& options);
int replay_command(const ReplayOptions& options);
int ctl_command(const CtlOptions& options);
int table_command(const TableOptions& options);
int trigger_command(const TriggerOptions& options);

}  // namespace pyrewind::cli
