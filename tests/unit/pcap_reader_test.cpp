// PcapReader on the test captures (tests/data/pcaps, read in place) and on
// small captures the test writes itself (pcapng, other link types, damaged
// files).
//
// Corpus directory: $TCD_PCAP_DIR, else the compile definition TCD_PCAP_DIR,
// else tests/data/pcaps (located from this source file's path).
#include "core/pcap_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

std::string pcap_dir() {
    if (const char* e = std::getenv("TCD_PCAP_DIR"); e != nullptr && *e != '\0') return e;
#ifdef TCD_PCAP_DIR
    return TCD_PCAP_DIR;
#else
    // <repo>/tests/unit/this_file.cpp -> <repo>/tests/data/pcaps
    const fs::path tests = fs::path(__FILE__).parent_path().parent_path();
    return (tests / "data" / "pcaps").lexically_normal().string();
#endif
}

std::string corpus(const std::string& name) { return (fs::path(pcap_dir()) / name).string(); }

// Tests on the corpus. Skips nothing: a missing corpus is a failure
// with directions (SetUp's fatal failure keeps the test body from running).
class PcapCorpus : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(fs::is_directory(pcap_dir()))
            << "capture corpus not found at " << pcap_dir()
            << "; it is tests/data/pcaps in the repository (TCD_PCAP_DIR names another folder)";
    }
};

// A file in the temp directory, removed when the test is done.
class TempFile {
public:
    TempFile(const std::string& name, const Bytes& content)
        : path_((fs::temp_directory_path() /
                 ("tcd_pcap_test_" + std::to_string(::getpid()) + "_" + name))
                    .string()) {
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(content.data()),
                  static_cast<std::streamsize>(content.size()));
    }
    ~TempFile() {
        std::error_code ec;
        fs::remove(path_, ec);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

void le16(Bytes& b, uint32_t v) {
    b.push_back(static_cast<uint8_t>(v));
    b.push_back(static_cast<uint8_t>(v >> 8));
}
void le32(Bytes& b, uint32_t v) {
    le16(b, v & 0xFFFF);
    le16(b, v >> 16);
}

// Classic little-endian microsecond pcap file header.
Bytes pcap_header(uint32_t linktype, uint32_t snaplen = 65535) {
    Bytes b;
    le32(b, 0xA1B2C3D4);
    le16(b, 2);
    le16(b, 4);
    le32(b, 0);  // thiszone
    le32(b, 0);  // sigfigs
    le32(b, snaplen);
    le32(b, linktype);
    return b;
}

void pcap_record(Bytes& b, const Bytes& data, uint32_t wire_len) {
    le32(b, 1700000000);
    le32(b, 0);
    le32(b, static_cast<uint32_t>(data.size()));
    le32(b, wire_len);
    b.insert(b.end(), data.begin(), data.end());
}

// pcapng: Section Header Block + one Interface Description Block.
Bytes pcapng_header(uint16_t linktype) {
    Bytes b;
    le32(b, 0x0A0D0D0A);  // SHB
    le32(b, 28);
    le32(b, 0x1A2B3C4D);  // byte-order magic
    le16(b, 1);           // major
    le16(b, 0);           // minor
    le32(b, 0xFFFFFFFF);  // section length: unknown (64 bits)
    le32(b, 0xFFFFFFFF);
    le32(b, 28);
    le32(b, 0x00000001);  // IDB
    le32(b, 20);
    le16(b, linktype);
    le16(b, 0);  // reserved
    le32(b, 0);  // snaplen: no limit
    le32(b, 20);
    return b;
}

// pcapng Enhanced Packet Block on interface 0.
void pcapng_epb(Bytes& b, const Bytes& data, uint32_t wire_len) {
    const uint32_t padded = static_cast<uint32_t>((data.size() + 3) / 4 * 4);
    const uint32_t total = 32 + padded;
    le32(b, 0x00000006);
    le32(b, total);
    le32(b, 0);           // interface id
    le32(b, 0x0005F000);  // timestamp high
    le32(b, 0x12345678);  // timestamp low
    le32(b, static_cast<uint32_t>(data.size()));
    le32(b, wire_len);
    b.insert(b.end(), data.begin(), data.end());
    b.insert(b.end(), padded - data.size(), 0);
    le32(b, total);
}

// A 60-byte Ethernet/IPv4/TCP frame.
Bytes tcp_frame() {
    Bytes f = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00,  // Ethernet
               0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0,           // IPv4, TCP
               10, 0, 0, 1, 10, 0, 0, 2};
    while (f.size() < 60) f.push_back(static_cast<uint8_t>(f.size()));
    return f;
}

