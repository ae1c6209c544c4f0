#include "curl_glue.h"

#include <stdlib.h>

#include "clock.h"
#include "evloop.h"
#include "log.h"
#include "xalloc.h"

struct curl_glue {
	struct evloop *loop;
	CURLM *multi;
	struct evtimer timer;
};

static void glue_check_done(struct curl_glue *g)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(g->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;
		struct curl_glue_item *item = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&item);
		curl_multi_remove_handle(g->multi, easy);
		if (item && item->done)
			item->done(item, rc);
	}
}

static void glue_on_fd(void *arg, int fd, unsigned events)
{
	struct curl_glue *g = arg;
	int running, flags = 0;
	if (events & EVLOOP_READ)
		flags |= CURL_CSELECT_IN;
	if (events & EVLOOP_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & EVLOOP_ERROR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(g->multi, fd, flags, &running);
	glue_check_done(g);
}

static void glue_on_timer(void *arg)
{
	struct curl_glue *g = arg;
	int running;
	curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	glue_check_done(g);
}

static int glue_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_glue *g = userp;
	(void)easy;
	(void)socketp;
	switch (what) {
	case CURL_POLL_IN: evloop_fd_set(g->loop, s, EVLOOP_READ, glue_on_fd, g); break;
	case CURL_POLL_OUT: evloop_fd_set(g->loop, s, EVLOOP_WRITE, glue_on_fd, g); break;
	case CURL_POLL_INOUT: evloop_fd_set(g->loop, s, EVLOOP_READ | EVLOOP_WRITE, glue_on_fd, g); break;
	case CURL_POLL_REMOVE: evloop_fd_del(g->loop, s); break;
	default: break;
	}
	return 0;
}

static int glue_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_glue *g = userp;
	(void)multi;
	if (timeout_ms < 0)
		evtimer_stop(g->loop, &g->timer);
	else
		evtimer_start(g->loop, &g->timer, mono_us() + timeout_ms * 1000);
	return 0;
}

struct curl_glue *curl_glue_new(struct evloop *loop)
{
	struct curl_glue *g = xcalloc(1, sizeof *g);
	g->loop = loop;
	g->multi = curl_multi_init();
	if (!g->multi)
		fatalx("curl_multi_init failed");
	evtimer_init(&g->timer, glue_on_timer, g);
	curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, glue_socket_cb);
	curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
	curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, glue_timer_cb);
	curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
	return g;
}

void curl_glue_free(struct curl_glue *g)
{
	if (!g)
		return;
	evtimer_stop(g->loop, &g->timer);
	curl_multi_cleanup(g->multi);
	free(g);
}

int curl_glue_add(struct curl_glue *g, CURL *easy, struct curl_glue_item *item)
{
	curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)item);
	CURLMcode rc = curl_multi_add_handle(g->multi, easy);
	if (rc != CURLM_OK) {
		log_warnx("curl_multi_add_handle: %s", curl_multi_strerror(rc));
		return -1;
	}
	return 0;
}

void curl_glue_remove(struct curl_glue *g, CURL *easy)
{
	curl_multi_remove_handle(g->multi, easy);
}
