// `tcd trace` as people run it: the JSON shape of the CLI contract on a
// loaded instance and without one, pcap and pcapng read alike, other link
// types refused, live counters untouched, and memory that does not grow
// with the file (the frames stream through).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/probe.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/pin_dirs.h"
#include "tests/common/shell.h"

namespace {

using json = nlohmann::json;
using tcdtest::Cmd;
using tcdtest::sh;
using Bytes = std::vector<uint8_t>;

Bytes ipv4_tcp() {
    Bytes f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0,
               10, 0, 0, 1, 10, 0, 0, 2};
    Bytes tcp = {0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0};
    f.insert(f.end(), tcp.begin(), tcp.end());
    return f;
}

Bytes arp() {
    Bytes f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
    f.resize(42, 0);
    return f;
}

Bytes cut_ipv4() {  // IPv4 EtherType, 10 bytes of a 20-byte header
    Bytes f = ipv4_tcp();
    f.resize(24);
    return f;
}

// Before 5.14 an XDP test run takes no context, so the handlers get no hop
// record: trace shows no tcd_next hops there, and says so once (the frames
// and their verdicts are traced as anywhere else).
bool xdp_hops_shown() {
    auto r = tcd::probe::has(tcd::probe::Feature::xdp_test_run_ctx);
    return !r || *r;
}
const std::string kNoHopsNote =
    "tcd_next hops are not shown: this kernel lacks XDP test runs with a context (struct xdp_md in "
    "BPF_PROG_TEST_RUN) (Linux 5.14 brings it)";

std::string hex(const Bytes& f) {
    std::string h;
    char b[4];
    for (uint8_t x : f) {
        std::snprintf(b, sizeof b, "%02x", x);
        h += b;
    }
    return h;
}

void put32(std::ofstream& o, uint32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); }
void put16(std::ofstream& o, uint16_t v) { o.write(reinterpret_cast<const char*>(&v), 2); }

// Classic pcap, microsecond timestamps, host byte order.
void write_pcap(const std::string& path, const std::vector<Bytes>& frames, uint32_t linktype = 1, size_t times = 1) {
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    put32(o, 0xa1b2c3d4);
    put16(o, 2);
    put16(o, 4);
    put32(o, 0);
    put32(o, 0);
    put32(o, 65535);
    put32(o, linktype);
    for (size_t t = 0; t < times; t++)
        for (auto& f : frames) {
            put32(o, 1700000000);
            put32(o, uint32_t(t % 1000000));
            put32(o, uint32_t(f.size()));
            put32(o, uint32_t(f.size()));
            o.write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
        }
}

// pcapng: a section header, one Ethernet interface, enhanced packet blocks.
void write_pcapng(const std::string& path, const std::vector<Bytes>& frames) {
    std::ofstream o(path, std::ios::binary | std::ios::trunc);
    put32(o, 0x0a0d0d0a);
    put32(o, 28);
    put32(o, 0x1a2b3c4d);
    put16(o, 1);
    put16(o, 0);
    put32(o, 0xffffffff);
    put32(o, 0xffffffff);
    put32(o, 28);
    put32(o, 1);  // interface description
    put32(o, 20);
    put16(o, 1);  // LINKTYPE_ETHERNET
    put16(o, 0);
    put32(o, 65535);
    put32(o, 20);
    for (auto& f : frames) {
        uint32_t padded = uint32_t((f.size() + 3) & ~size_t(3));
        uint32_t len = 32 + padded;
        put32(o, 6);
        put32(o, len);
        put32(o, 0);  // interface 0
        put32(o, 0);
        put32(o, 0);
        put32(o, uint32_t(f.size()));
        put32(o, uint32_t(f.size()));
        o.write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
        for (uint32_t i = uint32_t(f.size()); i < padded; i++) o.put(0);
        put32(o, len);
    }
}

// Runs argv, output to /dev/null; returns the child's exit status and its
// peak resident set in KiB.
std::pair<int, long> run_rss(const std::vector<std::string>& argv) {
    pid_t pid = fork();
    if (pid == 0) {
        FILE* null = std::fopen("/dev/null", "w");
        dup2(fileno(null), 1);
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execv(a[0], a.data());
        _exit(127);
    }
    int st = 0;
    struct rusage ru {};
    wait4(pid, &st, 0, &ru);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ru.ru_maxrss};
}

class TraceCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = "/sys/fs/bpf/" + tcdtest::unique_name("tcdtrace");
        base_ = "/tmp/tcd_trace_" + std::to_string(getpid());
        tcd_ = std::string(TCD_BIN) + " -d " + dir_;
        sh(tcd_ + " -q unload");
    }
    void TearDown() override {
        sh(tcd_ + " -q unload");
        tcdtest::remove_lock_file(dir_);
        sh("rm -f " + base_ + "*");
    }
    std::string dir_, base_, tcd_;
};

TEST_F(TraceCli, JsonShapeOnALoadedInstanceLeavesLiveCountersAlone) {
    TCD_REQUIRE_KERNEL();
    ASSERT_EQ(sh(tcd_ + " -q load").rc, 0);
    ASSERT_EQ(sh(tcd_ + " -q map set tcp tcp_handler").rc, 0);
    std::string pcap = base_ + ".pcap";
    write_pcap(pcap, {ipv4_tcp(), arp(), cut_ipv4(), ipv4_tcp()});
    Cmd c = sh(tcd_ + " -j trace --pcap " + pcap);
    ASSERT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.err, "");
    json j = json::parse(c.out);
    ASSERT_EQ(j["frames"].size(), 4u);
    json f1 = j["frames"][0];
    EXPECT_EQ(f1["frame"], 1);
    EXPECT_EQ(f1["len"], 54);
    EXPECT_EQ(f1["class"], "ipv4");
    EXPECT_EQ(f1["key"], 6);
    EXPECT_EQ(f1["handler"], "tcp_handler");
    EXPECT_EQ(f1["verdict"], "XDP_PASS");
    EXPECT_EQ(j["frames"][1]["class"], "non-ip");
    EXPECT_TRUE(j["frames"][1]["key"].is_null());
    EXPECT_EQ(j["frames"][2]["class"], "malformed");
    EXPECT_TRUE(j["frames"][2]["key"].is_null());
    EXPECT_EQ(j["frames"][3]["frame"], 4);
    ASSERT_TRUE(j.contains("summary"));

    // Nothing of that reached the live counters.
    json st = json::parse(sh(tcd_ + " -j stats").out);
    EXPECT_EQ(st["total"]["packets"], 0);

    // The plain table names the same things, one line a frame plus a summary.
    Cmd p = sh(tcd_ + " trace --pcap " + pcap);
    ASSERT_EQ(p.rc, 0) << p.err;
    EXPECT_NE(p.out.find("tcp_handler"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("non-ip"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("malformed"), std::string::npos) << p.out;
}

TEST_F(TraceCli, WithoutAnInstanceEveryKeyMisses) {
    TCD_REQUIRE_KERNEL();
    Cmd c = sh(tcd_ + " -j trace --hex " + hex(ipv4_tcp()));
    ASSERT_EQ(c.rc, 0) << c.err;
    json f = json::parse(c.out)["frames"][0];
    EXPECT_EQ(f["class"], "ipv4");
    EXPECT_EQ(f["key"], 6);
    EXPECT_TRUE(f["handler"].is_null());
    EXPECT_EQ(f["verdict"], "XDP_PASS");
    EXPECT_FALSE(tcd::bpffs::exists(dir_));  // tracing made no instance
}

// With no instance, --key/--hook pick the dispatcher; with one, it decides
// and naming another kind is refused before any frame runs.
TEST_F(TraceCli, KeyAndHookPickTheDispatcherWithoutAnInstance) {
    TCD_REQUIRE_KERNEL();
    std::string f = hex(ipv4_tcp());  // TCP to port 80
    json port = json::parse(sh(tcd_ + " -j trace --key port --hex " + f).out)["frames"][0];
    EXPECT_EQ(port["key"], 80);
    EXPECT_EQ(port["verdict"], "XDP_PASS");
    json tc = json::parse(sh(tcd_ + " -j trace --key port --hook tc --hex " + f).out)["frames"][0];
    // An empty table on tc: every key misses and gets tc's default, next.
    EXPECT_EQ(tc["key"], 80);
    EXPECT_EQ(tc["verdict"], "TC_ACT_UNSPEC");
    json proto = json::parse(sh(tcd_ + " -j trace --hook tc --hex " + f).out)["frames"][0];
    EXPECT_EQ(proto["key"], 6);
    EXPECT_EQ(proto["verdict"], "TC_ACT_UNSPEC");
    EXPECT_FALSE(tcd::bpffs::exists(dir_));

    ASSERT_EQ(sh(tcd_ + " -q load --key port").rc, 0);
    Cmd ok = sh(tcd_ + " -j trace --key port --hook xdp --hex " + f);
    ASSERT_EQ(ok.rc, 0) << ok.err;
    EXPECT_EQ(json::parse(ok.out)["frames"][0]["key"], 80);
    Cmd other = sh(tcd_ + " trace --hook tc --hex " + f);
    EXPECT_EQ(other.rc, 1);
    EXPECT_EQ(other.out, "");
    EXPECT_EQ(other.err, "tcd: trace: " + dir_ +
                             " holds a port dispatcher on xdp (leave out --key/--hook to trace it, or give a "
                             "--pin-dir with no instance)\n");
    EXPECT_EQ(sh(tcd_ + " trace --key bogus --hex " + f).rc, 2);
}

TEST_F(TraceCli, PcapngReadsLikePcapAndOtherLinkTypesAreRefused) {
    TCD_REQUIRE_KERNEL();
    std::vector<Bytes> frames = {ipv4_tcp(), arp(), cut_ipv4()};
    write_pcap(base_ + ".pcap", frames);
    write_pcapng(base_ + ".pcapng", frames);
    Cmd a = sh(tcd_ + " -j trace --pcap " + base_ + ".pcap");
    Cmd b = sh(tcd_ + " -j trace --pcap " + base_ + ".pcapng");
    ASSERT_EQ(a.rc, 0) << a.err;
    ASSERT_EQ(b.rc, 0) << b.err;
    EXPECT_EQ(json::parse(a.out), json::parse(b.out));

    write_pcap(base_ + ".sll", frames, 113);  // LINKTYPE_LINUX_SLL
    Cmd s = sh(tcd_ + " trace --pcap " + base_ + ".sll");
    EXPECT_EQ(s.rc, 1);
    EXPECT_EQ(s.out, "");
    EXPECT_EQ(s.err.rfind("tcd: ", 0), 0u) << s.err;
    EXPECT_EQ(std::count(s.err.begin(), s.err.end(), '\n'), 1) << s.err;
}

TEST_F(TraceCli, MemoryDoesNotGrowWithTheFile) {
    TCD_REQUIRE_KERNEL();
    ASSERT_EQ(sh(tcd_ + " -q load").rc, 0);
    ASSERT_EQ(sh(tcd_ + " -q map set tcp tcp_handler").rc, 0);
    std::vector<Bytes> mix = {ipv4_tcp(), arp(), cut_ipv4(), ipv4_tcp()};
    write_pcap(base_ + "-small.pcap", mix, 1, 250);     // 1,000 frames
    write_pcap(base_ + "-big.pcap", mix, 1, 100000);    // 400,000 frames, about 24 MB
    auto small = run_rss({TCD_BIN, "-d", dir_, "-j", "trace", "--pcap", base_ + "-small.pcap"});
    auto big = run_rss({TCD_BIN, "-d", dir_, "-j", "trace", "--pcap", base_ + "-big.pcap"});
    ASSERT_EQ(small.first, 0);
    ASSERT_EQ(big.first, 0);
    // A reader or writer that kept the frames would need the file's 24 MB
    // at least; streaming keeps the peak where the small file had it.
    EXPECT_LT(big.second - small.second, 4 * 1024) << "peak RSS " << small.second << " KiB for 1,000 frames, "
                                                    << big.second << " KiB for 400,000";
}


// Handlers that chain with tcd_next() (tests/bpf/hops.bpf.c, one object per
// kind): trace shows each hop as a level of its own (via tcd_next, from the
// handler that took it, the key, the handler it reached), a hop to an empty
// key as a miss after which the same handler goes on, and a summary row per
// level; a chain that runs into the kernel's tail-call limit shows the hops
// its record has room for and counts the rest.
TEST_F(TraceCli, FollowsTcdNextHopsForEveryKind) {
    TCD_REQUIRE_KERNEL();
    const std::string frame = hex(ipv4_tcp());  // TCP to port 80
    for (std::string hook : {"xdp", "tc"})
        for (std::string key : {"proto", "port"}) {
            SCOPED_TRACE(key + " on " + hook);
            sh(tcd_ + " -q unload");
            ASSERT_EQ(sh(tcd_ + " load --miss-action pass --key " + key + " --hook " + hook).rc, 0);
            Cmd hl = sh(tcd_ + " handler load " + std::string(TCD_BPF_OBJ_DIR) + "/hops_" + hook + "_" + key +
                        ".bpf.o");
            ASSERT_EQ(hl.rc, 0) << hl.err;
            bool port = key == "port";
            int first = port ? 80 : 6, unwired = port ? 5000 : 250, second = port ? 5001 : 251,
                third = port ? 5002 : 252, loop = port ? 5003 : 249;
            for (auto [k, h] : {std::pair{first, "hop_first"}, {second, "hop_second"}, {third, "hop_last"}}) {
                Cmd set = sh(tcd_ + " map set " + std::to_string(k) + " " + h);
                ASSERT_EQ(set.rc, 0) << set.err;
            }
            const std::string drop = hook == "xdp" ? "XDP_DROP" : "TC_ACT_SHOT";
            const std::string pass = hook == "xdp" ? "XDP_PASS" : "TC_ACT_OK";

            Cmd c = sh(tcd_ + " -j trace --hex " + frame);
            ASSERT_EQ(c.rc, 0) << c.err;
            json t = json::parse(c.out);
            const json& f = t["frames"][0];
            EXPECT_EQ(f["verdict"], drop);
            EXPECT_EQ(f["handler"], "hop_first");
            if (hook == "xdp" && !xdp_hops_shown()) {
                // The frame is traced (the verdict is the chain's), its hops
                // are not, and trace says why.
                EXPECT_EQ(f["levels"].size(), 1u) << f.dump();
                EXPECT_EQ(t["note"], kNoHopsNote) << c.out;
                EXPECT_NE(sh(tcd_ + " trace --hex " + frame).out.find("note: " + kNoHopsNote), std::string::npos);
                sh(tcd_ + " -q unload --force");
                continue;
            }
            EXPECT_FALSE(t.contains("note")) << c.out;
            ASSERT_EQ(f["levels"].size(), 4u) << f.dump();
            const json& l = f["levels"];
            EXPECT_EQ(l[0]["via"], "dispatcher");
            EXPECT_EQ(l[0]["from"], nullptr);
            EXPECT_EQ(l[0]["key"], first);
            EXPECT_EQ(l[0]["handler"], "hop_first");
            struct Hop {
                int key;
                const char* from;
                const char* handler;  // nullptr: nothing wired there
            };
            std::vector<Hop> hops = {{unwired, "hop_first", nullptr}, {second, "hop_first", "hop_second"},
                                     {third, "hop_second", "hop_last"}};
            for (size_t i = 0; i < hops.size(); i++) {
                SCOPED_TRACE("hop " + std::to_string(i + 1));
                const json& h = l[i + 1];
                EXPECT_EQ(h["via"], "tcd_next");
                EXPECT_EQ(h["from"], hops[i].from);
                EXPECT_EQ(h["instance"], dir_);
                EXPECT_EQ(h["class"], "ipv4");
                EXPECT_EQ(h["key"], hops[i].key);
                EXPECT_EQ(h["handler"], hops[i].handler ? json(hops[i].handler) : json(nullptr));
                EXPECT_EQ(h["missed"], hops[i].handler == nullptr);
            }
            EXPECT_FALSE(f.contains("unrecorded_hops"));
            // One summary row per level, each with via and from.
            ASSERT_EQ(t["summary"].size(), 4u) << t["summary"].dump();
            for (int i = 0; i < 4; i++) {
                EXPECT_EQ(t["summary"][i]["level"], i);
                EXPECT_EQ(t["summary"][i]["via"], i == 0 ? "dispatcher" : "tcd_next");
                EXPECT_EQ(t["summary"][i]["frames"], 1);
                EXPECT_EQ(t["summary"][i]["verdicts"][drop], 1);
            }
            EXPECT_EQ(t["summary"][2]["from"], "hop_first");
            EXPECT_EQ(t["summary"][3]["key"], third);

            Cmd plain = sh(tcd_ + " trace --hex " + frame);
            ASSERT_EQ(plain.rc, 0) << plain.err;
            EXPECT_NE(plain.out.find("tcd_next from hop_first: " + std::to_string(unwired)), std::string::npos)
                << plain.out;
            EXPECT_NE(plain.out.find("(miss)"), std::string::npos) << plain.out;
            EXPECT_NE(plain.out.find("tcd_next from hop_second: " + std::to_string(third)), std::string::npos)
                << plain.out;
            EXPECT_NE(plain.out.find("(tcd_next from hop_second, " + dir_ + ")"), std::string::npos) << plain.out;

            // The last stage unwired: hop_second's hop misses and it passes.
            ASSERT_EQ(sh(tcd_ + " map del " + std::to_string(third)).rc, 0);
            json m = json::parse(sh(tcd_ + " -j trace --hex " + frame).out);
            ASSERT_EQ(m["frames"][0]["levels"].size(), 4u);
            EXPECT_EQ(m["frames"][0]["levels"][3]["missed"], true);
            EXPECT_EQ(m["frames"][0]["levels"][3]["handler"], nullptr);
            EXPECT_EQ(m["frames"][0]["verdict"], pass);

            // A handler that hands the frame to itself until the kernel's 33
            // tail calls are used up: the dispatcher's, 32 hops, and one that
            // returns. The record holds the first 13 keys (XDP) or 6 (tc).
            ASSERT_EQ(sh(tcd_ + " map set " + std::to_string(loop) + " hop_loop").rc, 0);
            ASSERT_EQ(sh(tcd_ + " map set " + std::to_string(first) + " hop_loop").rc, 0);
            json r = json::parse(sh(tcd_ + " -j trace --hex " + frame).out);
            const json& rf = r["frames"][0];
            size_t room = hook == "xdp" ? 13 : 6;
            ASSERT_EQ(rf["levels"].size(), 1 + room) << rf.dump();
            for (size_t i = 1; i <= room; i++) {
                EXPECT_EQ(rf["levels"][i]["from"], "hop_loop");
                EXPECT_EQ(rf["levels"][i]["key"], loop);
                EXPECT_EQ(rf["levels"][i]["handler"], "hop_loop");
            }
            EXPECT_EQ(rf["unrecorded_hops"], 33 - room);
            EXPECT_EQ(rf["verdict"], drop);
            EXPECT_NE(sh(tcd_ + " trace --hex " + frame).out.find(std::to_string(33 - room) +
                                                                  " more tcd_next hops not shown"),
                      std::string::npos);
            // Live counters untouched.
            EXPECT_EQ(json::parse(sh(tcd_ + " -j stats").out)["total"]["packets"], 0);
            sh(tcd_ + " -q unload --force");
        }
}

// The examples as shipped: the seed 002 chain on XDP (mark -> inspect at 252)
// and on tc, and seed 004's port stages.
TEST_F(TraceCli, FollowsTheExampleChains) {
    TCD_REQUIRE_KERNEL();
    // IPv4 UDP to port 9, which mark marks and inspect drops.
    Bytes udp = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0,
                 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 9, 0, 8, 0, 0};
    struct Case {
        std::string hook, object, first, second;
    };
    for (const Case& k : {Case{"xdp", "chain", "mark", "inspect"}, Case{"tc", "tc_chain", "tc_mark", "tc_inspect"}}) {
        SCOPED_TRACE(k.object);
        sh(tcd_ + " -q unload");
        ASSERT_EQ(sh(tcd_ + " load --miss-action pass --hook " + k.hook).rc, 0);
        ASSERT_EQ(sh(tcd_ + " handler load " + std::string(TCD_BPF_OBJ_DIR) + "/" + k.object + ".bpf.o").rc, 0);
        ASSERT_EQ(sh(tcd_ + " map set udp " + k.first).rc, 0);
        ASSERT_EQ(sh(tcd_ + " map set 252 " + k.second).rc, 0);
        json f = json::parse(sh(tcd_ + " -j trace --hex " + hex(udp)).out)["frames"][0];
        EXPECT_EQ(f["verdict"], k.hook == "xdp" ? "XDP_DROP" : "TC_ACT_SHOT");
        if (k.hook == "xdp" && !xdp_hops_shown()) {
            EXPECT_EQ(f["levels"].size(), 1u) << f.dump();
            sh(tcd_ + " -q unload --force");
            continue;
        }
        ASSERT_EQ(f["levels"].size(), 2u) << f.dump();
        EXPECT_EQ(f["levels"][1]["via"], "tcd_next");
        EXPECT_EQ(f["levels"][1]["from"], k.first);
        EXPECT_EQ(f["levels"][1]["key"], 252);
        EXPECT_EQ(f["levels"][1]["handler"], k.second);
        sh(tcd_ + " -q unload --force");
    }
    ASSERT_EQ(sh(tcd_ + " load --miss-action pass").rc, 0);
    ASSERT_EQ(sh(tcd_ + " handler load " + std::string(TCD_BPF_OBJ_DIR) + "/ports.bpf.o").rc, 0);
    for (auto [key, name] : {std::pair{"tcp", "tcp_ports"}, {"253", "port8080"}, {"254", "port22"}})
        ASSERT_EQ(sh(tcd_ + " map set " + key + " " + name).rc, 0);
    Bytes ssh = ipv4_tcp();
    ssh[34 + 2] = 0, ssh[34 + 3] = 22;
    json f = json::parse(sh(tcd_ + " -j trace --hex " + hex(ssh)).out)["frames"][0];
    EXPECT_EQ(f["verdict"], "XDP_DROP");
    if (!xdp_hops_shown()) GTEST_SKIP() << kNoHopsNote;
    ASSERT_EQ(f["levels"].size(), 2u) << f.dump();
    EXPECT_EQ(f["levels"][1]["from"], "tcp_ports");
    EXPECT_EQ(f["levels"][1]["key"], 254);
    EXPECT_EQ(f["levels"][1]["handler"], "port22");
    // Port 80 takes no hop.
    json p = json::parse(sh(tcd_ + " -j trace --hex " + hex(ipv4_tcp())).out)["frames"][0];
    EXPECT_EQ(p["levels"].size(), 1u) << p.dump();
}

