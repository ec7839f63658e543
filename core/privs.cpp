#include "core/privs.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace tcd {

static uint64_t effective_caps() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("CapEff:", 0) == 0) {
            std::istringstream ss(line.substr(7));
            uint64_t v = 0;
            ss >> std::hex >> v;
            return v;
        }
    }
    return 0;
}

Result<> require_bpf_privileges(const std::string& what) {
    constexpr int kCapNetAdmin = 12, kCapSysAdmin = 21, kCapBpf = 39;
    uint64_t caps = effective_caps();
    auto has = [caps](int c) { return (caps >> c) & 1; };
    if ((has(kCapSysAdmin) || has(kCapBpf)) && has(kCapNetAdmin)) return {};
    return fail(what, "permission denied", "needs root or CAP_BPF+CAP_NET_ADMIN", EPERM);
}

}  // namespace tcd
