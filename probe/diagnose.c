/* diagnose: the table of causes and its matcher (see diagnose.h). The rules restate
 * /work/shared/DOMAIN.md and RFC 3463/5248: stage by stage what a refusal usually means, refined
 * by the reply's enhanced code and wording and by what is known about the sending side. */
#include "diagnose.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "xalloc.h"

/* ---- the table ---- */

#define O_ACC DIAG_O(DIAG_ACCEPTED)
#define O_DEF DIAG_O(DIAG_DEFERRED)
#define O_REJ DIAG_O(DIAG_REJECTED)
#define O_FAIL DIAG_O(DIAG_FAILED)
#define O_UNK DIAG_O(DIAG_UNKNOWN)
#define O_REFUSED (O_DEF | O_REJ)
#define S_NONE DIAG_S(STAGE_NONE)
#define S_DNS DIAG_S(STAGE_DNS)
#define S_CONNECT DIAG_S(STAGE_CONNECT)
#define S_BANNER DIAG_S(STAGE_BANNER)
#define S_EHLO DIAG_S(STAGE_EHLO)
#define S_STARTTLS DIAG_S(STAGE_STARTTLS)
#define S_AUTH DIAG_S(STAGE_AUTH)
#define S_MAIL DIAG_S(STAGE_MAIL)
#define S_RCPT DIAG_S(STAGE_RCPT)
#define S_DATA DIAG_S(STAGE_DATA)
#define S_EOD DIAG_S(STAGE_EOD)
#define F_RDNS (DIAG_F_PTR_MISSING | DIAG_F_FCRDNS_FAIL)
#define F_AUTH (DIAG_F_SPF_FAIL | DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL)

#define FIX_PTR "fix PTR: give the sending IP a PTR record whose name resolves back to the same IP, " \
		"and use that name as the sender's helo"
#define FIX_AUTH "fix SPF, DKIM and DMARC: the envelope domain's SPF must authorise the sending IP, " \
		 "the message must carry a DKIM signature with a published key, and SPF or DKIM must " \
		 "align with the From domain's DMARC policy"

/* First match wins: specific rules (DNS findings, wording, enhanced codes) before the rules
 * per stage, and those before the catch-all rules per outcome. */
