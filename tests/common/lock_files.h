// tcd's lock files. A command that changes an instance locks
// /run/tcd/NAME.lock (core/lock.h) and removes the file when it lets go;
// one that was killed (the crash tests) leaves it. So a test removes the
// lock files of the pin dirs it made, after its last tcd command on them, or
// the pid-named files of such runs pile up in /run/tcd.
//
//   class Fixture {
//       tcdtest::LockFiles locks_;  // first member: goes last, after the destructor's unload
//       std::string dir_;
//   public:
//       Fixture() : dir_("/sys/fs/bpf/" + unique_name("tag")) { locks_.add(dir_); }
//       ~Fixture() { sh(tcd + " -q -d " + dir_ + " unload"); }
//   };
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/lock.h"

namespace tcdtest {

// Removes the lock file of pin_dir, if there is one.
inline void remove_lock_file(const std::string& pin_dir) {
    std::error_code ec;
    std::filesystem::remove(tcd::InstanceLock::path_for(pin_dir), ec);
}

// Removes the lock files of the pin dirs it was given when it goes.
class LockFiles {
public:
    LockFiles() = default;
    LockFiles(std::initializer_list<std::string> dirs) : dirs_(dirs) {}
    ~LockFiles() {
        for (const auto& d : dirs_) remove_lock_file(d);
    }
    LockFiles(const LockFiles&) = delete;
    LockFiles& operator=(const LockFiles&) = delete;
    // Returns dir, so a declaration can name it: std::string d = locks.add(...).
    std::string add(std::string dir) {
        dirs_.push_back(dir);
        return dir;
    }

private:
    std::vector<std::string> dirs_;
};

}  // namespace tcdtest
