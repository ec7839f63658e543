// What an Ethernet frame's first bytes say, for monitor's output: VLAN tags
// (up to 2, 802.1Q or 802.1ad), IPv4/IPv6 addresses (IPv6 extension headers
// walked), TCP/UDP/SCTP ports, ICMP/ICMPv6 type and code. Reads only the
// captured bytes; a capture that ends inside the headers says where.
//
// summarize_frame gives the fields (monitor -j's); frame_summary says them
// in one tcpdump-like line (monitor's plain line, -w's comments):
//
//   "IP 10.0.0.1.40000 > 10.0.0.2.80: tcp, length 74"
//   "vlan 100, vlan 200, IP6 fd00::1.53 > fd00::2.5353: udp, length 90"
//   "IP 10.0.0.1 > 10.0.0.2: icmp type 8 code 0, length 98"
//   "IP 10.0.0.1 > 10.0.0.2: proto 47, length 60"
//   "IP 10.0.0.1 > 10.0.0.2: tcp, fragment, length 1514"   (not the first fragment: no ports)
//   "ARP, length 42"
//   "ethertype 0x88cc, length 60"
//   "IP truncated, length 20"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tcd {

// Where the capture ended inside the headers (none: it did not).
enum class FrameCut { none, ethernet, vlan, ip, ip_header, ip6, ip6_header, l4 };

struct FrameSummary {
    std::vector<uint16_t> vlans;  // VLAN ids, outer first
    std::string ethertype;        // "ipv4", "ipv6", "arp", or "0x88cc"; "" when the Ethernet header is cut
    std::string src, dst;         // addresses ("" when not IP, or cut before them)
    std::optional<uint8_t> proto;  // the IP protocol / IPv6 upper-layer header
    std::string l4;                // "tcp", "udp", "sctp", "icmp", "icmp6", another protocol's number; "" none
    std::optional<uint16_t> sport, dport;
    std::optional<uint8_t> icmp_type, icmp_code;
    bool fragment = false;  // not the first fragment: no transport header
    FrameCut cut = FrameCut::none;
    bool truncated() const { return cut != FrameCut::none; }
};

FrameSummary summarize_frame(const uint8_t* data, size_t caplen);

// The line; wire_len: the frame's length on the wire.
std::string frame_summary(const FrameSummary& s, uint32_t wire_len);
// data: caplen captured bytes; wire_len 0 = caplen.
std::string frame_summary(const uint8_t* data, size_t caplen, uint32_t wire_len = 0);

}  // namespace tcd
