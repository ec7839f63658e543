#include "core/monitor.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/attach.h"
#include "core/bpffs.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lifecycle.h"
#include "core/lock.h"
#include "core/netns.h"
#include "core/reasons.h"
#include "core/trace.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace tcd {

const char* const kVerdictNotShown =
    "not shown: a handler's verdict is returned past the dispatcher's tail call, and tcd does not attach an fexit "
    "program to see it";

namespace {

// ---- who monitors: /run/tcd/NAME.monitor ---------------------------------

std::string marker_path(const std::string& dir) {
    std::string p = InstanceLock::path_for(dir);
    if (p.size() > 5 && p.compare(p.size() - 5, 5, ".lock") == 0) p.resize(p.size() - 5);
    return p + ".monitor";
}

// Field 22 of /proc/PID/stat: when the process started (ticks since boot);
// 0 when it is gone.
uint64_t start_time(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close = s.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(s.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 22 && rest >> field; i++)
        if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
    return 0;
}

struct Marker {
    long pid = 0;
    uint64_t started = 0;
    std::vector<std::string> dirs;  // every instance the monitor runs on
    bool alive() const { return pid > 0 && start_time(pid) == started && started != 0; }
};

std::optional<Marker> read_marker(const std::string& dir) {
    std::ifstream f(marker_path(dir));
    if (!f) return std::nullopt;
    Marker m;
    if (!(f >> m.pid >> m.started)) return std::nullopt;
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line))
        if (!line.empty()) m.dirs.push_back(line);
    return m;
}

Result<> write_marker(const std::string& dir, const Marker& m) {
    std::string path = marker_path(dir), tmp = path + ".tmp";
    // The lock directory (/run/tcd), made here when no lock was taken yet.
    std::string parent = path.substr(0, path.rfind('/'));
    if (!parent.empty() && ::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
        return fail_errno("record the monitor in " + path, errno);
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << m.pid << ' ' << m.started << '\n';
        for (const auto& d : m.dirs) f << d << '\n';
        if (!f) return fail_errno("record the monitor in " + path, errno);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail_errno("record the monitor in " + path, errno);
    return {};
}

// dir's live dispatcher back to the plain build (under its lock), if it is
// a monitoring one.
Result<> put_plain_back(const std::string& dir) {
    auto lock = LockSet::acquire({dir}, false);
    if (!lock) return propagate(lock);
    if (!Instance::is_loaded(dir)) return {};
    auto in = Instance::open(dir);
    if (!in) return propagate(in);
    auto live = read_monitor_build(in->dispatcher());
    if (!live || !*live) return {};
    LoadOptions o;
    o.force = true;
    o.kind = in->kind();
    o.miss = in->miss_action();
    o.upgrade_builtins = false;
    o.plain = true;
    if (auto keys = read_direct_keys(in->dispatcher())) o.direct = *keys;
    auto r = load(dir, o);
    if (!r) return propagate(r, "put the plain dispatcher back on " + dir);
    return {};
}

// The instances dir wires (its children), each with its level, dir first.
std::vector<std::pair<std::string, int>> tree_below(const std::string& dir) {
    std::vector<std::pair<std::string, int>> out{{tree::canon(dir), 0}};
    std::set<std::string> seen{out[0].first};
    for (size_t i = 0; i < out.size() && out.size() < 255; i++) {
        auto [at, level] = out[i];
        for (const auto& rec : tree::records(at)) {
            if (rec.up || seen.count(rec.other)) continue;
            if (!tree::link_holds(at, rec.key, rec.other)) continue;
            if (!Instance::is_loaded(rec.other)) continue;
            seen.insert(rec.other);
            out.emplace_back(rec.other, level + 1);
        }
    }
    return out;
}

// ---- frames ---------------------------------------------------------------

// The miss action (or undispatched verdict) a dispatcher returned.
std::optional<MissAction> action_of(uint32_t verdict, Hook hook) {
    for (MissAction a : {MissAction::pass, MissAction::drop, MissAction::next})
        if (miss_action_fits(a, hook) && miss_action_verdict(a, hook) == verdict) return a;
    return std::nullopt;
}

}  // namespace