const struct diag_rule diag_rules[] = {
	/* -- the sending side's DNS, as found by the trust checks -- */
	{ .id = "dnsbl-listed", .outcomes = O_REFUSED | O_FAIL,
	  .stages = S_CONNECT | S_BANNER | S_MAIL | S_RCPT | S_DATA | S_EOD, .findings = DIAG_F_DNSBL_LISTED,
	  .cause = "the receiver refuses at the {stage} stage, and the sending IP is listed on {zone}",
	  .next_step = "request delisting from {zone}, after fixing what got the IP listed (a compromised "
		       "account, an open relay, unwanted mail)" },
	{ .id = "fix-ptr", .outcomes = O_REFUSED | O_FAIL, .stages = S_BANNER | S_EHLO, .findings = F_RDNS,
	  .cause = "the receiver refuses at the {stage} stage, and {findings}: many receivers refuse "
		   "clients without forward-confirmed reverse DNS",
	  .next_step = FIX_PTR },
	{ .id = "fix-helo", .outcomes = O_REFUSED, .stages = S_EHLO, .findings = DIAG_F_HELO_UNRESOLVABLE,
	  .cause = "EHLO and HELO were refused, and {findings}",
	  .next_step = "set the sender's helo to a fully-qualified host name that resolves to the sending IP "
		       "(ideally the IP's PTR name)" },
	{ .id = "fix-spf", .outcomes = O_REFUSED, .stages = S_MAIL | S_RCPT | S_DATA | S_EOD,
	  .findings = DIAG_F_SPF_FAIL,
	  .cause = "the receiver refuses at the {stage} stage, and {findings}",
	  .next_step = "fix SPF: authorise the sending IP (or the relay) in the SPF record of the mail_from "
		       "domain" },
	{ .id = "fix-dkim-dmarc", .outcomes = O_REFUSED, .stages = S_DATA | S_EOD,
	  .findings = DIAG_F_DKIM_FAIL | DIAG_F_DMARC_FAIL,
	  .cause = "the message was refused after its data, and {findings}: receivers score or refuse "
		   "unauthenticated mail",
	  .next_step = FIX_AUTH },

	/* -- what the reply says, at any stage -- */
	{ .id = "greylisting", .outcomes = O_DEF,
	  .text = { "greylist", "graylist", "grey-list", "gray-list", "grey list", "gray list" },
	  .cause = "greylisting: the receiver defers the first attempt from an unknown sending IP, sender "
		   "and recipient, and accepts a retry after a delay",
	  .next_step = "nothing to fix when a retry is accepted (smtp.accepted_after_s says what it cost); if "
		       "retries stay deferred, keep the same source_ip and retry within the receiver's "
		       "window (retry.schedule)" },
	{ .id = "blocklist", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.606" },
	  .text = { "blocked using", "blocklist", "blacklist", "block list", "black list", "dnsbl", "spamhaus",
		    "spamcop", "sorbs", "banned sending ip" },
	  .cause = "the receiver says the sending IP is on a blocklist",
	  .next_step = "look the sending IP up on the list the reply names, fix what got it listed and "
		       "request delisting" },
	{ .id = "rdns", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.25" },
	  .text = { "reverse dns", "reverse hostname", "reverse lookup", "rdns", "ptr record", "no ptr",
		    "cannot find your hostname", "name lookup failed", "client host name" },
	  .cause = "the receiver found no valid reverse DNS for the sending IP (no PTR, or a PTR name "
		   "that does not resolve back to it)",
	  .next_step = FIX_PTR },
	{ .id = "helo", .outcomes = O_REFUSED,
	  .text = { "helo command rejected", "invalid helo", "bad helo", "helo name", "ehlo name",
		    "fully-qualified hostname", "fully qualified hostname", "mismatches client ip" },
	  .cause = "the receiver refuses the helo name: not fully qualified, not resolvable, or not "
		   "matching the sending IP",
	  .next_step = "set the sender's helo to a fully-qualified host name that resolves to the sending IP "
		       "(ideally the IP's PTR name)" },
	{ .id = "spf", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.23", "x.7.24" },
	  .text = { "spf", "sender policy framework" },
	  .cause = "the receiver's SPF check fails: the envelope domain's SPF record does not authorise "
		   "the sending IP",
	  .next_step = "fix SPF: authorise the sending IP (or the relay) in the SPF record of the mail_from "
		       "domain" },
	{ .id = "dmarc", .outcomes = O_REFUSED,
	  .text = { "dmarc" },
	  .cause = "the receiver applies the From domain's DMARC policy: neither SPF nor DKIM passes "
		   "aligned with the From domain",
	  .next_step = "sign with DKIM for the From domain (or align the envelope domain with it) and check "
		       "the DMARC record" },
	{ .id = "dkim", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.20", "x.7.21", "x.7.22" },
	  .text = { "dkim" },
	  .cause = "the receiver wants a valid DKIM signature the message does not have",
	  .next_step = "sign the probes as the real mail is signed, with a key published in DNS; check "
		       "readback.auth.dkim" },
	{ .id = "relay-denied", .outcomes = O_REFUSED,
	  .text = { "relay access denied", "relaying denied", "relay denied", "relay not permitted",
		    "not permitted to relay", "unable to relay", "we do not relay", "not allowed to relay",
		    "relaying not allowed" },
	  .cause = "the server refuses to relay: it does not take mail for the seed's domain, or not "
		   "from this client without authentication",
	  .next_step = "mode mx: check the seed domain's MX records; mode relay: give the sender username "
		       "and password_file for SMTP AUTH" },
	{ .id = "auth-required", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.57" },
	  .text = { "authentication required", "authentication is required", "auth required",
		    "must authenticate", "turn on smtp authentication", "without authentication" },
	  .cause = "the server wants SMTP AUTH before it takes this mail",
	  .next_step = "give the sender username and password_file (relay mode), or send to the seed's MX "
		       "(mode mx)" },
	{ .id = "auth-failed", .outcomes = O_REFUSED | O_FAIL, .stages = S_AUTH,
	  .enhanced = { "x.7.8" },
	  .text = { "authentication failed", "credentials invalid", "invalid credentials", "bad credentials",
		    "username and password not accepted" },
	  .cause = "the server refused the sender's credentials",
	  .next_step = "check the sender's username and its password_file or password_env, and that the "
		       "account is neither locked nor over a limit" },
	{ .id = "auth-not-offered", .outcomes = O_FAIL, .stages = S_AUTH,
	  .text = { "offered no auth" },
	  .cause = "credentials are configured, but the server offered no AUTH (servers often offer it "
		   "only after STARTTLS, or only on the submission port)",
	  .next_step = "use the submission port 587 with tls = required, or drop username from a sender "
		       "that needs no AUTH" },
	{ .id = "auth-local", .outcomes = O_FAIL, .stages = S_AUTH,
	  .text = { "cannot read the password" },
	  .cause = "the sender's password could not be read on this host",
	  .next_step = "fix password_file (owned by the mailcanary user, mode 0600 or 0400) or password_env" },
	{ .id = "starttls-required", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.10", "x.7.11" },
	  .text = { "starttls", "encryption required", "tls required", "requires tls", "must use tls" },
	  .cause = "the server requires TLS and the session was not encrypted",
	  .next_step = "set tls = opportunistic or required on the sender" },
	{ .id = "starttls-not-offered", .outcomes = O_FAIL, .stages = S_STARTTLS,
	  .text = { "not offered by the server" },
	  .cause = "tls = required, but the server did not offer STARTTLS (or something on the path "
		   "removed it)",
	  .next_step = "check the EHLO reply (--transcript): if the server should offer STARTTLS, suspect a "
		       "middlebox stripping it; else use tls = opportunistic" },
	{ .id = "tls-certificate", .outcomes = O_FAIL, .stages = S_STARTTLS,
	  .text = { "certificate", "verify", "issuer", "self signed", "self-signed", "expired" },
	  .cause = "the server's TLS certificate does not verify: wrong name, incomplete chain, expired, "
		   "or signed by a CA the sender does not trust",
	  .next_step = "give the sender the ca_file that signs the server's certificate, or have the "
		       "certificate fixed (tls = opportunistic does not check it)" },
	{ .id = "tls-handshake", .outcomes = O_FAIL, .stages = S_STARTTLS,
	  .cause = "the TLS handshake failed: no TLS version or cipher both sides accept, or the server "
		   "closed the connection during the handshake",
	  .next_step = "compare the TLS versions and ciphers both sides allow (--transcript shows the "
		       "handshake)" },
	{ .id = "mailbox-full", .outcomes = O_REFUSED,
	  .enhanced = { "x.2.2" },
	  .text = { "mailbox full", "mailbox is full", "over quota", "quota exceeded", "exceeded storage",
		    "mailbox size limit", "out of storage space" },
	  .cause = "the seed mailbox is full",
	  .next_step = "empty the seed mailbox or raise its quota; check that the readback deletes found "
		       "probes (readback.cleanup) and that nothing else fills it" },
	{ .id = "reputation", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.650", "x.7.750" },
	  .text = { "reputation", "unsolicited", "user complaints", "suspicious", "[tss", "spamming",
		    "poor sending" },
	  .cause = "the receiver throttles or refuses this sender for its reputation (complaints, spam "
		   "reports, sudden volume)",
	  .next_step = "read the provider's postmaster pages and feedback loops, send less and steadily "
		       "(warm up new IPs), and fix authentication; a refusal only here is this provider's "
		       "view of the sender" },
	{ .id = "rate-limit", .outcomes = O_REFUSED,
	  .enhanced = { "x.7.28" },
	  .text = { "rate limit", "ratelimit", "rate-limit", "rate that prevents", "unusual rate",
		    "too many connections", "too many concurrent", "too many messages", "too many mails",
		    "sending rate", "frequency limit", "slow down", "throttl", "server busy" },
	  .cause = "a rate limit: the receiver limits the connections or messages it takes from this "
		   "sender per unit of time",
	  .next_step = "lower the rate to this domain (limits.per_domain, limits.spacing) and let the retries "
		       "spread out; a limit hit at a low rate is a reputation problem" },
	{ .id = "user-unknown", .outcomes = O_REFUSED,
	  .enhanced = { "x.1.1", "x.1.10" },
	  .text = { "user unknown", "unknown user", "no such user", "does not exist", "recipient not found",
		    "recipientnotfound", "recipnotfound", "invalid recipient", "unknown recipient",
		    "no such recipient", "mailbox not found", "inactive email address", "no longer on server",
		    "user doesn't have", "not listed in" },
	  .cause = "the receiver says the seed's mailbox does not exist",
	  .next_step = "check the seed's address (a typo, a deleted or renamed account) and that the MX is "
		       "the right one for its domain" },
	{ .id = "mailbox-disabled", .outcomes = O_REFUSED,
	  .enhanced = { "x.2.1" },
	  .text = { "account is disabled", "is disabled", "mailbox disabled", "account has been disabled",
		    "mailbox is frozen", "suspended" },
	  .cause = "the seed mailbox exists but is disabled or suspended",
	  .next_step = "log in to the seed account and reactivate it (providers disable idle accounts)" },
	{ .id = "system-not-accepting", .outcomes = O_REFUSED,
	  .enhanced = { "x.3.2" },
	  .text = { "not accepting network messages", "not accepting connections", "not accepting mail" },
	  .cause = "the receiving system is not accepting mail now: overload, maintenance, or a deliberate "
		   "refusal of this sender",
	  .next_step = "retry later (the retry schedule does); if it lasts for hours, or only this sender "
		       "gets it, ask the receiver's postmaster" },
	{ .id = "system-resources", .outcomes = O_REFUSED,
	  .enhanced = { "x.3.1" },
	  .text = { "insufficient system storage", "system resources", "out of memory", "queue full" },
	  .cause = "the receiving system is short of resources (disk space, queue)",
	  .next_step = "nothing to fix on the sending side: retry later; tell the receiver's postmaster if "
		       "it lasts" },
	{ .id = "message-too-big", .outcomes = O_REFUSED,
	  .enhanced = { "x.3.4", "x.2.3" },
	  .text = { "too big", "too large", "size limit", "exceeds size", "message size" },
	  .cause = "the message is bigger than the receiver takes",
	  .next_step = "probes are small: check the headers the configuration adds; a receiver that refuses "
		       "a small message for its size is misconfigured" },
	{ .id = "content", .outcomes = O_REFUSED, .stages = S_NONE | S_DATA | S_EOD, /* none: a bounce's */
	  .text = { "spam", "content", "virus", "malware", "phish", "scored", "filter" },
	  .cause = "content filtering: the receiver refused the message itself (spam score, content rules, "
		   "malware scan)",
	  .next_step = "send a small plain-text probe to compare, check DKIM and DMARC alignment, and ask for "
		       "the filter's reason (its postmaster pages or logs)" },
	{ .id = "expired", .outcomes = O_REFUSED,
	  .enhanced = { "x.4.7" },
	  .text = { "message expired", "expired", "retry timeout exceeded" },
	  .cause = "the relay gave up: the message stayed undeliverable until its queue lifetime ran out",
	  .next_step = "look at the refusals behind it (the bounce's diagnostic, earlier delayed notices)" },
	{ .id = "remote-network", .outcomes = O_REFUSED,
	  .enhanced = { "4.4.1", "4.4.2" }, /* Microsoft's 5.4.1 at RCPT means "no such recipient here" */
	  .text = { "connection timed out", "connection refused", "no route to host" },
	  .cause = "the receiving server could not be reached, or the connection to it broke",
	  .next_step = "check the receiver's MX hosts and their reachability on TCP 25" },
	{ .id = "greylisting-likely", .outcomes = O_DEF, .stages = S_RCPT,
	  .enhanced = { "4.2.0", "4.7.1" },
	  .cause = "probably greylisting ({code} {enhanced} at RCPT, with no other reason given, is its "
		   "usual reply): a first attempt is deferred, a retry after a delay is accepted",
	  .next_step = "nothing to fix when a retry is accepted; if retries stay deferred, check the retry "
		       "interval (retry.schedule) and the send rate" },
	{ .id = "policy", .outcomes = O_REFUSED, /* at STARTTLS and AUTH, x.7.x is about TLS and AUTH */
	  .stages = S_NONE | S_BANNER | S_EHLO | S_MAIL | S_RCPT | S_DATA | S_EOD,
	  .enhanced = { "x.7.*" },
	  .text = { "policy reasons", "policy violation", "policy rejection", "not allowed" },
	  .cause = "the receiver refuses for a security or policy reason ({enhanced}): its own rules about "
		   "this sender, IP or message",
	  .next_step = "read the reply text for the policy it names, and check the sending side's PTR, SPF, "
		       "DKIM, DMARC and blocklist status (mailcanary dns)" },

	/* -- what no reply decided: our side, the network, the receiver's DNS -- */
	{ .id = "interrupted", .outcomes = O_FAIL, .stages = S_NONE,
	  .text = { "interrupted" },
	  .cause = "mailcanary stopped while this attempt was in flight",
	  .next_step = "nothing to fix on the mail side: the next attempt follows the retry schedule" },
	{ .id = "local-error", .outcomes = O_FAIL,
	  .text = { "cannot start a probe thread", "no random bytes", "out of descriptors", "curl_multi_init" },
	  .cause = "a problem of the probing host itself",
	  .next_step = "check the host's resources (file descriptors, threads, entropy) and mailcanary's log" },
	{ .id = "null-mx", .outcomes = O_FAIL, .stages = S_DNS,
	  .text = { "null mx" },
	  .cause = "the seed's domain publishes a null MX: it takes no mail at all",
	  .next_step = "use a seed address at a domain that receives mail" },
	{ .id = "dns-no-address", .outcomes = O_FAIL, .stages = S_DNS,
	  .text = { "has no address", "none of the" },
	  .cause = "the MX host of the seed's domain has no address records (A or AAAA)",
	  .next_step = "the receiver's DNS is broken (dig A MXHOST); nothing to fix on the sending side" },
	{ .id = "dns-nxdomain", .outcomes = O_FAIL, .stages = S_DNS,
	  .text = { "nxdomain" },
	  .cause = "the seed's domain (or its relay host) does not exist in DNS",
	  .next_step = "check the seed address's domain for a typo, and its registration and MX records "
		       "(dig MX DOMAIN)" },
	{ .id = "dns-resolver", .outcomes = O_FAIL, .stages = S_DNS,
	  .text = { "timeout", "servfail", "refused" },
	  .cause = "DNS lookups time out or fail: the resolver in dns.servers, or the name servers of the "
		   "seed's domain",
	  .next_step = "check dns.servers and the domain's name servers (dig +trace MX DOMAIN)" },
	{ .id = "dns", .outcomes = O_FAIL, .stages = S_DNS,
	  .cause = "the DNS lookup of the seed's MX hosts or their addresses failed",
	  .next_step = "check the seed domain's MX and address records and dns.servers" },
	{ .id = "connect-refused", .outcomes = O_FAIL, .stages = S_CONNECT,
	  .text = { "refused" },
	  .cause = "the server refused the TCP connection: nothing listens on the port, or a firewall "
		   "rejects it",
	  .next_step = "check the MX host and port (the sender's port), and nc -vz HOST PORT from this host" },
	{ .id = "connect-timeout", .outcomes = O_FAIL, .stages = S_CONNECT,
	  .text = { "timeout", "timed out" },
	  .cause = "no answer to the TCP connection: a firewall drops it, outbound port 25 is blocked on this "
		   "network (many clouds and ISPs block it), or the host is down",
	  .next_step = "check that this host may connect out to TCP 25 (or 587 to a smarthost) and that the "
		       "MX is up" },
	{ .id = "connect", .outcomes = O_FAIL, .stages = S_CONNECT,
	  .cause = "the TCP connection failed: network unreachable, host down, or a firewall",
	  .next_step = "check the reachability of TCP 25 (or 587 to a smarthost) from this host" },
	{ .id = "banner-421", .outcomes = O_DEF, .stages = S_BANNER, .code = 421,
	  .cause = "the receiver closes the session at the greeting (421): overloaded, too many connections, "
		   "or it blocks the sending IP early (postscreen, a blocklist)",
	  .next_step = "check blocklists for the sending IP and the receiver's connection limits; an MTA "
		       "retries later, and so does the retry schedule" },
	{ .id = "banner-refused", .outcomes = O_REFUSED, .stages = S_BANNER,
	  .cause = "the receiver refuses the session at the greeting: overload, or the sending IP is refused "
		   "early (postscreen, a blocklist)",
	  .next_step = "check blocklists for the sending IP (mailcanary dns) and the receiver's load; retry "
		       "later" },
	{ .id = "banner-timeout", .outcomes = O_FAIL, .stages = S_BANNER,
	  .text = { "timeout", "timed out" },
	  .cause = "no greeting within timeouts.banner: the receiver is overloaded, or delays the greeting "
		   "for clients it distrusts (tarpitting)",
	  .next_step = "compare with other vantages, raise timeouts.banner towards RFC 5321's 5 minutes, and "
		       "check blocklists for the sending IP" },
	{ .id = "dropped", .outcomes = O_FAIL,
	  .text = { "closed", "reset by peer" },
	  .cause = "the server closed the connection without a reply at the {stage} stage: overload, a "
		   "crash, or a silent block (firewall, intrusion prevention, postscreen)",
	  .next_step = "look at the dialogue (--transcript); repeated drops at the same stage point to a "
		       "block of the sending IP: check blocklists" },
	{ .id = "timeout", .outcomes = O_FAIL,
	  .text = { "timeout", "timed out" },
	  .cause = "no reply at the {stage} stage within its timeout: the receiver is slow, overloaded, or "
		   "tarpits this client",
	  .next_step = "watch the stage's latency trend; raise timeouts.* towards RFC 5321's values if the "
		       "receiver is merely slow" },

	/* -- per stage (DOMAIN.md) -- */
	{ .id = "ehlo-refused", .outcomes = O_REFUSED, .stages = S_EHLO,
	  .cause = "EHLO and HELO were refused: usually a helo name that does not resolve, or missing or "
		   "mismatched reverse DNS (PTR) of the sending IP",
	  .next_step = "check the PTR of the sending IP, that its name resolves back to the IP, and that "
		       "helo is a real host name that resolves" },
	{ .id = "starttls-refused", .outcomes = O_REFUSED, .stages = S_STARTTLS,
	  .cause = "the server refused the STARTTLS command: its TLS setup is broken",
	  .next_step = "tell the receiver's postmaster; tls = opportunistic would send without TLS" },
	{ .id = "auth-refused", .outcomes = O_REFUSED | O_FAIL, .stages = S_AUTH,
	  .cause = "SMTP AUTH at the relay failed",
	  .next_step = "check the smarthost account, its limits and the sender's credentials" },
	{ .id = "mail-refused", .outcomes = O_REFUSED, .stages = S_MAIL,
	  .cause = "MAIL FROM was refused: a policy about the sender domain, an SPF failure, or a sender "
		   "rate limit",
	  .next_step = "check SPF for the envelope domain (mail_from) and the sending rate" },
	{ .id = "rcpt-deferred", .outcomes = O_DEF, .stages = S_RCPT,
	  .cause = "RCPT TO was deferred: greylisting, a recipient rate limit, or a temporary policy",
	  .next_step = "check that a retry within the retry window is accepted, and the send rate to this "
		       "domain" },
	{ .id = "rcpt-rejected", .outcomes = O_REJ, .stages = S_RCPT,
	  .cause = "RCPT TO was rejected: the recipient, or a policy about this sender",
	  .next_step = "read the reply text; check the seed's address and the sender's reputation and "
		       "authentication" },
	{ .id = "data-refused", .outcomes = O_REFUSED, .stages = S_DATA,
	  .cause = "the DATA command was refused: a decision taken once all recipients were known, or the "
		   "receiver's load",
	  .next_step = "read the reply text; retry later" },
	{ .id = "eod-deferred", .outcomes = O_DEF, .stages = S_EOD,
	  .cause = "the message was deferred after its data: content scanning unavailable, or a temporary "
		   "policy (spam scoring, rate)",
	  .next_step = "retry (the schedule does); if it lasts, send a small plain-text probe to compare and "
		       "check DKIM and DMARC alignment" },
	{ .id = "eod-rejected", .outcomes = O_REJ, .stages = S_EOD,
	  .cause = "the message was rejected after its data: content filtering, size, a DKIM or DMARC "
		   "failure, spam scoring",
	  .next_step = "send a small plain-text probe to compare; check the filter's reason and DKIM and "
		       "DMARC alignment" },
	{ .id = "unknown", .outcomes = O_UNK,
	  .cause = "the connection was lost after the message was sent and before the end-of-data reply: "
		   "the message may or may not have been taken",
	  .next_step = "the readback tells whether it arrived; frequent ones point to a middlebox or a "
		       "crashing filter on the receiving side" },

	/* -- catch-all per outcome -- */
	{ .id = "deferred", .outcomes = O_DEF,
	  .cause = "a temporary refusal at the {stage} stage",
	  .next_step = "read the reply text; an MTA retries, and so does the retry schedule" },
	{ .id = "rejected", .outcomes = O_REJ,
	  .cause = "a permanent refusal at the {stage} stage",
	  .next_step = "read the reply text: an MTA would bounce this message" },
	{ .id = "failed", .outcomes = O_FAIL,
	  .cause = "the session failed at the {stage} stage without a reply that decided it",
	  .next_step = "see smtp.error and the dialogue (--transcript)" },
	{ .id = "accepted-helo-fallback", .outcomes = O_ACC,
	  .text = { "fell back to helo" },
	  .cause = "accepted, but EHLO was refused and the session fell back to HELO",
	  .next_step = "check the helo name and the PTR of the sending IP: stricter receivers refuse what "
		       "this one tolerated" },
	{ .id = "accepted-retried", .outcomes = O_ACC, .findings = DIAG_F_RETRIED,
	  .cause = "accepted at attempt {attempt}: the earlier attempts were deferred or failed "
		   "(greylisting, a temporary limit)",
	  .next_step = "nothing to fix if that was greylisting; smtp.accepted_after_s is the delay it cost" },
	{ .id = "accepted", .outcomes = O_ACC,
	  .cause = "accepted: the receiving server took the message",
	  .next_step = "nothing to do" },

	/* -- after acceptance: the readback -- */
	{ .id = "missing-dnsbl", .outcomes = DIAG_O(DIAG_MISSING), .findings = DIAG_F_DNSBL_LISTED,
	  .cause = "accepted but never delivered to the seed mailbox, and the sending IP is listed on "
		   "{zone}: probably discarded or quarantined",
	  .next_step = "request delisting from {zone}; check the provider's quarantine" },
	{ .id = "missing-auth", .outcomes = DIAG_O(DIAG_MISSING), .findings = F_AUTH,
	  .cause = "accepted but never delivered to the seed mailbox, and {findings}: probably discarded or "
		   "quarantined as unauthenticated",
	  .next_step = FIX_AUTH },
	{ .id = "missing", .outcomes = DIAG_O(DIAG_MISSING),
	  .cause = "accepted but not found in the seed mailbox within readback.timeout: discarded or "
		   "quarantined by a filter after acceptance, or delivery is slow",
	  .next_step = "check the provider's quarantine and the seed's mailbox rules; run and probe --due "
		       "record a late arrival" },
	{ .id = "junk-dnsbl", .outcomes = DIAG_O(DIAG_JUNK), .findings = DIAG_F_DNSBL_LISTED,
	  .cause = "delivered to the junk folder ({folder}), and the sending IP is listed on {zone}",
	  .next_step = "request delisting from {zone}" },
	{ .id = "junk-auth", .outcomes = DIAG_O(DIAG_JUNK), .findings = F_AUTH,
	  .cause = "delivered to the junk folder ({folder}), and {findings}",
	  .next_step = FIX_AUTH },
	{ .id = "junk", .outcomes = DIAG_O(DIAG_JUNK),
	  .cause = "delivered to the junk folder ({folder}): the receiver's filter scored the message or "
		   "the sender as spam",
	  .next_step = "check the receiver's verdicts (readback.auth), the content, and the sender's "
		       "reputation at this provider" },
	{ .id = "misplaced", .outcomes = DIAG_O(DIAG_MISPLACED),
	  .cause = "delivered, but to {folder}, not to the expected folder",
	  .next_step = "check the seed's mailbox rules and the seed's expect_folder" },
	{ .id = "readback-error", .outcomes = DIAG_O(DIAG_RB_ERROR),
	  .cause = "the readback failed: the seed mailbox could not be read, so delivery is unknown",
	  .next_step = "check the seed's imap settings (url, username, password, ca_file); readback.error "
		       "says what failed" },
	{ .id = "delivered", .outcomes = DIAG_O(DIAG_FOUND),
	  .cause = "delivered to {folder}",
	  .next_step = "nothing to do" },
};
const size_t diag_n_rules = sizeof diag_rules / sizeof diag_rules[0];

