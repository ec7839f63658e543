#include "core/frame_summary.h"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace tcd {

namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

std::string addr(int family, const uint8_t* p) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, p, buf, sizeof buf);
    return buf;
}

// The transport header at p (room bytes captured), for the first fragment.
void transport(FrameSummary& s, uint8_t proto, const uint8_t* p, size_t room) {
    s.proto = proto;
    const bool ports = proto == 6 || proto == 17 || proto == 132;
    const bool icmp = proto == 1 || proto == 58;
    s.l4 = proto == 6 ? "tcp" : proto == 17 ? "udp" : proto == 132 ? "sctp" : proto == 1 ? "icmp"
         : proto == 58 ? "icmp6" : std::to_string(proto);
    if (s.fragment || !(ports || icmp)) return;
    if (room < (ports ? 4u : 2u)) {
        s.cut = FrameCut::l4;
    } else if (ports) {
        s.sport = be16(p), s.dport = be16(p + 2);
    } else {
        s.icmp_type = p[0], s.icmp_code = p[1];
    }
}

}  // namespace

FrameSummary summarize_frame(const uint8_t* data, size_t caplen) {
    FrameSummary s;
    if (caplen < 14) {
        s.cut = FrameCut::ethernet;
        return s;
    }
    size_t off = 12;
    uint16_t type = be16(data + off);
    for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88A8); tags++) {
        if (caplen < off + 6) {
            s.cut = FrameCut::vlan;
            return s;
        }
        s.vlans.push_back(be16(data + off + 2) & 0x0FFF);
        off += 4;
        type = be16(data + off);
    }
    off += 2;
    const uint8_t* p = data + off;
    const size_t room = caplen - off;
    if (type == 0x0800) {
        s.ethertype = "ipv4";
        if (room < 20 || (p[0] >> 4) != 4) {
            s.cut = FrameCut::ip;
            return s;
        }
        s.src = addr(AF_INET, p + 12), s.dst = addr(AF_INET, p + 16);
        const size_t ihl = size_t(p[0] & 0x0F) * 4;
        s.fragment = (be16(p + 6) & 0x1FFF) != 0;
        if (ihl < 20 || room < ihl) {
            s.cut = FrameCut::ip_header;
            return s;
        }
        transport(s, p[9], p + ihl, room - ihl);
        return s;
    }
    if (type == 0x86DD) {
        s.ethertype = "ipv6";
        if (room < 40 || (p[0] >> 4) != 6) {
            s.cut = FrameCut::ip6;
            return s;
        }
        s.src = addr(AF_INET6, p + 8), s.dst = addr(AF_INET6, p + 24);
        // The upper-layer header after the extension headers (AH too).
        uint8_t nh = p[6];
        size_t at = 40;
        for (int i = 0; i < 8; i++) {
            if (nh == 0 || nh == 43 || nh == 60 || nh == 51) {  // hop-by-hop, routing, dest opts, AH
                if (room < at + 2) {
                    s.cut = FrameCut::ip6_header;
                    return s;
                }
                const size_t hlen = nh == 51 ? (size_t(p[at + 1]) + 2) * 4 : (size_t(p[at + 1]) + 1) * 8;
                nh = p[at];
                at += hlen;
            } else if (nh == 44) {  // fragment
                if (room < at + 8) {
                    s.cut = FrameCut::ip6_header;
                    return s;
                }
                s.fragment = (be16(p + at + 2) & 0xFFF8) != 0;
                nh = p[at];
                at += 8;
            } else {
                break;
            }
        }
        if (room < at) {
            s.cut = FrameCut::ip6_header;
            return s;
        }
        transport(s, nh, p + at, room - at);
        return s;
    }
    s.ethertype = type == 0x0806 ? "arp" : fmt::format("0x{:04x}", type);
    return s;
}

std::string frame_summary(const FrameSummary& s, uint32_t wire_len) {
    const std::string len = fmt::format(", length {}", wire_len);
    if (s.cut == FrameCut::ethernet) return "ethernet truncated" + len;
    std::string out;
    for (uint16_t v : s.vlans) out += fmt::format("vlan {}, ", v);
    if (s.cut == FrameCut::vlan) return out + "vlan truncated" + len;
    if (s.ethertype == "ipv4" || s.ethertype == "ipv6") {
        const bool v4 = s.ethertype == "ipv4";
        if (s.cut == (v4 ? FrameCut::ip : FrameCut::ip6)) return out + (v4 ? "IP" : "IP6") + " truncated" + len;
        std::string what;
        if (s.cut == FrameCut::ip_header) what = "header truncated";
        else if (s.cut == FrameCut::ip6_header) what = "truncated";
        else if (s.l4 == "tcp" || s.l4 == "udp" || s.l4 == "sctp" || s.l4 == "icmp" || s.l4 == "icmp6")
            what = s.l4 + (s.fragment ? ", fragment" : s.cut == FrameCut::l4 ? " truncated" : "");
        else
            what = fmt::format("proto {}", s.proto.value_or(0));
        if (s.icmp_type) what += fmt::format(" type {} code {}", *s.icmp_type, s.icmp_code.value_or(0));
        auto at = [](const std::string& a, std::optional<uint16_t> port) {
            return port ? fmt::format("{}.{}", a, *port) : a;
        };
        return out + fmt::format("{} {} > {}: {}", v4 ? "IP" : "IP6", at(s.src, s.sport), at(s.dst, s.dport), what) +
               len;
    }
    if (s.ethertype == "arp") return out + "ARP" + len;
    return out + "ethertype " + s.ethertype + len;
}

std::string frame_summary(const uint8_t* data, size_t caplen, uint32_t wire_len) {
    return frame_summary(summarize_frame(data, caplen), wire_len ? wire_len : static_cast<uint32_t>(caplen));
}

}  // namespace tcd