Result<> check_monitor_options(const MonitorOptions& o) {
    if (o.sample == 0) return usage_error("sampling", "one frame in 0: must be 1 (every frame) or more");
    if (o.rate == 0) return usage_error("rate limit", "must be 1 event per second or more");
    if (o.snaplen > TCD_MON_SNAP_MAX)
        return usage_error("snap length", fmt::format("must be {} bytes or fewer", TCD_MON_SNAP_MAX));
    if (o.keys.size() > TCD_MON_KEYS)
        return usage_error("key filter", fmt::format("{} keys; at most {}", o.keys.size(), TCD_MON_KEYS));
    if (o.level && (*o.level < 0 || *o.level > 254)) return usage_error("level", "must be 0 to 254");
    return {};
}

// ---- the monitor ------------------------------------------------------------

struct Monitor::State {
    struct Inst {
        std::string dir;
        int level = 0;
        Kind kind{};
        UniqueFd jt;
        std::vector<Attachment> attached;
        bool swapped = false;
    };
    std::vector<Inst> insts;       // by index in the events (inst)
    std::vector<std::pair<std::string, int>> listed;
    std::vector<std::string> marked;  // dirs with a marker of ours
    std::vector<UniqueFd> maps;    // ev, cpu
    int ev_fd = -1, cpu_fd = -1;
    perf_buffer* pb = nullptr;
    bool stopped = false;
    bool misses_only = false;
    int64_t wall_offset = 0;       // realtime - monotonic
    std::map<size_t, std::map<uint32_t, std::string>> names;  // instance -> prog id -> name
    std::map<uint32_t, std::pair<std::string, std::string>> ifaces;  // ifindex -> name, netns
    struct Pending {
        MonitorEvent ev;
        uint32_t seq = 0;
        int age = 0;
    };
    std::map<int, Pending> pending;  // per CPU: a jump whose miss follow-up may come
    std::vector<MonitorEvent> ready;
    uint64_t lost = 0;

    ~State() {
        if (pb) perf_buffer__free(pb);
    }

    // A program's name as instance `at` sees it: its own pins by name,
    // another monitored instance's dispatcher as "dispatcher of DIR", its
    // other pins as DIR/NAME, else the kernel's name. Cached per instance,
    // read again for an id not seen yet (a handler wired meanwhile).
    std::string name_of(uint32_t id, size_t at) {
        auto& cache = names[at];
        if (auto it = cache.find(id); it != cache.end()) return it->second;
        for (size_t j = 0; j < insts.size(); j++) {
            if (j == at) continue;
            for (const auto& p : pinned_programs(insts[j].dir))
                cache[p.info.id] = p.name == dispatcher_name(insts[j].kind.hook) ? "dispatcher of " + insts[j].dir
                                                                                  : insts[j].dir + "/" + p.name;
        }
        for (const auto& p : pinned_programs(insts[at].dir)) cache[p.info.id] = p.name;
        if (auto it = cache.find(id); it != cache.end()) return it->second;
        if (auto fd = prog_fd_by_id(id))
            if (auto info = prog_info(fd->get())) return cache[id] = info->name;
        return "";
    }

    void iface_of(MonitorEvent& ev) {
        auto it = ifaces.find(ev.ifindex);
        if (it == ifaces.end()) {
            std::pair<std::string, std::string> v;
            for (const auto& in : insts)
                for (const auto& a : in.attached)
                    if (a.ifindex == ev.ifindex && v.first.empty()) v = {a.ifname, a.netns};
            if (v.first.empty()) {
                char b[IF_NAMESIZE] = {};
                if (if_indextoname(ev.ifindex, b)) v.first = b;
            }
            it = ifaces.emplace(ev.ifindex, v).first;
        }
        ev.ifname = it->second.first;
        ev.netns = it->second.second;
    }

