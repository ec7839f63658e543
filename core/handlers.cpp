#include "core/handlers.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/jumptable.h"
#include "core/log.h"
#include "core/reasons.h"
#include "core/rollback.h"
#include "core/wiring.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

constexpr size_t kMaxName = 15;  // BPF_OBJ_NAME_LEN - 1

bool reserved_name(const std::string& name) {
    const auto& b = builtin_handlers();
    return name == TCD_PROG_DISPATCH || name == TCD_PROG_TC_DISPATCH || std::find(b.begin(), b.end(), name) != b.end();
}

// The object's map must be the pinned one in every way the programs see.
Result<> check_shared_map(bpf_map* m, int pinned_fd, const std::string& object, const std::string& pin) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(pinned_fd, &info, &len) != 0) return fail_errno("read " + pin, errno);
    std::string name = bpf_map__name(m);
    auto differ = [&](const char* field, uint64_t mine, uint64_t theirs) {
        return fail("map " + name, fmt::format("{} is {} in {}, {} in the pinned {}", field, mine, object, theirs, pin),
                    "declare it as <tcd/handler.h> does");
    };
    if (bpf_map__type(m) != info.type)
        return fail("map " + name,
                    fmt::format("type is {} in {}, {} in the pinned {}",
                                libbpf_bpf_map_type_str(bpf_map__type(m)),
                                object, libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type)), pin),
                    "declare it as <tcd/handler.h> does");
    if (bpf_map__key_size(m) != info.key_size) return differ("key size", bpf_map__key_size(m), info.key_size);
    if (bpf_map__value_size(m) != info.value_size) return differ("value size", bpf_map__value_size(m), info.value_size);
    if (bpf_map__max_entries(m) != info.max_entries)
        return differ("max_entries", bpf_map__max_entries(m), info.max_entries);
    return {};
}

// libbpf adds the frags flag at load time for SEC("xdp.frags"...), whatever
// the program's flags say. While a handler object is opened and loaded, tcd's
// own section handlers take those sections and load them as plain XDP.
class NoFragsSections {
public:
    NoFragsSections() {
        // libbpf 1.1 frees its table of custom handlers when the last one is
        // unregistered and then writes to it on the next registration: one
        // registration that stays keeps the table alive.
        static const int keep = libbpf_register_prog_handler("tcd.unused", BPF_PROG_TYPE_XDP, BPF_XDP, nullptr);
        (void)keep;
        LIBBPF_OPTS(libbpf_prog_handler_opts, o, .prog_prepare_load_fn = clear_frags);
        for (const char* sec : {"xdp.frags", "xdp.frags/"}) {
            int id = libbpf_register_prog_handler(sec, BPF_PROG_TYPE_XDP, BPF_XDP, &o);
            if (id >= 0) ids_.push_back(id);
        }
    }
    ~NoFragsSections() {
        for (int id : ids_) libbpf_unregister_prog_handler(id);
    }

private:
    static int clear_frags(bpf_program*, bpf_prog_load_opts* opts, long) {
        opts->prog_flags &= ~BPF_F_XDP_HAS_FRAGS;
        return 0;
    }
    std::vector<int> ids_;
};

Result<> check_object_file(const std::string& what, const std::string& object) {
    struct stat st {};
    if (stat(object.c_str(), &st) != 0) {
        if (errno == ENOENT) return fail(what, "no such file", "", ENOENT);
        return fail_errno(what, errno);
    }
    if (!S_ISREG(st.st_mode)) return fail(what, "not a regular file");
    return {};
}

Result<BpfObjectPtr> open_object(const std::string& what, const std::string& object) {
    LIBBPF_OPTS(bpf_object_open_opts, oo);
    BpfObjectPtr obj(bpf_object__open_file(object.c_str(), &oo));
    if (!obj) {
        int err = errno;
        if (err == ENOENT || err == EINVAL || err >= 4000)
            return fail(what, "not a BPF ELF object", "build it with clang -target bpf -O2 -g", err);
        return fail_errno(what, err);
    }
    return obj;
}

