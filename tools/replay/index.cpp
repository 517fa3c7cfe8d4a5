#include "tools/replay/index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

namespace pyrewind::replay {
namespace {

constexpr char kMagic[8] = {'P', 'Y', 'R', 'W', 'I', 'D', 'X', '1'};
constexpr uint32_t kIndexVersion = 1;
constexpr uint64_t kMaxMessage = 256u << 20;  // far above any real checkpoint; guards bad input

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

bool get_varint(const std::string& in, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    const auto byte = static_cast<uint8_t>(in[(*pos)++]);
    *v |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// The next length-prefixed message of `in` at `*pos`, checked against what is left.
bool next_message(const std::string& in, size_t* pos, std::string_view* message) {
  uint64_t length = 0;
  if (!get_varint(in, pos, &length) || length > kMaxMessage || length > in.size() - *pos) return false;
  *message = std::string_view(in).substr(*pos, length);
  *pos += length;
  return true;
}

std::string cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/pyrewind";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/pyrewind";
  return "";
}

std::string beside(const std::string& path) {
  const std::string suffix = ".rwd";
  if (path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
    return path + "i";
  return path + ".rwdi";
}

}  // namespace

ReplayIndex::ReplayIndex(const reader::Recording& recording, const std::function<void(uint64_t, uint64_t)>& progress)
    : recording_(recording) {
  const std::string near = beside(recording.path());
  std::string in_cache;
  if (const std::string dir = cache_dir(); !dir.empty()) {
    char* absolute = realpath(recording.path().c_str(), nullptr);
    const std::string key = absolute ? absolute : recording.path();
    std::free(absolute);
    char name[32];
    std::snprintf(name, sizeof name, "%016zx.rwdi", std::hash<std::string>{}(key));
    in_cache = dir + "/" + name;
  }
  for (const std::string& candidate : {near, in_cache}) {
    if (!candidate.empty() && load(candidate)) {
      cache_path_ = candidate;
      loaded_ = true;
      return;
    }
  }
  build(progress);
  if (save(near)) {
    cache_path_ = near;
  } else if (!in_cache.empty()) {
    const std::string dir = cache_dir();
    ::mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0700);
    ::mkdir(dir.c_str(), 0700);
    if (save(in_cache)) cache_path_ = in_cache;
  }
}

v1::IndexHeader ReplayIndex::expected_header() const {
  v1::IndexHeader h;
  h.set_index_version(kIndexVersion);
  h.set_recording_size(recording_.file_size());
  struct stat st {};
  if (::fstat(recording_.fd(), &st) == 0)
    h.set_recording_mtime_ns(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  h.set_recording_start_wall_ns(recording_.header().start_wall_time_ns());
  h.set_chunk_count(static_cast<uint64_t>(recording_.summary().chunks_size()));
  return h;
}

bool ReplayIndex::load(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (data.size() < sizeof kMagic || data.compare(0, sizeof kMagic, kMagic, sizeof kMagic) != 0) return false;
  size_t pos = sizeof kMagic;
  std::string_view message;
  v1::IndexHeader header;
  if (!next_message(data, &pos, &message) || !header.ParseFromArray(message.data(), static_cast<int>(message.size())))
    return false;
  const v1::IndexHeader expected = expected_header();
  if (header.SerializeAsString() != expected.SerializeAsString()) return false;
  v1::CodeTable table;
  if (!next_message(data, &pos, &message) || !table.ParseFromArray(message.data(), static_cast<int>(message.size())))
    return false;
  std::vector<std::string> checkpoints;
  std::vector<v1::ChunkContents> contents;
  while (pos < data.size()) {
    v1::Checkpoint checkpoint;
    if (!next_message(data, &pos, &message) ||
        !checkpoint.ParseFromArray(message.data(), static_cast<int>(message.size())) ||
        checkpoint.chunk_index() != checkpoints.size())
      return false;
    checkpoints.emplace_back(message);
    v1::ChunkContents chunk;
    if (!next_message(data, &pos, &message) || !chunk.ParseFromArray(message.data(), static_cast<int>(message.size())) ||
        chunk.chunk_index() != contents.size())
      return false;
    contents.push_back(std::move(chunk));
  }
  if (checkpoints.empty() || checkpoints.size() > expected.chunk_count()) return false;
  checkpoints_ = std::move(checkpoints);
  contents_ = std::move(contents);
  for (v1::IndexedCode& code : *table.mutable_codes()) codes_[code.id()] = std::move(code);
  return true;
}

bool ReplayIndex::save(const std::string& path) const {
  std::string data(kMagic, sizeof kMagic);
  auto append = [&data](const std::string& message) {
    put_varint(data, message.size());
    data += message;
  };
  append(expected_header().SerializeAsString());
  v1::CodeTable table;
  for (const auto& [id, code] : codes_) *table.add_codes() = code;
  append(table.SerializeAsString());
  for (size_t i = 0; i < checkpoints_.size(); ++i) {
    append(checkpoints_[i]);
    append(contents_[i].SerializeAsString());
  }
  // Written aside and renamed: a reader never sees half an index.
  const std::string temporary = path + ".tmp" + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);  // it holds recorded values
  if (fd < 0) return false;
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool ok = ::close(fd) == 0 && written == data.size() && ::rename(temporary.c_str(), path.c_str()) == 0;
  if (!ok) ::unlink(temporary.c_str());
  return ok;
}

void ReplayIndex::build(const std::function<void(uint64_t, uint64_t)>& progress) {
  const auto total = static_cast<uint64_t>(recording_.summary().chunks_size());
  reader::Timeline timeline(recording_);
  timeline.stop_at_chunk_starts(true);
  // Per code object of the chunk being read: its lines and whether it was called.
  std::map<uint64_t, std::pair<std::set<uint32_t>, bool>> in_chunk;
  std::set<uint32_t> threads_in_chunk;
  auto end_chunk = [&] {
    if (checkpoints_.empty()) return;
    v1::ChunkContents chunk;
    chunk.set_chunk_index(contents_.size());
    for (const auto& [id, seen] : in_chunk) {
      v1::CodeInChunk& code = *chunk.add_codes();
      code.set_code_id(id);
      for (uint32_t line : seen.first) code.add_lines(line);
      code.set_called(seen.second);
    }
    for (uint32_t thread : threads_in_chunk) chunk.add_threads(thread);
    contents_.push_back(std::move(chunk));
    in_chunk.clear();
    threads_in_chunk.clear();
  };
  while (timeline.next()) {
    if (timeline.type() == reader::ItemType::kEvent) {
      const reader::Step& s = timeline.step();
      auto& seen = in_chunk[s.code->id];
      threads_in_chunk.insert(s.thread);
      if (s.kind == v1::EVENT_LINE) seen.first.insert(s.line);
      if (s.kind == v1::EVENT_CALL) seen.second = true;
      if (!codes_.count(s.code->id) && s.code->resolved) {
        v1::IndexedCode& code = codes_[s.code->id];
        code.set_id(s.code->id);
        code.set_file(s.code->file);
        code.set_qualified_name(s.code->qualified_name);
      }
      continue;
    }
    if (timeline.type() != reader::ItemType::kChunkStart) continue;
    end_chunk();
    if (checkpoints_.size() >= total) break;  // the start of what follows the last chunk
    v1::Checkpoint checkpoint = timeline.checkpoint();
    checkpoint.set_chunk_index(checkpoints_.size());
    checkpoints_.push_back(checkpoint.SerializeAsString());
    if (progress) progress(checkpoints_.size(), total);
  }
  if (contents_.size() < checkpoints_.size()) end_chunk();  // stopped inside a chunk (damage)
  if (checkpoints_.empty()) {
    checkpoints_.push_back(v1::Checkpoint().SerializeAsString());
    contents_.emplace_back();
  }
}

const v1::IndexedCode* ReplayIndex::code(uint64_t id) const {
  auto it = codes_.find(id);
  return it == codes_.end() ? nullptr : &it->second;
}

std::unique_ptr<reader::Timeline> ReplayIndex::timeline_at(size_t chunk) const {
  chunk = std::min(chunk, checkpoints_.size() - 1);
  v1::Checkpoint state;
  if (!state.ParseFromString(checkpoints_[chunk])) state.Clear();
  return std::make_unique<reader::Timeline>(recording_, chunk, state);
}

size_t ReplayIndex::chunk_of_seq(uint64_t seq) const {
  const auto& chunks = recording_.summary().chunks();
  size_t chunk = 0;
  for (size_t lo = 0, hi = std::min<size_t>(chunks.size(), checkpoints_.size()); lo < hi;) {
    const size_t mid = (lo + hi) / 2;
    if (chunks[static_cast<int>(mid)].first_seq() <= seq) {
      chunk = mid;
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return chunk;
}

size_t ReplayIndex::chunk_of_time(uint64_t time_ns) const {
  const auto& chunks = recording_.summary().chunks();
  const size_t n = std::min<size_t>(chunks.size(), checkpoints_.size());
  for (size_t i = 0; i < n; ++i)
    if (chunks[static_cast<int>(i)].last_time_ns() >= time_ns) return i;
  return n ? n - 1 : 0;
}

}  // namespace pyrewind::replay