/* ---- names ---- */

const char *diag_outcome_name(enum diag_outcome o)
{
	static const char *const names[DIAG__OUTCOMES] = {
		[DIAG_ACCEPTED] = "accepted", [DIAG_DEFERRED] = "deferred", [DIAG_REJECTED] = "rejected",
		[DIAG_FAILED] = "failed",     [DIAG_UNKNOWN] = "unknown",   [DIAG_FOUND] = "found",
		[DIAG_MISPLACED] = "misplaced", [DIAG_JUNK] = "junk",       [DIAG_MISSING] = "missing",
		[DIAG_RB_ERROR] = "readback error",
	};
	if ((int)o < 0 || o >= DIAG__OUTCOMES || !names[o])
		return "none";
	return names[o];
}

static const struct {
	const char *name;   /* for the man page and diag_findings_add_check */
	const char *words;  /* for {findings} */
} finding_names[DIAG_F__COUNT] = {
	{ "ptr_missing", "the sending IP has no PTR record" },
	{ "fcrdns_fail", "the sending IP's PTR name does not resolve back to it" },
	{ "helo_unresolvable", "the helo name does not resolve to the sending IP" },
	{ "spf_fail", "SPF does not authorise the sending IP" },
	{ "dkim_fail", "there is no valid DKIM signature" },
	{ "dmarc_fail", "DMARC fails or is not published" },
	{ "dnsbl_listed", "the sending IP is listed on a DNS blocklist" },
	{ "retried", "the probe was retried" },
};

