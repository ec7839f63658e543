// Kernel feature probes. tcd asks the kernel whether it has a feature (a
// two-instruction program, a one-entry map, a link to no interface) instead of
// comparing version numbers: distributions backport features, and a version
// says nothing about lockdown or config. Each answer is remembered for the
// process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"

namespace tcd::probe {

enum class Feature {
    xdp_frags,           // BPF_F_XDP_HAS_FRAGS at program load
    percpu_array_batch,  // BPF_MAP_LOOKUP_BATCH on per-CPU arrays (5.13; plain arrays had it from 5.6)
    tcx,                 // BPF_TCX_INGRESS / BPF_TCX_EGRESS links
    // Not a feature but a rule: a prog array takes only programs with its
    // owner's expected attach type (6.17; stable backports, among them
    // Debian 12's 6.1.1xx). It matters where the owner is a freplace program.
    prog_array_attach_check,
    // freplace (BPF_PROG_TYPE_EXT) programs load and link: what libxdp's
    // multi-program dispatcher needs. Lockdown refuses them (EPERM).
    freplace,
    // Not a kernel feature alone: the kernel loads tcd's entry shim (a
    // freplace program that tail-calls an XDP program) as an extension of
    // the first slot of the installed libxdp's own dispatcher. Where freplace
    // works, two kernel rules can still refuse it: an extension that changes
    // packet data (a tail call does, from 6.13 and in 6.12.y) in place of a
    // slot that does not (libxdp before 1.5.5), and a prog array that takes
    // no freplace program beside the XDP program it holds (before 6.2, the
    // extension's type was not resolved to its target's). has() says no
    // then, and libxdp_entry_refusal() says which.
    libxdp_entry,
    // BPF_PROG_TEST_RUN of an XDP program with a context (struct xdp_md in
    // ctx_in/ctx_out: metadata in front of the frame). trace hands the
    // handlers their hop record that way.
    xdp_test_run_ctx,
};

struct FeatureInfo {
    const char* name;   // "tcx links", as errors name it
    const char* since;  // the mainline release that brings it: "6.6"
    const char* hint;   // what to do without it, or what tcd does instead
};
const FeatureInfo& info(Feature f);

// Whether this kernel has the feature. An error when it cannot be asked
// (no privileges to load a program or make a map).
Result<bool> has(Feature f);

// `WHAT: this kernel lacks NAME (Linux SINCE brings it) (HINT)`; the hint is
// the feature's own unless one is given.
Error missing(Feature f, const std::string& what, const std::string& hint = {});

// Succeeds when the kernel has the feature; otherwise missing(), or the
// error that kept the probe from running.
Result<> require(Feature f, const std::string& what, const std::string& hint = {});

// Why the freplace probe said no: the kernel's answer ("Operation not
// permitted (lockdown?)"), empty when it said yes or did not run.
std::string freplace_refusal();

// Why the libxdp_entry probe said no, naming the rule and what lifts it
// (a libxdp version, a kernel release); empty when it said yes or did not
// run. TCD_TEST_NO_LIBXDP_ENTRY=1 makes the probe say no (tests only: the
// refusal paths on a kernel whose libxdp takes the entry).
std::string libxdp_entry_refusal();
// The libxdp release whose dispatcher slots change packet data (xdp-tools
// commit "libxdp: Prevent blocking of programs that modify the packet
// pointer", May 2025), and the kernel release that resolves an extension's
// type in prog arrays.
inline constexpr const char* kLibxdpSlotsChangePacketData = "1.5.5";
inline constexpr const char* kLinuxExtTypeResolved = "6.2";

// Batch lookups and updates on arrays, tried on the map at hand rather than
// probed: a probe map would cost a map and, through libbpf, two program
// loads of its own feature probes, more than `tcd stats` itself. `rc` and
// `err` are the batch call's result and errno. True when the batch did its
// work (remembered as the feature's answer); false when the caller must go
// one key at a time: the answer is known to be no (remembered too: the
// kernel said EINVAL, an unknown command before 5.6, or EOPNOTSUPP/ENOTSUPP,
// a per-CPU array before 5.13),
// or the batch failed for another reason.
bool batch_worked(int rc, int err, uint32_t count);
// Whether to try a batch at all: false once the kernel said no (or a test
// said so through override_for_test); true when untried.
bool try_batch();

// Tests only: make has() answer `v` for `f` (nullopt: probe again).
void override_for_test(Feature f, std::optional<bool> v);

// The attach types tcx links use (linux/bpf.h from 6.6 on; Debian 12's
// headers are older).
inline constexpr unsigned kTcxIngress = 46;
inline constexpr unsigned kTcxEgress = 47;

}  // namespace tcd::probe