// A capture cut in the middle of a frame, after whole frames: with -j stdout
// holds one whole JSON document (the frames traced, their summary, "error"),
// plain or pretty; the error is the one line on stderr, exit 1. Cut in its
// header, nothing is traced and stdout is empty.
TEST_F(TraceCli, JsonOfACutCaptureIsOneWholeDocument) {
    TCD_REQUIRE_KERNEL();
    ASSERT_EQ(sh(tcd_ + " -q load").rc, 0);
    std::string whole = base_ + "-whole.pcap", cut = base_ + "-cut.pcap", head = base_ + "-head.pcap";
    write_pcap(whole, {ipv4_tcp(), ipv4_tcp(), ipv4_tcp()});
    auto size = std::filesystem::file_size(whole);
    ASSERT_EQ(sh("head -c " + std::to_string(size - 9) + " " + whole + " > " + cut).rc, 0);
    ASSERT_EQ(sh("head -c 10 " + whole + " > " + head).rc, 0);
    for (const char* flag : {"-j", "-p"}) {
        Cmd c = sh(tcd_ + " " + flag + " trace --pcap " + cut);
        EXPECT_EQ(c.rc, 1) << c.err;
        EXPECT_EQ(c.err.rfind("tcd: ", 0), 0u) << c.err;
        EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << c.err;
        json doc = json::parse(c.out, nullptr, false);
        ASSERT_FALSE(doc.is_discarded()) << flag << ": not one whole JSON document:\n" << c.out;
        EXPECT_EQ(doc["frames"].size(), 2u) << c.out;
        ASSERT_TRUE(doc["error"].is_string()) << c.out;
        EXPECT_EQ("tcd: " + doc["error"].get<std::string>() + "\n", c.err) << c.out;
        ASSERT_EQ(doc["summary"].size(), 1u) << c.out;
        EXPECT_EQ(doc["summary"][0]["frames"], 2) << c.out;
    }
    Cmd h = sh(tcd_ + " -j trace --pcap " + head);
    EXPECT_EQ(h.rc, 1) << h.err;
    EXPECT_EQ(h.out, "");
    // The whole file: no "error".
    json ok = json::parse(sh(tcd_ + " -j trace --pcap " + whole).out);
    EXPECT_EQ(ok["frames"].size(), 3u);
    EXPECT_FALSE(ok.contains("error"));
}