static int bit_index(unsigned bit)
{
	for (int i = 0; i < DIAG_F__COUNT; i++)
		if (bit == 1u << i)
			return i;
	return -1;
}

const char *diag_finding_name(unsigned bit)
{
	int i = bit_index(bit);
	return i < 0 ? NULL : finding_names[i].name;
}

/* ---- findings ---- */

static const char *nz(const char *s) { return s ? s : ""; }

/* Copies src into dst[dstsz], truncated (at a UTF-8 character boundary) when it does not fit. */
static void set_str(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);
	if (n >= dstsz) {
		n = dstsz - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memmove(dst, src, n);
	dst[n] = '\0';
}

static bool is_one_of(const char *v, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(v, *set) == 0)
			return true;
	return false;
}

int diag_findings_add_check(struct diag_findings *f, const char *name, const char *status)
{
	static const struct {
		const char *check;
		unsigned bit;
	} map[] = {
		{ "ptr", DIAG_F_PTR_MISSING }, { "fcrdns", DIAG_F_FCRDNS_FAIL }, { "helo", DIAG_F_HELO_UNRESOLVABLE },
		{ "spf", DIAG_F_SPF_FAIL },    { "dmarc", DIAG_F_DMARC_FAIL },
	};
	/* Checks of the recipient side, or that only explain others: known, no finding of the
	 * sending side. */
	static const char *const other[] = { "mx", "mx_time", "mx_port", "spf_align", NULL };
	bool fail = strcmp(nz(status), "fail") == 0;
	name = nz(name);
	if (is_one_of(name, other))
		return 0;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(name, map[i].check) == 0) {
			if (fail)
				f->flags |= map[i].bit;
			return 0;
		}
	}
	if (strncmp(name, "dkim:", 5) == 0) {
		if (fail)
			f->flags |= DIAG_F_DKIM_FAIL;
		return 0;
	}
	if (strncmp(name, "dnsbl:", 6) == 0) {
		if (fail && !(f->flags & DIAG_F_DNSBL_LISTED)) {
			f->flags |= DIAG_F_DNSBL_LISTED;
			snprintf(f->dnsbl_zone, sizeof f->dnsbl_zone, "%s", name + 6);
		}
		return 0;
	}
	return -1;
}

