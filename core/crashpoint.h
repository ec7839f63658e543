// Failpoints for the crash-consistency tests: with TCD_CRASHPOINT=OP:N in the
// environment, the N-th crash_point(OP) kills the process with SIGKILL, as an
// operator's kill -9 or a power cut would, between two steps of a command.
// Without the variable it costs one getenv per call.
#pragma once

namespace tcd {

void crash_point(const char* op);

}  // namespace tcd
