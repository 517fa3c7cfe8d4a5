// `pyrewind info` and `pyrewind export --format jsonl`, run in-process on written recordings.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include "tools/pyrewind/commands.h"
#include "tools/reader/recording.h"
#include "tools/reader/test_util.h"

namespace pyrewind {
namespace {

using namespace pyrewind::testing;
using cli::ExportOptions;
using cli::InfoOptions;

struct Captured {
  int status;
  std::string out;
  std::string err;
};

// Runs `f` with stdout and stderr redirected to files.
Captured capture(const TempDir& dir, const std::function<int()>& f) {
  std::string out_path = dir.file("stdout.txt"), err_path = dir.file("stderr.txt");
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  close(out_fd);
  close(err_fd);
  int status = f();
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  return {status, read_file(out_path), read_file(err_path)};
}

const char* kSampleJsonl =
    R"({"seq":0,"t_ns":10,"tid":0,"event":"call","file":"/app/app.py","func":"<module>","line":1,"depth":0,"locals":{}}
{"seq":1,"t_ns":20,"tid":0,"event":"line","file":"/app/app.py","func":"<module>","line":1,"depth":0,"locals":{}}
{"seq":2,"t_ns":30,"tid":0,"event":"line","file":"/app/app.py","func":"<module>","line":2,"depth":0,"locals":{"x":1}}
{"seq":3,"t_ns":40,"tid":0,"event":"line","file":"/app/app.py","func":"<module>","line":3,"depth":0,"locals":{"x":2,"y":"hi"}}
{"seq":4,"t_ns":50,"tid":0,"event":"call","file":"/app/app.py","func":"Ledger.add","line":10,"depth":1,"locals":{"self":{"type":"Ledger","id":32512},"amount":5}}
{"seq":5,"t_ns":60,"tid":0,"event":"line","file":"/app/app.py","func":"Ledger.add","line":11,"depth":1,"locals":{"self":{"type":"Ledger","id":32512},"amount":5}}
{"seq":6,"t_ns":70,"tid":0,"event":"line","file":"/app/app.py","func":"Ledger.add","line":12,"depth":1,"locals":{"self":{"type":"Ledger","id":32512},"amount":5,"total":5}}
{"seq":7,"t_ns":75,"tid":0,"event":"exception","file":"/app/app.py","func":"Ledger.add","line":12,"depth":1,"exception":{"type":"ValueError","message":"bad amount"}}
{"seq":8,"t_ns":76,"tid":0,"event":"exception_handled","file":"/app/app.py","func":"Ledger.add","line":12,"depth":1,"exception":{"type":"ValueError","message":"bad amount"}}
{"seq":9,"t_ns":80,"tid":0,"event":"return","file":"/app/app.py","func":"Ledger.add","line":13,"depth":1,"value":5}
{"seq":10,"t_ns":85,"tid":1,"event":"call","file":"/app/worker.py","func":"work","line":3,"depth":0,"locals":{"n":3}}
{"seq":11,"t_ns":86,"tid":1,"event":"line","file":"/app/worker.py","func":"work","line":4,"depth":0,"locals":{"n":3}}
{"seq":12,"t_ns":90,"tid":0,"event":"line","file":"/app/app.py","func":"<module>","line":4,"depth":0,"locals":{"x":2,"y":"hi","z":{"type":"list","id":4660,"len":2,"items":[1,2]}}}
{"seq":13,"t_ns":95,"tid":1,"event":"line","file":"/app/worker.py","func":"work","line":5,"depth":0,"locals":{"n":3,"i":0,"acc":0}}
{"event":"loss","tid":1,"dropped_records":7,"dropped_bytes":700}
{"seq":14,"t_ns":120,"tid":1,"event":"line","file":"/app/worker.py","func":"work","line":5,"depth":0,"locals":{"i":2,"acc":3}}
{"seq":15,"t_ns":130,"tid":1,"event":"return","file":"/app/worker.py","func":"work","line":6,"depth":0}
{"seq":16,"t_ns":140,"tid":0,"event":"line","file":"/app/app.py","func":"<module>","line":5,"depth":0,"locals":{"y":"hi","z":{"type":"list","id":4660,"len":2,"items":[1,2]}}}
{"seq":17,"t_ns":150,"tid":0,"event":"return","file":"/app/app.py","func":"<module>","line":5,"depth":0}
)";

TEST(Export, JsonlOfTheSample) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  ExportOptions o;
  o.file = dir.file("a.rwd");
  o.output = dir.file("out.jsonl");
  Captured c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  EXPECT_EQ(c.err, "");
  EXPECT_EQ(read_file(o.output), kSampleJsonl);

