// A command costs what it touches (docs/datapath.md, "Instance trees"): the
// bpf() system calls of the per-instance commands are counted (strace -c),
// alone and again with 20 unrelated instances on bpffs (half of them port
// instances with 65,536-key jump tables, wired into trees of their own). The
// count must not grow. It counts, it does not time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/kernel.h"
#include "tests/common/pin_dirs.h"
#include "tests/common/shell.h"

namespace {

using tcdtest::Cmd;
using tcdtest::sh;

struct Dirs : tcdtest::PinDirs {
    Dirs() : PinDirs("tcdcost") {}
};

Cmd tcd(const std::string& dir, const std::string& args) { return sh(std::string(TCD_BIN) + " -q -d " + dir + " " + args); }

// One IPv4 UDP frame to port 53.
const char* kFrame = "02000000000102000000000208004500001c00000000401100000a0000010a0000021234003500080000";

// bpf() calls of one tcd command (which must succeed); -1 when strace failed.
long bpf_calls(const std::string& dir, const std::string& args) {
    const std::string out = "/tmp/tcdcost" + std::to_string(getpid()) + ".strace";
    Cmd c = sh("strace -f -qq -c -e trace=bpf -o " + out + " " + std::string(TCD_BIN) + " -q -d " + dir + " " +
               args);
    EXPECT_EQ(c.rc, 0) << args << ": " << c.err;
    std::ifstream f(out);
    if (!f) return -1;
    long calls = 0;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream in(line);
        std::vector<std::string> tok;
        for (std::string t; in >> t;) tok.push_back(t);
        // % time, seconds, usecs/call, calls, [errors,] syscall
        if (tok.size() >= 5 && tok.back() == "bpf") calls = std::stol(tok[3]);
    }
    unlink(out.c_str());
    return calls;
}

// The commands on one proto instance, from load to unload: name -> bpf() calls.
std::map<std::string, long> one_round(const std::string& dir, const std::string& load) {
    std::map<std::string, long> n;
    EXPECT_EQ(tcd(dir, load).rc, 0);
    EXPECT_EQ(tcd(dir, "map set tcp pass").rc, 0);
    n["map set (new key)"] = bpf_calls(dir, "map set udp pass");
    n["map set (rewire)"] = bpf_calls(dir, "map set udp drop");
    n["map del"] = bpf_calls(dir, "map del udp");
    n["status"] = bpf_calls(dir, "status");
    n["stats"] = bpf_calls(dir, "stats");
    n["map list"] = bpf_calls(dir, "map list");
    n["trace"] = bpf_calls(dir, std::string("trace --hex ") + kFrame);
    n["unload"] = bpf_calls(dir, "unload");
    return n;
}

bool have_strace() { return sh("command -v strace").rc == 0; }

void expect_same_cost(const std::string& dir, const std::string& load, const std::string& what) {
    Dirs others;
    auto alone = one_round(dir, load);
    // 20 unrelated instances: 10 proto, each wiring tcp to one of 10 port
    // instances that wire a port of their own.
    for (int i = 0; i < 10; i++) {
        std::string proto = others.add("p" + std::to_string(i)), port = others.add("w" + std::to_string(i));
        ASSERT_EQ(tcd(port, "load --key port").rc, 0);
        ASSERT_EQ(tcd(port, "map set http pass").rc, 0);
        ASSERT_EQ(tcd(proto, "load").rc, 0);
        ASSERT_EQ(tcd(proto, "map set tcp " + port).rc, 0);
    }
    auto busy = one_round(dir, load);
    for (const auto& [cmd, calls] : alone) {
        EXPECT_GT(calls, 0) << what << " " << cmd << ": no bpf() call counted";
        EXPECT_LE(busy[cmd], calls) << what << " " << cmd << ": " << calls << " bpf() calls alone, " << busy[cmd]
                                    << " with 20 unrelated instances";
    }
}

TEST(Cost, CommandsDoNotReadUnrelatedInstances) {
    TCD_REQUIRE_KERNEL();
    if (!have_strace()) {
        if (tcdtest::in_ci()) FAIL() << "strace is missing (scripts/packages.txt)";
        GTEST_SKIP() << "strace is missing";
    }
    Dirs d;
    expect_same_cost(d.add("me"), "load", "proto instance:");
}

