// The netlink filter dump (RTM_GETTFILTER) of a clsact qdisc: every filter in
// one direction of an interface, as `tc filter show` lists them (the model is
// bpftool's netlink_dumper.c). Must be called inside the interface's
// network namespace.
#pragma once

#include <cstdint>
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

// ingress: true for the clsact ingress parent, false for egress.
Result<std::vector<TcFilter>> dump_tc_filters(uint32_t ifindex, bool ingress);

}  // namespace tcd
