#include "injector/attach/elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace pyrewind::injector {
namespace {

// Reads only the parts of the file that are needed (headers, symbol and string tables): an
// interpreter library can be tens of megabytes. Every offset and size from the file is checked
// against the file size before use.
class FileReader {
 public:
  explicit FileReader(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    struct stat st {};
    if (fd_ >= 0 && fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
  }
  ~FileReader() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  bool in_bounds(uint64_t offset, uint64_t size) const { return offset <= size_ && size <= size_ - offset; }
  bool read(uint64_t offset, void* out, uint64_t size) const {
    if (!in_bounds(offset, size)) return false;
    auto* bytes = static_cast<char*>(out);
    for (uint64_t done = 0; done < size;) {
      const ssize_t n = pread(fd_, bytes + done, size - done, static_cast<off_t>(offset + done));
      if (n <= 0) return false;
      done += static_cast<uint64_t>(n);
    }
    return true;
  }
  template <typename T>
  bool read_at(uint64_t offset, T* out) const {
    return read(offset, out, sizeof(T));
  }
  bool read_section(uint64_t offset, uint64_t size, std::string* out) const {
    if (!in_bounds(offset, size)) return false;
    out->resize(size);
    return read(offset, out->data(), size);
  }

 private:
  int fd_;
  uint64_t size_ = 0;
};

}  // namespace

std::unique_ptr<ElfFile> ElfFile::open(const std::string& path, std::string* error) {
  FileReader file(path);
  if (!file.ok()) {
    *error = "cannot read " + path;
    return nullptr;
  }
  Elf64_Ehdr header;
  if (!file.read_at(0, &header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
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
    if (!file.read_at(header.e_phoff + uint64_t{i} * header.e_phentsize, &program)) break;
    if (program.p_type == PT_LOAD && (!have_load || program.p_vaddr < elf->first_load_address_)) {
      elf->first_load_address_ = program.p_vaddr & ~uint64_t{0xfff};
      have_load = true;
    }
  }

  std::vector<Elf64_Shdr> sections;
  for (uint16_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section;
    if (!file.read_at(header.e_shoff + uint64_t{i} * header.e_shentsize, &section)) break;
    sections.push_back(section);
  }
  // .gnu.version marks non-default versions of a name (dlopen@GLIBC_2.2.5 next to the default
  // dlopen@@GLIBC_2.34) with the hidden bit: those are skipped.
  std::string versions;
  for (const Elf64_Shdr& section : sections)
    if (section.sh_type == SHT_GNU_versym) file.read_section(section.sh_offset, section.sh_size, &versions);
  for (const Elf64_Shdr& table : sections) {
    // Only what the dynamic linker sees: the symbols we look up (Py_Version, dlopen, malloc &
    // co, _r_debug) are exported, and the full .symtab of an interpreter is large.
    if (table.sh_type != SHT_DYNSYM) continue;
    if (table.sh_link >= sections.size() || table.sh_entsize != sizeof(Elf64_Sym)) continue;
    std::string symbols, strings;
    if (!file.read_section(table.sh_offset, table.sh_size, &symbols) ||
        !file.read_section(sections[table.sh_link].sh_offset, sections[table.sh_link].sh_size, &strings))
      continue;
    for (uint64_t at = 0; at + sizeof(Elf64_Sym) <= symbols.size(); at += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      std::memcpy(&sym, symbols.data() + at, sizeof sym);
      const int type = ELF64_ST_TYPE(sym.st_info);
      const uint64_t version_at = at / sizeof(Elf64_Sym) * sizeof(uint16_t);
      uint16_t version = 0;
      if (version_at + sizeof version <= versions.size()) {
        std::memcpy(&version, versions.data() + version_at, sizeof version);
        if (version & 0x8000) continue;
      }
      if (sym.st_shndx == SHN_UNDEF || sym.st_name >= strings.size() || (type != STT_FUNC && type != STT_OBJECT))
        continue;
      const char* name = strings.data() + sym.st_name;
      std::string text(name, strnlen(name, strings.size() - sym.st_name));
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
