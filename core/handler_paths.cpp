#include "core/handler_paths.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>

#include "core/bpffs.h"

namespace tcd::handler_paths {
namespace {

std::string record_dir(const std::string& dir) { return dir + "/" + kDir; }

std::string record_path(const std::string& dir, uint32_t key) {
    return fmt::format("{}/key-{}", record_dir(dir), key);
}

}  // namespace

bool is_record_name(const std::string& name) {
    if (name.rfind("key-", 0) != 0 || name.size() == 4) return false;
    return name.find_first_not_of("0123456789", 4) == std::string::npos;
}

namespace {

std::optional<std::string> read_record(const std::string& path) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n <= 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
}

Result<> write_record(const std::string& dir, uint32_t key, const std::string& target) {
    const std::string path = record_path(dir, key);
    if (::mkdir(record_dir(dir).c_str(), 0700) != 0 && errno != EEXIST)
        return fail_errno("map set: record the handler's path in " + record_dir(dir), errno);
    return bpffs::put_symlink(path, target, "map set: record the handler's path in " + path);
}

}  // namespace

Result<std::optional<std::string>> note(const std::string& dir, uint32_t key, const HandlerSpec& spec,
                                        const Handler& h) {
    auto previous = read_record(record_path(dir, key));
    if (spec.kind != HandlerSpec::Kind::path || !h.instance.empty()) {
        forget(dir, key);
        return previous;
    }
    if (previous == spec.text) return previous;
    if (auto r = write_record(dir, key, spec.text); !r) return propagate(r);
    return previous;
}

void put_back(const std::string& dir, uint32_t key, const std::optional<std::string>& previous) {
    if (read_record(record_path(dir, key)) == previous) return;
    if (previous)
        (void)write_record(dir, key, *previous);
    else
        forget(dir, key);
}

void forget(const std::string& dir, uint32_t key) {
    if (::unlink(record_path(dir, key).c_str()) == 0) (void)::rmdir(record_dir(dir).c_str());  // when empty
}

std::optional<std::string> recorded(const std::string& dir, uint32_t key, uint32_t prog_id) {
    auto recorded_path = read_record(record_path(dir, key));
    if (!recorded_path) return std::nullopt;
    const std::string& path = *recorded_path;
    auto fd = bpffs::get(path);
    if (!fd || fd_kind(fd->get()) != ObjKind::prog) return std::nullopt;
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) != 0 || info.id != prog_id) return std::nullopt;
    return path;
}

void remove_all(const std::string& dir) {
    for (const auto& name : bpffs::list_pins(record_dir(dir))) (void)bpffs::remove(record_dir(dir) + "/" + name);
    (void)bpffs::remove(record_dir(dir));
}

}  // namespace tcd::handler_paths
