// Two network namespaces joined by a veth pair, and two pin dirs, for the
// end-to-end tests of tc instances (kinds_e2e_test, tcx_e2e_test). They are
// the test's own and go away in the destructor, also when an assertion fails.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/bpffs.h"
#include "tests/common/kernel.h"
#include "tests/common/shell.h"

namespace tcdtest {

using nlohmann::json;

// Namespaces A and B joined by va (in A) and vb (in B), and two pin dirs.
// Addressed: 10.202.0.1/2 and fd00:202::1/2. Quiet: no addresses, IPv6 off,
// MTU 9000, so nothing but the frames a test injects crosses the link.
class Pair {
public:
    explicit Pair(bool quiet = false) {
        std::string id = std::to_string(getpid());
        a_ = "tcdk" + id + "a";
        b_ = "tcdk" + id + "b";
        dir1_ = "/sys/fs/bpf/tcdk" + id + "_1";
        dir2_ = "/sys/fs/bpf/tcdk" + id + "_2";
        tc_dir_before_ = tcd::bpffs::exists("/sys/fs/bpf/tc");
        cleanup();
        std::string s = "ip netns add " + a_ + " && ip netns add " + b_ + " && ip link add va netns " + a_ +
                        " type veth peer name vb netns " + b_;
        if (quiet) {
            for (const auto& n : {a_, b_})
                s += " && ip netns exec " + n +
                     " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1";
            s += " && ip -n " + a_ + " link set va mtu 9000 && ip -n " + b_ + " link set vb mtu 9000";
        } else {
            s += " && ip -n " + a_ + " addr add 10.202.0.1/24 dev va && ip -n " + b_ +
                 " addr add 10.202.0.2/24 dev vb && ip -n " + a_ + " -6 addr add fd00:202::1/64 dev va nodad" +
                 " && ip -n " + b_ + " -6 addr add fd00:202::2/64 dev vb nodad";
        }
        s += " && ip -n " + a_ + " link set va up && ip -n " + b_ + " link set vb up && ip -n " + a_ +
             " link set lo up && ip -n " + b_ + " link set lo up" + " && ip netns exec " + a_ +
             " ethtool -K va rxvlan off txvlan off >/dev/null 2>&1; ip netns exec " + b_ +
             " ethtool -K vb rxvlan off txvlan off >/dev/null 2>&1; true";
        ok_ = sh(s).rc == 0;
        // Neighbours resolved before a test counts or times anything (the
        // first IPv6 neighbour solicitation after link-up can take a second).
        if (ok_ && !quiet)
            ok_ = sh("for i in 1 2 3 4 5; do " + in_ns(a_, "ping -q -c 1 -W 1 10.202.0.2") + " >/dev/null && " +
                     in_ns(a_, "ping -q -6 -c 1 -W 1 fd00:202::2") + " >/dev/null && exit 0; done; exit 1")
                      .rc == 0;
    }
    ~Pair() {
        cleanup();
        if (!tc_dir_before_) sh("rmdir /sys/fs/bpf/tc/globals /sys/fs/bpf/tc 2>/dev/null && rm -f /sys/fs/bpf/ip; true");
    }
    void cleanup() {
        std::string bin = TCD_BIN;
        sh(bin + " -q -d " + dir1_ + " unload; " + bin + " -q -d " + dir2_ + " unload; ip netns del " + a_ +
           "; ip netns del " + b_ + "; true");
    }
    bool ok() const { return ok_; }
    const std::string& a() const { return a_; }
    const std::string& b() const { return b_; }
    const std::string& dir1() const { return dir1_; }
    const std::string& dir2() const { return dir2_; }

    Cmd tcd(const std::string& dir, const std::string& args) const {
        return sh(std::string(TCD_BIN) + " -d " + dir + " " + args);
    }
    json tcd_json(const std::string& dir, const std::string& args) const {
        Cmd c = tcd(dir, "-j " + args);
        EXPECT_EQ(c.rc, 0) << args << ": " << c.err;
        return json::parse(c.out.empty() ? "null" : c.out);
    }
    std::string in_ns(const std::string& ns, const std::string& cmd) const {
        return "nsenter --net=/run/netns/" + ns + " " + cmd;
    }
    bool clsact_on_vb() const { return sh(in_ns(b_, "tc qdisc show dev vb")).out.find("clsact") != std::string::npos; }

    // UDP datagrams from A to B (to an address of B, port); how many B got.
    int udp(const std::string& to, int port, int count) const {
        std::string peer = TCD_PEER;
        std::string recv = peer + " udp-recv --netns " + b_ + " --port " + std::to_string(port) + " --count " +
                           std::to_string(count) + " --timeout-ms 700";
        FILE* r = popen(recv.c_str(), "r");
        if (!r) return -1;
        char line[128] = {};
        if (!fgets(line, sizeof line, r)) {  // "ready"
            pclose(r);
            return -1;
        }
        sh(peer + " udp-send --netns " + a_ + " --to " + to + " --port " + std::to_string(port) + " --count " +
           std::to_string(count) + " --interval-us 200");
        int received = -1;
        while (fgets(line, sizeof line, r))
            if (std::sscanf(line, "received %d", &received) == 1) break;
        pclose(r);
        return received;
    }
    // A TCP connection from A to B carrying `bytes`.
    bool tcp(const std::string& to, int port, int bytes) const {
        std::string peer = TCD_PEER;
        std::string listen = peer + " tcp-listen --netns " + b_ + " --port " + std::to_string(port) +
                             " --timeout-ms 3000 --bytes " + std::to_string(bytes);
        FILE* l = popen(listen.c_str(), "r");
        if (!l) return false;
        char line[128] = {};
        if (!fgets(line, sizeof line, l)) {
            pclose(l);
            return false;
        }
        Cmd s = sh(peer + " tcp-send --netns " + a_ + " --to " + to + " --port " + std::to_string(port) +
                   " --bytes " + std::to_string(bytes) + " --timeout-ms 3000");
        int rc = pclose(l);
        return s.rc == 0 && rc == 0;
    }

private:
    std::string a_, b_, dir1_, dir2_;
    bool ok_ = false;
    bool tc_dir_before_ = false;
};

#define PAIR(p, ...)                         \
    TCD_REQUIRE_KERNEL();                    \
    Pair p{__VA_ARGS__};                     \
    ASSERT_TRUE(p.ok()) << "could not build the veth pair"

inline const json* key_row(const json& stats, int key) {
    for (const auto& k : stats["keys"])
        if (k["key"] == key) return &k;
    return nullptr;
}

inline uint64_t packets(const json& stats, int key) {
    const json* r = key_row(stats, key);
    return r ? (*r)["packets"].get<uint64_t>() : 0;
}

// Waits until the instance's total reaches `want` packets (veth's NAPI may
// lag a moment); returns the last stats.
inline json stats_when(const Pair& p, const std::string& dir, uint64_t want) {
    json s;
    for (int i = 0; i < 40; i++) {
        s = p.tcd_json(dir, "stats --all");
        if (s.is_object() && s["total"]["packets"].get<uint64_t>() >= want) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return s;
}

// While alive, the tcd commands a test runs attach tc instances through the
// clsact qdisc as on a kernel without tcx (the test knob TCD_TEST_NO_TCX).
class NoTcx {
public:
    NoTcx() { ::setenv("TCD_TEST_NO_TCX", "1", 1); }
    ~NoTcx() { ::unsetenv("TCD_TEST_NO_TCX"); }
    NoTcx(const NoTcx&) = delete;
    NoTcx& operator=(const NoTcx&) = delete;
};

}  // namespace tcdtest
