// tcd_bench: what a packet costs in tcd's dispatcher, against baselines
// measured in the same run (never as timed assertions in the tests), and
// what `map set` costs when it has to load a new dispatcher.
//
//   tcd_bench [--rounds N] [--repeat R] [--copies N] [--set-runs N] [--stats-runs N] [--json]
//   tcd_bench --scan RUNS [--json]   (only the instance-tree walk: see scan_bench)
//   tcd_bench --cli RUNS [--others N] [--tcd TCD] [--baseline TCD] [--json]   (only whole-process tcd against bpftool,
//       and another tcd binary in the same rounds: see cli_bench)
//   tcd_bench --respec RUNS [--json]   (only where a respecialise spends its time: see respec_bench)
//   tcd_bench --swap RUNS [--json]   (only what swapping the dispatcher costs at the hook and through a shim: see swap_bench)
//
// Dispatch: BPF_PROG_TEST_RUN's own duration with `repeat`, every program
// loaded in several copies, all programs interleaved round by round. Per
// program and frame it reports the least-disturbed figure (the minimum over
// every round and copy) beside the mean over all of them and the mean over
// the rounds in which the floor was at its minimum; a run whose floor moved
// during the run is flagged as disturbed. Programs: a bare XDP_PASS (the
// floor), the seeds' dispatcher with a counting tcp handler, seed 004 as
// written, tcd's proto dispatcher specialised to tcp udp icmp icmpv6 gre
// sctp and with nothing specialised (every key indirect), tcd's port
// dispatcher with 8, 16 and 17 wired ports, and lower bounds that are not
// dispatchers. Overheads are above the floor on the same frame, and as a
// ratio of the seeds' overhead. "tcd proto, through the entry" is the
// specialised proto dispatcher behind tcd's entry shim (bpf/entry.bpf.c, as
// in libxdp's multi-program mode): its overhead less the dispatcher's own is
// what the entry's tail call adds. The shim runs here as a plain XDP
// program, since freplace is refused on hosts under lockdown; libxdp's
// dispatcher's call into it is libxdp's cost, not measured here.
//
// map set: in-process latency of the core calls on an instance attached to
// a veth pair in a namespace of its own, median and minimum.
//
// Stats: `tcd stats -j` against `bpftool map dump` of the same counters map,
// as whole processes, interleaved, median wall time.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench.skel.h"
#include "tcd_entry.skel.h"
#include "core/attach.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/phases.h"
#include "core/probe.h"
#include "core/specialise.h"
#include "core/wiring.h"
#include "core/status.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace {

using Bytes = std::vector<uint8_t>;

// An Ethernet frame: untagged or 802.1Q, IPv4 or IPv6, then `l4` (a TCP
// header to `dport`, or 32 bytes of another protocol).
Bytes frame(bool vlan, bool v6, uint8_t proto = 6, uint16_t dport = 8080) {
    Bytes f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
    if (vlan) f.insert(f.end(), {0x81, 0x00, 0x00, 0x64});
    if (v6) {
        f.insert(f.end(), {0x86, 0xdd, 0x60, 0, 0, 0, 0, 40, proto, 64});
        for (int i = 0; i < 32; i++) f.push_back(uint8_t(i));
    } else {
        f.insert(f.end(), {0x08, 0x00, 0x45, 0, 0, 60, 0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2});
    }
    Bytes l4 = {0x30, 0x39, uint8_t(dport >> 8), uint8_t(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
                0, 0, 0, 0};
    f.insert(f.end(), l4.begin(), l4.end());
    f.resize(f.size() + 20, 0xab);
    return f;
}

int run_ns(int fd, const Bytes& f, int repeat) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.data(), .data_size_in = uint32_t(f.size()),
                .repeat = repeat);
    if (bpf_prog_test_run_opts(fd, &o) != 0) {
        std::fprintf(stderr, "tcd_bench: test_run: %s\n", strerror(errno));
        std::exit(1);
    }
    if (o.retval != XDP_PASS) {
        std::fprintf(stderr, "tcd_bench: unexpected verdict %u\n", o.retval);
        std::exit(1);
    }
    return int(o.duration);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Instances the --scan run made, unloaded by die() too.
std::vector<std::string> scan_dirs;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "tcd_bench: %s\n", what.c_str());
    for (const auto& d : scan_dirs) (void)tcd::unload(d, true);
    std::exit(1);
}

// A tcd dispatcher loaded the way tcd loads one: the embedded ELF, .rodata
// (miss action pass, the direct keys) set before load, tcp_handler wired at
// every key given (ports: each with a counter slot of its own).
struct TcdCopy {
    std::unique_ptr<tcd::DispatcherObject> obj;
    int fd = -1;
};

// monitor: the monitoring build (tcd monitor) whose sampling never picks a
// frame in the run (one in 2^32), so that every frame takes the unsampled path.
TcdCopy load_tcd(tcd::KeyKind key, const std::vector<uint32_t>& wired, bool specialise = true,
                 tcd::Hook hook = tcd::Hook::xdp, bool monitor = false) {
    auto o = tcd::DispatcherObject::open({key, hook}, monitor);
    if (!o) die(o.error().message());
    TcdCopy c;
    c.obj = std::make_unique<tcd::DispatcherObject>(std::move(*o));
    c.obj->configure(tcd::MissAction::pass, false);
    std::vector<tcd::WiredEntry> w;
    for (size_t i = 0; i < wired.size(); i++) {
        tcd::WiredEntry e;
        e.key = wired[i];
        e.slot = key == tcd::KeyKind::port ? uint32_t(i + 1) : 0;
        w.push_back(e);
    }
    c.obj->specialise(specialise ? tcd::choose_direct(key, w) : std::vector<tcd::DirectKey>{});
    if (monitor) {
        tcd::MonitorBuild mb;
        mb.sample = 0xffffffffu;
        if (auto r = c.obj->monitor(mb); !r) die(r.error().message());
    }
    if (auto r = c.obj->load(); !r) die("cannot load tcd's dispatcher (root?): " + r.error().message());
    int jt = bpf_map__fd(c.obj->map(TCD_MAP_JT));
    int h = bpf_program__fd(c.obj->program("tcp_handler"));
    for (const auto& e : w) {
        uint32_t k = e.key, s = e.slot;
        if (bpf_map_update_elem(jt, &k, &h, BPF_ANY) != 0) die("wire the jump table");
        if (key == tcd::KeyKind::port && bpf_map_update_elem(bpf_map__fd(c.obj->map(TCD_MAP_PORT_SLOT)), &k, &s, BPF_ANY))
            die("set a port slot");
    }
    c.fd = bpf_program__fd(c.obj->dispatcher());
    return c;
}

// Wall time of one process, ms; *cpu_ms (if given) its CPU time, user and
// system (wait4's rusage), which other tasks on the CPUs disturb far less.
double process_ms(const std::vector<std::string>& argv, double* cpu_ms = nullptr) {
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execvp(a[0], a.data());
        _exit(127);
    }
    int st = 0;
    struct rusage ru {};
    wait4(pid, &st, 0, &ru);
    double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die(argv[0] + std::string(" failed"));
    if (cpu_ms)
        *cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return wall;
}

