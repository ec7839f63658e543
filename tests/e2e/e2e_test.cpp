// End to end: the tcd binary on a veth pair between two network namespaces
// the test creates (and removes again, also when an assertion fails).
// Traffic flows from namespace A to B; the dispatcher runs on B's end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/probe.h"
#include "tests/common/background.h"
#include "tests/common/commands.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/no_tcx.h"
#include "tests/common/shell.h"
#include "tests/common/tcd_cmd.h"
#include "tests/common/topology.h"
#include "tests/common/wait.h"

namespace {

using nlohmann::json;

using tcdtest::Cmd;
using tcdtest::key_row;
using tcdtest::sh;

// Namespaces A and B joined by va (A: 10.201.0.1/24, fd00:201::1/64) and vb
// (B: 10.201.0.2/24, fd00:201::2/64), loopback up, VLAN offload off so
// frames reach XDP as they are on the wire; a pin dir of our own. All of it
// goes away in the destructor.
class Topology {
public:
    Topology()
        : net_({.prefix = "tcde",
                .namespaces = {"a", "b"},
                .veths = {{.a = {"a", "va", {"10.201.0.1/24", "fd00:201::1/64"}},
                           .b = {"b", "vb", {"10.201.0.2/24", "fd00:201::2/64"}}}},
                .lo_up = true,
                .vlan_offload = false}) {
        dir_ = locks_.add("/sys/fs/bpf/tcde" + std::to_string(getpid()));
        locks_.add(dir_ + "-2");  // a second instance of some tests
        unload();
    }
    ~Topology() { unload(); }
    void unload() {
        sh(std::string(TCD_BIN) + " -q -d " + dir_ + " unload; rm -rf " + dir_ + "-2; " + std::string(TCD_BIN) +
           " -q -d " + dir_ + "-2 unload; true");
    }
    bool ok() const { return net_.ok(); }
    const std::string& error() const { return net_.error(); }
    const std::string& a() const { return net_.ns("a"); }
    const std::string& b() const { return net_.ns("b"); }
    const std::string& dir() const { return dir_; }
    // "tcd -d DIR ARGS"
    Cmd tcd(const std::string& args, const std::string& dir = "") const {
        return tcdtest::tcd_on(dir.empty() ? dir_ : dir, args);
    }
    json tcd_json(const std::string& args) const { return tcdtest::tcd_json_on(dir_, args); }
    std::string in_ns(const std::string& ns, const std::string& cmd) const { return tcdtest::in_netns(ns, cmd); }
    // UDP from A to B; returns how many datagrams B received.
    int udp(int count, const std::string& to = "10.201.0.2") const {
        return tcdtest::udp_across(a(), b(), to, 7001, count);
    }
    bool tcp(int bytes) const { return tcdtest::tcp_across(a(), b(), "10.201.0.2", 7002, bytes); }
    bool ping(int count) const { return tcdtest::ping_across(a(), "10.201.0.2", count); }
    std::string xdp_on_vb() const { return sh(in_ns(b(), "ip -d link show vb")).out; }

private:
    tcdtest::LockFiles locks_;  // goes last, after the destructor's unload
    tcdtest::Topology net_;
    std::string dir_;
};

// key -> handler name of a status's wiring.
std::map<int, std::string> wiring_names(const json& status) {
    std::map<int, std::string> out;
    for (const auto& w : status["wired"]) out[w["key"].get<int>()] = w["handler"].get<std::string>();
    return out;
}

#define TOPOLOGY(t)                          \
    TCD_REQUIRE_KERNEL();                    \
    Topology t;                              \
    ASSERT_TRUE(t.ok()) << "could not build the veth pair: " << t.error()

TEST(E2E, MainJob) {
    TOPOLOGY(t);
    // attach on a fresh machine loads first, then attaches: inside libxdp's
    // dispatcher where it can take tcd's entry (the 6.1 guest), alone where
    // not (lockdown on the host; the 6.12 and 5.10 guests), saying why.
    json a = t.tcd_json("attach vb --netns " + t.b());
    EXPECT_EQ(a["loaded"], true);
    EXPECT_EQ(a["changed"], true);
    EXPECT_EQ(a["mode"], "native");
    auto freplace = tcd::probe::has(tcd::probe::Feature::freplace);
    ASSERT_TRUE(freplace) << freplace.error().message();
    auto entry = tcd::probe::has(tcd::probe::Feature::libxdp_entry);
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(a["multiprog"], *freplace && *entry) << a.dump();
    if (!*entry) EXPECT_TRUE(a["alone_reason"].is_string()) << a.dump();
    // Alone: tcd's entry shim at the hook, the dispatcher in its slot.
    if (a["multiprog"] == true) EXPECT_NE(t.xdp_on_vb().find("xdp_dispatcher"), std::string::npos);
    else {
        EXPECT_NE(t.xdp_on_vb().find("tcd_entry"), std::string::npos) << t.xdp_on_vb();
        EXPECT_EQ(tcdtest::xdp_dispatcher_at(t.b(), "vb"), tcdtest::dispatcher_id(t.dir()));
        EXPECT_GT(a["entry_id"].get<uint32_t>(), 0u) << a.dump();
    }

    ASSERT_EQ(t.tcd("map set 6 tcp_handler").rc, 0);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);

    ASSERT_TRUE(t.ping(5));
    ASSERT_TRUE(t.tcp(20000));
    EXPECT_EQ(t.udp(200), 200);

