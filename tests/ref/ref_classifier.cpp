// Reference classifier: a literal transcription of docs/datapath.md,
// "Dispatch key". Plain byte offsets, one bounds check before every read.
#include "ref_classifier.h"

namespace tcdref {

namespace {

constexpr size_t kEthHeaderLen = 14;   // dst MAC 6 + src MAC 6 + EtherType 2
constexpr size_t kVlanTagLen = 4;      // TCI 2 + inner EtherType 2
constexpr int kMaxVlanTags = 2;
constexpr size_t kIpv4MinHeaderLen = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr int kMaxIpv6ExtHeaders = 8;
constexpr size_t kIpv6FragmentHeaderLen = 8;

constexpr unsigned kEtherTypeIpv4 = 0x0800;
constexpr unsigned kEtherTypeIpv6 = 0x86DD;
constexpr unsigned kEtherTypeVlan = 0x8100;   // 802.1Q
constexpr unsigned kEtherTypeQinQ = 0x88A8;   // 802.1ad

constexpr unsigned kNextHopByHop = 0;
constexpr unsigned kNextRouting = 43;
constexpr unsigned kNextFragment = 44;
constexpr unsigned kNextDestOpts = 60;

RefResult malformed() { return RefResult{Class::malformed, -1}; }
RefResult non_ip() { return RefResult{Class::non_ip, -1}; }

// True when the len bytes starting at off lie inside a frame of frame_len
// bytes. Written so that it cannot overflow.
bool inside(size_t off, size_t len, size_t frame_len) {
    return off <= frame_len && len <= frame_len - off;
}

unsigned be16(const uint8_t* p) { return (unsigned{p[0]} << 8) | unsigned{p[1]}; }

bool is_vlan(unsigned ethertype) {
    return ethertype == kEtherTypeVlan || ethertype == kEtherTypeQinQ;
}

bool is_walked_ext_header(unsigned next_header) {
    return next_header == kNextHopByHop || next_header == kNextRouting ||
           next_header == kNextFragment || next_header == kNextDestOpts;
}

// Rule 3. off = offset of the IPv4 header in the frame.
RefResult classify_ipv4(const uint8_t* data, size_t len, size_t off) {
    if (!inside(off, kIpv4MinHeaderLen, len)) return malformed();
    const unsigned version = data[off] >> 4;
    const unsigned ihl = data[off] & 0x0F;
    if (version != 4) return malformed();
    if (ihl < 5) return malformed();
    if (!inside(off, size_t{ihl} * 4, len)) return malformed();
    const unsigned protocol = data[off + 9];
    return RefResult{Class::ipv4, static_cast<int>(protocol)};
}

// Rule 4. off = offset of the IPv6 header in the frame.
RefResult classify_ipv6(const uint8_t* data, size_t len, size_t off) {
    if (!inside(off, kIpv6HeaderLen, len)) return malformed();
    const unsigned version = data[off] >> 4;
    if (version != 6) return malformed();

    unsigned next_header = data[off + 6];
    size_t pos = off + kIpv6HeaderLen;  // start of the next header in the chain
    int walked = 0;
    while (is_walked_ext_header(next_header)) {
        if (walked == kMaxIpv6ExtHeaders) return malformed();  // a 9th one
        // Both the next-header byte and hdr_ext_len must be readable.
        if (!inside(pos, 2, len)) return malformed();
        size_t ext_len;
        if (next_header == kNextFragment) {
            ext_len = kIpv6FragmentHeaderLen;
        } else {
            const unsigned hdr_ext_len = data[pos + 1];
            ext_len = (size_t{hdr_ext_len} + 1) * 8;
        }
        if (!inside(pos, ext_len, len)) return malformed();
        next_header = data[pos];
        pos += ext_len;
        ++walked;
    }
    return RefResult{Class::ipv6, static_cast<int>(next_header)};
}

}  // namespace

const char* class_name(Class c) {
    switch (c) {
        case Class::ipv4: return "ipv4";
        case Class::ipv6: return "ipv6";
        case Class::non_ip: return "non-ip";
        case Class::malformed: return "malformed";
    }
    return "?";
}

RefResult classify(const uint8_t* data, size_t len) {
    // Rule 1.
    if (len < kEthHeaderLen) return malformed();

    // Rule 2. type_off = offset of the EtherType field currently in effect.
    size_t type_off = 12;
    unsigned ethertype = be16(data + type_off);
    for (int tags = 0; tags < kMaxVlanTags && is_vlan(ethertype); ++tags) {
        const size_t tag_off = type_off + 2;  // the 4-byte tag follows the EtherType
        if (!inside(tag_off, kVlanTagLen, len)) return malformed();
        type_off = tag_off + 2;               // the tag's inner EtherType
        ethertype = be16(data + type_off);
    }
    // A third tag's 0x8100/0x88a8 falls through to rule 5 as an unknown type.
    const size_t l3_off = type_off + 2;

    if (ethertype == kEtherTypeIpv4) return classify_ipv4(data, len, l3_off);
    if (ethertype == kEtherTypeIpv6) return classify_ipv6(data, len, l3_off);
    return non_ip();  // Rule 5.
}

}  // namespace tcdref
