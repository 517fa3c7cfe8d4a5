// The innermost frames of a thread we hold stopped with ptrace: where it would return to.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace pyrewind::injector {

// Instruction pointers of up to `max_frames` frames, innermost first (libunwind, DWARF CFI).
// Just the thread's own instruction pointer if unwinding cannot start.
std::vector<uint64_t> unwind_stack(pid_t pid, pid_t tid, uint64_t instruction_pointer, int max_frames);

}  // namespace pyrewind::injector
