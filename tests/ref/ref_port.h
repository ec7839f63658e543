// Independent reference for the port dispatcher (docs/port-dispatch.md),
// written from the rules, sharing no code with the BPF side or with the
// protocol reference.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tcdref {

enum class PortClass { ipv4, ipv6, non_ip, malformed, no_port };

const char* port_class_name(PortClass c);  // ..., "no-port"

struct PortResult {
    PortClass cls;
    int port;  // destination port for ipv4/ipv6; -1 otherwise
};

PortResult classify_port(const uint8_t* data, size_t len);

}  // namespace tcdref
