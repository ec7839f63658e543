#include "core/upgrade.h"

#include <algorithm>

#include <bpf/bpf.h>

#include <cerrno>
#include <map>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/progs.h"
#include "core/rollback.h"

namespace tcd {
namespace {

// key -> program id for every wired key of the jump table.
std::map<uint32_t, uint32_t> jt_ids(int jt, KeyKind kind) {
    std::map<uint32_t, uint32_t> out;
    for (uint32_t key = 0; key <= max_key(kind); key++) {
        uint32_t id = 0;
        if (bpf_map_lookup_elem(jt, &key, &id) == 0 && id) out[key] = id;
    }
    return out;
}

// Puts prog at every key in keys.
int repoint(int jt, const std::vector<uint32_t>& keys, int prog) {
    for (uint32_t key : keys) {
        uint32_t k = key;
        if (bpf_map_update_elem(jt, &k, &prog, BPF_ANY) != 0) return errno;
    }
    return 0;
}

}  // namespace

void BuiltinUpgrade::undo() {
    for (auto it = old_.rbegin(); it != old_.rend(); ++it) {
        repoint(jt_, it->keys, it->fd.get());
        (void)bpffs::pin(it->fd.get(), it->pin);
        (void)bpffs::remove(bpffs::staged_path(it->pin));
    }
    old_.clear();
    names_.clear();
}

Result<BuiltinUpgrade> replace_builtins(const Instance& in, const std::vector<std::pair<std::string, int>>& fresh) {
    BuiltinUpgrade up;
    up.jt_ = in.jt_fd();
    Rollback back;  // a failure puts back the built-ins replaced before it
    back.push([&up] { up.undo(); });
    auto wired = jt_ids(in.jt_fd(), in.kind().key);
    for (const auto& [name, fd] : fresh) {
        std::string pin = in.paths().handler(name);
        if (!bpffs::exists(pin)) continue;
        auto old = bpffs::get(pin);
        if (!old) return propagate(old);
        auto info = prog_info(old->get());
        if (!info) return propagate(info);
        std::string staged = bpffs::staged_path(pin);
        if (auto r = bpffs::pin(fd, staged); !r) return propagate(r);
        crash_point("load");
        BuiltinUpgrade::Old o{name, pin, std::move(*old), {}};
        for (const auto& [key, id] : wired)
            if (id == info->id) o.keys.push_back(key);
        up.old_.push_back(std::move(o));
        if (int err = repoint(in.jt_fd(), up.old_.back().keys, fd))
            return fail_errno("repoint the keys wired to " + name, err);
        crash_point("load");
        if (auto r = bpffs::rename(staged, pin); !r) return propagate(r);
        crash_point("load");
        up.names_.push_back(name);
    }
    back.commit();
    return up;
}

void complete_builtin_upgrade(const std::string& dir) {
    // Nothing staged (every command but one after a killed upgrade): a few
    // stat calls, the instance not opened.
    const Paths paths{dir};
    if (std::none_of(builtin_handlers().begin(), builtin_handlers().end(),
                     [&](const std::string& name) { return bpffs::exists(bpffs::staged_path(paths.handler(name))); }))
        return;
    auto in = Instance::open_for_teardown(dir);
    if (!in || in->jt_fd() < 0) return;
    std::map<uint32_t, uint32_t> wired;
    bool scanned = false;
    for (const auto& name : builtin_handlers()) {
        std::string pin = in->paths().handler(name), staged = bpffs::staged_path(pin);
        if (!bpffs::exists(staged)) continue;
        auto fd = bpffs::get(staged);
        if (!fd || fd_kind(fd->get()) != ObjKind::prog) continue;
        auto info = prog_info(fd->get());
        if (!info) continue;
        if (!scanned) wired = jt_ids(in->jt_fd(), in->kind().key), scanned = true;
        bool runs = false;
        for (const auto& [key, id] : wired) runs |= id == info->id;
        if (!runs && bpffs::exists(pin)) continue;  // not begun: dropped with the temporary pins
        if (auto old = bpffs::get(pin))
            if (auto oi = prog_info(old->get())) {
                std::vector<uint32_t> keys;
                for (const auto& [key, id] : wired)
                    if (id == oi->id) keys.push_back(key);
                repoint(in->jt_fd(), keys, fd->get());
            }
        (void)bpffs::rename(staged, pin);
    }
}

}  // namespace tcd
