/* flowlib: per-process syscall counting and latency histograms, as a BPF *library*.
 *
 * The library is linked into applications (pybpf gen object app.o app.bpf.o flowlib.bpf.o);
 * its Python companion (flowlib.Flow) configures it before load and reads it after, through
 * a subskeleton, whatever the application's own globals do to the library's offsets.
 */
#ifndef FLOWLIB_H
#define FLOWLIB_H

#include <linux/types.h>

#define FLOWLIB_BUCKETS 32      /* log2 latency buckets, in units of 2^flowlib_unit_shift ns */
#define FLOWLIB_MAX_SYSCALLS 512 /* syscall numbers counted one by one */

/* Totals, kept in .bss and read by the companion after load. */
struct flowlib_summary {
	__u64 events;   /* syscalls that completed while traced */
	__u64 total_ns; /* their summed latency */
	__u64 max_ns;   /* the slowest one */
	__u32 max_nr;   /* its syscall number */
	__u32 missed;   /* exits whose entry was not seen (or the start table was full) */
};

/* What applications may use from the library (resolved when they are linked with it). */
extern const volatile __u32 flowlib_target_tgid; /* the process traced; 0: every process */
extern struct flowlib_summary flowlib_summary;

/* Records one latency; defined in flowlib_hist.bpf.c, called by the library's exit program
 * and callable from applications' programs as well. */
extern int flowlib_record(__u32 nr, __u64 delta_ns);

#endif
