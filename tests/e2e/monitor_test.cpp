// End to end for `tcd monitor` (issue 23) on a veth pair in namespaces of the
// test's own (prefix "mon"): the key, handler, level and decision of frames
// to wired and unwired keys and through a child instance, on XDP and on tc
// (tcx and the clsact fallback), proto and port; the rate limit's suppressed
// count under a flood; a second monitor refused; a monitor killed with
// SIGKILL recovered by the next command. The monitor runs in the background
// (-j), and each test waits for its start record before sending anything.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/lock.h"
#include "tests/common/background.h"
#include "tests/common/commands.h"
#include "tests/common/kernel.h"
#include "tests/common/no_tcx.h"
#include "tests/common/veth_test.h"
#include "tests/common/wait.h"

namespace {

using nlohmann::json;
using tcdtest::Background;
using tcdtest::Cmd;
using tcdtest::sh;

const std::string kTo = "10.203.0.2";

tcdtest::TopologySpec mon_topology() {
    tcdtest::TopologySpec spec{.prefix = "mon",
                               .namespaces = {"a", "b"},
                               .veths = {{.a = {"a", "va"}, .b = {"b", "vb"}}},
                               .lo_up = true,
                               .ipv6 = false,
                               .vlan_offload = false};
    spec.veths[0].a.addrs = {"10.203.0.1/24"};
    spec.veths[0].b.addrs = {"10.203.0.2/24"};
    return spec;
}

class MonNet : public tcdtest::NetFixture {
public:
    MonNet() : NetFixture(mon_topology(), {"_1", "_2"}) {
        if (ok() && sh(in_ns(a(), "ping -q -c 1 -W 2 " + kTo)).rc != 0) failed("va cannot reach vb");
    }
    int udp(int port, int count) const { return tcdtest::udp_across(a(), b(), kTo, port, count); }
    int ping(int count) const { return sh(in_ns(a(), "ping -q -c " + std::to_string(count) + " -i 0.2 -W 2 " + kTo)).rc; }
};
#define MON_NET(p) NET_FIXTURE(MonNet, p)

// The JSON lines a monitor printed so far.
std::vector<json> records(const std::string& out) {
    std::vector<json> v;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);) {
        json j = json::parse(l, nullptr, false);
        if (!j.is_discarded()) v.push_back(j);
    }
    return v;
}
std::vector<json> events(const std::string& out) {
    std::vector<json> v;
    for (auto& j : records(out))
        if (j.contains("decision")) v.push_back(j);
    return v;
}

// A monitor in the background, started (its start record printed).
class Mon : public Background {
public:
    Mon(const std::string& dir, std::vector<std::string> args) : Background(argv(dir, std::move(args)), "/tmp/mon_e2e") {}
    bool wait_started() const {
        return tcdtest::wait_until([&] { return out().find("{\"start\"") != std::string::npos; }, std::chrono::seconds(20),
                                   "the monitor's start record");
    }
    bool wait_events(size_t n) const {
        return tcdtest::wait_until([&] { return events(out()).size() >= n; }, std::chrono::seconds(20),
                                   std::to_string(n) + " monitor events");
    }

private:
    static std::vector<std::string> argv(const std::string& dir, std::vector<std::string> args) {
        std::vector<std::string> v{TCD_BIN, "-d", dir, "-j", "monitor"};
        v.insert(v.end(), args.begin(), args.end());
        return v;
    }
};

bool monitoring(const MonNet& p, const std::string& dir) {
    json st = p.tcd_json(dir, "status");
    return st.is_object() && st["dispatcher"].is_object() && st["dispatcher"]["monitoring"] == true;
}

std::string marker(const std::string& dir) {
    std::string p = tcd::InstanceLock::path_for(dir);
    return p.substr(0, p.size() - 5) + ".monitor";
}
bool exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

