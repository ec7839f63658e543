// Every rule of docs/datapath.md "Dispatch key", and its boundaries, against
// the reference classifier, with hand-built frames.
#include "tests/ref/ref_classifier.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using tcdref::Class;
using Bytes = std::vector<uint8_t>;

// ---- frame building ---------------------------------------------------------

void put16(Bytes& f, unsigned v) {
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v));
}

// 12 bytes of MAC addresses, then for each tag its TPID + TCI, then the EtherType.
Bytes eth(unsigned ethertype, const std::vector<unsigned>& tpids = {}) {
    Bytes f = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    for (unsigned tpid : tpids) {
        put16(f, tpid);
        put16(f, 0x0064);  // PCP 0, VID 100
    }
    put16(f, ethertype);
    return f;
}

// An IPv4 header of ihl*4 bytes (at least 20 written even if ihl < 5).
Bytes ipv4(unsigned protocol, unsigned ihl = 5, unsigned version = 4, unsigned frag = 0x4000) {
    Bytes h = {static_cast<uint8_t>((version << 4) | ihl), 0};
    put16(h, 20);  // total length (the classifier ignores it)
    put16(h, 0x1234);
    put16(h, frag);
    h.push_back(64);
    h.push_back(static_cast<uint8_t>(protocol));
    put16(h, 0);  // checksum
    for (int i = 0; i < 8; ++i) h.push_back(static_cast<uint8_t>(10 + i));
    const size_t n = ihl >= 5 ? ihl * 4 : 20;
    while (h.size() < n) h.push_back(0x01);  // NOP options
    return h;
}

Bytes ipv6(unsigned next_header, unsigned version = 6) {
    Bytes h = {static_cast<uint8_t>(version << 4), 0, 0, 0};
    put16(h, 0);  // payload length (ignored)
    h.push_back(static_cast<uint8_t>(next_header));
    h.push_back(64);
    for (int i = 0; i < 32; ++i) h.push_back(static_cast<uint8_t>(i));
    return h;
}

// Hop-by-Hop / Routing / Destination Options: (hdr_ext_len + 1) * 8 bytes.
Bytes ext(unsigned next_header, unsigned hdr_ext_len) {
    Bytes h = {static_cast<uint8_t>(next_header), static_cast<uint8_t>(hdr_ext_len)};
    while (h.size() < (hdr_ext_len + 1) * 8) h.push_back(0);
    return h;
}

// Fragment header: always 8 bytes; the second byte is reserved. 0xff there
// would mean 2048 bytes to a classifier that took it for hdr_ext_len.
Bytes frag(unsigned next_header, uint8_t reserved = 0xff) {
    return {static_cast<uint8_t>(next_header), reserved, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef};
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes f;
    for (const Bytes& p : parts) f.insert(f.end(), p.begin(), p.end());
    return f;
}

Bytes cut(Bytes f, size_t len) {
    f.resize(len);
    return f;
}

Bytes pad(Bytes f, size_t extra, uint8_t v = 0xAB) {
    f.insert(f.end(), extra, v);
    return f;
}

// ---- the table --------------------------------------------------------------

struct Case {
    std::string name;
    Bytes frame;
    Class cls;
    int key;
};

std::string describe(const tcdref::RefResult& r) {
    return std::string(tcdref::class_name(r.cls)) + "/" + std::to_string(r.key);
}

void expect_case(const Case& c) {
    const tcdref::RefResult r = tcdref::classify(c.frame.data(), c.frame.size());
    EXPECT_EQ(describe(r), describe(tcdref::RefResult{c.cls, c.key}))
        << c.name << " (" << c.frame.size() << " bytes)";
}

constexpr unsigned kIPv4 = 0x0800, kIPv6 = 0x86DD, kQ = 0x8100, kAD = 0x88A8;

