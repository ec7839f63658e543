#include "core/kind.h"

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <fmt/format.h>

#include "core/reasons.h"
#include "tcd/shared.h"

namespace tcd {

Result<KeyKind> parse_key_kind(const std::string& s) {
    if (auto k = from_name<KeyKind>(s)) return *k;
    return about(usage_error("", "not " + or_list(names_of<KeyKind>())), Flag::key, s);
}

Result<Hook> parse_hook(const std::string& s) {
    if (auto h = from_name<Hook>(s)) return *h;
    return about(usage_error("", "not " + or_list(names_of<Hook>())), Flag::hook, s);
}

const char* dispatcher_name(Hook h) { return h == Hook::tc ? TCD_PROG_TC_DISPATCH : TCD_PROG_DISPATCH; }
uint32_t verdict_pass(Hook h) { return h == Hook::tc ? TC_ACT_OK : XDP_PASS; }
uint32_t verdict_drop(Hook h) { return h == Hook::tc ? TC_ACT_SHOT : XDP_DROP; }

namespace {

struct VerdictName {
    int verdict;
    const char* name;
};
constexpr VerdictName kXdpVerdicts[] = {{XDP_ABORTED, "XDP_ABORTED"}, {XDP_DROP, "XDP_DROP"},
                                        {XDP_PASS, "XDP_PASS"},       {XDP_TX, "XDP_TX"},
                                        {XDP_REDIRECT, "XDP_REDIRECT"}};
constexpr VerdictName kTcVerdicts[] = {{TC_ACT_OK, "TC_ACT_OK"},
                                       {TC_ACT_SHOT, "TC_ACT_SHOT"},
                                       {TC_ACT_RECLASSIFY, "TC_ACT_RECLASSIFY"},
                                       {TC_ACT_PIPE, "TC_ACT_PIPE"},
                                       {TC_ACT_STOLEN, "TC_ACT_STOLEN"},
                                       {TC_ACT_REDIRECT, "TC_ACT_REDIRECT"},
                                       {TC_ACT_UNSPEC, "TC_ACT_UNSPEC"}};

}  // namespace

std::string verdict_name(Hook h, uint32_t v) {
    if (h == Hook::tc) {
        for (const auto& n : kTcVerdicts)
            if (n.verdict == static_cast<int>(v)) return n.name;
        return fmt::format("TC_ACT_{}", v);
    }
    for (const auto& n : kXdpVerdicts)
        if (n.verdict == static_cast<int>(v)) return n.name;
    return fmt::format("XDP_{}", v);
}

uint32_t max_key(KeyKind k) { return k == KeyKind::port ? 65535 : 255; }
uint32_t jt_entries(KeyKind k) { return k == KeyKind::port ? TCD_PORT_JT_ENTRIES : TCD_JT_ENTRIES; }
uint32_t stats_entries(KeyKind k) { return k == KeyKind::port ? TCD_PORT_STATS_ENTRIES : TCD_STATS_ENTRIES; }

}  // namespace tcd
