#include "injector/attach/elf_symbols.h"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace pyrewind::injector {
namespace {

// Reads a whole section table entry range safely: every offset and size from the file is
// checked against the file size before use.
bool in_bounds(const std::string& data, uint64_t offset, uint64_t size) {
  return offset <= data.size() && size <= data.size() - offset;
}

template <typename T>
bool read_at(const std::string& data, uint64_t offset, T* out) {
  if (!in_bounds(data, offset, sizeof(T))) return false;
  std::memcpy(out, data.data() + offset, sizeof(T));
  return true;
}

}  // namespace

std::unique_ptr<ElfFile> ElfFile::open(const std::string& path, std::string* error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    *error = "cannot read " + path;
    return nullptr;
  }
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  Elf64_Ehdr header;
  if (!read_at(data, 0, &header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
      header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB ||
      header.e_machine != EM_X86_64) {
    *error = path + " is not a 64-bit x86-64 ELF file";
    return nullptr;
  }
  auto elf = std::unique_ptr<ElfFile>(new ElfFile);
  elf->entry_ = header.e_entry;
  elf->position_independent_ = header.e_type == ET_DYN;

  bool have_load = false;
  for (uint16_t i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr program;
    if (!read_at(data, header.e_phoff + uint64_t{i} * header.e_phentsize, &program)) break;
    if (program.p_type == PT_LOAD && (!have_load || program.p_vaddr < elf->first_load_address_)) {
      elf->first_load_address_ = program.p_vaddr & ~uint64_t{0xfff};
      have_load = true;
    }
  }

  std::vector<Elf64_Shdr> sections;
  for (uint16_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    if (!read_at(data, header.e_shoff + uint64_t{i} * header.e_shentsize, &section)) break;
    sections.push_back(section);
  }
  // .gnu.version marks non-default versions of a name (dlopen@GLIBC_2.2.5 next to the default
  // dlopen@@GLIBC_2.34) with the hidden bit: those are skipped.
  const Elf64_Shdr* versions = nullptr;
  for (const Elf64_Shdr& section : sections)
    if (section.sh_type == SHT_GNU_versym && in_bounds(data, section.sh_offset, section.sh_size)) versions = &section;
  for (const Elf64_Shdr& table : sections) {
    if (table.sh_type != SHT_DYNSYM && table.sh_type != SHT_SYMTAB) continue;
    if (table.sh_link >= sections.size() || table.sh_entsize != sizeof(Elf64_Sym)) continue;
    const Elf64_Shdr& strings = sections[table.sh_link];
    if (!in_bounds(data, table.sh_offset, table.sh_size) || !in_bounds(data, strings.sh_offset, strings.sh_size))
      continue;
    for (uint64_t at = 0; at + sizeof(Elf64_Sym) <= table.sh_size; at += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      read_at(data, table.sh_offset + at, &sym);
      const int type = ELF64_ST_TYPE(sym.st_info);
      uint16_t version = 0;
      if (table.sh_type == SHT_DYNSYM && versions &&
          read_at(data, versions->sh_offset + at / sizeof(Elf64_Sym) * sizeof(uint16_t), &version) &&
          (version & 0x8000) != 0)
        continue;
      if (sym.st_shndx == SHN_UNDEF || sym.st_name >= strings.sh_size || (type != STT_FUNC && type != STT_OBJECT))
        continue;
      const char* name = data.data() + strings.sh_offset + sym.st_name;
      const size_t max = strings.sh_size - sym.st_name;
      std::string text(name, strnlen(name, max));
      ElfSymbol symbol{sym.st_value, sym.st_size};
      if (type == STT_FUNC) elf->functions_.emplace_back(text, symbol);
      elf->symbols_.emplace(std::move(text), symbol);
    }
  }
  return elf;
}

std::optional<ElfSymbol> ElfFile::symbol(const std::string& name) const {
  auto it = symbols_.find(name);
  if (it == symbols_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> load_bias(const std::vector<Mapping>& maps, const std::string& path, const ElfFile& elf) {
  for (const Mapping& m : maps) {
    if (m.path == path && m.offset == 0) return m.start - elf.first_load_address();
  }
  return std::nullopt;
}

}  // namespace pyrewind::injector