double ms_of(const std::function<void()>& f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string load_avg() {
    double l[3] = {};
    if (getloadavg(l, 3) != 3) return "?";
    return fmt::format("{:.2f} {:.2f} {:.2f}", l[0], l[1], l[2]);
}

}  // namespace

// --scan: what walking bpffs for instance trees costs the commands that do it
// (map set, status, unload's check for parents), with 1, 10 and 50
// instances of one kind loaded side by side (not wired to each other), as a
// ratio to the same command on one instance with no others of ours present
// (other tools' instances on this machine's bpffs count in both). Median and
// minimum of `runs`, in-process.
nlohmann::ordered_json scan_bench(int runs, bool json_out) {
    nlohmann::ordered_json out;
    const std::string base = "/sys/fs/bpf/tcd-bench-scan-" + std::to_string(getpid()) + "-";
    auto spec = [](const char* n) { return *tcd::parse_handler_spec(n); };
    if (!json_out)
        std::printf("\ninstance-tree walk, in-process, median / min of %d (ms), ratio of medians to 1 instance:\n", runs);
    for (tcd::KeyKind kind : {tcd::KeyKind::proto, tcd::KeyKind::port}) {
        std::vector<std::string>& dirs = scan_dirs;
        auto cleanup = [&] {
            for (const auto& d : dirs) (void)tcd::unload(d, true);
            dirs.clear();
        };
        std::map<std::string, double> base_med;
        for (int n : {1, 10, 50}) {
            while (int(dirs.size()) < n) {
                std::string d = base + std::to_string(dirs.size());
                tcd::LoadOptions lo;
                lo.kind = {kind, tcd::Hook::xdp};
                if (auto l = tcd::load(d, lo); !l) {
                    cleanup();
                    die("load: " + l.error().message());
                }
                dirs.push_back(d);
                auto in = tcd::Instance::open(d);
                if (!in) die(in.error().message());
                // Each wires its key, as instances in use do.
                (void)tcd::wire_key(*in, kind == tcd::KeyKind::proto ? 6 : 8080, spec("pass"));
            }
            const std::string& me = dirs.front();
            const uint32_t key = kind == tcd::KeyKind::proto ? 6 : 8080;
            std::map<std::string, std::vector<double>> t;
            for (int r = 0; r < runs; r++) {
                auto in = tcd::Instance::open(me);
                if (!in) die(in.error().message());
                // A key direct already, rewired: no new dispatcher.
                t["map set"].push_back(ms_of([&] {
                    if (!tcd::wire_key(*in, key, spec(r % 2 ? "pass" : "drop"))) die("map set");
                }));
                t["status"].push_back(ms_of([&] {
                    if (!tcd::gather_status(me)) die("status");
                }));
                t["unload's parents check"].push_back(ms_of([&] {
                    if (!tcd::tree::parents(me)) die("parents");
                }));
                t["tree::scan"].push_back(ms_of([&] {
                    if (!tcd::tree::scan({me})) die("scan");
                }));
            }
            for (auto& [what, v] : t) {
                double med = median(v), mn = *std::min_element(v.begin(), v.end());
                if (n == 1) base_med[what] = med;
                out[key_kind_name(kind)][what][std::to_string(n)] = {
                    {"median_ms", med}, {"min_ms", mn}, {"ratio", med / base_med[what]}};
                if (!json_out)
                    std::printf("  %-6s %-24s %2d instances %9.2f %9.2f  x%.1f\n", key_kind_name(kind), what.c_str(), n,
                                med, mn, med / base_med[what]);
            }
        }
        cleanup();
    }
    return out;
}