  o.output = "-";
  c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  EXPECT_EQ(c.out, kSampleJsonl);
}

TEST(Export, DamagedRecordingExportsWhatPrecedesTheDamage) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  std::string error;
  auto rec = reader::Recording::open(dir.file("a.rwd"), &error);
  ASSERT_TRUE(rec) << error;
  std::string bytes = read_file(dir.file("a.rwd"));
  uint64_t cut = rec->summary().chunks(2).file_offset() + 70;  // inside the third chunk
  write_file(dir.file("cut.rwd"), bytes.substr(0, cut));
  ExportOptions o;
  o.file = dir.file("cut.rwd");
  Captured c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  std::string expected = kSampleJsonl;
  expected = expected.substr(0, expected.find("{\"event\":\"loss\""));
  EXPECT_EQ(c.out, expected);
  EXPECT_NE(c.err.find("pyrewind: warning: " + o.file + ": file truncated at byte " + std::to_string(cut) +
                       " inside chunk 3"),
            std::string::npos)
      << c.err;

  // A corrupt chunk in a finished file: the same, reported when it is reached.
  bytes[rec->summary().chunks(1).file_offset() + 70] ^= 1;
  write_file(dir.file("corrupt.rwd"), bytes);
  o.file = dir.file("corrupt.rwd");
  c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  EXPECT_EQ(std::count(c.out.begin(), c.out.end(), '\n'), 6);
  EXPECT_NE(c.err.find("payload CRC mismatch"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("exported the 6 events before it"), std::string::npos) << c.err;
}

TEST(Export, Errors) {
  TempDir dir;
  ExportOptions o;
  o.file = dir.file("missing.rwd");
  Captured c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitBadRecording);
  EXPECT_EQ(c.err, "pyrewind: " + o.file + ": No such file or directory\n");
  EXPECT_EQ(c.out, "");

  write_file(dir.file("junk.rwd"), "junk junk junk junk");
  o.file = dir.file("junk.rwd");
  c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitBadRecording);
  EXPECT_EQ(c.err, "pyrewind: " + o.file + ": not a pyrewind recording (bad magic)\n");

  write_sample(dir.file("a.rwd"));
  o.file = dir.file("a.rwd");
  o.output = "/dev/full";
  c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitIoError);
  EXPECT_NE(c.err.find("pyrewind: disk full while writing /dev/full"), std::string::npos) << c.err;

  o.output = dir.file("no/such/dir/out.jsonl");
  c = capture(dir, [&] { return cli::export_command(o); });
  EXPECT_EQ(c.status, cli::kExitIoError);
  EXPECT_NE(c.err.find("No such file or directory"), std::string::npos) << c.err;
}

TEST(Export, BrokenPipeIsAnIoError) {
  TempDir dir;
  // Enough output to overflow the pipe buffer with the reader gone.
  RecordingBuilder b(dir.file("big.rwd"));
  uint64_t f = b.code("/b.py", "f", 1, {"i"});
  b.thread(0, 1, "MainThread");
  b.call(0, 1, f, 1, 0, {});
  for (int i = 0; i < 20000; ++i) b.line(0, 2 + i, f, 2, 0, {slot(0, integer(i))});
  ASSERT_TRUE(b.finish());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  ExportOptions o;
  o.file = dir.file("big.rwd");
  Captured c = capture(dir, [&] {
    int saved = dup(1);
    dup2(fds[1], 1);
    close(fds[1]);
    int status = cli::export_command(o);
    dup2(saved, 1);
    close(saved);
    return status;
  });
  EXPECT_EQ(c.status, cli::kExitIoError);
  EXPECT_NE(c.err.find("cannot write standard output: the reader closed the pipe"), std::string::npos) << c.err;
}

