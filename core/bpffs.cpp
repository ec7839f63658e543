#include "core/bpffs.h"

#include "core/crashpoint.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace tcd::bpffs {
namespace fs = std::filesystem;

bool is_bpffs(const std::string& path) {
    struct statfs st {};
    return statfs(path.c_str(), &st) == 0 &&
           static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
}

static std::string nearest_existing(std::string p) {
    std::error_code ec;
    while (!p.empty() && !fs::exists(p, ec)) {
        auto parent = fs::path(p).parent_path().string();
        if (parent == p) break;
        p = parent;
    }
    return p.empty() ? "/" : p;
}

Result<> ensure_mounted(const std::string& pin_dir) {
    std::string probe = nearest_existing(pin_dir);
    if (is_bpffs(probe)) return {};

    const std::string mp = kMountPoint;
    bool under_default = pin_dir == mp || pin_dir.rfind(mp + "/", 0) == 0;
    if (!under_default)
        return fail("pin dir " + pin_dir, "not on a bpffs",
                    "mount one with 'mount -t bpf bpf DIR' or use a directory under " + mp);
    std::error_code ec;
    if (!fs::is_directory(mp, ec))
        return fail("bpffs", mp + " does not exist", "is sysfs mounted at /sys?");
    if (mount("bpf", mp.c_str(), "bpf", 0, "mode=0700") != 0)
        return fail_errno("mount bpffs at " + mp, errno,
                          errno == EPERM ? "needs root; or run 'mount -t bpf bpf " + mp + "'"
                                         : "run 'mount -t bpf bpf " + mp + "'");
    if (!is_bpffs(probe))
        return fail("pin dir " + pin_dir, "not on a bpffs even after mounting " + mp);
    return {};
}

bool exists(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0;
}

Result<UniqueFd> get(const std::string& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        int err = errno;
        // The kernel says EPERM or EACCES for what is no pin at all (EROFS
        // where that file's file system is read-only): name that.
        if (err == EPERM || err == EACCES || err == EROFS) {
            struct stat st {};
            if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
                return fail(path, "is a directory, not a pin", "name a program or map pinned on bpffs", err);
            if (stat(path.c_str(), &st) == 0 && !is_bpffs(path))
                return fail(path, "is not on a bpffs, so it is no pinned program or map",
                            "give a path under " + std::string(kMountPoint), err);
        }
        return fail_errno(path, err);
    }
    return UniqueFd(fd);
}

std::string temp_path(const std::string& path) { return path + "~tmp-" + std::to_string(getpid()); }

std::string staged_path(const std::string& path) { return path + "~tmp-next"; }

bool is_temp_pin(const std::string& name) { return name.find("~tmp-") != std::string::npos; }

void remove_temp_pins(const std::string& dir, bool keep_staged) {
    for (const auto& name : list_pins(dir))
        if (is_temp_pin(name) && !(keep_staged && name.find("~tmp-next") != std::string::npos))
            (void)remove(dir + "/" + name);
}

Result<> put_symlink(const std::string& path, const std::string& text, const std::string& what) {
    const std::string tmp = temp_path(path);
    ::unlink(tmp.c_str());
    if (::symlink(text.c_str(), tmp.c_str()) != 0) return fail_errno(what, errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return fail_errno(what, err);
    }
    return {};
}

Result<> pin(int fd, const std::string& path) {
    std::string tmp = temp_path(path);
    ::unlink(tmp.c_str());
    if (bpf_obj_pin(fd, tmp.c_str()) != 0) return fail_errno("pin " + path, errno);
    crash_point("pin");
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return fail_errno("pin " + path, err);
    }
    return {};
}

Result<> rename(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) return fail_errno("pin " + to, errno);
    return {};
}

Result<> remove(const std::string& path) {
    if (::remove(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path, errno);
    return {};
}

Result<std::vector<std::string>> make_dirs(const std::string& dir) {
    std::vector<std::string> missing;
    for (fs::path p = dir; !p.empty() && !exists(p.string()); p = p.parent_path()) {
        missing.push_back(p.string());
        if (p == p.parent_path()) break;
    }
    std::reverse(missing.begin(), missing.end());
    std::vector<std::string> made;
    for (const auto& d : missing) {
        if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
            int err = errno;
            if (err == EPERM && is_bpffs(fs::path(d).parent_path().string()) &&
                fs::path(d).filename().string().find('.') != std::string::npos) {
                for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
                return fail("create " + d, "bpffs names cannot contain dots", "choose a pin dir without '.'");
            }
            for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
            return fail_errno("create " + d, err);
        }
        made.push_back(d);
    }
    return made;
}

std::vector<std::string> list_pins(const std::string& dir) {
    std::vector<std::string> names;
    DIR* d = opendir(dir.c_str());
    if (!d) return names;
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        names.push_back(name);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace tcd::bpffs