    json s = t.tcd_json("stats");
    const json* tcp = key_row(s, 6);
    const json* udp = key_row(s, 17);
    const json* icmp = key_row(s, 1);
    ASSERT_TRUE(tcp && udp && icmp) << s.dump();
    EXPECT_EQ((*tcp)["handler"], "tcp_handler");
    EXPECT_GT((*tcp)["packets"].get<uint64_t>(), 3u);
    EXPECT_EQ((*tcp)["missed"], 0);
    EXPECT_GE((*udp)["packets"].get<uint64_t>(), 200u);
    EXPECT_EQ((*udp)["missed"], 0);
    EXPECT_GE((*icmp)["packets"].get<uint64_t>(), 5u);
    EXPECT_EQ((*icmp)["missed"], (*icmp)["packets"]);  // nothing wired at 1: every one missed
    EXPECT_TRUE((*icmp)["handler"].is_null());
    EXPECT_GT(s["non_ip"]["packets"].get<uint64_t>(), 0u);  // ARP
    uint64_t sum = s["non_ip"]["packets"].get<uint64_t>() + s["malformed"]["packets"].get<uint64_t>();
    for (const auto& k : s["keys"]) sum += k["packets"].get<uint64_t>();
    EXPECT_EQ(s["total"]["packets"].get<uint64_t>(), sum);

    // A drop wiring really drops; wiring back lets traffic through again.
    uint64_t udp_before = (*udp)["packets"].get<uint64_t>();
    Cmd swap = t.tcd("map set udp drop");
    EXPECT_EQ(swap.rc, 0);
    EXPECT_NE(swap.out.find("udp_handler -> drop"), std::string::npos) << swap.out;
    EXPECT_EQ(t.udp(50), 0);
    json s2 = t.tcd_json("stats");
    EXPECT_GE((*key_row(s2, 17))["packets"].get<uint64_t>(), udp_before + 50);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);
    EXPECT_EQ(t.udp(50), 50);

    // --watch as JSON Lines, with rates.
    Cmd w = t.tcd("-j stats --watch --interval 0.2 --count 2");
    ASSERT_EQ(w.rc, 0) << w.err;
    std::istringstream lines(w.out);
    int n = 0;
    for (std::string line; std::getline(lines, line); n++) {
        json j = json::parse(line);
        EXPECT_TRUE(j.contains("interval_s"));
        // Each reading says when it was taken (UTC, the documents' format).
        ASSERT_TRUE(j.contains("time")) << line;
        EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(),
                                     std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
            << line;
        EXPECT_TRUE(j["keys"][0].contains("pps"));
        EXPECT_TRUE(j["keys"][0].contains("bps"));
    }
    EXPECT_EQ(n, 2);

    // Detach, unload: nothing left behind.
    ASSERT_EQ(t.tcd("detach vb --netns " + t.b()).rc, 0);
    EXPECT_EQ(t.xdp_on_vb().find("prog/xdp"), std::string::npos);
    EXPECT_EQ(t.tcd("detach vb --netns " + t.b()).rc, 0);  // idempotent
    ASSERT_EQ(t.tcd("unload").rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(t.dir()));
    EXPECT_EQ(t.tcd("unload").rc, 0);  // idempotent
}

TEST(E2E, SkbModeAndIdempotentAttach) {
    TOPOLOGY(t);
    json a = t.tcd_json("attach vb --netns " + t.b() + " --mode skb");
    EXPECT_EQ(a["mode"], "skb");
    json again = t.tcd_json("attach vb --netns " + t.b() + " --mode skb");
    EXPECT_EQ(again["changed"], false);
    EXPECT_EQ(again["loaded"], false);
    ASSERT_EQ(t.tcd("map set icmp drop").rc, 0);
    EXPECT_FALSE(t.ping(2));
    ASSERT_EQ(t.tcd("map del icmp").rc, 0);
    EXPECT_TRUE(t.ping(2));
    json st = t.tcd_json("status");
    ASSERT_EQ(st["attached"].size(), 1u);
    EXPECT_EQ(st["attached"][0]["ifname"], "vb");
    EXPECT_EQ(st["attached"][0]["netns"], "/run/netns/" + t.b());
    EXPECT_EQ(st["attached"][0]["mode"], "skb");
}

TEST(E2E, ForeignProgramRefusedUnlessForce) {
    TOPOLOGY(t);
    std::string other = t.dir() + "-2";
    ASSERT_EQ(t.tcd("load", other).rc, 0);
    ASSERT_EQ(sh(t.in_ns(t.b(), "ip link set dev vb xdp pinned " + other + "/pass")).rc, 0);
    Cmd refused = t.tcd("attach vb --netns " + t.b());
    EXPECT_EQ(refused.rc, 1);
    EXPECT_NE(refused.err.find("another XDP program runs there: pass (id "), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("--force"), std::string::npos);
    // The failed attach loaded the instance and took it back again.
    EXPECT_FALSE(tcd::bpffs::exists(t.dir()));
    json forced = t.tcd_json("attach vb --netns " + t.b() + " --force");
    EXPECT_EQ(forced["changed"], true);
    EXPECT_NE(forced["replaced"].get<std::string>().find("pass"), std::string::npos);
    if (forced["multiprog"] == true) EXPECT_NE(t.xdp_on_vb().find("xdp_dispatcher"), std::string::npos);
    else EXPECT_EQ(tcdtest::xdp_dispatcher_at(t.b(), "vb"), tcdtest::dispatcher_id(t.dir())) << t.xdp_on_vb();
}

TEST(E2E, FailedAttachChangesNothing) {
    TOPOLOGY(t);
    Cmd c = t.tcd("attach nosuchif0 --netns " + t.b());
    EXPECT_EQ(c.rc, 1);
    EXPECT_EQ(c.err.rfind("tcd: interface nosuchif0: no such interface", 0), 0u) << c.err;
    EXPECT_FALSE(tcd::bpffs::exists(t.dir()));
    Cmd ns = t.tcd("attach vb --netns nosuchns");
    EXPECT_EQ(ns.rc, 1);
    EXPECT_NE(ns.err.find("network namespace nosuchns: not found"), std::string::npos) << ns.err;
    EXPECT_FALSE(tcd::bpffs::exists(t.dir()));
}

