#include "core/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace tcd {

namespace {
constexpr const char* kLockDir = "/run/tcd";
}  // namespace

std::string InstanceLock::canonical_dir(const std::string& pin_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p = fs::absolute(pin_dir.empty() ? fs::path(".") : fs::path(pin_dir), ec);
    if (ec) p = pin_dir;
    fs::path c = fs::weakly_canonical(p, ec);  // symlinks of the part that exists
    if (ec) c = p;
    std::string s = c.lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

// One file per canonical pin dir: '/' becomes '_', and a '_' or '%' of the
// name is escaped, so /a_b and /a/b do not share a lock.
std::string InstanceLock::path_for(const std::string& pin_dir) {
    std::string name;
    for (char c : canonical_dir(pin_dir)) {
        if (c == '/')
            name += '_';
        else if (c == '_')
            name += "%5f";
        else if (c == '%')
            name += "%25";
        else
            name += c;
    }
    return std::string(kLockDir) + "/" + name + ".lock";
}

namespace {

// The locks this thread holds: canonical dir -> the lock file's fd, its path,
// and whether its flock is held now (a relock lets go for a while).
struct Held {
    int fd = -1;
    std::string path;
    bool locked = false;
};
thread_local std::map<std::string, Held> held_locks;

// Whether path names the file open at fd. A holder removes the lock file
// before it lets go (~InstanceLock), so one who waited on it and got it must
// take the new one instead.
bool names_fd(int fd, const std::string& path) {
    struct stat open_st {}, path_st {};
    return fstat(fd, &open_st) == 0 && stat(path.c_str(), &path_st) == 0 && open_st.st_dev == path_st.st_dev &&
           open_st.st_ino == path_st.st_ino;
}

// Waits for the flock on fd until timeout_s, and holds it only on the file
// that path names: when the flock was got on a file removed meanwhile, path
// is opened again onto the same fd number (which the caller's InstanceLock
// owns) and waited for. Nothing is written into the file: a page of
// /run's tmpfs, freed again when the removed file is closed, cost about a
// tenth of a millisecond per command; the holder's pid is the kernel's
// (/proc/locks, InstanceLock::holder_pid).
Result<double> lock_fd(int fd, const std::string& pin_dir, const std::string& path, double timeout_s) {
    auto start = std::chrono::steady_clock::now();
    auto delay = std::chrono::milliseconds(1);
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (names_fd(fd, path)) break;
            // Removed by the holder that let go: the lock is path's new file.
            int again = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (again < 0) return fail_errno("lock " + path, errno);
            int r = dup3(again, fd, O_CLOEXEC);  // closes the old file, and its flock
            int err = errno;
            ::close(again);
            if (r < 0) return fail_errno("lock " + path, err);
            continue;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) return fail_errno("lock " + path, errno);
        double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited >= timeout_s) {
            auto pid = InstanceLock::holder_pid(fd);
            return fail("instance " + pin_dir,
                        fmt::format("another tcd (pid {}) has held its lock for {:.0f} s",
                                    pid ? std::to_string(*pid) : "?", waited),
                        fmt::format("is it stuck? the lock is {}", path));
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(50));
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// /proc/locks: "N: FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"; a
// "N: -> ..." line is a waiter, not a holder.
std::optional<long> InstanceLock::holder_pid(int fd) {
    struct stat st {};
    if (fstat(fd, &st) != 0) return std::nullopt;
    const std::string file = fmt::format("{:02x}:{:02x}:{}", major(st.st_dev), minor(st.st_dev), st.st_ino);
    std::ifstream locks("/proc/locks");
    for (std::string line; std::getline(locks, line);) {
        std::istringstream words(line);
        std::string n, type, advisory, access, where;
        long pid = 0;
        if (!(words >> n >> type) || type != "FLOCK") continue;
        if (words >> advisory >> access >> pid >> where && where == file && pid > 0) return pid;
    }
    return std::nullopt;
}

std::optional<long> InstanceLock::holder_pid(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    return holder_pid(fd.get());
}

double lock_timeout() {
    if (const char* t = std::getenv("TCD_LOCK_TIMEOUT")) return std::strtod(t, nullptr);
    return 10;
}

Result<InstanceLock> InstanceLock::acquire(const std::string& pin_dir, double timeout_s) {
    if (::mkdir(kLockDir, 0755) != 0 && errno != EEXIST) return fail_errno(std::string("create ") + kLockDir, errno);
    std::string path = path_for(pin_dir);
    InstanceLock l;
    l.fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!l.fd_) return fail_errno("lock " + path, errno);
    auto waited = lock_fd(l.fd_.get(), pin_dir, path, timeout_s);
    if (!waited) return propagate(waited);
    l.waited_ = *waited;
    l.dir_ = canonical_dir(pin_dir);
    held_locks[l.dir_] = Held{l.fd_.get(), path, true};
    return l;
}

