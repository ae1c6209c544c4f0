#define _GNU_SOURCE /* pthread_cond_clockwait */
#include "smtp.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "evloop.h"
#include "log.h"
#include "sockts.h"
#include "transcript.h"
#include "xalloc.h"

/*
 * Why a thread per attempt: libcurl's SMTP waits for the end-of-data reply *blocking*
 * (smtp_done -> smtp_block_statemach, every curl version), so on a shared multi one receiver
 * that scans the message for ten seconds would stall every other probe and corrupt their
 * timings. Each attempt therefore runs on a thread of its own with a curl multi holding its one
 * easy handle. The thread drives it with curl_multi_perform() and waits in curl_multi_poll(),
 * the current stage's deadline as the timeout; a cancel wakes it with curl_multi_wakeup(). During
 * the blocking wait the progress callback enforces the deadline and the cancel (curl calls it at
 * least once a second). The main loop only sees the finished result, through an evpost.
 *
 * The threads are pooled: a thread that finishes an attempt takes the next queued one, or waits
 * up to POOL_IDLE_S for one before it exits, and it keeps its curl multi all along. A thread
 * per attempt cost a clone, a stack mapping (unmapped again by glibc beyond its 40 MiB stack
 * cache, with a TLB shootdown on every core), the multi's wakeup socketpair and an eventfd with
 * its epoll registration, on every attempt: about a quarter of the CPU of a plain probe
 * (bench/RESULTS.md). There are never more threads than attempts in flight at the peak, and
 * fewer when the servers answer fast (see "How many threads" below).
 *
 * Memory (1,000 sessions held open by a sink that answers DATA 3 s late, bench/run.sh --phases
 * inflight; heaptrack, malloc traced in gdb, /proc/PID/smaps): an attempt in flight used to cost
 * about 83 KiB. The glibc arenas and tcaches were not it (MALLOC_ARENA_MAX=1 or tcache_count=0
 * moved the peak by under 2 MiB in all); the thread's stack is 16 KiB resident (glibc's thread
 * descriptor and TLS take the top 4.7 KiB, curl's calls down to its printf 9 KiB more, both
 * beyond our reach). The largest single item
 * was the socket hash of a multi driven through CURLMOPT_SOCKETFUNCTION: a fixed 911 slots
 * (CURL_SOCKET_HASH_TABLE_SIZE), 29,152 bytes written for one socket; curl_multi_perform() and
 * curl_multi_poll() never fill it, and a per-thread epoll loop is no longer needed either. With
 * the shared DNS cache and the result allocated at the end (below), an attempt costs about
 * 50 KiB and the 1,000-in-flight peak went from 91.6 MiB to about 60 MiB.
 */

/* An idle pool thread exits after this long without work. */
#define POOL_IDLE_S 10

enum attempt_state { A_QUEUED, A_RUNNING, A_FINISHED };

struct pool_thread {
	CURLM *multi; /* kept for the thread's life; NULL when curl_multi_init failed */
};

struct smtp_attempt {
	/* parameters, owned copies (the thread must not depend on the caller's memory) */
	char *host, *ip, *helo, *mail_from, *rcpt, *message, *ca_file, *username, *password, *source_ip;
	size_t message_len, message_off;
	int port;
	struct conf_timeouts timeouts;
	enum conf_tls tls;
	bool tls_verify, auth_expected, keep_transcript;
	bool saw_auth;          /* worker: an AUTH command was sent */

	/* main-thread side */
	struct evpost post;     /* fired by the worker when the attempt has ended */
	smtp_done_cb *done;
	void *arg;

	/* shared, under pool.lock */
	enum attempt_state state;
	struct smtp_attempt *qnext; /* in pool's queue while A_QUEUED */
	struct pool_thread *worker; /* while A_RUNNING */
	atomic_bool cancelled;  /* the main thread asks the worker to abort (and wakes its multi) */