// Reads a whole file; returns the frame count, checking numbering on the way.
uint64_t count_frames(const std::string& path) {
    auto reader = tcd::PcapReader::open(path);
    EXPECT_TRUE(reader.has_value()) << (reader ? "" : reader.error().message());
    if (!reader) return 0;
    tcd::Frame f{};
    uint64_t n = 0;
    for (;;) {
        auto more = reader->next(f);
        EXPECT_TRUE(more.has_value()) << path << ": " << (more ? "" : more.error().message());
        if (!more || !*more) break;
        ++n;
        EXPECT_EQ(f.number, n);
        if (f.caplen > 0) {
            EXPECT_NE(f.data, nullptr);
        }
    }
    return n;
}

// ---- the corpus (tests/data/pcaps) -----------------------------------------

// Counts from `tcpdump -r` (lines with a timestamp plus its "[Invalid header:
// caplen==0]" lines) and pcaps/SOURCES.md.
TEST_F(PcapCorpus, FrameCountsMatchTcpdump) {
    EXPECT_EQ(count_frames(corpus("afs.pcap")), 601u);
    EXPECT_EQ(count_frames(corpus("AoE_Linux.pcap")), 186u);
    EXPECT_EQ(count_frames(corpus("pim-packet-assortment.pcap")), 245u);
    EXPECT_EQ(count_frames(corpus("OSPFv3_with_AH.pcap")), 61u);
    EXPECT_EQ(count_frames(corpus("zeek__vlan-qinqinq.pcap")), 14u);
    // Two of its three records have caplen 0: they are frames all the same.
    EXPECT_EQ(count_frames(corpus("olsr-oobr-2.pcap")), 3u);
}

TEST_F(PcapCorpus, WholeCorpusReads) {
    uint64_t files = 0, frames = 0;
    for (const auto& entry : fs::directory_iterator(pcap_dir())) {
        if (entry.path().extension() != ".pcap") continue;
        ++files;
        frames += count_frames(entry.path().string());
    }
    EXPECT_EQ(files, 117u);
    EXPECT_EQ(frames, 6849u);  // tests/data/pcaps/SOURCES.md
}

TEST_F(PcapCorpus, FrameFields) {
    auto reader = tcd::PcapReader::open(corpus("802.1ad_QinQ.pcap"));
    ASSERT_TRUE(reader.has_value()) << reader.error().message();
    tcd::Frame f{};
    auto more = reader->next(f);
    ASSERT_TRUE(more.has_value() && *more);
    EXPECT_EQ(f.number, 1u);
    ASSERT_GE(f.caplen, 18u);
    EXPECT_LE(f.caplen, f.wire_len);
    EXPECT_EQ(f.data[12], 0x88);  // outer tag 802.1ad
    EXPECT_EQ(f.data[13], 0xA8);
    more = reader->next(f);
    ASSERT_TRUE(more.has_value() && *more);
    EXPECT_EQ(f.number, 2u);
    more = reader->next(f);
    ASSERT_TRUE(more.has_value());
    EXPECT_FALSE(*more);
    more = reader->next(f);  // end of file stays end of file
    ASSERT_TRUE(more.has_value());
    EXPECT_FALSE(*more);
}

// Records whose caplen exceeds the file's snapshot length come back cut to
// the snapshot length (libpcap's rule): the file header says snaplen 1.
TEST_F(PcapCorpus, CaplenCutToSnaplen) {
    auto reader = tcd::PcapReader::open(corpus("zeek__trunc__trunc-hdr.pcap"));
    ASSERT_TRUE(reader.has_value()) << reader.error().message();
    tcd::Frame f{};
    auto more = reader->next(f);
    ASSERT_TRUE(more.has_value() && *more) << (more ? "" : more.error().message());
    EXPECT_EQ(f.caplen, 1u);
    EXPECT_EQ(f.wire_len, 78u);
}

// ---- captures written here --------------------------------------------------

TEST(PcapReader, ReadsPcapng) {
    Bytes file = pcapng_header(1);
    const Bytes full = tcp_frame();
    const Bytes part(full.begin(), full.begin() + 17);  // odd length: padded block
    pcapng_epb(file, full, 60);
    pcapng_epb(file, part, 1514);
    TempFile tmp("ok.pcapng", file);

    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_TRUE(reader.has_value()) << reader.error().message();
    tcd::Frame f{};
    auto more = reader->next(f);
    ASSERT_TRUE(more.has_value() && *more) << (more ? "" : more.error().message());
    EXPECT_EQ(f.number, 1u);
    EXPECT_EQ(f.wire_len, 60u);
    ASSERT_EQ(f.caplen, 60u);
    EXPECT_EQ(Bytes(f.data, f.data + f.caplen), full);

    more = reader->next(f);
    ASSERT_TRUE(more.has_value() && *more) << (more ? "" : more.error().message());
    EXPECT_EQ(f.number, 2u);
    EXPECT_EQ(f.wire_len, 1514u);
    ASSERT_EQ(f.caplen, 17u);
    EXPECT_EQ(Bytes(f.data, f.data + f.caplen), part);

    more = reader->next(f);
    ASSERT_TRUE(more.has_value());
    EXPECT_FALSE(*more);
}