void diag_findings_add_auth(struct diag_findings *f, const char *spf, const char *dkim, const char *dmarc)
{
	static const char *const spf_bad[] = { "fail", "softfail", "permerror", NULL };
	static const char *const dkim_bad[] = { "fail", "permerror", "none", "neutral", "policy", NULL };
	static const char *const dmarc_bad[] = { "fail", "none", "permerror", NULL };
	if (is_one_of(nz(spf), spf_bad))
		f->flags |= DIAG_F_SPF_FAIL;
	if (is_one_of(nz(dkim), dkim_bad))
		f->flags |= DIAG_F_DKIM_FAIL;
	if (is_one_of(nz(dmarc), dmarc_bad))
		f->flags |= DIAG_F_DMARC_FAIL;
}

const struct diag_findings *diag_findings_of_result(const struct probe_result *r, struct diag_findings *buf)
{
	memset(buf, 0, sizeof *buf);
	if (!r->dns)
		return NULL;
	for (size_t i = 0; i < r->dns->n_checks; i++)
		diag_findings_add_check(buf, r->dns->checks[i].name, r->dns->checks[i].status);
	return buf;
}

/* A small reader for diag_findings_from_json: only what it needs of JSON (objects, arrays,
 * strings, and the bare words of numbers, true, false, null), never past the NUL. */
struct jscan {
	const char *p;
	int depth;
};

#define JSCAN_MAX_DEPTH 16

static void js_ws(struct jscan *s)
{
	while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
		s->p++;
}

/* A string at s->p: copied into out[size] (simple escapes undone, \uXXXX kept as '?'), cut when
 * long. Returns 0, or -1 when it is not a complete string. */
static int js_string(struct jscan *s, char *out, size_t size)
{
	size_t n = 0;
	if (*s->p != '"')
		return -1;
	s->p++;
	while (*s->p && *s->p != '"') {
		char c = *s->p++;
		if (c == '\\') {
			char e = *s->p;
			if (!e)
				return -1;
			s->p++;
			switch (e) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u':
				for (int i = 0; i < 4; i++)
					if (*s->p)
						s->p++;
				c = '?';
				break;
			default: c = e; break;
			}
		}
		if (out && n + 1 < size)
			out[n++] = c;
	}
	if (*s->p != '"')
		return -1;
	s->p++;
	if (out && size)
		out[n] = '\0';
	return 0;
}

static int js_skip(struct jscan *s);

/* Members of an object or elements of an array after its opening bracket, each passed to
 * visit (key NULL in arrays) with s->p at the value; visit must consume the value. */
typedef int js_visit_fn(struct jscan *s, const char *key, void *arg);

static int js_walk(struct jscan *s, char close, js_visit_fn *visit, void *arg)
{
	char key[64];
	if (++s->depth > JSCAN_MAX_DEPTH)
		return -1;
	js_ws(s);
	if (*s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		js_ws(s);
		if (close == '}') {
			if (js_string(s, key, sizeof key) < 0)
				return -1;
			js_ws(s);
			if (*s->p != ':')
				return -1;
			s->p++;
			js_ws(s);
		}
		if (visit(s, close == '}' ? key : NULL, arg) < 0)
			return -1;
		js_ws(s);
		if (*s->p == ',') {
			s->p++;
			continue;
		}
		if (*s->p != close)
			return -1;
		s->p++;
		s->depth--;
		return 0;
	}
}

static int js_skip_visit(struct jscan *s, const char *key, void *arg)
{
	(void)key;
	(void)arg;
	return js_skip(s);
}

static int js_skip(struct jscan *s)
{
	js_ws(s);
	if (*s->p == '"')
		return js_string(s, NULL, 0);
	if (*s->p == '{' || *s->p == '[') {
		char close = *s->p == '{' ? '}' : ']';
		s->p++;
		return js_walk(s, close, js_skip_visit, NULL);
	}
	const char *start = s->p;
	while (*s->p && strchr("+-.0123456789eEtruefalsn", *s->p))
		s->p++;
	return s->p > start ? 0 : -1;
}

#define DIAG_JSON_NAME 288 /* a check name: "dnsbl:" + a zone */

struct js_check {
	char name[DIAG_JSON_NAME];
	char status[16];
};

static int js_check_member(struct jscan *s, const char *key, void *arg)
{
	struct js_check *c = arg;
	if (strcmp(key, "name") == 0)
		return js_string(s, c->name, sizeof c->name);
	if (strcmp(key, "status") == 0)
		return js_string(s, c->status, sizeof c->status);
	return js_skip(s);
}

static int js_checks_elem(struct jscan *s, const char *key, void *arg)
{
	struct js_check c = { "", "" };
	(void)key;
	if (*s->p != '{')
		return js_skip(s);
	s->p++;
	if (js_walk(s, '}', js_check_member, &c) < 0)
		return -1;
	diag_findings_add_check(arg, c.name, c.status);
	return 0;
}

