#define _GNU_SOURCE /* recvmmsg */
/* This file defines recv() (below): fortified headers make recv an inline wrapper instead. */
#undef _FORTIFY_SOURCE
#include "sockts.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#if defined(__linux__)
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>

/* A kernel (CLOCK_REALTIME) stamp on the mono_us() clock. */
static int64_t to_mono(const struct timespec *ts)
{
	if (ts->tv_sec == 0 && ts->tv_nsec == 0)
		return -1;
	struct timespec rt, mt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mt);
	int64_t k = (int64_t)ts->tv_sec * 1000000 + ts->tv_nsec / 1000;
	int64_t r = (int64_t)rt.tv_sec * 1000000 + rt.tv_nsec / 1000;
	int64_t m = (int64_t)mt.tv_sec * 1000000 + mt.tv_nsec / 1000;
	return k - (r - m);
}

/* The software stamp of a message's SCM_TIMESTAMPING control message, or -1. */
static int64_t stamp_of(struct msghdr *msg)
{
	int64_t t = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPING ||
		    c->cmsg_len < CMSG_LEN(sizeof(struct scm_timestamping)))
			continue;
		struct scm_timestamping st;
		memcpy(&st, CMSG_DATA(c), sizeof st);
		t = to_mono(&st.ts[0]);
	}
	return t;
}

/* Receive stamps are a system-wide switch in the kernel (netstamp_needed_key), turned on by the
 * first socket that asks and off again when the last one closes. Flipping it patches kernel code
 * and waits for every CPU: with one probe at a time it cost about 4 ms of wall time per probe
 * (bench/RESULTS.md). One socket that asks and stays open keeps it on for the process's life. */
static pthread_once_t holder_once = PTHREAD_ONCE_INIT;

static void holder_open(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) < 0) {
		close(fd);
		fd = -1;
	}
	(void)fd; /* kept open until exit */
}

void sockts_prepare(void)
{
#ifndef SOCKTS_DISABLE
	pthread_once(&holder_once, holder_open);
#endif
}

int sockts_enable(int fd)
{
#ifdef SOCKTS_DISABLE
	return -1;
#endif
	pthread_once(&holder_once, holder_open);
	/* OPT_TSONLY: error-queue entries carry the stamp only, not a copy of the packet. */
	unsigned flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
			 SOF_TIMESTAMPING_OPT_TSONLY;
	return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags);
}

int64_t sockts_tx_drain(int fd)
{
	/* recvmmsg: the whole queue in one call (usually one stamp, or none). */
	enum { N = 8 };
	struct {
		_Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(struct scm_timestamping)) +
						 CMSG_SPACE(sizeof(struct sock_extended_err) + 64)];
	} ctl[N];
	char data[N];
	struct iovec iov[N];
	struct mmsghdr mm[N];
	int64_t latest = -1;
	for (int round = 0; round < 8; round++) { /* bounded: 64 stamps */
		memset(mm, 0, sizeof mm);
		for (int i = 0; i < N; i++) {
			iov[i] = (struct iovec){ &data[i], 1 };
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_control = ctl[i].buf;
			mm[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
		}
		int n = recvmmsg(fd, mm, N, MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
		if (n <= 0)
			break; /* EAGAIN: the queue is empty */
		for (int i = 0; i < n; i++) {
			int64_t t = stamp_of(&mm[i].msg_hdr);
			if (t > latest)
				latest = t;
		}
		if (n < N)
			break;
	}
	return latest;
}

/*
 * Receive stamps of the bytes curl reads. libcurl reads a connection's data with recv() (plain
 * SMTP, and the TLS records under OpenSSL, through curl's own BIO). This executable defines
 * recv() and exports it (cli/CMakeLists.txt: --export-dynamic-symbol=recv), so libcurl's calls
 * come here: for the one socket this thread watches, the read is a recvmsg() that also takes the
 * SCM_TIMESTAMPING control message, the arrival time of the last packet read; every other call
 * is recvfrom(), which is what glibc's recv() is. A stamp per read that curl makes anyway, with no
 * system call of our own, and no read can slip by unstamped (a peek before curl's reads missed
 * the replies that curl read inside one curl_multi_perform() call after it had sent a command).
 */
static _Thread_local int rx_watch_fd = -1;
static _Thread_local int64_t rx_last_us = -1;

void sockts_rx_watch(int fd)
{
	rx_watch_fd = fd;
	rx_last_us = -1;
}

int64_t sockts_rx_last(void)
{
	return rx_last_us;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	if (fd < 0 || fd != rx_watch_fd)
		return recvfrom(fd, buf, len, flags, NULL, NULL);
	union {
		char buf[CMSG_SPACE(sizeof(struct scm_timestamping)) + 64];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
	ssize_t n = recvmsg(fd, &msg, flags);
	if (n > 0 && !(flags & MSG_PEEK)) {
		int64_t t = stamp_of(&msg);
		if (t >= 0)
			rx_last_us = t;
	}
	return n;
}

#else

void sockts_prepare(void)
{
}

int sockts_enable(int fd)
{
	(void)fd;
	errno = ENOTSUP;
	return -1;
}

int64_t sockts_tx_drain(int fd)
{
	(void)fd;
	return -1;
}

void sockts_rx_watch(int fd)
{
	(void)fd;
}

int64_t sockts_rx_last(void)
{
	return -1;
}

#endif
