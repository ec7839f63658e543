#include "core/frame_summary.h"

#include <arpa/inet.h>

#include <cstring>
#include <fmt/format.h>

namespace tcd {

namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

std::string addr(int family, const uint8_t* p) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, p, buf, sizeof buf);
    return buf;
}

// The transport part after "SRC > DST": ports go on the addresses.
struct L4 {
    std::string sport, dport, what;
};

L4 transport(uint8_t proto, const uint8_t* p, size_t room, bool first_fragment) {
    L4 r;
    const char* name = proto == 6 ? "tcp" : proto == 17 ? "udp" : proto == 132 ? "sctp" : nullptr;
    if (name) {
        r.what = name;
        if (!first_fragment)
            r.what += ", fragment";
        else if (room < 4)
            r.what += " truncated";
        else
            r.sport = fmt::format(".{}", be16(p)), r.dport = fmt::format(".{}", be16(p + 2));
    } else if (proto == 1 || proto == 58) {
        r.what = proto == 1 ? "icmp" : "icmp6";
        if (!first_fragment)
            r.what += ", fragment";
        else if (room < 2)
            r.what += " truncated";
        else
            r.what += fmt::format(" type {} code {}", p[0], p[1]);
    } else {
        r.what = fmt::format("proto {}", proto);
    }
    return r;
}

}  // namespace

std::string frame_summary(const uint8_t* data, size_t caplen, uint32_t wire_len) {
    if (wire_len == 0) wire_len = static_cast<uint32_t>(caplen);
    const std::string len = fmt::format(", length {}", wire_len);
    if (caplen < 14) return "ethernet truncated" + len;
    std::string out;
    size_t off = 12;
    uint16_t type = be16(data + off);
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88A8); tags++) {
        if (caplen < off + 6) return out + "vlan truncated" + len;
        out += fmt::format("vlan {}, ", be16(data + off + 2) & 0x0FFF);
        off += 4;
        type = be16(data + off);
    }
    off += 2;
    const uint8_t* p = data + off;
    const size_t room = caplen - off;
    if (type == 0x0800) {
        if (room < 20 || (p[0] >> 4) != 4) return out + "IP truncated" + len;
        const size_t ihl = size_t(p[0] & 0x0F) * 4;
        const bool first = (be16(p + 6) & 0x1FFF) == 0;
        L4 l4 = ihl >= 20 && room >= ihl ? transport(p[9], p + ihl, room - ihl, first)
                                         : L4{{}, {}, "header truncated"};
        return out + fmt::format("IP {}{} > {}{}: {}", addr(AF_INET, p + 12), l4.sport, addr(AF_INET, p + 16),
                                 l4.dport, l4.what) + len;
    }
    if (type == 0x86DD) {
        if (room < 40 || (p[0] >> 4) != 6) return out + "IP6 truncated" + len;
        // The next header after the common extension headers (as tcd's classifier walks them).
        uint8_t nh = p[6];
        size_t at = 40;
        bool first = true;
        for (int i = 0; i < 8; i++) {
            if (nh == 0 || nh == 43 || nh == 60 || nh == 51) {  // hop-by-hop, routing, dest opts, AH
                if (room < at + 2) return out + fmt::format("IP6 {} > {}: truncated", addr(AF_INET6, p + 8),
                                                            addr(AF_INET6, p + 24)) + len;
                const size_t hlen = nh == 51 ? (size_t(p[at + 1]) + 2) * 4 : (size_t(p[at + 1]) + 1) * 8;
                nh = p[at];
                at += hlen;
            } else if (nh == 44) {  // fragment
                if (room < at + 8) return out + fmt::format("IP6 {} > {}: truncated", addr(AF_INET6, p + 8),
                                                            addr(AF_INET6, p + 24)) + len;
                first = (be16(p + at + 2) & 0xFFF8) == 0;
                nh = p[at];
                at += 8;
            } else {
                break;
            }
        }
        L4 l4 = room >= at ? transport(nh, p + at, room - at, first) : L4{{}, {}, "truncated"};
        return out + fmt::format("IP6 {}{} > {}{}: {}", addr(AF_INET6, p + 8), l4.sport, addr(AF_INET6, p + 24),
                                 l4.dport, l4.what) + len;
    }
    if (type == 0x0806) return out + "ARP" + len;
    return out + fmt::format("ethertype 0x{:04x}", type) + len;
}

}  // namespace tcd
