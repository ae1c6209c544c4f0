/* librrd, loaded when first needed (dlopen) rather than linked: librrd brings cairo, pango,
 * glib and their kin, about 7.5 MiB resident in every process that links it (measured:
 * `mailcanary --version` 7.9 MiB without, 15.5 MiB with), also in those that never touch an RRD
 * file (rrd = false, check-config, the 1,000-probes-in-flight benchmark).
 *
 * Include this after <rrd.h> and <rrd_client.h>: it turns the librrd calls used by store/ into
 * calls through the loaded table. Every entry point that may reach them calls rrd_dl_load()
 * first. The table is process-wide, filled once (loop thread or the graph process). */
#ifndef MON_STORE_RRD_DL_H
#define MON_STORE_RRD_DL_H

#include <time.h>

#include <rrd.h>
#include <rrd_client.h>

struct rrd_dl {
	int (*update_r)(const char *, const char *, int, const char **);
	int (*create_r2)(const char *, unsigned long, time_t, int, const char **, const char *, int, const char **);
	rrd_info_t *(*info_r)(const char *);
	void (*info_free)(rrd_info_t *);
	time_t (*last_r)(const char *);
	rrd_info_t *(*graph_v)(int, char **);
	void (*clear_error)(void);
	int (*test_error)(void);
	char *(*get_error)(void);
	int (*c_connect)(const char *);
	int (*c_disconnect)(void);
	int (*c_update)(const char *, int, const char *const *);
	rrd_info_t *(*c_info)(const char *);
	time_t (*c_last)(const char *);
	int (*c_create)(const char *, unsigned long, time_t, int, int, const char **);
	int (*c_flush)(const char *);
	int (*fetch_r)(const char *, const char *, time_t *, time_t *, unsigned long *, unsigned long *, char ***,
		       rrd_value_t **);
	int (*c_fetch)(const char *, const char *, time_t *, time_t *, unsigned long *, unsigned long *, char ***,
		       rrd_value_t **);
	void (*freemem)(void *);
	int (*tune)(int, char **);
};

/* Loads librrd once. Returns 0, or -1 with *err (owned, may be NULL) saying why. */
int rrd_dl_load(char **err);

extern struct rrd_dl rrd_dl_api;

#ifndef MON_RRD_DL_IMPL
#define rrd_update_r (rrd_dl_api.update_r)
#define rrd_create_r2 (rrd_dl_api.create_r2)
#define rrd_info_r (rrd_dl_api.info_r)
#define rrd_info_free (rrd_dl_api.info_free)
#define rrd_last_r (rrd_dl_api.last_r)
#define rrd_graph_v (rrd_dl_api.graph_v)
#define rrd_clear_error (rrd_dl_api.clear_error)
#define rrd_test_error (rrd_dl_api.test_error)
#define rrd_get_error (rrd_dl_api.get_error)
#define rrdc_connect (rrd_dl_api.c_connect)
#define rrdc_disconnect (rrd_dl_api.c_disconnect)
#define rrdc_update (rrd_dl_api.c_update)
#define rrdc_info (rrd_dl_api.c_info)
#define rrdc_last (rrd_dl_api.c_last)
#define rrdc_create (rrd_dl_api.c_create)
#define rrdc_flush (rrd_dl_api.c_flush)
#define rrd_fetch_r (rrd_dl_api.fetch_r)
#define rrdc_fetch (rrd_dl_api.c_fetch)
#define rrd_freemem (rrd_dl_api.freemem)
#define rrd_tune (rrd_dl_api.tune)
#endif

#endif
