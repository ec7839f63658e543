#include "core/progs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>
#include <fmt/format.h>

#include "core/bpffs.h"
#include "core/instance.h"
#include "core/lock.h"
#include "core/reasons.h"

namespace tcd {

Result<ProgInfo> prog_info(int prog_fd) {
    std::vector<uint32_t> map_ids(64);
    bpf_prog_info info{};
    info.nr_map_ids = static_cast<uint32_t>(map_ids.size());
    info.map_ids = reinterpret_cast<uint64_t>(map_ids.data());
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
        return fail_errno("program info", errno);
    ProgInfo p;
    p.id = info.id;
    p.type = info.type;
    p.name = info.name;
    for (unsigned char b : info.tag) p.tag += fmt::format("{:02x}", b);
    p.jited = info.jited_prog_len > 0;
    p.load_time_ns = info.load_time;
    p.verified_insns = info.verified_insns;
    p.xlated_len = info.xlated_prog_len;
    p.jited_len = info.jited_prog_len;
    map_ids.resize(std::min<size_t>(info.nr_map_ids, map_ids.size()));
    p.map_ids = std::move(map_ids);
    return p;
}

uint32_t map_id(int map_fd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    return bpf_obj_get_info_by_fd(map_fd, &info, &len) == 0 ? info.id : 0;
}

Result<UniqueFd> prog_fd_by_id(uint32_t id) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) return fail(fmt::format("program id {}", id), "no such program");
        return fail_errno(fmt::format("program id {}", id), err);
    }
    return UniqueFd(fd);
}

std::string prog_type_name(uint32_t type) {
    const char* s = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(type));
    return s ? s : fmt::format("type {}", type);
}

ObjKind fd_kind(int fd) {
    char target[64] = {};
    std::string link = fmt::format("/proc/self/fd/{}", fd);
    ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0) return ObjKind::other;
    std::string_view t(target, static_cast<size_t>(n));
    if (t == "anon_inode:bpf-prog") return ObjKind::prog;
    if (t == "anon_inode:bpf-map") return ObjKind::map;
    if (t == "anon_inode:bpf_link") return ObjKind::link;
    return ObjKind::other;
}

int64_t boot_ns_to_unix(uint64_t ns) {
    timespec real{}, boot{};
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    int64_t now_boot_ns = int64_t(boot.tv_sec) * 1000000000 + boot.tv_nsec;
    int64_t now_real_ns = int64_t(real.tv_sec) * 1000000000 + real.tv_nsec;
    return (now_real_ns - (now_boot_ns - int64_t(ns))) / 1000000000;
}

Result<HandlerSpec> parse_handler_spec(std::string_view text) {
    HandlerSpec spec;
    spec.text = std::string(text);
    if (text.empty())
        return usage_error("handler", "empty handler", "a pinned name, a bpffs path or id:N");
    if (text.rfind("id:", 0) == 0) {
        auto num = text.substr(3);
        uint32_t id = 0;
        auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), id);
        if (num.empty() || ec != std::errc() || p != num.data() + num.size() || id == 0)
            return usage_error("handler " + spec.text, "not a program id",
                               "write id:N with N a program id from 'bpftool prog'");
        spec.kind = HandlerSpec::Kind::id;
        spec.id = id;
        return spec;
    }
    if (text.front() == '/') {
        spec.kind = HandlerSpec::Kind::path;
        return spec;
    }
    if (text.find('/') != std::string_view::npos || text == "." || text == "..")
        return usage_error("handler " + spec.text, "not a handler name",
                           "a name pinned in the pin dir, an absolute bpffs path or id:N");
    spec.kind = HandlerSpec::Kind::name;
    return spec;
}

Result<Handler> open_handler(const HandlerSpec& spec, const std::string& pin_dir) {
    Handler h;
    h.display = spec.text;
    if (spec.kind == HandlerSpec::Kind::id) {
        auto fd = prog_fd_by_id(spec.id);
        if (!fd) return propagate(fd);
        h.fd = std::move(*fd);
    } else {
        std::string path = spec.kind == HandlerSpec::Kind::path ? spec.text : pin_dir + "/" + spec.text;
        struct stat st {};
        if (spec.kind == HandlerSpec::Kind::path && stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
            // Another instance's pin dir: its dispatcher (a child instance).
            // (bpf_obj_get on a directory fails with EACCES, which used to
            // read as missing privileges.)
            if (!pinned_kind(path))
                return fail("handler " + spec.text, "is a directory, not a program, and no instance is loaded in it",
                            "name a program pinned in it, or load an instance there first");
            auto child = Instance::open(path);
            if (!child) return propagate(child, "handler " + spec.text);
            h.instance = InstanceLock::canonical_dir(path);
            path = child->dispatcher_path();
        }
        auto fd = bpffs::get(path);
        if (!fd) {
            if (fd.error().err == ENOENT)
                return worded(fail("handler " + spec.text,
                                   spec.kind == HandlerSpec::Kind::name ? "not pinned in " + pin_dir : "no such pin"),
                              Reason::see_handler_list);
            return propagate(fd, "handler " + spec.text);
        }
        h.fd = std::move(*fd);
    }
    switch (fd_kind(h.fd.get())) {
    case ObjKind::prog: break;
    case ObjKind::map:
        return worded(fail("handler " + spec.text, "is a map, not a program"), Reason::wire_a_program);
    case ObjKind::link:
        return fail("handler " + spec.text, "is a link, not a program");
    case ObjKind::other:
        return fail("handler " + spec.text, "is not a BPF program");
    }
    auto info = prog_info(h.fd.get());
    if (!info) return propagate(info, "handler " + spec.text);
    h.info = std::move(*info);
    return h;
}

}  // namespace tcd