// --cli: whole processes, as a script runs them: `tcd map set` (a key that
// is direct already, rewired) and `tcd status` on a proto and on a port
// instance, against bpftool's counterparts on the same pins (`bpftool map
// update` of the jump table, `bpftool prog show id` of the dispatcher). With
// 0 and with `others` unrelated instances on bpffs (half of them port
// instances, each wiring a key). Interleaved: every command once per round,
// every other round in reverse order; with --baseline, another tcd binary's
// commands run beside this one's (A/B).
// Minimum (the least-disturbed figure) and mean over the rounds, ms, of the
// wall time, and of the CPU time (user + system, from wait4), whose mean
// moves far less with other load than the wall time does; ratios to
// bpftool: of the wall minimums, and of the CPU means.
nlohmann::ordered_json cli_bench(int runs, int others, const std::string& tcd_bin, const std::string& baseline,
                                 bool json_out) {
    nlohmann::ordered_json out;
    const std::string base = "/sys/fs/bpf/tcd-bench-cli-" + std::to_string(getpid()) + "-";
    auto spec = [](const char* n) { return *tcd::parse_handler_spec(n); };
    std::vector<std::string>& dirs = scan_dirs;  // unloaded at exit too
    auto add = [&](const std::string& d, tcd::KeyKind kind, uint32_t key) {
        tcd::LoadOptions lo;
        lo.kind = {kind, tcd::Hook::xdp};
        if (auto l = tcd::load(d, lo); !l) die("load: " + l.error().message());
        dirs.push_back(d);
        auto in = tcd::Instance::open(d);
        if (!in) die(in.error().message());
        if (!tcd::wire_key(*in, key, spec("pass"))) die("map set");
        return in->dispatcher().id;
    };
    const std::string proto = base + "proto", port = base + "port";
    (void)add(proto, tcd::KeyKind::proto, 6);
    (void)add(port, tcd::KeyKind::port, 80);
    auto dispatcher_id = [](const std::string& d) {
        auto in = tcd::Instance::open(d);
        if (!in) die(in.error().message());
        return std::to_string(in->dispatcher().id);
    };
    if (!json_out)
        std::printf("\nwhole processes, interleaved, %d rounds: min / mean ms, ratio of minimums to bpftool's\n", runs);
    for (int n : {0, others}) {
        while (int(dirs.size()) - 2 < n) {
            size_t i = dirs.size() - 2;
            const bool is_port = i % 2;
            (void)add(base + std::to_string(i), is_port ? tcd::KeyKind::port : tcd::KeyKind::proto, is_port ? 8080 : 6);
        }
        struct Row {
            std::string name, pair;
            std::function<std::vector<std::string>(int)> argv;
        };
        const std::string pid = dispatcher_id(proto), wid = dispatcher_id(port);
        // tcd's rows with bin (this tcd, or --baseline's) and a name prefix.
        auto tcd_rows = [&](const std::string& bin, const std::string& pre) {
            auto tcd_argv = [bin](const std::string& d, std::vector<std::string> words) {
                std::vector<std::string> v{bin, "-q", "-d", d};
                v.insert(v.end(), words.begin(), words.end());
                return v;
            };
            return std::vector<Row>{
                {pre + "proto: tcd map set (rewire)", "proto: bpftool map update",
                 [=](int r) { return tcd_argv(proto, {"map", "set", "6", r % 2 ? "pass" : "drop"}); }},
                {pre + "port: tcd map set (rewire)", "port: bpftool map update",
                 [=](int r) { return tcd_argv(port, {"map", "set", "80", r % 2 ? "pass" : "drop"}); }},
                {pre + "proto: tcd status", "proto: bpftool prog show", [=](int) { return tcd_argv(proto, {"status"}); }},
                {pre + "port: tcd status", "port: bpftool prog show", [=](int) { return tcd_argv(port, {"status"}); }},
                {pre + "proto: tcd map list", "proto: bpftool map dump jt",
                 [=](int) { return tcd_argv(proto, {"map", "list"}); }},
                {pre + "port: tcd map list", "port: bpftool map dump jt",
                 [=](int) { return tcd_argv(port, {"map", "list"}); }},
                {pre + "proto: tcd stats", "proto: bpftool map dump stats",
                 [=](int) { return tcd_argv(proto, {"stats"}); }},
                {pre + "port: tcd stats", "port: bpftool map dump stats",
                 [=](int) { return tcd_argv(port, {"stats"}); }},
            };
        };
        auto bpftool_update = [](const std::string& d, const char* key) {
            return [d, key](int r) {
                return std::vector<std::string>{"bpftool", "map", "update", "pinned", d + "/maps/jt", "key", key, "0", "0", "0",
                                                "value", "pinned", d + (r % 2 ? "/pass" : "/drop")};
            };
        };
        auto bpftool_dump = [](const std::string& path) {
            return [path](int) { return std::vector<std::string>{"bpftool", "map", "dump", "pinned", path}; };
        };
        // This tcd's row and the baseline's side by side (A/B).
        std::vector<Row> rows, base = baseline.empty() ? std::vector<Row>{} : tcd_rows(baseline, "baseline ");
        for (auto& row : tcd_rows(tcd_bin, "")) {
            rows.push_back(std::move(row));
            if (!base.empty()) rows.push_back(std::move(base[rows.size() / 2]));
        }
        for (Row row : std::vector<Row>{
                 {"proto: bpftool map update", "", bpftool_update(proto, "6")},
                 {"port: bpftool map update", "", bpftool_update(port, "80")},
                 {"proto: bpftool prog show", "", [&](int) { return std::vector<std::string>{"bpftool", "prog", "show", "id", pid}; }},
                 {"port: bpftool prog show", "", [&](int) { return std::vector<std::string>{"bpftool", "prog", "show", "id", wid}; }},
                 {"proto: bpftool map dump jt", "", bpftool_dump(proto + "/maps/jt")},
                 {"port: bpftool map dump jt", "", bpftool_dump(port + "/maps/jt")},
                 {"proto: bpftool map dump stats", "", bpftool_dump(proto + "/maps/proto_stats")},
                 {"port: bpftool map dump stats", "", bpftool_dump(port + "/maps/proto_stats")},
             })
            rows.push_back(std::move(row));
        std::map<std::string, std::vector<double>> t, cpu;
        // Every other round in reverse order, so that no command always
        // runs right after the same other one.
        for (int r = 0; r < runs; r++)
            for (size_t i = 0; i < rows.size(); i++) {
                const Row& row = rows[r % 2 ? rows.size() - 1 - i : i];
                double c = 0;
                t[row.name].push_back(process_ms(row.argv(r), &c));
                cpu[row.name].push_back(c);
            }
        auto& o = out[std::to_string(n) + " others"];
        auto min_mean = [](const std::vector<double>& v) {
            double mean = 0;
            for (double x : v) mean += x / v.size();
            return std::pair{*std::min_element(v.begin(), v.end()), mean};
        };
        if (!json_out)
            std::printf("  %-42s %15s %8s %15s %8s\n", "", "wall min/mean", "ratio", "cpu min/mean", "ratio");
        for (const auto& row : rows) {
            auto [mn, mean] = min_mean(t[row.name]);
            auto [cmn, cmean] = min_mean(cpu[row.name]);
            o[row.name] = {{"min_ms", mn}, {"mean_ms", mean}, {"cpu_min_ms", cmn}, {"cpu_mean_ms", cmean}};
            std::string ratios;
            if (!row.pair.empty()) {
                o[row.name]["ratio_of_min"] = mn / min_mean(t[row.pair]).first;
                o[row.name]["cpu_ratio_of_mean"] = cmean / min_mean(cpu[row.pair]).second;
                ratios = fmt::format("x{:.2f}", o[row.name]["ratio_of_min"].get<double>());
            }
            if (!json_out)
                std::printf("  %2d others  %-30s %7.2f %7.2f %8s %7.2f %7.2f %8s\n", n, row.name.c_str(), mn, mean,
                            ratios.c_str(), cmn, cmean,
                            row.pair.empty() ? "" : fmt::format("x{:.2f}", o[row.name]["cpu_ratio_of_mean"].get<double>()).c_str());
        }
    }
    for (const auto& d : dirs) (void)tcd::unload(d, true);
    dirs.clear();
    return out;
}