// The ns figures of --repeat (docs/cli.md, "tcd trace"): every level that
// ran a program has a positive "ns", "self_ns" is it less the next timed
// level's, the frame's "ns" is its first level's; summary rows carry their
// means; the document says the repeat. No figure is compared with a time.
void expect_timed_levels(const json& f) {
    ASSERT_TRUE(f["levels"].is_array()) << f.dump();
    EXPECT_EQ(f["ns"], f["levels"][0]["ns"]) << f.dump();
    std::optional<int64_t> below;
    for (size_t i = f["levels"].size(); i-- > 0;) {
        const json& l = f["levels"][i];
        SCOPED_TRACE("level " + std::to_string(i) + ": " + l.dump());
        ASSERT_TRUE(l.contains("ns") && l.contains("self_ns"));
        if (l["via"] == "tcd_next" && l["missed"] == true) {
            EXPECT_TRUE(l["ns"].is_null());
            EXPECT_TRUE(l["self_ns"].is_null());
            continue;
        }
        ASSERT_TRUE(l["ns"].is_number_unsigned());
        const int64_t ns = l["ns"].get<int64_t>();
        EXPECT_GT(ns, 0);
        ASSERT_TRUE(l["self_ns"].is_number_integer());
        EXPECT_EQ(l["self_ns"].get<int64_t>(), ns - below.value_or(0));
        below = ns;
    }
}

