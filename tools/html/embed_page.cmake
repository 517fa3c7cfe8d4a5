# Build step: assembles the viewer page (viewer.html with viewer.css and viewer.js inlined) and
# writes it as two C++ strings, the part before the recording's data and the part after it.
# Usage: cmake -DSOURCE_DIR=... -DOUTPUT=... -P embed_page.cmake
file(READ ${SOURCE_DIR}/viewer.html page)
file(READ ${SOURCE_DIR}/viewer.css css)
file(READ ${SOURCE_DIR}/viewer.js js)
string(REPLACE "/*@CSS@*/" "${css}" page "${page}")
string(REPLACE "/*@JS@*/" "${js}" page "${page}")
string(FIND "${page}" "<!--@DATA@-->" split)
if(split EQUAL -1)
  message(FATAL_ERROR "viewer.html has no <!--@DATA@--> marker")
endif()
string(SUBSTRING "${page}" 0 ${split} head)
math(EXPR tail_start "${split} + 13")
string(SUBSTRING "${page}" ${tail_start} -1 tail)
set(delim "pyrewind_page")
foreach(part IN ITEMS head tail)
  string(FIND "${${part}}" ")${delim}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "the viewer contains the raw-string delimiter )${delim}\"")
  endif()
endforeach()
file(WRITE ${OUTPUT}.tmp
"// Generated from tools/html/viewer.{html,css,js} by embed_page.cmake; do not edit.
#include \"tools/html/page_assets.h\"

namespace pyrewind::html {
const std::string_view kPageHead = R\"${delim}(${head})${delim}\";
const std::string_view kPageTail = R\"${delim}(${tail})${delim}\";
}  // namespace pyrewind::html
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