static int js_dns_member(struct jscan *s, const char *key, void *arg)
{
	if (strcmp(key, "checks") != 0 || *s->p != '[')
		return js_skip(s);
	s->p++;
	return js_walk(s, ']', js_checks_elem, arg);
}

struct js_top {
	struct diag_findings *f;
	bool found;
};

static int js_top_member(struct jscan *s, const char *key, void *arg)
{
	struct js_top *t = arg;
	if (strcmp(key, "dns") != 0 || *s->p != '{')
		return js_skip(s);
	s->p++;
	if (js_walk(s, '}', js_dns_member, t->f) < 0)
		return -1;
	t->found = true;
	return 0;
}

int diag_findings_from_json(const char *json, struct diag_findings *f)
{
	struct jscan s = { json ? json : "", 0 };
	struct js_top t = { f, false };
	memset(f, 0, sizeof *f);
	js_ws(&s);
	if (*s.p != '{')
		return -1;
	s.p++;
	if (js_walk(&s, '}', js_top_member, &t) < 0 || !t.found) {
		memset(f, 0, sizeof *f);
		return -1;
	}
	return 0;
}

/* ---- matching ---- */

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* The texts a rule's words are looked for in, lower-cased and joined by newlines. */
static void haystack(const struct diag_input *in, struct strbuf *sb)
{
	sb_append(sb, nz(in->text));
	sb_appendc(sb, '\n');
	sb_append(sb, nz(in->error));
	/* A refused probe's warnings (no STARTTLS offered, a HELO fallback) are not its cause. */
	for (size_t i = 0; in->outcome == DIAG_ACCEPTED && i < in->n_warnings; i++) {
		sb_appendc(sb, '\n');
		sb_append(sb, nz(in->warnings[i]));
	}
	for (size_t i = 0; i < sb->len; i++)
		sb->s[i] = lower(sb->s[i]);
}

/* One component of an enhanced code: digits up to '.' or the end. */
static size_t component(const char *s) { return strcspn(s, "."); }

/* "x.7.25" against "5.7.25": class "x" matches 4 and 5 (and 2), "*" the rest. */
static bool enhanced_match(const char *pat, const char *code)
{
	if (!*code)
		return false;
	for (int part = 0; part < 3; part++) {
		if (strcmp(pat, "*") == 0)
			return true;
		size_t pn = component(pat), cn = component(code);
		if (cn == 0)
			return false;
		if (!(part == 0 && pn == 1 && pat[0] == 'x') && (pn != cn || strncmp(pat, code, pn) != 0))
			return false;
		pat += pn;
		code += cn;
		if (part < 2) {
			if (*pat != '.' || *code != '.')
				return false;
			pat++;
			code++;
		}
	}
	return *pat == '\0' && *code == '\0';
}

static bool rule_matches(const struct diag_rule *r, const struct diag_input *in, const char *hay,
			 unsigned findings)
{
	if (r->outcomes && !(r->outcomes & DIAG_O(in->outcome)))
		return false;
	if (r->stages && !(r->stages & DIAG_S(in->stage)))
		return false;
	if (r->code && r->code != in->code)
		return false;
	if (r->findings && !(r->findings & findings))
		return false;
	if (!r->enhanced[0] && !r->text[0])
		return true;
	for (size_t i = 0; i < DIAG_MAX_ENH && r->enhanced[i]; i++)
		if (enhanced_match(r->enhanced[i], nz(in->enhanced)))
			return true;
	for (size_t i = 0; i < DIAG_MAX_TEXT && r->text[i]; i++)
		if (strstr(hay, r->text[i]))
			return true;
	return false;
}

/* {findings}: the words of the bits in mask, "a, b and c". */
static void findings_words(struct strbuf *sb, unsigned mask, const struct diag_findings *f)
{
	int n = 0, total = 0;
	if (mask & DIAG_F_PTR_MISSING) /* without a PTR there is nothing to confirm either */
		mask &= ~(unsigned)DIAG_F_FCRDNS_FAIL;
	for (int i = 0; i < DIAG_F__COUNT; i++)
		if (mask & (1u << i))
			total++;
	for (int i = 0; i < DIAG_F__COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (n)
			sb_append(sb, n == total - 1 ? " and " : ", ");
		if ((1u << i) == DIAG_F_DNSBL_LISTED && f && f->dnsbl_zone[0])
			sb_appendf(sb, "the sending IP is listed on %s", f->dnsbl_zone);
		else
			sb_append(sb, finding_names[i].words);
		n++;
	}
}

/* Expands the placeholders of tmpl into dst (truncated to dstsz). */
static void expand(char *dst, size_t dstsz, const char *tmpl, const struct diag_input *in,
		   const struct diag_findings *f, unsigned matched)
{
	struct strbuf sb;
	sb_init(&sb);
	for (const char *p = tmpl; *p;) {
		const char *open = strchr(p, '{');
		const char *close = open ? strchr(open, '}') : NULL;
		if (!open || !close) {
			sb_append(&sb, p);
			break;
		}
		sb_appendn(&sb, p, (size_t)(open - p));
		size_t n = (size_t)(close - open - 1);
		const char *name = open + 1;
		if (n == 5 && strncmp(name, "stage", n) == 0)
			sb_append(&sb, probe_stage_name(in->stage));
		else if (n == 4 && strncmp(name, "code", n) == 0)
			sb_appendf(&sb, "%d", in->code);
		else if (n == 8 && strncmp(name, "enhanced", n) == 0)
			sb_append(&sb, nz(in->enhanced)[0] ? in->enhanced : "no enhanced code");
		else if (n == 7 && strncmp(name, "attempt", n) == 0)
			sb_appendf(&sb, "%d", in->attempt);
		else if (n == 6 && strncmp(name, "folder", n) == 0)
			sb_append(&sb, nz(in->folder)[0] ? in->folder : "an unnamed folder");
		else if (n == 4 && strncmp(name, "zone", n) == 0)
			sb_append(&sb, f && f->dnsbl_zone[0] ? f->dnsbl_zone : "a DNS blocklist");
		else if (n == 8 && strncmp(name, "findings", n) == 0)
			findings_words(&sb, matched, f);
		else
			sb_appendn(&sb, open, n + 2);
		p = close + 1;
	}
	set_str(dst, dstsz, sb.s);
	sb_fini(&sb);
}

void diagnose(const struct diag_input *in, const struct diag_findings *f, struct diagnosis *out)
{
	struct strbuf hay;
	unsigned findings = f ? f->flags : 0;
	if (in->attempt > 1)
		findings |= DIAG_F_RETRIED;
	sb_init(&hay);
	haystack(in, &hay);
	size_t i = 0;
	while (i < diag_n_rules && !rule_matches(&diag_rules[i], in, hay.s, findings))
		i++;
	sb_fini(&hay);
	memset(out, 0, sizeof *out);
	if (i == diag_n_rules) { /* an outcome no rule names (OUTCOME_NONE): say so, do not guess */
		out->row = -1;
		snprintf(out->rule, sizeof out->rule, "none");
		snprintf(out->cause, sizeof out->cause, "no outcome to diagnose");
		snprintf(out->next_step, sizeof out->next_step, "nothing to do");
		return;
	}
	const struct diag_rule *r = &diag_rules[i];
	out->row = (int)i;
	snprintf(out->rule, sizeof out->rule, "%s", r->id);
	expand(out->cause, sizeof out->cause, r->cause, in, f, r->findings & findings);
	expand(out->next_step, sizeof out->next_step, r->next_step, in, f, r->findings & findings);
}

