// The dispatch key on the command line and its name. A key is an IP protocol
// (proto instances: 0-255 or a protocol name) or a destination port (port
// instances: 0-65535 or a service name); "key" means either, "proto" and
// "port" one of them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/kind.h"

namespace tcd {

inline constexpr uint32_t kMaxProto = 255;

// For a proto instance: "6", "0x11", "tcp", "IPv6-ICMP", "icmpv6" -> protocol
// 0-255. A usage error otherwise.
Result<uint32_t> parse_proto(std::string_view text);

// For a port instance: "8080", "http", "ssh", "dns"/"domain" -> port 0-65535.
Result<uint32_t> parse_port(std::string_view text);

// Either, by the instance's key kind.
Result<uint32_t> parse_key(std::string_view text, KeyKind kind);

// The service's name for a port ("http"), or "".
std::string service_name(uint32_t port);

// The key's name: proto_name or service_name, by key kind.
std::string key_name(KeyKind kind, uint32_t key);

// The built-in table of services (port, name), for completions and docs.
const std::vector<std::pair<uint32_t, std::string>>& builtin_services();

// The protocol's name ("tcp"), or "" when neither the built-in table nor
// /etc/protocols knows it.
std::string proto_name(uint32_t proto);

// The built-in table (key, canonical name), for completions and docs.
const std::vector<std::pair<uint32_t, std::string>>& builtin_protocols();

}  // namespace tcd