TEST(E2E, SeedCommandsWorkOnTcdPins) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("load").rc, 0);
    // The seed's own wiring and attach commands, on what tcd pinned.
    ASSERT_EQ(sh("bpftool map update pinned " + t.dir() + "/maps/jt key 6 0 0 0 value pinned " + t.dir() +
                 "/tcp_handler")
                  .rc,
              0);
    ASSERT_EQ(sh(t.in_ns(t.b(), "ip link set dev vb xdp pinned " + t.dir() + "/xdp_dispatch")).rc, 0);
    json list = t.tcd_json("map list");
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["key"], 6);
    EXPECT_EQ(list[0]["handler"], "tcp_handler");
    ASSERT_TRUE(t.tcp(1000));
    json s = t.tcd_json("stats");
    EXPECT_GT((*key_row(s, 6))["packets"].get<uint64_t>(), 0u);
    // tcd recognises its dispatcher even though ip attached it.
    json again = t.tcd_json("attach vb --netns " + t.b());
    EXPECT_EQ(again["changed"], false);
    // unload finds it and detaches it first.
    ASSERT_EQ(t.tcd("unload").rc, 0);
    EXPECT_EQ(t.xdp_on_vb().find("prog/xdp"), std::string::npos);
}

// A respecialise (a key that joins the direct set) of an instance tcd
// attached alone writes the new dispatcher into its entry shim's slot: the
// program at the hook stays (docs/datapath.md, "XDP alone"). A dispatcher
// that ip attached itself is replaced at the hook by the shim at its first
// respecialise, and traffic goes on through all of it.
TEST(E2E, RespecialiseKeepsTheProgramAtTheHook) {
    TOPOLOGY(t);
    json a = t.tcd_json("attach vb --netns " + t.b() + " --alone");
    ASSERT_EQ(a["changed"], true) << a.dump();
    ASSERT_GT(a.value("entry_id", 0u), 0u) << a.dump();
    const uint32_t hook = tcdtest::xdp_hook_id(t.b(), "vb");
    EXPECT_EQ(hook, a["entry_id"].get<uint32_t>());
    const uint64_t before = tcdtest::dispatcher_id(t.dir());
    json set = t.tcd_json("map set 47 pass");
    EXPECT_EQ(set.value("respecialised", false), true) << set.dump();
    const uint64_t after = tcdtest::dispatcher_id(t.dir());
    EXPECT_NE(after, before);
    EXPECT_EQ(tcdtest::xdp_hook_id(t.b(), "vb"), hook);
    EXPECT_EQ(tcdtest::xdp_dispatcher_at(t.b(), "vb"), after);
    ASSERT_EQ(t.tcd("map set icmp drop").rc, 0);
    EXPECT_FALSE(t.ping(2));
    json st = t.tcd_json("status");
    ASSERT_EQ(st["attached"].size(), 1u);
    EXPECT_EQ(st["attached"][0]["entry_id"], hook) << st.dump();
    EXPECT_EQ(st["attached"][0]["multiprog"], false) << st.dump();
    EXPECT_TRUE(st["problems"].empty()) << st.dump();
    ASSERT_EQ(t.tcd("detach vb --netns " + t.b()).rc, 0);
    EXPECT_EQ(t.xdp_on_vb().find("prog/xdp"), std::string::npos);

    // The dispatcher at the hook itself (ip, or an older tcd): found there
    // (and recorded, as it is in another namespace), not moved by attach;
    // its first respecialise puts the shim at the hook in its place, the
    // next ones leave the hook alone.
    ASSERT_EQ(sh(t.in_ns(t.b(), "ip link set dev vb xdp pinned " + t.dir() + "/xdp_dispatch")).rc, 0);
    EXPECT_EQ(tcdtest::xdp_hook_id(t.b(), "vb"), tcdtest::dispatcher_id(t.dir()));
    json again = t.tcd_json("attach vb --netns " + t.b());
    EXPECT_EQ(again["changed"], false) << again.dump();
    EXPECT_EQ(tcdtest::xdp_hook_id(t.b(), "vb"), tcdtest::dispatcher_id(t.dir()));
    EXPECT_FALSE(t.tcd_json("status")["attached"][0].contains("entry_id"));
    json set2 = t.tcd_json("map set 132 pass");
    EXPECT_EQ(set2.value("respecialised", false), true) << set2.dump();
    const uint32_t shim = tcdtest::xdp_hook_id(t.b(), "vb");
    EXPECT_NE(shim, tcdtest::dispatcher_id(t.dir()));
    EXPECT_EQ(tcdtest::xdp_dispatcher_at(t.b(), "vb"), tcdtest::dispatcher_id(t.dir()));
    EXPECT_FALSE(t.ping(2));
    json del = t.tcd_json("map del 132");
    EXPECT_EQ(del.value("respecialised", false), true) << del.dump();
    EXPECT_EQ(tcdtest::xdp_hook_id(t.b(), "vb"), shim);
    EXPECT_EQ(tcdtest::xdp_dispatcher_at(t.b(), "vb"), tcdtest::dispatcher_id(t.dir()));
    ASSERT_EQ(t.tcd("map del icmp").rc, 0);
    EXPECT_TRUE(t.ping(2));
    json st2 = t.tcd_json("status");
    ASSERT_EQ(st2["attached"].size(), 1u) << st2.dump();
    EXPECT_EQ(st2["attached"][0].value("entry_id", 0u), shim) << st2.dump();
    EXPECT_TRUE(st2["problems"].empty()) << st2.dump();
    ASSERT_EQ(t.tcd("unload").rc, 0);
    EXPECT_EQ(t.xdp_on_vb().find("prog/xdp"), std::string::npos);
}