std::vector<Case> table() {
    const Case cases[] = {
        // Rule 1: length.
        {"empty", {}, Class::malformed, -1},
        {"13 bytes", cut(eth(0x0806), 13), Class::malformed, -1},
        {"14 bytes, ARP", eth(0x0806), Class::non_ip, -1},
        {"14 bytes, IPv4 EtherType, no header", eth(kIPv4), Class::malformed, -1},
        {"14 bytes, IPv6 EtherType, no header", eth(kIPv6), Class::malformed, -1},
        {"14 bytes, 0x8100, tag missing", eth(kQ), Class::malformed, -1},
        {"14 bytes, 0x88a8, tag missing", eth(kAD), Class::malformed, -1},

        // Rule 2: VLAN tags.
        {"1 tag 0x8100, IPv4/TCP", cat({eth(kIPv4, {kQ}), ipv4(6)}), Class::ipv4, 6},
        {"1 tag 0x88a8, IPv4/UDP", cat({eth(kIPv4, {kAD}), ipv4(17)}), Class::ipv4, 17},
        {"QinQ 88a8+8100, IPv4", cat({eth(kIPv4, {kAD, kQ}), ipv4(1)}), Class::ipv4, 1},
        {"2 tags 8100+8100, IPv6", cat({eth(kIPv6, {kQ, kQ}), ipv6(58)}), Class::ipv6, 58},
        {"2 tags 88a8+88a8, IPv6", cat({eth(kIPv6, {kAD, kAD}), ipv6(6)}), Class::ipv6, 6},
        {"2 tags 8100+88a8, IPv4", cat({eth(kIPv4, {kQ, kAD}), ipv4(132)}), Class::ipv4, 132},
        {"1 tag, ARP", eth(0x0806, {kQ}), Class::non_ip, -1},
        {"2 tags, LLDP", pad(eth(0x88CC, {kAD, kQ}), 30), Class::non_ip, -1},
        {"3 tags then IPv4: 3rd TPID is unknown", cat({eth(kIPv4, {kQ, kQ, kQ}), ipv4(6)}),
         Class::non_ip, -1},
        {"3 tags 88a8 then IPv6", cat({eth(kIPv6, {kAD, kAD, kAD}), ipv6(6)}), Class::non_ip, -1},
        {"3rd TPID is the last 2 bytes of the frame", cut(eth(kIPv4, {kQ, kQ, kQ}), 22),
         Class::non_ip, -1},
        {"0x9100 is not a VLAN TPID", cat({eth(kIPv4, {0x9100}), ipv4(6)}), Class::non_ip, -1},
        {"1 tag, then IPv4 EtherType, no header", eth(kIPv4, {kQ}), Class::malformed, -1},

        // Rule 3: IPv4.
        {"IPv4 20-byte header ends the frame", cat({eth(kIPv4), ipv4(6)}), Class::ipv4, 6},
        {"IPv4 header one byte short (19)", cut(cat({eth(kIPv4), ipv4(6)}), 14 + 19),
         Class::malformed, -1},
        {"IPv4 with payload", pad(cat({eth(kIPv4), ipv4(17)}), 100), Class::ipv4, 17},
        {"IPv4 version 6 in an IPv4 EtherType", cat({eth(kIPv4), ipv4(6, 5, 6)}),
         Class::malformed, -1},
        {"IPv4 version 0", cat({eth(kIPv4), ipv4(6, 5, 0)}), Class::malformed, -1},
        {"IPv4 version 15", pad(cat({eth(kIPv4), ipv4(6, 5, 15)}), 40), Class::malformed, -1},
        {"IPv4 IHL 0", pad(cat({eth(kIPv4), ipv4(6, 0)}), 40), Class::malformed, -1},
        {"IPv4 IHL 4", pad(cat({eth(kIPv4), ipv4(6, 4)}), 40), Class::malformed, -1},
        {"IPv4 IHL 6, 24 bytes", cat({eth(kIPv4), ipv4(6, 6)}), Class::ipv4, 6},
        {"IPv4 IHL 6, 23 bytes (IHL*4 one short)", cut(cat({eth(kIPv4), ipv4(6, 6)}), 14 + 23),
         Class::malformed, -1},
        {"IPv4 IHL 15, 60 bytes", cat({eth(kIPv4), ipv4(17, 15)}), Class::ipv4, 17},
        {"IPv4 IHL 15, 59 bytes", cut(cat({eth(kIPv4), ipv4(17, 15)}), 14 + 59),
         Class::malformed, -1},
        {"IPv4 IHL 15, only 20 bytes", cut(cat({eth(kIPv4), ipv4(17, 15)}), 14 + 20),
         Class::malformed, -1},
        {"IPv4 IHL 15 behind 2 tags, exact", cat({eth(kIPv4, {kAD, kQ}), ipv4(47, 15)}),
         Class::ipv4, 47},
        {"IPv4 IHL 15 behind 2 tags, one short",
         cut(cat({eth(kIPv4, {kAD, kQ}), ipv4(47, 15)}), 22 + 59), Class::malformed, -1},
        {"IPv4 first fragment (MF)", cat({eth(kIPv4), ipv4(6, 5, 4, 0x2000)}), Class::ipv4, 6},
        {"IPv4 later fragment (offset)", cat({eth(kIPv4), ipv4(17, 5, 4, 0x00B9)}), Class::ipv4,
         17},
        {"IPv4 protocol 0", cat({eth(kIPv4), ipv4(0)}), Class::ipv4, 0},
        {"IPv4 protocol 255", cat({eth(kIPv4), ipv4(255)}), Class::ipv4, 255},
        {"IPv4 AH", cat({eth(kIPv4), ipv4(51)}), Class::ipv4, 51},
        {"IPv4 ESP", cat({eth(kIPv4), ipv4(50)}), Class::ipv4, 50},
        {"IP-in-IP keyed 4 (outer only)", cat({eth(kIPv4), ipv4(4), ipv4(6)}), Class::ipv4, 4},
        {"6in4 keyed 41", cat({eth(kIPv4), ipv4(41), ipv6(17)}), Class::ipv4, 41},
        {"GRE keyed 47", pad(cat({eth(kIPv4), ipv4(47)}), 4), Class::ipv4, 47},

        // Rule 4: IPv6.
        {"IPv6 40-byte header ends the frame", cat({eth(kIPv6), ipv6(6)}), Class::ipv6, 6},
        {"IPv6 header one byte short (39)", cut(cat({eth(kIPv6), ipv6(6)}), 14 + 39),
         Class::malformed, -1},
        {"IPv6 version 4", cat({eth(kIPv6), ipv6(6, 4)}), Class::malformed, -1},
        {"IPv6 version 0", pad(cat({eth(kIPv6), ipv6(6, 0)}), 20), Class::malformed, -1},
        {"IPv6 No Next Header 59", cat({eth(kIPv6), ipv6(59)}), Class::ipv6, 59},
        {"IPv6 ICMPv6", pad(cat({eth(kIPv6), ipv6(58)}), 8), Class::ipv6, 58},
        {"IPv6 IP-in-IPv6 keyed 4", cat({eth(kIPv6), ipv6(4), ipv4(6)}), Class::ipv6, 4},
        {"IPv6 6in6 keyed 41", cat({eth(kIPv6), ipv6(41), ipv6(6)}), Class::ipv6, 41},
        {"IPv6 AH is a key, not walked", cat({eth(kIPv6), ipv6(51), ext(0, 4)}), Class::ipv6, 51},
        {"IPv6 AH alone, nothing after the header", cat({eth(kIPv6), ipv6(51)}), Class::ipv6, 51},
        {"HBH then AH", cat({eth(kIPv6), ipv6(0), ext(51, 0), ext(6, 2)}), Class::ipv6, 51},
        {"ESP key 50", cat({eth(kIPv6), ipv6(50)}), Class::ipv6, 50},
        {"HBH len 0 (8 bytes) exact", cat({eth(kIPv6), ipv6(0), ext(17, 0)}), Class::ipv6, 17},
        {"HBH len 0, 7 bytes", cut(cat({eth(kIPv6), ipv6(0), ext(17, 0)}), 14 + 40 + 7),
         Class::malformed, -1},
        {"Routing len 2 (24 bytes) exact", cat({eth(kIPv6), ipv6(43), ext(6, 2)}), Class::ipv6, 6},
        {"Routing len 2, 23 bytes", cut(cat({eth(kIPv6), ipv6(43), ext(6, 2)}), 14 + 40 + 23),
         Class::malformed, -1},
        {"Dest opts len 255 (2048 bytes) in a 1600-byte frame",
         cut(cat({eth(kIPv6), ipv6(60), ext(6, 255)}), 1600), Class::malformed, -1},
        {"Dest opts len 255 (2048 bytes) complete", cat({eth(kIPv6), ipv6(60), ext(6, 255)}),
         Class::ipv6, 6},
        {"Fragment is 8 bytes whatever its 2nd byte",
         cat({eth(kIPv6), ipv6(44), frag(17, 0xff)}), Class::ipv6, 17},
        {"Fragment 2nd byte 0", cat({eth(kIPv6), ipv6(44), frag(6, 0)}), Class::ipv6, 6},
        {"Fragment, 7 bytes", cut(cat({eth(kIPv6), ipv6(44), frag(17)}), 14 + 40 + 7),
         Class::malformed, -1},
        {"ext header with only its next-header byte", cut(cat({eth(kIPv6), ipv6(0), ext(6, 0)}),
                                                          14 + 40 + 1),
         Class::malformed, -1},
        {"ext header entirely missing", cat({eth(kIPv6), ipv6(43)}), Class::malformed, -1},
        {"Fragment header entirely missing", cat({eth(kIPv6), ipv6(44)}), Class::malformed, -1},
        {"chain 0,43,44,60 then TCP",
         cat({eth(kIPv6), ipv6(0), ext(43, 0), ext(44, 1), frag(60), ext(6, 3)}), Class::ipv6, 6},
        {"chain ends in 59", cat({eth(kIPv6), ipv6(60), ext(59, 0)}), Class::ipv6, 59},
        {"ext chain behind 2 VLAN tags",
         cat({eth(kIPv6, {kAD, kQ}), ipv6(0), ext(44, 0), frag(58)}), Class::ipv6, 58},
        {"ext chain behind 2 VLAN tags, last cut",
         cut(cat({eth(kIPv6, {kAD, kQ}), ipv6(0), ext(44, 0), frag(58)}), 22 + 40 + 8 + 7),
         Class::malformed, -1},
    };
    return std::vector<Case>(std::begin(cases), std::end(cases));
}

