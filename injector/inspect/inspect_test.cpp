// Unit tests of the outside reader: remote memory reads that must fail cleanly on garbage
// addresses, line table decoding for each format, and a stack walk (and an asyncio task
// search) over random memory that must end (bounded, no crash) whatever it finds. Stacks of real interpreters are tested
// end to end (tests/e2e/test_dump.py).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "injector/inspect/layouts.h"
#include "injector/inspect/line_table.h"
#include "injector/inspect/native_stacks.h"
#include "injector/inspect/python_stacks.h"
#include "injector/inspect/remote_memory.h"

namespace pyrewind::inspect {
namespace {

// Two adjacent pages, the second one unmapped: the edge reads must not cross.
struct PageThenHole {
  PageThenHole() {
    void* pages = mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(pages, MAP_FAILED);
    base = static_cast<char*>(pages);
    munmap(base + kPage, kPage);
  }
  ~PageThenHole() { munmap(base, kPage); }
  static constexpr size_t kPage = 4096;
  char* base = nullptr;
};

uint64_t address_of(const void* p) { return reinterpret_cast<uint64_t>(p); }

TEST(RemoteMemory, ReadsMappedMemoryOfAProcess) {
  ProcessMemory memory(getpid());
  const char text[] = "hello from the other side";
  char copy[sizeof text] = {};
  ASSERT_TRUE(memory.read(address_of(text), copy, sizeof text));
  EXPECT_STREQ(copy, text);
  uint64_t value = 0;
  const uint64_t expected = 0x1122334455667788;
  ASSERT_TRUE(memory.read_value(address_of(&expected), &value));
  EXPECT_EQ(value, expected);
}

TEST(RemoteMemory, GarbageAddressesFailCleanly) {
  ProcessMemory memory(getpid());
  char out[64];
  for (uint64_t address : {uint64_t{0}, uint64_t{8}, uint64_t{4095}, uint64_t{1} << 47, ~uint64_t{0} - 8,
                           uint64_t{0xffff800000000000}, uint64_t{0x00007ffffffffff8}}) {
    EXPECT_FALSE(memory.read(address, out, sizeof out)) << std::hex << address;
  }
  PageThenHole pages;
  EXPECT_FALSE(memory.read(address_of(pages.base + PageThenHole::kPage), out, 8));
  EXPECT_EQ(memory.last_error(), EFAULT);
  // Across the edge: the part before it is mapped, the read still fails as a whole.
  EXPECT_FALSE(memory.read(address_of(pages.base + PageThenHole::kPage - 4), out, 8));
  EXPECT_TRUE(memory.read(address_of(pages.base + PageThenHole::kPage - 8), out, 8));
  // Random pointers: each read either succeeds or fails, never faults.
  std::mt19937_64 random(42);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t address = i % 2 ? random() : random() & ((uint64_t{1} << 47) - 1);
    (void)memory.read(address, out, 1 + random() % sizeof out);
  }
}

TEST(RemoteMemory, GoneProcessFails) {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  waitpid(child, &status, 0);
  ProcessMemory memory(child);
  const uint64_t value = 7;
  uint64_t out = 0;
  EXPECT_FALSE(memory.read_value(address_of(&value), &out));
  EXPECT_EQ(memory.last_error(), ESRCH);
}

TEST(RemoteMemory, CStringsAreBoundedAndStopAtUnmappedPages) {
  ProcessMemory memory(getpid());
  PageThenHole pages;
  char* end_of_page = pages.base + PageThenHole::kPage;
  std::memcpy(end_of_page - 4, "abc", 4);  // ends exactly at the hole
  std::string out;
  ASSERT_TRUE(memory.read_c_string(address_of(end_of_page - 4), 100, &out));
  EXPECT_EQ(out, "abc");
  std::memset(pages.base, 'x', PageThenHole::kPage);  // no terminator before the hole
  EXPECT_FALSE(memory.read_c_string(address_of(pages.base), 1 << 20, &out));
  EXPECT_FALSE(memory.read_c_string(address_of(pages.base), 10, &out));  // too long
}

// --- line tables --------------------------------------------------------------------------

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

TEST(LineTable, Lnotab39) {
  // Lines 10 (bytes 0-5), 12 (6-9), 11 (10-): deltas (6,+2), (4,-1).
  const std::string table = bytes({6, 2, 4, -1});
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, table, 10, 0), 10);
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, table, 10, 5), 10);
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, table, 10, 6), 12);
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, table, 10, 10), 11);
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, table, 10, 400), 11);
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, table, 10, -1), 10);
  EXPECT_EQ(line_for_address(PYREWIND_LNOTAB, bytes({6}), 10, 8), 10);  // odd length: ignored tail
}