void diagnose_result(const struct probe_result *r, const struct diag_findings *f, struct diagnosis *out)
{
	const struct smtp_try *s = &r->smtp;
	struct diag_input in = {
		.outcome = (enum diag_outcome)s->outcome,
		.stage = s->stage,
		.code = s->code,
		.enhanced = s->enhanced,
		.text = s->text,
		.error = s->error,
		.warnings = s->warnings,
		.n_warnings = s->n_warnings,
		.attempt = r->attempt,
	};
	diagnose(&in, f, out);
}

int diagnose_readback(const struct diag_readback *rb, const struct diag_findings *f, struct diagnosis *out)
{
	struct diag_findings all;
	const char *status = nz(rb->status), *action = nz(rb->bounce_action);
	memset(&all, 0, sizeof all);
	if (f)
		all = *f;
	diag_findings_add_auth(&all, rb->spf, rb->dkim, rb->dmarc);

	bool found = strcmp(status, "found") == 0, missing = strcmp(status, "missing") == 0;
	bool bounced = strcmp(status, "bounced") == 0;
	/* A bounce explains the end unless the probe was found after all (a delayed notice, then
	 * delivery). */
	bool bounce = bounced || (action[0] && !found && strcmp(status, "pending") != 0);
	struct diag_input in = { .stage = STAGE_NONE, .folder = rb->folder, .attempt = rb->attempt };
	if (bounce) {
		/* The remote server's refusal, as the relay reports it. */
		const char *enh = nz(rb->bounce_enhanced)[0] ? rb->bounce_enhanced : nz(rb->bounce_status);
		bool temporary = enh[0] == '4' || (rb->bounce_code >= 400 && rb->bounce_code < 500) ||
				 (!enh[0] && !rb->bounce_code && strcmp(action, "delayed") == 0);
		in.outcome = temporary ? DIAG_DEFERRED : DIAG_REJECTED;
		in.stage = probe_stage_from_name(nz(rb->bounce_stage));
		in.code = rb->bounce_code;
		in.enhanced = enh;
		in.text = rb->bounce_diagnostic;
		diagnose(&in, &all, out);
		bool delayed = !bounced && strcmp(action, "failed") != 0;
		struct strbuf sb;
		sb_init(&sb);
		sb_appendf(&sb, "bounced.%s", out->rule);
		set_str(out->rule, sizeof out->rule, sb.s);
		sb_reset(&sb);
		sb_appendf(&sb, "the relay accepted the probe, then %s: %s",
			   delayed ? "reported its delivery delayed" : "bounced it", out->cause);
		set_str(out->cause, sizeof out->cause, sb.s);
		sb_fini(&sb);
		return 0;
	}
	if (found)
		in.outcome = rb->placement_ok ? DIAG_FOUND : rb->junk ? DIAG_JUNK : DIAG_MISPLACED;
	else if (missing)
		in.outcome = DIAG_MISSING;
	else if (strcmp(status, "error") == 0)
		in.outcome = DIAG_RB_ERROR;
	else
		return -1; /* pending, skipped: the SMTP diagnosis stands */
	in.error = rb->error;
	diagnose(&in, &all, out);
	return 0;
}

/* ---- JSON ---- */

void diagnosis_json(struct json *j, const struct diagnosis *d)
{
	json_obj_begin(j);
	json_kstr(j, "cause", d->cause);
	json_kstr(j, "next_step", d->next_step);
	json_kstr(j, "rule", d->rule);
	json_obj_end(j);
}

/* The offset of the top-level member key (",\"key\":" at depth 1) in the object json, or -1. */
static long top_member(const char *json, const char *key)
{
	size_t kn = strlen(key);
	int depth = 0;
	bool in_str = false;
	for (const char *p = json; *p; p++) {
		if (in_str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_str = false;
			continue;
		}
		if (*p == '"') {
			if (depth == 1 && (p[-1] == ',' || p[-1] == '{') && strncmp(p + 1, key, kn) == 0 &&
			    p[1 + kn] == '"' && p[2 + kn] == ':')
				return (long)(p - json);
			in_str = true;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		}
	}
	return -1;
}

/* The end (one past) of the JSON value starting at p, or NULL. */
static const char *value_end(const char *p)
{
	int depth = 0;
	bool in_str = false;
	for (; *p; p++) {
		if (in_str) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"') {
				in_str = false;
				if (depth == 0)
					return p + 1;
			}
			continue;
		}
		if (*p == '"')
			in_str = true;
		else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
			if (depth < 0)
				return p;
		} else if (depth == 0 && (*p == ',')) {
			return p;
		}
	}
	return depth == 0 ? p : NULL;
}

char *diagnosis_replace_json(const char *json, const struct diagnosis *d)
{
	struct strbuf sb, obj;
	struct json j;
	sb_init(&sb);
	sb_init(&obj);
	json_init(&j, &obj);
	diagnosis_json(&j, d);
	long at = top_member(json, "diagnosis");
	const char *end = NULL;
	if (at >= 0) {
		const char *v = json + at + strlen("\"diagnosis\":");
		end = value_end(v);
		if (end) {
			sb_appendn(&sb, json, (size_t)(v - json));
			sb_append(&sb, obj.s);
			sb_append(&sb, end);
		}
	}
	if (!end) { /* none: append it before the closing brace */
		const char *close = strrchr(json, '}');
		if (!close) {
			sb_append(&sb, json);
		} else {
			sb_appendn(&sb, json, (size_t)(close - json));
			const char *q = close;
			while (q > json && (q[-1] == ' ' || q[-1] == '\n'))
				q--;
			if (q > json && q[-1] != '{')
				sb_appendc(&sb, ',');
			sb_append(&sb, "\"diagnosis\":");
			sb_append(&sb, obj.s);
			sb_append(&sb, close);
		}
	}
	sb_fini(&obj);
	return sb_steal(&sb);
}

/* ---- across the round ---- */

struct provider_state {
	const char *name;
	size_t probes, refused;
	bool reached;                  /* some probe got past connect */
	enum probe_outcome outcome;    /* of the first refused probe */
	enum probe_stage stage;
};

int diagnose_round(const struct diag_round_item *items, size_t n, struct diag_round_verdict *out)
{
	struct provider_state *ps = n ? xcalloc(n, sizeof *ps) : NULL;
	size_t np = 0, refusing = 0, unreachable = 0;
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < n; i++) {
		const char *name = nz(items[i].provider);
		size_t k = 0;
		while (k < np && strcmp(ps[k].name, name) != 0)
			k++;
		if (k == np) {
			ps[np].name = name;
			np++;
		}
		struct provider_state *p = &ps[k];
		p->probes++;
		bool refused = items[i].outcome != OUTCOME_ACCEPTED;
		if (!refused || (items[i].stage != STAGE_DNS && items[i].stage != STAGE_CONNECT))
			p->reached = true;
		if (refused && !p->refused++) {
			p->outcome = items[i].outcome;
			p->stage = items[i].stage;
		}
	}
	for (size_t k = 0; k < np; k++) {
		if (ps[k].refused) {
			refusing++;
			if (!ps[k].reached)
				unreachable++;
		}
	}
	int rc = -1;
	if (np >= 2 && refusing > 0) {
		struct strbuf who;
		sb_init(&who);
		size_t listed = 0;
		for (size_t k = 0; k < np; k++) {
			if (!ps[k].refused || (refusing == np))
				continue;
			if (listed)
				sb_append(&who, listed == refusing - 1 ? " and " : ", ");
			sb_appendf(&who, "%s (%s at %s)", ps[k].name, probe_outcome_name(ps[k].outcome),
				   probe_stage_name(ps[k].stage));
			listed++;
		}
		if (refusing < np) {
			snprintf(out->rule, sizeof out->rule, "round.provider");
			snprintf(out->cause, sizeof out->cause,
				 "provider-specific: only %s %s while %zu other provider%s accept%s: a throttle or "
				 "reputation problem of this sender at %s, not of the sending side as a whole",
				 who.s, refusing == 1 ? "refuses" : "refuse", np - refusing, np - refusing == 1 ? "" : "s",
				 np - refusing == 1 ? "s" : "", refusing == 1 ? "that provider" : "those providers");
			snprintf(out->next_step, sizeof out->next_step,
				 "read the refusing provider's reply and postmaster pages: send less and steadily "
				 "(warm up), fix authentication (SPF, DKIM, DMARC), request delisting from its own "
				 "list");
		} else if (unreachable == np) {
			snprintf(out->rule, sizeof out->rule, "round.unreachable");
			snprintf(out->cause, sizeof out->cause,
				 "no provider could be reached (all %zu failed at dns or connect): this host's "
				 "network, firewall or resolver", np);
			snprintf(out->next_step, sizeof out->next_step,
				 "check that this host may connect out to TCP 25 (or 587 to a smarthost), and "
				 "dns.servers");
		} else {
			snprintf(out->rule, sizeof out->rule, "round.sender");
			snprintf(out->cause, sizeof out->cause,
				 "every provider refuses (all %zu): the common factor is the sending side: its IP "
				 "on blocklists, its DNS (PTR, SPF), or trouble of the sending host or relay", np);
			snprintf(out->next_step, sizeof out->next_step,
				 "check the sending side first: PTR, FCrDNS, HELO, SPF, DMARC and DNSBL listings of "
				 "the sending IP (mailcanary dns), outbound port 25, then each probe's diagnosis");
		}
		sb_fini(&who);
		rc = 0;
	}
	free(ps);
	return rc;
}

