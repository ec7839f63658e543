// One line about an Ethernet frame, tcpdump-like, for monitor's output:
// VLAN tags (up to 2, 802.1Q or 802.1ad), IPv4/IPv6 addresses, TCP/UDP
// ports, ICMP/ICMPv6 type and code, the length on the wire. Reads only
// the captured bytes: a frame cut short says where ("truncated").
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
#include <string>

namespace tcd {

// data: caplen captured bytes; wire_len: the frame's length on the wire
// (0 = caplen).
std::string frame_summary(const uint8_t* data, size_t caplen, uint32_t wire_len = 0);

}  // namespace tcd