// A proto parent on XDP and on tc, key 6 handing TCP to a port child that
// drops port 80, UDP unwired: both levels of the TCP frames and the one
// level of the UDP frame are timed, and no live counter moves.
TEST_F(TraceCli, RepeatTimesEveryLevelOfATree) {
    TCD_REQUIRE_KERNEL();
    Bytes udp = ipv4_tcp();
    udp[23] = 17;
    for (std::string hook : {"xdp", "tc"}) {
        SCOPED_TRACE(hook);
        tcdtest::PinDirs d("tcdr");
        const std::string parent = d.add("p" + hook), child = d.add("c" + hook);
        auto on = [](const std::string& dir, const std::string& args) {
            return sh(std::string(TCD_BIN) + " -d " + dir + " " + args);
        };
        ASSERT_EQ(on(parent, "-q load --miss-action pass --hook " + hook).rc, 0);
        ASSERT_EQ(on(child, "-q load --miss-action pass --key port --hook " + hook).rc, 0);
        ASSERT_EQ(on(child, "-q map set http drop").rc, 0);
        ASSERT_EQ(on(parent, "-q map set tcp " + child).rc, 0);
        const std::string pcap = base_ + "-" + hook + ".pcap";
        write_pcap(pcap, {ipv4_tcp(), udp, ipv4_tcp()});

        Cmd c = on(parent, "-j trace --repeat 50 --pcap " + pcap);
        ASSERT_EQ(c.rc, 0) << c.err;
        json t = json::parse(c.out);
        EXPECT_EQ(t["repeat"], 50);
        ASSERT_EQ(t["frames"].size(), 3u);
        for (size_t i : {0u, 2u}) {
            const json& f = t["frames"][i];
            ASSERT_EQ(f["levels"].size(), 2u) << f.dump();
            EXPECT_EQ(f["levels"][1]["instance"], child);
            EXPECT_EQ(f["levels"][1]["handler"], "drop");
            expect_timed_levels(f);
        }
        ASSERT_EQ(t["frames"][1]["levels"].size(), 1u);
        EXPECT_EQ(t["frames"][1]["missed"], true);
        expect_timed_levels(t["frames"][1]);
        // Rows: level 0 tcp, level 0 udp, level 1 http; each with its means.
        ASSERT_EQ(t["summary"].size(), 3u) << t["summary"].dump();
        for (const json& r : t["summary"]) {
            SCOPED_TRACE(r.dump());
            ASSERT_TRUE(r["ns"].is_number_unsigned());
            EXPECT_GT(r["ns"].get<int64_t>(), 0);
            EXPECT_TRUE(r["self_ns"].is_number_integer());
        }
        // The child row's mean is the mean of its two frames' figures (rounded).
        const json& crow = t["summary"][2];
        EXPECT_EQ(crow["level"], 1);
        const int64_t a = t["frames"][0]["levels"][1]["ns"], b = t["frames"][2]["levels"][1]["ns"];
        EXPECT_EQ(crow["ns"].get<int64_t>(), (a + b + 1) / 2);

        // Plain: each level's line ends with its figures, the summary has the columns.
        Cmd p = on(parent, "trace --repeat 20 --pcap " + pcap);
        ASSERT_EQ(p.rc, 0) << p.err;
        size_t timed_lines = 0;
        for (size_t at = 0; (at = p.out.find(" ns (self ", at)) != std::string::npos; at++) timed_lines++;
        EXPECT_EQ(timed_lines, 5u) << p.out;  // 2 + 1 + 2 levels
        EXPECT_NE(p.out.find("SELF_NS"), std::string::npos) << p.out;
        EXPECT_NE(p.out.find("20 test runs a frame"), std::string::npos) << p.out;

        // Without --repeat the documents are as they were: no figures.
        json plain = json::parse(on(parent, "-j trace --pcap " + pcap).out);
        EXPECT_FALSE(plain.contains("repeat"));
        EXPECT_FALSE(plain["frames"][0].contains("ns"));
        EXPECT_FALSE(plain["frames"][0]["levels"][0].contains("ns"));
        EXPECT_FALSE(plain["summary"][0].contains("ns"));

        // Live counters untouched at both levels.
        EXPECT_EQ(json::parse(on(parent, "-j stats").out)["total"]["packets"], 0);
        EXPECT_EQ(json::parse(on(child, "-j stats").out)["total"]["packets"], 0);
    }
}