	/* worker side */
	CURLM *multi;           /* the pool thread's */
	CURL *easy;
	bool in_multi;          /* easy is added to multi */
	struct curl_slist *rcpt_list;
	struct curl_slist *connect_to;
	char errbuf[CURL_ERROR_SIZE];
	struct transcript tr;
	int64_t t_start_us;
	int64_t deadline_us;    /* mono_us() by which the awaited stage must complete */
	enum probe_stage waiting_stage;
	int64_t waiting_timeout_ms;
	enum probe_stage progress_timeout; /* deadline seen passed by the progress callback */
	curl_socket_t fd;       /* the connection's socket while curl has it open, else -1 */
	bool kts;               /* fd has kernel timestamps (sockts.h) */
	size_t kts_seen;        /* transcript events at the previous wakeup */
	int kts_idle;           /* wakeups in a row that added no transcript event */
	int64_t handshake_us;   /* the kernel's SYN to SYN-ACK time, 0 unknown */
	int64_t t_socket_us;    /* when curl's socket was made, just before its connect() */
	bool finished;
	/* Filled by the worker, handed to done by the main thread. Allocated only when the attempt
	 * ends: its 1.5 KiB would otherwise sit in every attempt in flight. */
	struct smtp_try *result;
};

/* ---- process-wide ---- */

/* One libcurl share for the DNS cache of every attempt. Each multi otherwise fills its own DNS
 * cache, a hash with a fixed 71 slots (2,272 bytes) plus the entry, even though every attempt
 * connects to an IP literal (CONNECT_TO) and nothing is ever looked up: with 1,000 attempts in
 * flight the shared cache took the peak RSS down by about 2 MiB. Created once, kept until exit,
 * like curl_global_init()'s state; one mutex per kind of shared data, as curl locks kinds
 * independently (libcurl-thread(3)). */
static pthread_once_t dns_share_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t dns_share_mutex[CURL_LOCK_DATA_LAST];
static CURLSH *dns_share;

static void dns_share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *userp)
{
	(void)easy;
	(void)access;
	(void)userp;
	pthread_mutex_lock(&dns_share_mutex[data]);
}

static void dns_share_unlock(CURL *easy, curl_lock_data data, void *userp)
{
	(void)easy;
	(void)userp;
	pthread_mutex_unlock(&dns_share_mutex[data]);
}

static void dns_share_init(void)
{
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&dns_share_mutex[i], NULL);
	CURLSH *sh = curl_share_init();
	if (!sh)
		return; /* each attempt keeps its own cache */
	if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, dns_share_lock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, dns_share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		curl_share_cleanup(sh);
		return;
	}
	dns_share = sh;
}

/* ---- worker side ---- */

static struct smtp_try *attempt_result(struct smtp_attempt *a)
{
	if (!a->result) {
		a->result = xmalloc(sizeof *a->result);
		smtp_try_init(a->result);
	}
	return a->result;
}

static void arm_deadline(struct smtp_attempt *a, enum probe_stage stage)
{
	int64_t ms;
	switch (stage) {
	case STAGE_CONNECT: ms = a->timeouts.connect_ms; break;
	case STAGE_BANNER: ms = a->timeouts.banner_ms; break;
	case STAGE_DATA: ms = a->timeouts.data_ms; break;
	case STAGE_EOD: ms = a->timeouts.eod_ms; break;
	default: ms = a->timeouts.command_ms; break;
	}
	a->waiting_stage = stage;
	a->waiting_timeout_ms = ms;
	a->deadline_us = mono_us() + ms * 1000;
}

/* curl also waits for the QUIT reply blocking (smtp_disconnect), up to the server response
 * timeout. Once QUIT is written, or when we abort, we shut the socket down: the QUIT (already
 * queued) still goes out with a FIN, and curl's wait ends at once with EOF. The QUIT reply
 * decides nothing. */
static void shut_socket(struct smtp_attempt *a)
{
	/* Our own record of the socket: CURLINFO_ACTIVESOCKET is not set before the greeting. */
	if (a->fd >= 0)
		shutdown(a->fd, SHUT_RDWR);
}

static int on_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	struct smtp_attempt *a = clientp;
	if (purpose == CURLSOCKTYPE_IPCXN) {
		a->t_socket_us = mono_us(); /* curl calls connect() right after this */
		a->fd = fd;
		a->kts = sockts_enable(fd) == 0;
		sockts_rx_watch(a->kts ? fd : -1);
	}
	return CURL_SOCKOPT_OK;
}

/* Kernel timestamps (sockts.h). A command's time is when its last byte left, a reply line's when
 * the data holding it arrived (the stamp of curl's own read of it, sockts_rx_last()), so that
 * stage times are the wire's and not our thread's scheduling. A stamp is used only when it falls
 * between the previous command (or body chunk) and now; otherwise, and without stamps, the
 * callback's own time. */
/* The latest event that is not curl's informational text, or NULL. */
static struct tr_event *last_event(const struct smtp_attempt *a)
{
	for (size_t i = a->tr.n; i-- > 0;)
		if (a->tr.v[i].kind != TR_TEXT)
			return &a->tr.v[i];
	return NULL;
}

