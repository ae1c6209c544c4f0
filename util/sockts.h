/* Kernel timestamps of a TCP socket's traffic (SO_TIMESTAMPING, software stamps): when a send
 * left through the network device and when the data a read returned had arrived, independent of
 * when our thread got to run. Stage timings taken at curl's callbacks alone include the scheduling delay between
 * the packet and the callback (several ms on a busy host, bench/RESULTS.md); with these stamps
 * they are what a packet capture on the interface shows.
 *
 * Times are returned on the mono_us() clock (the kernel stamps CLOCK_REALTIME; the offset between
 * the two clocks is read at the moment of conversion). Linux only; elsewhere, and when the kernel
 * refuses, everything returns -1 and callers keep their own clock. Built with -DSOCKTS_DISABLE,
 * sockts_enable() always fails: that measures what the stamps cost (bench/README.md). */
#ifndef MON_UTIL_SOCKTS_H
#define MON_UTIL_SOCKTS_H

#include <stdint.h>

/* Asks the kernel for receive stamps now, for the life of the process. The kernel turns them on
 * from a work queue a moment later, so a process that is about to open connections calls this
 * early: its first packets are stamped too. sockts_enable() does it as well. */
void sockts_prepare(void);

/* Turns on TX and RX software timestamps on fd (a TCP socket, before or after connect).
 * Returns 0, or -1 (errno set). */
int sockts_enable(int fd);

/* Reads every TX timestamp queued on fd's error queue (never its data). Each send() that carried
 * data queues one when its last byte left; a queued stamp also makes poll() report POLLERR, so
 * callers drain after each send. Returns the latest stamp (mono_us clock), or -1 when none was
 * queued. */
int64_t sockts_tx_drain(int fd);

/* This thread's reads of fd through recv() (libcurl's, ours) are stamped from now on, and the
 * last stamp is forgotten; -1 stops. One socket per thread: a thread runs one SMTP attempt at a
 * time. */
void sockts_rx_watch(int fd);

/* Arrival time (mono_us clock) of the last packet of this thread's latest recv() of its watched
 * socket, or -1 when no read since sockts_rx_watch() carried a stamp. */
int64_t sockts_rx_last(void);

#endif