struct round_entry {
	char *probe_id;
	char *provider;
	enum probe_outcome outcome;
	enum probe_stage stage;
};

struct diag_round {
	struct round_entry *v;
	size_t n, cap;
};

struct diag_round *diag_round_new(void)
{
	return xcalloc(1, sizeof(struct diag_round));
}

void diag_round_free(struct diag_round *rd)
{
	if (!rd)
		return;
	for (size_t i = 0; i < rd->n; i++) {
		free(rd->v[i].probe_id);
		free(rd->v[i].provider);
	}
	free(rd->v);
	free(rd);
}

void diag_round_add(struct diag_round *rd, const char *probe_id, const char *provider, enum probe_outcome outcome,
		    enum probe_stage stage)
{
	struct round_entry *e = NULL;
	for (size_t i = 0; i < rd->n && !e; i++)
		if (strcmp(rd->v[i].probe_id, nz(probe_id)) == 0)
			e = &rd->v[i];
	if (!e) {
		if (rd->n == rd->cap) {
			rd->cap = rd->cap ? 2 * rd->cap : 16;
			rd->v = xrealloc(rd->v, rd->cap * sizeof *rd->v);
		}
		e = &rd->v[rd->n++];
		e->probe_id = xstrdup(nz(probe_id));
		e->provider = xstrdup(nz(provider));
	}
	e->outcome = outcome;
	e->stage = stage;
}

int diag_round_verdict(const struct diag_round *rd, struct diag_round_verdict *out)
{
	struct diag_round_item *items = rd->n ? xcalloc(rd->n, sizeof *items) : NULL;
	for (size_t i = 0; i < rd->n; i++) {
		items[i].provider = rd->v[i].provider;
		items[i].outcome = rd->v[i].outcome;
		items[i].stage = rd->v[i].stage;
	}
	int rc = diagnose_round(items, rd->n, out);
	free(items);
	return rc;
}

/* ---- documentation ---- */

/* roff text: backslashes and hyphens escaped, placeholders ({stage}) in italics. Callers start
 * every line with a word, never with a control character. */
static void roff(FILE *fp, const char *s)
{
	for (; *s; s++) {
		const char *close = *s == '{' ? strchr(s, '}') : NULL;
		if (close && close - s > 1 && strspn(s + 1, "abcdefghijklmnopqrstuvwxyz") == (size_t)(close - s - 1)) {
			fprintf(fp, "\\fI%.*s\\fP", (int)(close - s - 1), s + 1);
			s = close;
		} else if (*s == '\\') {
			fputs("\\e", fp);
		} else if (*s == '-') {
			fputs("\\-", fp);
		} else {
			fputc(*s, fp);
		}
	}
}

static void man_list(FILE *fp, const char *const *v, size_t max, const char *quote_open, const char *quote_close)
{
	for (size_t i = 0; i < max && v[i]; i++) {
		if (i)
			fputs(i + 1 < max && v[i + 1] ? ", " : " or ", fp);
		fputs(quote_open, fp);
		roff(fp, v[i]);
		fputs(quote_close, fp);
	}
}

static void man_conditions(FILE *fp, const struct diag_rule *r)
{
	const char *sep = "";
	if (r->outcomes) {
		int n = 0, total = 0;
		for (int o = 0; o < DIAG__OUTCOMES; o++)
			total += (r->outcomes & DIAG_O(o)) != 0;
		for (int o = 0; o < DIAG__OUTCOMES; o++) {
			if (!(r->outcomes & DIAG_O(o)))
				continue;
			if (n)
				fputs(n == total - 1 ? " or " : ", ", fp);
			roff(fp, diag_outcome_name((enum diag_outcome)o));
			n++;
		}
		sep = "; ";
	} else {
		fputs("any outcome", fp);
		sep = "; ";
	}
	if (r->stages) {
		int n = 0, total = 0;
		for (int s = STAGE_NONE; s < STAGE__COUNT; s++)
			total += (r->stages & DIAG_S(s)) != 0;
		fprintf(fp, "%sstage ", sep);
		for (int s = STAGE_NONE; s < STAGE__COUNT; s++) {
			if (!(r->stages & DIAG_S(s)))
				continue;
			if (n)
				fputs(n == total - 1 ? " or " : ", ", fp);
			fputs(probe_stage_name((enum probe_stage)s), fp);
			n++;
		}
	}
	if (r->code)
		fprintf(fp, "%scode %d", sep, r->code);
	if (r->enhanced[0] || r->text[0]) {
		fputs(sep, fp);
		if (r->enhanced[0]) {
			fputs("enhanced code ", fp);
			man_list(fp, r->enhanced, DIAG_MAX_ENH, "", "");
		}
		if (r->enhanced[0] && r->text[0])
			fputs(", or ", fp);
		if (r->text[0]) {
			fputs("text with ", fp);
			man_list(fp, r->text, DIAG_MAX_TEXT, "\\(lq", "\\(rq");
		}
	}
	if (r->findings) {
		int n = 0, total = 0;
		for (int i = 0; i < DIAG_F__COUNT; i++)
			total += (r->findings & (1u << i)) != 0;
		fprintf(fp, "%sfinding ", sep);
		for (int i = 0; i < DIAG_F__COUNT; i++) {
			if (!(r->findings & (1u << i)))
				continue;
			if (n)
				fputs(n == total - 1 ? " or " : ", ", fp);
			fprintf(fp, "\\fB%s\\fP", finding_names[i].name);
			n++;
		}
	}
	fputs(".\n", fp);
}

void diag_rules_man(FILE *fp)
{
	for (size_t i = 0; i < diag_n_rules; i++) {
		const struct diag_rule *r = &diag_rules[i];
		fputs(".TP\n.B ", fp);
		roff(fp, r->id);
		fputs("\nWhen: ", fp);
		man_conditions(fp, r);
		fputs(".br\nCause: ", fp);
		roff(fp, r->cause);
		fputs(".\n.br\nNext step: ", fp);
		roff(fp, r->next_step);
		fputs(".\n", fp);
	}
}
