// Symbols of an ELF shared object or executable, read from the file on disk (64-bit,
// little-endian), and where they sit in a process that mapped it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "injector/attach/proc_info.h"

namespace pyrewind::injector {

struct ElfSymbol {
  uint64_t value = 0;  // address in the file's own virtual address space
  uint64_t size = 0;
};

class ElfFile {
 public:
  // nullptr (and `error`) if the file is unreadable or not a 64-bit ELF for this machine.
  static std::unique_ptr<ElfFile> open(const std::string& path, std::string* error);

  // Defined, exported functions and objects (.dynsym, default versions).
  std::optional<ElfSymbol> symbol(const std::string& name) const;
  // Every defined function symbol, for address-in-function checks.
  const std::vector<std::pair<std::string, ElfSymbol>>& functions() const { return functions_; }
  uint64_t entry() const { return entry_; }
  bool position_independent() const { return position_independent_; }
  // Virtual address of the first PT_LOAD segment (page-aligned): the load bias of a mapping is
  // its start minus this, for the mapping with file offset 0.
  uint64_t first_load_address() const { return first_load_address_; }

 private:
  std::unordered_map<std::string, ElfSymbol> symbols_;
  std::vector<std::pair<std::string, ElfSymbol>> functions_;
  uint64_t entry_ = 0;
  uint64_t first_load_address_ = 0;
  bool position_independent_ = false;
};

// Load bias of `path` in a process: where its file offset 0 is mapped, minus the ELF's first
// PT_LOAD address. nullopt if the file is not mapped.
std::optional<uint64_t> load_bias(const std::vector<Mapping>& maps, const std::string& path, const ElfFile& elf);

}  // namespace pyrewind::injector
