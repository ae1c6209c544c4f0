/* The daemon's graph refresh (graph_dir, graph_every): every graph_every a child process runs
 * `mailcanary -c CONF [-v...] graph --out graph_dir` (an exec of /proc/self/exe: librrd's
 * drawing is not thread-safe and never runs in the daemon itself), at nice GRAPH_REFRESH_NICE. At most one child at a time:
 * a refresh that comes due while the previous one still runs is skipped (logged). The child is
 * reaped from the event loop (a pidfd watched by it, or a short timer with waitpid WNOHANG
 * where pidfds are missing), never by blocking it; one log line per refresh gives its exit
 * status and duration. A failed refresh is logged and the daemon goes on. */
#ifndef MON_CLI_GRAPH_REFRESH_H
#define MON_CLI_GRAPH_REFRESH_H

struct cli_globals;
struct evloop;
struct graph_refresh;
struct mon_conf;

/* loop, g borrowed (they outlive the refresher); conf read now (graph_dir and graph_every are
 * copied). Returns owned; without graph_dir it does nothing until a reload sets one. */
struct graph_refresh *graph_refresh_new(struct evloop *loop, const struct cli_globals *g, const struct mon_conf *conf);
/* After a reload: graph_dir and graph_every from conf (read now). A child already running
 * finishes; the next refresh follows the new settings. */
void graph_refresh_set_conf(struct graph_refresh *r, const struct mon_conf *conf);
/* The daemon stops: no further refresh, and a running child is sent SIGTERM (the graph command
 * stops after the graph it is drawing). */
void graph_refresh_stop(struct graph_refresh *r);
/* Waits for a child still running (up to GRAPH_REFRESH_STOP_MS after graph_refresh_stop, then
 * SIGKILL), so that none is left behind. graph_refresh_free(NULL) does nothing. */
void graph_refresh_free(struct graph_refresh *r);

#define GRAPH_REFRESH_STOP_MS 10000
/* The child's CPU priority (setpriority): drawing is background work beside the probes. */
#define GRAPH_REFRESH_NICE 10

#endif
