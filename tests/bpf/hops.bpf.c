// SPDX-License-Identifier: GPL-2.0-only
/*
 * Handlers that chain with tcd_next() for tcd trace's tests, built for every
 * kind (-DTCD_KEY_PORT, -DTCD_HOOK_TC): hop_first tries HOP_UNWIRED (which
 * the tests leave empty) with a key known only at run time, then hands the
 * frame to HOP_SECOND with a constant key; hop_second hands it on to
 * HOP_THIRD; hop_last drops. Wired at a key, hop_first's frames go
 * first -> (HOP_UNWIRED: nothing) -> HOP_SECOND -> HOP_THIRD, and
 * hop_loop hands a frame to its own key HOP_LOOP until the chain's limit.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include <tcd/handler.h>

char LICENSE[] SEC("license") = "GPL";

#ifdef TCD_HOOK_TC
#define CTX struct __sk_buff
#define SECTION "tc"
#define PASS TC_ACT_OK
#define DROP TC_ACT_SHOT
#else
#define CTX struct xdp_md
#define SECTION "xdp"
#define PASS XDP_PASS
#define DROP XDP_DROP
#endif

#ifdef TCD_KEY_PORT
#define HOP_UNWIRED 5000
#define HOP_SECOND 5001
#define HOP_THIRD 5002
#define HOP_LOOP 5003
#else
#define HOP_UNWIRED 250
#define HOP_SECOND 251
#define HOP_THIRD 252
#define HOP_LOOP 249
#endif

/* Not const: the verifier sees a key it does not know (tcd_next's indirect
 * tail call). */
volatile __u32 unwired_key = HOP_UNWIRED;

SEC(SECTION)
int hop_first(CTX *ctx)
{
	tcd_next(ctx, unwired_key);
	tcd_next_static(ctx, HOP_SECOND);
	return PASS;
}

SEC(SECTION)
int hop_second(CTX *ctx)
{
	tcd_next_static(ctx, HOP_THIRD);
	return PASS;
}

SEC(SECTION)
int hop_last(CTX *ctx)
{
	return DROP;
}

SEC(SECTION)
int hop_loop(CTX *ctx)
{
	tcd_next_static(ctx, HOP_LOOP);
	return DROP;
}
