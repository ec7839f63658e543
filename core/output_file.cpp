#include "core/output_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>
#include <utility>

namespace tcd {

tl::unexpected<Error> file_error(const std::string& what, const std::string& path, int err) {
    std::string hint;
    if (err == EPERM || err == EACCES)
        hint = "see ls -l and lsattr of " + path + " and its directory";
    else if (err == ENOENT)
        hint = "does its directory exist?";
    return tl::unexpected<Error>(Error{what, errno_words(err), hint, err, ExitCode::failed});
}

namespace {

// A new file in dir under a name no one can predict or have planted:
// O_CREAT|O_EXCL|O_NOFOLLOW, so an existing name (a symlink too) is never
// opened but tried again under another.
Result<std::pair<UniqueFd, std::string>> create_temp(const std::string& target) {
    std::string dir = ".", base = target;
    if (auto slash = target.rfind('/'); slash != std::string::npos) {
        dir = slash == 0 ? "/" : target.substr(0, slash);
        base = target.substr(slash + 1);
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != sizeof r) return file_error("write " + target, target, errno);
        std::string tmp = (dir == "/" ? "" : dir) + "/." + base + ".tmp-" + fmt::format("{:016x}", r);
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (fd) return std::pair{std::move(fd), tmp};
        if (errno != EEXIST) return file_error("write " + target, target, errno);
    }
    return fail("write " + target, "could not create a temporary file beside it");
}

}  // namespace

Result<OutputFile> OutputFile::create(const std::string& path) {
    const std::string what = "write " + path;
    OutputFile f;
    f.path_ = path;
    if (path == "-") {
        f.stdout_ = true;
        return f;
    }
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISLNK(st.st_mode))
            return fail(what, "is a symbolic link; tcd does not replace it", "give the path it points to");
        if (S_ISDIR(st.st_mode)) return fail(what, "is a directory", "give a file name");
        // A device, FIFO or socket: written into, never replaced.
        f.fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
        if (!f.fd_) return file_error(what, path, errno);
        return f;
    }
    auto tmp = create_temp(path);
    if (!tmp) return propagate(tmp);
    f.fd_ = std::move(tmp->first);
    f.tmp_ = std::move(tmp->second);
    return f;
}

OutputFile& OutputFile::operator=(OutputFile&& o) noexcept {
    if (this != &o) {
        abandon();
        path_ = std::move(o.path_);
        tmp_ = std::exchange(o.tmp_, {});
        fd_ = std::move(o.fd_);
        stdout_ = o.stdout_;
    }
    return *this;
}

OutputFile::~OutputFile() { abandon(); }

void OutputFile::abandon() noexcept {
    fd_.reset();
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
}

Result<> OutputFile::write(std::string_view data) {
    const int fd = stdout_ ? STDOUT_FILENO : fd_.get();
    if (fd < 0) return fail("write " + path_, "already closed");
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return file_error(stdout_ ? "write to stdout" : "write " + path_, stdout_ ? "stdout" : path_, errno);
        }
        done += size_t(n);
    }
    return {};
}

Result<> OutputFile::commit() {
    if (tmp_.empty()) {
        if (!stdout_) fd_.reset();
        return {};
    }
    const std::string what = "write " + path_;
    if (::fsync(fd_.get()) != 0) {
        int err = errno;
        abandon();
        return file_error(what, path_, err);
    }
    fd_.reset();
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        int err = errno;
        abandon();
        return file_error(what, path_, err);
    }
    tmp_.clear();
    return {};
}

}  // namespace tcd
