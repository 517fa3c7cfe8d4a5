// pyrewind: record what a Python program does, line by line, and replay it later.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include "tools/pyrewind/commands.h"

namespace {

using pyrewind::cli::TraceOptions;

void add_trace_options(CLI::App& command, TraceOptions& trace) {
  command.add_option("--include", trace.include, "Trace only files matching this glob (repeatable)");
  command.add_option("--exclude", trace.exclude, "Do not trace files matching this glob (repeatable)");
  command.add_flag("!--trace-all", trace.default_excludes,
                   "Also trace the standard library, site-packages and frozen modules");
  command.add_flag("!--no-locals", trace.capture_locals, "Record lines only, without local variables");
  command.add_flag("--repr", trace.call_repr,
                   "Record a guarded, bounded repr() of objects of user-defined types");
  command.add_flag("!--no-redact", trace.redact, "Record locals named like secrets in clear");
  command.add_option("--redact", trace.redact_patterns,
                     "Name pattern to redact (repeatable; replaces the defaults)");
  command.add_option("--max-string", trace.max_string, "Characters kept per str/bytes value")
      ->check(CLI::Range(1u, 1u << 20));
  command.add_option("--max-items", trace.max_items, "Items kept per container")
      ->check(CLI::Range(0u, 10000u));
  command.add_option("--max-depth", trace.max_depth, "Container nesting kept")
      ->check(CLI::Range(0u, 64u));
  command.add_option("--buffer-size", trace.buffer_bytes, "Shared-memory ring size in bytes")
      ->check(CLI::Range(uint64_t{1} << 20, uint64_t{1} << 34));
  command.add_option("--max-overhead", trace.max_overhead_percent,
                     "Keep tracing's cost under this % of the program's own time: over it, line events of "
                     "the busiest functions are switched off (recorded), then tracing stops")
      ->check(CLI::Range(1u, 10000u));
}

// A limit reached stops the recording (the file is complete); the program runs on untraced.
void add_limit_options(CLI::App& command, pyrewind::cli::RecordingLimits& limits, bool with_duration) {
  command.add_option("--max-size", limits.max_bytes, "Stop recording before the file exceeds this size (e.g. 500M, 2G)")
      ->transform(CLI::AsSizeValue(false));
  if (with_duration)
    command.add_option("--max-duration", limits.max_seconds, "Stop recording after this many seconds")
        ->check(CLI::PositiveNumber);
}

void add_series_options(CLI::App& command, pyrewind::cli::SeriesOptions& series) {
  command.add_option("--rotate", series.rotate_bytes, "Write a series of files of at most this size (e.g. 100M)")
      ->transform(CLI::AsSizeValue(false));
  command.add_option("--ring", series.ring,
                     "Flight recorder: keep only the newest SIZE (64M) or DURATION (30s, 5min) in memory, "
                     "written on a trigger");
  command.add_option("--trigger-on", series.trigger_on,
                     "With --ring: write the window when an exception of this type is raised (repeatable)");
}

// --from/--to/--thread of the commands that read a range (tools/analysis/range.h).
void add_range_options(CLI::App& command, std::string& from, std::string& to, int64_t& thread,
                       const std::string& prefix) {
  command.add_option("--from", from, prefix + "first event: a seq (#1200), or a time since the start (1.5s, 250ms)");
  command.add_option("--to", to, prefix + "last event (inclusive): a seq, or a time since the start");
  command.add_option("--thread", thread, prefix + "only this thread (its index, as `info` lists it)")
      ->check(CLI::NonNegativeNumber);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pyrewind: record a Python program line by line and replay it later"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pyrewind " PYREWIND_VERSION);

