// core/pcapng.h: the bytes it writes (checked exactly for a small capture),
// and what tcpdump, tshark and tcd's own PcapReader (libpcap) read back,
// frame by frame. core/frame_summary.h on hand-built frames.
//
// tcpdump is required (a failure in CI, a skip elsewhere, when missing);
// tshark is optional: its tests skip when it is not installed.
#include "core/pcapng.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/frame_summary.h"
#include "core/pcap_reader.h"
#include "tests/common/packet.h"
#include "tests/common/shell.h"

namespace {

namespace fs = std::filesystem;
using tcdtest::Bytes;
using tcdtest::sh;
using tcdtest::operator+;

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

bool have(const char* tool) { return sh(std::string("command -v ") + tool).rc == 0; }

#define REQUIRE_TCPDUMP()                                                                   \
    do {                                                                                    \
        if (!have("tcpdump")) {                                                             \
            if (in_ci()) FAIL() << "tcpdump is not installed (apt-get install tcpdump)";    \
            GTEST_SKIP() << "tcpdump is not installed";                                     \
        }                                                                                   \
    } while (0)

#define REQUIRE_TSHARK() \
    do {                 \
        if (!have("tshark")) GTEST_SKIP() << "tshark is not installed"; \
    } while (0)

std::string slurp_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A directory of its own, removed with everything in it.
class PcapngTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("tcd_pcapng_test_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }
    fs::path dir_;
};

// Ethernet, IPv4, then sport/dport and payload bytes (TCP or UDP header start).
Bytes v4(uint8_t proto, uint16_t sport, uint16_t dport, std::initializer_list<uint16_t> tpids = {},
         size_t payload = 20) {
    Bytes b = tcdtest::eth(0x0800, tpids) + tcdtest::ipv4(proto, 5, payload);
    const size_t l4 = b.size() - payload;
    if (payload >= 4) {
        b[l4] = uint8_t(sport >> 8), b[l4 + 1] = uint8_t(sport);
        b[l4 + 2] = uint8_t(dport >> 8), b[l4 + 3] = uint8_t(dport);
    }
    return b;
}

Bytes v6(uint8_t proto, uint16_t sport, uint16_t dport, std::initializer_list<tcdtest::Ext> exts = {}) {
    Bytes b = tcdtest::eth(0x86DD) + tcdtest::ipv6(proto, exts, 20);
    const size_t l4 = b.size() - 20;
    b[l4] = uint8_t(sport >> 8), b[l4 + 1] = uint8_t(sport);
    b[l4 + 2] = uint8_t(dport >> 8), b[l4 + 3] = uint8_t(dport);
    return b;
}

constexpr uint64_t kT0 = 1700000000123456789ull;  // 2023-11-14T22:13:20.123456789Z

// The frames the read-back tests write: (interface, frame, comment).
struct Written {
    uint32_t ifc;
    Bytes bytes;
    std::string comment;
};

std::vector<Written> sample() {
    return {{0, v4(6, 40000, 80), "key 6 (tcp) handler tcp_handler level 0 direct"},
            {1, v6(17, 5353, 53), "key 17 (udp) miss: pass"},
            {0, v4(17, 1000, 2000, {0x8100}), ""},  // no comment
            {0, v4(6, 1, 2, {}, 1400), "cut to the snaplen, with UTF-8: \xc3\xa9t\xc3\xa9"}};
}

// Writes sample() with snaplen 128 on "veth0" (id 0) and "eth1" (id 1).
void write_sample(const std::string& path) {
    auto w = tcd::PcapngWriter::open(path, 128);
    ASSERT_TRUE(w) << w.error().message();
    auto a = w->add_interface("veth0");
    auto b = w->add_interface("eth1");
    ASSERT_TRUE(a && b);
    ASSERT_EQ(*a, 0u);
    ASSERT_EQ(*b, 1u);
    uint64_t t = kT0;
    for (const auto& f : sample()) {
        auto r = w->write(f.ifc, t, uint32_t(f.bytes.size()), f.bytes, f.comment);
        ASSERT_TRUE(r) << r.error().message();
        t += 1000;
    }
    EXPECT_EQ(w->frames(), 4u);
    auto c = w->close();
    ASSERT_TRUE(c) << c.error().message();
}

std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// Every byte of a capture with one interface and one 14-byte frame.
TEST_F(PcapngTest, BytesAreTheFormat) {
    const std::string path = file("exact.pcapng");
    {
        auto w = tcd::PcapngWriter::open(path, 100);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->add_interface("v0"));
        const Bytes frame = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00};
        ASSERT_TRUE(w->write(0, 0x0000000100000002ull, 60, frame, "hi"));
        ASSERT_TRUE(w->close());
    }
    auto le32 = [](uint32_t v) { return std::string{char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; };
    auto le16 = [](uint16_t v) { return std::string{char(v), char(v >> 8)}; };
    std::string shb = le32(0x0A0D0D0A) + le32(40) + le32(0x1A2B3C4D) + le16(1) + le16(0) +
                      std::string(8, '\xff') + le16(4) + le16(3) + std::string("tcd\0", 4) + le32(0) + le32(40);
    std::string idb = le32(1) + le32(40) + le16(1) + le16(0) + le32(100) + le16(2) + le16(2) +
                      std::string("v0\0\0", 4) + le16(9) + le16(1) + std::string("\x09\0\0\0", 4) + le32(0) +
                      le32(40);
    std::string epb = le32(6) + le32(60) + le32(0) + le32(1) + le32(2) + le32(14) + le32(60) +
                      std::string("\1\2\3\4\5\6\7\x08\x09\x0a\x0b\x0c\x08\x00\0\0", 16) + le16(1) + le16(2) +
                      std::string("hi\0\0", 4) + le32(0) + le32(60);
    EXPECT_EQ(slurp_bytes(path), shb + idb + epb);
}