// The same on an instance in a tree of its own: a child port instance is
// linked (read), the 20 others are not.
TEST(Cost, CommandsOnATreeDoNotReadUnrelatedInstances) {
    TCD_REQUIRE_KERNEL();
    if (!have_strace()) {
        if (tcdtest::in_ci()) FAIL() << "strace is missing (scripts/packages.txt)";
        GTEST_SKIP() << "strace is missing";
    }
    Dirs d;
    std::string me = d.add("me"), parent = d.add("parent");
    // The instance under test is a port child of a proto parent.
    auto round = [&] {
        std::map<std::string, long> n;
        EXPECT_EQ(tcd(me, "load --key port").rc, 0);
        EXPECT_EQ(tcd(parent, "load").rc, 0);
        EXPECT_EQ(tcd(parent, "map set tcp " + me).rc, 0);
        n["map set (new key)"] = bpf_calls(me, "map set http pass");
        n["map set (rewire)"] = bpf_calls(me, "map set http drop");
        n["map del"] = bpf_calls(me, "map del http");
        n["status"] = bpf_calls(me, "status");
        n["stats"] = bpf_calls(me, "stats");
        n["map list"] = bpf_calls(me, "map list");
        n["parent trace"] = bpf_calls(parent, std::string("trace --hex ") + kFrame);
        n["unload --force"] = bpf_calls(me, "unload --force");
        EXPECT_EQ(tcd(parent, "unload").rc, 0);
        return n;
    };
    Dirs others;
    auto alone = round();
    for (int i = 0; i < 10; i++) {
        std::string proto = others.add("p" + std::to_string(i)), port = others.add("w" + std::to_string(i));
        ASSERT_EQ(tcd(port, "load --key port").rc, 0);
        ASSERT_EQ(tcd(proto, "load").rc, 0);
        ASSERT_EQ(tcd(proto, "map set udp " + port).rc, 0);
    }
    auto busy = round();
    for (const auto& [cmd, calls] : alone) {
        EXPECT_GT(calls, 0) << cmd;
        EXPECT_LE(busy[cmd], calls) << cmd << ": " << calls << " bpf() calls alone, " << busy[cmd]
                                    << " with 20 unrelated instances";
    }
}

// A port instance's status, map list and stats read the entries of the ports
// that have a counter slot (every port tcd wired), not all 65,536; --scan
// reads them all. Same output for tcd's wiring either way.
TEST(Cost, PortCommandsReadOnlyTheSlottedPorts) {
    TCD_REQUIRE_KERNEL();
    if (!have_strace()) {
        if (tcdtest::in_ci()) FAIL() << "strace is missing (scripts/packages.txt)";
        GTEST_SKIP() << "strace is missing";
    }
    Dirs d;
    std::string me = d.add("port");
    ASSERT_EQ(tcd(me, "load --key port").rc, 0);
    ASSERT_EQ(tcd(me, "map set http pass 22 drop 9999 pass").rc, 0);
    for (const char* cmd : {"status", "map list", "stats"}) {
        long n = bpf_calls(me, cmd);
        EXPECT_GT(n, 0) << cmd;
        EXPECT_LT(n, 4096) << cmd << ": reads the jump table whole";
    }
    EXPECT_GE(bpf_calls(me, "map list --scan"), 65536) << "--scan reads every entry";
    Cmd plain = sh(std::string(TCD_BIN) + " -j -d " + me + " map list");
    Cmd scan = sh(std::string(TCD_BIN) + " -j -d " + me + " map list --scan");
    ASSERT_EQ(plain.rc, 0) << plain.err;
    EXPECT_NE(plain.out.find("9999"), std::string::npos) << plain.out;
    EXPECT_EQ(plain.out, scan.out);
    Cmd st = sh(std::string(TCD_BIN) + " -j -d " + me + " status");
    Cmd st_scan = sh(std::string(TCD_BIN) + " -j -d " + me + " status --scan");
    ASSERT_EQ(st.rc, 0) << st.err;
    EXPECT_EQ(st.out, st_scan.out);
    EXPECT_EQ(tcd(me, "unload").rc, 0);
}

