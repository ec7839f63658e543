// Frame generator for the differential test. Everything here is integer
// arithmetic on an own PRNG, so a seed reproduces the same frames anywhere.
//
// Mix (per 1000 frames, before mutation):
//   350 well-formed IPv4 (IHL 5..15 with options, random total length,
//       fragments, tunnels), 360 well-formed IPv6 (extension chains of 0..10
//       headers from {0,43,44,60}), 110 non-IP EtherTypes (ARP, LLDP, MPLS,
//       802.3 lengths, near misses of the IP/VLAN values), 80 IPv4 edge cases
//       (IHL 0..4, version != 4, options cut off), 50 IPv6 edge cases
//       (version != 6, 40-byte header cut off), 40 garbage, 10 frames < 14 bytes.
// Built frames carry 0/1/2/3 VLAN tags in 62/18/16/4 % (0x8100/0x88a8 mixed).
// Mutations, independently: truncation (250/1000; aimed at header boundaries,
// at 14..80 bytes, anywhere, or below 14), 1..4 bit flips in the first 100
// bytes (120/1000), a run of garbage bytes (60/1000).
#include "framegen.h"

#include <algorithm>

namespace tcdref {

namespace {

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

constexpr size_t kEthLen = 14;
constexpr unsigned kVlanTpids[] = {0x8100, 0x88A8};

constexpr unsigned kExtHeaders[] = {0, 43, 44, 60};

}  // namespace

FrameGen::FrameGen(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : s_) s = splitmix64(x);
}

uint64_t FrameGen::u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

uint64_t FrameGen::below(uint64_t n) {
    // Plain modulo: deterministic everywhere; the bias is below 2^-47 for the
    // n used here (at most 65536).
    return u64() % n;
}

uint64_t FrameGen::range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }

bool FrameGen::per_mille(unsigned p) { return below(1000) < p; }

uint8_t FrameGen::byte() { return static_cast<uint8_t>(u64() >> 56); }

void FrameGen::put_random(Bytes& f, size_t n) {
    for (size_t i = 0; i < n; ++i) f.push_back(byte());
}

void FrameGen::put16(Bytes& f, unsigned v) {
    f.push_back(static_cast<uint8_t>(v >> 8));
    f.push_back(static_cast<uint8_t>(v));
}

// How many payload bytes to add to a frame that already has `used` bytes:
// often none (the frame ends exactly at a header end), mostly small.
size_t FrameGen::payload_len(size_t used) {
    if (used >= kMaxFrameLen) return 0;
    const size_t room = kMaxFrameLen - used;
    const uint64_t r = below(100);
    if (r < 20) return 0;
    if (r < 75) return below(std::min<size_t>(room, 100) + 1);
    return below(room + 1);
}

unsigned FrameGen::vlan_tag_count() {
    const uint64_t r = below(100);
    if (r < 62) return 0;
    if (r < 80) return 1;
    if (r < 96) return 2;
    return 3;
}

void FrameGen::ethernet(Bytes& f, std::vector<size_t>& cuts, unsigned ethertype, unsigned tags) {
    put_random(f, 12);  // destination and source MAC
    for (unsigned i = 0; i < tags; ++i) {
        put16(f, pick(kVlanTpids));
        cuts.push_back(f.size());
        put16(f, static_cast<unsigned>(below(0x10000)));  // TCI
        cuts.push_back(f.size());
    }
    put16(f, ethertype);
    cuts.push_back(f.size());
}

unsigned FrameGen::ipv4_protocol() {
    static constexpr unsigned common[] = {6,  17, 1,  47, 4,   41, 50, 51, 132,
                                          58, 0,  43, 44, 60,  2,  89, 103, 255};
    if (per_mille(750)) return pick(common);
    return static_cast<unsigned>(below(256));
}

unsigned FrameGen::ipv6_final_next_header() {
    static constexpr unsigned common[] = {51, 59, 58, 6, 17, 1, 4, 41, 47, 50, 132, 135, 139, 255};
    unsigned nh;
    if (per_mille(750)) return pick(common);
    do {
        nh = static_cast<unsigned>(below(256));
    } while (nh == 0 || nh == 43 || nh == 44 || nh == 60);
    return nh;
}

