// Pin dirs a test makes, named PREFIX + pid + "_" + tag under /sys/fs/bpf,
// cleared of a leftover at add() and, when the test ends, unloaded with
// --force (newest first, twice over, so a child wired by a parent goes too)
// and their lock files removed.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

#include "tests/common/lock_files.h"
#include "tests/common/shell.h"

namespace tcdtest {

class PinDirs {
public:
    explicit PinDirs(std::string prefix) : prefix_(std::move(prefix)) {}
    PinDirs(const PinDirs&) = delete;
    PinDirs& operator=(const PinDirs&) = delete;
    ~PinDirs() {
        for (int round = 0; round < 2; round++)
            for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) unload(*it);
        for (const auto& d : dirs_) remove_lock_file(d);
    }
    const std::string& add(const std::string& tag) {
        dirs_.push_back("/sys/fs/bpf/" + prefix_ + std::to_string(getpid()) + "_" + tag);
        unload(dirs_.back());
        return dirs_.back();
    }

private:
    static void unload(const std::string& dir) { sh(std::string(TCD_BIN) + " -q -d " + dir + " unload --force"); }
    std::string prefix_;
    std::vector<std::string> dirs_;
};

}  // namespace tcdtest
