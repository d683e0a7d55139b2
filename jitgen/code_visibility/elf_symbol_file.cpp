// jitgen/code_visibility/elf_symbol_file.cpp — see elf_symbol_file.hpp.
#include "jitgen/code_visibility/elf_symbol_file.hpp"

#include <elf.h>

#include <algorithm>
#include <cstring>

namespace usgc::jitgen {
namespace {

enum SectionIndex : uint16_t { kNull = 0, kText, kSymtab, kStrtab, kShstrtab, kSectionCount };

constexpr char kSectionNames[] = "\0.text\0.symtab\0.strtab\0.shstrtab";
constexpr uint32_t kTextName = 1;
constexpr uint32_t kSymtabName = kTextName + sizeof(".text");
constexpr uint32_t kStrtabName = kSymtabName + sizeof(".symtab");
constexpr uint32_t kShstrtabName = kStrtabName + sizeof(".strtab");

size_t align_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

std::vector<uint8_t> build_elf_symbol_file(std::span<const CompiledSymbol> symbols) {
  uintptr_t text_start = UINTPTR_MAX;
  uintptr_t text_end = 0;
  size_t names_bytes = 1;  // the leading NUL of .strtab
  for (const CompiledSymbol& symbol : symbols) {
    uintptr_t start = reinterpret_cast<uintptr_t>(symbol.start);
    text_start = std::min(text_start, start);
    text_end = std::max(text_end, start + symbol.size_bytes);
    names_bytes += symbol.name.size() + 1;
  }

  const size_t headers_offset = sizeof(Elf64_Ehdr);
  const size_t shstrtab_offset = headers_offset + kSectionCount * sizeof(Elf64_Shdr);
  const size_t strtab_offset = shstrtab_offset + sizeof(kSectionNames);
  const size_t symtab_offset = align_up(strtab_offset + names_bytes, alignof(Elf64_Sym));
  const size_t symbol_count = symbols.size() + 1;
  const size_t file_bytes = symtab_offset + symbol_count * sizeof(Elf64_Sym);
  std::vector<uint8_t> file(file_bytes, 0);

  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = ELFCLASS64;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_ident[EI_OSABI] = ELFOSABI_SYSV;
  header.e_type = ET_REL;
  header.e_machine = EM_X86_64;
  header.e_version = EV_CURRENT;
  header.e_shoff = headers_offset;
  header.e_ehsize = sizeof(Elf64_Ehdr);
  header.e_shentsize = sizeof(Elf64_Shdr);
  header.e_shnum = kSectionCount;
  header.e_shstrndx = kShstrtab;
  std::memcpy(file.data(), &header, sizeof(header));

  Elf64_Shdr sections[kSectionCount]{};
  sections[kText].sh_name = kTextName;
  sections[kText].sh_type = SHT_NOBITS;
  sections[kText].sh_flags = SHF_ALLOC | SHF_EXECINSTR;
  sections[kText].sh_addr = text_start;
  sections[kText].sh_offset = symtab_offset;  // NOBITS: no bytes; any in-file offset
  sections[kText].sh_size = text_end - text_start;
  sections[kText].sh_addralign = 16;

  sections[kSymtab].sh_name = kSymtabName;
  sections[kSymtab].sh_type = SHT_SYMTAB;
  sections[kSymtab].sh_offset = symtab_offset;
  sections[kSymtab].sh_size = symbol_count * sizeof(Elf64_Sym);
  sections[kSymtab].sh_link = kStrtab;
  sections[kSymtab].sh_info = 1;  // index of the first non-local symbol
  sections[kSymtab].sh_addralign = alignof(Elf64_Sym);
  sections[kSymtab].sh_entsize = sizeof(Elf64_Sym);

  sections[kStrtab].sh_name = kStrtabName;
  sections[kStrtab].sh_type = SHT_STRTAB;
  sections[kStrtab].sh_offset = strtab_offset;
  sections[kStrtab].sh_size = names_bytes;
  sections[kStrtab].sh_addralign = 1;

  sections[kShstrtab].sh_name = kShstrtabName;
  sections[kShstrtab].sh_type = SHT_STRTAB;
  sections[kShstrtab].sh_offset = shstrtab_offset;
  sections[kShstrtab].sh_size = sizeof(kSectionNames);
  sections[kShstrtab].sh_addralign = 1;
  std::memcpy(file.data() + headers_offset, sections, sizeof(sections));
  std::memcpy(file.data() + shstrtab_offset, kSectionNames, sizeof(kSectionNames));

  size_t name_offset = 1;
  size_t symbol_offset = symtab_offset + sizeof(Elf64_Sym);  // after the null symbol
  for (const CompiledSymbol& symbol : symbols) {
    std::memcpy(file.data() + strtab_offset + name_offset, symbol.name.data(), symbol.name.size());
    Elf64_Sym entry{};
    entry.st_name = static_cast<uint32_t>(name_offset);
    entry.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
    entry.st_other = STV_DEFAULT;
    entry.st_shndx = kText;
    entry.st_value = reinterpret_cast<uintptr_t>(symbol.start) - text_start;
    entry.st_size = symbol.size_bytes;
    std::memcpy(file.data() + symbol_offset, &entry, sizeof(entry));
    name_offset += symbol.name.size() + 1;
    symbol_offset += sizeof(Elf64_Sym);
  }
  return file;
}

}  // namespace usgc::jitgen