static int64_t last_sent_us(const struct smtp_attempt *a)
{
	for (size_t i = a->tr.n; i-- > 0;)
		if (a->tr.v[i].kind == TR_OUT || a->tr.v[i].kind == TR_BODY)
			return a->tr.v[i].t_us;
	return a->t_start_us;
}

static int64_t stamp_or_now(const struct smtp_attempt *a, int64_t stamp, int64_t now)
{
	return stamp >= 0 && stamp >= last_sent_us(a) && stamp <= now ? stamp : now;
}

/* After each wakeup of the attempt's own loop (about 13 per probe): the stamps of sends made
 * without a debug callback (the TLS handshake) are drained, but only after two wakeups in a row
 * that added nothing to the transcript (a stamp nobody collected makes poll() report POLLERR at
 * once: this bounds that to one extra turn). */
static void kts_wakeup(struct smtp_attempt *a)
{
	if (!a->kts || a->fd < 0)
		return;
	if (a->tr.n != a->kts_seen) {
		a->kts_seen = a->tr.n;
		a->kts_idle = 0;
	} else if (++a->kts_idle >= 2) {
		sockts_tx_drain(a->fd);
		a->kts_idle = 0;
	}
}

/* The TCP handshake as the kernel timed it: right after the connection is up, the smoothed RTT
 * is its first sample, SYN sent to SYN-ACK received (none when the SYN was retransmitted: Karn).
 * Returns microseconds, or 0. */
static int64_t tcp_handshake_us(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || len < sizeof ti)
		return 0;
	return ti.tcpi_total_retrans == 0 ? (int64_t)ti.tcpi_rtt : 0;
}

static int on_closesocket(void *clientp, curl_socket_t fd)
{
	struct smtp_attempt *a = clientp;
	if (a->fd == fd) {
		a->fd = -1;
		sockts_rx_watch(-1);
	}
	return close(fd);
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
	struct smtp_attempt *a = userp;
	int64_t now = mono_us();
	(void)easy;
	if (a->kts && a->fd >= 0) {
		if (type == CURLINFO_HEADER_OUT || type == CURLINFO_DATA_OUT)
			now = stamp_or_now(a, sockts_tx_drain(a->fd), now); /* called right after the send */
		else if (type == CURLINFO_HEADER_IN)
			now = stamp_or_now(a, sockts_rx_last(), now);
	}
	switch (type) {
	case CURLINFO_TEXT:
		if (size >= 12 && strncmp(data, "Connected to", 12) == 0) {
			/* The connection was up when the SYN-ACK came: connect() (right after on_sockopt)
			 * plus the kernel's handshake time, not when this thread noticed. The banner
			 * stage starts there. */
			a->handshake_us = tcp_handshake_us(a->fd);
			int64_t up = a->t_socket_us + a->handshake_us;
			if (a->handshake_us > 0 && a->t_socket_us > 0 && up <= now)
				now = up;
			transcript_add(&a->tr, TR_TEXT, data, size, now);
			arm_deadline(a, STAGE_BANNER);
			break;
		}
		transcript_add(&a->tr, TR_TEXT, data, size, now);
		break;
	case CURLINFO_HEADER_OUT: {
		transcript_add(&a->tr, TR_OUT, data, size, now);
		const char *cmd = a->tr.n ? a->tr.v[a->tr.n - 1].line : "";
		if (strncasecmp(cmd, "QUIT", 4) == 0) {
			shut_socket(a);
			break;
		}
		/* Credentials configured but curl skipped AUTH (the server offered none): stop
		 * before any message goes out; the analysis reports it as a failure at auth. */
		if (a->auth_expected && !a->saw_auth && strncasecmp(cmd, "MAIL", 4) == 0) {
			shut_socket(a);
			break;
		}
		if (a->tr.in_auth)
			a->saw_auth = true;
		enum probe_stage st = transcript_command_stage(cmd);
		if (a->tr.in_auth)
			st = STAGE_AUTH;
		arm_deadline(a, st == STAGE_NONE ? a->waiting_stage : st);
		break;
	}
	case CURLINFO_HEADER_IN:
		transcript_add(&a->tr, TR_IN, data, size, now);
		/* The next wait (e.g. the TLS handshake after 220) counts against the same stage. */
		arm_deadline(a, a->waiting_stage);
		break;
	case CURLINFO_DATA_OUT:
		transcript_add(&a->tr, TR_BODY, data, size, now);
		arm_deadline(a, STAGE_EOD);
		break;
	default:
		break;
	}
	return 0;
}

