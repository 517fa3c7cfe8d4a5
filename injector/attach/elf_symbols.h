// Symbols and sections of an ELF shared object or executable, read from the file on disk
// (64-bit, little-endian, x86-64), and where they sit in a process that mapped it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "injector/attach/proc_info.h"

namespace pyrewind::injector {

struct ElfSymbol {
  uint64_t value = 0;  // address in the file's own virtual address space
  uint64_t size = 0;
};

struct ElfSection {
  uint64_t address = 0;  // in the file's own virtual address space
  uint64_t size = 0;
};

class ElfFile {
 public:
  // nullptr (and `error`) if the file is unreadable or not a 64-bit ELF for this machine.
  // With `mapped`, the file must also be the one that mapping shows (same device and inode):
  // a library upgraded on disk since the process started has other addresses.
  static std::unique_ptr<ElfFile> open(const std::string& path, std::string* error, const Mapping* mapped = nullptr);
  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  // A defined, exported function or object (.dynsym, default versions only).
  std::optional<ElfSymbol> exported(const std::string& name) const;
  // The same, else a local one from .symtab, read on the first miss (an interpreter's .symtab
  // is large: what we normally look up is exported).
  std::optional<ElfSymbol> symbol(const std::string& name) const;
  // Every defined function in .dynsym and .symtab, for address-in-function checks.
  const std::vector<std::pair<std::string, ElfSymbol>>& functions() const;
  std::optional<ElfSection> section(const std::string& name) const;
  // Page-aligned virtual address of the PT_LOAD segment at file offset 0: the load bias of the
  // file in a process is where offset 0 is mapped minus this.
  uint64_t first_load_address() const { return first_load_address_; }

 private:
  class Reader;
  struct Table {  // a symbol table and its string table, as file ranges
    uint64_t offset = 0, size = 0, strings_offset = 0, strings_size = 0;
  };
  ElfFile();
  void read_symbols(const Table& table, bool dynamic, std::unordered_map<std::string, ElfSymbol>* into) const;

  std::unique_ptr<Reader> file_;
  std::optional<Table> dynsym_, symtab_;
  uint64_t versym_offset_ = 0, versym_size_ = 0;  // .gnu.version, parallel to .dynsym
  std::unordered_map<std::string, ElfSection> sections_;
  uint64_t first_load_address_ = 0;
  mutable bool symtab_read_ = false;
  std::unordered_map<std::string, ElfSymbol> exported_;
  mutable std::unordered_map<std::string, ElfSymbol> local_;
  mutable std::vector<std::pair<std::string, ElfSymbol>> functions_;
};

// An ELF file as one process mapped it.
struct MappedImage {
  std::string path;  // as the process sees it (from /proc/PID/maps)
  std::unique_ptr<ElfFile> elf;
  uint64_t bias = 0;  // add to a symbol's value for its address in the process
};

// Opens `path` (a path in /proc/PID/maps) as that process mapped it: through
// /proc/PID/map_files when we may, else /proc/PID/root/<path> checked to be the same file.
std::optional<MappedImage> open_mapped_image(pid_t pid, const std::vector<Mapping>& maps, const std::string& path,
                                             std::string* error);

}  // namespace pyrewind::injector
