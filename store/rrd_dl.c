#define MON_RRD_DL_IMPL
#include "rrd_dl.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "xalloc.h"

struct rrd_dl rrd_dl_api;

/* One handle for the process, loaded on the loop's thread or in the graph process. */
static bool loaded;

int rrd_dl_load(char **err)
{
	static const char *const names[] = { MON_LIBRRD_SONAME, "librrd.so.8", "librrd.so" };
	static const struct {
		const char *sym;
		size_t off;
	} syms[] = {
#define S(field, sym) { sym, offsetof(struct rrd_dl, field) }
		S(update_r, "rrd_update_r"),   S(create_r2, "rrd_create_r2"), S(info_r, "rrd_info_r"),
		S(info_free, "rrd_info_free"), S(last_r, "rrd_last_r"),       S(graph_v, "rrd_graph_v"),
		S(clear_error, "rrd_clear_error"), S(test_error, "rrd_test_error"), S(get_error, "rrd_get_error"),
		S(c_connect, "rrdc_connect"), S(c_disconnect, "rrdc_disconnect"), S(c_update, "rrdc_update"),
		S(c_info, "rrdc_info"),       S(c_last, "rrdc_last"),             S(c_create, "rrdc_create"),
		S(c_flush, "rrdc_flush"),     S(fetch_r, "rrd_fetch_r"),         S(c_fetch, "rrdc_fetch"),
		S(freemem, "rrd_freemem"),   S(tune, "rrd_tune"),
#undef S
	};
	if (loaded)
		return 0;
	void *h = NULL;
	const char *why = "";
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) {
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!h && i == 0)
			why = dlerror();
	}
	if (!h) {
		if (err)
			*err = xasprintf("cannot load librrd (%s): %s", MON_LIBRRD_SONAME, why ? why : "");
		return -1;
	}
	struct rrd_dl api;
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		void *f = dlsym(h, syms[i].sym);
		if (!f) {
			if (err)
				*err = xasprintf("librrd has no %s", syms[i].sym);
			dlclose(h);
			return -1;
		}
		memcpy((char *)&api + syms[i].off, &f, sizeof f); /* object to function pointer, POSIX */
	}
	rrd_dl_api = api;
	loaded = true;
	return 0;
}