/* Called by curl at least once a second, also inside its blocking end-of-data wait. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct smtp_attempt *a = clientp;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	struct tr_event *body = a->kts && a->fd >= 0 && ultotal > 0 && ulnow >= ultotal ? last_event(a) : NULL;
	if (body && body->kind == TR_BODY) {
		/* The message is out and its reply not in: inside curl's blocking end-of-data wait.
		 * The dot that ends the message is sent without a debug callback: its stamp starts
		 * the stage. (curl's read of the reply is stamped like every other.) */
		int64_t tx = sockts_tx_drain(a->fd);
		if (tx >= 0 && tx > body->t_us && tx <= mono_us())
			body->t_us = tx;
	}
	if (atomic_load(&a->cancelled))
		return 1;
	if (mono_us() >= a->deadline_us) {
		a->progress_timeout = a->waiting_stage;
		return 1;
	}
	return 0;
}

/* Opportunistic TLS: curl does not check the certificate when verification is off, so give
 * OpenSSL the trust store and the expected name ourselves; it then verifies (without refusing)
 * and CURLINFO_SSL_VERIFYRESULT tells what it found. */
static CURLcode on_ssl_ctx(CURL *easy, void *sslctx, void *userp)
{
	struct smtp_attempt *a = userp;
	SSL_CTX *ctx = sslctx;
	(void)easy;
	if (a->ca_file)
		SSL_CTX_load_verify_locations(ctx, a->ca_file, NULL);
	else
		SSL_CTX_set_default_verify_paths(ctx);
	if (a->host && a->host[0])
		X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(ctx), a->host, 0);
	return CURLE_OK;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
	struct smtp_attempt *a = userp;
	size_t room = size * nitems, left = a->message_len - a->message_off;
	size_t n = left < room ? left : room;
	memcpy(buf, a->message + a->message_off, n);
	a->message_off += n;
	return n;
}