TEST(PcapReader, ReadsClassicPcapAndMoves) {
    const Bytes full = tcp_frame();
    Bytes file = pcap_header(1);
    pcap_record(file, full, 60);
    pcap_record(file, Bytes(full.begin(), full.begin() + 14), 60);
    TempFile tmp("ok.pcap", file);

    auto opened = tcd::PcapReader::open(tmp.path());
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    tcd::PcapReader reader = std::move(*opened);  // owns the handle after the move
    tcd::Frame f{};
    uint64_t n = 0;
    for (auto more = reader.next(f); more.has_value() && *more; more = reader.next(f)) ++n;
    EXPECT_EQ(n, 2u);
    EXPECT_EQ(f.number, 2u);
    EXPECT_EQ(f.caplen, 14u);
}

TEST(PcapReader, MissingFile) {
    const std::string path = "/nonexistent/tcd/none.pcap";
    auto reader = tcd::PcapReader::open(path);
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().what, "pcap " + path);
    EXPECT_EQ(reader.error().why, "no such file");
    EXPECT_EQ(reader.error().err, ENOENT);
    EXPECT_EQ(reader.error().code, tcd::ExitCode::failed);
}

TEST(PcapReader, NotACapture) {
    const std::string text = "this is a text file, not a capture\n";
    TempFile tmp("text.pcap", Bytes(text.begin(), text.end()));
    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().what, "pcap " + tmp.path());
    EXPECT_EQ(reader.error().why, "not a pcap or pcapng capture");
}

TEST(PcapReader, EmptyFileIsNotACapture) {
    TempFile tmp("empty.pcap", {});
    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().why, "not a pcap or pcapng capture");
}

TEST(PcapReader, Directory) {
    auto reader = tcd::PcapReader::open(fs::temp_directory_path().string());
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().why, "is a directory, not a capture file");
}

TEST(PcapReader, DamagedHeaderWithCaptureMagic) {
    Bytes file = pcap_header(1);
    file.resize(10);  // pcap magic, then the header stops
    TempFile tmp("cut-header.pcap", file);
    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().why.rfind("damaged or unsupported capture: ", 0), 0u)
        << reader.error().why;
}

TEST(PcapReader, NonEthernetPcap) {
    Bytes file = pcap_header(113);  // LINKTYPE_LINUX_SLL
    pcap_record(file, Bytes(16, 0), 16);
    TempFile tmp("sll.pcap", file);
    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().what, "pcap " + tmp.path());
    EXPECT_EQ(reader.error().why,
              "link type LINUX_SLL (113) is not Ethernet; tcd traces Ethernet frames only");
}

TEST(PcapReader, NonEthernetPcapng) {
    Bytes file = pcapng_header(105);  // LINKTYPE_IEEE802_11
    pcapng_epb(file, Bytes(24, 0), 24);
    TempFile tmp("wifi.pcapng", file);
    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_FALSE(reader.has_value());
    EXPECT_EQ(reader.error().why,
              "link type IEEE802_11 (105) is not Ethernet; tcd traces Ethernet frames only");
}

TEST(PcapReader, TruncatedRecordIsAnError) {
    Bytes file = pcap_header(1);
    pcap_record(file, tcp_frame(), 60);
    pcap_record(file, tcp_frame(), 60);
    file.resize(file.size() - 30);  // the second record's data stops half-way
    TempFile tmp("cut-record.pcap", file);

    auto reader = tcd::PcapReader::open(tmp.path());
    ASSERT_TRUE(reader.has_value()) << reader.error().message();
    tcd::Frame f{};
    auto more = reader->next(f);
    ASSERT_TRUE(more.has_value() && *more);
    more = reader->next(f);
    ASSERT_FALSE(more.has_value());
    EXPECT_EQ(reader->path(), tmp.path());
    EXPECT_EQ(more.error().what, "pcap " + tmp.path());
    EXPECT_EQ(more.error().why.rfind("cannot read frame 2: ", 0), 0u) << more.error().why;
    more = reader->next(f);  // after an error: end, not a second error
    ASSERT_TRUE(more.has_value());
    EXPECT_FALSE(*more);
}

}  // namespace
