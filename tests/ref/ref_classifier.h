// Independent reference classifier for the dispatch key (docs/datapath.md,
// "Dispatch key"). Written from those rules alone: it shares no code, headers or
// constants with the BPF side, so the differential test compares two separate
// readings of the contract.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tcdref {

enum class Class { ipv4, ipv6, non_ip, malformed };

// "ipv4", "ipv6", "non-ip", "malformed".
const char* class_name(Class c);

struct RefResult {
    Class cls;
    int key;  // 0..255 for ipv4/ipv6; -1 when there is none (non-ip, malformed)
};

// Classifies one Ethernet frame given its captured bytes (data may be null
// when len == 0).
RefResult classify(const uint8_t* data, size_t len);

}  // namespace tcdref