static void attempt_finish(struct smtp_attempt *a, CURLcode rc, enum probe_stage timeout_stage)
{
	struct smtp_try *try = attempt_result(a);
	struct tr_context ctx;
	curl_off_t connect_us = 0, lookup_us = 0;
	long verify = -1;
	char *local_ip = NULL;

	if (rc == CURLE_ABORTED_BY_CALLBACK && a->progress_timeout != STAGE_NONE) {
		rc = CURLE_OPERATION_TIMEDOUT;
		timeout_stage = a->progress_timeout;
	}
	long os_errno = 0;
	if (rc == CURLE_COULDNT_CONNECT && curl_easy_getinfo(a->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
	    os_errno) {
		/* "Couldn't connect to server" alone does not say refused, unreachable or no route */
		size_t n = strlen(a->errbuf);
		snprintf(a->errbuf + n, sizeof a->errbuf - n, " (%s)", strerror((int)os_errno));
	}
	memset(&ctx, 0, sizeof ctx);
	ctx.curl_code = (int)rc;
	ctx.curl_error = a->errbuf;
	ctx.t_start_us = a->t_start_us;
	ctx.t_end_us = mono_us();
	ctx.timeout_stage = timeout_stage;
	ctx.timeout_ms = a->waiting_timeout_ms;
	ctx.tls_wanted = a->tls != CONF_TLS_NONE;
	ctx.tls_required = a->tls == CONF_TLS_REQUIRED;
	ctx.auth_expected = a->auth_expected;
	ctx.connect_ms = -1;
	curl_easy_getinfo(a->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
	curl_easy_getinfo(a->easy, CURLINFO_NAMELOOKUP_TIME_T, &lookup_us);
	curl_easy_getinfo(a->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
	curl_easy_getinfo(a->easy, CURLINFO_LOCAL_IP, &local_ip);
	if (connect_us > 0) {
		ctx.connected = true;
		ctx.connect_ms = (double)(connect_us - lookup_us) / 1000.0;
		/* The kernel's own measure of the handshake, when it has one: curl's includes the
		 * time until this thread ran. */
		if (a->handshake_us > 0 && (double)a->handshake_us / 1000.0 <= ctx.connect_ms)
			ctx.connect_ms = (double)a->handshake_us / 1000.0;
	}
	transcript_analyse(&a->tr, &ctx, try);
	if (try->tls_version[0]) {
		try->tls_verified = verify == X509_V_OK;
		if (!try->tls_verified && a->tls == CONF_TLS_OPPORTUNISTIC)
			smtp_try_add_warning(try, "TLS certificate not verified (%s): opportunistic TLS went on, "
					     "as an MTA would", X509_verify_cert_error_string(verify));
	}
	if (local_ip && ctx.connected)
		snprintf(try->local_ip, sizeof try->local_ip, "%s", local_ip);
	/* The address pinned with CONNECT_TO must be the one used (LIBRARY-NOTES 1.5). */
	char *primary_ip = NULL;
	curl_easy_getinfo(a->easy, CURLINFO_PRIMARY_IP, &primary_ip);
	if (ctx.connected && primary_ip && primary_ip[0] && strcmp(primary_ip, a->ip) != 0)
		smtp_try_add_warning(try, "connected to %s, not to the pinned address %s", primary_ip, a->ip);
	if (a->keep_transcript)
		transcript_export(&a->tr, a->t_start_us, try);
	a->finished = true;
}

/* Takes the easy handle out of the multi, which aborts a running transfer. */
static void attempt_detach(struct smtp_attempt *a)
{
	if (a->in_multi)
		curl_multi_remove_handle(a->multi, a->easy);
	a->in_multi = false;
}

static void on_deadline(struct smtp_attempt *a)
{
	shut_socket(a);
	attempt_detach(a);
	if (a->waiting_stage == STAGE_CONNECT)
		snprintf(a->errbuf, sizeof a->errbuf, "timeout: no TCP connection");
	attempt_finish(a, CURLE_OPERATION_TIMEDOUT, a->waiting_stage);
}

static void on_cancel(struct smtp_attempt *a)
{
	shut_socket(a);
	attempt_detach(a);
	a->finished = true;
}

/* The worker's loop: drive the multi until the transfer ends, the stage deadline passes or the
 * main thread cancels. */
static void attempt_run(struct smtp_attempt *a)
{
	while (!a->finished) {
		int running, left;
		CURLMcode mc = curl_multi_perform(a->multi, &running);
		CURLMsg *msg;
		while (mc == CURLM_OK && !a->finished && (msg = curl_multi_info_read(a->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURLcode rc = msg->data.result;
			attempt_detach(a);
			attempt_finish(a, rc, STAGE_NONE);
		}
		if (a->finished)
			break;
		int64_t now = mono_us();
		if (mc == CURLM_OK && now >= a->deadline_us) {
			on_deadline(a);
			break;
		}
		if (mc == CURLM_OK) {
			/* curl_multi_poll() also returns at curl's own next timeout, and at once on
			 * curl_multi_wakeup() */
			int64_t wait_ms = (a->deadline_us - now + 999) / 1000;
			mc = curl_multi_poll(a->multi, NULL, 0, wait_ms > INT_MAX ? INT_MAX : (int)wait_ms, NULL);
			kts_wakeup(a);
		}
		if (mc != CURLM_OK) {
			shut_socket(a);
			attempt_detach(a);
			snprintf(a->errbuf, sizeof a->errbuf, "curl multi: %s", curl_multi_strerror(mc));
			attempt_finish(a, mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT, STAGE_NONE);
			break;
		}
		if (atomic_load(&a->cancelled)) {
			on_cancel(a);
			break;
		}
	}
}

static char *bracket_ip(const char *ip)
{
	return strchr(ip, ':') ? xasprintf("[%s]", ip) : xstrdup(ip);
}

/* Builds the easy handle. Returns CURLE_OK or the failing setopt's code. */
static CURLcode attempt_setup(struct smtp_attempt *a)
{
	CURLcode rc = CURLE_OK;
	CURL *e = a->easy = curl_easy_init();
	if (!e)
		return CURLE_FAILED_INIT;
	char *host = bracket_ip(a->host && a->host[0] ? a->host : a->ip);
	char *ip = bracket_ip(a->ip);
	char *helo = curl_easy_escape(e, a->helo, 0);
	char *url = xasprintf("smtp://%s:%d/%s", host, a->port, helo ? helo : "");
	char *pin = xasprintf("%s:%d:%s:%d", host, a->port, ip, a->port);
	char *rcpt = xasprintf("<%s>", a->rcpt);
	char *from = xasprintf("<%s>", a->mail_from);
	a->connect_to = curl_slist_append(NULL, pin);
	a->rcpt_list = curl_slist_append(NULL, rcpt);

	/* Total hard cap: every stage at its limit, plus slack; stage deadlines normally fire first. */
	int64_t cap_ms = a->timeouts.connect_ms + a->timeouts.banner_ms + 6 * a->timeouts.command_ms +
			 a->timeouts.data_ms + a->timeouts.eod_ms + 5000;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, a->connect_to);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, a->rcpt_list);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(e, CURLOPT_READDATA, a);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)a->message_len);
	/* The probe is a few hundred bytes: the smallest upload buffer (default 64 KiB) keeps
	 * 1,000 probes in flight small. */
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	pthread_once(&dns_share_once, dns_share_init);
	if (dns_share)
		curl_easy_setopt(e, CURLOPT_SHARE, dns_share);
	curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(e, CURLOPT_DEBUGDATA, a);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, a);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, a);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	/* In the multi interface curl's connect timeout also covers the greeting, EHLO, STARTTLS
	 * and AUTH (its protocol-connect phase): leave those to our stage deadlines. */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cap_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cap_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp");
	long ssl = a->tls == CONF_TLS_REQUIRED ? CURLUSESSL_ALL : a->tls == CONF_TLS_OPPORTUNISTIC ? CURLUSESSL_TRY
												 : CURLUSESSL_NONE;
	curl_easy_setopt(e, CURLOPT_USE_SSL, ssl);
	/* opportunistic is what MTAs do with STARTTLS to an MX (Postfix "may"): encrypt when
	 * offered, check the certificate and report the result, never refuse over it. */
	bool enforce = a->tls_verify && a->tls == CONF_TLS_REQUIRED;
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, enforce ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, enforce ? 2L : 0L);
	if (!enforce) {
		curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, a);
	}
	if (a->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file);
	if (a->username) {
		curl_easy_setopt(e, CURLOPT_USERNAME, a->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, a->password ? a->password : "");
	}
	if (a->source_ip) {
		char *iface = xasprintf("host!%s", a->source_ip);
		rc = curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
		free(iface);
	}
	free(host);
	free(ip);
	curl_free(helo);
	free(url);
	free(pin);
	free(rcpt);
	free(from);
	return rc;
}

