// Other agents' programs beside tcd on vb in B, for the end-to-end tests
// (tcx_e2e_test, multiprog_e2e_test, combination_e2e_test): a tc agent
// (tests/bpf/neighbour.bpf.c, attached by the test itself as a tcx link or
// a clsact filter) and programs xdp-loader puts into libxdp's dispatcher
// (tests/bpf/xdp_neighbour.bpf.c). Both go away in their destructors, also
// when an assertion fails.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <xdp/libxdp.h>

#include <string>
#include <vector>

#include "core/fd.h"
#include "core/netns.h"
#include "core/progs.h"
#include "tests/common/shell.h"
#include "tests/e2e/pair.h"

namespace tcdtest {

// Another agent's programs (neighbour.bpf.c), loaded by the test: nb_count
// counts IPv4 UDP and lets it go on, nb_drop_udp drops it. Attached to vb
// ingress in B, as a tcx link (at the chain's tail, as an agent that came
// first would be) or as a clsact filter of its own (handle 1, priority 1).
constexpr uint32_t kNeighbourTcxIngress = 46;  // BPF_TCX_INGRESS (Debian 12's headers lack it)

class Neighbour {
public:
    explicit Neighbour(const Pair& p) : ns_("/run/netns/" + p.b()) {
        obj_.reset(bpf_object__open_file((std::string(TCD_BPF_OBJ_DIR) + "/neighbour.bpf.o").c_str(), nullptr));
        if (!obj_ || bpf_object__load(obj_.get()) != 0) return;
        counts_ = bpf_object__find_map_by_name(obj_.get(), "nb_udp");
        auto guard = tcd::NetnsGuard::enter(ns_);
        if (guard) ifindex_ = if_nametoindex("vb");
    }
    ~Neighbour() {
        links_.clear();
        if (clsact_) {
            auto guard = tcd::NetnsGuard::enter(ns_);
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex_), .attach_point = BPF_TC_INGRESS);
            LIBBPF_OPTS(bpf_tc_opts, o, .handle = 1, .priority = 1);
            if (guard) bpf_tc_detach(&hook, &o);
        }
    }
    bool ok() const { return counts_ && ifindex_; }
    int fd(const char* prog) const {
        return bpf_program__fd(bpf_object__find_program_by_name(obj_.get(), prog));
    }
    // The kernel's id of the program.
    uint32_t id(const char* prog) const {
        bpf_prog_info info{};
        uint32_t len = sizeof info;
        return bpf_obj_get_info_by_fd(fd(prog), &info, &len) == 0 ? info.id : 0;
    }
    // The program as a tcx link on vb ingress (its fd held here).
    bool tcx(const char* prog) {
        auto guard = tcd::NetnsGuard::enter(ns_);
        if (!guard) return false;
        tcd::UniqueFd link(bpf_link_create(fd(prog), ifindex_, static_cast<bpf_attach_type>(kNeighbourTcxIngress), nullptr));
        if (!link) return false;
        links_.push_back(std::move(link));
        return true;
    }
    // The program as a direct-action clsact filter on vb ingress.
    bool clsact(const char* prog) {
        auto guard = tcd::NetnsGuard::enter(ns_);
        if (!guard) return false;
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex_), .attach_point = BPF_TC_INGRESS);
        int err = bpf_tc_hook_create(&hook);
        if (err && err != -EEXIST) return false;
        LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = fd(prog), .handle = 1, .priority = 1);
        clsact_ = bpf_tc_attach(&hook, &o) == 0;
        return clsact_;
    }
    // IPv4 UDP frames nb_count (slot 0) or nb_drop_udp (slot 1) saw.
    uint64_t seen(uint32_t slot) const {
        uint64_t v = 0;
        bpf_map_lookup_elem(bpf_map__fd(counts_), &slot, &v);
        return v;
    }

private:
    std::string ns_;
    tcd::BpfObjectPtr obj_;
    bpf_map* counts_ = nullptr;
    uint32_t ifindex_ = 0;
    std::vector<tcd::UniqueFd> links_;
    bool clsact_ = false;
};

#define NEIGHBOUR(n, p)  \
    Neighbour n{p};      \
    ASSERT_TRUE(n.ok()) << "could not load tests/bpf/neighbour.bpf.o"

// Programs of tests/bpf/xdp_neighbour.bpf.o that xdp-loader put on vb in B;
// taken off again (xdp-loader unload --all) when the test ends.
class XdpLoader {
public:
    explicit XdpLoader(const Pair& p) : p_(p) {}
    ~XdpLoader() {
        if (loaded_) sh(p_.in_ns(p_.b(), "xdp-loader unload vb --all"));
    }
    // xdp-loader load PROG at run priority PRIO; its exit status.
    Cmd load(const std::string& prog, int prio) {
        loaded_ = true;
        return sh(p_.in_ns(p_.b(), "xdp-loader load vb " + std::string(TCD_BPF_OBJ_DIR) + "/xdp_neighbour.bpf.o -n " +
                                      prog + " -P " + std::to_string(prio)));
    }
    // The IPv4 UDP frames PROG (running in vb's libxdp dispatcher) counted in
    // its slot; -1 when it does not run there.
    long seen(const std::string& prog, uint32_t slot) const {
        auto guard = tcd::NetnsGuard::enter("/run/netns/" + p_.b());
        if (!guard) return -1;
        tcd::XdpMultiprogPtr mp(xdp_multiprog__get_from_ifindex(static_cast<int>(if_nametoindex("vb"))));
        if (!mp || libxdp_get_error(mp.get())) {
            (void)mp.release();
            return -1;
        }
        for (auto* c = xdp_multiprog__next_prog(nullptr, mp.get()); c; c = xdp_multiprog__next_prog(c, mp.get())) {
            if (prog != xdp_program__name(c)) continue;
            auto fd = tcd::prog_fd_by_id(xdp_program__id(c));
            if (!fd) return -1;
            auto info = tcd::prog_info(fd->get());
            if (!info || info->map_ids.empty()) return -1;
            tcd::UniqueFd m(bpf_map_get_fd_by_id(info->map_ids[0]));
            uint64_t v = 0;
            if (!m || bpf_map_lookup_elem(m.get(), &slot, &v) != 0) return -1;
            return static_cast<long>(v);
        }
        return -1;
    }

private:
    const Pair& p_;
    bool loaded_ = false;
};

}  // namespace tcdtest