// XDP, proto: a wired key (udp -> udp_handler, a direct jump) and an unwired
// one (icmp: its direct jump falls through: a miss, miss action pass).
TEST(MonitorE2E, XdpWiredAndUnwiredKeys) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd(d, "map set udp udp_handler").rc, 0);
    EXPECT_FALSE(monitoring(p, d));
    Mon mon(d, {"--key", "udp", "--key", "icmp"});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    EXPECT_TRUE(monitoring(p, d));
    EXPECT_TRUE(exists(marker(d)));
    ASSERT_EQ(p.udp(7301, 3), 3);
    ASSERT_EQ(p.ping(2), 0);
    ASSERT_TRUE(mon.wait_events(5)) << mon.out();
    Cmd c = mon.stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    auto ev = events(c.out);
    int udp = 0, icmp = 0;
    for (const auto& e : ev) {
        EXPECT_EQ(e["instance"], d);
        EXPECT_EQ(e["level"], 0);
        EXPECT_EQ(e["iface"], "vb");
        EXPECT_NE(e["netns"].get<std::string>().find(p.b()), std::string::npos) << e.dump();
        EXPECT_EQ(e["hook"], "xdp");
        EXPECT_TRUE(e["verdict"].is_null());
        if (e["key"] == 17) {
            udp++;
            EXPECT_EQ(e["key_name"], "udp");
            EXPECT_EQ(e["decision"], "direct") << e.dump();
            EXPECT_EQ(e["handler"], "udp_handler") << e.dump();
            EXPECT_GT(e["prog_id"].get<uint32_t>(), 0u);
            EXPECT_EQ(e["frame"]["src"], "10.203.0.1");
            EXPECT_EQ(e["frame"]["dst"], kTo);
            EXPECT_EQ(e["frame"]["dport"], 7301);
        } else if (e["key"] == 1) {
            icmp++;
            EXPECT_EQ(e["key_name"], "icmp");
            EXPECT_EQ(e["decision"], "miss") << e.dump();
            EXPECT_EQ(e["miss_action"], "pass");
            EXPECT_TRUE(e["handler"].is_null());
        } else {
            ADD_FAILURE() << "an event for a key not asked for: " << e.dump();
        }
    }
    EXPECT_EQ(udp, 3);
    EXPECT_EQ(icmp, 2);
    auto all = records(c.out);
    ASSERT_FALSE(all.empty());
    ASSERT_TRUE(all.back().contains("end")) << c.out;
    EXPECT_EQ(all.back()["end"]["events"], ev.size());
    EXPECT_EQ(all.back()["end"]["suppressed"], 0);
    EXPECT_NE(all.back()["end"]["verdict"].get<std::string>().find("not shown"), std::string::npos);
    // SIGTERM put the plain dispatcher back.
    EXPECT_FALSE(monitoring(p, d));
    EXPECT_FALSE(exists(marker(d)));
    EXPECT_EQ(p.udp(7301, 3), 3);
}

// A map set that respecialises the dispatcher under a monitor keeps the
// monitoring build, on the same stream; the monitor's end puts the plain one
// (with the new direct keys) back.
TEST(MonitorE2E, RespecialiseKeepsTheStream) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "attach vb --netns " + p.b()).rc, 0);
    Mon mon(d, {"--key", "udp"});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    json before = p.tcd_json(d, "status")["dispatcher"];
    Cmd set = p.tcd(d, "map set 47 drop");  // a key not among the direct ones: a new dispatcher
    ASSERT_EQ(set.rc, 0) << set.err;
    json after = p.tcd_json(d, "status")["dispatcher"];
    EXPECT_NE(before["prog_id"], after["prog_id"]);
    EXPECT_EQ(after["monitoring"], true);
    ASSERT_EQ(p.udp(7301, 2), 2);
    ASSERT_TRUE(mon.wait_events(2)) << mon.out();
    Cmd c = mon.stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(events(c.out).size(), 2u) << c.out;
    json plain = p.tcd_json(d, "status")["dispatcher"];
    EXPECT_EQ(plain["monitoring"], false);
    EXPECT_EQ(plain["direct_keys"], after["direct_keys"]);
}

