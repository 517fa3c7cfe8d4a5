// `pyrewind sample PID -o FILE [--rate HZ] [--duration S] [--idle]` and
// `pyrewind sample -o FILE [options] -- python3 app.py ...`: every thread's Python stack, every
// period, read from outside the process (injector/inspect/, as `dump` does: no ptrace stop, no
// GIL, nothing run in the target), written as Sample packets into a recording of mode "sample".
//
// The target runs on while it is read, so a stack can be torn; a thread whose stack does not
// check out gives no sample at that tick, and the summary counts it as dropped. Idle samples
// (the OS thread not running) are always recorded, flagged; --idle only tells the profiles
// (stats, exports) to count them, as py-spy's --idle does.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/src/packet_validator.h"
#include "collector/src/recording_writer.h"
#include "injector/attach/proc_info.h"
#include "injector/inspect/native_stacks.h"
#include "injector/inspect/python_process.h"
#include "injector/inspect/python_stacks.h"
#include "injector/launch/launcher.h"
#include "injector/launch/python_probe.h"
#include "pyrewind/v1/trace.pb.h"
#include "tools/pyrewind/commands.h"
#include "tools/pyrewind/recording_setup.h"
#include "tools/pyrewind/sampling.h"

namespace pyrewind::cli {
namespace {


v1::RecordingHeader make_header(const SampleOptions& options, const inspect::PythonTarget& target, pid_t pid,
                                uint64_t start_ns) {
  v1::RecordingHeader header = base_header(start_ns, "sample");
  header.set_sample_rate_hz(options.rate_hz);
  header.set_sample_idle(options.idle);
  header.set_python_implementation("cpython");
  header.set_python_version(target.version);
  // PY_VERSION_HEX without the release level, which the memory does not tell.
  int major = 0, minor = 0, micro = 0;
  std::sscanf(target.version.c_str(), "%d.%d.%d", &major, &minor, &micro);
  header.set_python_hexversion(static_cast<uint32_t>(major << 24 | minor << 16 | micro << 8));
  header.set_pid(static_cast<uint64_t>(pid));
  for (const std::string& arg : options.command.empty() ? process_arguments(pid) : options.command)
    header.add_argv(collector::to_valid_utf8(arg));
  header.set_cwd(collector::to_valid_utf8(injector::proc_link(pid, "cwd")));
  header.set_executable(collector::to_valid_utf8(injector::proc_link(pid, "exe")));
  return header;
}


// --subprocesses: the Python processes descended from the sampled one (children, theirs, ...),
// looked for every 200 ms, each sampled as the first one is; their threads are recorded with
// their pid. A process that cannot be read is forgotten, so the next look finds it again (it
// may have exec'd another program); one that is not Python is not looked at again until it
// runs another executable.
class Descendants {
 public:
  Descendants(pid_t root, bool native) : root_(root), native_(native) {}

  void sample(SampleRecorder& recorder, uint64_t start_ns, SampleCounts* counts) {
    if (const uint64_t now = monotonic_ns(); now >= next_scan_ns_) {
      next_scan_ns_ = now + kScanIntervalNs;
      scan();
    }
    for (auto it = processes_.begin(); it != processes_.end();) {
      Process& p = *it->second;
      if (sample_once(*p.reader, recorder, p.native.get(), it->first, start_ns, counts)) {
        ++it;
        continue;
      }
      if (injector::process_alive(it->first)) ++counts->dropped;
      it = processes_.erase(it);
    }
  }

 private:
  static constexpr uint64_t kScanIntervalNs = 200000000;
  struct Process {
    explicit Process(pid_t pid) : memory(pid) {}
    inspect::ProcessMemory memory;
    inspect::LocateResult located;
    std::unique_ptr<inspect::StackReader> reader;
    std::unique_ptr<NativeSampling> native;
  };

