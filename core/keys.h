// The dispatch key on the command line: a number 0-255 or a protocol name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace tcd {

inline constexpr uint32_t kMaxKey = 255;

// "6", "0x11", "tcp", "IPv6-ICMP", "icmpv6" -> key. A usage error otherwise.
Result<uint32_t> parse_key(std::string_view text);

// The protocol's name for a key ("tcp"), or "" when neither the built-in
// table nor /etc/protocols knows it.
std::string proto_name(uint32_t key);

// The built-in table (key, canonical name), for completions and docs.
const std::vector<std::pair<uint32_t, std::string>>& builtin_protocols();

}  // namespace tcd
