/* Demo application 1 ("top"): flowlib plus a counter of its own.
 *
 * Its globals come first in the linked object, so flowlib's variables sit at other offsets
 * here than in flowlib's own object: the companion finds them by name (a subskeleton).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 top_refresh_ms = 250;       /* .rodata: read by Python only */
char top_title[48] = "pybpf demo: syscall latency"; /* .data */
__u64 top_enters;                                 /* .bss */

/* flowlib's setting, shared rather than copied: resolved by the static linker. */
extern const volatile __u32 flowlib_target_tgid;

SEC("raw_tp/sys_enter")
int top_count_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!flowlib_target_tgid || tgid == flowlib_target_tgid)
		__sync_fetch_and_add(&top_enters, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
