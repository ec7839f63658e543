// `tcd trace` as people run it: the JSON shape of the CLI contract on a
// loaded instance and without one, pcap and pcapng read alike, other link
// types refused, live counters untouched, and memory that does not grow
// with the file (the frames stream through).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
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

}  // namespace
