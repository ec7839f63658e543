// Loading and unloading an instance: validate, act, and undo on failure.
#pragma once

#include <string>
#include <vector>

#include "core/attach.h"
#include "core/error.h"
#include "core/instance.h"
#include "core/progs.h"

namespace tcd {

struct LoadOptions {
    std::optional<MissAction> miss;  // default_miss_action(kind.hook) when not given
    bool force = false;  // reload a loaded instance (keeps wiring and counters)
    Kind kind{};         // key proto|port, hook xdp|tc
};

struct LoadResult {
    bool changed = false;
    bool reloaded = false;  // --force replaced a loaded dispatcher
    std::string pin_dir;
    ProgInfo dispatcher;
    MissAction miss = MissAction::pass;
    Kind kind{};
    std::vector<std::string> pinned;       // names of new pins
    std::vector<Attachment> swapped;       // interfaces moved to the new dispatcher
};

Result<LoadResult> load(const std::string& dir, const LoadOptions& opt);

struct UnloadResult {
    bool changed = false;
    std::string pin_dir;
    std::vector<Attachment> detached;
    std::vector<std::string> removed;
    struct Unwired {
        std::string parent;
        uint32_t key = 0;
    };
    std::vector<Unwired> unwired;  // --force: keys of parents that wired this instance
};

// Refused while another instance wires this one (a child: docs/datapath.md,
// "Instance trees"), unless force, which first unwires it in every parent.
Result<UnloadResult> unload(const std::string& dir, bool force = false);

}  // namespace tcd
