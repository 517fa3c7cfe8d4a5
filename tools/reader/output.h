// Buffered output to a file or stdout for exporters, with every write error reported (disk
// full, broken pipe) instead of being lost in stdio.
#pragma once

#include <string>
#include <string_view>

namespace pyrewind::reader {

class OutputFile {
 public:
  OutputFile() = default;
  ~OutputFile();  // closes a file it opened (without reporting; call close() to check)
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // "-" = standard output. Creates or truncates a file. False with error() set on failure.
  bool open(const std::string& path);

  // Appends; flushes when the buffer is full. False once any write failed.
  bool write(std::string_view bytes);
  // The buffer exporters append to directly, then call commit().
  std::string& buffer() { return buffer_; }
  bool commit() { return buffer_.size() < kFlushAt || flush(); }

  bool flush();
  bool close();  // flush, and close a file (reports errors close() finds, e.g. NFS quota)

  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }

 private:
  static constexpr size_t kFlushAt = 256 * 1024;
  bool fail(int err);

  int fd_ = -1;
  bool owned_ = false;
  bool failed_ = false;
  std::string name_;
  std::string error_;
  std::string buffer_;
};

}  // namespace pyrewind::reader
