/* Demo application 2 ("errors"): flowlib plus a count of failing syscalls by errno.
 *
 * Other globals than app_top, so flowlib's variables are shifted differently again.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ERRORS_MAX_ERRNO 64

const volatile __u32 errors_target_tgid = 0; /* .rodata */
__u64 errors_by_errno[ERRORS_MAX_ERRNO];      /* .bss */
__u64 errors_total;
__u32 errors_enabled = 1;                     /* .data */

/* flowlib's global function: applications may call into the library too. */
extern int flowlib_record(__u32 nr, __u64 delta_ns);

SEC("raw_tp/sys_exit")
int errors_count_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	long ret = (long)ctx->args[1];

	if (!errors_enabled || (errors_target_tgid && tgid != errors_target_tgid))
		return 0;
	if (ret < 0 && ret > -ERRORS_MAX_ERRNO) {
		__sync_fetch_and_add(&errors_by_errno[-ret], 1);
		__sync_fetch_and_add(&errors_total, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