    MonitorEvent translate(const tcd_mon_event& e, const uint8_t* frame, size_t caplen) {
        MonitorEvent ev;
        ev.time_ns = int64_t(e.ts_ns) + wall_offset;
        ev.ifindex = e.ifindex;
        ev.len = e.len;
        ev.site = e.site;
        ev.level = e.level;
        ev.cls = class_name(e.cls);
        ev.decision = e.decision == TCD_MON_DIRECT     ? Decision::direct
                      : e.decision == TCD_MON_INDIRECT ? Decision::indirect
                      : e.decision == TCD_MON_MISS     ? Decision::miss
                                                       : Decision::undispatched;
        ev.frame.assign(frame, frame + caplen);
        ev.summary = summarize_frame(frame, caplen);
        if (e.inst < insts.size()) {
            const Inst& in = insts[e.inst];
            ev.instance = in.dir;
            ev.hook = in.kind.hook;
            ev.key_kind = in.kind.key;
            ev.ingress = in.kind.hook == Hook::xdp ? true : e.ingress;
            // tc: the direction the instance is attached in, when it is one.
            std::set<Direction> dirs;
            for (const auto& a : in.attached)
                if (a.ifindex == e.ifindex && a.direction != Direction::none) dirs.insert(a.direction);
            if (in.kind.hook == Hook::tc && dirs.size() == 1) ev.ingress = *dirs.begin() == Direction::ingress;
            if (e.cls <= TCD_CLASS_IPV6) {
                ev.key = e.key;
                ev.key_name = key_name(in.kind.key, e.key);
            }
            if (ev.decision == Decision::direct || ev.decision == Decision::indirect) {
                uint32_t key = e.key, id = 0;
                if (bpf_map_lookup_elem(in.jt.get(), &key, &id) == 0 && id) {
                    ev.prog_id = id;
                    ev.handler = name_of(id, e.inst);
                }
            }
            if (ev.decision == Decision::miss || ev.decision == Decision::undispatched)
                ev.miss_action = action_of(e.verdict, in.kind.hook);
        }
        iface_of(ev);
        return ev;
    }

    void on_sample(int cpu, const void* data, uint32_t size) {
        if (size < sizeof(tcd_mon_event)) return;
        tcd_mon_event e;
        std::memcpy(&e, data, sizeof e);
        size_t caplen = std::min<size_t>(e.caplen, size - sizeof e);
        const uint8_t* frame = static_cast<const uint8_t*>(data) + sizeof e;
        auto it = pending.find(cpu);
        if (e.decision == TCD_MON_MISS && !misses_only) {
            // The follow-up of a jump whose tail call fell through.
            if (it != pending.end() && it->second.seq + 1 == e.seq) {
                MonitorEvent ev = std::move(it->second.ev);
                pending.erase(it);
                ev.decision = Decision::miss;
                ev.handler.clear();
                ev.prog_id = 0;
                if (e.inst < insts.size()) ev.miss_action = action_of(e.verdict, insts[e.inst].kind.hook);
                ready.push_back(std::move(ev));
            }
            return;
        }
        if (it != pending.end()) {
            ready.push_back(std::move(it->second.ev));
            pending.erase(it);
        }
        MonitorEvent ev = translate(e, frame, caplen);
        if ((e.decision == TCD_MON_DIRECT || e.decision == TCD_MON_INDIRECT) && !misses_only)
            pending[cpu] = Pending{std::move(ev), e.seq, 0};
        else
            ready.push_back(std::move(ev));
    }
};

namespace {
void sample_cb(void* ctx, int cpu, void* data, __u32 size) { static_cast<Monitor::State*>(ctx)->on_sample(cpu, data, size); }
void lost_cb(void* ctx, int, __u64 n) { static_cast<Monitor::State*>(ctx)->lost += n; }

int64_t wall_minus_mono() {
    timespec r{}, m{};
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    return (int64_t(r.tv_sec) - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
}
}  // namespace

Monitor::Monitor(Monitor&&) noexcept = default;
Monitor& Monitor::operator=(Monitor&&) noexcept = default;
Monitor::~Monitor() { (void)stop(); }

const std::vector<std::pair<std::string, int>>& Monitor::instances() const { return s_->listed; }
uint64_t Monitor::lost() const { return s_ ? s_->lost : 0; }

uint64_t Monitor::suppressed() const {
    if (!s_ || s_->cpu_fd < 0) return 0;
    int n = libbpf_num_possible_cpus();
    if (n <= 0) return 0;
    std::vector<tcd_mon_cpu> v(n);
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(s_->cpu_fd, &zero, v.data()) != 0) return 0;
    uint64_t total = 0;
    for (const auto& c : v) total += c.suppressed;
    return total;
}