// Chooses the programs (all of the hook's type, or those named), and makes
// them load the way the dispatcher is loaded. An XDP instance takes XDP
// programs, a tc instance tc (sched_cls) ones. The others do not load.
Result<std::vector<bpf_program*>> choose_programs(const std::string& what, bpf_object* obj, const Instance& in,
                                                  const std::vector<std::string>& progs) {
    const bool tc = in.kind().hook == Hook::tc;
    const bpf_prog_type want = tc ? BPF_PROG_TYPE_SCHED_CLS : BPF_PROG_TYPE_XDP;
    const char* want_name = tc ? "tc" : "xdp";
    // The expected attach type the jump table takes: BPF_XDP, or none when
    // its owner is a freplace program (kernels with the prog-array check).
    const auto xdp_attach = static_cast<bpf_attach_type>(
        tc ? 0u : xdp_table_attach_type(in.dispatcher_fd()).value_or(uint32_t(BPF_XDP)));
    std::vector<bpf_program*> chosen;
    std::vector<std::string> available;
    bpf_program* p;
    bpf_object__for_each_program(p, obj) {
        std::string name = bpf_program__name(p);
        bool xdp = bpf_program__type(p) == want;
        if (xdp) available.push_back(name);
        bool named = std::find(progs.begin(), progs.end(), name) != progs.end();
        if (!progs.empty() && !named) {
            bpf_program__set_autoload(p, false);
            continue;
        }
        if (!xdp) {
            if (named)
                return fail(what, fmt::format("program {} is a {} program; the jump table takes {}", name,
                                              prog_type_name(bpf_program__type(p)), prog_type_name(want)),
                            fmt::format("write it as SEC(\"{}\")", want_name));
            bpf_program__set_autoload(p, false);
            continue;
        }
        if (name.size() > kMaxName)
            return fail(what, fmt::format("program name {} is longer than {} characters", name, kMaxName),
                        "the kernel keeps 15; rename the function");
        if (reserved_name(name))
            return fail(what, fmt::format("program {} has the name of a built-in program", name), "rename it");
        if (bpffs::exists(in.paths().handler(name)))
            return worded(fail(what, fmt::format("a handler named {} is pinned already", name)),
                          Reason::handler_unload_first, {name});
        if (!tc) bpf_program__set_expected_attach_type(p, xdp_attach);
        bpf_program__set_flags(p, bpf_program__flags(p) & ~BPF_F_XDP_HAS_FRAGS);
        chosen.push_back(p);
    }
    for (const auto& named : progs)
        if (std::none_of(chosen.begin(), chosen.end(), [&](bpf_program* c) { return named == bpf_program__name(c); })) {
            return fail(what, fmt::format("no {} program named {}", want_name, named),
                        available.empty() ? fmt::format("it has no {} program", want_name)
                                          : fmt::format("it has: {}", fmt::join(available, ", ")));
        }
    if (chosen.empty())
        return fail(what, fmt::format("no {} program in it", want_name),
                    fmt::format("handlers of this instance are SEC(\"{}\") programs", want_name));
    return chosen;
}

// Maps with a tcd map's name are the instance's pinned ones; their names go to
// `shared`. The pinned maps' fds, held until the object is loaded.
Result<std::vector<UniqueFd>> share_maps(const std::string& what, bpf_object* obj, const Instance& in,
                                         const std::string& object, std::vector<std::string>& shared) {
    std::vector<UniqueFd> reused;
    bpf_map* m;
    bpf_object__for_each_map(m, obj) {
        std::string name = bpf_map__name(m);
        std::string pin;
        if (name == TCD_MAP_JT) pin = in.paths().jt();
        else if (name == TCD_MAP_STATS) pin = in.paths().stats();
        else if (name == TCD_MAP_PORT_SLOT && in.kind().key == KeyKind::port) pin = in.paths().port_slot();
        else if (name == TCD_MAP_PORT_SLOT)
            return worded(fail(what, fmt::format("map {} is a tcd map that only port instances have", name)),
                          Reason::port_instance_for_handler);
        else if (name == TCD_MAP_TRACE || name == TCD_MAP_ATTACH)
            return fail(what, fmt::format("map {} has the name of a map tcd keeps to itself", name),
                        "rename it; handlers share only jt, proto_stats and port_slot");
        else continue;
        auto fd = bpffs::get(pin);
        if (!fd) return propagate(fd);
        if (auto r = check_shared_map(m, fd->get(), object, pin); !r) return propagate(r);
        if (int err = bpf_map__reuse_fd(m, fd->get())) return fail_errno("reuse " + pin, -err);
        shared.push_back(name);
        reused.push_back(std::move(*fd));
    }
    return reused;
}

Result<> load_object(const std::string& what, bpf_object* obj) {
    if (int err = bpf_object__load(obj)) {
        if (std::string v = last_verifier_words(); !v.empty())
            return worded(fail(what, "the verifier rejected it: " + v, "", -err), Reason::verbose_whole_log);
        return or_verbose(fail(what, "the kernel refused it: " + errno_words(-err), errno_hint(-err), -err),
                          "the verifier log", last_library_warning());
    }
    return {};
}

