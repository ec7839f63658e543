// tcd object -o FILE [--key proto|port] [--hook xdp|tc]
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/instance.h"
#include "core/kind.h"

namespace tcd::cli {

namespace {

// Errors writing the output: the file's own cause. `object` needs no
// privileges, so EPERM and EACCES are about the file or its directory.
tl::unexpected<Error> file_error(const std::string& what, const std::string& path, int err) {
    std::string hint;
    if (err == EPERM || err == EACCES)
        hint = "see ls -l and lsattr of " + path + " and its directory";
    else if (err == ENOENT)
        hint = "does its directory exist?";
    return tl::unexpected<Error>(Error{what, errno_words(err), hint, err, ExitCode::failed});
}

Result<> write_all(int fd, std::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return tl::unexpected<Error>(Error{"", "", "", errno, ExitCode::failed});
        }
        done += size_t(n);
    }
    return {};
}

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

// Writes the embedded dispatcher ELF, for people who load it with bpftool,
// ip or xdp-loader themselves (docs/cli.md, "Output files"): "-" is stdout;
// a device or a FIFO is written into; a symlink or a directory is refused; a
// regular file is written whole under a fresh temporary name beside it and
// renamed over it, so it is never half written.
Result<> run_object(const ObjectOptions& o, Context& ctx) {
    const Kind kind{o.key.value_or(KeyKind::proto), o.hook.value_or(Hook::xdp)};
    if (o.output.empty()) return usage_error("object", "-o FILE is required");
    std::string_view elf = embedded_elf(kind);
    const std::string what = "write " + o.output;
    const std::string key = key_kind_name(kind.key), hook = hook_name(kind.hook);
    nlohmann::ordered_json j = {{"file", o.output}, {"key", key}, {"hook", hook}, {"bytes", elf.size()},
                                {"dispatcher", dispatcher_name(kind.hook)}};
    std::string plain = o.output + ": " + std::to_string(elf.size()) + " bytes, the " + key + " dispatcher for " +
                        hook + " (program " + dispatcher_name(kind.hook) + ", maps jt, proto_stats)\n";

    if (o.output == "-") {
        if (ctx.json())
            return usage_error("object -o -", "stdout holds the object; -j has no room there", "leave out -j");
        if (auto r = write_all(STDOUT_FILENO, elf); !r) return file_error("write to stdout", "stdout", r.error().err);
        return {};
    }
    struct stat st {};
    if (lstat(o.output.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISLNK(st.st_mode))
            return fail(what, "is a symbolic link; tcd does not replace it", "give the path it points to");
        if (S_ISDIR(st.st_mode)) return fail(what, "is a directory", "give a file name");
        // A device, FIFO or socket: written into, never replaced.
        UniqueFd fd(::open(o.output.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
        if (!fd) return file_error(what, o.output, errno);
        if (auto r = write_all(fd.get(), elf); !r) return file_error(what, o.output, r.error().err);
        ctx.print(j, plain);
        return {};
    }
    auto tmp = create_temp(o.output);
    if (!tmp) return propagate(tmp);
    auto& [fd, tmp_path] = *tmp;
    auto give_up = [&, &tmp_path = tmp_path](int err) {
        ::unlink(tmp_path.c_str());
        return file_error(what, o.output, err);
    };
    if (auto r = write_all(fd.get(), elf); !r) return give_up(r.error().err);
    if (::fsync(fd.get()) != 0) return give_up(errno);
    fd.reset();
    if (::rename(tmp_path.c_str(), o.output.c_str()) != 0) return give_up(errno);
    ctx.print(j, plain);
    return {};
}

void setup_object(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<ObjectOptions>();
    auto* obj = app.add_subcommand("object", "write the embedded dispatcher ELF (for bpftool, ip, xdp-loader)");
    obj->add_option("-o,--output", o->output, "the file to write")->required()->type_name("FILE");
    add_kind_options(*obj, o->key, o->hook, "proto (default) or port", "xdp (default) or tc");
    obj->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_object(*o, ctx); }; });
}

}  // namespace tcd::cli
