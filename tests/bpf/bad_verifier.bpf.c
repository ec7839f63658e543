// SPDX-License-Identifier: GPL-2.0-only
/* A handler the verifier rejects: it reads the packet without checking
 * data_end first. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int bad_verifier(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	return data[20] == 6 ? XDP_DROP : XDP_PASS;
}
