#include "dsn.h"

typedef int mon_dsn_placeholder; /* a translation unit needs a declaration */
