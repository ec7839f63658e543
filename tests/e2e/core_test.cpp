// End to end, core commands: attach modes, unload of a damaged instance,
// stats --watch (plain), stats --reset, detach --all. Its own veth pair and
// namespaces ("tcdk<pid>a/b"), removed again also when an assertion fails.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/commands.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/no_tcx.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"
#include "tests/common/veth_test.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::key_row;
using tcdtest::sh;

// Namespaces A and B: va (A, 10.202.0.1/24) and vb (B, 10.202.0.2/24), and
// a second pair vc/vd inside B; all up. IPv6 off: no router solicitation or
// MLD report crosses the link on its own (one counted between a stats reset
// and the next read failed Core.StatsResetZeroesCounters in a slow guest).
tcdtest::TopologySpec core_topology() {
    return {.prefix = "tcdk",
            .namespaces = {"a", "b"},
            .veths = {{.a = {"a", "va", {"10.202.0.1/24"}}, .b = {"b", "vb", {"10.202.0.2/24"}}},
                      {.a = {"b", "vc"}, .b = {"b", "vd"}}},
            .ipv6 = false};
}

class Pair : public tcdtest::NetFixture {
public:
    Pair() : NetFixture(core_topology()) {}
    std::string link(const std::string& dev) const { return sh("ip -n " + b() + " -d link show " + dev).out; }
    bool ping(int count) const { return tcdtest::ping_across(a(), "10.202.0.2", count); }
};

#define PAIR(p) NET_FIXTURE(Pair, p)

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

TEST(Core, AttachInAnotherModeIsRefused) {
    PAIR(p);
    json a = p.tcd_json("attach vb --netns " + p.b() + " --mode skb");
    ASSERT_EQ(a["mode"], "skb");
    Cmd native = p.tcd("attach vb --netns " + p.b() + " --mode native");
    EXPECT_EQ(native.rc, 1);
    EXPECT_EQ(native.out, "");
    EXPECT_EQ(native.err, "tcd: interface vb: already attached in skb mode (detach first)\n");
    EXPECT_NE(p.link("vb").find("xdpgeneric"), std::string::npos);  // nothing changed
    // The same mode, or auto, is the state asked for: success, no change.
    for (const char* mode : {" --mode skb", " --mode auto", ""}) {
        json again = p.tcd_json("attach vb --netns " + p.b() + mode);
        EXPECT_EQ(again["changed"], false) << mode;
        EXPECT_EQ(again["mode"], "skb") << mode;
    }
    // Detached, it attaches in native mode.
    ASSERT_EQ(p.tcd("detach vb --netns " + p.b()).rc, 0);
    json n = p.tcd_json("attach vb --netns " + p.b() + " --mode native");
    EXPECT_EQ(n["mode"], "native");
    Cmd skb = p.tcd("attach vb --netns " + p.b() + " --mode skb");
    EXPECT_EQ(skb.rc, 1);
    EXPECT_EQ(skb.err, "tcd: interface vb: already attached in native mode (detach first)\n");
}