void FrameGen::ipv4_header(Bytes& f, std::vector<size_t>& cuts, unsigned version, unsigned ihl,
                           unsigned protocol) {
    f.push_back(static_cast<uint8_t>((version << 4) | (ihl & 0x0F)));
    f.push_back(byte());  // DSCP/ECN
    // Total length: usually plausible, sometimes anything.
    put16(f, per_mille(700) ? static_cast<unsigned>(range(20, 1500))
                            : static_cast<unsigned>(below(0x10000)));
    put16(f, static_cast<unsigned>(below(0x10000)));  // identification
    // Flags + fragment offset: a quarter are fragments (MF and/or offset).
    unsigned frag = 0;
    const uint64_t r = below(100);
    if (r < 40) {
        frag = 0x4000;  // DF
    } else if (r < 52) {
        frag = 0x2000;  // MF, first fragment
    } else if (r < 64) {
        frag = 0x2000 | static_cast<unsigned>(range(1, 0x1FFF));  // middle fragment
    } else if (r < 76) {
        frag = static_cast<unsigned>(range(1, 0x1FFF));  // last fragment
    } else if (r < 80) {
        frag = static_cast<unsigned>(below(0x10000));  // anything
    }
    put16(f, frag);
    f.push_back(byte());  // TTL
    f.push_back(static_cast<uint8_t>(protocol));
    put_random(f, 2 + 4 + 4);  // checksum, source, destination
    cuts.push_back(f.size());  // end of the fixed 20 bytes
    if (ihl > 5) {
        put_random(f, (ihl - 5) * 4);  // options
        cuts.push_back(f.size());
    }
}

// Payload after an IPv4 header: for tunnels, an inner header that a wrong
// classifier might pick up instead of the outer protocol.
void FrameGen::ipv4_payload(Bytes& f, unsigned protocol) {
    if (f.size() < kMaxFrameLen && per_mille(500)) {
        if (protocol == 4 && f.size() + 20 <= kMaxFrameLen) {  // IPv4 in IPv4
            f.push_back(0x45);
            put_random(f, 8);
            f.push_back(static_cast<uint8_t>(ipv4_protocol()));
            put_random(f, 10);
        } else if (protocol == 41 && f.size() + 40 <= kMaxFrameLen) {  // 6in4
            f.push_back(0x60);
            put_random(f, 5);
            f.push_back(static_cast<uint8_t>(per_mille(500) ? pick(kExtHeaders) : byte()));
            put_random(f, 33);
        } else if (protocol == 47 && f.size() + 4 <= kMaxFrameLen) {  // GRE
            put16(f, 0);
            put16(f, per_mille(500) ? 0x0800 : 0x86DD);
        }
    }
    put_random(f, payload_len(f.size()));
}

// IPv6 fixed header plus `chain_len` extension headers from {0,43,44,60},
// ending in a next header outside that set.
void FrameGen::ipv6_header(Bytes& f, std::vector<size_t>& cuts, unsigned version,
                           unsigned chain_len) {
    std::vector<unsigned> chain;
    for (unsigned i = 0; i < chain_len; ++i) chain.push_back(pick(kExtHeaders));
    const unsigned last = ipv6_final_next_header();
    const unsigned first_nh = chain.empty() ? last : chain[0];

    f.push_back(static_cast<uint8_t>((version << 4) | (byte() & 0x0F)));
    put_random(f, 3);  // traffic class / flow label
    put16(f, per_mille(700) ? static_cast<unsigned>(below(1561))
                            : static_cast<unsigned>(below(0x10000)));  // payload length
    f.push_back(static_cast<uint8_t>(first_nh));
    f.push_back(byte());       // hop limit
    put_random(f, 32);         // source, destination
    cuts.push_back(f.size());  // end of the fixed 40 bytes

    for (size_t i = 0; i < chain.size(); ++i) {
        const unsigned nh = (i + 1 < chain.size()) ? chain[i + 1] : last;
        const size_t start = f.size();
        f.push_back(static_cast<uint8_t>(nh));
        if (chain[i] == 44) {
            // Fragment: fixed 8 bytes; its second byte is reserved, so a random
            // value there catches a classifier that reads it as a length.
            put_random(f, 7);
        } else {
            // Keep room for the remaining headers at their minimum 8 bytes.
            const size_t remaining = chain.size() - i - 1;
            const size_t used = f.size() - 1 + 8 * remaining;
            const size_t max_units = used + 8 <= kMaxFrameLen ? (kMaxFrameLen - used) / 8 - 1 : 0;
            size_t units;  // hdr_ext_len
            const uint64_t r = below(100);
            if (r < 60) {
                units = below(3);
            } else if (r < 90) {
                units = range(3, 15);
            } else {
                units = range(16, 255);
            }
            units = std::min(units, std::min<size_t>(max_units, 255));
            f.push_back(static_cast<uint8_t>(units));
            put_random(f, (units + 1) * 8 - 2);
        }
        cuts.push_back(start + 1);  // only the next-header byte present
        cuts.push_back(f.size());
    }
    if (last == 51 && f.size() + 12 <= kMaxFrameLen) {
        // AH is a key, not walked; give it a next header that would keep a
        // wrong walker going.
        f.push_back(static_cast<uint8_t>(per_mille(600) ? pick(kExtHeaders) : byte()));
        f.push_back(static_cast<uint8_t>(below(8)));
        put_random(f, 10);
    }
}

