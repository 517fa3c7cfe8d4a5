// Code offset -> source line, for each CPython version's line table format (python_layout.h).
// The table bytes come from a live process, so decoding is bounds-checked everywhere.
#pragma once

#include <cstdint>
#include <string_view>

#include "injector/inspect/python_layout.h"

namespace pyrewind::inspect {

// The line of the instruction at byte offset `address` in the code (3.10+: code unit index
// * 2), the first line for a negative address (a frame that has not started), or -1 when the
// instruction has no line (or the table ends before it).
int line_for_address(pyrewind_line_table_format format, std::string_view table, int first_line, int64_t address);

}  // namespace pyrewind::inspect
