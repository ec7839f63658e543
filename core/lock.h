// Serialises commands that change an instance: an flock on a lock file named
// after the pin directory (the directory itself may not exist yet). A holder
// that does not let go within the timeout is reported with its pid.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

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
    // The pid of the process holding the flock of the file open at fd (or at
    // path), from /proc/locks; nullopt when nobody holds it (or it is gone).
    static std::optional<long> holder_pid(int fd);
    static std::optional<long> holder_pid(const std::string& path);

private:
    friend class LockSet;
    InstanceLock() = default;
    UniqueFd fd_;
    std::string dir_;  // canonical; the thread's registry of held locks goes by it
    double waited_ = 0;
};

// $TCD_LOCK_TIMEOUT, else 10 (seconds).
double lock_timeout();

// Locks of other instances that a command needs besides its own: the child
// a map set wires, the parents whose keys a load --force repoints. Taken
// without deadlock between commands that each need the other's lock (two
// instances wiring each other): every wait happens in one order, that of the
// canonical paths. A lock that sorts after every lock this thread holds is
// waited for; one that sorts before is only tried, and when it is busy the
// thread lets go of its own locks and takes them all again in order
// (`relock`), or, where it may not (`relock` false: the command has changed
// something already), keeps trying until the timeout.
class LockSet {
public:
    LockSet() = default;
    LockSet(LockSet&&) = default;
    LockSet& operator=(LockSet&&) = default;
    // Locks every dir of `dirs` that this thread does not hold yet.
    // *relocked tells whether the thread's locks were let go meanwhile (what
    // the caller read under them may have changed: read it again).
    static Result<LockSet> acquire(const std::vector<std::string>& dirs, bool relock, bool* relocked = nullptr);
    // acquire(need()), again while what need() names changes under a relock;
    // *relocked as above (any round).
    static Result<LockSet> acquire_stable(const std::function<Result<std::vector<std::string>>()>& need, bool relock,
                                          bool* relocked = nullptr);
    // Whether this thread holds the lock of dir.
    static bool held(const std::string& dir);
    void add(LockSet&& other);
    bool empty() const { return locks_.empty(); }  // took nothing (all held already)

private:
    std::vector<InstanceLock> locks_;
};

}  // namespace tcd
