/* curl multi on the event loop (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION, as curl's ephiperfifo.c). */
#ifndef MON_PROBE_CURL_GLUE_H
#define MON_PROBE_CURL_GLUE_H

#include <curl/curl.h>

struct evloop;
struct curl_glue;

/* Embedded in the owner's struct; CURLOPT_PRIVATE points at it. */
struct curl_glue_item {
	void (*done)(struct curl_glue_item *item, CURLcode rc); /* after removal from the multi */
};

struct curl_glue *curl_glue_new(struct evloop *loop); /* returns owned */
void curl_glue_free(struct curl_glue *g);             /* all handles must have been removed */
/* Adds easy (borrowed) to the multi; item->done fires exactly once unless removed first. */
int curl_glue_add(struct curl_glue *g, CURL *easy, struct curl_glue_item *item);
/* Aborts a running transfer; done does not fire. Not to be called from a curl callback. */
void curl_glue_remove(struct curl_glue *g, CURL *easy);

#endif