// --misses: only the frames whose key has no handler, each with its frame.
TEST(MonitorE2E, MissesOnly) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd(d, "map set udp udp_handler").rc, 0);
    Mon mon(d, {"--misses", "--key", "udp", "--key", "icmp"});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    ASSERT_EQ(p.udp(7301, 3), 3);
    ASSERT_EQ(p.ping(2), 0);
    ASSERT_TRUE(mon.wait_events(2)) << mon.out();
    Cmd c = mon.stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    auto ev = events(c.out);
    EXPECT_EQ(ev.size(), 2u) << c.out;
    for (const auto& e : ev) {
        EXPECT_EQ(e["key"], 1) << e.dump();
        EXPECT_EQ(e["decision"], "miss");
        EXPECT_EQ(e["miss_action"], "pass");
        EXPECT_EQ(e["frame"]["src"], "10.203.0.1");
        EXPECT_EQ(e["caplen"], e["len"]);
    }
}

// A proto instance handing udp to a port instance: each frame is an event
// at level 0 (key udp, handler the child's dispatcher) and at level 1 (its
// port, handler pass); a port with no handler is a miss at level 1.
TEST(MonitorE2E, ChildInstanceLevels) {
    MON_NET(p);
    const std::string root = p.dir(0), child = p.dir(1);
    ASSERT_EQ(p.tcd(child, "load --key port").rc, 0);
    ASSERT_EQ(p.tcd(child, "map set 7301 pass").rc, 0);
    ASSERT_EQ(p.tcd(root, "attach vb --netns " + p.b()).rc, 0);
    Cmd wire = p.tcd(root, "map set udp " + child);
    ASSERT_EQ(wire.rc, 0) << wire.err;
    // --key is read as the root's keys (protocols): 7301 is no protocol.
    Cmd bad = p.tcd(root, "monitor --key 7301 --count 1");
    EXPECT_EQ(bad.rc, 2) << bad.err;
    // --key filters the instances of the root's key kind: the port child
    // shows every port.
    Mon mon2(root, {"--key", "udp"});
    ASSERT_TRUE(mon2.wait_started()) << mon2.out();
    EXPECT_TRUE(monitoring(p, root));
    EXPECT_TRUE(monitoring(p, child));
    ASSERT_EQ(p.udp(7301, 2), 2);
    EXPECT_EQ(p.udp(7302, 1), 1);  // nothing at 7302 in the child: a miss there (pass)
    ASSERT_TRUE(mon2.wait_events(4)) << mon2.out();
    Cmd c = mon2.stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    int l0 = 0, l1_hit = 0, l1_miss = 0;
    for (const auto& e : events(c.out)) {
        if (e["level"] == 0) {
            l0++;
            EXPECT_EQ(e["instance"], root);
            EXPECT_EQ(e["key"], 17);
            EXPECT_EQ(e["decision"], "direct");
            EXPECT_EQ(e["handler"], "dispatcher of " + child) << e.dump();
        } else {
            EXPECT_EQ(e["level"], 1);
            EXPECT_EQ(e["instance"], child);
            EXPECT_EQ(e["key"], e["frame"]["dport"]) << e.dump();
            if (e["key"] == 7301) {
                l1_hit++;
                EXPECT_EQ(e["decision"], "direct") << e.dump();
                EXPECT_EQ(e["handler"], "pass");
            } else {
                l1_miss++;
                EXPECT_EQ(e["key"], 7302);
                EXPECT_EQ(e["decision"], "miss") << e.dump();
            }
        }
    }
    EXPECT_EQ(l0, 3);
    EXPECT_EQ(l1_hit, 2);
    EXPECT_EQ(l1_miss, 1);
    EXPECT_FALSE(monitoring(p, root));
    EXPECT_FALSE(monitoring(p, child));
}