// --respec: where a respecialise spends its time, in-process, phase by phase
// (core/phases.h): a map set of a key that joins the direct set and the map
// del that takes it out again, on a proto and on a port instance attached to
// a veth in a namespace of its own, each the child of a proto parent (so the
// parent's key is moved too). Phases: the command's own checks and locks
// (before the respecialise), reading the wiring, the checks load does, opening
// the embedded object, probing the jump table's attach type, verify+load (the
// JIT is part of it), pinning, the parents' lookup and update, the swap on
// the interface, releasing slots. Minimum and mean per phase over RUNS,
// for an instance attached by tcd (behind its entry shim: the swap is one
// prog-array update) and one whose dispatcher is at the hook itself (the
// swap replaces it there, by the shim; put back before every round), taken
// in turn.
nlohmann::ordered_json respec_bench(int runs, bool json_out) {
    nlohmann::ordered_json out;
    const std::string id = std::to_string(getpid());
    const std::string ns = "tcdbenchr" + id, nsfile = "/run/netns/" + ns;
    const std::string parent = "/sys/fs/bpf/tcd-bench-rp-" + id;
    // Two children, run in turn: one attached by tcd (behind its entry
    // shim), one whose dispatcher is at the hook itself (as `ip link set
    // ... xdp pinned` or an older tcd attached it).
    struct Variant {
        std::string dir, ifname, label;
        uint32_t parent_key;
    };
    const Variant variants[] = {{"/sys/fs/bpf/tcd-bench-rc-" + id, "ra", "entry shim at the hook", 6},
                                {"/sys/fs/bpf/tcd-bench-rd-" + id, "rb", "dispatcher at the hook", 17}};
    auto sh = [](const std::string& c) { return std::system(c.c_str()); };
    auto cleanup = [&] {
        (void)tcd::unload(parent, true);
        for (const auto& v : variants) (void)tcd::unload(v.dir, true);
        sh("ip netns del " + ns + " 2>/dev/null");
    };
    if (sh("ip netns add " + ns + " && ip -n " + ns + " link add ra type veth peer name rb && ip -n " + ns +
           " link set ra up && ip -n " + ns + " link set rb up") != 0) {
        cleanup();
        die("cannot make the veth pair in namespace " + ns);
    }
    auto spec = [](const std::string& n) { return *tcd::parse_handler_spec(n); };
    if (!json_out)
        std::printf("\nrespecialise, in-process, attached to a veth, child of a proto parent, the two ways of "
                    "attaching in turn: min / mean of %d (ms)\n",
                    runs);
    tcd::LoadOptions po;
    po.kind = {tcd::KeyKind::proto, tcd::Hook::xdp};
    if (auto l = tcd::load(parent, po); !l) {
        cleanup();
        die("load: " + l.error().message());
    }
    for (tcd::KeyKind kind : {tcd::KeyKind::proto, tcd::KeyKind::port}) {
        auto fail = [&](const std::string& what) {
            tcd::phases::record_into(nullptr);
            cleanup();
            die(what);
        };
        for (const auto& v : variants) {
            tcd::LoadOptions lo;
            lo.kind = {kind, tcd::Hook::xdp};
            if (auto l = tcd::load(v.dir, lo); !l) fail("load: " + l.error().message());
            auto in = tcd::Instance::open(v.dir);
            if (!in) fail(in.error().message());
            // Both attached by tcd (so each has its record); the second's
            // shim then replaced at the hook by its dispatcher.
            if (auto a = tcd::attach(*in, {.ifname = v.ifname, .netns = nsfile}); !a)
                fail("attach: " + a.error().message());
            if (v.ifname == "rb" &&
                sh("nsenter --net=" + nsfile + " ip -force link set dev rb xdpdrv pinned " + v.dir + "/xdp_dispatch") != 0)
                fail("ip link set rb xdp pinned");
            auto p = tcd::Instance::open(parent);
            if (!p || !tcd::wire_key(*p, v.parent_key, spec(v.dir))) fail("wire the child into the parent");
            if (kind == tcd::KeyKind::port && !tcd::wire_key(*in, 8080, spec("pass"))) fail("map set 8080");
        }
        const uint32_t fresh = kind == tcd::KeyKind::proto ? 47 : 9000;
        for (const char* what : {"map set, new direct key", "map del, direct key"}) {
            const bool set = what[4] == 's';
            std::map<std::string, std::map<std::string, std::vector<double>>> t;  // variant -> phase -> ms
            std::vector<std::string> order;
            for (int r = 0; r < runs; r++) {
                for (int vi = 0; vi < 2; vi++) {
                    const Variant& v = variants[r % 2 ? 1 - vi : vi];  // every other round in reverse
                    if (!set) {  // the key to delete
                        auto in = tcd::Instance::open(v.dir);
                        if (!in || !tcd::wire_key(*in, fresh, spec("pass"))) fail("map set");
                    }
                    // The dispatcher back at the hook, untimed (a swap moves it behind the shim).
                    if (v.ifname == "rb" && sh("nsenter --net=" + nsfile + " ip -force link set dev rb xdpdrv pinned " +
                                               v.dir + "/xdp_dispatch") != 0)
                        fail("ip link set rb xdp pinned");
                    tcd::phases::Table table;
                    double total = 0;
                    {
                        auto in = tcd::Instance::open(v.dir);
                        if (!in) fail(in.error().message());
                        tcd::phases::record_into(&table);
                        total = ms_of([&] {
                            bool swapped = false;
                            if (set) {
                                auto s = tcd::wire_key(*in, fresh, spec("pass"));
                                swapped = s && s->respecialised;
                            } else {
                                auto d = tcd::unwire_keys(*in, {fresh});
                                swapped = d && d->respecialised;
                            }
                            if (!swapped) fail(std::string(what) + ": no respecialise");
                        });
                        tcd::phases::record_into(nullptr);
                    }
                    double sum = 0;
                    for (auto& [name, ms] : table) {
                        if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
                        t[v.label][name].push_back(ms);
                        sum += ms;
                    }
                    t[v.label]["the rest (locks, checks, the key's own write)"].push_back(total - sum);
                    t[v.label]["total"].push_back(total);
                    if (set) {  // back out, untimed
                        auto in = tcd::Instance::open(v.dir);
                        if (!in || !tcd::unwire_keys(*in, {fresh})) fail("map del");
                    }
                }
            }
            order.push_back("the rest (locks, checks, the key's own write)");
            order.push_back("total");
            for (const auto& v : variants) {
                auto& o = out[key_kind_name(kind)][what][v.label];
                for (const auto& name : order) {
                    auto x = t[v.label][name];
                    x.resize(runs, 0.0);  // a phase some runs skipped
                    double mn = *std::min_element(x.begin(), x.end()), mean = 0;
                    for (double y : x) mean += y / x.size();
                    o[name] = {{"min_ms", mn}, {"mean_ms", mean}};
                    if (!json_out)
                        std::printf("  %-6s %-24s %-23s %-46s %8.3f %8.3f\n", key_kind_name(kind), what,
                                    v.label.c_str(), name.c_str(), mn, mean);
                }
            }
        }
        auto p = tcd::Instance::open(parent);
        if (p) (void)tcd::unwire_keys(*p, {6, 17});
        sh("ip -n " + ns + " link set dev rb xdpdrv off");
        for (const auto& v : variants) (void)tcd::unload(v.dir, true);
    }
    cleanup();
    return out;
}