TEST(LineTable, Linetable310) {
  // [0,4) line 5+1, then a zero-length entry moving the line by +2, [4,8) +1 more -> 9,
  // [8,10) no line, [10,12) 9-3.
  const std::string table = bytes({4, 1, 0, 2, 4, 1, 2, -128, 2, -3});
  EXPECT_EQ(line_for_address(PYREWIND_LINETABLE_310, table, 5, 0), 6);
  EXPECT_EQ(line_for_address(PYREWIND_LINETABLE_310, table, 5, 2), 6);
  EXPECT_EQ(line_for_address(PYREWIND_LINETABLE_310, table, 5, 4), 9);
  EXPECT_EQ(line_for_address(PYREWIND_LINETABLE_310, table, 5, 8), -1);
  EXPECT_EQ(line_for_address(PYREWIND_LINETABLE_310, table, 5, 10), 6);
  EXPECT_EQ(line_for_address(PYREWIND_LINETABLE_310, table, 5, 12), -1);  // past the end
}

TEST(LineTable, Locations311) {
  // Header 1CCCCLLL: code 13 (no columns, signed varint line delta), length 2 units.
  const int no_columns_2 = 0x80 | 13 << 3 | 1;
  const int long_form_1 = 0x80 | 14 << 3;  // line, end line, column, end column varints
  const int one_line1_1 = 0x80 | 11 << 3;  // +1, then two column bytes
  const int short_1 = 0x80 | 3 << 3;       // same line, one column byte
  const int none_1 = 0x80 | 15 << 3;
  const std::string table = bytes({no_columns_2, 2,                    // [0,4): +1 -> 21
                                   long_form_1, 0x48, 0x03, 0, 5, 9,   // [4,6): +100 -> 121
                                   one_line1_1, 4, 8,                  // [6,8): +1 -> 122
                                   short_1, 7,                         // [8,10): 122
                                   none_1,                             // [10,12): no line
                                   no_columns_2, 7});                  // [12,16): -3 -> 119
  const auto line = [&](int64_t address) { return line_for_address(PYREWIND_LOCATIONS, table, 20, address); };
  EXPECT_EQ(line(0), 21);
  EXPECT_EQ(line(2), 21);
  EXPECT_EQ(line(4), 121);
  EXPECT_EQ(line(6), 122);
  EXPECT_EQ(line(8), 122);
  EXPECT_EQ(line(10), -1);
  EXPECT_EQ(line(12), 119);
  EXPECT_EQ(line(14), 119);
  EXPECT_EQ(line(16), -1);
  EXPECT_EQ(line(-2), 20);
}

TEST(LineTable, GarbageTablesEnd) {
  std::mt19937 random(7);
  for (auto format : {PYREWIND_LNOTAB, PYREWIND_LINETABLE_310, PYREWIND_LOCATIONS}) {
    for (int i = 0; i < 2000; ++i) {
      std::string table(random() % 64, '\0');
      for (char& c : table) c = static_cast<char>(random());
      (void)line_for_address(format, table, static_cast<int>(random() % 1000), random() % 300);
    }
  }
}

// --- a stack walk over garbage ------------------------------------------------------------

