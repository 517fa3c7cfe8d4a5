#include "tools/analysis/trace_formats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tools/analysis/scan.h"
#include "tools/reader/test_util.h"

namespace pyrewind::analysis {
namespace {

using namespace pyrewind::testing;

using Factory = std::unique_ptr<TraceWriter> (*)(const TraceSource&, reader::OutputFile&);

// Thread 0 (MainThread): main 0..40 calls f 10..30. Thread 1 (worker): g 5..25, and 3 of its
// records lost after 5.
class Formats : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("r.rwd");
    RecordingBuilder b(path_);
    b.thread(0, 100, "MainThread");
    b.thread(1, 101, "worker");
    const uint64_t main = b.code("/src/a.py", "main", 1, {});
    const uint64_t f = b.code("/src/a.py", "f", 3, {});
    const uint64_t g = b.code("/src/b;c.py", "g", 1, {});
    b.call(0, 0, main, 1, 0, {});
    b.call(1, 5, g, 1, 0, {});
    b.call(0, 10, f, 3, 1, {});
    b.loss(1, 3, 300);
    b.ret(1, 25, g, 2, 0, nullptr);
    b.ret(0, 30, f, 4, 1, nullptr);
    b.ret(0, 40, main, 2, 0, nullptr);
    ASSERT_TRUE(b.finish());
  }

  std::string write(Factory make, const std::string& from = "", const std::string& to = "") {
    Range range;
    std::string error;
    EXPECT_TRUE(Range::parse(from, to, -1, &range, &error)) << error;
    auto recording = reader::Recording::open(path_, &error);
    EXPECT_TRUE(recording) << error;
    if (!recording) return "";
    reader::Timeline timeline(*recording);
    const std::string out_path = dir_.file("out");
    reader::OutputFile out;
    EXPECT_TRUE(out.open(out_path)) << out.error();
    auto writer = make(TraceSource{*recording, timeline}, out);
    SpanBuilder builder(range, *writer);
    Progress progress("test", 0);
    scan(*recording, timeline, builder, progress, [](const reader::Step&) { return true; });
    EXPECT_TRUE(writer->finish(builder.last_time_ns())) << writer->error();
    EXPECT_TRUE(out.close()) << out.error();
    return read_file(out_path);
  }

  TempDir dir_;
  std::string path_;
};

TEST_F(Formats, Collapsed) {
  EXPECT_EQ(write(make_collapsed_writer),
            "g (/src/b:c.py:1) 20\n"
            "main (/src/a.py:1) 20\n"
            "main (/src/a.py:1);f (/src/a.py:3) 20\n");
  // From seq 2 (f's call, at 10): main and g were running.
  EXPECT_EQ(write(make_collapsed_writer, "2"),
            "g (/src/b:c.py:1) 15\n"
            "main (/src/a.py:1) 10\n"
            "main (/src/a.py:1);f (/src/a.py:3) 20\n");
}