/* Runs one attempt to its end on the calling pool thread, with that thread's multi. */
static void attempt_execute(struct smtp_attempt *a, CURLM *multi)
{
	a->t_start_us = mono_us();
	a->multi = multi;
	CURLcode rc = multi ? attempt_setup(a) : CURLE_FAILED_INIT;
	CURLMcode mc = CURLM_OK;
	if (rc == CURLE_OK && (mc = curl_multi_add_handle(multi, a->easy)) == CURLM_OK) {
		a->in_multi = true;
		arm_deadline(a, STAGE_CONNECT);
		if (!atomic_load(&a->cancelled))
			attempt_run(a);
	} else {
		if (mc != CURLM_OK)
			log_warnx("curl_multi_add_handle: %s", curl_multi_strerror(mc));
		if (multi)
			snprintf(a->errbuf, sizeof a->errbuf, "%s",
				 curl_easy_strerror(rc != CURLE_OK ? rc : CURLE_FAILED_INIT));
		else
			snprintf(a->errbuf, sizeof a->errbuf, "curl_multi_init failed (out of descriptors?)");
		if (a->easy) {
			attempt_finish(a, rc != CURLE_OK ? rc : CURLE_FAILED_INIT, STAGE_NONE);
		} else {
			struct smtp_try *try = attempt_result(a);
			try->outcome = OUTCOME_FAILED;
			try->stage = STAGE_CONNECT;
			snprintf(try->error, sizeof try->error, "%s", a->errbuf);
		}
	}
	if (a->easy) {
		attempt_detach(a);
		curl_easy_cleanup(a->easy);
	}
	a->easy = NULL;
	a->multi = NULL;
	sockts_rx_watch(-1);
}

/* ---- the pool of attempt threads ---- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;     /* an attempt was queued */
	pthread_cond_t released; /* a cancelled attempt's thread let go of it */
	pthread_cond_t stalled;  /* wakes the manager: an attempt waits with no idle thread */
	struct smtp_attempt *head, *tail; /* queued, not yet taken */
	size_t queued, idle, threads;
	uint64_t takes;          /* attempts taken so far: the manager's measure of progress */
	bool manager, manager_waiting;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
	   .released = PTHREAD_COND_INITIALIZER, .stalled = PTHREAD_COND_INITIALIZER };

/* Takes the next queued attempt, waiting up to POOL_IDLE_S for one; NULL: time to exit.
 * Called and returns with pool.lock held. */