// A fake address space: one block of bytes at `base`.
class FakeMemory : public Memory {
 public:
  FakeMemory(uint64_t base, std::vector<unsigned char> bytes) : base_(base), bytes_(std::move(bytes)) {}
  bool read(uint64_t address, void* out, size_t size) override {
    if (address < base_ || address - base_ > bytes_.size() || size > bytes_.size() - (address - base_)) return false;
    std::memcpy(out, bytes_.data() + (address - base_), size);
    return true;
  }

 private:
  uint64_t base_;
  std::vector<unsigned char> bytes_;
};

TEST(StackReader, SurvivesGarbageMemory) {
  constexpr uint64_t kBase = 0x500000000000;
  constexpr size_t kSize = 1 << 16;
  int versions = 0;
  for (int minor = 9; minor <= 13; ++minor) {
    const PythonLayout* layout = layout_for(3, minor);
    if (layout == nullptr) continue;
    ++versions;
    for (unsigned seed = 0; seed < 300; ++seed) {
      std::mt19937_64 random(seed);
      // Mostly pointers back into the block (so chains go somewhere), some small numbers,
      // some noise: what a torn or stale structure looks like.
      std::vector<unsigned char> bytes(kSize);
      for (size_t at = 0; at + 8 <= kSize; at += 8) {
        uint64_t word = 0;
        switch (random() % 4) {
          case 0: case 1: word = kBase + (random() % kSize & ~uint64_t{7}); break;
          case 2: word = random() % 64; break;
          default: word = random(); break;
        }
        std::memcpy(bytes.data() + at, &word, 8);
      }
      FakeMemory memory(kBase, std::move(bytes));
      PythonTarget target;
      target.pid = getpid();
      target.major = 3;
      target.minor = minor;
      target.layout = layout;
      target.runtime = kBase + (random() % (kSize / 2) & ~uint64_t{7});
      // Type objects somewhere in the block, so some objects "check out" as code, str, ...
      uint64_t* types[] = {&target.types.code, &target.types.frame, &target.types.cell, &target.types.str,
                           &target.types.bytes, &target.types.int_, &target.types.bool_, &target.types.float_,
                           &target.types.list, &target.types.tuple, &target.types.dict, &target.types.none,
                           &target.types.set, &target.types.coroutine, &target.types.generator,
                           &target.types.weakref, &target.types.module};
      for (uint64_t* type : types) *type = kBase + (random() % kSize & ~uint64_t{7});
      StackReader reader(target, memory);
      StackOptions options;
      options.locals = true;
      options.max_frames = 64;
      options.max_threads = 16;
      options.max_interpreters = 4;
      Snapshot snapshot;
      std::string error;
      if (reader.read(options, &snapshot, &error)) {
        EXPECT_LE(snapshot.threads.size(), options.max_threads * options.max_interpreters);
        for (const ThreadStack& thread : snapshot.threads) EXPECT_LE(thread.frames.size(), options.max_frames);
      } else {
        EXPECT_FALSE(error.empty());
      }
      // The asyncio tasks: modules, dicts, sets, tasks and await chains all made of garbage.
      options.max_tasks = 8;
      options.max_awaits = 8;
      AsyncioTasks tasks;
      reader.read_asyncio(options, &tasks);
      EXPECT_LE(tasks.tasks.size(), options.max_tasks);
      for (const AsyncTask& task : tasks.tasks) EXPECT_LE(task.frames.size(), options.max_awaits);
      EXPECT_TRUE(tasks.unreadable.empty() || tasks.tasks.empty());
    }
  }
  EXPECT_GT(versions, 0) << "no layout table was built (no Python headers found at configure time)";
}