TEST(E2E, UnloadDetachesFromEveryNamespace) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("attach va --netns /run/netns/" + t.a()).rc, 0);
    json st = t.tcd_json("status");
    EXPECT_EQ(st["attached"].size(), 2u);
    json un = t.tcd_json("unload");
    EXPECT_EQ(un["detached"].size(), 2u);
    EXPECT_EQ(t.xdp_on_vb().find("prog/xdp"), std::string::npos);
    EXPECT_EQ(sh(t.in_ns(t.a(), "ip link show va")).out.find("prog/xdp"), std::string::npos);
    EXPECT_FALSE(tcd::bpffs::exists(t.dir()));
}

TEST(E2E, ReloadKeepsWiringCountersAndAttachment) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);
    EXPECT_EQ(t.udp(20), 20);
    json before = t.tcd_json("status");
    Cmd same = t.tcd("load --miss-action drop");
    EXPECT_EQ(same.rc, 1);  // differs from what is loaded: needs --force
    EXPECT_NE(same.err.find("--force"), std::string::npos);
    json r = t.tcd_json("load --miss-action drop --force");
    EXPECT_EQ(r["reloaded"], true);
    EXPECT_EQ(r["swapped"].size(), 1u);
    json after = t.tcd_json("status");
    EXPECT_NE(after["dispatcher"]["prog_id"], before["dispatcher"]["prog_id"]);
    EXPECT_EQ(after["dispatcher"]["miss_action"], "drop");
    // The same keys to the same handlers: the built-ins are this tcd's now
    // (new program ids), repointed by load --force.
    EXPECT_EQ(wiring_names(after), wiring_names(before));
    EXPECT_NE(after["wired"][0]["prog_id"], before["wired"][0]["prog_id"]);
    ASSERT_EQ(after["attached"].size(), 1u);
    json s = t.tcd_json("stats");
    EXPECT_GE((*key_row(s, 17))["packets"].get<uint64_t>(), 20u);  // counters survived
    EXPECT_EQ(t.udp(20), 20);
    EXPECT_FALSE(t.ping(1));  // icmp unwired: the new miss action drops it
}

}  // namespace

namespace {

using tcdtest::StreamResult;

// The stream every live test here sends: A to B's 10.201.0.2, port 7003,
// one datagram every `interval_us` for as long as `work` runs.
StreamResult udp_stream_around(const Topology& t, int interval_us, const std::function<void()>& work) {
    return tcdtest::udp_stream_around(t.a(), t.b(), "10.201.0.2", 7003, interval_us, work);
}

TEST(E2E, LiveSwapLosesNothing) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);
    ASSERT_EQ(t.udp(10), 10);  // neighbours resolved before the stream
    // The key is switched 100 times while the datagrams flow.
    constexpr int kSwaps = 100;
    int failed = 0;
    auto r = udp_stream_around(t, 200, [&] {
        for (int i = 0; i < kSwaps; i++)
            if (t.tcd(i % 2 ? "-q map set udp udp_handler" : "-q map set udp pass").rc != 0) failed++;
    });
    EXPECT_EQ(failed, 0);
    std::printf("%d swaps during a stream of %d datagrams\n", kSwaps, r.sent);
    EXPECT_GT(r.sent, kSwaps);  // the stream ran while the key was switched
    EXPECT_EQ(r.received, r.sent);
    EXPECT_EQ(r.missing, 0);
    json s = t.tcd_json("stats");
    EXPECT_EQ((*key_row(s, 17))["missed"], 0);
}

TEST(E2E, HitlessReloadUnderTraffic) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);
    ASSERT_EQ(t.udp(10), 10);
    json first = t.tcd_json("status");
    // The dispatcher is reloaded 10 times while the datagrams flow.
    constexpr int kReloads = 10;
    int failed = 0;
    auto r = udp_stream_around(t, 300, [&] {
        for (int i = 0; i < kReloads; i++)
            if (t.tcd(std::string("-q load --force --miss-action ") + (i % 2 ? "pass" : "drop")).rc != 0) failed++;
    });
    EXPECT_EQ(failed, 0);
    std::printf("%d reloads during a stream of %d datagrams\n", kReloads, r.sent);
    EXPECT_GT(r.sent, kReloads);
    EXPECT_EQ(r.received, r.sent);
    EXPECT_EQ(r.missing, 0);
    json after = t.tcd_json("status");
    EXPECT_NE(after["dispatcher"]["prog_id"], first["dispatcher"]["prog_id"]);
    EXPECT_EQ(wiring_names(after), wiring_names(first));  // udp_handler replaced and repointed on every reload
    ASSERT_EQ(after["attached"].size(), 1u);
    json s = t.tcd_json("stats");
    EXPECT_EQ((*key_row(s, 17))["missed"], 0);
    EXPECT_GE((*key_row(s, 17))["packets"].get<uint64_t>(), uint64_t(r.sent) + 10);  // counters carried across reloads
    // No staged dispatcher pin is left behind.
    for (const auto& name : tcd::bpffs::list_pins(t.dir())) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
}