static struct smtp_attempt *pool_take(void)
{
	if (!pool.head) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += POOL_IDLE_S;
		pool.idle++;
		int rc = 0;
		while (!pool.head && rc != ETIMEDOUT)
			rc = pthread_cond_clockwait(&pool.work, &pool.lock, CLOCK_MONOTONIC, &until);
		pool.idle--;
	}
	struct smtp_attempt *a = pool.head;
	if (a) {
		pool.head = a->qnext;
		if (!pool.head)
			pool.tail = NULL;
		a->qnext = NULL;
		pool.queued--;
		pool.takes++;
	}
	return a;
}

static void *pool_thread_main(void *arg)
{
	struct pool_thread *t = arg;
	/* NULL when out of descriptors (its wakeup socketpair): each attempt then fails with a
	 * recorded reason, and the thread exits when idle like any other. */
	t->multi = curl_multi_init();
	pthread_mutex_lock(&pool.lock);
	struct smtp_attempt *a;
	while ((a = pool_take())) {
		a->state = A_RUNNING;
		a->worker = t;
		pthread_mutex_unlock(&pool.lock);
		attempt_execute(a, t->multi);
		pthread_mutex_lock(&pool.lock);
		a->state = A_FINISHED;
		a->worker = NULL;
		if (atomic_load(&a->cancelled))
			pthread_cond_broadcast(&pool.released); /* smtp_attempt_cancel() frees it */
		else
			evpost_fire(&a->post); /* the last touch: the loop may free it from here on */
	}
	pool.threads--;
	pthread_mutex_unlock(&pool.lock);
	curl_multi_cleanup(t->multi);
	free(t);
	return NULL;
}

static int start_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t tid;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&tid, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return err;
}

/* Starts one more pool thread. Returns 0 or an errno value. */
static int pool_spawn(void)
{
	struct pool_thread *t = xcalloc(1, sizeof *t);
	int err = start_detached(pool_thread_main, t);
	if (err)
		free(t);
	return err;
}

/*
 * How many threads. An attempt that finds no idle thread gets a new one at once while there are
 * fewer than pool_eager() threads. Beyond that the manager thread decides: when attempts wait and
 * not one was taken for POOL_STALL_US, every busy thread is waiting on its server, and the
 * manager doubles the threads, up to one per waiting attempt. While threads keep taking attempts
 * (fast servers), the queue drains without more threads: a thread that ends an attempt takes the
 * next one at once, with no sleep and no wakeup, and 1,000 attempts to a server that answers in
 * microseconds need not cost 1,000 thread starts. So limits.in_flight stays the most there are
 * at once, and the servers' slowness decides how many that is: 1,000 attempts to servers that
 * keep every thread waiting have their threads within about ten stalls (20 ms). An attempt's
 * time starts when a thread takes it, so its wait in the queue is in no stage.
 */
#define POOL_STALL_US 2000

static size_t pool_eager(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 2 ? 2 * (size_t)n : 4;
}

static void *pool_manager_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		while (pool.queued <= pool.idle) {
			pool.manager_waiting = true;
			pthread_cond_wait(&pool.stalled, &pool.lock);
			pool.manager_waiting = false;
		}
		uint64_t takes = pool.takes;
		pthread_mutex_unlock(&pool.lock);
		struct timespec nap = { 0, POOL_STALL_US * 1000L };
		nanosleep(&nap, NULL);
		pthread_mutex_lock(&pool.lock);
		if (pool.takes != takes || pool.queued <= pool.idle)
			continue; /* progress: the running threads will take the rest */
		/* Double the threads (at most one per waiting attempt): 1,000 attempts to slow servers
		 * have their threads within about ten stalls, and a passing hiccup adds few. */
		size_t need = pool.queued - pool.idle, started = 0;
		if (need > pool.threads)
			need = pool.threads > 0 ? pool.threads : 1;
		int err = 0;
		pthread_mutex_unlock(&pool.lock);
		while (started < need && !(err = pool_spawn()))
			started++;
		pthread_mutex_lock(&pool.lock);
		pool.threads += started;
		if (err)
			log_warnx("cannot start another probe thread (%s): attempts wait for a free one",
				  strerror(err));
	}
	return NULL;
}

/* Called with pool.lock held, right after an attempt was queued. Returns 0, or an errno value
 * when there is no thread at all and none could be started. */
