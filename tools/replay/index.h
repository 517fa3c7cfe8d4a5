// The replay index: the timeline's complete state (every thread's stack and locals) at the
// start of each chunk, so any step is reached by reading at most one chunk from its start
// instead of the whole recording from the beginning.
//
// Built by one pass over the recording and kept next to it as FILE.rwdi (or, when that
// directory is not writable, under $XDG_CACHE_HOME/pyrewind or ~/.cache/pyrewind). A cache
// that does not match the recording (size, mtime, start time, chunk count) or does not parse
// is rebuilt; it is never trusted further than the reader trusts a recording.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tools/reader/recording.h"
#include "tools/reader/timeline.h"

namespace pyrewind::replay {

class ReplayIndex {
 public:
  // Loads the cached index or builds (and caches) it. `progress(done, total)` is called now
  // and then while building. Never fails: without a usable cache it builds in memory.
  ReplayIndex(const reader::Recording& recording, const std::function<void(uint64_t, uint64_t)>& progress = {});

  size_t chunk_count() const { return checkpoints_.size(); }
  // A timeline positioned before the first packet of chunk `chunk` (< chunk_count()), with
  // every thread's stack and locals as they were there.
  std::unique_ptr<reader::Timeline> timeline_at(size_t chunk) const;
  // The chunk holding event `seq` (the last chunk whose first event is at or before it), and
  // the first chunk whose last event time is at or after `time_ns`.
  size_t chunk_of_seq(uint64_t seq) const;
  size_t chunk_of_time(uint64_t time_ns) const;

  // What chunk `chunk` holds (the code objects with events there, their lines and calls), and
  // the code objects' names, for searches that skip chunks where they cannot stop.
  const v1::ChunkContents& contents(size_t chunk) const { return contents_[chunk]; }
  const v1::IndexedCode* code(uint64_t id) const;

  // Where the cache is ("" when it could not be written) and whether it was loaded or built.
  const std::string& cache_path() const { return cache_path_; }
  bool loaded_from_cache() const { return loaded_; }

 private:
  bool load(const std::string& path);
  bool save(const std::string& path) const;
  void build(const std::function<void(uint64_t, uint64_t)>& progress);
  v1::IndexHeader expected_header() const;

  const reader::Recording& recording_;
  std::vector<std::string> checkpoints_;  // serialized v1::Checkpoint per chunk
  std::vector<v1::ChunkContents> contents_;  // per chunk
  std::unordered_map<uint64_t, v1::IndexedCode> codes_;
  std::string cache_path_;
  bool loaded_ = false;
};

}  // namespace pyrewind::replay
