#include "core/ownership.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <vector>

#include "core/bpffs.h"
#include "core/handler_paths.h"
#include "core/instance.h"
#include "core/progs.h"
#include "core/reasons.h"

namespace tcd {
namespace {

struct Entry {
    std::string name;
    bool dir = false;
};

std::vector<Entry> entries(const std::string& dir) {
    std::vector<Entry> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        bool is_dir = lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        out.push_back({name, is_dir});
    }
    closedir(d);
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
    return out;
}

ObjKind pin_kind(const std::string& path) {
    auto fd = bpffs::get(path);
    return fd ? fd_kind(fd->get()) : ObjKind::other;
}

const char* kind_word(ObjKind k) {
    switch (k) {
    case ObjKind::prog: return "a program";
    case ObjKind::map: return "a map";
    case ObjKind::link: return "a link";
    default: return "a pin";
    }
}

// The maps tcd pins in an instance's maps/.
bool is_tcd_map_name(const std::string& n) {
    return n == "jt" || n == "proto_stats" || n == "port_slot" || n == "slot_port" || n == "attach" || n == "mp_entry";
}

// "NAME (a program), NAME2 (a directory) and 3 more"
std::string describe(const std::string& dir, const std::vector<Entry>& es) {
    std::string s;
    size_t shown = std::min<size_t>(es.size(), 3);
    for (size_t i = 0; i < shown; ++i) {
        const Entry& e = es[i];
        std::string what = e.dir ? "a directory" : kind_word(pin_kind(dir + "/" + e.name));
        s += (i ? ", " : "") + e.name + " (" + what + ")";
    }
    if (es.size() > shown) s += fmt::format(" and {} more", es.size() - shown);
    return s;
}

bool is_mount_point(const std::string& dir) {
    struct stat self {}, parent {};
    if (stat(dir.c_str(), &self) != 0) return false;
    std::string up = dir + "/..";
    if (stat(up.c_str(), &parent) != 0) return false;
    return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

// Whether dir's own pins say it is an instance (loaded, or what an
// interrupted load left: tcd's maps, or only temporary pins).
bool has_instance_pins(const std::string& dir, const std::vector<Entry>& top) {
    Paths p{dir};
    for (Hook h : {Hook::xdp, Hook::tc})
        if (bpffs::exists(p.dispatcher(h)) && pin_kind(p.dispatcher(h)) == ObjKind::prog) return true;
    for (const auto& m : entries(p.maps_dir()))
        if (!m.dir && is_tcd_map_name(m.name) && pin_kind(p.maps_dir() + "/" + m.name) == ObjKind::map) return true;
    // Nothing but temporary pins (tcd's names) and an empty or temporary maps/.
    for (const auto& e : top) {
        if (e.dir && e.name == "maps") {
            for (const auto& m : entries(p.maps_dir()))
                if (m.dir || !bpffs::is_temp_pin(m.name)) return false;
            continue;
        }
        if (e.dir || !bpffs::is_temp_pin(e.name)) return false;
    }
    return true;
}

}  // namespace

DirCheck inspect_pin_dir(const std::string& dir) {
    DirCheck c;
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0) return c;  // missing
    if (!S_ISDIR(st.st_mode)) {
        c.owner = DirOwner::foreign;
        c.found = S_ISREG(st.st_mode) ? fmt::format("{} is {}, not an instance directory", dir, kind_word(pin_kind(dir)))
                                      : dir + " is not a directory";
        c.fix = Reason::give_dir;
        return c;
    }
    if (is_mount_point(dir)) {
        c.owner = DirOwner::foreign;
        c.found = dir + " is the root of a bpffs mount, not an instance directory";
        c.fix = Reason::give_own_dir;
        c.fix_args = {kDefaultPinDir};
        return c;
    }
    auto top = entries(dir);
    if (top.empty()) {
        c.owner = DirOwner::empty;
        return c;
    }
    if (!has_instance_pins(dir, top)) {
        c.owner = DirOwner::foreign;
        std::filesystem::path path(dir);
        while (path.has_relative_path() && path.filename().empty()) path = path.parent_path();  // a trailing '/'
        std::string parent = path.parent_path().string();
        std::string base = path.filename().string();
        if ((base == "maps" || base == "links" || base == "tree" || base == handler_paths::kDir) &&
            Instance::is_loaded(parent)) {
            c.found = fmt::format("{} is the {} directory of the instance {}, not an instance", dir, base, parent);
            c.fix = Reason::did_you_mean;
            c.fix_args = {parent};
        } else {
            c.found = fmt::format("{} is not a tcd instance: it holds {}", dir, describe(dir, top));
            c.fix = Reason::only_own;
        }
        return c;
    }
    // An instance: anything in it that tcd does not make stops a command
    // that would remove it, before anything is removed.
    std::vector<Entry> strange;
    auto note = [&](const std::string& sub, const Entry& e) {
        strange.push_back({sub + e.name, e.dir});
    };
    for (const auto& e : top) {
        if (e.dir) {
            if (e.name == "maps") {
                for (const auto& m : entries(dir + "/maps"))
                    if (m.dir || !(is_tcd_map_name(m.name) || bpffs::is_temp_pin(m.name))) note("maps/", m);
            } else if (e.name == "links") {
                for (const auto& l : entries(dir + "/links"))
                    if (l.dir) note("links/", l);
            } else if (e.name == handler_paths::kDir) {
                // tcd's records of the paths handlers were wired by
                // (symlinks key-N, core/handler_paths.h), and their temporaries.
                for (const auto& t : entries(dir + "/" + e.name)) {
                    struct stat ts {};
                    bool link = lstat((dir + "/" + e.name + "/" + t.name).c_str(), &ts) == 0 && S_ISLNK(ts.st_mode);
                    if (t.dir || !link || !(handler_paths::is_record_name(t.name) || bpffs::is_temp_pin(t.name)))
                        note(e.name + "/", t);
                }
            } else if (e.name == "tree" || e.name == "undo") {
                // tcd's records, symlinks (docs/datapath.md): tree/ holds the
                // instance tree's links (up-KEY-HASH, down-KEY-HASH), undo/ a
                // multi-pair map set's prior wiring (map-set, part-N); and
                // their temporaries.
                const bool tree = e.name == "tree";
                for (const auto& t : entries(dir + "/" + e.name)) {
                    struct stat ts {};
                    bool link = lstat((dir + "/" + e.name + "/" + t.name).c_str(), &ts) == 0 && S_ISLNK(ts.st_mode);
                    bool named = bpffs::is_temp_pin(t.name) ||
                                 (tree ? t.name.rfind("up-", 0) == 0 || t.name.rfind("down-", 0) == 0
                                       : t.name == "map-set" || t.name.rfind("part-", 0) == 0);
                    if (t.dir || !link || !named) note(e.name + "/", t);
                }
            } else {
                note("", e);
            }
        } else if (!bpffs::is_temp_pin(e.name) && e.name != dispatcher_name(Hook::xdp) &&
                   e.name != dispatcher_name(Hook::tc) && pin_kind(dir + "/" + e.name) != ObjKind::prog) {
            // tcd pins programs only at the top: handlers, and the dispatcher
            // (a dispatcher pin that is no program is the unload's own refusal).
            note("", e);
        }
    }
    if (!strange.empty()) {
        c.owner = DirOwner::foreign;
        c.found = fmt::format("{} holds entries tcd did not make: {}", dir, describe(dir, strange));
        c.fix = Reason::move_out;
        return c;
    }
    c.owner = DirOwner::instance;
    return c;
}

Result<> require_own_dir(const std::string& dir, const std::string& what) {
    DirCheck c = inspect_pin_dir(dir);
    if (c.owner == DirOwner::foreign) return worded(fail(what, c.found), c.fix, c.fix_args);
    return {};
}

}  // namespace tcd