// --swap: what replacing the running dispatcher costs at each way of
// swapping it, in-process, on a veth in a namespace of its own, alternating
// two loaded copies of the proto dispatcher (A -> B -> A ...): at the XDP
// hook (XDP_FLAGS_REPLACE, native mode: what a respecialise does today when
// the dispatcher runs alone), in a tcx link (BPF_LINK_UPDATE; skipped where
// the kernel has no tcx), in the clsact filter slot (BPF_TC_F_REPLACE), and
// in the one-slot prog array of an entry shim
// that stays at the hook (tcd_entry for XDP; a tc shim of the same three
// instructions for tcx): one map update. And what a jump-table write costs
// at a key the dispatcher calls directly (the JIT's patched call site):
// rewired, and deleted. Minimum and mean over RUNS.
nlohmann::ordered_json swap_bench(int runs, bool json_out) {
    nlohmann::ordered_json out;
    const std::string ns = "tcdbenchs" + std::to_string(getpid());
    auto sh = [](const std::string& c) { return std::system(c.c_str()); };
    if (sh("ip netns add " + ns + " && ip -n " + ns + " link add sa type veth peer name sb && ip -n " + ns +
           " link set sa up && ip -n " + ns + " link set sb up") != 0) {
        sh("ip netns del " + ns + " 2>/dev/null");
        die("cannot make the veth pair in namespace " + ns);
    }
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), there = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (self < 0 || there < 0 || setns(there, CLONE_NEWNET) != 0) die("enter " + ns);
    const int ifindex = int(if_nametoindex("sa"));
    auto fail = [&](const std::string& what) {
        setns(self, CLONE_NEWNET);
        sh("ip netns del " + ns + " 2>/dev/null");
        die(what + ": " + strerror(errno));
    };
    if (!ifindex) fail("find sa");
    const std::vector<uint32_t> protos = {6, 17, 1, 58, 47, 132};
    // swap_to(i) timed (0 = done), after before(i) untimed
    auto row = [&](const std::string& name, const std::function<int(int)>& swap_to,
                   const std::function<int(int)>& before = nullptr) {
        std::vector<double> v;
        for (int r = 0; r < runs; r++) {
            if (before && before(r) != 0) fail(name);
            int rc = 0;
            v.push_back(ms_of([&] { rc = swap_to(r); }));
            if (rc != 0) fail(name);
        }
        double mn = *std::min_element(v.begin(), v.end()), mean = 0;
        for (double x : v) mean += x / v.size();
        out[name] = {{"min_ms", mn}, {"mean_ms", mean}};
        if (!json_out) std::printf("  %-52s %8.3f %8.3f\n", name.c_str(), mn, mean);
    };
    if (!json_out) std::printf("\nswapping the dispatcher on a veth, in-process: min / mean of %d (ms)\n", runs);
    TcdCopy xa = load_tcd(tcd::KeyKind::proto, protos), xb = load_tcd(tcd::KeyKind::proto, protos);
    {
        // The jump table of a dispatcher that calls tcp (6) directly: the
        // kernel patches that call site on every write of key 6.
        int jt = bpf_map__fd(xa.obj->map(TCD_MAP_JT));
        int h[2] = {bpf_program__fd(xa.obj->program("tcp_handler")), bpf_program__fd(xa.obj->program("pass"))};
        uint32_t direct = 6, indirect = 99;
        row("jt: rewire a direct key (jump -> jump)",
            [&](int r) { return bpf_map_update_elem(jt, &direct, &h[r % 2], BPF_ANY); });
        row("jt: delete a direct key (jump -> nop)", [&](int) { return bpf_map_delete_elem(jt, &direct); },
            [&](int) { return bpf_map_update_elem(jt, &direct, &h[0], BPF_ANY); });
        row("jt: delete a key called indirectly", [&](int) { return bpf_map_delete_elem(jt, &indirect); },
            [&](int) { return bpf_map_update_elem(jt, &indirect, &h[0], BPF_ANY); });
        (void)bpf_map_update_elem(jt, &direct, &h[0], BPF_ANY);
    }
    {
        // At the hook, as a respecialise of a dispatcher attached alone does.
        if (bpf_xdp_attach(ifindex, xa.fd, XDP_FLAGS_DRV_MODE, nullptr) != 0) fail("attach at the XDP hook");
        row("xdp: at the hook (XDP_FLAGS_REPLACE)", [&](int r) {
            LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = r % 2 ? xb.fd : xa.fd);
            return bpf_xdp_attach(ifindex, r % 2 ? xa.fd : xb.fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_REPLACE, &o);
        });
        bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    }
    {
        // The entry shim at the hook, loaded as libxdp loads it (expected
        // attach type none), its slot holding A or B.
        tcd_entry* e = tcd_entry__open();
        if (!e) fail("open the entry shim");
        bpf_program__set_expected_attach_type(e->progs.tcd_entry, static_cast<bpf_attach_type>(0));
        if (tcd_entry__load(e)) fail("load the entry shim");
        int slot = bpf_map__fd(e->maps.mp_entry);
        uint32_t zero = 0;
        if (bpf_map_update_elem(slot, &zero, &xa.fd, BPF_ANY) != 0) fail("fill the entry's slot");
        if (bpf_xdp_attach(ifindex, bpf_program__fd(e->progs.tcd_entry), XDP_FLAGS_DRV_MODE, nullptr) != 0)
            fail("attach the entry shim");
        row("xdp: the entry shim's slot (one map update)",
            [&](int r) { return bpf_map_update_elem(slot, &zero, r % 2 ? &xa.fd : &xb.fd, BPF_ANY); });
        bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
        tcd_entry__destroy(e);
    }
    TcdCopy ta = load_tcd(tcd::KeyKind::proto, protos, true, tcd::Hook::tc),
            tb = load_tcd(tcd::KeyKind::proto, protos, true, tcd::Hook::tc);
    {
        // The clsact filter slot (tcd's fallback without tcx), replaced in place.
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
        if (int err = bpf_tc_hook_create(&hook); err && err != -EEXIST) fail("clsact qdisc");
        LIBBPF_OPTS(bpf_tc_opts, first, .prog_fd = ta.fd, .handle = 1, .priority = 1);
        if (bpf_tc_attach(&hook, &first) != 0) fail("clsact filter");
        row("clsact: the filter replaced (BPF_TC_F_REPLACE)", [&](int r) {
            LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = r % 2 ? ta.fd : tb.fd, .flags = BPF_TC_F_REPLACE, .handle = 1,
                        .priority = 1);
            return bpf_tc_attach(&hook, &o);
        });
        hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
        bpf_tc_hook_destroy(&hook);
    }
    if (tcd::probe::has(tcd::probe::Feature::tcx).value_or(false)) {
        LIBBPF_OPTS(bpf_link_create_opts, lo);
        int link = bpf_link_create(ta.fd, ifindex, static_cast<bpf_attach_type>(tcd::probe::kTcxIngress), &lo);
        if (link < 0) fail("tcx link");
        row("tcx: in the link (BPF_LINK_UPDATE)", [&](int r) {
            LIBBPF_OPTS(bpf_link_update_opts, uo, .flags = BPF_F_REPLACE, .old_prog_fd = uint32_t(r % 2 ? tb.fd : ta.fd));
            return bpf_link_update(link, r % 2 ? ta.fd : tb.fd, &uo);
        });
        close(link);
        // A tc shim: r2 = the one-slot array, r3 = 0, tail call, else
        // TC_ACT_UNSPEC (next), as tcd_entry is for XDP.
        LIBBPF_OPTS(bpf_map_create_opts, mo);
        int slot = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "tc_entry", 4, 4, 1, &mo);
        if (slot < 0) fail("tc shim's array");
        const bpf_insn insns[] = {
            {BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, slot}, {0, 0, 0, 0, 0},
            {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, 0},
            {BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_tail_call},
            {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -1},
            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        };
        LIBBPF_OPTS(bpf_prog_load_opts, po);
        int shim = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "tc_entry", "GPL", insns, sizeof insns / sizeof insns[0], &po);
        if (shim < 0) fail("load the tc shim");
        uint32_t zero = 0;
        if (bpf_map_update_elem(slot, &zero, &ta.fd, BPF_ANY) != 0) fail("fill the tc shim's slot");
        link = bpf_link_create(shim, ifindex, static_cast<bpf_attach_type>(tcd::probe::kTcxIngress), &lo);
        if (link < 0) fail("tcx link of the shim");
        row("tcx: the shim's slot (one map update)",
            [&](int r) { return bpf_map_update_elem(slot, &zero, r % 2 ? &ta.fd : &tb.fd, BPF_ANY); });
        close(link);
        close(shim);
        close(slot);
    } else if (!json_out) {
        std::printf("  (no tcx on this kernel: tcx rows skipped)\n");
    }
    setns(self, CLONE_NEWNET);
    close(self);
    close(there);
    sh("ip netns del " + ns + " 2>/dev/null");
    return out;
}

