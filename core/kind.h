// What a dispatcher instance is: its key (IP protocol or destination port)
// and its hook (XDP, or tc's clsact). One pin directory holds one kind.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/names.h"

namespace tcd {

enum class KeyKind { proto, port };
enum class Hook { xdp, tc };

struct Kind {
    KeyKind key = KeyKind::proto;
    Hook hook = Hook::xdp;
    bool operator==(const Kind&) const = default;
};

template <>
struct Names<KeyKind> {
    static constexpr EnumName<KeyKind> table[] = {{KeyKind::proto, "proto"}, {KeyKind::port, "port"}};
};
template <>
struct Names<Hook> {
    static constexpr EnumName<Hook> table[] = {{Hook::xdp, "xdp"}, {Hook::tc, "tc"}};
};

inline const char* key_kind_name(KeyKind k) { return name_of(k); }  // "proto", "port"
inline const char* hook_name(Hook h) { return name_of(h); }         // "xdp", "tc"
Result<KeyKind> parse_key_kind(const std::string& s);
Result<Hook> parse_hook(const std::string& s);

// The dispatcher program's (and pin's) name: xdp_dispatch or tc_dispatch.
const char* dispatcher_name(Hook h);
// The hook's verdicts for pass and drop (XDP_PASS/XDP_DROP, TC_ACT_OK/SHOT).
uint32_t verdict_pass(Hook h);
uint32_t verdict_drop(Hook h);
// The verdict's name: "XDP_PASS", "TC_ACT_SHOT", ... (XDP_7 for one it has not).
std::string verdict_name(Hook h, uint32_t verdict);

// A verdict a program returned at a hook, typed until it is printed
// (verdict_name).
struct Verdict {
    Hook hook = Hook::xdp;
    uint32_t code = 0;
    auto operator<=>(const Verdict&) const = default;
};
inline std::string verdict_name(Verdict v) { return verdict_name(v.hook, v.code); }

uint32_t max_key(KeyKind k);        // 255 or 65535
uint32_t jt_entries(KeyKind k);     // 256 or 65536
uint32_t stats_entries(KeyKind k);  // counter rows

}  // namespace tcd