// A map set of a key that joins the direct set, and its map del, each load
// a new dispatcher specialised to the wiring and swap it in as load --force
// does: while a UDP stream runs through the direct udp key, none is lost.
TEST(E2E, RespecialiseUnderTrafficLosesNothing) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);
    ASSERT_EQ(t.udp(10), 10);
    json first = t.tcd_json("status");
    constexpr int kSwaps = 10;
    int failed = 0;
    auto r = udp_stream_around(t, 300, [&] {
        for (int i = 0; i < kSwaps; i++) {
            json j = t.tcd_json(i % 2 ? "map del gre" : "map set gre pass");
            if (!j.is_object() || !j.value("respecialised", false)) failed++;
        }
    });
    EXPECT_EQ(failed, 0);
    std::printf("%d dispatcher swaps (map set / del gre) during a stream of %d datagrams\n", kSwaps, r.sent);
    EXPECT_GT(r.sent, kSwaps);
    EXPECT_EQ(r.received, r.sent);
    EXPECT_EQ(r.missing, 0);
    json after = t.tcd_json("status");
    EXPECT_NE(after["dispatcher"]["prog_id"], first["dispatcher"]["prog_id"]);
    ASSERT_EQ(after["attached"].size(), 1u);
    json s = t.tcd_json("stats");
    EXPECT_EQ((*key_row(s, 17))["missed"], 0);
    EXPECT_GE((*key_row(s, 17))["packets"].get<uint64_t>(), uint64_t(r.sent) + 10);
    for (const auto& name : tcd::bpffs::list_pins(t.dir())) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
}

TEST(E2E, UserHandlersFromExamples) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    std::string objdir = TCD_BPF_OBJ_DIR;
    Cmd load = t.tcd("handler load " + objdir + "/ports.bpf.o");
    ASSERT_EQ(load.rc, 0) << load.err;
    EXPECT_NE(load.out.find("loaded tcp_ports"), std::string::npos);
    json hs = t.tcd_json("handler list");
    int user = 0;
    for (const auto& h : hs) user += h["builtin"] == false;
    EXPECT_EQ(user, 3);
    ASSERT_EQ(t.tcd("map set tcp tcp_ports").rc, 0);
    ASSERT_EQ(t.tcd("map set 254 port22").rc, 0);
    ASSERT_TRUE(t.tcp(5000));  // port 7002: passes
    // port 22 is dropped by the chained stage: the connection cannot open.
    std::string peer = TCD_PEER;
    Cmd blocked = sh(peer + " tcp-send --netns " + t.a() + " --to 10.201.0.2 --port 22 --bytes 10 --timeout-ms 700");
    EXPECT_NE(blocked.rc, 0);
    EXPECT_NE(blocked.err.find("timed out"), std::string::npos) << blocked.err;
    // port22 counts what it drops into tcd's counters (tcd_count), row 254.
    json counted = t.tcd_json("stats");
    const json* row254 = key_row(counted, 254);
    ASSERT_NE(row254, nullptr) << counted.dump();
    EXPECT_EQ((*row254)["handler"], "port22");
    EXPECT_GE((*row254)["packets"].get<uint64_t>(), 1u);  // the SYN, and any retries
    EXPECT_GE((*row254)["bytes"].get<uint64_t>(), 54u * (*row254)["packets"].get<uint64_t>());
    Cmd refused = t.tcd("handler unload port22");
    EXPECT_EQ(refused.rc, 1);
    EXPECT_NE(refused.err.find("is wired at key 254"), std::string::npos) << refused.err;
    ASSERT_EQ(t.tcd("handler unload port22 --force").rc, 0);
    Cmd open = sh(peer + " tcp-send --netns " + t.a() + " --to 10.201.0.2 --port 22 --bytes 10 --timeout-ms 700");
    EXPECT_NE(open.err.find("refused"), std::string::npos) << open.err;  // reaches B's stack now: RST
}

}  // namespace