  pyrewind::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "Run a Python program and record it from its first line");
  run_cmd->add_option("-o,--output", run.output, "Recording file to write")->capture_default_str();
  run_cmd->add_flag("-q,--quiet", run.quiet, "Print nothing of pyrewind's own");
  add_trace_options(*run_cmd, run.trace);
  add_limit_options(*run_cmd, run.limits, true);
  add_series_options(*run_cmd, run.series);
  run_cmd->add_option("command", run.command, "python3 [options] script.py|-m module|-c code [args] (after --)")
      ->required();
  run_cmd->prefix_command(false);
  run_cmd->positionals_at_end(true);

  pyrewind::cli::AttachOptions attach;
  // A smaller ring than `run`'s: creating it is most of an attach's latency, and the
  // collector drains it every few milliseconds.
  attach.trace.buffer_bytes = 16ull << 20;
  auto* attach_cmd = app.add_subcommand("attach", "Record a running Python process, then detach from it");
  attach_cmd->add_option("pid", attach.pid, "Process id of the Python program")->required();
  attach_cmd->add_option("-o,--output", attach.output, "Recording file to write")->capture_default_str();
  attach_cmd->add_option("--duration", attach.duration_seconds, "Detach after this many seconds (default: Ctrl-C)")
      ->check(CLI::PositiveNumber);
  attach_cmd->add_flag("-q,--quiet", attach.quiet, "Print nothing of pyrewind's own but errors");
  add_trace_options(*attach_cmd, attach.trace);
  add_limit_options(*attach_cmd, attach.limits, false);
  add_series_options(*attach_cmd, attach.series);

  pyrewind::cli::CtlOptions ctl;
  auto* ctl_cmd = app.add_subcommand(
      "ctl", "Control a live session without detaching: `ctl SESSION trace off|on`, `ctl SESSION sample on|off`, "
             "`ctl SESSION include|exclude GLOB`");
  ctl_cmd->add_option("session", ctl.session, "The traced process's pid, or the collector's (see `status`)")->required();
  ctl_cmd->add_option("what", ctl.what,
                      "trace: line tracing; sample: sampling the stacks instead; include, exclude: file filters")
      ->required()
      ->check(CLI::IsMember({"trace", "sample", "include", "exclude"}));
  ctl_cmd->add_option("action", ctl.action, "trace off: pause recording, trace on: line tracing; "
                                            "sample on: sample instead of tracing, sample off: line tracing again; "
                                            "include|exclude GLOB: one more file pattern, as --include/--exclude")
      ->required();
  ctl_cmd->add_option("--rate", ctl.rate_hz, "With sample on: samples per second")
      ->check(CLI::Range(1u, 20000u))
      ->capture_default_str();
  ctl_cmd->add_option("--wait", ctl.wait_seconds, "Seconds to wait for the agent to confirm")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();

  pyrewind::cli::TriggerOptions trigger;
  auto* trigger_cmd =
      app.add_subcommand("trigger", "Make a flight recorder (--ring) write its window now; recording goes on");
  trigger_cmd->add_option("session", trigger.session, "The traced process's pid, or the collector's (see `status`)")
      ->required();
  trigger_cmd->add_option("--wait", trigger.wait_seconds, "Seconds to wait for the window to be written")
      ->check(CLI::NonNegativeNumber);

  pyrewind::cli::StatusOptions status;
  auto* status_cmd = app.add_subcommand("status", "List this user's live recording sessions");
  status_cmd->add_flag("--json", status.json, "Machine-readable output");

  pyrewind::cli::DumpOptions dump;
  auto* dump_cmd = app.add_subcommand("dump", "Print every thread's Python stack of a running process, without stopping it");
  dump_cmd->add_option("pid", dump.pid, "Process id of the Python program")->required();
  dump_cmd->add_flag("--locals", dump.locals, "Also show local variables (values of builtin types)");
  dump_cmd->add_flag("--native", dump.native,
                     "Also the C stacks (libunwind), merged with the Python frames; stops the threads briefly");
  dump_cmd->add_flag("--json", dump.json, "Machine-readable output");
  dump_cmd->add_option("--max-string", dump.max_string, "Characters shown per str/bytes local")
      ->check(CLI::Range(1u, 1u << 20))
      ->capture_default_str();

  pyrewind::cli::SampleOptions sample;
  auto* sample_cmd = app.add_subcommand(
      "sample", "Sample every thread's Python stack of a process from outside, at a fixed rate, into a recording");
  sample_cmd->add_option("-o,--output", sample.output, "Recording file to write")->capture_default_str();
  sample_cmd->add_option("--rate", sample.rate_hz, "Samples per second")
      ->check(CLI::Range(1u, 20000u))
      ->capture_default_str();
  sample_cmd->add_option("--duration", sample.duration_seconds, "Stop after this many seconds (default: Ctrl-C or exit)")
      ->check(CLI::PositiveNumber);
  sample_cmd->add_flag("--idle", sample.idle, "Count idle threads' samples in profiles (they are recorded either way)");
  sample_cmd->add_flag("--native", sample.native,
                       "Also record C frames (libunwind; every thread is stopped briefly at each sample)");
  sample_cmd->add_flag("--subprocesses", sample.subprocesses,
                       "Also sample the Python processes descended from it (children, theirs, ...)");
  sample_cmd->add_flag("-q,--quiet", sample.quiet, "Print nothing of pyrewind's own but errors");
  sample_cmd->add_option("target", sample.command,
                         "PID of a running Python program, or (after --) python3 [options] script.py|-m module|-c code [args]")
      ->required();

  pyrewind::cli::TopOptions top;
  auto* top_cmd = app.add_subcommand("top", "The functions a running process spends its time in, refreshed (like py-spy top)");
  top_cmd->add_option("pid", top.pid, "Process id of the Python program")->required();
  top_cmd->add_option("--rate", top.rate_hz, "Samples per second")->check(CLI::Range(1u, 20000u))->capture_default_str();
  top_cmd->add_option("--interval", top.interval_seconds, "Seconds between refreshes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  top_cmd->add_option("--once", top.once, "Print this many refreshes as plain text, then exit")
      ->check(CLI::PositiveNumber);
  top_cmd->add_flag("--idle", top.idle, "Count idle threads' samples too");
  top_cmd->add_option("--rows", top.rows, "Functions shown")->check(CLI::PositiveNumber)->capture_default_str();

  pyrewind::cli::ReplayOptions replay;
  auto* replay_cmd = app.add_subcommand("replay", "Step forward and backward through a recording (a time-travel debugger)");
  replay_cmd->add_option("file", replay.file, "Recording file")->required();
  replay_cmd->add_option("-c,--commands", replay.commands,
                         "Run these commands (separated by ';'), print what they show, and exit");

  pyrewind::cli::TableOptions table;
  auto* table_cmd = app.add_subcommand("table", "The accumulation table of a loop: one row per iteration");
  table_cmd->add_option("file", table.file, "Recording file")->required();
  table_cmd->add_option("--at", table.at, "The loop's header line, FILE:LINE (FILE: a path or its end)")->required();
  table_cmd->add_option("--vars", table.vars, "Columns, comma-separated (default: the locals that change in the loop)");
  table_cmd->add_option("--format", table.format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  table_cmd->add_option("-o,--output", table.output, "Output file ('-' for stdout)")->capture_default_str();
  table_cmd->add_option("--max-rows", table.max_rows, "Rows kept per run of the loop")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24))
      ->capture_default_str();

  pyrewind::cli::InfoOptions info;
  auto* info_cmd = app.add_subcommand("info", "Describe a recording");
  info_cmd->add_option("file", info.file, "Recording file")->required();
  info_cmd->add_flag("--json", info.json, "Machine-readable output");

  pyrewind::cli::ExportOptions exp;
  auto* export_cmd = app.add_subcommand("export", "Convert a recording to another format");
  export_cmd->add_option("file", exp.file, "Recording file")->required();
  export_cmd->add_option("--format", exp.format, "Output format")
      ->check(CLI::IsMember({"jsonl", "memoryviz", "chrome", "perfetto", "speedscope", "collapsed", "pprof"}))
      ->capture_default_str();
  export_cmd->add_option("-o,--output", exp.output, "Output file ('-' for stdout)")->capture_default_str();
  export_cmd->add_option("--step", exp.step, "memoryviz: the step (seq) whose state is drawn")
      ->check(CLI::NonNegativeNumber);
  add_range_options(*export_cmd, exp.from, exp.to, exp.thread, "chrome, perfetto, speedscope, collapsed, pprof: ");

  pyrewind::cli::StatsOptions stats;
  auto* stats_cmd = app.add_subcommand("stats", "Profile a recording: calls and time per function and line, coverage, types");
  stats_cmd->add_option("file", stats.file, "Recording file")->required();
  stats_cmd->add_option("--format", stats.format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  stats_cmd->add_option("-o,--output", stats.output, "Output file ('-' for stdout)")->capture_default_str();
  add_range_options(*stats_cmd, stats.from, stats.to, stats.thread, "");

  pyrewind::cli::HtmlOptions html;
  auto* html_cmd = app.add_subcommand("html", "Write one self-contained page to step through a recording");
  html_cmd->add_option("file", html.file, "Recording file")->required();
  html_cmd->add_option("-o,--output", html.output, "Page to write ('-' for stdout)")->capture_default_str();
  html_cmd->add_option("--from", html.from, "First step shown: a seq, or a time since the start (1.5s, 250ms)");
  html_cmd->add_option("--to", html.to, "Last step shown: a seq, or a time since the start");
  html_cmd->add_option("--thread", html.thread, "Only this thread (its index, as `info` lists it)")
      ->check(CLI::NonNegativeNumber);
  html_cmd->add_option("--max-steps", html.max_steps, "Most steps in one page; a longer range is cut")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : pyrewind::cli::kExitUsage;
  }

  try {
    if (*run_cmd) return pyrewind::cli::run_command(run);
    if (*attach_cmd) return pyrewind::cli::attach_command(attach);
    if (*info_cmd) return pyrewind::cli::info_command(info);
    if (*status_cmd) return pyrewind::cli::status_command(status);
    if (*trigger_cmd) return pyrewind::cli::trigger_command(trigger);
    if (*ctl_cmd) return pyrewind::cli::ctl_command(ctl);
    if (*dump_cmd) return pyrewind::cli::dump_command(dump);
    if (*sample_cmd) {
      // One number alone is a process id; anything else, the program to start.
      const std::string& first = sample.command.front();
      if (sample.command.size() == 1 && first.find_first_not_of("0123456789") == std::string::npos && first.size() < 10) {
        sample.pid = std::stoi(first);
        sample.command.clear();
      }
      return pyrewind::cli::sample_command(sample);
    }
    if (*top_cmd) return pyrewind::cli::top_command(top);
    if (*replay_cmd) return pyrewind::cli::replay_command(replay);
    if (*table_cmd) return pyrewind::cli::table_command(table);
    if (*export_cmd) return pyrewind::cli::export_command(exp);
    if (*stats_cmd) return pyrewind::cli::stats_command(stats);
    if (*html_cmd) return pyrewind::cli::html_command(html);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pyrewind: internal error: %s\n", e.what());
    return pyrewind::cli::kExitInternal;
  }
  return pyrewind::cli::kExitUsage;
}