FrameGen::Bytes FrameGen::well_formed_ipv4(std::vector<size_t>& cuts) {
    Bytes f;
    ethernet(f, cuts, 0x0800, vlan_tag_count());
    const unsigned ihl = per_mille(600) ? 5 : static_cast<unsigned>(range(6, 15));
    const unsigned protocol = ipv4_protocol();
    ipv4_header(f, cuts, 4, ihl, protocol);
    ipv4_payload(f, protocol);
    return f;
}

FrameGen::Bytes FrameGen::well_formed_ipv6(std::vector<size_t>& cuts) {
    Bytes f;
    ethernet(f, cuts, 0x86DD, vlan_tag_count());
    unsigned chain_len;
    const uint64_t r = below(100);
    if (r < 25) {
        chain_len = 0;
    } else if (r < 89) {
        chain_len = static_cast<unsigned>(range(1, 8));
    } else {
        chain_len = static_cast<unsigned>(range(9, 10));
    }
    ipv6_header(f, cuts, 6, chain_len);
    put_random(f, payload_len(f.size()));
    return f;
}

FrameGen::Bytes FrameGen::non_ip(std::vector<size_t>& cuts) {
    static constexpr unsigned types[] = {
        0x0806, 0x88CC, 0x8847, 0x8848, 0x8863, 0x8864, 0x88E5, 0x88F7, 0x9100, 0x9200,
        0x8035, 0x88B5, 0x22F0, 0x893F, 0x0842, 0x6003, 0x8137, 0x88E7,
        // near misses of the values a classifier acts on (bytes swapped, off by one)
        0x0008, 0xDD86, 0x0081, 0xA888, 0x0801, 0x07FF, 0x86DC, 0x86DE, 0x8101, 0x80FF,
        0x88A7, 0x88A9, 0x0600, 0x05FF};
    unsigned type;
    const uint64_t r = below(100);
    if (r < 20) {
        type = 0x0806;
    } else if (r < 65) {
        type = pick(types);
    } else if (r < 75) {
        type = static_cast<unsigned>(below(0x0600));  // 802.3 length field
    } else {
        do {
            type = static_cast<unsigned>(below(0x10000));
        } while (type == 0x0800 || type == 0x86DD || type == 0x8100 || type == 0x88A8);
    }
    Bytes f;
    ethernet(f, cuts, type, vlan_tag_count());
    if (type == 0x0806) {
        put16(f, 1);       // hardware type Ethernet
        put16(f, 0x0800);  // protocol type IPv4: must not make it IP
        f.push_back(6);
        f.push_back(4);
        put16(f, static_cast<unsigned>(range(1, 2)));
        put_random(f, 20);
    } else if (type == 0x8864 && f.size() + 8 <= kMaxFrameLen) {
        // PPPoE session carrying IPv4 (PPP protocol 0x0021): still non-ip.
        put_random(f, 6);
        put16(f, 0x0021);
        f.push_back(0x45);
    }
    put_random(f, payload_len(f.size()));
    return f;
}