TEST_F(PcapngTest, TcpdumpReadsEveryFrame) {
    REQUIRE_TCPDUMP();
    const std::string path = file("sample.pcapng");
    write_sample(path);
    auto r = sh("tcpdump --time-stamp-precision=nano -tt -nn -e -r " + path);
    ASSERT_EQ(r.rc, 0) << r.err;
    auto l = lines(r.out);
    ASSERT_EQ(l.size(), 4u) << r.out;
    EXPECT_NE(l[0].find("1700000000.123456789"), std::string::npos) << l[0];
    EXPECT_NE(l[0].find("10.0.0.1.40000 > 10.0.0.2.80"), std::string::npos) << l[0];
    EXPECT_NE(l[1].find("1700000000.123457789"), std::string::npos) << l[1];
    EXPECT_NE(l[1].find("fd01:101:101:101:101:101:101:101.5353 > fd02:202:202:202:202:202:202:202.53"),
              std::string::npos)
        << l[1];
    EXPECT_NE(l[2].find("vlan 100"), std::string::npos) << l[2];
    EXPECT_NE(l[2].find("10.0.0.1.1000 > 10.0.0.2.2000"), std::string::npos) << l[2];
    EXPECT_NE(l[3].find("10.0.0.1.1 > 10.0.0.2.2"), std::string::npos) << l[3];
    EXPECT_NE(l[3].find("length 1434"), std::string::npos) << l[3];  // the length on the wire
    // The interfaces by name (tcpdump 4.99 prints them with -e on pcapng... or not at all: not checked).
}

TEST_F(PcapngTest, TsharkShowsCommentsInterfacesAndLengths) {
    REQUIRE_TSHARK();
    const std::string path = file("sample.pcapng");
    write_sample(path);
    auto r = sh("tshark -r " + path +
                " -T fields -E separator='|' -e frame.interface_name -e frame.len -e frame.cap_len -e frame.comment");
    ASSERT_EQ(r.rc, 0) << r.err;
    auto l = lines(r.out);
    ASSERT_EQ(l.size(), 4u) << r.out;
    auto s = sample();
    auto len = [&](size_t i) { return std::to_string(s[i].bytes.size()); };
    EXPECT_EQ(l[0], "veth0|" + len(0) + "|" + len(0) + "|" + s[0].comment);
    EXPECT_EQ(l[1], "eth1|" + len(1) + "|" + len(1) + "|" + s[1].comment);
    EXPECT_EQ(l[2], "veth0|" + len(2) + "|" + len(2) + "|");
    EXPECT_EQ(l[3], "veth0|" + len(3) + "|128|" + s[3].comment);
}

TEST_F(PcapngTest, PcapReaderReadsItBackByteForByte) {
    const std::string path = file("sample.pcapng");
    write_sample(path);
    auto rd = tcd::PcapReader::open(path);
    ASSERT_TRUE(rd) << rd.error().message();
    auto s = sample();
    tcd::Frame f{};
    for (size_t i = 0; i < s.size(); i++) {
        auto more = rd->next(f);
        ASSERT_TRUE(more) << more.error().message();
        ASSERT_TRUE(*more) << "frame " << i + 1 << " missing";
        EXPECT_EQ(f.number, i + 1);
        EXPECT_EQ(f.wire_len, s[i].bytes.size());
        const size_t cap = std::min<size_t>(s[i].bytes.size(), 128);
        ASSERT_EQ(f.caplen, cap);
        EXPECT_EQ(Bytes(f.data, f.data + f.caplen), Bytes(s[i].bytes.begin(), s[i].bytes.begin() + long(cap)));
    }
    auto end = rd->next(f);
    ASSERT_TRUE(end);
    EXPECT_FALSE(*end);
}

