#include "core/jumptable.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <fmt/format.h>
#include <map>

#include "core/keys.h"
#include "core/privs.h"

namespace tcd {
namespace {

std::map<uint32_t, PinnedProg> pins_by_id(const Instance& in) {
    std::map<uint32_t, PinnedProg> out;
    for (auto& p : pinned_programs(in.paths().dir)) out.emplace(p.info.id, std::move(p));
    return out;
}

WiredEntry describe(uint32_t key, uint32_t id, const std::map<uint32_t, PinnedProg>& pins) {
    WiredEntry e;
    e.key = key;
    e.proto = proto_name(key);
    e.prog_id = id;
    if (auto it = pins.find(id); it != pins.end()) {
        e.handler = it->second.name;
        e.tag = it->second.info.tag;
    } else {
        e.handler = fmt::format("id:{}", id);
        if (auto fd = prog_fd_by_id(id))
            if (auto info = prog_info(fd->get())) e.tag = info->tag;
    }
    return e;
}

}  // namespace

Result<std::optional<uint32_t>> wired_prog_id(const Instance& in, uint32_t key) {
    uint32_t id = 0;
    if (bpf_map_lookup_elem(in.jt_fd(), &key, &id) == 0) return std::optional<uint32_t>(id);
    if (errno == ENOENT) return std::optional<uint32_t>();
    return fail_errno(fmt::format("read jump table key {}", key), errno);
}

Result<std::vector<WiredEntry>> list_wiring(const Instance& in) {
    std::vector<WiredEntry> out;
    std::vector<std::pair<uint32_t, uint32_t>> ids;
    for (uint32_t key = 0; key <= kMaxKey; key++) {
        auto id = wired_prog_id(in, key);
        if (!id) return tl::unexpected(id.error());
        if (*id) ids.emplace_back(key, **id);
    }
    if (ids.empty()) return out;
    auto pins = pins_by_id(in);
    for (auto [key, id] : ids) out.push_back(describe(key, id, pins));
    return out;
}

Result<> check_compatible(const Instance& in, const Handler& h) {
    std::string what = "handler " + h.display;
    const ProgInfo& owner = in.dispatcher();
    if (h.info.type != owner.type)
        return fail(what,
                    fmt::format("program type is {}, the jump table takes {}",
                                prog_type_name(h.info.type), prog_type_name(owner.type)),
                    "load it as an XDP program (SEC(\"xdp\"))");
    if (h.info.jited != owner.jited)
        return fail(what, fmt::format("JIT status differs: handler {}, dispatcher {}",
                                      h.info.jited ? "jited" : "interpreted",
                                      owner.jited ? "jited" : "interpreted"));
    if (h.info.id == owner.id)
        return fail(what, "is the dispatcher itself", "wire a handler program");
    return {};
}

Result<SetResult> set_handler(const Instance& in, uint32_t key, const HandlerSpec& spec) {
    if (auto r = require_bpf_privileges("map set"); !r) return tl::unexpected(r.error());
    auto h = open_handler(spec, in.paths().dir);
    if (!h) return tl::unexpected(h.error());
    if (auto r = check_compatible(in, *h); !r) return tl::unexpected(r.error());

    auto cur = wired_prog_id(in, key);
    if (!cur) return tl::unexpected(cur.error());
    auto pins = pins_by_id(in);
    SetResult res;
    res.key = key;
    if (*cur) res.old = describe(key, **cur, pins);
    res.now = describe(key, h->info.id, pins);
    if (*cur && **cur == h->info.id) return res;  // wired already

    int fd = h->fd.get();
    if (bpf_map_update_elem(in.jt_fd(), &key, &fd, BPF_ANY) != 0) {
        int err = errno;
        if (err == EINVAL)
            return fail("map set", "the kernel refused " + h->display +
                                       " for this jump table (program type, expected attach "
                                       "type, frags flag or JIT status differ)",
                        "see 'tcd handler list' for programs that fit", err);
        return fail_errno("map set", err);
    }
    res.changed = true;
    return res;
}

Result<DelResult> del_keys(const Instance& in, const std::vector<uint32_t>& keys) {
    if (auto r = require_bpf_privileges("map del"); !r) return tl::unexpected(r.error());
    DelResult res;
    auto pins = pins_by_id(in);
    // Hold every program being unwired, so that a failure can put it back.
    std::vector<std::pair<uint32_t, UniqueFd>> taken;
    auto undo = [&] {
        for (auto& [key, fd] : taken) {
            int f = fd.get();
            bpf_map_update_elem(in.jt_fd(), &key, &f, BPF_ANY);
        }
    };
    for (uint32_t key : keys) {
        auto cur = wired_prog_id(in, key);
        if (!cur) {
            undo();
            return tl::unexpected(cur.error());
        }
        if (!*cur) {
            res.not_wired.push_back(key);
            continue;
        }
        auto fd = prog_fd_by_id(**cur);
        if (!fd) {
            undo();
            return tl::unexpected(fd.error());
        }
        if (bpf_map_delete_elem(in.jt_fd(), &key) != 0 && errno != ENOENT) {
            int err = errno;
            undo();
            return fail_errno(fmt::format("map del {}", key), err);
        }
        res.removed.push_back(describe(key, **cur, pins));
        taken.emplace_back(key, std::move(*fd));
    }
    return res;
}

}  // namespace tcd
