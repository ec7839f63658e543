// The tcd binary on one pin dir, for the e2e tests: its result, or its -j
// output parsed (a failure is a test failure, and null).
#pragma once

#include <gtest/gtest.h>

#include <bpf/bpf.h>
#include <unistd.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/progs.h"
#include "tests/common/commands.h"
#include "tests/common/shell.h"

namespace tcdtest {

// Short names for the tests of one pin dir (commands.h's tcd_on, tcd_json_on).
inline Cmd tcd(const std::string& dir, const std::string& args) { return tcd_on(dir, args); }
inline nlohmann::json tcd_json(const std::string& dir, const std::string& args) { return tcd_json_on(dir, args); }

// The row of key in a list of rows (map list -j, stats -j's keys), or null.
inline const nlohmann::json* row_of_key(const nlohmann::json& rows, int key) {
    for (const auto& k : rows)
        if (k["key"] == key) return &k;
    return nullptr;
}

// The program id wired at key in dir's jump table, 0 if none.
inline uint64_t wired_id(const std::string& dir, int key) {
    const nlohmann::json rows = tcd_json(dir, "map list");
    const nlohmann::json* r = row_of_key(rows, key);
    return r ? (*r)["prog_id"].get<uint64_t>() : 0;
}

// The program id of dir's dispatcher, 0 if none.
inline uint64_t dispatcher_id(const std::string& dir) {
    nlohmann::json s = tcd_json(dir, "status");
    return s.is_object() && s["dispatcher"].is_object() ? s["dispatcher"]["prog_id"].get<uint64_t>() : 0;
}

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