int main(int argc, char** argv) {
    int rounds = 31, repeat = 100000, stats_runs = 30, copies = 3, set_runs = 15, scan_runs = 0, cli_runs = 0,
        others = 50, respec_runs = 0, swap_runs = 0;
    bool json_out = false;
    std::string baseline;  // --cli: another tcd binary, timed in the same rounds (A/B)
    // --cli: the tcd binary timed (default: the one built with this bench).
    // Where a binary lies matters: here a copy made with cp ran 0.2-0.4 ms
    // faster than the same bytes as the linker wrote them in build/, so an
    // A/B compares two copies made the same way.
    std::string tcd_bin = TCD_BIN;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto num = [&](int& v) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "tcd_bench: %s needs a number\n", a.c_str());
                std::exit(2);
            }
            v = std::atoi(argv[++i]);
        };
        if (a == "--rounds") num(rounds);
        else if (a == "--repeat") num(repeat);
        else if (a == "--stats-runs") num(stats_runs);
        else if (a == "--copies") num(copies);
        else if (a == "--set-runs") num(set_runs);
        else if (a == "--scan") num(scan_runs);
        else if (a == "--cli") num(cli_runs);
        else if (a == "--others") num(others);
        else if (a == "--respec") num(respec_runs);
        else if (a == "--swap") num(swap_runs);
        else if (a == "--json") json_out = true;
        else if (a == "--baseline" && i + 1 < argc) baseline = argv[++i];
        else if (a == "--tcd" && i + 1 < argc) tcd_bin = argv[++i];
        else {
            std::fprintf(stderr, "usage: tcd_bench [--rounds N] [--repeat R] [--copies N] [--set-runs N] "
                                 "[--stats-runs N] [--scan RUNS] [--cli RUNS [--others N] [--tcd TCD] [--baseline TCD]] [--respec RUNS] [--swap RUNS] [--json]\n");
            return 2;
        }
    }
    // One of the single-figure modes: that figure alone, with the machine's
    // load before and after it.
    auto only = [&](const char* key, const std::function<nlohmann::ordered_json()>& figure) {
        libbpf_set_print([](enum libbpf_print_level, const char*, va_list) { return 0; });
        nlohmann::ordered_json j;
        j["load_before"] = load_avg();
        j[key] = figure();
        j["load_after"] = load_avg();
        if (json_out) std::printf("%s\n", j.dump(2).c_str());
        else std::printf("load average %s before, %s after\n", j["load_before"].get<std::string>().c_str(),
                         j["load_after"].get<std::string>().c_str());
        return 0;
    };
    // only the whole-process comparison with bpftool
    if (cli_runs > 0) return only("cli_ms", [&] { return cli_bench(cli_runs, others, tcd_bin, baseline, json_out); });
    // only the respecialise breakdown
    if (respec_runs > 0) return only("respecialise_ms", [&] { return respec_bench(respec_runs, json_out); });
    // only the ways of swapping the dispatcher
    if (swap_runs > 0) return only("swap_ms", [&] { return swap_bench(swap_runs, json_out); });
    // only the tree walk
    if (scan_runs > 0) return only("scan_ms", [&] { return scan_bench(scan_runs, json_out); });
    nlohmann::ordered_json j;
    j["rounds"] = rounds;
    j["repeat"] = repeat;
    j["copies"] = copies;
    j["load_before"] = load_avg();
    // One CPU for every measurement, so rounds compare like with like.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof one, &one);
    libbpf_set_print([](enum libbpf_print_level, const char*, va_list) { return 0; });

    const std::map<std::string, Bytes> frames = {
        {"ipv4-tcp", frame(false, false)},         {"ipv6-tcp", frame(false, true)},
        {"vlan-ipv4-tcp", frame(true, false)},     {"ipv4-gre", frame(false, false, 47)},
        {"ipv4-sctp", frame(false, false, 132)},   {"ipv4-tcp-9999", frame(false, false, 6, 9999)},
    };
    // The port sets: 8080 among the lowest 16 ports; the 17th (9999) is
    // the highest, so it is the one left to the indirect path.
    const std::vector<uint32_t> ports8 = {22, 25, 53, 80, 443, 993, 3306, 8080};
    std::vector<uint32_t> ports16 = ports8;
    for (uint32_t p : {110, 143, 389, 587, 636, 995, 1433, 5432}) ports16.push_back(p);
    std::vector<uint32_t> ports17 = ports16;
    ports17.push_back(9999);
    const std::vector<uint32_t> protos = {6, 17, 1, 58, 47, 132};

    struct Case {
        std::string prog, frame;
        std::vector<int> fds;
        std::vector<std::vector<int>> ns;  // [copy][round]
    };
    std::vector<Case> cases;
    auto add = [&](const std::string& prog, const std::vector<std::string>& fs) {
        for (const auto& f : fs) cases.push_back({prog, f, {}, {}});
    };
    const std::vector<std::string> all_frames = {"ipv4-tcp", "ipv6-tcp", "vlan-ipv4-tcp", "ipv4-gre", "ipv4-sctp",
                                                 "ipv4-tcp-9999"};
    add("floor (XDP_PASS)", all_frames);
    add("seeds' dispatcher", {"ipv4-tcp"});
    add("seed 004 as written (8080)", {"ipv4-tcp"});
    add("tcd proto, specialised", {"ipv4-tcp", "ipv6-tcp", "vlan-ipv4-tcp", "ipv4-gre", "ipv4-sctp"});
    add("tcd proto, monitoring, unsampled", {"ipv4-tcp", "ipv6-tcp", "vlan-ipv4-tcp", "ipv4-gre", "ipv4-sctp"});
    add("tcd proto, nothing direct", {"ipv4-tcp", "ipv4-gre", "ipv4-sctp"});
    add("tcd proto, through the entry", {"ipv4-tcp", "ipv4-gre"});
    add("tcd port, 8 wired", {"ipv4-tcp", "ipv6-tcp", "vlan-ipv4-tcp"});
    add("tcd port, 16 wired", {"ipv4-tcp"});
    add("tcd port, 17 wired", {"ipv4-tcp", "ipv4-tcp-9999"});
    add("bound: parse + direct tail call", {"ipv4-tcp"});
    add("bound: + per-CPU key counter", {"ipv4-tcp"});
    add("bound: + counter, one-row layout", {"ipv4-tcp"});
    add("hop: bpf_tail_call_static", {"ipv4-tcp"});
    add("hop: tcd_next_static", {"ipv4-tcp"});
    add("hop: bpf_tail_call (indirect)", {"ipv4-tcp"});
    add("hop: tcd_next (indirect)", {"ipv4-tcp"});
    auto fds_of = [&](const std::string& prog) -> std::vector<Case*> {
        std::vector<Case*> out;
        for (auto& c : cases)
            if (c.prog == prog) out.push_back(&c);
        return out;
    };

    std::vector<bench*> base;
    std::vector<TcdCopy> tcds;
    std::vector<tcd_entry*> entries;
    for (int c = 0; c < copies; c++) {
        bench* b = bench__open_and_load();
        if (!b) die("cannot load the baselines (needs root)");
        uint32_t key = 6;
        int fd = bpf_program__fd(b->progs.seed_tcp);
        bpf_map_update_elem(bpf_map__fd(b->maps.seed_jt), &key, &fd, BPF_ANY);
        fd = bpf_program__fd(b->progs.bound_handler);
        bpf_map_update_elem(bpf_map__fd(b->maps.bound_jt), &key, &fd, BPF_ANY);
        key = 0;
        fd = bpf_program__fd(b->progs.port8080_prog);
        bpf_map_update_elem(bpf_map__fd(b->maps.prog_array), &key, &fd, BPF_ANY);
        key = 1;
        fd = bpf_program__fd(b->progs.hop_target);
        bpf_map_update_elem(bpf_map__fd(b->maps.jt), &key, &fd, BPF_ANY);
        base.push_back(b);
        auto put = [&](const std::string& prog, int f) {
            for (Case* k : fds_of(prog)) k->fds.push_back(f);
        };
        put("floor (XDP_PASS)", bpf_program__fd(b->progs.xdp_floor));
        put("seeds' dispatcher", bpf_program__fd(b->progs.seed_dispatch));
        put("seed 004 as written (8080)", bpf_program__fd(b->progs.main_prog));
        put("bound: parse + direct tail call", bpf_program__fd(b->progs.bound_tail));
        put("bound: + per-CPU key counter", bpf_program__fd(b->progs.bound_count));
        put("bound: + counter, one-row layout", bpf_program__fd(b->progs.bound_count1));
        put("hop: bpf_tail_call_static", bpf_program__fd(b->progs.hop_static_raw));
        put("hop: tcd_next_static", bpf_program__fd(b->progs.hop_static_tcd));
        put("hop: bpf_tail_call (indirect)", bpf_program__fd(b->progs.hop_dyn_raw));
        put("hop: tcd_next (indirect)", bpf_program__fd(b->progs.hop_dyn_tcd));
        auto tcd_put = [&](const std::string& prog, tcd::KeyKind k, const std::vector<uint32_t>& w, bool sp) {
            tcds.push_back(load_tcd(k, w, sp));
            put(prog, tcds.back().fd);
        };
        tcd_put("tcd proto, specialised", tcd::KeyKind::proto, protos, true);
        tcds.push_back(load_tcd(tcd::KeyKind::proto, protos, true, tcd::Hook::xdp, true));
        put("tcd proto, monitoring, unsampled", tcds.back().fd);
        tcd_put("tcd proto, nothing direct", tcd::KeyKind::proto, protos, false);
        // The entry shim with expected attach type none, as libxdp loads it
        // (freplace) and as tcd loads the dispatcher its slot takes.
        tcd_entry* e = tcd_entry__open();
        if (!e) die("cannot open the entry shim");
        bpf_program__set_expected_attach_type(e->progs.tcd_entry, static_cast<bpf_attach_type>(0));
        if (tcd_entry__load(e)) die("cannot load the entry shim");
        entries.push_back(e);
        tcds.push_back(load_tcd(tcd::KeyKind::proto, protos, true));
        uint32_t zero = 0;
        if (bpf_map_update_elem(bpf_map__fd(e->maps.mp_entry), &zero, &tcds.back().fd, BPF_ANY))
            die("put the dispatcher in the entry's slot");
        put("tcd proto, through the entry", bpf_program__fd(e->progs.tcd_entry));
        tcd_put("tcd port, 8 wired", tcd::KeyKind::port, ports8, true);
        tcd_put("tcd port, 16 wired", tcd::KeyKind::port, ports16, true);
        tcd_put("tcd port, 17 wired", tcd::KeyKind::port, ports17, true);
    }
    for (auto& c : cases) {  // warm up
        for (int fd : c.fds) run_ns(fd, frames.at(c.frame), repeat / 10 + 1);
        c.ns.assign(c.fds.size(), {});
    }
    // Interleaved: every round runs every program and copy once.
    for (int r = 0; r < rounds; r++)
        for (auto& c : cases)
            for (size_t k = 0; k < c.fds.size(); k++) c.ns[k].push_back(run_ns(c.fds[k], frames.at(c.frame), repeat));
    j["load_after_dispatch"] = load_avg();

    // The floor per frame: its minimum, the rounds in which it was there
    // (its best copy), and how far it moved over the run.
    struct Floor {
        int min = 1 << 30, max = 0;
        std::vector<bool> quiet;  // per round
    };
    std::map<std::string, Floor> floors;
    for (Case* c : fds_of("floor (XDP_PASS)")) {
        Floor f;
        std::vector<int> per_round(rounds, 1 << 30);
        for (const auto& v : c->ns)
            for (int r = 0; r < rounds; r++) per_round[r] = std::min(per_round[r], v[r]);
        for (int x : per_round) f.min = std::min(f.min, x), f.max = std::max(f.max, x);
        for (int x : per_round) f.quiet.push_back(x == f.min);
        floors[c->frame] = f;
    }
    bool disturbed = false;
    for (const auto& [name, f] : floors) disturbed |= f.max > f.min + std::max(1, f.min / 10);

    struct Est {
        double min, mean, quiet;
    };
    auto est = [&](const Case& c) {
        const Floor& f = floors.at(c.frame);
        Est e{1e9, 0, 0};
        size_t n = 0, q = 0;
        for (const auto& v : c.ns)
            for (int r = 0; r < rounds; r++) {
                e.min = std::min<double>(e.min, v[r]);
                e.mean += v[r], n++;
                if (f.quiet[r]) e.quiet += v[r], q++;
            }
        e.mean /= n;
        e.quiet = q ? e.quiet / q : e.mean;
        return e;
    };
    auto find = [&](const std::string& prog, const std::string& fr) -> const Case& {
        for (const auto& c : cases)
            if (c.prog == prog && c.frame == fr) return c;
        die("no case " + prog + " " + fr);
    };
    Est seeds = est(find("seeds' dispatcher", "ipv4-tcp")), fl = est(find("floor (XDP_PASS)", "ipv4-tcp"));
    double seeds_min = seeds.min - fl.min, seeds_mean = seeds.mean - fl.mean, seeds_quiet = seeds.quiet - fl.quiet;

    if (!json_out) {
        std::printf("ns/packet, BPF_PROG_TEST_RUN's duration (whole ns), %d interleaved rounds x %d copies x %d "
                    "repeats; load average %s\n",
                    rounds, copies, repeat, j["load_before"].get<std::string>().c_str());
        std::printf("min: least disturbed (minimum over rounds and copies); quiet: mean over the rounds in which "
                    "the floor was at its minimum; mean: over all\n");
        std::printf("overhead = program - floor on the same frame; ratio = overhead / the seeds' overhead on "
                    "ipv4-tcp (min %.1f, quiet %.2f, mean %.2f ns)\n\n",
                    seeds_min, seeds_quiet, seeds_mean);
        std::printf("%-34s %-14s %6s %7s %7s | %8s %6s %8s %6s %8s %6s\n", "program", "frame", "min", "quiet", "mean",
                    "over min", "ratio", "quiet", "ratio", "mean", "ratio");
    }
    for (const auto& c : cases) {
        Est e = est(c), f = est(find("floor (XDP_PASS)", c.frame));
        double om = e.min - f.min, oq = e.quiet - f.quiet, oa = e.mean - f.mean;
        auto& o = j["programs"][c.prog][c.frame];
        o = {{"min_ns", e.min}, {"quiet_ns", e.quiet}, {"mean_ns", e.mean}};
        if (c.prog != "floor (XDP_PASS)")
            o.update({{"overhead_min_ns", om}, {"overhead_quiet_ns", oq}, {"overhead_mean_ns", oa},
                      {"ratio_min", om / seeds_min}, {"ratio_quiet", oq / seeds_quiet}, {"ratio_mean", oa / seeds_mean}});
        if (json_out) continue;
        if (c.prog == "floor (XDP_PASS)")
            std::printf("%-34s %-14s %6.0f %7.2f %7.2f |\n", c.prog.c_str(), c.frame.c_str(), e.min, e.quiet, e.mean);
        else
            std::printf("%-34s %-14s %6.0f %7.2f %7.2f | %8.1f %6.2f %8.2f %6.2f %8.2f %6.2f\n", c.prog.c_str(),
                        c.frame.c_str(), e.min, e.quiet, e.mean, om, om / seeds_min, oq, oq / seeds_quiet, oa,
                        oa / seeds_mean);
    }
    // tcd monitor's unsampled path against the plain dispatcher, same run.
    if (!json_out) std::printf("\nmonitoring build, unsampled, against the plain one (specialised): min delta ns, ratio\n");
    for (const auto& fr : {"ipv4-tcp", "ipv6-tcp", "vlan-ipv4-tcp", "ipv4-gre", "ipv4-sctp"}) {
        Est m = est(find("tcd proto, monitoring, unsampled", fr)), p = est(find("tcd proto, specialised", fr));
        j["monitor_unsampled"][fr] = {{"delta_min_ns", m.min - p.min}, {"ratio_min", m.min / p.min}};
        if (!json_out) std::printf("  %-14s %+6.1f ns  %5.3f\n", fr, m.min - p.min, m.min / p.min);
    }
    j["floor_moved"] = disturbed;
    for (const auto& [name, f] : floors) j["floor_range_ns"][name] = {f.min, f.max};
    if (!json_out) {
        std::printf("\n");
        for (const auto& [name, f] : floors)
            std::printf("floor on %-14s min %d ns, max over rounds %d ns\n", name.c_str(), f.min, f.max);
        std::printf(disturbed ? "DISTURBED: the floor moved during the run (other tasks on this CPU); trust min, "
                                "re-run on a quiet machine\n"
                              : "the floor held still during the run\n");
    }

    for (auto* x : base) bench__destroy(x);
    for (auto* x : entries) tcd_entry__destroy(x);
    tcds.clear();

    // map set latency: in-process, on an instance attached to one veth end
    // in a namespace of its own, so a new dispatcher is swapped on a live
    // interface as the CLI does it.
    if (set_runs > 0) {
        std::string id = std::to_string(getpid());
        std::string ns = "tcdbench" + id, dir = "/sys/fs/bpf/tcd-bench-set-" + id;
        std::string nsfile = "/run/netns/" + ns;
        auto sh = [](const std::string& c) { return std::system(c.c_str()); };
        sh("ip netns add " + ns + " && ip -n " + ns + " link add ba type veth peer name bb && ip -n " + ns +
           " link set ba up && ip -n " + ns + " link set bb up");
        auto cleanup = [&] {
            (void)tcd::unload(dir);
            sh("ip netns del " + ns + " 2>/dev/null");
        };
        nlohmann::ordered_json ms;
        for (tcd::KeyKind kind : {tcd::KeyKind::proto, tcd::KeyKind::port}) {
            tcd::LoadOptions lo;
            lo.kind = {kind, tcd::Hook::xdp};
            if (auto l = tcd::load(dir, lo); !l) {
                cleanup();
                die("load: " + l.error().message());
            }
            auto in = tcd::Instance::open(dir);
            if (!in) die(in.error().message());
            if (auto a = tcd::attach(*in, {.ifname = "ba", .netns = nsfile}); !a) {
                cleanup();
                die("attach: " + a.error().message());
            }
            auto spec = [](const char* n) { return *tcd::parse_handler_spec(n); };
            const uint32_t direct = kind == tcd::KeyKind::proto ? 6 : 8080, fresh = kind == tcd::KeyKind::proto ? 47 : 9000;
            if (kind == tcd::KeyKind::port) {  // 8080 direct already
                auto i = tcd::Instance::open(dir);
                (void)tcd::wire_key(*i, direct, spec("pass"));
            }
            std::vector<double> raw, in_set, new_set, new_del;
            for (int r = 0; r < set_runs; r++) {
                auto i = tcd::Instance::open(dir);
                if (!i) die(i.error().message());
                // Before: one jump-table update (set_handler alone), and back.
                raw.push_back(ms_of([&] { (void)tcd::set_handler(*i, fresh, spec("pass")); }));
                (void)tcd::del_keys(*i, {fresh});
                // Now, a key whose direct jump exists: no new dispatcher.
                in_set.push_back(ms_of([&] { (void)tcd::wire_key(*i, direct, spec(r % 2 ? "pass" : "tcp_handler")); }));
                // Now, a key that joins the direct set, and leaves it.
                new_set.push_back(ms_of([&] {
                    auto s = tcd::wire_key(*i, fresh, spec("pass"));
                    if (!s || !s->respecialised) die("map set did not respecialise");
                }));
                auto i2 = tcd::Instance::open(dir);
                new_del.push_back(ms_of([&] {
                    auto d = tcd::unwire_keys(*i2, {fresh});
                    if (!d || !d->respecialised) die("map del did not respecialise");
                }));
            }
            auto put = [&](const char* what, std::vector<double> v) {
                ms[key_kind_name(kind)][what] = {{"median_ms", median(v)}, {"min_ms", *std::min_element(v.begin(), v.end())}};
            };
            put("before: set_handler (one jump-table update)", raw);
            put("map set, key direct already", in_set);
            put("map set, new direct key (new dispatcher swapped)", new_set);
            put("map del, direct key (new dispatcher swapped)", new_del);
            (void)tcd::unload(dir);
        }
        cleanup();
        j["map_set_ms"] = ms;
        if (!json_out) {
            std::printf("\nmap set / del latency, in-process, attached to a veth (median and min of %d, ms):\n",
                        set_runs);
            for (auto& [kind, rows] : ms.items())
                for (auto& [what, v] : rows.items())
                    std::printf("  %-6s %-52s %8.3f %8.3f\n", kind.c_str(), what.c_str(), v["median_ms"].get<double>(),
                                v["min_ms"].get<double>());
        }
    }

    if (stats_runs > 0) {
        std::string dir = "/sys/fs/bpf/tcd-bench-" + std::to_string(getpid());
        auto l = tcd::load(dir, {});
        if (!l) die("load: " + l.error().message());
        std::vector<double> t_tcd, t_bpftool;
        for (int i = 0; i < stats_runs; i++) {
            t_tcd.push_back(process_ms({TCD_BIN, "-d", dir, "-j", "stats", "--all"}));
            t_bpftool.push_back(process_ms({"bpftool", "-j", "map", "dump", "pinned", dir + "/maps/proto_stats"}));
        }
        (void)tcd::unload(dir);
        double a = median(t_tcd), c = median(t_bpftool);
        j["stats_process_ms"] = {{"tcd stats -j --all", a}, {"bpftool map dump", c}, {"ratio", a / c}};
        if (!json_out)
            std::printf("\nwhole process, median of %d: tcd -j stats --all %.2f ms, bpftool map dump %.2f ms (ratio %.2f; "
                        "target <= 1)\n",
                        stats_runs, a, c, a / c);
    }
    j["load_after"] = load_avg();
    if (json_out) std::printf("%s\n", j.dump(2).c_str());
    else std::printf("\nload average at the end: %s\n", j["load_after"].get<std::string>().c_str());
    return 0;
}