static int pool_grow(void)
{
	if (pool.idle > 0)
		pthread_cond_signal(&pool.work);
	if (pool.queued <= pool.idle)
		return 0;
	if (!pool.manager && pool.threads >= pool_eager())
		pool.manager = start_detached(pool_manager_main, NULL) == 0;
	if (pool.manager && pool.threads >= pool_eager()) {
		if (pool.manager_waiting)
			pthread_cond_signal(&pool.stalled);
		return 0;
	}
	int err = pool_spawn();
	if (!err)
		pool.threads++;
	else if (pool.threads > 0)
		log_warnx("cannot start another probe thread (%s): the attempt waits for a free one",
			  strerror(err));
	return pool.threads > 0 ? 0 : err;
}

/* ---- main-thread side ---- */

static void attempt_free(struct smtp_attempt *a)
{
	curl_slist_free_all(a->rcpt_list);
	curl_slist_free_all(a->connect_to);
	transcript_fini(&a->tr);
	if (a->result) {
		smtp_try_fini(a->result);
		free(a->result);
	}
	if (a->password) {
		memset(a->password, 0, strlen(a->password));
		free(a->password);
	}
	free(a->host);
	free(a->ip);
	free(a->helo);
	free(a->mail_from);
	free(a->rcpt);
	free(a->message);
	free(a->ca_file);
	free(a->username);
	free(a->source_ip);
	free(a);
}

static void on_attempt_done(void *arg)
{
	struct smtp_attempt *a = arg;
	a->done(a->arg, attempt_result(a));
	attempt_free(a);
}

struct smtp_attempt *smtp_attempt_start(struct evloop *loop, const struct smtp_params *p, smtp_done_cb *done,
					void *arg)
{
	struct smtp_attempt *a = xcalloc(1, sizeof *a);
	a->host = xstrdup(p->host);
	a->ip = xstrdup(p->ip);
	a->helo = xstrdup(p->helo);
	a->mail_from = xstrdup(p->mail_from);
	a->rcpt = xstrdup(p->rcpt);
	a->message = xstrndup(p->message, p->message_len);
	a->message_len = p->message_len;
	a->ca_file = xstrdup(p->ca_file);
	a->username = xstrdup(p->username);
	a->password = xstrdup(p->password);
	a->source_ip = xstrdup(p->source_ip);
	a->port = p->port;
	a->timeouts = *p->timeouts;
	a->tls = p->tls;
	a->tls_verify = p->tls_verify;
	a->auth_expected = p->username != NULL;
	a->keep_transcript = p->keep_transcript;
	a->done = done;
	a->arg = arg;
	a->fd = -1;
	a->progress_timeout = STAGE_NONE;
	atomic_init(&a->cancelled, false);
	transcript_init(&a->tr);
	evpost_arm(loop, &a->post, on_attempt_done, a);

	pthread_mutex_lock(&pool.lock);
	a->state = A_QUEUED;
	if (pool.tail)
		pool.tail->qnext = a;
	else
		pool.head = a;
	pool.tail = a;
	pool.queued++;
	int err = pool_grow();
	if (err) {
		/* No thread to run it, now or later: a local failure, reported through the same
		 * path, from the loop. With other threads it waits for one of them. */
		pool.head = pool.tail = NULL; /* it was alone in the queue: no thread takes any */
		pool.queued = 0;
		a->state = A_FINISHED;
		struct smtp_try *try = attempt_result(a);
		try->outcome = OUTCOME_FAILED;
		try->stage = STAGE_CONNECT;
		snprintf(try->error, sizeof try->error, "cannot start a probe thread: %s", strerror(err));
		evpost_fire(&a->post);
	}
	pthread_mutex_unlock(&pool.lock);
	return a;
}

void smtp_attempt_cancel(struct smtp_attempt *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&pool.lock);
	atomic_store(&a->cancelled, true);
	if (a->state == A_QUEUED) {
		struct smtp_attempt **pp = &pool.head, *prev = NULL;
		while (*pp && *pp != a) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		if (*pp) {
			*pp = a->qnext;
			if (pool.tail == a)
				pool.tail = prev;
			pool.queued--;
		}
	} else if (a->state == A_RUNNING) {
		if (a->worker->multi)
			curl_multi_wakeup(a->worker->multi);
		/* quick: the thread aborts at once, or within 1 s in curl's blocking wait */
		while (a->state == A_RUNNING)
			pthread_cond_wait(&pool.released, &pool.lock);
	}
	pthread_mutex_unlock(&pool.lock);
	evpost_disarm(&a->post); /* also when it had ended and its post waits in the loop */
	attempt_free(a);
}