TEST(RefClassifier, Table) {
    for (const Case& c : table()) expect_case(c);
}

TEST(RefClassifier, NullDataEmpty) {
    const tcdref::RefResult r = tcdref::classify(nullptr, 0);
    EXPECT_EQ(r.cls, Class::malformed);
    EXPECT_EQ(r.key, -1);
}

TEST(RefClassifier, ClassNames) {
    EXPECT_STREQ(tcdref::class_name(Class::ipv4), "ipv4");
    EXPECT_STREQ(tcdref::class_name(Class::ipv6), "ipv6");
    EXPECT_STREQ(tcdref::class_name(Class::non_ip), "non-ip");
    EXPECT_STREQ(tcdref::class_name(Class::malformed), "malformed");
}

TEST(RefClassifier, ShortFramesAllMalformed) {
    const Bytes full = pad(eth(0x0806), 50);
    for (size_t len = 0; len < 14; ++len) expect_case({"short", cut(full, len), Class::malformed, -1});
}

// A VLAN tag cut at each of its bytes, for the first and the second tag.
TEST(RefClassifier, VlanTagCutAtEachByte) {
    for (unsigned outer : {kQ, kAD}) {
        for (unsigned inner : {kQ, kAD}) {
            const Bytes two = pad(eth(0x0806, {outer, inner}), 30);  // non-ip when whole
            for (size_t len = 14; len < 22; ++len) {
                expect_case({"2 tags cut at " + std::to_string(len), cut(two, len),
                             Class::malformed, -1});
            }
            expect_case({"2 tags, exactly whole", cut(two, 22), Class::non_ip, -1});
        }
        const Bytes one = eth(0x0806, {outer});
        for (size_t len = 14; len < 18; ++len) {
            expect_case({"1 tag cut at " + std::to_string(len), cut(one, len), Class::malformed, -1});
        }
        expect_case({"1 tag, exactly whole", one, Class::non_ip, -1});
    }
}

