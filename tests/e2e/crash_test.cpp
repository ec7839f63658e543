// Crash consistency: load, attach and handler load killed with SIGKILL at
// every step. Afterwards status works and tells what is there, the same
// command run again completes, and unload leaves nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/bpffs.h"
#include "tests/common/kernel.h"
#include "tests/common/shell.h"

namespace {

using nlohmann::json;
using tcdtest::sh;

constexpr int kKilled = 128 + 9;

class Crash : public ::testing::Test {
protected:
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        id_ = std::to_string(getpid());
        dir_ = "/sys/fs/bpf/tcdcrash" + id_;
        ns_ = "tcdcr" + id_;
        cleanup();
        ASSERT_EQ(sh("ip netns add " + ns_ + " && ip -n " + ns_ + " link add ca type veth peer name cb && ip -n " +
                     ns_ + " link set ca up && ip -n " + ns_ + " link set cb up")
                      .rc,
                  0);
    }
    void TearDown() override { cleanup(); }
    void cleanup() { sh(tcd("-q unload") + "; ip netns del " + ns_ + " 2>/dev/null; true"); }
    std::string tcd(const std::string& args) const { return std::string(TCD_BIN) + " -d " + dir_ + " " + args; }
    std::string crash(const std::string& op, int n, const std::string& args) const {
        return "TCD_CRASHPOINT=" + op + ":" + std::to_string(n) + " " + tcd(args);
    }
    json status() const {
        auto c = sh(tcd("-j status"));
        EXPECT_EQ(c.rc, 0) << c.err;
        return json::parse(c.out.empty() ? "{}" : c.out);
    }
    bool xdp_on_cb() const {
        return sh("nsenter --net=/run/netns/" + ns_ + " ip link show cb").out.find("prog/xdp") != std::string::npos;
    }
    std::string id_, dir_, ns_;
};

TEST_F(Crash, LoadKilledAtEveryStep) {
    int steps = 0;
    for (int n = 1; n < 40; n++) {
        auto c = sh(crash("load", n, "load"));
        if (c.rc != kKilled) {  // past the last step: it simply ran
            EXPECT_EQ(c.rc, 0) << c.err;
            break;
        }
        steps++;
        json st = status();  // works, and says what there is
        if (!st.value("loaded", false) && tcd::bpffs::exists(dir_))
            EXPECT_FALSE(st["problems"].empty()) << "half-made state not reported at step " << n;
        auto again = sh(tcd("load"));
        EXPECT_EQ(again.rc, 0) << "step " << n << ": " << again.err;
        json done = status();
        EXPECT_TRUE(done.value("loaded", false)) << "step " << n;
        EXPECT_TRUE(done["problems"].empty()) << done.dump();
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(tcd::bpffs::exists(dir_)) << "step " << n;
    }
    EXPECT_GE(steps, 8);
    std::printf("load killed at each of its %d steps\n", steps);
    // Also the pin steps inside (between pinning a temporary name and renaming it).
    for (int n = 1; n < 20; n++) {
        auto c = sh(crash("pin", n, "load"));
        if (c.rc != kKilled) break;
        status();
        EXPECT_EQ(sh(tcd("load")).rc, 0) << "pin step " << n;
        EXPECT_TRUE(status()["problems"].empty());
        for (const auto& name : tcd::bpffs::list_pins(dir_)) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(tcd::bpffs::exists(dir_));
    }
}

TEST_F(Crash, AttachKilledAtEveryStep) {
    int steps = 0;
    for (int n = 1; n < 20; n++) {
        auto c = sh(crash("attach", n, "attach cb --netns " + ns_));
        if (c.rc != kKilled) {
            EXPECT_EQ(c.rc, 0) << c.err;
            break;
        }
        steps++;
        status();
        auto again = sh(tcd("attach cb --netns " + ns_));
        EXPECT_EQ(again.rc, 0) << "step " << n << ": " << again.err;
        EXPECT_TRUE(xdp_on_cb()) << "step " << n;
        EXPECT_EQ(status()["attached"].size(), 1u) << "step " << n;
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(xdp_on_cb()) << "step " << n;  // unload found it, recorded or not
        EXPECT_FALSE(tcd::bpffs::exists(dir_));
    }
    EXPECT_GE(steps, 3);
}

TEST_F(Crash, HandlerLoadKilledAtEveryStep) {
    std::string obj = std::string(TCD_BPF_OBJ_DIR) + "/ports.bpf.o";
    int steps = 0;
    for (int n = 1; n < 20; n++) {
        ASSERT_EQ(sh(tcd("-q load")).rc, 0);
        auto c = sh(crash("handler", n, "handler load " + obj));
        if (c.rc != kKilled) {
            EXPECT_EQ(c.rc, 0) << c.err;
            sh(tcd("-q unload"));
            break;
        }
        steps++;
        // Each handler is there whole or not at all; loading the rest completes the set.
        json hs = json::parse(sh(tcd("-j handler list")).out);
        std::string rest;
        for (const char* name : {"tcp_ports", "port8080", "port22"}) {
            bool there = false;
            for (const auto& h : hs) there |= h["name"] == name;
            if (!there) rest += std::string(" --prog ") + name;
        }
        if (!rest.empty()) EXPECT_EQ(sh(tcd("handler load " + obj + rest)).rc, 0) << "step " << n;
        EXPECT_EQ(json::parse(sh(tcd("-j handler list")).out).size(), 7u) << "step " << n;
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(tcd::bpffs::exists(dir_));
    }
    EXPECT_GE(steps, 3);
}

}  // namespace
