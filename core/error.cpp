#include "core/error.h"

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

std::string errno_hint(int err, std::string otherwise) {
    if (err < 0) err = -err;
    if (err == EPERM || err == EACCES) return "needs root or CAP_BPF+CAP_NET_ADMIN";
    return otherwise;
}

tl::unexpected<Error> fail_errno(std::string what, int err, std::string hint) {
    if (err < 0) err = -err;
    if (hint.empty()) hint = errno_hint(err);
    return tl::unexpected<Error>(
        Error{std::move(what), errno_words(err), std::move(hint), err, ExitCode::failed});
}

}  // namespace tcd
