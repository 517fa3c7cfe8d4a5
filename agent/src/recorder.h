// Version-free event recording, called by the tracing backend with the GIL held, for code the
// filters keep. Implements sys.settrace's event model: CALL on entry and on every generator
// resume (with the full locals), LINE with the locals that changed since the frame's previous
// event, RETURN on return, yield and unwind, EXCEPTION at every frame an exception passes.
#pragma once

#include "compat/compat.h"

namespace pyrewind::agent {

struct CodeMeta;

void record_call(CodeMeta& meta, compat::Frame frame, int line);
void record_line(CodeMeta& meta, compat::Frame frame, int line);
// `value` is nullptr when the frame is left by an exception.
void record_return(CodeMeta& meta, compat::Frame frame, int line, PyObject* value);
void record_exception(CodeMeta& meta, compat::Frame frame, int line, PyObject* exception);
void record_exception_handled(CodeMeta& meta, compat::Frame frame, int line, PyObject* exception);

// For backends without an "exception handled" event (3.9-3.11): a LINE in a frame whose
// last event was EXCEPTION means the frame caught it.
void set_infer_exception_handled(bool on);

// RETURN and EXCEPTION events report the line of the frame's last LINE event rather than the
// line the backend passes (sys.settrace on 3.9).
void set_sticky_frame_line(bool on);

// Forgets what depends on the recording session (capture limits, value memos), at detach, so
// the next attach starts with its own options. GIL held, tracing off.
void reset_recorder();

}  // namespace pyrewind::agent
