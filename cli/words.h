// The user's words for what the core names as a Reason or a Flag
// (core/reasons.h): the one table of the commands and flags that hints and
// findings mention. Applied once to every error before it is printed or
// rendered (cli::run, the renderers' problems, trace's and --listen's
// errors), so core/ itself names no command and no flag.
#pragma once

#include <string>

#include "core/reasons.h"

namespace tcd::cli {

// The option as typed on the command line, "--miss-action".
std::string flag_words(Flag f);

// The error in the user's words: the flag written into WHAT, the reason's
// hint (or WHY). An error without either comes back as it is.
Error in_words(Error e);

// in_words(e).message(): the line after "tcd: ", or a status problem.
std::string said(const Error& e);

// Why an XDP attach went alone when the request asked for it (an
// Attachment's alone_asked).
std::string alone_asked_words();

}  // namespace tcd::cli
