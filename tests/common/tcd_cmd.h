// The tcd binary on one pin dir, for the e2e tests: its result, or its -j
// output parsed (a failure is a test failure, and null).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/common/commands.h"
#include "tests/common/shell.h"
#include "tests/common/xdp_hook.h"

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

}  // namespace tcdtest