// An instance an older tcd loaded has no slot index (maps/slot_port): its
// commands read maps/port_slot whole and say the same, and load --force makes
// the index from port_slot.
// Finding where an XDP instance runs without an attach record (attached by
// hand with ip or bpftool) asks the kernel about the interfaces of tcd's own
// namespace: one link dump names those with an XDP program, and only those
// are asked (bpf_xdp_query dumps every interface each time it is asked).
// The netlink requests of status, run in a namespace of the test's own,
// must not grow with 8 more interfaces there, and a dispatcher attached by
// hand to one of them is still found.
TEST(Cost, XdpStatusDoesNotAskEveryInterface) {
    TCD_REQUIRE_KERNEL();
    if (!have_strace()) GTEST_SKIP() << "strace is missing";
    if (sh("command -v nsenter").rc != 0) GTEST_SKIP() << "nsenter is missing";
    Dirs dirs;
    const std::string me = dirs.add("ifs");
    const std::string ns = "tcdcostif" + std::to_string(getpid()), in_ns = "nsenter --net=/run/netns/" + ns + " ";
    struct Netns {
        std::string name;
        ~Netns() { sh("ip netns del " + name + " 2>/dev/null"); }
    } guard{ns};
    sh("ip netns del " + ns + " 2>/dev/null");
    ASSERT_EQ(sh("ip netns add " + ns).rc, 0);
    ASSERT_EQ(tcd(me, "load").rc, 0);
    auto requests = [&] {
        const std::string out = "/tmp/tcdcostif" + std::to_string(getpid()) + ".strace";
        Cmd c = sh(in_ns + "strace -f -qq -e trace=sendto,sendmsg -o " + out + " " + std::string(TCD_BIN) + " -q -d " +
                   me + " status");
        EXPECT_EQ(c.rc, 0) << c.err;
        std::ifstream f(out);
        long n = 0;
        // strace names the type only where it can tell the socket's netlink
        // family (not in the qemu guests): RTM_GETLINK is type 0x12 there.
        for (std::string line; std::getline(f, line);)
            n += line.find("RTM_GETLINK") != std::string::npos || line.find("nlmsg_type=0x12 ") != std::string::npos;
        unlink(out.c_str());
        return n;
    };
    const long few = requests();
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(sh("ip -n " + ns + " link add ci" + std::to_string(i) + " type veth peer name cj" + std::to_string(i)).rc, 0);
    const long many = requests();
    EXPECT_GT(few, 0);
    EXPECT_EQ(many, few) << "8 more interfaces, " << many - few << " more link dumps";
    // Attached by hand (no record): still found, and unload takes it off.
    ASSERT_EQ(sh("ip -n " + ns + " link set ci2 up").rc, 0);
    ASSERT_EQ(sh(in_ns + "ip link set dev ci2 xdpgeneric pinned " + me + "/xdp_dispatch").rc, 0);
    Cmd st = sh(in_ns + std::string(TCD_BIN) + " -j -d " + me + " status");
    EXPECT_EQ(st.rc, 0) << st.err;
    EXPECT_NE(st.out.find("\"ci2\""), std::string::npos) << st.out;
    EXPECT_EQ(sh(in_ns + std::string(TCD_BIN) + " -q -d " + me + " unload").rc, 0);
    EXPECT_EQ(sh("ip -n " + ns + " link show ci2 | grep -c xdp").out, "0\n");
}

TEST(Cost, PortInstanceWithoutTheSlotIndex) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string me = d.add("old");
    ASSERT_EQ(tcd(me, "load --key port").rc, 0);
    ASSERT_EQ(tcd(me, "map set http pass 22 drop").rc, 0);
    // key=handler/slot of each wired port (load --force gives the built-ins
    // new program ids).
    auto list = [&] {
        Cmd c = sh(std::string(TCD_BIN) + " -j -d " + me + " map list");
        EXPECT_EQ(c.rc, 0) << c.err;
        std::string out;
        for (size_t at = 0; (at = c.out.find("\"key\":", at)) != std::string::npos; at++) {
            auto field = [&](const std::string& name) {
                size_t f = c.out.find("\"" + name + "\":", at) + name.size() + 3;
                return c.out.substr(f, c.out.find_first_of(",}", f) - f);
            };
            out += field("key") + "=" + field("handler") + "/" + field("slot") + " ";
        }
        return out;
    };
    const std::string before = list();
    ASSERT_EQ(sh("rm " + me + "/maps/slot_port").rc, 0);  // as an older tcd left it
    EXPECT_EQ(list(), before);
    ASSERT_EQ(tcd(me, "map set 9999 pass").rc, 0);  // a new port gets a free slot
    ASSERT_EQ(tcd(me, "map del 9999").rc, 0);
    EXPECT_EQ(list(), before);
    Cmd st = sh(std::string(TCD_BIN) + " -j -d " + me + " status");
    EXPECT_EQ(st.rc, 0) << st.err;
    ASSERT_EQ(tcd(me, "load --key port --force").rc, 0);
    EXPECT_EQ(sh("test -e " + me + "/maps/slot_port").rc, 0) << "load --force makes the index";
    EXPECT_EQ(list(), before);
    // The index holds the slots port_slot had: a new port takes another.
    ASSERT_EQ(tcd(me, "map set 9999 pass").rc, 0);
    Cmd l = sh(std::string(TCD_BIN) + " -j -d " + me + " map list");
    std::set<std::string> slots;
    for (size_t at = 0; (at = l.out.find("\"slot\":", at)) != std::string::npos; at += 7)
        slots.insert(l.out.substr(at + 7, l.out.find_first_of(",}", at) - at - 7));
    EXPECT_EQ(slots.size(), 3u) << l.out;
    EXPECT_EQ(tcd(me, "unload").rc, 0);
}

}  // namespace
