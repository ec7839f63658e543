// Network namespaces: resolving --netns, entering one for netlink work.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/fd.h"

namespace tcd {

// --netns NAME|PATH -> the namespace file ("" stays "": tcd's own).
Result<std::string> resolve_netns(const std::string& spec);

// The inode of a namespace file ("" = tcd's own), 0 when it is gone.
uint64_t netns_inode(const std::string& path);

// " in network namespace PATH", or "" for tcd's own (for messages).
std::string ns_words(const std::string& netns);

// Enters a network namespace for netlink work and returns to the original
// one when it goes out of scope. Mounts are untouched, so pins stay visible.
class NetnsGuard {
public:
    static Result<NetnsGuard> enter(const std::string& path);  // "" = stay
    NetnsGuard(NetnsGuard&&) = default;
    NetnsGuard& operator=(NetnsGuard&&) = delete;
    ~NetnsGuard();

private:
    NetnsGuard() = default;
    UniqueFd saved_;
};

}  // namespace tcd
