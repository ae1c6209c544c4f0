#include "smtp.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "curl_glue.h"
#include "evloop.h"
#include "log.h"
#include "transcript.h"
#include "xalloc.h"

#if LIBCURL_VERSION_NUM < 0x080200
/* 7.88 spells it with three L's (LIBRARY-NOTES 1.3); unused, one recipient per probe. */
#define CURLOPT_MAIL_RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS
#endif

struct smtp_attempt {
	struct curl_glue_item item; /* first: CURLOPT_PRIVATE */
	struct evloop *loop;
	struct curl_glue *glue;
	CURL *easy;
	struct curl_slist *rcpt;
	struct curl_slist *connect_to;
	char errbuf[CURL_ERROR_SIZE];
	const char *message;
	size_t message_len, message_off;
	struct conf_timeouts timeouts;
	enum conf_tls tls;
	bool tls_verify, auth_expected, keep_transcript;
	struct transcript tr;
	int64_t t_start_us;
	/* per-stage deadline */
	struct evtimer deadline;
	enum probe_stage waiting_stage;
	int64_t waiting_timeout_ms;
	struct evtimer finish; /* defers a start-time failure to the loop */
	CURLcode early_rc;
	curl_socket_t fd;      /* the connection's socket while curl has it open, else -1 */
	smtp_done_cb *done;
	void *arg;
};

static void attempt_free(struct smtp_attempt *a)
{
	evtimer_stop(a->loop, &a->deadline);
	evtimer_stop(a->loop, &a->finish);
	if (a->easy)
		curl_easy_cleanup(a->easy);
	curl_slist_free_all(a->rcpt);
	curl_slist_free_all(a->connect_to);
	transcript_fini(&a->tr);
	free(a);
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
	evtimer_start(a->loop, &a->deadline, mono_us() + ms * 1000);
}

/* curl waits for the QUIT reply (and for any reply while disconnecting) *blocking*, up to
 * the server response timeout (smtp_disconnect -> smtp_block_statemach): one slow or hung server
 * would stall every probe on the loop. Once QUIT is written, or when we abort, we shut the socket
 * down: the QUIT (already queued) still goes out with a FIN, and curl's wait ends at once with
 * EOF. The QUIT reply decides nothing. */
static void shut_socket(struct smtp_attempt *a)
{
	/* Our own record of the socket: CURLINFO_ACTIVESOCKET is not set before the greeting. */
	if (a->fd >= 0)
		shutdown(a->fd, SHUT_RDWR);
}

static int on_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
	struct smtp_attempt *a = clientp;
	if (purpose == CURLSOCKTYPE_IPCXN)
		a->fd = fd;
	return CURL_SOCKOPT_OK;
}

