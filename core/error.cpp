#include "core/error.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace tcd {

std::string Error::message() const {
    std::string line = what.empty() ? why : what + ": " + why;
    if (!hint.empty()) line += " (" + hint + ")";
    return line;
}

std::string errno_words(int err) {
    switch (err) {
    case EPERM:
    case EACCES: return "permission denied";
    case ENOENT: return "no such file or object";
    case EEXIST: return "already exists";
    case EBUSY: return "busy";
    case ENODEV: return "no such device";
    case E2BIG: return "too big";
    case EINVAL: return "the kernel rejected the request as invalid";
    case ENOSPC: return "no space left";
    case EOPNOTSUPP: return "not supported";
    case ENOMEM: return "out of memory";
    case ENOTDIR: return "not a directory";
    case EISDIR: return "is a directory";
    case ENOTEMPTY: return "directory not empty";
    case EBADF: return "bad file descriptor";
    case ESRCH: return "no such object";
    default: return std::strerror(err);
    }
}

bool has_bpf_privileges() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &hdr, data) != 0) return false;
    auto has = [&](int cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
    constexpr int kCapBpf = 39;  // CAP_BPF, newer than some headers
    return (has(kCapBpf) || has(CAP_SYS_ADMIN)) && has(CAP_NET_ADMIN);
}

std::string errno_hint(int err, std::string otherwise) {
    if (err < 0) err = -err;
    // Only when privileges are the cause: with them, EPERM and EACCES come
    // from somewhere else (a file's permissions, an LSM, the verifier), and
    // the caller's words, if any, say where.
    if ((err == EPERM || err == EACCES) && !has_bpf_privileges()) return "needs root or CAP_BPF+CAP_NET_ADMIN";
    return otherwise;
}

tl::unexpected<Error> fail_errno(std::string what, int err, std::string hint) {
    if (err < 0) err = -err;
    if (hint.empty()) hint = errno_hint(err);
    return tl::unexpected<Error>(
        Error{std::move(what), errno_words(err), std::move(hint), err, ExitCode::failed});
}

}  // namespace tcd
