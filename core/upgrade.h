// load --force with a newer tcd: the built-in handlers (tcp_handler,
// udp_handler, pass, drop) are replaced too. Each new one is pinned under its
// staged name (NAME~tmp-next), every key wired to the old one is repointed to
// it (one atomic jump-table update each, so no packet misses), then the pin
// is renamed over the old one. A command killed in between is completed by
// the next one (complete_builtin_upgrade), or its staged pins are dropped.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/fd.h"
#include "core/instance.h"

namespace tcd {

// What replace_builtins changed, so that a later failure can put it back.
class BuiltinUpgrade {
public:
    BuiltinUpgrade() = default;
    BuiltinUpgrade(BuiltinUpgrade&&) = default;
    BuiltinUpgrade& operator=(BuiltinUpgrade&&) = default;
    // The old programs back at their keys and under their names.
    void undo();
    const std::vector<std::string>& replaced() const { return names_; }

private:
    friend Result<BuiltinUpgrade> replace_builtins(const Instance&, const std::vector<std::pair<std::string, int>>&);
    struct Old {
        std::string name, pin;
        UniqueFd fd;
        std::vector<uint32_t> keys;
    };
    int jt_ = -1;
    std::vector<Old> old_;
    std::vector<std::string> names_;
};

// fresh: built-in name -> fd of the newly loaded program. Names not pinned
// in the instance are skipped (load pins those itself).
Result<BuiltinUpgrade> replace_builtins(const Instance& in, const std::vector<std::pair<std::string, int>>& fresh);

// A replace_builtins cut short: a staged built-in that some key already runs
// is the new one; the rest of the keys are repointed and the pin renamed.
// Staged built-ins nothing runs are left for remove_temp_pins.
void complete_builtin_upgrade(const std::string& dir);

}  // namespace tcd
