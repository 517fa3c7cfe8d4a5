// The struct layouts this build knows, one per CPython minor version (python_layout.h).
#pragma once

#include <string>

#include "injector/inspect/python_layout.h"

namespace pyrewind::inspect {

using PythonLayout = pyrewind_python_layout;

// nullptr when this build has no table for that version.
const PythonLayout* layout_for(int major, int minor);

// "3.9, 3.10, 3.11" (for messages).
std::string supported_versions();

}  // namespace pyrewind::inspect
