#include "headers.h"

typedef int mon_headers_placeholder; /* a translation unit needs a declaration */
