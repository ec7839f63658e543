// A file tcd writes (docs/cli.md, "Output files"): "-" is stdout; a FIFO,
// a device or a socket is opened and written into, never replaced; a
// symbolic link or a directory is refused and left as it was; a regular
// file, or a new one, is written under a temporary name beside it that
// nothing can predict or have planted (O_CREAT|O_EXCL|O_NOFOLLOW, random),
// synced and renamed over it by commit(). Without commit() the temporary
// is removed and the file is as it was. Used by `object -o` and by the
// pcapng writer.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "core/fd.h"

namespace tcd {

// An error writing path, with the file's own cause: writing a file needs
// no privileges, so EPERM and EACCES are about the file or its directory.
tl::unexpected<Error> file_error(const std::string& what, const std::string& path, int err);

class OutputFile {
public:
    static Result<OutputFile> create(const std::string& path);
    OutputFile(OutputFile&&) noexcept = default;
    OutputFile& operator=(OutputFile&& o) noexcept;
    ~OutputFile();

    // Writes all of data (EINTR and short writes taken care of).
    Result<> write(std::string_view data);
    // A regular file: synced and renamed into place. Otherwise nothing to do.
    Result<> commit();

    const std::string& path() const { return path_; }
    bool is_stdout() const { return stdout_; }
    bool replaces() const { return !tmp_.empty(); }  // written under a temporary, renamed by commit()

private:
    OutputFile() = default;
    void abandon() noexcept;

    std::string path_, tmp_;
    UniqueFd fd_;
    bool stdout_ = false;
};

}  // namespace tcd