TEST_F(Formats, CollapsedSumsInBoundedBatches) {
  std::string error;
  auto recording = reader::Recording::open(path_, &error);
  ASSERT_TRUE(recording) << error;
  reader::Timeline timeline(*recording);
  reader::OutputFile out;
  ASSERT_TRUE(out.open(dir_.file("stacks")));
  auto writer = make_collapsed_writer(TraceSource{*recording, timeline}, out);
  // More distinct stacks than one batch holds, then the first one again.
  std::vector<reader::CodeInfo> codes(70000);
  for (size_t i = 0; i < codes.size(); ++i) {
    codes[i].id = i;
    codes[i].qualified_name = "f" + std::to_string(i);
    codes[i].file = "/a.py";
    codes[i].first_line = 1;
  }
  uint64_t t = 0;
  auto call = [&](const reader::CodeInfo& code, uint64_t duration) {
    const Span span{0, 0, &code, 1, t, true};
    writer->begin(span);
    t += duration;
    writer->end(span, t);
  };
  for (const auto& code : codes) call(code, 5);
  call(codes[0], 7);
  ASSERT_TRUE(writer->finish(t));
  ASSERT_TRUE(out.close());
  const std::string text = read_file(dir_.file("stacks"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 70001);
  EXPECT_EQ(text.rfind("f0 (/a.py:1) 5\n", 0), 0u);        // the first batch, sorted
  EXPECT_NE(text.find("\nf0 (/a.py:1) 7\n"), std::string::npos);  // summed again after it
}

TEST_F(Formats, Chrome) {
  EXPECT_EQ(write(make_chrome_writer),
            "{\"traceEvents\":[\n"
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":4242,\"tid\":0,\"args\":{\"name\":\"app.py\"}},\n"
            "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":4242,\"tid\":0,\"args\":{\"name\":\"MainThread\"}},\n"
            "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":4242,\"tid\":0,\"args\":{\"sort_index\":0}},\n"
            "{\"ph\":\"B\",\"pid\":4242,\"tid\":0,\"ts\":0,\"name\":\"main\",\"cat\":\"python\","
            "\"args\":{\"file\":\"/src/a.py\",\"line\":1}},\n"
            "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":4242,\"tid\":1,\"args\":{\"name\":\"worker\"}},\n"
            "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":4242,\"tid\":1,\"args\":{\"sort_index\":1}},\n"
            "{\"ph\":\"B\",\"pid\":4242,\"tid\":1,\"ts\":0.005,\"name\":\"g\",\"cat\":\"python\","
            "\"args\":{\"file\":\"/src/b;c.py\",\"line\":1}},\n"
            "{\"ph\":\"B\",\"pid\":4242,\"tid\":0,\"ts\":0.010,\"name\":\"f\",\"cat\":\"python\","
            "\"args\":{\"file\":\"/src/a.py\",\"line\":3}},\n"
            "{\"ph\":\"i\",\"pid\":4242,\"tid\":1,\"ts\":0.005,\"s\":\"t\",\"name\":\"records lost\","
            "\"args\":{\"dropped_records\":3}},\n"
            "{\"ph\":\"E\",\"pid\":4242,\"tid\":1,\"ts\":0.025},\n"
            "{\"ph\":\"E\",\"pid\":4242,\"tid\":0,\"ts\":0.030},\n"
            "{\"ph\":\"E\",\"pid\":4242,\"tid\":0,\"ts\":0.040}\n"
            "],\"displayTimeUnit\":\"ns\",\"otherData\":{\"exporter\":\"pyrewind\",\"python\":\"3.12.1\"}}\n");
  // Frames running when the range starts are marked.
  EXPECT_NE(write(make_chrome_writer, "2").find("\"name\":\"main\",\"cat\":\"python\",\"args\":{\"file\":"
                                                "\"/src/a.py\",\"line\":1,\"running_before\":true}"),
            std::string::npos);
}

TEST_F(Formats, Speedscope) {
  EXPECT_EQ(write(make_speedscope_writer),
            "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"pyrewind\","
            "\"name\":\"app.py\",\"activeProfileIndex\":0,\"profiles\":[\n"
            "{\"type\":\"evented\",\"name\":\"MainThread (thread 0)\",\"unit\":\"nanoseconds\",\"startValue\":0,"
            "\"endValue\":40,\"events\":[{\"type\":\"O\",\"frame\":0,\"at\":0},{\"type\":\"O\",\"frame\":2,\"at\":10},"
            "{\"type\":\"C\",\"frame\":2,\"at\":30},{\"type\":\"C\",\"frame\":0,\"at\":40}]},\n"
            "{\"type\":\"evented\",\"name\":\"worker (thread 1)\",\"unit\":\"nanoseconds\",\"startValue\":5,"
            "\"endValue\":25,\"events\":[{\"type\":\"O\",\"frame\":1,\"at\":5},{\"type\":\"C\",\"frame\":1,\"at\":25}]}\n"
            "],\"shared\":{\"frames\":[\n"
            "{\"name\":\"main\",\"file\":\"/src/a.py\",\"line\":1},\n"
            "{\"name\":\"g\",\"file\":\"/src/b;c.py\",\"line\":1},\n"
            "{\"name\":\"f\",\"file\":\"/src/a.py\",\"line\":3}\n"
            "]}}\n");
}

std::string run(const std::string& command) {
  std::string output;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return output;
  char block[4096];
  size_t n;
  while ((n = std::fread(block, 1, sizeof block, pipe.get())) > 0) output.append(block, n);
  return output;
}

TEST_F(Formats, PerfettoDecodesWithItsSchema) {
  if (run("command -v protoc").empty()) GTEST_SKIP() << "protoc is not installed";
  const std::string trace = dir_.file("trace.pftrace");
  write_file(trace, write(make_perfetto_writer));
  const std::string proto = PERFETTO_SUBSET_PROTO;
  const std::string text =
      run("protoc --decode=perfetto.protos.Trace --proto_path=" + proto.substr(0, proto.rfind('/')) + " " +
          proto.substr(proto.rfind('/') + 1) + " < " + trace + " 2>&1");
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  };
  ASSERT_EQ(text.rfind("packet {", 0), 0u) << text;  // decoded, not an error message
  EXPECT_EQ(count("packet {"), 10u) << text;  // process, 2 threads, 3 begins, a loss, 3 ends
  EXPECT_EQ(count("sequence_flags: 1"), 1u);         // the first packet clears the interning state
  EXPECT_EQ(count("trusted_packet_sequence_id: 1"), 10u);
  EXPECT_EQ(count("type: TYPE_SLICE_BEGIN"), 3u);
  EXPECT_EQ(count("type: TYPE_SLICE_END"), 3u);
  for (const char* part :
       {"process {\n      pid: 4242\n      cmdline: \"python3\"\n      cmdline: \"app.py\"\n      cmdline: "
        "\"arg with space\"\n      process_name: \"app.py\"\n    }",
        "uuid: 2\n    thread {\n      pid: 4242\n      tid: 100\n      thread_name: \"MainThread\"\n    }\n"
        "    parent_uuid: 1",
        "uuid: 3\n    thread {\n      pid: 4242\n      tid: 101\n      thread_name: \"worker\"\n    }\n"
        "    parent_uuid: 1",
        "timestamp: 10\n  trusted_packet_sequence_id: 1\n  track_event {\n    type: TYPE_SLICE_BEGIN\n"
        "    name_iid: 4\n    track_uuid: 2\n    source_location_iid: 4\n  }\n  interned_data {\n"
        "    event_names {\n      iid: 4\n      name: \"f\"\n    }\n    source_locations {\n      iid: 4\n"
        "      file_name: \"/src/a.py\"\n      function_name: \"f\"\n      line_number: 3\n    }",
        "timestamp: 5\n  trusted_packet_sequence_id: 1\n  track_event {\n    debug_annotations {\n"
        "      uint_value: 3\n      name: \"dropped_records\"\n    }\n    type: TYPE_INSTANT\n    name_iid: 1\n"
        "    track_uuid: 3\n  }\n  interned_data {\n    event_names {\n      iid: 1\n      name: \"records lost\"",
        "timestamp: 25\n  trusted_packet_sequence_id: 1\n  track_event {\n    type: TYPE_SLICE_END\n"
        "    track_uuid: 3\n  }",
        "timestamp: 40\n  trusted_packet_sequence_id: 1\n  track_event {\n    type: TYPE_SLICE_END\n"
        "    track_uuid: 2\n  }"})
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n---\n" << text;
}

}  // namespace
}  // namespace pyrewind::analysis
