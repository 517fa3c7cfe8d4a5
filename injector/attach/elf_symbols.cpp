#include "injector/attach/elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "injector/launch/process_util.h"

namespace pyrewind::injector {

// Reads only the parts of the file that are needed (headers, symbol and string tables): an
// interpreter library can be tens of megabytes. Every offset and size from the file is checked
// against the file size before use.
class ElfFile::Reader {
 public:
  explicit Reader(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ && fstat(fd_.get(), &stat_) == 0) size_ = static_cast<uint64_t>(stat_.st_size);
  }
  bool ok() const { return static_cast<bool>(fd_); }
  const struct stat& stat() const { return stat_; }
  bool read(uint64_t offset, void* out, uint64_t size) const {
    if (offset > size_ || size > size_ - offset) return false;
    auto* bytes = static_cast<char*>(out);
    for (uint64_t done = 0; done < size;) {
      const ssize_t n = pread(fd_.get(), bytes + done, size - done, static_cast<off_t>(offset + done));
      if (n <= 0) return false;
      done += static_cast<uint64_t>(n);
    }
    return true;
  }
  template <typename T>
  bool read_at(uint64_t offset, T* out) const {
    return read(offset, out, sizeof(T));
  }
  bool read_string(uint64_t offset, uint64_t size, std::string* out) const {
    if (offset > size_ || size > size_ - offset) return false;
    out->resize(size);
    return read(offset, out->data(), size);
  }

 private:
  UniqueFd fd_;
  struct stat stat_ {};
  uint64_t size_ = 0;
};

ElfFile::ElfFile() = default;
ElfFile::~ElfFile() = default;

std::unique_ptr<ElfFile> ElfFile::open(const std::string& path, std::string* error, const Mapping* mapped) {
  auto elf = std::unique_ptr<ElfFile>(new ElfFile);
  elf->file_ = std::make_unique<Reader>(path);
  const Reader& file = *elf->file_;
  if (!file.ok()) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (mapped && (file.stat().st_dev != mapped->device || file.stat().st_ino != mapped->inode)) {
    *error = path + " is not the file the process mapped (replaced on disk since it started?)";
    return nullptr;
  }
  Elf64_Ehdr header;
  if (!file.read_at(0, &header) || std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
      header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB ||
      header.e_machine != EM_X86_64) {
    *error = path + " is not a 64-bit x86-64 ELF file";
    return nullptr;
  }

  // Program and section headers, each table in one read. The segment that maps file offset 0
  // (the ELF header) is the one a mapping with offset 0 shows: its address gives the load bias.
  std::vector<Elf64_Phdr> programs(header.e_phentsize == sizeof(Elf64_Phdr) ? header.e_phnum : 0);
  std::vector<Elf64_Shdr> sections(header.e_shentsize == sizeof(Elf64_Shdr) ? header.e_shnum : 0);
  if (!file.read(header.e_phoff, programs.data(), programs.size() * sizeof(Elf64_Phdr))) programs.clear();
  if (!file.read(header.e_shoff, sections.data(), sections.size() * sizeof(Elf64_Shdr))) sections.clear();
  bool have_load = false;
  for (const Elf64_Phdr& program : programs) {
    if (program.p_type != PT_LOAD || (program.p_offset & ~uint64_t{0xfff}) != 0) continue;
    const uint64_t address = program.p_vaddr & ~uint64_t{0xfff};
    if (!have_load || address < elf->first_load_address_) elf->first_load_address_ = address;
    have_load = true;
  }

  std::string names;
  if (header.e_shstrndx < sections.size())
    file.read_string(sections[header.e_shstrndx].sh_offset, sections[header.e_shstrndx].sh_size, &names);
  for (const Elf64_Shdr& section : sections) {
    if ((section.sh_flags & SHF_ALLOC) && section.sh_name < names.size())
      elf->sections_.emplace(names.c_str() + section.sh_name, ElfSection{section.sh_addr, section.sh_size});
    if (section.sh_type == SHT_GNU_versym) {
      elf->versym_offset_ = section.sh_offset;
      elf->versym_size_ = section.sh_size;
    }
    if ((section.sh_type == SHT_DYNSYM || section.sh_type == SHT_SYMTAB) && section.sh_link < sections.size() &&
        section.sh_entsize == sizeof(Elf64_Sym)) {
      const Elf64_Shdr& strings = sections[section.sh_link];
      Table table{section.sh_offset, section.sh_size, strings.sh_offset, strings.sh_size};
      (section.sh_type == SHT_DYNSYM ? elf->dynsym_ : elf->symtab_) = table;
    }
  }
  if (elf->dynsym_) elf->read_symbols(*elf->dynsym_, true, &elf->exported_);
  return elf;
}