FrameGen::Bytes FrameGen::ipv4_edge(std::vector<size_t>& cuts) {
    Bytes f;
    ethernet(f, cuts, 0x0800, vlan_tag_count());
    const size_t l3 = f.size();
    const uint64_t r = below(3);
    if (r == 0) {
        unsigned version;
        do {
            version = static_cast<unsigned>(below(16));
        } while (version == 4);
        if (per_mille(300)) version = 6;
        const unsigned ihl = per_mille(500) ? 5 : static_cast<unsigned>(below(16));
        ipv4_header(f, cuts, version, ihl, ipv4_protocol());
        put_random(f, payload_len(f.size()));
    } else if (r == 1) {
        const unsigned ihl = static_cast<unsigned>(below(5));  // 0..4
        ipv4_header(f, cuts, 4, ihl, ipv4_protocol());
        put_random(f, payload_len(f.size()));
    } else {
        // Options run past the end of the frame (20 <= len < IHL*4).
        const unsigned ihl = static_cast<unsigned>(range(6, 15));
        ipv4_header(f, cuts, 4, ihl, ipv4_protocol());
        f.resize(l3 + range(20, ihl * 4 - 1));
    }
    return f;
}

FrameGen::Bytes FrameGen::ipv6_edge(std::vector<size_t>& cuts) {
    Bytes f;
    ethernet(f, cuts, 0x86DD, vlan_tag_count());
    const size_t l3 = f.size();
    if (per_mille(600)) {
        unsigned version;
        do {
            version = static_cast<unsigned>(below(16));
        } while (version == 6);
        if (per_mille(300)) version = 4;
        ipv6_header(f, cuts, version, static_cast<unsigned>(below(4)));
        put_random(f, payload_len(f.size()));
    } else {
        // The fixed header cut off: 0..39 bytes of it.
        ipv6_header(f, cuts, 6, static_cast<unsigned>(below(3)));
        f.resize(l3 + below(40));
    }
    return f;
}

FrameGen::Bytes FrameGen::garbage() {
    Bytes f;
    const size_t len = per_mille(700) ? range(kEthLen, 120) : range(kEthLen, kMaxFrameLen);
    put_random(f, len);
    if (per_mille(600)) {
        static constexpr unsigned types[] = {0x0800, 0x86DD, 0x8100, 0x88A8};
        const unsigned t = pick(types);
        f[12] = static_cast<uint8_t>(t >> 8);
        f[13] = static_cast<uint8_t>(t);
    }
    return f;
}

FrameGen::Bytes FrameGen::tiny() {
    Bytes f;
    put_random(f, below(kEthLen));  // 0..13 bytes
    return f;
}

void FrameGen::mutate(Bytes& f, const std::vector<size_t>& cuts) {
    if (per_mille(250) && !f.empty()) {
        size_t target;
        const uint64_t r = below(100);
        if (r < 45 && !cuts.empty()) {
            // Around a header boundary: at it, or up to 3 bytes either side.
            const size_t c = cuts[below(cuts.size())];
            const size_t delta = below(7);
            target = c + delta >= 3 ? c + delta - 3 : 0;
            if (target < kEthLen && per_mille(700)) target = c;  // keep most >= 14
        } else if (r < 80) {
            target = range(kEthLen, 80);
        } else if (r < 97) {
            target = range(kEthLen, f.size());
        } else {
            target = below(kEthLen);
        }
        if (target < f.size()) f.resize(target);
    }
    if (per_mille(120) && !f.empty()) {
        const size_t span = std::min<size_t>(f.size(), 100);
        const unsigned flips = static_cast<unsigned>(range(1, 4));
        for (unsigned i = 0; i < flips; ++i) {
            const size_t bit = below(span * 8);
            f[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        }
    }
    if (per_mille(60) && f.size() > 12) {
        // A run of garbage, usually in the headers.
        const size_t limit = per_mille(800) ? std::min<size_t>(f.size(), 100) : f.size();
        const size_t off = range(12, limit - 1);
        const size_t n = std::min<size_t>(range(1, 16), f.size() - off);
        for (size_t i = 0; i < n; ++i) f[off + i] = byte();
    }
}

std::vector<uint8_t> FrameGen::next() {
    std::vector<size_t> cuts;
    Bytes f;
    const uint64_t r = below(1000);
    if (r < 350) {
        f = well_formed_ipv4(cuts);
    } else if (r < 710) {
        f = well_formed_ipv6(cuts);
    } else if (r < 820) {
        f = non_ip(cuts);
    } else if (r < 900) {
        f = ipv4_edge(cuts);
    } else if (r < 950) {
        f = ipv6_edge(cuts);
    } else if (r < 990) {
        f = garbage();
    } else {
        return tiny();
    }
    mutate(f, cuts);
    if (f.size() > kMaxFrameLen) f.resize(kMaxFrameLen);
    return f;
}

}  // namespace tcdref