// IPv4 options cut at every byte between the 20-byte header and IHL*4.
TEST(RefClassifier, Ipv4OptionsCutAtEachByte) {
    for (unsigned ihl = 5; ihl <= 15; ++ihl) {
        const Bytes f = cat({eth(kIPv4, {kQ}), ipv4(6, ihl)});
        for (size_t l3 = 0; l3 < ihl * 4; ++l3) {
            expect_case({"IHL " + std::to_string(ihl) + " cut at " + std::to_string(l3),
                         cut(f, 18 + l3), Class::malformed, -1});
        }
        expect_case({"IHL " + std::to_string(ihl) + " exact", f, Class::ipv4, 6});
    }
}

// Chains of n extension headers, mixed types, each complete.
Bytes chain_frame(unsigned n, unsigned last) {
    static const unsigned types[] = {0, 43, 44, 60};
    Bytes f = eth(kIPv6);
    Bytes h = ipv6(n == 0 ? last : types[0]);
    f.insert(f.end(), h.begin(), h.end());
    for (unsigned i = 0; i < n; ++i) {
        const unsigned type = types[i % 4];
        const unsigned nh = (i + 1 < n) ? types[(i + 1) % 4] : last;
        const Bytes e = type == 44 ? frag(nh) : ext(nh, i % 3);
        f.insert(f.end(), e.begin(), e.end());
    }
    return f;
}

