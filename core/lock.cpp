#include "core/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fmt/format.h>
#include <thread>

namespace tcd {

namespace {
constexpr const char* kLockDir = "/run/tcd";
}

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

Result<InstanceLock> InstanceLock::acquire(const std::string& pin_dir, double timeout_s) {
    if (::mkdir(kLockDir, 0755) != 0 && errno != EEXIST) return fail_errno(std::string("create ") + kLockDir, errno);
    std::string path = path_for(pin_dir);
    InstanceLock l;
    l.fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!l.fd_) return fail_errno("lock " + path, errno);
    auto start = std::chrono::steady_clock::now();
    auto delay = std::chrono::milliseconds(1);
    while (flock(l.fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) return fail_errno("lock " + path, errno);
        double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (waited >= timeout_s) {
            char buf[32] = {};
            ssize_t n = pread(l.fd_.get(), buf, sizeof buf - 1, 0);
            std::string holder = n > 0 ? std::string(buf, size_t(n)) : "?";
            while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
            return fail("instance " + pin_dir,
                        fmt::format("another tcd (pid {}) has held its lock for {:.0f} s", holder, waited),
                        fmt::format("is it stuck? the lock is {}", path));
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, std::chrono::milliseconds(50));
    }
    l.waited_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(l.fd_.get(), 0) == 0) (void)!pwrite(l.fd_.get(), pid.data(), pid.size(), 0);
    return l;
}

InstanceLock::~InstanceLock() {
    if (fd_) flock(fd_.get(), LOCK_UN);
}

}  // namespace tcd
