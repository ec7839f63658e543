// User handlers: load a BPF ELF's XDP programs the way the dispatcher is
// loaded, sharing the instance's maps, pinned by name; and unload them.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/instance.h"
#include "core/progs.h"

namespace tcd {

struct LoadedHandler {
    std::string name;
    uint32_t prog_id = 0;
    std::string tag;
};

struct HandlerLoadResult {
    std::string object;
    std::vector<LoadedHandler> loaded;
    std::vector<std::string> shared_maps;  // tcd maps the object reuses
};

// Loads every XDP program of `object` (or only those named in `progs`) and
// pins each as pin_dir/NAME. All or nothing.
Result<HandlerLoadResult> load_handlers(const Instance& in, const std::string& object,
                                        const std::vector<std::string>& progs);

// The handler programs an object holds for a hook (XDP or tc), unloaded.
Result<std::vector<std::string>> object_programs(const std::string& object, Hook hook);

struct HandlerUnloadResult {
    std::string name;
    KeyKind kind = KeyKind::proto;  // the instance's: what the keys are
    std::vector<uint32_t> unwired;  // keys --force took it off first
};

// Removes a user handler's pin; refused while it is wired, unless force
// (then its keys are unwired first).
Result<HandlerUnloadResult> unload_handler(const Instance& in, const std::string& name, bool force);

}  // namespace tcd