namespace {

TEST(E2E, NotRootGetsASentence) {
    TCD_REQUIRE_KERNEL();
    for (const char* args : {"status", "load", "stats", "map list", "attach lo", "unload"}) {
        Cmd c = sh(std::string("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ") + TCD_BIN +
                   " -d /sys/fs/bpf/tcd-nonroot-test " + args);
        EXPECT_EQ(c.rc, 1) << args << ": " << c.err;
        EXPECT_EQ(c.out, "") << args;
        EXPECT_EQ(c.err.rfind("tcd: ", 0), 0u) << c.err;
        EXPECT_NE(c.err.find("permission denied (needs root or CAP_BPF+CAP_NET_ADMIN)"), std::string::npos)
            << args << ": " << c.err;
        EXPECT_EQ(c.err.find("errno"), std::string::npos);
    }
    // Commands that take the instance lock check privileges first: the one
    // line is the privilege sentence, not the lock directory's EACCES.
    for (const char* cmd : {"load", "unload", "attach", "map set", "handler unload"}) {
        std::string args = std::string(cmd) + (std::string(cmd) == "attach" ? " lo" : "") +
                           (std::string(cmd) == "map set" ? " 6 drop" : "") +
                           (std::string(cmd) == "handler unload" ? " x" : "");
        Cmd c = sh(std::string("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ") + TCD_BIN +
                   " -d /sys/fs/bpf/tcd-nonroot-test " + args);
        EXPECT_EQ(c.rc, 1) << args;
        EXPECT_EQ(c.err, std::string("tcd: ") + cmd + ": permission denied (needs root or CAP_BPF+CAP_NET_ADMIN)\n")
            << args;
    }
}

TEST(E2E, TopologyTeardownLeavesNoNamespace) {
    TCD_REQUIRE_KERNEL();
    std::string a, b, dir;
    {
        Topology t;
        ASSERT_TRUE(t.ok());
        a = t.a();
        b = t.b();
        dir = t.dir();
        ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
        std::string during = sh("ip netns list").out;
        ASSERT_NE(during.find(a), std::string::npos) << during;
        ASSERT_NE(during.find(b), std::string::npos) << during;
    }
    std::string left = sh("ip netns list").out;
    EXPECT_EQ(left.find(a), std::string::npos) << left;
    EXPECT_EQ(left.find(b), std::string::npos) << left;
    EXPECT_EQ(sh("ls /run/netns 2>/dev/null").out.find(a), std::string::npos);
    EXPECT_FALSE(tcd::bpffs::exists(dir));
}

TEST(E2E, MountsBpffsWhenMissing) {
    TCD_REQUIRE_KERNEL();
    // In a private mount namespace, take bpffs away from /sys/fs/bpf; tcd load
    // mounts it again, as bpftool does, and works there. Nothing leaks out.
    std::string dir = "/sys/fs/bpf/tcd-mount-test";
    tcdtest::LockFiles locks{dir};
    Cmd c = sh("unshare --mount --propagation private sh -c 'umount /sys/fs/bpf && ! mountpoint -q /sys/fs/bpf && " +
               std::string(TCD_BIN) + " -d " + dir + " load && mountpoint -q /sys/fs/bpf && test -e " + dir +
               "/xdp_dispatch && " + TCD_BIN + " -d " + dir + " unload'");
    EXPECT_EQ(c.rc, 0) << c.out << c.err;
    EXPECT_FALSE(tcd::bpffs::exists(dir));
}

TEST(E2E, QuietVerboseAndJsonEverywhere) {
    TOPOLOGY(t);
    Cmd q = t.tcd("-q load");
    EXPECT_EQ(q.rc, 0);
    EXPECT_EQ(q.out, "");
    Cmd v = t.tcd("-v load --force");
    EXPECT_EQ(v.rc, 0);
    EXPECT_NE(v.err.find("libbpf"), std::string::npos);  // the library log, on stderr
    for (const char* args : {"status", "map list", "handler list", "stats", "stats --all"}) {
        Cmd j = t.tcd(std::string("-j ") + args);
        EXPECT_EQ(j.rc, 0) << args;
        ASSERT_TRUE(json::accept(j.out)) << args << ": " << j.out;
        Cmd p = t.tcd(std::string("-p ") + args);
        EXPECT_EQ(json::parse(p.out), json::parse(j.out)) << args;
        if (!json::parse(j.out).empty()) EXPECT_NE(p.out.find("\n  "), std::string::npos) << args;  // indented
    }
}

}  // namespace

namespace {

TEST(E2E, TcEgressCountsAndDrops) {
    tcdtest::NoTcx clsact;  // the clsact qdisc's life below (tcx links: tcx_e2e_test)
    TOPOLOGY(t);
    // A tc instance: attach with --direction loads one on a fresh pin dir.
    json a = t.tcd_json("attach vb --netns " + t.b() + " --direction egress");
    EXPECT_EQ(a["loaded"], true);
    EXPECT_EQ(a["direction"], "egress");
    json st = t.tcd_json("status");
    EXPECT_EQ(st["dispatcher"]["hook"], "tc");
    EXPECT_EQ(st["dispatcher"]["name"], "tc_dispatch");
    ASSERT_TRUE(t.ping(3));  // the replies leave vb: counted at egress
    json s = t.tcd_json("stats");
    ASSERT_TRUE(key_row(s, 1));
    EXPECT_GE((*key_row(s, 1))["packets"].get<uint64_t>(), 3u);
    // Dropping ICMP on egress: requests arrive, replies never leave.
    ASSERT_EQ(t.tcd("map set icmp drop").rc, 0);
    EXPECT_FALSE(t.ping(2));
    json link = json::parse(sh(t.in_ns(t.b(), "ip -j -s link show vb")).out);
    EXPECT_GT(link[0]["stats64"]["rx"]["packets"].get<uint64_t>(), 0u);  // the requests did arrive
    // Ingress too, on the same interface.
    json in = t.tcd_json("attach vb --netns " + t.b() + " --direction ingress");
    EXPECT_EQ(in["changed"], true);
    EXPECT_EQ(t.tcd_json("status")["attached"].size(), 2u);
    ASSERT_EQ(t.tcd("map del icmp").rc, 0);
    EXPECT_TRUE(t.ping(2));
    // Detach one direction, then unload: tcd's clsact qdisc goes with the last filter.
    ASSERT_EQ(t.tcd("detach vb --netns " + t.b() + " --direction egress").rc, 0);
    EXPECT_NE(sh(t.in_ns(t.b(), "tc qdisc show dev vb")).out.find("clsact"), std::string::npos);
    ASSERT_EQ(t.tcd("unload").rc, 0);
    EXPECT_EQ(sh(t.in_ns(t.b(), "tc qdisc show dev vb")).out.find("clsact"), std::string::npos);
    EXPECT_EQ(sh(t.in_ns(t.b(), "tc filter show dev vb ingress")).out, "");
}

TEST(E2E, TcKeepsAForeignQdisc) {
    tcdtest::NoTcx clsact;
    TOPOLOGY(t);
    ASSERT_EQ(sh(t.in_ns(t.b(), "tc qdisc add dev vb clsact")).rc, 0);
    ASSERT_EQ(t.tcd("load --hook tc").rc, 0);
    json a = t.tcd_json("attach vb --netns " + t.b() + " --direction ingress");
    EXPECT_EQ(a["changed"], true);
    ASSERT_EQ(t.tcd("unload").rc, 0);
    // tcd did not make the clsact qdisc, so it leaves it.
    EXPECT_NE(sh(t.in_ns(t.b(), "tc qdisc show dev vb")).out.find("clsact"), std::string::npos);
}

TEST(E2E, PortInstanceOnRealTraffic) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("load --key port").rc, 0);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("map set 7002 pass").rc, 0);   // TCP test port
    ASSERT_EQ(t.tcd("map set 7001 drop").rc, 0);   // UDP test port
    ASSERT_TRUE(t.tcp(3000));
    EXPECT_EQ(t.udp(20), 0);
    ASSERT_EQ(t.tcd("map del 7001").rc, 0);
    EXPECT_EQ(t.udp(20), 20);
    ASSERT_TRUE(t.ping(2));  // ICMP: no port
    json s = t.tcd_json("stats");
    ASSERT_TRUE(key_row(s, 7002));
    EXPECT_GT((*key_row(s, 7002))["packets"].get<uint64_t>(), 2u);
    EXPECT_GE(s["other_ports"]["packets"].get<uint64_t>(), 20u);  // 7001 once unwired
    EXPECT_GE(s["no_port"]["packets"].get<uint64_t>(), 2u);
    Cmd bad = t.tcd("map set 70000 pass");
    EXPECT_EQ(bad.rc, 2);
    EXPECT_NE(bad.err.find("port 70000: out of range"), std::string::npos) << bad.err;
    EXPECT_EQ(t.tcd("map set http pass").rc, 0);
    EXPECT_EQ(t.tcd_json("map list").size(), 2u);
}