  void scan() {
    for (pid_t pid : descendant_pids(root_)) {
      if (processes_.count(pid)) continue;
      const std::string exe = injector::proc_link(pid, "exe");
      if (auto skipped = not_python_.find(pid); skipped != not_python_.end() && skipped->second == exe) continue;
      auto process = std::make_unique<Process>(pid);
      process->located = inspect::locate_python(pid, process->memory);
      switch (process->located.status) {
        case inspect::LocateStatus::kOk:
          break;
        case inspect::LocateStatus::kNotPython:
        case inspect::LocateStatus::kPermissionDenied:
          not_python_[pid] = exe;
          continue;
        default:  // gone, or an interpreter not initialised yet: looked at again next time
          continue;
      }
      process->reader = std::make_unique<inspect::StackReader>(process->located.target, process->memory);
      if (native_) process->native = std::make_unique<NativeSampling>(pid);
      processes_.emplace(pid, std::move(process));
    }
  }

  pid_t root_;
  bool native_;
  uint64_t next_scan_ns_ = 0;
  std::map<pid_t, std::unique_ptr<Process>> processes_;
  std::map<pid_t, std::string> not_python_;  // by the executable it ran then
};

int sample_process(const SampleOptions& options) {
  const pid_t pid = options.pid;
  inspect::ProcessMemory memory(pid);
  const inspect::LocateResult located = inspect::locate_python(pid, memory);
  if (located.status != inspect::LocateStatus::kOk) return locate_failure(located);

  std::unique_ptr<NativeSampling> native;
  if (options.native) {  // refused before anything is written, as `dump --native` is
    int exit_code = 0;
    std::string why;
    if (!stop_threads(pid, &exit_code, &why)) {
      say("--native: %s", why.c_str());
      return exit_code;
    }
    native = std::make_unique<NativeSampling>(pid);
  }
  const uint64_t start_ns = monotonic_ns();
  std::string error;
  auto writer = collector::RecordingWriter::create(options.output, make_header(options, located.target, pid, start_ns),
                                                   &error);
  if (!writer) {
    say("%s", error.c_str());
    return kExitIoError;
  }
  catch_stop_signals();
  inspect::StackReader reader(located.target, memory);
  SampleRecorder recorder(*writer);
  std::unique_ptr<Descendants> descendants;
  if (options.subprocesses) descendants = std::make_unique<Descendants>(pid, options.native);
  SampleCounts counts;
  Ticker ticker(options.rate_hz);
  const uint64_t deadline = options.duration_seconds > 0 ? start_ns + static_cast<uint64_t>(options.duration_seconds * 1e9) : 0;
  bool exited = false;
  while (!stop_requested() && (!deadline || monotonic_ns() < deadline) && !writer->failed()) {
    if (descendants) descendants->sample(recorder, start_ns, &counts);
    if (!sample_once(reader, recorder, native.get(), 0, start_ns, &counts)) {
      if (!injector::process_alive(pid)) {
        exited = true;
        break;
      }
      ++counts.dropped;
    }
    ticker.wait();
  }
  v1::RecordingSummary extras;
  extras.set_target_exited(exited);
  extras.set_dropped_samples(counts.dropped);
  if (!writer->finish(extras)) {
    say("%s", writer->error().c_str());
    return kExitIoError;
  }
  if (!options.quiet)
    say("sampled %llu stacks (%llu dropped) of process %d to %s", static_cast<unsigned long long>(counts.samples),
        static_cast<unsigned long long>(counts.dropped), static_cast<int>(pid), options.output.c_str());
  return kExitOk;
}

// Everything but the final exit; `*kill_signal` is set when pyrewind must die by a signal.
int sample_program(const SampleOptions& options, int* kill_signal) {
  const uint64_t start_ns = monotonic_ns();
  // An unwritable output fails before the program runs; the recording itself is created once
  // the interpreter is found, since its header names the Python version.
  if (FILE* probe = std::fopen(options.output.c_str(), "w")) {
    std::fclose(probe);
  } else {
    say("cannot create %s: %s", options.output.c_str(), std::strerror(errno));
    return kExitIoError;
  }
  std::string error;
  injector::LaunchSpec spec;  // no preload library: the program runs as it is
  spec.argv = options.command;
  int error_number = 0;
  if (!injector::resolve_executable(options.command[0], std::getenv("PATH"), &spec.executable, &error_number)) {
    unlink(options.output.c_str());
    say("%s: %s", options.command[0].c_str(),
        error_number == ENOENT ? "command not found" : std::strerror(error_number));
    return kExitNotPython;
  }
  // As for `run`: Ctrl-C reaches the program from the terminal, pyrewind outlives it to finish
  // the file, SIGTERM and friends sent to pyrewind are passed on (injector/launch/launcher.h).
  std::unique_ptr<injector::TracedChild> child = injector::TracedChild::prepare(spec, &error);
  int exec_errno = 0;
  if (!child || !child->start(&error, &exec_errno)) {
    unlink(options.output.c_str());
    say("cannot execute %s: %s", options.command[0].c_str(), error.c_str());
    return child ? kExitNotPython : kExitInternal;
  }
  const pid_t pid = child->pid();
  inspect::ProcessMemory memory(pid);
  inspect::LocateResult located;
  std::unique_ptr<collector::RecordingWriter> writer;
  std::unique_ptr<inspect::StackReader> reader;
  std::unique_ptr<SampleRecorder> recorder;
  std::unique_ptr<NativeSampling> native;
  std::unique_ptr<Descendants> descendants;
  SampleCounts counts;
  bool sampled = false;  // a snapshot was read: from then on a failed read is a dropped sample
  Ticker ticker(options.rate_hz);
  const uint64_t deadline = options.duration_seconds > 0 ? start_ns + static_cast<uint64_t>(options.duration_seconds * 1e9) : 0;
  while (!child->wait_exit(0)) {
    if (!writer) {
      // Until the interpreter's image is mapped (the dynamic loader runs first) it is not
      // found; looked for every millisecond, so sampling starts with the program.
      located = inspect::locate_python(pid, memory);
      if (located.status == inspect::LocateStatus::kOk) {
        writer = collector::RecordingWriter::create(options.output, make_header(options, located.target, pid, start_ns),
                                                    &error);
        if (!writer) {
          say("%s; the program runs on unsampled", error.c_str());
          break;
        }
        reader = std::make_unique<inspect::StackReader>(located.target, memory);
        recorder = std::make_unique<SampleRecorder>(*writer);
        if (options.native) native = std::make_unique<NativeSampling>(pid);  // its own child: ptrace allowed
        if (options.subprocesses) descendants = std::make_unique<Descendants>(pid, options.native);
      }
    }
    if (reader && (!deadline || monotonic_ns() < deadline) && !writer->failed()) {
      if (descendants) descendants->sample(*recorder, start_ns, &counts);
      if (sample_once(*reader, *recorder, native.get(), 0, start_ns, &counts))
        sampled = true;
      else if (sampled && injector::process_alive(pid))
        ++counts.dropped;
    }
    if (writer)
      ticker.wait();
    else
      usleep(1000);
  }
  const int status = child->reap();
  int code = kExitOk;
  if (!writer) {
    if (error.empty()) {
      say("%s was not sampled: %s", options.command[0].c_str(),
          located.message.empty() ? "it exited before its interpreter was found" : located.message.c_str());
      unlink(options.output.c_str());
    }
  } else {
    v1::RecordingSummary extras;
    extras.set_target_exited(true);
    extras.set_exit_status(injector::exit_status_of(status));
    extras.set_dropped_samples(counts.dropped);
    if (!writer->finish(extras))
      say("error: %s", writer->error().c_str());
    else if (!options.quiet)
      say("sampled %llu stacks (%llu dropped) to %s", static_cast<unsigned long long>(counts.samples),
          static_cast<unsigned long long>(counts.dropped), options.output.c_str());
  }
  if (WIFSIGNALED(status)) {
    *kill_signal = WTERMSIG(status);
    return 128 + WTERMSIG(status);
  }
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  return code;
}

}  // namespace

int sample_command(const SampleOptions& options) {
  if (options.pid < 0 || (options.pid == 0 && options.command.empty())) {
    say("not a process id: pyrewind sample PID -o FILE, or pyrewind sample -o FILE -- python3 app.py");
    return kExitUsage;
  }
  if (options.pid > 0) return sample_process(options);
  int kill_signal = 0;
  const int code = sample_program(options, &kill_signal);  // releases everything before a signal death
  if (kill_signal > 0) return die_by_signal(kill_signal);
  return code;
}

}  // namespace pyrewind::cli
