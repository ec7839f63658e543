// Serialises commands that change an instance: an flock on a lock file named
// after the pin directory (the directory itself may not exist yet). A holder
// that does not let go within the timeout is reported with its pid.
#pragma once

#include <string>

#include "core/error.h"
#include "core/fd.h"

namespace tcd {

class InstanceLock {
public:
    static Result<InstanceLock> acquire(const std::string& pin_dir, double timeout_s);
    InstanceLock(InstanceLock&&) = default;
    InstanceLock& operator=(InstanceLock&&) = default;
    ~InstanceLock();
    // Time spent waiting for the lock, for diagnostics.
    double waited_s() const { return waited_; }
    // /run/tcd/NAME.lock, NAME from canonical_dir(pin_dir).
    static std::string path_for(const std::string& pin_dir);
    // Absolute, lexically normal, symlinks resolved where the path exists, no
    // trailing '/': the one spelling of a pin dir that the lock goes by.
    static std::string canonical_dir(const std::string& pin_dir);

private:
    InstanceLock() = default;
    UniqueFd fd_;
    double waited_ = 0;
};

}  // namespace tcd
