// SPDX-License-Identifier: GPL-2.0-only
/*
 * tcd's entry shim for libxdp's multi-program dispatcher (docs/datapath.md,
 * "Multi-program mode"). libxdp links into its dispatcher only programs it
 * loads itself as freplace extensions, so tcd hands it this one: a tail call
 * through a one-slot prog array (pinned as PINDIR/maps/mp_entry) to the
 * instance's pinned xdp_dispatch. The key is a constant, so the JIT makes it
 * a direct jump. An empty slot passes the frame on (XDP_PASS, which libxdp
 * chains to the next program by default). No packet access.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tcd/shared.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} mp_entry SEC(".maps");

SEC("xdp")
int tcd_entry(struct xdp_md *ctx)
{
    bpf_tail_call_static(ctx, &mp_entry, 0);
    return XDP_PASS;
}