// The lock file goes while its flock is still held: a waiter that gets the
// removed file's flock then sees that the path no longer names it and takes
// the path's new file (lock_fd), so no two commands ever hold one
// instance's lock, and /run/tcd keeps only the files of locks held now (or
// of a holder that was killed).
InstanceLock::~InstanceLock() {
    if (!fd_) return;
    if (auto it = held_locks.find(dir_); it != held_locks.end() && it->second.fd == fd_.get()) {
        if (it->second.locked) ::unlink(it->second.path.c_str());
        held_locks.erase(it);
    }
    flock(fd_.get(), LOCK_UN);
}

bool LockSet::held(const std::string& dir) { return held_locks.count(InstanceLock::canonical_dir(dir)) > 0; }

void LockSet::add(LockSet&& other) {
    for (auto& l : other.locks_) locks_.push_back(std::move(l));
    other.locks_.clear();
}

Result<LockSet> LockSet::acquire(const std::vector<std::string>& dirs, bool relock, bool* relocked) {
    if (relocked) *relocked = false;
    std::set<std::string> need;
    for (const auto& d : dirs)
        if (std::string c = InstanceLock::canonical_dir(d); !held_locks.count(c)) need.insert(c);
    LockSet out;
    if (need.empty()) return out;
    const double timeout = lock_timeout();
    auto last_held = [] { return held_locks.empty() ? std::string() : held_locks.rbegin()->first; };
    // In order: wait for what sorts after every lock held, try the rest.
    auto it = need.begin();
    for (; it != need.end(); ++it) {
        const bool after = *it > last_held();
        auto l = InstanceLock::acquire(*it, after ? timeout : 0);
        if (!l && after) return propagate(l);
        if (!l) break;  // busy (or failing: the slow path says which)
        out.locks_.push_back(std::move(*l));
    }
    if (it == need.end()) return out;
    if (!relock) {
        // The command has changed something: no letting go. Keep trying.
        auto start = std::chrono::steady_clock::now();
        for (; it != need.end(); ++it)
            for (;;) {
                double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                auto l = InstanceLock::acquire(*it, 0);
                if (l) {
                    out.locks_.push_back(std::move(*l));
                    break;
                }
                if (waited >= timeout) return propagate(l);
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        return out;
    }
    // Let go of everything, then take it all again in order.
    if (relocked) *relocked = true;
    out.locks_.clear();
    // (Let go without removing the files: lock_fd takes a file's successor
    // when the path names another by the time it is retaken.)
    std::set<std::string> all = need;
    for (auto& [dir, h] : held_locks) {
        h.locked = false;
        flock(h.fd, LOCK_UN);
        all.insert(dir);
    }
    for (const auto& dir : all) {
        if (auto o = held_locks.find(dir); o != held_locks.end()) {
            if (auto r = lock_fd(o->second.fd, dir, o->second.path, timeout); !r) return propagate(r);
            o->second.locked = true;
            continue;
        }
        auto l = InstanceLock::acquire(dir, timeout);
        if (!l) return propagate(l);
        out.locks_.push_back(std::move(*l));
    }
    return out;
}

Result<LockSet> LockSet::acquire_stable(const std::function<Result<std::vector<std::string>>()>& need, bool relock,
                                        bool* relocked) {
    if (relocked) *relocked = false;
    LockSet out;
    for (int round = 0;; round++) {
        auto dirs = need();
        if (!dirs) return propagate(dirs);
        bool again = false;
        auto got = acquire(*dirs, relock && round < 100, &again);
        if (!got) return propagate(got);
        out.add(std::move(*got));
        if (!again) return out;
        if (relocked) *relocked = true;
    }
}

}  // namespace tcd
