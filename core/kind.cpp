#include "core/kind.h"

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <fmt/format.h>

#include "tcd/shared.h"

namespace tcd {

const char* key_kind_name(KeyKind k) { return k == KeyKind::port ? "port" : "proto"; }
const char* hook_name(Hook h) { return h == Hook::tc ? "tc" : "xdp"; }

Result<KeyKind> parse_key_kind(const std::string& s) {
    if (s == "proto") return KeyKind::proto;
    if (s == "port") return KeyKind::port;
    return usage_error("--key " + s, "not proto or port");
}

Result<Hook> parse_hook(const std::string& s) {
    if (s == "xdp") return Hook::xdp;
    if (s == "tc") return Hook::tc;
    return usage_error("--hook " + s, "not xdp or tc");
}

const char* dispatcher_name(Hook h) { return h == Hook::tc ? TCD_PROG_TC_DISPATCH : TCD_PROG_DISPATCH; }
uint32_t verdict_pass(Hook h) { return h == Hook::tc ? TC_ACT_OK : XDP_PASS; }
uint32_t verdict_drop(Hook h) { return h == Hook::tc ? TC_ACT_SHOT : XDP_DROP; }

std::string verdict_name(Hook h, uint32_t v) {
    if (h == Hook::tc) {
        switch (static_cast<int>(v)) {
        case TC_ACT_OK: return "TC_ACT_OK";
        case TC_ACT_SHOT: return "TC_ACT_SHOT";
        case TC_ACT_RECLASSIFY: return "TC_ACT_RECLASSIFY";
        case TC_ACT_PIPE: return "TC_ACT_PIPE";
        case TC_ACT_STOLEN: return "TC_ACT_STOLEN";
        case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
        case TC_ACT_UNSPEC: return "TC_ACT_UNSPEC";
        default: return fmt::format("TC_ACT_{}", v);
        }
    }
    switch (v) {
    case XDP_ABORTED: return "XDP_ABORTED";
    case XDP_DROP: return "XDP_DROP";
    case XDP_PASS: return "XDP_PASS";
    case XDP_TX: return "XDP_TX";
    case XDP_REDIRECT: return "XDP_REDIRECT";
    default: return fmt::format("XDP_{}", v);
    }
}

uint32_t max_key(KeyKind k) { return k == KeyKind::port ? 65535 : 255; }
uint32_t jt_entries(KeyKind k) { return k == KeyKind::port ? TCD_PORT_JT_ENTRIES : TCD_JT_ENTRIES; }
uint32_t stats_entries(KeyKind k) { return k == KeyKind::port ? TCD_PORT_STATS_ENTRIES : TCD_STATS_ENTRIES; }

}  // namespace tcd
