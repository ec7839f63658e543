// SPDX-License-Identifier: GPL-2.0-only
/*
 * The freplace probe (core/probe.cpp): does this kernel load and link a
 * freplace (BPF_PROG_TYPE_EXT) program, as libxdp's multi-program dispatcher
 * needs? The model is libxdp's libxdp_check_kern_compat(): an XDP target with
 * a global function, and an extension that takes it over. Lockdown refuses
 * the extension with EPERM. No packet access.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__noinline int tcd_fr_slot(struct xdp_md *ctx)
{
    return ctx ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp")
int tcd_fr_tgt(struct xdp_md *ctx)
{
    return tcd_fr_slot(ctx);
}

SEC("freplace/tcd_fr_slot")
int tcd_fr_ext(struct xdp_md *ctx)
{
    return XDP_PASS;
}
