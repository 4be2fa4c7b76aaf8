/* flowlib, part 2: the histogram and counters (.bss) the companion reads after load. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "flowlib.h"

__u64 flowlib_hist[FLOWLIB_BUCKETS];
__u64 flowlib_syscalls[FLOWLIB_MAX_SYSCALLS];
struct flowlib_summary flowlib_summary;

extern __u32 flowlib_unit_shift;

static __always_inline __u32 flowlib_log2(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 flowlib_log2l(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? flowlib_log2(hi) + 32 : flowlib_log2((__u32)v);
}

/* A global (separately verified) function, so that applications may call it too. */
int flowlib_record(__u32 nr, __u64 delta_ns)
{
	__u32 slot = flowlib_log2l(delta_ns >> (flowlib_unit_shift & 63));

	if (slot >= FLOWLIB_BUCKETS)
		slot = FLOWLIB_BUCKETS - 1;
	__sync_fetch_and_add(&flowlib_hist[slot], 1);
	if (nr < FLOWLIB_MAX_SYSCALLS)
		__sync_fetch_and_add(&flowlib_syscalls[nr], 1);
	__sync_fetch_and_add(&flowlib_summary.events, 1);
	__sync_fetch_and_add(&flowlib_summary.total_ns, delta_ns);
	if (delta_ns > flowlib_summary.max_ns) {
		flowlib_summary.max_ns = delta_ns;
		flowlib_summary.max_nr = nr;
	}
	return 0;
}