static int on_closesocket(void *clientp, curl_socket_t fd)
{
	struct smtp_attempt *a = clientp;
	if (a->fd == fd)
		a->fd = -1;
	return close(fd);
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
	struct smtp_attempt *a = userp;
	int64_t now = mono_us();
	(void)easy;
	switch (type) {
	case CURLINFO_TEXT:
		transcript_add(&a->tr, TR_TEXT, data, size, now);
		if (size >= 12 && strncmp(data, "Connected to", 12) == 0)
			arm_deadline(a, STAGE_BANNER);
		break;
	case CURLINFO_HEADER_OUT: {
		transcript_add(&a->tr, TR_OUT, data, size, now);
		const char *cmd = a->tr.n ? a->tr.v[a->tr.n - 1].line : "";
		if (strncasecmp(cmd, "QUIT", 4) == 0) {
			shut_socket(a);
			break;
		}
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
	struct smtp_try try;
	struct tr_context ctx;
	curl_off_t connect_us = 0, lookup_us = 0;
	long verify = -1;
	char *local_ip = NULL;

	evtimer_stop(a->loop, &a->deadline);
	smtp_try_init(&try);
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
	if (a->easy) {
		curl_easy_getinfo(a->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
		curl_easy_getinfo(a->easy, CURLINFO_NAMELOOKUP_TIME_T, &lookup_us);
		curl_easy_getinfo(a->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
		curl_easy_getinfo(a->easy, CURLINFO_LOCAL_IP, &local_ip);
	}
	if (connect_us > 0) {
		ctx.connected = true;
		ctx.connect_ms = (double)(connect_us - lookup_us) / 1000.0;
	}
	transcript_analyse(&a->tr, &ctx, &try);
	if (try.tls_version[0])
		try.tls_verified = a->tls_verify && verify == 0;
	if (local_ip && ctx.connected)
		snprintf(try.local_ip, sizeof try.local_ip, "%s", local_ip);
	if (a->keep_transcript)
		transcript_export(&a->tr, a->t_start_us, &try);
	smtp_done_cb *done = a->done;
	void *arg = a->arg;
	attempt_free(a);
	done(arg, &try);
	smtp_try_fini(&try);
}

static void on_curl_done(struct curl_glue_item *item, CURLcode rc)
{
	attempt_finish((struct smtp_attempt *)item, rc, STAGE_NONE);
}

static void on_deadline(void *arg)
{
	struct smtp_attempt *a = arg;
	shut_socket(a);
	curl_glue_remove(a->glue, a->easy);
	if (a->waiting_stage == STAGE_CONNECT)
		snprintf(a->errbuf, sizeof a->errbuf, "timeout: no TCP connection");
	attempt_finish(a, CURLE_OPERATION_TIMEDOUT, a->waiting_stage);
}

static void on_early_failure(void *arg)
{
	struct smtp_attempt *a = arg;
	attempt_finish(a, a->early_rc, STAGE_NONE);
}

static char *bracket_ip(const char *ip)
{
	return strchr(ip, ':') ? xasprintf("[%s]", ip) : xstrdup(ip);
}

struct smtp_attempt *smtp_attempt_start(struct evloop *loop, struct curl_glue *glue, const struct smtp_params *p,
					smtp_done_cb *done, void *arg)
{
	struct smtp_attempt *a = xcalloc(1, sizeof *a);
	CURLcode rc = CURLE_OK;
	a->item.done = on_curl_done;
	a->loop = loop;
	a->glue = glue;
	a->message = p->message;
	a->message_len = p->message_len;
	a->timeouts = *p->timeouts;
	a->tls = p->tls;
	a->tls_verify = p->tls_verify;
	a->auth_expected = p->username != NULL;
	a->keep_transcript = p->keep_transcript;
	a->done = done;
	a->arg = arg;
	transcript_init(&a->tr);
	evtimer_init(&a->deadline, on_deadline, a);
	evtimer_init(&a->finish, on_early_failure, a);
	a->t_start_us = mono_us();
	a->fd = -1;

	a->easy = curl_easy_init();
	if (!a->easy)
		fatalx("curl_easy_init failed");
	char *host = bracket_ip(p->host && p->host[0] ? p->host : p->ip);
	char *ip = bracket_ip(p->ip);
	char *helo = curl_easy_escape(a->easy, p->helo, 0);
	char *url = xasprintf("smtp://%s:%d/%s", host, p->port, helo ? helo : "");
	char *pin = xasprintf("%s:%d:%s:%d", host, p->port, ip, p->port);
	char *rcpt = xasprintf("<%s>", p->rcpt);
	char *from = xasprintf("<%s>", p->mail_from);
	a->connect_to = curl_slist_append(NULL, pin);
	a->rcpt = curl_slist_append(NULL, rcpt);

	CURL *e = a->easy;
	/* Total hard cap: every stage at its limit, plus slack; stage deadlines normally fire first. */
	int64_t cap_ms = a->timeouts.connect_ms + a->timeouts.banner_ms + 6 * a->timeouts.command_ms +
			 a->timeouts.data_ms + a->timeouts.eod_ms + 5000;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, a->connect_to);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, a->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(e, CURLOPT_READDATA, a);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)p->message_len);
	curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(e, CURLOPT_DEBUGDATA, a);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, a);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
	curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, a);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(a->timeouts.connect_ms + 1000));
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cap_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp");
	long ssl = p->tls == CONF_TLS_REQUIRED ? CURLUSESSL_ALL : p->tls == CONF_TLS_OPPORTUNISTIC ? CURLUSESSL_TRY
												 : CURLUSESSL_NONE;
	curl_easy_setopt(e, CURLOPT_USE_SSL, ssl);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
	if (p->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
	if (p->username) {
		curl_easy_setopt(e, CURLOPT_USERNAME, p->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, p->password ? p->password : "");
	}
	if (p->source_ip) {
		char *iface = xasprintf("host!%s", p->source_ip);
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

	if (rc == CURLE_OK && curl_glue_add(glue, e, &a->item) == 0) {
		arm_deadline(a, STAGE_CONNECT);
		return a;
	}
	/* Fail from the loop, so done never runs inside the caller's call. */
	a->early_rc = rc != CURLE_OK ? rc : CURLE_FAILED_INIT;
	snprintf(a->errbuf, sizeof a->errbuf, "%s", curl_easy_strerror(a->early_rc));
	evtimer_start(loop, &a->finish, mono_us());
	return a;
}

void smtp_attempt_cancel(struct smtp_attempt *a)
{
	if (!a)
		return;
	if (!evtimer_armed(&a->finish)) {
		shut_socket(a);
		curl_glue_remove(a->glue, a->easy);
	}
	attempt_free(a);
}
