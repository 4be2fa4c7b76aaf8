/* flowapp: an application that links the flowlib BPF library (installed from its wheel).
 *
 * It includes the library's header (shipped in the flowlib package) and adds a counter of
 * its own; its globals shift flowlib's, which the companion finds through its subskeleton.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "flowlib.h"

const volatile __s32 flowapp_watch_nr = -1; /* .rodata: the syscall this app counts */
__u64 flowapp_watched;                      /* .bss: how often the traced process made it */
char flowapp_name[16] = "flowapp";          /* .data */

SEC("raw_tp/sys_enter")
int flowapp_on_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	long nr = (long)ctx->args[1];

	/* flowlib's own setting decides which process is traced. */
	if (flowlib_target_tgid && tgid != flowlib_target_tgid)
		return 0;
	if (nr == flowapp_watch_nr)
		__sync_fetch_and_add(&flowapp_watched, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
