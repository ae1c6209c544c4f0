/* Placeholder: filled by the readback work (issue 4). */
#ifndef MON_PROBE_HEADERS_H
#define MON_PROBE_HEADERS_H

#endif
