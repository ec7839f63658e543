#include "core/tc_filters.h"

#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fd.h"

namespace tcd {
namespace {

// The attributes of one netlink message part, by type (the last one wins).
void parse_attrs(const rtattr* a, int len, const rtattr** tb, int max) {
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type <= max) tb[a->rta_type] = a;
}

std::string attr_string(const rtattr* a) {
    const char* p = static_cast<const char*>(RTA_DATA(a));
    return std::string(p, strnlen(p, RTA_PAYLOAD(a)));
}

TcFilter parse_filter(const nlmsghdr* nh) {
    const auto* t = static_cast<const tcmsg*>(NLMSG_DATA(nh));
    TcFilter f;
    f.handle = t->tcm_handle;
    f.priority = TC_H_MAJ(t->tcm_info) >> 16;
    const rtattr* tb[TCA_MAX + 1] = {};
    parse_attrs(TCA_RTA(t), static_cast<int>(TCA_PAYLOAD(nh)), tb, TCA_MAX);
    if (tb[TCA_KIND]) f.kind = attr_string(tb[TCA_KIND]);
    if (f.kind == "bpf" && tb[TCA_OPTIONS]) {
        const rtattr* ob[TCA_BPF_MAX + 1] = {};
        parse_attrs(static_cast<const rtattr*>(RTA_DATA(tb[TCA_OPTIONS])),
                    static_cast<int>(RTA_PAYLOAD(tb[TCA_OPTIONS])), ob, TCA_BPF_MAX);
        if (ob[TCA_BPF_ID] && RTA_PAYLOAD(ob[TCA_BPF_ID]) >= sizeof(uint32_t))
            std::memcpy(&f.prog_id, RTA_DATA(ob[TCA_BPF_ID]), sizeof f.prog_id);
        if (ob[TCA_BPF_NAME]) f.prog_name = attr_string(ob[TCA_BPF_NAME]);
    }
    return f;
}

}  // namespace

Result<> netlink_dump(const void* req, size_t req_len, uint16_t reply_type, const std::string& what,
                      const std::function<void(const nlmsghdr*)>& each) {
    UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!s) return fail_errno("open a netlink socket", errno);
    if (::send(s.get(), req, req_len, 0) < 0) return fail_errno(what, errno);
    alignas(nlmsghdr) static thread_local char buf[65536];
    for (;;) {
        ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
        if (n < 0) return fail_errno(what, errno);
        if (n == 0) return fail(what, "netlink closed the socket");
        for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<unsigned>(n));
             nh = NLMSG_NEXT(nh, n)) {
            if (nh->nlmsg_type == NLMSG_DONE) return {};
            if (nh->nlmsg_type == NLMSG_ERROR) {
                const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nh));
                if (e->error == 0) continue;
                return fail_errno(what, -e->error);
            }
            if (nh->nlmsg_type == reply_type) each(nh);
        }
    }
}

Result<std::vector<TcFilter>> dump_tc_filters(uint32_t ifindex, bool ingress) {
    struct {
        nlmsghdr nh;
        tcmsg t;
    } req{};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
    req.nh.nlmsg_type = RTM_GETTFILTER;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = 1;
    req.t.tcm_family = AF_UNSPEC;
    req.t.tcm_ifindex = static_cast<int>(ifindex);
    req.t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
    std::vector<TcFilter> out;
    auto r = netlink_dump(&req, req.nh.nlmsg_len, RTM_NEWTFILTER, "dump tc filters", [&](const nlmsghdr* nh) {
        TcFilter f = parse_filter(nh);
        if (f.handle != 0) out.push_back(std::move(f));  // handle 0: the chain's head entry
    });
    if (!r) return propagate(r);
    return out;
}

}  // namespace tcd
