// The netlink filter dump (RTM_GETTFILTER) of a clsact qdisc: every filter in
// one direction of an interface, as `tc filter show` lists them (the model is
// bpftool's netlink_dumper.c). Must be called inside the interface's
// network namespace.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace tcd {

struct TcFilter {
    uint32_t handle = 0;
    uint32_t priority = 0;
    std::string kind;      // "bpf", "u32", "flower", ...
    uint32_t prog_id = 0;  // bpf filters
    std::string prog_name;
};

// One rtnetlink dump in the caller's namespace: sends req (a request with
// NLM_F_DUMP, req_len bytes) and calls each(nh) for every reply of
// reply_type until NLMSG_DONE. `what` names the dump in errors.
Result<> netlink_dump(const void* req, size_t req_len, uint16_t reply_type, const std::string& what,
                      const std::function<void(const nlmsghdr*)>& each);

// ingress: true for the clsact ingress parent, false for egress.
Result<std::vector<TcFilter>> dump_tc_filters(uint32_t ifindex, bool ingress);

}  // namespace tcd
