// The tracing backend: sys.monitoring on 3.12+ (backend_monitoring.cpp), a C trace function
// on 3.9-3.11 (backend_settrace.cpp). CMake compiles exactly one of them into each agent.
#pragma once

#include <string>
#include <vector>

namespace pyrewind::agent {

struct CodeMeta;

// All with the GIL held.
bool install_tracing(std::string* error);
void uninstall_tracing();
// Stops delivering `meta`'s line events (calls, returns and exceptions go on): --max-overhead.
void thin_lines(CodeMeta& meta);
// `pyrewind ctl ... trace off|on` (Agent::apply_control_requests): while paused, the backend
// delivers as little as it can and the callbacks record nothing.
void pause_tracing();
void resume_tracing();
// The file filters changed (Agent::apply_filter_change): `now_untraced` lost their events;
// code that became traced gets its events from its next start on (and, 3.9-3.11, its running
// frames at once).
void refilter_events(const std::vector<CodeMeta*>& now_untraced, bool some_now_traced);

}  // namespace pyrewind::agent