TEST(Core, UnloadDetachesAHalfRemovedInstance) {
    PAIR(p);
    ASSERT_EQ(p.tcd("attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd("attach vc --netns " + p.b() + " --mode skb").rc, 0);
    ASSERT_NE(p.link("vb").find("prog/xdp"), std::string::npos);
    // A map pin taken away by hand: the instance no longer opens.
    ASSERT_EQ(sh("rm " + p.dir() + "/maps/proto_stats").rc, 0);
    EXPECT_EQ(p.tcd("stats").rc, 1);
    json u = p.tcd_json("unload");
    EXPECT_EQ(u["changed"], true);
    EXPECT_EQ(u["detached"].size(), 2u) << u.dump();
    EXPECT_EQ(p.link("vb").find("xdp"), std::string::npos) << p.link("vb");
    EXPECT_EQ(p.link("vc").find("xdp"), std::string::npos) << p.link("vc");
    EXPECT_FALSE(tcd::bpffs::exists(p.dir()));
}

TEST(Core, UnloadDetachesWithoutJumpTableEither) {
    PAIR(p);
    ASSERT_EQ(p.tcd("attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(sh("rm " + p.dir() + "/maps/proto_stats " + p.dir() + "/maps/jt").rc, 0);
    Cmd u = p.tcd("unload");
    EXPECT_EQ(u.rc, 0) << u.err;
    EXPECT_EQ(p.link("vb").find("xdp"), std::string::npos) << p.link("vb");
    EXPECT_FALSE(tcd::bpffs::exists(p.dir()));
}

TEST(Core, UnloadRefusesWhenTheDispatcherCannotBeOpened) {
    PAIR(p);
    ASSERT_EQ(p.tcd("load").rc, 0);
    // The dispatcher pin replaced by a map: tcd cannot tell where it ran.
    ASSERT_EQ(sh("rm " + p.dir() + "/xdp_dispatch && bpftool map pin pinned " + p.dir() + "/maps/jt " + p.dir() +
                 "/xdp_dispatch")
                  .rc,
              0);
    Cmd u = p.tcd("unload");
    EXPECT_EQ(u.rc, 1);
    EXPECT_EQ(u.err.rfind("tcd: unload: cannot open the dispatcher to detach it: ", 0), 0u) << u.err;
    EXPECT_EQ(std::count(u.err.begin(), u.err.end(), '\n'), 1) << u.err;
    EXPECT_TRUE(tcd::bpffs::exists(p.dir() + "/maps/jt"));  // nothing removed
    EXPECT_TRUE(tcd::bpffs::exists(p.dir() + "/xdp_dispatch"));
}

TEST(Core, ReloadOfATcInstanceSwapsTheFilterAndLeavesNoStagedPin) {
    tcdtest::NoTcx clsact;  // the clsact filter (tcx: TcxE2E.LoadForceUnderTrafficLosesNothing)
    PAIR(p);
    ASSERT_EQ(p.tcd("load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd("attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd("map set icmp pass").rc, 0);
    json first = p.tcd_json("status");
    ASSERT_TRUE(p.ping(1));
    json r = p.tcd_json("load --hook tc --force --miss-action drop");
    EXPECT_EQ(r["changed"], true) << r.dump();
    json after = p.tcd_json("status");
    EXPECT_NE(after["dispatcher"]["prog_id"], first["dispatcher"]["prog_id"]);
    ASSERT_EQ(after["attached"].size(), 1u) << after.dump();
    EXPECT_EQ(after["attached"][0]["direction"], "ingress");
    std::string filters = sh("tc -n " + p.b() + " filter show dev vb ingress").out;
    EXPECT_NE(filters.find("id " + std::to_string(after["dispatcher"]["prog_id"].get<uint32_t>())),
              std::string::npos)
        << filters;
    EXPECT_TRUE(p.ping(1));  // icmp still wired
    for (const auto& name : tcd::bpffs::list_pins(p.dir())) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
}

TEST(Core, HandlerListFields) {
    PAIR(p);
    ASSERT_EQ(p.tcd("load").rc, 0);
    std::string objdir = TCD_BPF_OBJ_DIR;
    ASSERT_EQ(p.tcd("handler load " + objdir + "/ports.bpf.o").rc, 0);
    ASSERT_EQ(p.tcd("map set tcp tcp_ports").rc, 0);
    ASSERT_EQ(p.tcd("map set 253 port8080").rc, 0);
    ASSERT_EQ(p.tcd("map set 250 port8080").rc, 0);
    ASSERT_EQ(p.tcd("map set udp drop").rc, 0);
    json hs = p.tcd_json("handler list");
    ASSERT_TRUE(hs.is_array()) << hs.dump();
    time_t now = time(nullptr);
    std::map<std::string, json> by_name;
    for (const auto& h : hs) by_name[h["name"].get<std::string>()] = h;
    const std::map<std::string, std::vector<int>> want_keys = {
        {"tcp_ports", {6}}, {"port8080", {250, 253}}, {"port22", {}}, {"drop", {17}}, {"pass", {}}};
    for (const auto& [name, keys] : want_keys) {
        SCOPED_TRACE(name);
        ASSERT_TRUE(by_name.count(name)) << hs.dump();
        const json& h = by_name[name];
        EXPECT_EQ(h["type"], "xdp");
        EXPECT_EQ(h["builtin"], name == "drop" || name == "pass");
        EXPECT_EQ(h["keys"].get<std::vector<int>>(), keys);
        // id and tag are the kernel's, as bpftool reads them from the pin.
        Cmd b = sh("bpftool -j prog show pinned " + p.dir() + "/" + name);
        ASSERT_EQ(b.rc, 0) << b.err;
        json bj = json::parse(b.out, nullptr, false);
        EXPECT_EQ(h["prog_id"], bj["id"]);
        EXPECT_EQ(h["tag"], bj["tag"]);
        EXPECT_EQ(h["tag"].get<std::string>().size(), 16u);
        // loaded_at: UTC, ISO 8601, a moment ago.
        struct tm tm {};
        std::string at = h["loaded_at"];
        ASSERT_NE(strptime(at.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr) << at;
        time_t t = timegm(&tm);
        EXPECT_LE(t, now + 2) << at;
        EXPECT_GE(t, now - 120) << at;
    }
}

// The XDP program id on dev in namespace ns, 0 when none.
uint32_t xdp_id(const std::string& ns, const std::string& dev) {
    json j = json::parse(sh("ip -j -n " + ns + " link show " + dev).out, nullptr, false);
    if (!j.is_array() || j.empty() || !j[0].contains("xdp")) return 0;
    return j[0]["xdp"].value("prog", json::object()).value("id", 0u);
}

uint32_t pinned_id(const std::string& pin) {
    json j = json::parse(sh("bpftool -j prog show pinned " + pin).out, nullptr, false);
    return j.is_object() ? j.value("id", 0u) : 0;
}

// The dispatcher that runs on the instance's interface: slot 0 of its
// maps/mp_entry behind tcd's entry shim (inside libxdp's dispatcher in XDP
// multiprog mode, or the shim alone at the hook), else the program at the
// hook.
uint32_t running_id(const std::string& dir, const std::string& ns, const std::string& dev) {
    uint32_t at_hook = xdp_id(ns, dev);
    int fd = bpf_obj_get((dir + "/maps/mp_entry").c_str());
    if (fd < 0) return at_hook;
    uint32_t k = 0, id = 0;
    int r = bpf_map_lookup_elem(fd, &k, &id);
    close(fd);
    json j = json::parse(sh("bpftool -j prog show id " + std::to_string(at_hook)).out, nullptr, false);
    bool entry = at_hook && j.is_object() &&
                 (j.value("name", "") == "xdp_dispatcher" || j.value("name", "") == "tcd_entry");
    return entry && r == 0 ? id : at_hook;
}

TEST(Core, KilledReloadBetweenSwapAndRenameIsAdopted) {
    PAIR(p);
    const std::string staged = p.dir() + "/xdp_dispatch~tmp-next";
    int gaps = 0;
    for (const char* next : {"load --force --miss-action drop", "unload"}) {
        for (int n = 1; n < 40; n++) {
            ASSERT_EQ(p.tcd("-q attach vb --netns " + p.b()).rc, 0);
            ASSERT_EQ(p.tcd("-q map set tcp tcp_handler").rc, 0);
            Cmd c = sh("TCD_CRASHPOINT=load:" + std::to_string(n) + " " + TCD_BIN + " -d " + p.dir() +
                       " load --force --miss-action drop");
            if (c.rc == 0) break;  // past the last step
            uint32_t running = running_id(p.dir(), p.b(), "vb");
            bool gap = tcd::bpffs::exists(staged) && running != 0 && running == pinned_id(staged);
            if (gap) {
                gaps++;
                SCOPED_TRACE(std::string(next) + " after a kill at load step " + std::to_string(n));
                Cmd r = p.tcd(next);
                EXPECT_EQ(r.rc, 0) << r.err;
                EXPECT_FALSE(tcd::bpffs::exists(staged));
                if (std::string(next) == "unload") {
                    EXPECT_EQ(xdp_id(p.b(), "vb"), 0u);  // the staged dispatcher was found and detached
                    EXPECT_FALSE(tcd::bpffs::exists(p.dir()));
                } else {
                    json st = p.tcd_json("status");
                    EXPECT_EQ(st["dispatcher"]["miss_action"], "drop");
                    ASSERT_EQ(st["attached"].size(), 1u) << st.dump();
                    EXPECT_TRUE(st["problems"].empty()) << st.dump();
                    EXPECT_EQ(running_id(p.dir(), p.b(), "vb"), st["dispatcher"]["prog_id"].get<uint32_t>());
                    EXPECT_EQ(st["wired"].size(), 1u);
                }
            }
            sh(std::string(TCD_BIN) + " -q -d " + p.dir() + " unload; ip -n " + p.b() + " link set vb xdp off");
        }
    }
    EXPECT_EQ(gaps, 2) << "the kill between swap and rename was not reached";
}

TEST(Core, JsonWithANameThatIsNotUtf8) {
    TCD_REQUIRE_KERNEL();
    // A pin dir whose name is not UTF-8: -j output replaces the bytes
    // (U+FFFD) instead of aborting on nlohmann's type_error 316.
    std::string dir = "/sys/fs/bpf/tcdk" + std::to_string(getpid()) + "\xff\xfe";
    tcdtest::LockFiles locks{dir};
    std::string q = "'" + dir + "'";
    sh(std::string(TCD_BIN) + " -q -d " + q + " unload");
    Cmd load = sh(std::string(TCD_BIN) + " -j -d " + q + " load");
    EXPECT_EQ(load.rc, 0) << load.err;
    EXPECT_EQ(load.err, "");
    EXPECT_TRUE(json::accept(load.out)) << load.out;
    EXPECT_NE(load.out.find("\xef\xbf\xbd\xef\xbf\xbd"), std::string::npos) << load.out;
    for (const char* args : {"status", "stats", "map list", "handler list", "unload"}) {
        Cmd c = sh(std::string(TCD_BIN) + " -j -d " + q + " " + args);
        EXPECT_EQ(c.rc, 0) << args << ": " << c.err;
        EXPECT_TRUE(json::accept(c.out)) << args << ": " << c.out;
    }
    EXPECT_FALSE(tcd::bpffs::exists(dir));
}

TEST(Core, StatsWatchPlainTable) {
    PAIR(p);
    ASSERT_EQ(p.tcd("attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd("map set icmp pass").rc, 0);
    ASSERT_TRUE(p.ping(2));
    Cmd w = p.tcd("stats --watch --count 2 --interval 0.2");
    ASSERT_EQ(w.rc, 0) << w.err;
    EXPECT_EQ(w.err, "");
    auto ls = lines(w.out);
    std::vector<size_t> headers;
    for (size_t i = 0; i < ls.size(); i++)
        if (ls[i].rfind("tcd stats  " + p.dir(), 0) == 0) headers.push_back(i);
    ASSERT_EQ(headers.size(), 2u) << w.out;  // one table per reading
    for (size_t h : headers) {
        ASSERT_LT(h + 1, ls.size());
        EXPECT_NE(ls[h].find("every 0.2s"), std::string::npos) << ls[h];
        EXPECT_EQ(words(ls[h + 1]),
                  (std::vector<std::string>{"KEY", "PROTO", "HANDLER", "PACKETS", "BYTES", "PPS", "BIT/S", "MISSED"}))
            << ls[h + 1];
        // Rows, then non-ip, malformed and total, in that order.
        size_t i = h + 2;
        bool icmp = false;
        for (; i < ls.size() && words(ls[i]).size() == 8; i++) {
            auto w8 = words(ls[i]);
            if (w8[0] == "1") {
                icmp = true;
                EXPECT_EQ(w8[1], "icmp");
                EXPECT_EQ(w8[2], "pass");
                EXPECT_GE(std::stoull(w8[3]), 2u);
                EXPECT_EQ(w8[7], "0");
            }
        }
        EXPECT_TRUE(icmp) << w.out;
        ASSERT_LT(i + 2, ls.size()) << w.out;
        EXPECT_EQ(words(ls[i])[0], "non-ip");
        EXPECT_EQ(words(ls[i + 1])[0], "malformed");
        EXPECT_EQ(words(ls[i + 2])[0], "total");
        EXPECT_EQ(words(ls[i + 2]).size(), 3u);
    }
}

TEST(Core, StatsResetZeroesCounters) {
    PAIR(p);
    ASSERT_EQ(p.tcd("attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd("map set icmp pass").rc, 0);
    ASSERT_TRUE(p.ping(3));
    ASSERT_EQ(p.tcd("map del icmp").rc, 0);
    EXPECT_TRUE(p.ping(1));  // unwired: counted as missed, passed
    json before = p.tcd_json("stats --reset");  // prints, then zeroes
    const json* row = key_row(before, 1);
    ASSERT_NE(row, nullptr) << before.dump();
    EXPECT_GE((*row)["packets"].get<uint64_t>(), 4u);
    EXPECT_GE((*row)["missed"].get<uint64_t>(), 1u);
    EXPECT_GT(before["total"]["packets"].get<uint64_t>(), 0u);
    json after = p.tcd_json("stats --all");
    for (const auto& k : after["keys"]) {
        EXPECT_EQ(k["packets"], 0) << k.dump();
        EXPECT_EQ(k["bytes"], 0) << k.dump();
        EXPECT_EQ(k["missed"], 0) << k.dump();
    }
    EXPECT_EQ(after["non_ip"]["packets"], 0);
    EXPECT_EQ(after["malformed"]["packets"], 0);
    EXPECT_EQ(after["total"]["packets"], 0);
    EXPECT_EQ(after["total"]["bytes"], 0);
    // Counting goes on from zero.
    ASSERT_TRUE(p.ping(2));
    json again = p.tcd_json("stats");
    ASSERT_NE(key_row(again, 1), nullptr);
    EXPECT_GE((*key_row(again, 1))["packets"].get<uint64_t>(), 2u);
}

TEST(Core, DetachAll) {
    PAIR(p);
    ASSERT_EQ(p.tcd("attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd("attach vc --netns " + p.b() + " --mode skb").rc, 0);
    ASSERT_EQ(p.tcd("attach vd --netns " + p.b() + " --mode skb").rc, 0);
    ASSERT_EQ(p.tcd_json("status")["attached"].size(), 3u);
    json d = p.tcd_json("detach --all");
    ASSERT_TRUE(d.is_array()) << d.dump();
    EXPECT_EQ(d.size(), 3u) << d.dump();
    for (const char* dev : {"vb", "vc", "vd"}) EXPECT_EQ(p.link(dev).find("xdp"), std::string::npos) << dev;
    json st = p.tcd_json("status");
    EXPECT_EQ(st["attached"].size(), 0u) << st.dump();
    EXPECT_TRUE(tcd::bpffs::exists(p.dir() + "/xdp_dispatch"));  // still loaded
    // Idempotent.
    Cmd again = p.tcd("detach --all");
    EXPECT_EQ(again.rc, 0) << again.err;
}

}  // namespace
