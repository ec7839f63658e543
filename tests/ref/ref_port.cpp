#include "tests/ref/ref_port.h"

namespace tcdref {
namespace {

unsigned u16_at(const uint8_t* p, size_t off) { return unsigned(p[off]) << 8 | unsigned(p[off + 1]); }

// The upper-layer header: where it starts, which protocol, and whether the
// packet is a fragment other than the first.
struct Upper {
    size_t off;
    unsigned proto;
    bool later_fragment;
};

PortResult from_upper(PortClass family, const uint8_t* d, size_t len, const Upper& u) {
    if (u.later_fragment) return {PortClass::no_port, -1};
    size_t need;
    if (u.proto == 6) need = 20;        // TCP: the fixed header
    else if (u.proto == 17) need = 8;   // UDP: the whole header
    else return {PortClass::no_port, -1};
    if (u.off + need > len) return {PortClass::no_port, -1};
    return {family, int(u16_at(d, u.off + 2))};
}

}  // namespace

const char* port_class_name(PortClass c) {
    switch (c) {
    case PortClass::ipv4: return "ipv4";
    case PortClass::ipv6: return "ipv6";
    case PortClass::non_ip: return "non-ip";
    case PortClass::malformed: return "malformed";
    case PortClass::no_port: return "no-port";
    }
    return "?";
}

PortResult classify_port(const uint8_t* d, size_t len) {
    if (len < 14) return {PortClass::malformed, -1};
    size_t off = 12;
    unsigned type = u16_at(d, off);
    off += 2;
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88a8); tags++) {
        if (off + 4 > len) return {PortClass::malformed, -1};
        type = u16_at(d, off + 2);
        off += 4;
    }
    if (type == 0x0800) {
        if (off + 20 > len) return {PortClass::malformed, -1};
        unsigned version = d[off] >> 4, ihl = d[off] & 0x0f;
        if (version != 4 || ihl < 5 || off + ihl * 4 > len) return {PortClass::malformed, -1};
        unsigned fragment_offset = u16_at(d, off + 6) & 0x1fff;
        return from_upper(PortClass::ipv4, d, len, {off + ihl * 4, d[off + 9], fragment_offset != 0});
    }
    if (type == 0x86dd) {
        if (off + 40 > len || (d[off] >> 4) != 6) return {PortClass::malformed, -1};
        unsigned next = d[off + 6];
        off += 40;
        bool later = false;
        int walked = 0;
        while (next == 0 || next == 43 || next == 44 || next == 60) {
            if (walked == 8) return {PortClass::malformed, -1};
            if (off + 2 > len) return {PortClass::malformed, -1};
            size_t hdr_len = next == 44 ? 8 : (size_t(d[off + 1]) + 1) * 8;
            if (off + hdr_len > len) return {PortClass::malformed, -1};
            if (next == 44 && (u16_at(d, off + 2) >> 3) != 0) later = true;
            next = d[off];
            off += hdr_len;
            walked++;
        }
        return from_upper(PortClass::ipv6, d, len, {off, next, later});
    }
    return {PortClass::non_ip, -1};
}

}  // namespace tcdref