TEST(Info, TextAndJson) {
  TempDir dir;
  write_sample(dir.file("a.rwd"));
  InfoOptions o;
  o.file = dir.file("a.rwd");
  Captured c = capture(dir, [&] { return cli::info_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  EXPECT_EQ(c.err, "");
  for (const char* expected :
       {"Status:        complete\n", "Python:        cpython 3.12.1 (hexversion 0x030c01f0)\n",
        "Command:       python3 app.py 'arg with space'\n", "PID:           4242\n",
        "Working dir:   /home/user/project\n", "Host:          testhost\n", "Executable:    /usr/bin/python3\n",
        "Started:       2023-11-14T22:13:20.123Z\n", "Exit status:   exit code 3\n", "Code objects:  3\n",
        "Events:        18\n", "  line               10\n", "  exception_handled  1\n",
        "Losses:        7 records (700 bytes) dropped\n", "Threads:       2\n", "MainThread", "worker",
        "Agent messages:\n  tracing stopped: test\n", ", 3 chunks, format version 2\n"})
    EXPECT_NE(c.out.find(expected), std::string::npos) << expected << "\n---\n" << c.out;

  o.json = true;
  c = capture(dir, [&] { return cli::info_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  for (const char* expected :
       {R"("status":"complete","damage":null)", R"("python":{"implementation":"cpython","version":"3.12.1")",
        R"("argv":["python3","app.py","arg with space"])", R"("start_time":"2023-11-14T22:13:20.123Z")",
        R"("exit":{"code":3})", R"("chunk_count":3,"event_count":18)",
        R"("events_by_kind":{"call":3,"line":10,"return":3,"exception":1,"exception_handled":1})",
        R"("dropped_records":7,"dropped_bytes":700)",
        R"({"index":1,"native_id":1001,"name":"worker","events":5,"dropped_records":7,"first_time_ns":85,"last_time_ns":130})",
        R"("agent_messages":["tracing stopped: test"])"})
    EXPECT_NE(c.out.find(expected), std::string::npos) << expected << "\n---\n" << c.out;
  EXPECT_EQ(std::count(c.out.begin(), c.out.end(), '\n'), 1);
}

TEST(Info, SignalExitAndDamage) {
  TempDir dir;
  {
    RecordingBuilder b(dir.file("k.rwd"));
    b.thread(0, 1, "MainThread");
    ASSERT_TRUE(b.finish(-9));
  }
  InfoOptions o;
  o.file = dir.file("k.rwd");
  Captured c = capture(dir, [&] { return cli::info_command(o); });
  EXPECT_NE(c.out.find("Exit status:   killed by SIGKILL (signal 9)\n"), std::string::npos) << c.out;
  o.json = true;
  c = capture(dir, [&] { return cli::info_command(o); });
  EXPECT_NE(c.out.find(R"("exit":{"signal":9,"signal_name":"SIGKILL"})"), std::string::npos) << c.out;

  write_sample(dir.file("a.rwd"));
  std::string bytes = read_file(dir.file("a.rwd"));
  write_file(dir.file("cut.rwd"), bytes.substr(0, bytes.size() - 300));
  o.file = dir.file("cut.rwd");
  o.json = false;
  c = capture(dir, [&] { return cli::info_command(o); });
  EXPECT_EQ(c.status, cli::kExitOk);
  EXPECT_NE(c.err.find("pyrewind: warning: " + o.file + ": file truncated at byte"), std::string::npos) << c.err;
  EXPECT_NE(c.out.find("Status:        damaged: file truncated at byte"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("Exit status:   unknown (the recording was not finished)"), std::string::npos) << c.out;

  o.file = dir.file("nothing.rwd");
  c = capture(dir, [&] { return cli::info_command(o); });
  EXPECT_EQ(c.status, cli::kExitBadRecording);
  EXPECT_EQ(c.err, "pyrewind: " + o.file + ": No such file or directory\n");
}

}  // namespace
}  // namespace pyrewind
