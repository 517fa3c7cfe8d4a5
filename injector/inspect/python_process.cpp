#include "injector/inspect/python_process.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <regex>
#include <vector>

#include "injector/attach/elf_symbols.h"
#include "injector/attach/preflight.h"
#include "injector/attach/proc_info.h"

namespace pyrewind::inspect {
namespace {

using injector::Mapping;
using injector::MappedImage;

constexpr uint64_t kMaxBssScan = 64 << 20;  // the version banner search reads .bss whole

LocateResult fail(LocateStatus status, std::string message) {
  LocateResult result;
  result.status = status;
  result.message = std::move(message);
  return result;
}

std::string permission_message(pid_t pid) {
  std::string text = "permission denied: cannot read the memory of process " + std::to_string(pid) +
                     "; reading another process needs the same user and ptrace permission";
  const int yama = injector::yama_ptrace_scope();
  if (yama >= 1)
    text += " (kernel.yama.ptrace_scope is " + std::to_string(yama) + ": run pyrewind as root or with CAP_SYS_PTRACE)";
  else
    text += " (run pyrewind as that process's user, or as root)";
  return text;
}

// The image that defines _PyRuntime: libpython (shared builds; its name also tells the minor
// version) or the executable (static builds).
std::optional<MappedImage> interpreter_image(pid_t pid, const std::vector<Mapping>& maps, int* name_major,
                                             int* name_minor) {
  static const std::regex libpython(R"(/libpython(\d+)\.(\d+)[^/]*\.so[^/]*$)");
  std::vector<std::string> candidates;
  for (const Mapping& m : maps) {
    std::smatch match;
    if (m.offset == 0 && std::regex_search(m.path, match, libpython)) {
      candidates.push_back(m.path);
      *name_major = std::stoi(match[1]);
      *name_minor = std::stoi(match[2]);
      break;
    }
  }
  if (std::string exe = injector::proc_link(pid, "exe"); !exe.empty()) candidates.push_back(std::move(exe));
  for (const std::string& path : candidates) {
    std::string error;
    std::optional<MappedImage> image = injector::open_mapped_image(pid, maps, path, &error);
    if (image && image->elf->exported("_PyRuntime")) {
      if (path != candidates.front()) *name_major = *name_minor = 0;
      return image;
    }
  }
  return std::nullopt;
}

uint64_t symbol_address(const MappedImage& image, const char* name) {
  auto symbol = image.elf->symbol(name);
  return symbol ? image.bias + symbol->value : 0;
}

// 3.13+: the runtime starts with _Py_DebugOffsets; the fields the reader uses must be those
// of the headers it was built from.
std::string check_debug_offsets(const PythonLayout& layout, uint64_t runtime, Memory& memory) {
  if (layout.debug_cookie_size == 0) return "";
  char cookie[sizeof layout.debug_cookie] = {};
  if (!memory.read(runtime, cookie, sizeof cookie)) return "cannot read _PyRuntime";
  if (std::memcmp(cookie, layout.debug_cookie, sizeof cookie) != 0)
    return "_PyRuntime does not start with the debug offsets cookie (not initialised yet, or another build)";
  for (uint32_t i = 0; i < layout.debug_checks; ++i) {
    uint64_t value = 0;
    if (!memory.read_value(runtime + layout.debug_check[i].offset, &value)) return "cannot read _PyRuntime";
    if (value != layout.debug_check[i].value) {
      char text[160];
      std::snprintf(text, sizeof text,
                    "its struct layout differs from the CPython %u.%u headers pyrewind was built with "
                    "(debug offset at +%u is %llu, expected %llu)",
                    layout.major, layout.minor, layout.debug_check[i].offset, static_cast<unsigned long long>(value),
                    static_cast<unsigned long long>(layout.debug_check[i].value));
      return text;
    }
  }
  return "";
}

}  // namespace

LocateResult locate_python(pid_t pid, ProcessMemory& memory) {
  const std::string pid_text = std::to_string(pid);
  int error = 0;
  if (pid <= 0 || !injector::read_status(pid, &error))
    return fail(LocateStatus::kNoProcess, "no such process: " + pid_text + " (check the PID with ps)");
  auto maps = injector::read_maps(pid, &error);
  if (!maps)
    return error == EACCES ? fail(LocateStatus::kPermissionDenied, permission_message(pid))
                           : fail(LocateStatus::kNoProcess, "no such process: " + pid_text);

  LocateResult result;
  PythonTarget& target = result.target;
  target.pid = pid;
  std::optional<MappedImage> image = interpreter_image(pid, *maps, &target.major, &target.minor);
  if (!image)
    return fail(LocateStatus::kNotPython, "process " + pid_text + " is not a Python process: no CPython interpreter "
                                              "(_PyRuntime) in its executable or libraries");
  target.image = image->path;
  target.runtime = symbol_address(*image, "_PyRuntime");

  // The exact version: 3.11+ the Py_Version constant; before, the banner Py_GetVersion()
  // wrote into .bss; else the library's name.
  if (uint64_t address = symbol_address(*image, "Py_Version")) {
    uint32_t hex = 0;
    if (!memory.read_value(address, &hex)) {
      const int why = memory.last_error();
      if (why == EPERM || why == EACCES) return fail(LocateStatus::kPermissionDenied, permission_message(pid));
      if (why == ESRCH) return fail(LocateStatus::kNoProcess, "process " + pid_text + " exited");
    } else if ((hex >> 24) == 3) {
      target.major = 3;
      target.minor = static_cast<int>((hex >> 16) & 0xff);
      target.version = "3." + std::to_string(target.minor) + "." + std::to_string((hex >> 8) & 0xff);
    }
  }
  if (target.version.empty()) {
    if (auto bss = image->elf->section(".bss"); bss && bss->size <= kMaxBssScan) {
      std::string copy(bss->size, '\0');
      if (memory.read(image->bias + bss->address, copy.data(), copy.size())) {
        if (auto banner = injector::find_version_banner(copy.data(), copy.size())) {
          target.major = banner->major;
          target.minor = banner->minor;
          target.version = banner->version;
        }
      } else if (memory.last_error() == EPERM || memory.last_error() == EACCES) {
        return fail(LocateStatus::kPermissionDenied, permission_message(pid));
      }
    }
  }
  if (target.major == 0)
    return fail(LocateStatus::kUnsupported, "cannot tell the Python version of process " + pid_text + " (" +
                                                target.image + "); is the interpreter initialised yet?");
  if (target.version.empty()) target.version = std::to_string(target.major) + "." + std::to_string(target.minor);
  target.layout = layout_for(target.major, target.minor);
  if (target.layout == nullptr)
    return fail(LocateStatus::kUnsupported, "process " + pid_text + " runs Python " + target.version +
                                                ", which this pyrewind cannot read (built for " +
                                                supported_versions() + ")");
  if (std::string mismatch = check_debug_offsets(*target.layout, target.runtime, memory); !mismatch.empty())
    return fail(LocateStatus::kUnsupported, "process " + pid_text + " runs Python " + target.version + ", but " +
                                                mismatch);

  TypeAddresses& types = target.types;
  types.code = symbol_address(*image, "PyCode_Type");
  types.frame = symbol_address(*image, "PyFrame_Type");
  types.cell = symbol_address(*image, "PyCell_Type");
  types.str = symbol_address(*image, "PyUnicode_Type");
  types.bytes = symbol_address(*image, "PyBytes_Type");
  types.int_ = symbol_address(*image, "PyLong_Type");
  types.bool_ = symbol_address(*image, "PyBool_Type");
  types.float_ = symbol_address(*image, "PyFloat_Type");
  types.list = symbol_address(*image, "PyList_Type");
  types.tuple = symbol_address(*image, "PyTuple_Type");
  types.dict = symbol_address(*image, "PyDict_Type");
  types.set = symbol_address(*image, "PySet_Type");
  types.frozenset = symbol_address(*image, "PyFrozenSet_Type");
  types.none = symbol_address(*image, "_Py_NoneStruct");
  types.true_ = symbol_address(*image, "_Py_TrueStruct");
  types.false_ = symbol_address(*image, "_Py_FalseStruct");
  types.coroutine = symbol_address(*image, "PyCoro_Type");
  types.generator = symbol_address(*image, "PyGen_Type");
  types.weakref = symbol_address(*image, "_PyWeakref_RefType");
  types.module = symbol_address(*image, "PyModule_Type");
  if (types.code == 0 || types.str == 0 || types.tuple == 0 || types.bytes == 0)
    return fail(LocateStatus::kUnsupported, "process " + pid_text + " (" + target.image +
                                                "): the interpreter does not export its type objects");
  result.status = LocateStatus::kOk;
  return result;
}

}  // namespace pyrewind::inspect
