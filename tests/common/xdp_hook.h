// What runs at an interface's XDP hook, for the kernel and e2e tests: the
// program there, and the dispatcher behind tcd's entry shim.
#pragma once

#include <bpf/bpf.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "core/progs.h"
#include "tests/common/shell.h"

namespace tcdtest {

// The program at ifname's XDP hook in namespace ns (`ip -n NS link show`),
// 0 if none.
inline uint32_t xdp_hook_id(const std::string& ns, const std::string& ifname) {
    const std::string out = sh("ip -n " + ns + " link show " + ifname).out;
    const auto at = out.find("prog/xdp id ");
    return at == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(out.substr(at + 12)));
}

// The dispatcher that the XDP hook runs: the program there, or, when that is
// tcd's entry shim (an instance attached alone), the one in its slot 0.
inline uint32_t xdp_dispatcher_at(const std::string& ns, const std::string& ifname) {
    const uint32_t id = xdp_hook_id(ns, ifname);
    auto fd = tcd::prog_fd_by_id(id);
    if (!id || !fd) return id;
    auto info = tcd::prog_info(fd->get());
    if (!info || info->name != "tcd_entry" || info->map_ids.size() != 1) return id;
    int m = bpf_map_get_fd_by_id(info->map_ids[0]);
    uint32_t k = 0, slot = 0;
    if (m < 0 || bpf_map_lookup_elem(m, &k, &slot) != 0) slot = 0;
    if (m >= 0) close(m);
    return slot;
}

}  // namespace tcdtest