// handler unload --force names the keys it unwired the way the instance
// knows them: on a port instance, by service (22 is ssh, not xns-idp; 6 has
// no service name, so it is not "tcp").
TEST(E2E, HandlerUnloadOnAPortInstanceNamesPorts) {
    TCD_REQUIRE_KERNEL();
    struct Instance {
        std::string dir = "/sys/fs/bpf/" + tcdtest::unique_name("tcdhup");
        std::string tcd(const std::string& args) const { return std::string(TCD_BIN) + " -d " + dir + " " + args; }
        ~Instance() {
            sh(tcd("-q unload"));
            tcdtest::remove_lock_file(dir);
        }
    } inst;
    ASSERT_EQ(sh(inst.tcd("-q load --key port")).rc, 0);
    // A handler built for port instances (it shares their port_slot map).
    std::string obj = std::string(TCD_BPF_OBJ_DIR) + "/bad_maps_port_slot_ok.bpf.o";
    ASSERT_EQ(sh(inst.tcd("-q handler load " + obj)).rc, 0);
    for (const char* key : {"6", "ssh", "http"})
        ASSERT_EQ(sh(inst.tcd(std::string("-q map set ") + key + " bad_map_h")).rc, 0) << key;
    Cmd u = sh(inst.tcd("handler unload bad_map_h --force"));
    ASSERT_EQ(u.rc, 0) << u.err;
    EXPECT_EQ(u.out, "key 6 unwired\nkey 22 (ssh) unwired\nkey 80 (http) unwired\nunloaded bad_map_h\n");
    EXPECT_EQ(json::parse(sh(inst.tcd("-j map list")).out).size(), 0u);
}

// unload --force names the parents' keys the way each parent knows them:
// udp on a proto parent, 80 (http) and 7101 on a port parent.
TEST(E2E, UnloadForceNamesTheParentsKeys) {
    TCD_REQUIRE_KERNEL();
    struct Dirs {
        std::string base = "/sys/fs/bpf/" + tcdtest::unique_name("tcdunf");
        std::string proto = base + "-a", port = base + "-b", child = base + "-c";
        std::string tcd(const std::string& dir, const std::string& args) const {
            return std::string(TCD_BIN) + " -d " + dir + " " + args;
        }
        ~Dirs() {
            for (const auto& d : {proto, port, child}) {
                sh(tcd(d, "-q unload --force"));
                tcdtest::remove_lock_file(d);
            }
        }
    } d;
    ASSERT_EQ(sh(d.tcd(d.proto, "-q load")).rc, 0);
    ASSERT_EQ(sh(d.tcd(d.port, "-q load --key port")).rc, 0);
    ASSERT_EQ(sh(d.tcd(d.child, "-q load")).rc, 0);
    ASSERT_EQ(sh(d.tcd(d.proto, "-q map set udp " + d.child)).rc, 0);
    ASSERT_EQ(sh(d.tcd(d.port, "-q map set http " + d.child)).rc, 0);
    ASSERT_EQ(sh(d.tcd(d.port, "-q map set 7101 " + d.child)).rc, 0);
    Cmd u = sh(d.tcd(d.child, "unload --force"));
    ASSERT_EQ(u.rc, 0) << u.err;
    EXPECT_EQ(u.out, "unwired from " + d.proto + " at key 17 (udp)\n" +
                         "unwired from " + d.port + " at key 80 (http)\n" +
                         "unwired from " + d.port + " at key 7101\n" + d.child + ": unloaded\n");
}

}  // namespace

namespace {

TEST(E2E, ObjectFileWorksWithBpftoolAndIp) {
    TOPOLOGY(t);
    std::string file = "/tmp/tcd_object_" + std::to_string(getpid()) + ".o";
    std::string pins = t.dir() + "obj";
    Cmd o = sh(std::string(TCD_BIN) + " object -o " + file);
    ASSERT_EQ(o.rc, 0) << o.err;
    // The seed's flow with tcd's own ELF: loadall, wire, attach.
    EXPECT_EQ(sh("bpftool prog loadall " + file + " " + pins + " type xdp").rc, 0);
    EXPECT_EQ(sh(t.in_ns(t.b(), "ip link set dev vb xdp pinned " + pins + "/xdp_dispatch")).rc, 0);
    EXPECT_NE(t.xdp_on_vb().find("xdp_dispatch"), std::string::npos);
    sh(t.in_ns(t.b(), "ip link set dev vb xdp off") + "; rm -rf " + pins + " " + file);
    Cmd bad = sh(std::string(TCD_BIN) + " object -o /nonexistent-dir/x.o");
    EXPECT_EQ(bad.rc, 1);
    EXPECT_NE(bad.err.find("tcd: write /nonexistent-dir/x.o: no such file"), std::string::npos) << bad.err;
}

TEST(E2E, PrometheusTextFromALiveInstance) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("attach vb --netns " + t.b()).rc, 0);
    ASSERT_EQ(t.tcd("map set udp udp_handler").rc, 0);
    EXPECT_EQ(t.udp(10), 10);
    Cmd p = t.tcd("stats --format prometheus");
    ASSERT_EQ(p.rc, 0);
    EXPECT_NE(p.out.find("key=\"17\",proto=\"udp\",handler=\"udp_handler\"}"), std::string::npos) << p.out;
    Cmd j = t.tcd("stats --format json");
    EXPECT_TRUE(json::accept(j.out));
}

}  // namespace

