/* The probe's identity token: the value of the X-Mailcanary-Token header,
 *   v1.PROBE_ID.SENT_AT_MS.MAC
 * where MAC is the first 16 bytes (32 hex digits) of HMAC-SHA256 under a key kept in
 * state_dir/token.key over "mailcanary-token-v1", the probe id, the seed name and the send
 * time (NUL-separated). Only a message whose token verifies for the seed's mailbox is ours:
 * a message that merely contains a token-like string, or a token with a forged or reused MAC
 * (another seed, another time), is foreign and never touched. */
#ifndef MON_PROBE_TOKEN_H
#define MON_PROBE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_KEY_LEN 32
#define TOKEN_MAX 96 /* longest token, with its NUL */

/* Loads state_dir/token.key (32 bytes, a regular file of mode 0600 or 0400 owned by us),
 * creating it from the system's random source on first use (created whole under a temporary
 * name and linked into place, so that concurrent first uses agree on one key). Creates
 * state_dir if missing. Returns 0, or -1 with *err (owned). */
int token_key_load(const char *state_dir, unsigned char key[TOKEN_KEY_LEN], char **err);

/* Writes the token of (probe_id, seed, sent_at_ms) into out (>= TOKEN_MAX bytes). */
void token_make(const unsigned char key[TOKEN_KEY_LEN], const char *probe_id, const char *seed,
		int64_t sent_at_ms, char *out, size_t outsz);

/* Checks value (a header's value: surrounding white space allowed) against seed. Returns 0 and
 * fills probe_id (>= 40 bytes) and *sent_at_ms when it is a token we made for this seed, -1
 * otherwise (malformed, another seed, or a MAC that does not verify; compared in constant
 * time). */
int token_verify(const unsigned char key[TOKEN_KEY_LEN], const char *value, const char *seed,
		 char *probe_id, size_t probe_id_sz, int64_t *sent_at_ms);

#endif
