// What tcd may touch (docs/cli.md, "What tcd touches"): a directory is an
// instance only if its pins say so, and tcd removes only pins it made.
// Commands that remove or replace pins (unload, load, detach) ask first and
// refuse anything else before touching it.
#pragma once

#include <string>

#include "core/error.h"
#include "core/reasons.h"

namespace tcd {

enum class DirOwner {
    missing,   // nothing there
    empty,     // an empty directory (what an interrupted first load may leave)
    instance,  // a tcd instance, loaded or half-made, holding only what tcd makes
    foreign,   // anything else: the bpffs root, a subdirectory of an instance,
               // another tool's pins, an instance with entries tcd did not make
};

struct DirCheck {
    DirOwner owner = DirOwner::missing;
    std::string found;  // foreign: what was found, in words
    Reason fix{};       // foreign: how to get on (words in cli/, core/reasons.h)
    std::vector<std::string> fix_args;
};

// Reads dir's entries (and those of maps/ and links/ under it); never changes anything.
DirCheck inspect_pin_dir(const std::string& dir);

// Fails (exit 1, "WHAT: FOUND (HINT)") when dir is foreign.
Result<> require_own_dir(const std::string& dir, const std::string& what);

}  // namespace tcd