Result<Monitor> Monitor::start(const std::string& dir, const MonitorOptions& o) {
    if (auto r = check_monitor_options(o); !r) return propagate(r);
    if (!Instance::is_loaded(dir)) {
        auto in = Instance::open(dir);  // says why
        return propagate(in, "monitor");
    }
    Monitor m;
    m.s_ = std::make_unique<State>();
    State& s = *m.s_;
    s.misses_only = o.misses;
    s.wall_offset = wall_minus_mono();
    uint32_t ifindex = 0;
    if (!o.iface.empty()) {
        auto ns = NetnsGuard::enter(o.netns);
        if (!ns) return propagate(ns);
        ifindex = if_nametoindex(o.iface.c_str());
        if (!ifindex)
            return fail("interface " + o.iface, "no such interface" + ns_words(o.netns),
                        o.netns.empty() ? "see 'ip link'" : "see 'ip -n NAME link'");
    }

    auto below = tree_below(dir);
    // A monitor that runs already is refused; one that was killed is taken back.
    for (const auto& [d, level] : below) {
        if (auto found = read_marker(d); found && found->alive())
            return worded(fail("monitor", fmt::format("a monitor (pid {}) runs on {}", found->pid, d)),
                          Reason::monitor_runs, {std::to_string(found->pid)});
        (void)recover_orphaned_monitor(d);
    }
    for (const auto& [d, level] : below)
        if (!o.level || *o.level == level) s.listed.emplace_back(d, level);
    if (s.listed.empty())
        return fail("monitor", fmt::format("no instance at level {} below {}", *o.level, dir),
                    fmt::format("the tree has levels 0 to {}", below.back().second));

    Marker mark{getpid(), start_time(getpid()), {}};
    for (const auto& [d, level] : s.listed) mark.dirs.push_back(d);
    for (const auto& d : mark.dirs) {
        if (auto r = write_marker(d, mark); !r) return propagate(r);
        s.marked.push_back(d);
    }

    int ncpu = std::max(1, libbpf_num_possible_cpus());
    MonitorBuild mb;
    mb.sample = o.sample;
    mb.snaplen = o.snaplen;
    mb.ifindex = ifindex;
    mb.misses = o.misses;
    mb.keys = o.keys;
    mb.gap_ns = uint64_t(1000000000ULL) * uint64_t(ncpu) / o.rate;
    // Bursts of up to 100 ms' worth of events (one at least) pass whole.
    mb.burst_ns = std::max<uint64_t>(mb.gap_ns, 100000000ULL);
    for (size_t i = 0; i < s.listed.size(); i++) {
        const auto& [d, level] = s.listed[i];
        auto lock = LockSet::acquire({d}, true);
        if (!lock) return propagate(lock);
        recover_interrupted(d);
        auto in = Instance::open(d);
        if (!in) return propagate(in);
        State::Inst inst;
        inst.dir = d;
        inst.level = level;
        inst.kind = in->kind();
        inst.jt = UniqueFd(dup(in->jt_fd()));
        inst.attached = attachments(*in);
        LoadOptions lo;
        lo.force = true;
        lo.kind = in->kind();
        lo.miss = in->miss_action();
        lo.upgrade_builtins = false;
        if (auto keys = read_direct_keys(in->dispatcher())) lo.direct = *keys;
        mb.level = uint8_t(level);
        mb.inst = uint8_t(i);
        // --key names the root's keys: it filters the instances of its kind.
        mb.keys = s.insts.empty() || in->kind().key == s.insts.front().kind.key ? o.keys : std::vector<uint32_t>{};
        mb.ev_fd = s.ev_fd;
        mb.cpu_fd = s.cpu_fd;
        lo.monitor = mb;
        inst.swapped = true;  // from here on, stop() looks at it
        s.insts.push_back(std::move(inst));
        auto r = load(d, lo);
        if (!r) return propagate(r, "swap the monitoring dispatcher in on " + d);
        if (s.ev_fd < 0) {
            std::vector<UniqueFd> fds;
            auto live = read_monitor_build(r->dispatcher, &fds);
            if (!live) return propagate(live);
            if (!*live) return fail("monitor", "the dispatcher swapped in on " + d + " is no monitoring build");
            s.ev_fd = (*live)->ev_fd;
            s.cpu_fd = (*live)->cpu_fd;
            s.maps = std::move(fds);
        }
    }
    LIBBPF_OPTS(perf_buffer_opts, pbo);
    s.pb = perf_buffer__new(s.ev_fd, 16, sample_cb, lost_cb, &s, &pbo);
    if (!s.pb) return fail_errno("open the monitor's perf buffers", errno);
    return m;
}