TEST(RefClassifier, ExtensionChainLength) {
    for (unsigned n = 0; n <= 8; ++n) {
        expect_case({"chain of " + std::to_string(n), chain_frame(n, 17), Class::ipv6, 17});
        expect_case({"chain of " + std::to_string(n) + " + payload", pad(chain_frame(n, 6), 20),
                     Class::ipv6, 6});
    }
    expect_case({"chain of 9", chain_frame(9, 17), Class::malformed, -1});
    expect_case({"chain of 10", chain_frame(10, 17), Class::malformed, -1});
    // 8 walked headers whose last one names a 9th that is not in the frame.
    Bytes eight_then_ext = chain_frame(8, 0);
    expect_case({"8 headers, 9th named but absent", eight_then_ext, Class::malformed, -1});
    // 8 walked headers, the 9th is AH: a key.
    expect_case({"8 headers then AH", chain_frame(8, 51), Class::ipv6, 51});
}

// The last header of a chain cut at each of its bytes.
TEST(RefClassifier, ExtensionHeaderCutAtEachByte) {
    for (unsigned n = 1; n <= 8; ++n) {
        const Bytes f = chain_frame(n, 6);
        const Bytes prev = chain_frame(n - 1, 0);  // same bytes up to the last header
        ASSERT_LT(prev.size(), f.size());
        for (size_t len = prev.size(); len < f.size(); ++len) {
            expect_case({"chain of " + std::to_string(n) + " cut at " + std::to_string(len),
                         cut(f, len), Class::malformed, -1});
        }
    }
}

TEST(RefClassifier, NonIpEtherTypes) {
    for (unsigned t : {0x0806u, 0x88CCu, 0x8847u, 0x8864u, 0x0000u, 0x05DCu, 0x0008u, 0xDD86u,
                       0x0801u, 0x86DCu, 0x86DEu, 0x8101u, 0x9100u, 0xFFFFu}) {
        expect_case({"EtherType " + std::to_string(t), pad(eth(t), 46, 0x45), Class::non_ip, -1});
        expect_case({"EtherType " + std::to_string(t) + " after 2 tags",
                     pad(eth(t, {kAD, kQ}), 46, 0x60), Class::non_ip, -1});
    }
}

}  // namespace