namespace {

TEST(E2E, ApplyConvergesAndIsIdempotent) {
    TOPOLOGY(t);
    std::string file = "/tmp/tcd_apply_" + std::to_string(getpid()) + ".yaml";
    auto write = [&](const std::string& text) { std::ofstream(file) << text; };
    write("pin_dir: " + t.dir() + "\nmiss_action: drop\nhandlers:\n  - object: " + std::string(TCD_BPF_OBJ_DIR) +
          "/chain.bpf.o\nwiring:\n  udp: mark\n  252: inspect\n  tcp: tcp_handler\ninterfaces:\n  - name: vb\n    netns: " +
          t.b() + "\n");
    json dry = t.tcd_json("apply -f " + file + " --dry-run");
    EXPECT_EQ(dry["applied"], 0);
    EXPECT_EQ(dry["changes"].size(), 6u);  // load, handler load, 3 map sets, attach
    EXPECT_FALSE(tcd::bpffs::exists(t.dir()));  // a dry run changes nothing
    json first = t.tcd_json("apply -f " + file);
    EXPECT_EQ(first["applied"], 6);
    json second = t.tcd_json("apply -f " + file);
    EXPECT_EQ(second["changes"].size(), 0u) << second.dump();
    // The file's wiring on real traffic: UDP to port 9 is marked, then dropped.
    EXPECT_EQ(t.udp(5), 5);
    // Drift is undone: a key wired by hand goes, a detached interface comes back.
    ASSERT_EQ(t.tcd("map set icmp pass").rc, 0);
    ASSERT_EQ(t.tcd("detach vb --netns " + t.b()).rc, 0);
    json third = t.tcd_json("apply -f " + file);
    EXPECT_EQ(third["applied"], 2) << third.dump();
    EXPECT_EQ(t.tcd_json("apply -f " + file)["changes"].size(), 0u);
    json st = t.tcd_json("status");
    EXPECT_EQ(st["dispatcher"]["miss_action"], "drop");
    EXPECT_EQ(st["wired"].size(), 3u);
    EXPECT_EQ(st["attached"].size(), 1u);
    // A mistake in the file is a usage error naming the line; nothing changes.
    write("wiring:\n  tcp: tcp_handler\n  300: pass\n");
    Cmd bad = t.tcd("apply -f " + file);
    EXPECT_EQ(bad.rc, 2);
    EXPECT_NE(bad.err.find("line 3: key 300: out of range"), std::string::npos) << bad.err;
    std::remove(file.c_str());
}

}  // namespace

namespace {

using tcdtest::Background;

TEST(E2E, WatchEndsWithStatusZeroOnCtrlC) {
    TOPOLOGY(t);
    ASSERT_EQ(t.tcd("load").rc, 0);
    // A watch with no end, interrupted as a terminal's Ctrl-C would once it
    // has printed two readings.
    Background watch({TCD_BIN, "-d", t.dir(), "-j", "stats", "--watch", "--interval", "0.1"});
    ASSERT_TRUE(watch.started());
    EXPECT_TRUE(tcdtest::wait_until(
        [&] {
            std::string out = watch.out();
            return std::count(out.begin(), out.end(), '\n') >= 2;
        },
        std::chrono::seconds(10), "two readings from stats --watch"));
    Cmd c = watch.stop(SIGINT);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.err, "");
    int lines = 0;
    std::istringstream in(c.out);
    for (std::string l; std::getline(in, l); lines++) EXPECT_TRUE(json::accept(l)) << l;
    EXPECT_GE(lines, 2);
}

}  // namespace

namespace {

TEST(E2E, TcQdiscStaysWhileOthersUseIt) {
    tcdtest::NoTcx clsact;
    TOPOLOGY(t);
    json a = t.tcd_json("attach vb --netns " + t.b() + " --direction egress");
    ASSERT_EQ(a["loaded"], true);  // tcd made the clsact qdisc
    std::string obj = "/tmp/tcd_foreign_" + std::to_string(getpid()) + ".o";
    ASSERT_EQ(sh(std::string(TCD_BIN) + " -q object --hook tc -o " + obj).rc, 0);
    // Someone else's filter on the same qdisc.
    Cmd f = sh(t.in_ns(t.b(), "tc filter add dev vb ingress prio 7 handle 7 bpf da obj " + obj + " sec tc"));
    std::remove(obj.c_str());
    ASSERT_EQ(f.rc, 0) << f.err;
    ASSERT_EQ(t.tcd("unload").rc, 0);
    EXPECT_NE(sh(t.in_ns(t.b(), "tc qdisc show dev vb")).out.find("clsact"), std::string::npos);
    EXPECT_NE(sh(t.in_ns(t.b(), "tc filter show dev vb ingress")).out.find("handle 0x7"), std::string::npos);
}

}  // namespace