Result<> Monitor::poll(int timeout_ms, const std::function<bool(const MonitorEvent&)>& on) {
    State& s = *s_;
    int n = perf_buffer__poll(s.pb, timeout_ms);
    if (n < 0 && n != -EINTR) return fail_errno("read the monitor's events", -n);
    // A jump still waiting for a miss follow-up after a whole poll round
    // went to its handler: the dispatcher writes both within one run.
    for (auto it = s.pending.begin(); it != s.pending.end();) {
        if (it->second.age++ >= 1) {
            s.ready.push_back(std::move(it->second.ev));
            it = s.pending.erase(it);
        } else {
            ++it;
        }
    }
    std::stable_sort(s.ready.begin(), s.ready.end(),
                     [](const MonitorEvent& a, const MonitorEvent& b) { return a.time_ns < b.time_ns; });
    auto ready = std::move(s.ready);
    s.ready.clear();
    for (const auto& ev : ready)
        if (!on(ev)) break;
    return {};
}

Result<> Monitor::drain(const std::function<bool(const MonitorEvent&)>& on) {
    State& s = *s_;
    int n = perf_buffer__consume(s.pb);
    if (n < 0 && n != -EINTR) return fail_errno("read the monitor's events", -n);
    for (auto& [cpu, p] : s.pending) s.ready.push_back(std::move(p.ev));
    s.pending.clear();
    return poll(0, on);
}

Result<> Monitor::stop() {
    if (!s_ || s_->stopped) return {};
    State& s = *s_;
    s.stopped = true;
    if (s.pb) {
        perf_buffer__free(s.pb);
        s.pb = nullptr;
    }
    Result<> first;
    for (auto it = s.insts.rbegin(); it != s.insts.rend(); ++it) {
        if (!it->swapped) continue;
        auto r = put_plain_back(it->dir);
        if (!r && first) first = propagate(r);
    }
    if (first)
        for (const auto& d : s.marked) ::unlink(marker_path(d).c_str());
    return first;
}

std::optional<Error> recover_orphaned_monitor(const std::string& dir) {
    auto m = read_marker(dir);
    if (!m || m->alive()) return std::nullopt;
    std::vector<std::string> back;
    bool ok = true;
    for (const auto& d : m->dirs) {
        if (!Instance::is_loaded(d)) continue;
        auto in = Instance::open(d);
        if (!in) continue;
        auto live = read_monitor_build(in->dispatcher());
        if (!live || !*live) continue;
        if (put_plain_back(d)) back.push_back(d);
        else ok = false;
    }
    if (ok)
        for (const auto& d : m->dirs) ::unlink(marker_path(d).c_str());
    if (back.empty()) return std::nullopt;
    std::string list;
    for (const auto& d : back) list += (list.empty() ? "" : ", ") + d;
    return finding("", Reason::monitor_orphan, {std::to_string(m->pid), list});
}

}  // namespace tcd