// A regular file appears whole at close(), under its name; until then and
// without close() the name is untouched.
TEST_F(PcapngTest, RegularFileIsReplacedOnlyByClose) {
    const std::string path = file("old.pcapng");
    std::ofstream(path) << "old";
    {
        auto w = tcd::PcapngWriter::open(path);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->add_interface("x"));
        ASSERT_TRUE(w->write(0, kT0, 14, Bytes(14, 0), "c"));
        ASSERT_TRUE(w->flush());
        EXPECT_EQ(slurp_bytes(path), "old");
    }  // no close(): abandoned
    EXPECT_EQ(slurp_bytes(path), "old");
    size_t entries = 0;
    for (const auto& e : fs::directory_iterator(dir_)) entries += e.path().filename() != "old.pcapng";
    EXPECT_EQ(entries, 0u) << "a temporary was left behind";
    {
        auto w = tcd::PcapngWriter::open(path);
        ASSERT_TRUE(w);
        ASSERT_TRUE(w->close());
        EXPECT_FALSE(w->close()) << "closed twice";
        EXPECT_FALSE(w->add_interface("y"));
    }
    EXPECT_EQ(slurp_bytes(path).substr(0, 4), std::string("\x0a\x0d\x0d\x0a", 4));
}

TEST_F(PcapngTest, SymlinkAndDirectoryAreRefusedAndLeftAsTheyWere) {
    const std::string target = file("target"), link = file("link.pcapng");
    std::ofstream(target) << "keep";
    fs::create_symlink(target, link);
    auto w = tcd::PcapngWriter::open(link);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().what, "write " + link);
    EXPECT_NE(w.error().why.find("symbolic link"), std::string::npos) << w.error().why;
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_EQ(slurp_bytes(target), "keep");
    auto d = tcd::PcapngWriter::open(dir_.string());
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().why.find("directory"), std::string::npos) << d.error().why;
    auto missing = tcd::PcapngWriter::open(file("no/such/dir.pcapng"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().err, ENOENT);
}

// A FIFO is written into (tcpdump reading the other end), never replaced.
TEST_F(PcapngTest, FifoIsWrittenInto) {
    REQUIRE_TCPDUMP();
    const std::string fifo = file("pipe");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const std::string out = file("tcpdump.out");
    // tcpdump opens the FIFO for reading; open() for writing waits for it.
    ASSERT_EQ(sh("tcpdump -nn -r " + fifo + " >" + out + " 2>&1 &").rc, 0);
    {
        auto w = tcd::PcapngWriter::open(fifo);
        ASSERT_TRUE(w) << w.error().message();
        ASSERT_TRUE(w->add_interface("veth0"));
        const Bytes f = v4(17, 7, 9);
        ASSERT_TRUE(w->write(0, kT0, uint32_t(f.size()), f, "x"));
        ASSERT_TRUE(w->close());
    }
    // The writer's end is closed: tcpdump sees the end of the capture and exits.
    std::string got;
    for (int i = 0; i < 100 && got.find("10.0.0.1.7 > 10.0.0.2.9") == std::string::npos; i++) {
        ::usleep(50000);
        got = slurp_bytes(out);
    }
    EXPECT_NE(got.find("10.0.0.1.7 > 10.0.0.2.9"), std::string::npos) << got;
    struct stat st {};
    ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(PcapngTest, ErrorsNameTheFileAndTheInterface) {
    auto w = tcd::PcapngWriter::open(file("e.pcapng"));
    ASSERT_TRUE(w);
    auto r = w->write(0, kT0, 14, Bytes(14, 0));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "write " + file("e.pcapng") + ": no interface 0 in the capture (0 added)");
}

TEST(FrameSummary, Ipv4TcpUdpIcmpAndLength) {
    Bytes t = v4(6, 40000, 80);
    EXPECT_EQ(tcd::frame_summary(t.data(), t.size()), "IP 10.0.0.1.40000 > 10.0.0.2.80: tcp, length 54");
    EXPECT_EQ(tcd::frame_summary(t.data(), t.size(), 1500), "IP 10.0.0.1.40000 > 10.0.0.2.80: tcp, length 1500");
    Bytes u = v4(17, 53, 5353);
    EXPECT_EQ(tcd::frame_summary(u.data(), u.size()), "IP 10.0.0.1.53 > 10.0.0.2.5353: udp, length 54");
    Bytes i = tcdtest::eth(0x0800) + tcdtest::ipv4(1, 5, 8);
    i[34] = 8, i[35] = 0;
    EXPECT_EQ(tcd::frame_summary(i.data(), i.size()), "IP 10.0.0.1 > 10.0.0.2: icmp type 8 code 0, length 42");
    Bytes g = tcdtest::eth(0x0800) + tcdtest::ipv4(47, 5, 8);
    EXPECT_EQ(tcd::frame_summary(g.data(), g.size()), "IP 10.0.0.1 > 10.0.0.2: proto 47, length 42");
    Bytes frag = tcdtest::eth(0x0800) + tcdtest::ipv4_frag(6, 0x0010);
    EXPECT_EQ(tcd::frame_summary(frag.data(), frag.size()), "IP 10.0.0.1 > 10.0.0.2: tcp, fragment, length 54");
    Bytes opts = tcdtest::eth(0x0800) + tcdtest::ipv4(17, 6, 20);  // 4 bytes of options
    opts[38] = 0, opts[39] = 1, opts[40] = 0, opts[41] = 2;
    EXPECT_EQ(tcd::frame_summary(opts.data(), opts.size()), "IP 10.0.0.1.1 > 10.0.0.2.2: udp, length 58");
}