// --rate 1 under a flood: every candidate is an event or counted as
// suppressed, and some were suppressed.
TEST(MonitorE2E, RateLimitCountsSuppressed) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "attach vb --netns " + p.b()).rc, 0);
    Mon mon(d, {"--key", "udp", "--rate", "1"});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    ASSERT_EQ(p.udp(7301, 200), 200);
    ASSERT_TRUE(mon.wait_events(1)) << mon.out();
    Cmd c = mon.stop(SIGINT);
    EXPECT_EQ(c.rc, 0) << c.err;
    auto all = records(c.out);
    ASSERT_FALSE(all.empty());
    ASSERT_TRUE(all.back().contains("end")) << c.out;
    const json& end = all.back()["end"];
    uint64_t ev = events(c.out).size();
    EXPECT_EQ(end["events"], ev);
    EXPECT_EQ(end["lost"], 0);
    EXPECT_GT(end["suppressed"].get<uint64_t>(), 0u);
    EXPECT_EQ(ev + end["suppressed"].get<uint64_t>(), 200u) << c.out;
    // Plain, the end is said on stderr.
    Cmd plain = p.tcd(d, "monitor --duration 0.2 --rate 5");
    EXPECT_EQ(plain.rc, 0) << plain.err;
    EXPECT_NE(plain.err.find("suppressed by the rate limit"), std::string::npos) << plain.err;
    EXPECT_NE(plain.err.find("verdict: not shown"), std::string::npos) << plain.err;
}

// A second monitor is refused naming the first's pid; kill -9 of the first
// leaves the monitoring dispatcher, which the next command (status) finds,
// says so, and replaces with the plain one.
TEST(MonitorE2E, SecondRefusedAndKillNineRecovered) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "attach vb --netns " + p.b()).rc, 0);
    Mon mon(d, {});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    json start = records(mon.out()).front()["start"];
    std::string pid = std::to_string(start["pid"].get<long>());
    Cmd second = p.tcd(d, "monitor --count 1");
    EXPECT_EQ(second.rc, 1);
    EXPECT_NE(second.err.find("pid " + pid), std::string::npos) << second.err;
    EXPECT_TRUE(monitoring(p, d));  // the first one's still runs

    Cmd killed = mon.stop(SIGKILL);
    Cmd st = p.tcd(d, "status");
    EXPECT_EQ(st.rc, 0) << st.err;
    EXPECT_NE(st.err.find("a monitor (pid " + pid + ") was killed"), std::string::npos) << st.err;
    EXPECT_NE(st.err.find("the plain dispatcher is back"), std::string::npos) << st.err;
    EXPECT_EQ(st.out.find("monitoring:"), std::string::npos) << st.out;
    EXPECT_FALSE(exists(marker(d)));
    Cmd again = p.tcd(d, "status");
    EXPECT_EQ(again.err, "");
    EXPECT_EQ(p.udp(7301, 3), 3);
}