void ElfFile::read_symbols(const Table& table, bool dynamic, std::unordered_map<std::string, ElfSymbol>* into) const {
  std::string symbols, strings, versions;
  if (!file_->read_string(table.offset, table.size, &symbols) ||
      !file_->read_string(table.strings_offset, table.strings_size, &strings))
    return;
  // .gnu.version marks non-default versions of a name (dlopen@GLIBC_2.2.5 next to the default
  // dlopen@@GLIBC_2.34) with the hidden bit: those are skipped.
  if (dynamic) file_->read_string(versym_offset_, versym_size_, &versions);
  for (uint64_t at = 0; at + sizeof(Elf64_Sym) <= symbols.size(); at += sizeof(Elf64_Sym)) {
    Elf64_Sym sym;
    std::memcpy(&sym, symbols.data() + at, sizeof sym);
    const int type = ELF64_ST_TYPE(sym.st_info);
    if (sym.st_shndx == SHN_UNDEF || sym.st_name >= strings.size() || (type != STT_FUNC && type != STT_OBJECT))
      continue;
    const uint64_t version_at = at / sizeof(Elf64_Sym) * sizeof(uint16_t);
    uint16_t version = 0;
    if (version_at + sizeof version <= versions.size()) {
      std::memcpy(&version, versions.data() + version_at, sizeof version);
      if (version & 0x8000) continue;
    }
    const char* name = strings.data() + sym.st_name;
    std::string text(name, strnlen(name, strings.size() - sym.st_name));
    const ElfSymbol symbol{sym.st_value, sym.st_size};
    if (type == STT_FUNC) functions_.emplace_back(text, symbol);
    into->emplace(std::move(text), symbol);  // of several local ones of that name, the first
  }
}

std::optional<ElfSymbol> ElfFile::exported(const std::string& name) const {
  auto it = exported_.find(name);
  if (it == exported_.end()) return std::nullopt;
  return it->second;
}

std::optional<ElfSymbol> ElfFile::symbol(const std::string& name) const {
  if (auto found = exported(name)) return found;
  functions();  // reads .symtab once
  auto it = local_.find(name);
  if (it == local_.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::pair<std::string, ElfSymbol>>& ElfFile::functions() const {
  if (symtab_ && !symtab_read_) {
    symtab_read_ = true;
    read_symbols(*symtab_, false, &local_);
  }
  return functions_;
}

std::optional<ElfSection> ElfFile::section(const std::string& name) const {
  auto it = sections_.find(name);
  if (it == sections_.end()) return std::nullopt;
  return it->second;
}

std::optional<MappedImage> open_mapped_image(pid_t pid, const std::vector<Mapping>& maps, const std::string& path,
                                             std::string* error) {
  for (const Mapping& m : maps) {
    if (m.path != path || m.offset != 0) continue;
    MappedImage image;
    image.path = path;
    std::string ignored;
    image.elf = ElfFile::open(mapped_file(pid, m), &ignored);
    if (!image.elf) image.elf = ElfFile::open(path_in_process(pid, path), error, &m);
    if (!image.elf) return std::nullopt;
    image.bias = m.start - image.elf->first_load_address();
    return image;
  }
  *error = path + " is not mapped at file offset 0 in process " + std::to_string(pid);
  return std::nullopt;
}

}  // namespace pyrewind::injector
