// Owned kernel handles: a move-only file descriptor and unique_ptr deleters
// for the libbpf/libxdp objects. No close() in business logic.
#pragma once

#include <unistd.h>

#include <memory>
#include <utility>

struct bpf_object;
struct bpf_link;
struct xdp_program;
struct xdp_multiprog;

namespace tcd {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }
    [[nodiscard]] int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct BpfObjectDeleter { void operator()(bpf_object* o) const; };
struct BpfLinkDeleter { void operator()(bpf_link* l) const; };
struct XdpProgramDeleter { void operator()(xdp_program* p) const; };
struct XdpMultiprogDeleter { void operator()(xdp_multiprog* m) const; };

using BpfObjectPtr = std::unique_ptr<bpf_object, BpfObjectDeleter>;
using BpfLinkPtr = std::unique_ptr<bpf_link, BpfLinkDeleter>;
using XdpProgramPtr = std::unique_ptr<xdp_program, XdpProgramDeleter>;
using XdpMultiprogPtr = std::unique_ptr<xdp_multiprog, XdpMultiprogDeleter>;

}  // namespace tcd