// -w FILE: the frames go to a pcapng capture (no event lines), which
// tcpdump reads back frame by frame and tshark, where installed, with tcd's
// decision as each frame's comment and the interface by name.
TEST(MonitorE2E, WriteCaptureReadBackByTcpdumpAndTshark) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd(d, "map set udp udp_handler").rc, 0);
    const std::string cap = "/tmp/mon_e2e_" + std::to_string(getpid()) + ".pcapng";
    struct Remove {
        std::string f;
        ~Remove() { std::remove(f.c_str()); }
    } remove{cap};
    Mon mon(d, {"--key", "udp", "--count", "3", "--snaplen", "60", "-w", cap});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    ASSERT_EQ(p.udp(7305, 3), 3);
    ASSERT_TRUE(tcdtest::wait_until([&] { return mon.out().find("{\"end\"") != std::string::npos; },
                                    std::chrono::seconds(20), "the monitor's end record"))
        << mon.out();
    Cmd c = mon.stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_TRUE(events(c.out).empty()) << c.out;  // the frames went to the file
    auto all = records(c.out);
    ASSERT_TRUE(!all.empty() && all.back().contains("end")) << c.out;
    EXPECT_EQ(all.back()["end"]["events"], 3);

    if (sh("command -v tcpdump").rc != 0) {
        if (tcdtest::in_ci()) FAIL() << "tcpdump is not installed (apt-get install tcpdump)";
        GTEST_SKIP() << "tcpdump is not installed";
    }
    Cmd td = sh("tcpdump -nn -r " + cap);
    ASSERT_EQ(td.rc, 0) << td.err;
    std::istringstream in(td.out);
    int frames = 0;
    for (std::string l; std::getline(in, l);) {
        frames++;
        EXPECT_NE(l.find("IP 10.203.0.1."), std::string::npos) << l;
        EXPECT_NE(l.find(" > 10.203.0.2.7305: UDP"), std::string::npos) << l;
    }
    EXPECT_EQ(frames, 3) << td.out;

    if (sh("command -v tshark").rc != 0) GTEST_SKIP() << "tshark is not installed: its read-back is not checked";
    Cmd ts = sh("tshark -r " + cap + " -T fields -E separator='|' -e frame.interface_name -e frame.cap_len -e frame.comment");
    ASSERT_EQ(ts.rc, 0) << ts.err;
    std::istringstream tin(ts.out);
    int commented = 0;
    for (std::string l; std::getline(tin, l);) {
        commented++;
        EXPECT_EQ(l.rfind("vb@" + p.b() + "|60|tcd xdp " + d + "/L0 udp(17) direct udp_handler#", 0), 0u) << l;
    }
    EXPECT_EQ(commented, 3) << ts.out;
}

// tc, a port instance: the direction, the port with its service name, the
// handler; on tcx and on the clsact fallback.
void tc_port(bool clsact) {
    MON_NET(p);
    const std::string d = p.dir(0);
    ASSERT_EQ(p.tcd(d, "load --key port --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(d, "map set 53 pass").rc, 0);
    Cmd a = p.tcd(d, "attach vb --netns " + p.b() + " --direction ingress");
    ASSERT_EQ(a.rc, 0) << a.err;
    json at = p.tcd_json(d, "status")["attached"];
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["mode"], clsact ? "tc" : "tcx");
    Mon mon(d, {"--key", "dns", "--key", "7301", "--iface", "vb", "--netns", p.b()});
    ASSERT_TRUE(mon.wait_started()) << mon.out();
    EXPECT_EQ(p.udp(53, 2), 2);
    EXPECT_EQ(p.udp(7301, 1), 1);
    ASSERT_TRUE(mon.wait_events(3)) << mon.out();
    Cmd c = mon.stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    int dns = 0, other = 0;
    for (const auto& e : events(c.out)) {
        EXPECT_EQ(e["hook"], "tc");
        EXPECT_EQ(e["direction"], "ingress");
        EXPECT_EQ(e["iface"], "vb");
        if (e["key"] == 53) {
            dns++;
            EXPECT_EQ(e["key_name"], "domain") << e.dump();
            EXPECT_EQ(e["decision"], "direct") << e.dump();
            EXPECT_EQ(e["handler"], "pass");
        } else {
            other++;
            EXPECT_EQ(e["key"], 7301);
            EXPECT_EQ(e["decision"], "miss") << e.dump();
            EXPECT_EQ(e["miss_action"], "next");
        }
    }
    EXPECT_EQ(dns, 2);
    EXPECT_EQ(other, 1);
    EXPECT_FALSE(monitoring(p, d));
}

TEST(MonitorE2E, TcxPortInstance) {
    REQUIRE_TCX();
    tc_port(false);
}

TEST(MonitorE2E, ClsactPortInstance) {
    tcdtest::NoTcx no_tcx;
    tc_port(true);
}

}  // namespace