// Pins them all under temporary names, then renames them into place: a
// command killed in the first pass leaves the old set and temporary pins
// (which status names and the next handler load or unload removes), one
// killed among the renames a set that status shows as half made. A failure
// undoes both passes. An earlier, interrupted command's temporary pins go
// first; a staged dispatcher is load's to adopt.
Result<std::vector<LoadedHandler>> pin_handlers(const Instance& in, const std::vector<bpf_program*>& chosen) {
    bpffs::remove_temp_pins(in.paths().dir, true);
    std::vector<std::string> temps, placed;
    Rollback undo;
    undo.push([&] {
        for (const auto& path : temps) (void)bpffs::remove(path);
        for (const auto& path : placed) (void)bpffs::remove(path);
    });
    for (bpf_program* c : chosen) {
        std::string tmp = bpffs::temp_path(in.paths().handler(bpf_program__name(c)));
        (void)bpffs::remove(tmp);
        if (bpf_obj_pin(bpf_program__fd(c), tmp.c_str()) != 0) {
            int err = errno;
            return fail_errno("pin " + in.paths().handler(bpf_program__name(c)), err);
        }
        temps.push_back(tmp);
        crash_point("handler");
    }
    std::vector<LoadedHandler> loaded;
    for (size_t i = 0; i < chosen.size(); i++) {
        std::string name = bpf_program__name(chosen[i]);
        std::string path = in.paths().handler(name);
        if (auto r = bpffs::rename(temps[i], path); !r) return propagate(r);
        placed.push_back(path);
        temps[i].clear();
        crash_point("handler");
        auto info = prog_info(bpf_program__fd(chosen[i]));
        loaded.push_back({name, info ? info->id : 0, info ? info->tag : ""});
    }
    undo.commit();
    return loaded;
}

}  // namespace

Result<HandlerLoadResult> load_handlers(const Instance& in, const std::string& object,
                                        const std::vector<std::string>& progs) {
    std::string what = "handler load " + object;
    if (auto r = check_object_file(what, object); !r) return propagate(r);

    NoFragsSections no_frags;  // from opening to loading
    auto obj = open_object(what, object);
    if (!obj) return propagate(obj);
    auto chosen = choose_programs(what, obj->get(), in, progs);
    if (!chosen) return propagate(chosen);
    HandlerLoadResult res;
    res.object = object;
    auto shared = share_maps(what, obj->get(), in, object, res.shared_maps);
    if (!shared) return propagate(shared);
    if (auto r = load_object(what, obj->get()); !r) return propagate(r);

    auto loaded = pin_handlers(in, *chosen);
    if (!loaded) return propagate(loaded);
    res.loaded = std::move(*loaded);
    return res;
}

Result<std::vector<std::string>> object_programs(const std::string& object, Hook hook) {
    std::string what = "handler object " + object;
    struct stat st {};
    if (stat(object.c_str(), &st) != 0) return fail(what, "no such file", "", errno);
    NoFragsSections no_frags;
    BpfObjectPtr obj(bpf_object__open_file(object.c_str(), nullptr));
    if (!obj) return fail(what, "not a BPF ELF object", "build it with clang -target bpf -O2 -g", errno);
    const bpf_prog_type want = hook == Hook::tc ? BPF_PROG_TYPE_SCHED_CLS : BPF_PROG_TYPE_XDP;
    std::vector<std::string> names;
    bpf_program* p;
    bpf_object__for_each_program(p, obj.get()) if (bpf_program__type(p) == want) names.push_back(bpf_program__name(p));
    return names;
}

Result<HandlerUnloadResult> unload_handler(const Instance& in, const std::string& name, bool force) {
    std::string what = "handler " + name;
    if (name.empty() || name.find('/') != std::string::npos) return usage_error(what, "not a handler name");
    if (name == TCD_PROG_DISPATCH) return worded(fail(what, "is the dispatcher"), Reason::dispatcher_not_handler);
    if (reserved_name(name)) return worded(fail(what, "is built in"), Reason::builtin_not_handler);
    std::string path = in.paths().handler(name);
    auto fd = bpffs::get(path);
    if (!fd) {
        if (fd.error().err == ENOENT)
            return worded(fail(what, "not pinned in " + in.paths().dir), Reason::see_handler_list);
        return propagate(fd, what);
    }
    if (fd_kind(fd->get()) != ObjKind::prog) return fail(what, "is not a program");
    auto info = prog_info(fd->get());
    if (!info) return propagate(info);

    HandlerUnloadResult res;
    res.name = name;
    res.kind = in.kind().key;
    auto wiring = list_wiring(in);
    if (!wiring) return propagate(wiring);
    std::vector<uint32_t> keys;
    for (const auto& w : *wiring)
        if (w.prog_id == info->id) keys.push_back(w.key);
    if (!keys.empty()) {
        const std::string list = fmt::format("{}", fmt::join(keys, " "));
        if (!force)
            return worded(fail(what, "is wired at key" + std::string(keys.size() > 1 ? "s " : " ") + list),
                          Reason::map_del_or_force, {list});
        auto del = unwire_keys(in, keys);  // and a dispatcher without them, if they were direct
        if (!del) return propagate(del);
        res.unwired = keys;
    }
    if (auto r = bpffs::remove(path); !r) return propagate(r);
    return res;
}

}  // namespace tcd
