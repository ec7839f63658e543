#include "core/attach_records.h"

#include <bpf/bpf.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <cstdio>

namespace tcd {
namespace {

uint32_t direction_code(Direction d) { return d == Direction::ingress ? 1 : d == Direction::egress ? 2 : 0; }

uint32_t mode_code(const Attachment& a) {
    switch (a.mode) {
    case AttachMode::native: return XDP_MODE_NATIVE;
    case AttachMode::skb: return XDP_MODE_SKB;
    case AttachMode::hw: return XDP_MODE_HW;
    case AttachMode::tcx: return kRecordModeTcx;
    default: return XDP_MODE_UNSPEC;
    }
}

tcd_attach_key key_of(uint64_t ino, uint32_t ifindex, Direction d) {
    tcd_attach_key k{};
    k.netns_ino = ino;
    k.ifindex = ifindex;
    k.direction = direction_code(d);
    return k;
}

}  // namespace

Direction AttachRecord::direction() const {
    return key.direction == 1 ? Direction::ingress : key.direction == 2 ? Direction::egress : Direction::none;
}

AttachMode AttachRecord::mode() const {
    if (key.direction == 0) {
        switch (val.mode) {
        case XDP_MODE_NATIVE: return AttachMode::native;
        case XDP_MODE_SKB: return AttachMode::skb;
        case XDP_MODE_HW: return AttachMode::hw;
        default: return AttachMode::auto_mode;
        }
    }
    return val.mode == kRecordModeTcx ? AttachMode::tcx : AttachMode::tc;
}

std::vector<AttachRecord> records(const Instance& in) {
    std::vector<AttachRecord> out;
    if (in.attach_fd() < 0) return out;
    tcd_attach_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(in.attach_fd(), prev, &next) == 0) {
        AttachRecord r{next, {}};
        if (bpf_map_lookup_elem(in.attach_fd(), &next, &r.val) == 0) out.push_back(r);
        k = next;
        prev = &k;
    }
    return out;
}

Result<> record(const Instance& in, const Attachment& a, uint64_t ino) {
    if (in.attach_fd() < 0) return {};
    tcd_attach_key k = key_of(ino, a.ifindex, a.direction);
    tcd_attach_val v{};
    std::snprintf(v.ifname, sizeof v.ifname, "%s", a.ifname.c_str());
    std::snprintf(v.netns, sizeof v.netns, "%s", a.netns.c_str());
    v.mode = mode_code(a);
    v.multiprog = a.multiprog ? 1 : 0;
    v.made_qdisc = a.made_qdisc ? 1 : 0;
    if (bpf_map_update_elem(in.attach_fd(), &k, &v, BPF_ANY) != 0)
        return fail_errno("record attachment of " + a.ifname, errno);
    return {};
}

void forget(const Instance& in, uint64_t ino, uint32_t ifindex, Direction d) {
    if (in.attach_fd() < 0) return;
    tcd_attach_key k = key_of(ino, ifindex, d);
    bpf_map_delete_elem(in.attach_fd(), &k);
}

void forget_all(const Instance& in) {
    for (auto r : records(in))
        if (in.attach_fd() >= 0) bpf_map_delete_elem(in.attach_fd(), &r.key);
}

}  // namespace tcd