TEST(Layouts, EachBuiltTableIsConsistent) {
  for (int minor = 9; minor <= 13; ++minor) {
    const PythonLayout* layout = layout_for(3, minor);
    if (layout == nullptr) continue;
    SCOPED_TRACE(minor);
    EXPECT_EQ(layout->minor, static_cast<uint32_t>(minor));
    EXPECT_EQ(layout->header_hexversion >> 16, 0x300u | minor);
    EXPECT_EQ(layout->frame_model, minor >= 11 ? PYREWIND_INTERPRETER_FRAMES : PYREWIND_FRAME_OBJECTS);
    EXPECT_EQ(layout->line_table_format,
              minor >= 11 ? PYREWIND_LOCATIONS : minor == 10 ? PYREWIND_LINETABLE_310 : PYREWIND_LNOTAB);
    // Fields every version has, and a frame pointer reachable one way or the other.
    for (uint32_t offset : {layout->runtime_interpreters_head, layout->interp_threads_head, layout->tstate_next,
                            layout->tstate_interp, layout->frame_previous, layout->frame_code, layout->code_filename,
                            layout->code_linetable, layout->unicode_state})
      EXPECT_NE(offset, PYREWIND_ABSENT);
    EXPECT_TRUE(layout->tstate_frame != PYREWIND_ABSENT || layout->cframe_current_frame != PYREWIND_ABSENT);
    EXPECT_NE(layout->runtime_gil == PYREWIND_ABSENT, layout->interp_gil_pointer == PYREWIND_ABSENT);
    EXPECT_EQ(layout->debug_checks != 0, minor >= 13);
    EXPECT_EQ(layout->frame_is_entry != PYREWIND_ABSENT, minor == 11);  // 3.12+ mark it with shim frames
    // asyncio: a coroutine's frame one way or the other, and the C Task's fields in order.
    EXPECT_NE(layout->gen_frame == PYREWIND_ABSENT, layout->gen_iframe == PYREWIND_ABSENT);
    EXPECT_LT(layout->task_state, layout->task_fut_waiter);
    EXPECT_EQ(layout->task_coro, layout->task_fut_waiter + 8);
    EXPECT_EQ(layout->task_name, layout->task_coro + 8);
    EXPECT_LT(layout->task_name, layout->task_size);
  }
  EXPECT_EQ(layout_for(3, 8), nullptr);
  EXPECT_EQ(layout_for(2, 7), nullptr);
}

// Each eval-loop C frame stands for the Python frames up to the next eval_entry one.
TEST(MergeStacks, EvalLoopFramesBecomeThePythonFramesTheyRun) {
  auto py = [](const char* name, bool entry) {
    Frame f;
    f.function = name;
    f.eval_entry = entry;
    return f;
  };
  auto c = [](const char* symbol) {
    NativeFrame f;
    f.symbol = symbol;
    f.eval_loop = std::string(symbol) == "_PyEval_EvalFrameDefault";
    return f;
  };
  auto names = [](const std::vector<MergedFrame>& merged) {
    std::vector<std::string> out;
    for (const MergedFrame& m : merged) out.push_back(m.native ? "[" + m.c_frame.symbol + "]" : m.python.function);
    return out;
  };
  // Two Python frames in one C call (3.11+), then a C function calling back into Python.
  const std::vector<Frame> python = {py("leaf", false), py("middle", true), py("callback", true),
                                     py("<module>", true)};
  const std::vector<NativeFrame> native = {c("clock_nanosleep"), c("time_sleep"), c("_PyEval_EvalFrameDefault"),
                                           c("qsort_r"), c("_PyEval_EvalFrameDefault"),
                                           c("_PyEval_EvalFrameDefault"), c("Py_RunMain")};
  EXPECT_EQ(names(merge_stacks(python, native)),
            (std::vector<std::string>{"[clock_nanosleep]", "[time_sleep]", "leaf", "middle", "[qsort_r]", "callback",
                                      "<module>", "[Py_RunMain]"}));
  // The unwind stopped early: the Python frames left follow; an eval frame with none left stays.
  EXPECT_EQ(names(merge_stacks(python, {c("read"), c("_PyEval_EvalFrameDefault")})),
            (std::vector<std::string>{"[read]", "leaf", "middle", "callback", "<module>"}));
  EXPECT_EQ(names(merge_stacks({}, {c("_PyEval_EvalFrameDefault"), c("main")})),
            (std::vector<std::string>{"[_PyEval_EvalFrameDefault]", "[main]"}));
}

}  // namespace
}  // namespace pyrewind::inspect
