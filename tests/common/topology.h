// Network namespaces joined by veth pairs, for tests that put tcd on real
// links. One RAII type makes them and removes them: the constructor runs the
// set-up one command at a time and stops at the first that fails, taking
// away again what it had made; the destructor deletes every namespace it
// made (their veth ends go with them). Namespace names carry the pid.
//
//   tcdtest::Topology net({.prefix = "tcde",
//                          .namespaces = {"a", "b"},
//                          .veths = {{.a = {"a", "va", {"10.201.0.1/24"}}, .b = {"b", "vb", {"10.201.0.2/24"}}}},
//                          .lo_up = true});
//   ASSERT_TRUE(net.ok()) << net.error();
//   net.ns("a")   // "tcde<pid>a"
//
// It also takes away /sys/fs/bpf/tc/globals (and the "ip" link beside it),
// which ip and tc make the first time they touch BPF, when it was not there
// before and is empty again.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/common/shell.h"

namespace tcdtest {

// "nsenter --net=/run/netns/NS CMD": CMD in namespace NS, with the host's
// bpffs still in view (ip netns exec mounts its own /sys, without the pins).
inline std::string in_netns(const std::string& ns, const std::string& cmd) {
    return "nsenter --net=/run/netns/" + ns + " " + cmd;
}

struct VethEnd {
    std::string ns;                  // a namespace's tag, one of TopologySpec::namespaces
    std::string dev;                 // the interface's name
    std::vector<std::string> addrs;  // CIDR; IPv6 ones are added without duplicate address detection
};

struct VethPair {
    VethEnd a, b;  // a.ns == b.ns: both ends in one namespace
    int mtu = 0;   // on both ends; 0 leaves the default
};

struct TopologySpec {
    std::string prefix;                   // a namespace is named prefix + pid + tag
    std::vector<std::string> namespaces;  // tags; {""} for one namespace named prefix + pid
    std::vector<VethPair> veths;
    bool lo_up = false;  // loopback up in every namespace
    // false: IPv6 off in every namespace (no link-local address, no router
    // or neighbour solicitations): only what a test sends crosses the links.
    bool ipv6 = true;
    // false: VLAN offload off on every end (best effort), so tagged frames
    // reach XDP as they are on the wire.
    bool vlan_offload = true;
};

class Topology {
public:
    explicit Topology(TopologySpec spec) : spec_(std::move(spec)) {
        tc_dir_before_ = std::filesystem::exists("/sys/fs/bpf/tc");
        const std::string pid = std::to_string(getpid());
        for (const auto& tag : spec_.namespaces) names_[tag] = spec_.prefix + pid + tag;
        ok_ = build();
        if (!ok_) remove();
    }
    ~Topology() {
        remove();
        if (!tc_dir_before_) sh("rmdir /sys/fs/bpf/tc/globals /sys/fs/bpf/tc 2>/dev/null && rm -f /sys/fs/bpf/ip; true");
    }
    Topology(const Topology&) = delete;
    Topology& operator=(const Topology&) = delete;

    // Whether every step succeeded; if not, error() names the failed command
    // and what it said, and nothing made is left.
    bool ok() const { return ok_; }
    const std::string& error() const { return error_; }
    // The full name of the namespace with this tag.
    const std::string& ns(const std::string& tag = "") const {
        auto it = names_.find(tag);
        if (it == names_.end()) throw std::out_of_range("topology: no namespace tagged '" + tag + "'");
        return it->second;
    }
    std::string ns_path(const std::string& tag = "") const { return "/run/netns/" + ns(tag); }
    // CMD run in the tagged namespace (see in_netns).
    std::string in(const std::string& tag, const std::string& cmd) const { return in_netns(ns(tag), cmd); }

private:
    bool run(const std::string& cmd) {
        Cmd c = sh(cmd);
        if (c.rc == 0) return true;
        error_ = cmd + ": " + (c.err.empty() ? "exit status " + std::to_string(c.rc) : c.err);
        while (!error_.empty() && error_.back() == '\n') error_.pop_back();
        return false;
    }
    bool build() {
        for (const auto& tag : spec_.namespaces) {
            const std::string& n = ns(tag);
            sh("ip netns del " + n + " 2>/dev/null");  // a leftover of an earlier run with this pid
            if (!run("ip netns add " + n)) return false;
            made_.push_back(n);
            if (!spec_.ipv6 &&
                !run(in_netns(n, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")))
                return false;
            if (spec_.lo_up && !run("ip -n " + n + " link set lo up")) return false;
        }
        for (const auto& v : spec_.veths) {
            if (!run("ip link add " + v.a.dev + " netns " + ns(v.a.ns) + " type veth peer name " + v.b.dev +
                     " netns " + ns(v.b.ns)))
                return false;
            for (const VethEnd* e : {&v.a, &v.b}) {
                const std::string& n = ns(e->ns);
                if (v.mtu && !run("ip -n " + n + " link set " + e->dev + " mtu " + std::to_string(v.mtu)))
                    return false;
                if (!spec_.vlan_offload)
                    sh(in_netns(n, "ethtool -K " + e->dev + " rxvlan off txvlan off"));  // best effort
                for (const auto& addr : e->addrs) {
                    bool v6 = addr.find(':') != std::string::npos;
                    if (!run("ip -n " + n + (v6 ? " -6" : "") + " addr add " + addr + " dev " + e->dev +
                             (v6 ? " nodad" : "")))
                        return false;
                }
                if (!run("ip -n " + n + " link set " + e->dev + " up")) return false;
            }
        }
        return true;
    }
    void remove() {
        for (auto it = made_.rbegin(); it != made_.rend(); ++it) sh("ip netns del " + *it + " 2>/dev/null");
        made_.clear();
    }

    TopologySpec spec_;
    std::map<std::string, std::string> names_;
    std::vector<std::string> made_;
    std::string error_;
    bool ok_ = false;
    bool tc_dir_before_ = false;
};

}  // namespace tcdtest