// tcd_next hops (tc: the hop record exists on every kernel): each hop that
// reached a handler is timed as that handler alone, the one that missed is
// not, and self_ns skips it.
TEST_F(TraceCli, RepeatTimesTcdNextHops) {
    TCD_REQUIRE_KERNEL();
    ASSERT_EQ(sh(tcd_ + " -q load --miss-action pass --hook tc").rc, 0);
    Cmd hl = sh(tcd_ + " handler load " + std::string(TCD_BPF_OBJ_DIR) + "/hops_tc_proto.bpf.o");
    ASSERT_EQ(hl.rc, 0) << hl.err;
    for (auto [k, h] : {std::pair{6, "hop_first"}, {251, "hop_second"}, {252, "hop_last"}})
        ASSERT_EQ(sh(tcd_ + " -q map set " + std::to_string(k) + " " + h).rc, 0);
    Cmd c = sh(tcd_ + " -j trace --repeat 10 --hex " + hex(ipv4_tcp()));
    ASSERT_EQ(c.rc, 0) << c.err;
    json t = json::parse(c.out);
    const json& f = t["frames"][0];
    ASSERT_EQ(f["levels"].size(), 4u) << f.dump();
    EXPECT_EQ(f["levels"][1]["missed"], true);
    expect_timed_levels(f);
    EXPECT_TRUE(f["levels"][1]["ns"].is_null());
    EXPECT_EQ(f["levels"][0]["self_ns"].get<int64_t>(),
              f["levels"][0]["ns"].get<int64_t>() - f["levels"][2]["ns"].get<int64_t>());
    Cmd p = sh(tcd_ + " trace --repeat 10 --hex " + hex(ipv4_tcp()));
    EXPECT_NE(p.out.find("(miss)  (not timed)"), std::string::npos) << p.out;
}

TEST_F(TraceCli, RepeatOutOfRangeIsAUsageError) {
    for (const char* n : {"0", "10000001", "-1", "x"}) {
        Cmd c = sh(tcd_ + " trace --repeat " + std::string(n) + " --hex " + hex(ipv4_tcp()));
        EXPECT_EQ(c.rc, 2) << n << ": " << c.err;
        EXPECT_EQ(c.out, "") << n;
    }
}

}  // namespace
