#include "core/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "tcd/shared.h"

namespace tcd {

std::string ns_words(const std::string& netns) {
    return netns.empty() ? std::string() : " in network namespace " + netns;
}

uint64_t netns_inode(const std::string& path) {
    struct stat st {};
    if (stat(path.empty() ? "/proc/self/ns/net" : path.c_str(), &st) != 0) return 0;
    return st.st_ino;
}

Result<std::string> resolve_netns(const std::string& spec) {
    if (spec.empty()) return std::string();
    std::string path = spec.find('/') != std::string::npos ? spec : "/run/netns/" + spec;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
        return fail("network namespace " + spec, "not found",
                    spec.find('/') != std::string::npos ? "give a path such as /proc/PID/ns/net"
                                                        : "see 'ip netns list'");
    if (path.size() >= TCD_NETNS_PATH_MAX)
        return usage_error("network namespace " + spec, "path too long");
    return path;
}

Result<NetnsGuard> NetnsGuard::enter(const std::string& path) {
    NetnsGuard g;
    if (path.empty()) return g;
    UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!self) return fail_errno("network namespace", errno);
    UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target) return fail_errno("network namespace " + path, errno);
    if (setns(target.get(), CLONE_NEWNET) != 0) {
        int err = errno;
        if (err == EINVAL)
            return fail("network namespace " + path, "not a network namespace file");
        return fail_errno("enter network namespace " + path, err);
    }
    g.saved_ = std::move(self);
    return g;
}

NetnsGuard::~NetnsGuard() {
    if (saved_) (void)setns(saved_.get(), CLONE_NEWNET);
}

}  // namespace tcd
