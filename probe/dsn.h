/* Placeholder: filled by the readback work (issue 4). */
#ifndef MON_PROBE_DSN_H
#define MON_PROBE_DSN_H

#endif