TEST(FrameSummary, VlanTagsAndIpv6) {
    Bytes one = v4(6, 1, 2, {0x8100});
    EXPECT_EQ(tcd::frame_summary(one.data(), one.size()), "vlan 100, IP 10.0.0.1.1 > 10.0.0.2.2: tcp, length 58");
    Bytes two = v4(17, 1, 2, {0x88A8, 0x8100});
    EXPECT_EQ(tcd::frame_summary(two.data(), two.size()),
              "vlan 100, vlan 101, IP 10.0.0.1.1 > 10.0.0.2.2: udp, length 62");
    Bytes six = v6(17, 5353, 53);
    EXPECT_EQ(tcd::frame_summary(six.data(), six.size()),
              "IP6 fd01:101:101:101:101:101:101:101.5353 > fd02:202:202:202:202:202:202:202.53: udp, length 74");
    Bytes ext = v6(6, 443, 1024, {{0, 0}, {60, 1}});
    EXPECT_EQ(tcd::frame_summary(ext.data(), ext.size()),
              "IP6 fd01:101:101:101:101:101:101:101.443 > fd02:202:202:202:202:202:202:202.1024: tcp, length 98");
    Bytes icmp6 = tcdtest::eth(0x86DD) + tcdtest::ipv6(58, {}, 8);
    icmp6[54] = 128, icmp6[55] = 0;
    EXPECT_EQ(tcd::frame_summary(icmp6.data(), icmp6.size()),
              "IP6 fd01:101:101:101:101:101:101:101 > fd02:202:202:202:202:202:202:202: icmp6 type 128 code 0, "
              "length 62");
}

TEST(FrameSummary, ShortFramesAreTruncatedNeverOverread) {
    Bytes t = v4(6, 40000, 80, {0x8100, 0x8100});
    // Every cut of the frame: no read past caplen (ASan/valgrind would say), and the words.
    for (size_t n = 0; n <= t.size(); n++) {
        Bytes cut(t.begin(), t.begin() + long(n));  // its own allocation: an overread leaves it
        std::string s = tcd::frame_summary(cut.data(), cut.size(), uint32_t(t.size()));
        EXPECT_NE(s.find(", length 62"), std::string::npos) << n << ": " << s;
        std::string want;
        if (n < 14) {
            want = "ethernet truncated, length 62";
        } else if (n < 18) {
            want = "vlan truncated, length 62";
        } else if (n < 22) {
            want = "vlan 100, vlan truncated, length 62";
        } else if (n < 42) {
            want = "vlan 100, vlan 101, IP truncated, length 62";
        } else if (n < 46) {
            want = "vlan 100, vlan 101, IP 10.0.0.1 > 10.0.0.2: tcp truncated, length 62";
        } else {
            want = "vlan 100, vlan 101, IP 10.0.0.1.40000 > 10.0.0.2.80: tcp, length 62";
        }
        EXPECT_EQ(s, want) << "cut at " << n;
    }
    Bytes arp = tcdtest::eth(0x0806) + Bytes(28, 0);
    EXPECT_EQ(tcd::frame_summary(arp.data(), arp.size()), "ARP, length 42");
    Bytes lldp = tcdtest::eth(0x88CC) + Bytes(46, 0);
    EXPECT_EQ(tcd::frame_summary(lldp.data(), lldp.size()), "ethertype 0x88cc, length 60");
    Bytes six = tcdtest::truncate(v6(17, 1, 2), 54 + 2);
    EXPECT_EQ(tcd::frame_summary(six.data(), six.size()),
              "IP6 fd01:101:101:101:101:101:101:101 > fd02:202:202:202:202:202:202:202: udp truncated, length 56");
    Bytes v6short = tcdtest::truncate(v6(17, 1, 2), 40);
    EXPECT_EQ(tcd::frame_summary(v6short.data(), v6short.size()), "IP6 truncated, length 40");
}

}  // namespace
