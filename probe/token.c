#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "xalloc.h"

#define MAC_BYTES 16
#define ID_LEN 32 /* message_new_probe_id(): 32 lower-case hex digits */

static int read_key(const char *path, unsigned char key[TOKEN_KEY_LEN], char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*err = xasprintf("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		*err = xasprintf("%s is not a regular file", path);
	else if (st.st_mode & 077)
		*err = xasprintf("%s is readable by group or others (mode %03o): chmod 600 it", path,
				 (unsigned)(st.st_mode & 0777));
	else if (st.st_uid != geteuid())
		*err = xasprintf("%s belongs to another user (uid %u)", path, (unsigned)st.st_uid);
	else if ((n = read(fd, key, TOKEN_KEY_LEN)) != TOKEN_KEY_LEN || st.st_size != TOKEN_KEY_LEN)
		*err = xasprintf("%s is not a %d-byte key (size %jd)", path, TOKEN_KEY_LEN, (intmax_t)st.st_size);
	close(fd);
	return *err ? -1 : 0;
}

int token_key_load(const char *state_dir, unsigned char key[TOKEN_KEY_LEN], char **err)
{
	*err = NULL;
	char *path = xasprintf("%s/token.key", state_dir);
	if (access(path, F_OK) == 0) {
		int rc = read_key(path, key, err);
		free(path);
		return rc;
	}
	if (mkdir_p(state_dir, 0750) < 0) {
		*err = xasprintf("cannot create %s: %s", state_dir, strerror(errno));
		free(path);
		return -1;
	}
	/* First use: write the whole key under a private name, then link it into place; if
	 * another process got there first, link fails and its key is the one. */
	unsigned char fresh[TOKEN_KEY_LEN];
	char *tmp = xasprintf("%s/.token.key.%ld", state_dir, (long)getpid());
	int fd = -1;
	if (RAND_bytes(fresh, sizeof fresh) != 1) {
		*err = xasprintf("no random bytes for %s", path);
	} else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		*err = xasprintf("cannot create %s: %s", tmp, strerror(errno));
	} else if (write(fd, fresh, sizeof fresh) != (ssize_t)sizeof fresh || fsync(fd) < 0) {
		*err = xasprintf("cannot write %s: %s", tmp, strerror(errno));
	} else if (link(tmp, path) < 0 && errno != EEXIST) {
		*err = xasprintf("cannot create %s: %s", path, strerror(errno));
	}
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	OPENSSL_cleanse(fresh, sizeof fresh);
	free(tmp);
	int rc = *err ? -1 : read_key(path, key, err);
	free(path);
	return rc;
}

static void mac_hex(const unsigned char key[TOKEN_KEY_LEN], const char *probe_id, const char *seed,
		    int64_t sent_at_ms, char hex[2 * MAC_BYTES + 1])
{
	static const char domain[] = "mailcanary-token-v1";
	char when[24];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(when, sizeof when, "%" PRId64, sent_at_ms);
	size_t lid = strlen(probe_id), lseed = strlen(seed);
	size_t len = sizeof domain + lid + 1 + lseed + 1 + (size_t)n;
	unsigned char *msg = xmalloc(len);
	unsigned char *p = msg;
	memcpy(p, domain, sizeof domain); /* with its NUL */
	p += sizeof domain;
	memcpy(p, probe_id, lid + 1);
	p += lid + 1;
	memcpy(p, seed, lseed + 1);
	p += lseed + 1;
	memcpy(p, when, (size_t)n);
	HMAC(EVP_sha256(), key, TOKEN_KEY_LEN, msg, len, md, &mdlen);
	free(msg);
	for (int i = 0; i < MAC_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void token_make(const unsigned char key[TOKEN_KEY_LEN], const char *probe_id, const char *seed,
		int64_t sent_at_ms, char *out, size_t outsz)
{
	char hex[2 * MAC_BYTES + 1];
	mac_hex(key, probe_id, seed, sent_at_ms, hex);
	snprintf(out, outsz, "v1.%s.%" PRId64 ".%s", probe_id, sent_at_ms, hex);
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int token_verify(const unsigned char key[TOKEN_KEY_LEN], const char *value, const char *seed,
		 char *probe_id, size_t probe_id_sz, int64_t *sent_at_ms)
{
	if (!value || !seed || probe_id_sz < ID_LEN + 1)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t len = strlen(value);
	while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
		       value[len - 1] == '\n'))
		len--;
	/* v1. + 32 hex + . + 1..19 digits + . + 32 hex */
	if (len < 3 + ID_LEN + 1 + 1 + 1 + 2 * MAC_BYTES || len > TOKEN_MAX - 1 || strncmp(value, "v1.", 3) != 0)
		return -1;
	const char *id = value + 3, *when = id + ID_LEN + 1;
	const char *mac = value + len - 2 * MAC_BYTES;
	if (id[ID_LEN] != '.' || !all_hex(id, ID_LEN) || mac[-1] != '.' || !all_hex(mac, 2 * MAC_BYTES))
		return -1;
	size_t nwhen = (size_t)(mac - 1 - when);
	if (nwhen < 1 || nwhen > 18 || (nwhen > 1 && when[0] == '0'))
		return -1;
	int64_t t = 0;
	for (size_t i = 0; i < nwhen; i++) {
		if (when[i] < '0' || when[i] > '9')
			return -1;
		t = t * 10 + (when[i] - '0');
	}
	char idbuf[ID_LEN + 1], want[2 * MAC_BYTES + 1];
	memcpy(idbuf, id, ID_LEN);
	idbuf[ID_LEN] = '\0';
	mac_hex(key, idbuf, seed, t, want);
	if (CRYPTO_memcmp(want, mac, 2 * MAC_BYTES) != 0)
		return -1;
	memcpy(probe_id, idbuf, ID_LEN + 1);
	*sent_at_ms = t;
	return 0;
}
