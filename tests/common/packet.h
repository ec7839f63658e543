// Hand-built frames for fixtures: each helper writes one header, in network
// byte order, and frames are the concatenation.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace tcdtest {

using Bytes = std::vector<uint8_t>;

inline Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

inline void put16(Bytes& b, uint16_t v) {
    b.push_back(uint8_t(v >> 8));
    b.push_back(uint8_t(v));
}

// Ethernet header; each tpid adds a VLAN tag (TPID, then TCI) before the
// final EtherType.
inline Bytes eth(uint16_t ethertype, std::initializer_list<uint16_t> tpids = {}) {
    Bytes b = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
    uint16_t vid = 100;
    for (uint16_t tpid : tpids) {
        put16(b, tpid);
        put16(b, vid++);
    }
    put16(b, ethertype);
    return b;
}

// IPv4 header with ihl*4 bytes (options are NOPs) followed by payload bytes.
inline Bytes ipv4(uint8_t proto, uint8_t ihl = 5, size_t payload = 20, uint8_t version = 4) {
    Bytes b;
    b.push_back(uint8_t(version << 4 | (ihl & 0xf)));
    b.push_back(0);
    put16(b, uint16_t(ihl * 4 + payload));
    put16(b, 1);       // id
    put16(b, 0x4000);  // DF
    b.push_back(64);
    b.push_back(proto);
    put16(b, 0);  // checksum: the dispatcher does not look
    Bytes addrs = {10, 0, 0, 1, 10, 0, 0, 2};
    b.insert(b.end(), addrs.begin(), addrs.end());
    for (int i = 20; i < ihl * 4; i++) b.push_back(1);
    b.resize(b.size() + payload, 0xab);
    return b;
}

// An IPv4 fragment: ipv4() with its flags/fragment-offset field set (MF is
// 0x2000, the offset counts 8-byte units in the low 13 bits).
inline Bytes ipv4_frag(uint8_t proto, uint16_t flags_offset, size_t payload = 20) {
    Bytes b = ipv4(proto, 5, payload);
    b[6] = uint8_t(flags_offset >> 8);
    b[7] = uint8_t(flags_offset);
    return b;
}

struct Ext {
    uint8_t type;     // 0, 43, 44, 60 (or anything, to build odd chains)
    uint8_t len = 0;  // hdr_ext_len: (len + 1) * 8 bytes; Fragment is always 8
};

// IPv6 header, then the extension chain, then payload bytes; `last` is the
// next-header value after the chain.
inline Bytes ipv6(uint8_t last, std::initializer_list<Ext> exts = {}, size_t payload = 20, uint8_t version = 6) {
    Bytes b;
    std::vector<Ext> chain(exts);
    b.push_back(uint8_t(version << 4));
    b.push_back(0);
    b.push_back(0);
    b.push_back(0);
    size_t ext_bytes = 0;
    for (const auto& e : chain) ext_bytes += e.type == 44 ? 8 : (size_t(e.len) + 1) * 8;
    put16(b, uint16_t(ext_bytes + payload));
    b.push_back(chain.empty() ? last : chain[0].type);
    b.push_back(64);
    for (int i = 0; i < 32; i++) b.push_back(i < 16 ? (i == 0 ? 0xfd : 1) : (i == 16 ? 0xfd : 2));
    for (size_t i = 0; i < chain.size(); i++) {
        uint8_t next = i + 1 < chain.size() ? chain[i + 1].type : last;
        size_t n = chain[i].type == 44 ? 8 : (size_t(chain[i].len) + 1) * 8;
        b.push_back(next);
        b.push_back(chain[i].type == 44 ? 0 : chain[i].len);
        for (size_t k = 2; k < n; k++) b.push_back(k == 2 && chain[i].type != 44 ? 1 : 0);  // PadN-ish
    }
    b.resize(b.size() + payload, 0xcd);
    return b;
}

inline Bytes truncate(Bytes b, size_t n) {
    b.resize(n);
    return b;
}

}  // namespace tcdtest
