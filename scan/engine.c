/*
 * engine: the scanner proper. One pass over a buffer runs the keyword
 * prefilter for all rules at once; each rule's regex then runs only in the
 * windows around its keyword hits (from the line before the hit, bounded by
 * window_before, to window_after past it, extended to the end of that line),
 * overlapping windows merged. Rules without keywords scan the whole buffer.
 * PCRE2 match and depth limits bound every regex run, so a hostile file can
 * slow a scan by a constant factor at most.
 *
 * Each match then passes the allow rules, the entropy floor, deduplication
 * per (rule, secret, offset) and validation, and becomes a finding with a
 * confidence, a line/column, redacted context and a fingerprint, handed to the
 * caller's callback. Archives found inside the buffer are opened by nested.c,
 * which comes back here for each member.
 */
#include "engine.h"
#include "finding.h"
#include "nested.h"
#include "rules.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct scan_scanner {
	const struct scan_rules *rules;
	struct scan_limits lim;
	const struct scan_vendor *vendor;
	bool no_nested;
	bool ignore_path_filters;
	pcre2_match_data *md;
	pcre2_match_data *md1; /* for path and allow regexes */
	pcre2_match_context *mctx;
	pcre2_match_context *mctx_lim; /* mctx with an offset limit, for anchored rules */
	pcre2_jit_stack *jit;
	struct scan_stats st;
};

/* One top-level scan_buffer call; members of nested archives share it. */
struct scan_ctx {
	struct scan_scanner *s;
	const struct scan_target *where;
	scan_finding_cb cb;
	void *opaque;
	int rc; /* the callback's error, which stops the scan */
	/* vendor content is decided on the top-level file, once, lazily */
	const void *top_data;
	size_t top_len;
	const char *top_path;
	int vendor_state; /* 0 unknown, 1 vendor, -1 not */
	const char *vendor_pkg;
	uint64_t expanded; /* bytes expanded from archives so far */
};

struct win {
	size_t s, e;
};

struct wlist {
	struct win *w;
	size_t n, cap;
};

struct seen {
	uint32_t rule;
	size_t off, len;
};

/* State of one buffer (a file or an archive member). */
struct bufscan {
	struct scan_ctx *c;
	const char *path;
	const uint8_t *d;
	size_t len;
	bool *active;
	struct wlist *wins;
	struct wlist *cands; /* anchored rules: where a match may start, [s, e] */
	bool *cands_unsorted;
	struct win *leadrun; /* per rule: the last run of lead bytes walked, [s, e) */
	bool oom;
	struct finding_lines lines; /* where its lines are, for findings */
	struct seen last;           /* the previous accepted match */
	bool have_last;
	unsigned nfound;
	unsigned ncontext;
};

int scan_scanner_new(struct scan_scanner **out, const struct scan_rules *rules,
                     const struct scan_options *opt, struct scan_err *e)
{
	struct scan_scanner *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return scan_err_set(e, -ENOMEM, "out of memory");
	s->rules = rules;
	if (opt && opt->limits)
		s->lim = *opt->limits;
	else
		scan_limits_default(&s->lim);
	if (opt) {
		s->vendor = opt->vendor;
		s->no_nested = opt->no_nested;
		s->ignore_path_filters = opt->ignore_path_filters;
	}
	s->md = pcre2_match_data_create(rules->max_groups + 1, NULL);
	s->md1 = pcre2_match_data_create(1, NULL);
	s->mctx = pcre2_match_context_create(NULL);
	s->mctx_lim = pcre2_match_context_create(NULL);
	s->jit = pcre2_jit_stack_create(32 << 10, 1 << 20, NULL);
	if (!s->md || !s->md1 || !s->mctx || !s->mctx_lim) {
		scan_scanner_free(s);
		return scan_err_set(e, -ENOMEM, "out of memory");
	}
	pcre2_set_match_limit(s->mctx, s->lim.match_limit);
	pcre2_set_depth_limit(s->mctx, s->lim.depth_limit);
	pcre2_set_match_limit(s->mctx_lim, s->lim.match_limit);
	pcre2_set_depth_limit(s->mctx_lim, s->lim.depth_limit);
	if (s->jit) {
		pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
		pcre2_jit_stack_assign(s->mctx_lim, NULL, s->jit);
	}
	*out = s;
	return 0;
}

void scan_scanner_free(struct scan_scanner *s)
{
	if (!s)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_data_free(s->md1);
	pcre2_match_context_free(s->mctx);
	pcre2_match_context_free(s->mctx_lim);
	pcre2_jit_stack_free(s->jit);
	free(s);
}

void scan_scanner_stats(const struct scan_scanner *s, struct scan_stats *out)
{
	*out = s->st;
}

struct scan_stats *scan_ctx_stats(struct scan_ctx *c)
{
	return &c->s->st;
}

uint64_t scan_ctx_expand(struct scan_ctx *c, uint64_t add)
{
	c->expanded += add;
	return c->expanded;
}

const struct scan_limits *scan_ctx_limits(struct scan_ctx *c)
{
	return &c->s->lim;
}

static bool re_matches(struct scan_scanner *s, const pcre2_code *re, const char *subj, size_t n)
{
	int rc = pcre2_match(re, (PCRE2_SPTR)subj, n, 0, 0, s->md1, s->mctx);

	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
		s->st.regex_limits++;
	return rc >= 0;
}

/* Whether a rule applies to a path: its path filter, and no path-only allow
 * rule (of the rule, or global) that exempts the file. */
static bool rule_applies(struct scan_scanner *s, const struct scan_rule *r, const char *path)
{
	const struct scan_rules *rs = s->rules;

	if (r->path && !s->ignore_path_filters && !re_matches(s, r->path, path, strlen(path)))
		return false;
	for (size_t i = 0; i < r->nallow; i++)
		if (r->allow[i].path && !r->allow[i].regex &&
		    re_matches(s, r->allow[i].path, path, strlen(path)))
			return false;
	for (size_t i = 0; i < rs->nallow; i++)
		if (rs->allow[i].path && !rs->allow[i].regex &&
		    re_matches(s, rs->allow[i].path, path, strlen(path)))
			return false;
	return true;
}

/*
 * As trivy does: an allow rule drops a match when each condition it has holds,
 * its path regex on the file's path and its regex on the secret (the secret
 * group, or the whole match for rules without one). The text around the
 * secret is not tested: "password" next to a secret must not excuse it.
 */
static bool allowed_by(struct scan_scanner *s, const struct scan_allow *a, size_t n,
                       const char *path, const char *secret, size_t slen)
{
	for (size_t i = 0; i < n; i++) {
		if (!a[i].path && !a[i].regex)
			continue;
		if (a[i].path && !re_matches(s, a[i].path, path, strlen(path)))
			continue;
		if (a[i].regex && !re_matches(s, a[i].regex, secret, slen))
			continue;
		return true;
	}
	return false;
}

/* ---- windows ------------------------------------------------------------- */

static void add_window(struct bufscan *b, uint32_t rule, size_t hs, size_t he)
{
	const struct scan_limits *l = &b->c->s->lim;
	struct wlist *wl = &b->wins[rule];
	size_t s, e, lo;
	const uint8_t *p;

	/* Fast path: a hit well inside the last window (dense keywords). */
	if (wl->n && hs <= wl->w[wl->n - 1].e && he + l->window_after <= wl->w[wl->n - 1].e)
		return;
	/* end: window_after past the hit, then to the end of that line (1 KiB at most) */
	e = he + l->window_after < b->len ? he + l->window_after : b->len;
	if (e < b->len) {
		size_t more = b->len - e < 1024 ? b->len - e : 1024;

		p = memchr(b->d + e, '\n', more);
		e = p ? (size_t)(p - b->d) + 1 : e + more;
	}
	if (wl->n && hs <= wl->w[wl->n - 1].e) {
		if (e > wl->w[wl->n - 1].e)
			wl->w[wl->n - 1].e = e;
		return;
	}
	/* start: the beginning of the line before the hit, within window_before */
	lo = hs > l->window_before ? hs - l->window_before : 0;
	s = lo;
	p = hs > lo ? memrchr(b->d + lo, '\n', hs - lo) : NULL;
	if (p) {
		const uint8_t *q = (size_t)(p - b->d) > lo
		                       ? memrchr(b->d + lo, '\n', (size_t)(p - b->d) - lo)
		                       : NULL;

		s = q ? (size_t)(q - b->d) + 1 : lo;
	}
	if (wl->n && s <= wl->w[wl->n - 1].e) {
		if (e > wl->w[wl->n - 1].e)
			wl->w[wl->n - 1].e = e;
		return;
	}
	if (wl->n == wl->cap) {
		size_t cap = wl->cap ? wl->cap * 2 : 4;
		struct win *w = realloc(wl->w, cap * sizeof(*w));

		if (!w) {
			b->oom = true;
			return;
		}
		wl->w = w;
		wl->cap = cap;
	}
	wl->w[wl->n++] = (struct win){s, e};
}

/* Where a match of an anchored rule may start: [s, e], from one anchor hit. */
static void add_cand(struct bufscan *b, uint32_t rule, size_t s, size_t e)
{
	struct wlist *cl = &b->cands[rule];

	if (cl->n) {
		struct win *last = &cl->w[cl->n - 1];

		if (s >= last->s && s <= last->e + 1) {
			if (e > last->e)
				last->e = e;
			return;
		}
		if (s < last->s)
			b->cands_unsorted[rule] = true; /* hits come by end, not by start */
	}
	if (cl->n == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 16;
		struct win *w = realloc(cl->w, cap * sizeof(*w));

		if (!w) {
			b->oom = true;
			return;
		}
		cl->w = w;
		cl->cap = cap;
	}
	cl->w[cl->n++] = (struct win){s, e};
}

static int cmp_win(const void *a, const void *b)
{
	const struct win *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

/* Sorts and merges a rule's candidate ranges. */
static void norm_cands(struct bufscan *b, uint32_t rule)
{
	struct wlist *cl = &b->cands[rule];
	size_t o = 0;

	if (!b->cands_unsorted[rule] || !cl->n)
		return;
	qsort(cl->w, cl->n, sizeof(*cl->w), cmp_win);
	for (size_t i = 1; i < cl->n; i++) {
		if (cl->w[i].s <= cl->w[o].e + 1) {
			if (cl->w[i].e > cl->w[o].e)
				cl->w[o].e = cl->w[i].e;
		} else {
			cl->w[++o] = cl->w[i];
		}
	}
	cl->n = o + 1;
	b->cands_unsorted[rule] = false;
}

/*
 * Where a run of the rule's lead bytes that ends at lo starts, going back no
 * further than lim. Each byte is walked once per rule: the last run is kept.
 */
static size_t lead_back(struct bufscan *b, const struct scan_rule *r, uint32_t rule, size_t lo,
                        size_t lim)
{
	struct win *last = &b->leadrun[rule];
	size_t from = lo;

	if (lo >= last->s && lo <= last->e && last->e > last->s)
		return last->s > lim ? last->s : lim;
	while (lo > lim && (r->lead[b->d[lo - 1] >> 3] & (1u << (b->d[lo - 1] & 7)))) {
		lo--;
		if (lo == last->e && last->e > last->s) {
			lo = last->s > lim ? last->s : lim;
			break;
		}
	}
	*last = (struct win){lo, from};
	return lo;
}

static void on_hit(uint32_t tag, size_t start, size_t end, void *opaque)
{
	struct bufscan *b = opaque;
	const struct scan_kwtag *t = &b->c->s->rules->tags[tag];
	const struct scan_rule *r;
	size_t lo;

	if (!b->active[t->rule])
		return;
	if (t->window)
		add_window(b, t->rule, start, end);
	if (!t->anchor)
		return;
	lo = start > t->back ? start - t->back : 0;
	r = b->c->s->rules->rules[t->rule];
	/*
	 * A match may also start before lo over a run of lead bytes. Its anchor
	 * is a keyword, whose window (the last one, which holds the hit) bounds
	 * where a match that holds this hit can start.
	 */
	if (r->has_lead && b->wins[t->rule].n)
		lo = lead_back(b, r, t->rule, lo, b->wins[t->rule].w[b->wins[t->rule].n - 1].s);
	add_cand(b, t->rule, lo, start);
}

/* ---- one match ------------------------------------------------------------ */

static const char *vendor_pkg(struct scan_ctx *c)
{
	if (!c->vendor_state) {
		c->vendor_pkg =
		    scan_vendor_match(c->s->vendor, c->top_path, c->top_data, c->top_len);
		c->vendor_state = c->vendor_pkg ? 1 : -1;
	}
	return c->vendor_pkg;
}

/*
 * Windows of a rule are disjoint and scanned in order, so its matches come in
 * increasing offsets: a duplicate (rule, offset, secret) can only be the
 * previous match of the same rule.
 */
static bool seen_before(struct bufscan *b, uint32_t rule, size_t off, size_t len)
{
	if (b->have_last && b->last.rule == rule && b->last.off == off && b->last.len == len)
		return true;
	b->last = (struct seen){rule, off, len};
	b->have_last = true;
	return false;
}

static void on_match(struct bufscan *b, uint32_t ri, size_t ms, size_t me, size_t ss, size_t se)
{
	struct scan_ctx *c = b->c;
	struct scan_scanner *s = c->s;
	const struct scan_rule *r = s->rules->rules[ri];
	const char *secret = (const char *)b->d + ss, *match = (const char *)b->d + ms;
	size_t slen = se - ss, keep;
	struct scan_validation v = {0};
	struct scan_finding f = {0};
	const struct scan_target *w = c->where;
	const char *ex, *pkg;
	struct scan_buf why = {0};
	char *sec = NULL;
	bool example;
	int rc;

	if (!slen || c->rc)
		return;
	/* Past the bound, matches are counted, not examined: a file full of
	 * matches costs no more than max_findings of them. */
	if (r->context_only ? b->ncontext >= s->lim.max_findings
	                    : b->nfound >= s->lim.max_findings) {
		s->st.findings_dropped++;
		return;
	}
	if (allowed_by(s, r->allow, r->nallow, b->path, secret, slen) ||
	    allowed_by(s, s->rules->allow, s->rules->nallow, b->path, secret, slen))
		return;

	if (r->entropy > 0 && scan_entropy(secret, slen) < r->entropy)
		return;
	if (seen_before(b, ri, ss, slen))
		return;

	scan_validate(r->validate, secret, slen, match, me - ms, &v);
	example = v.verdict < 0;
	f.confidence = v.verdict > 0 ? SCAN_CONF_CONFIRMED : SCAN_CONF_LIKELY;
	if (v.why.len)
		scan_buf_puts(&why, v.why.p);
	if ((ex = scan_example_value(secret, slen))) {
		example = true;
		scan_buf_printf(&why, "%s%s", why.len ? "; " : "", ex);
	}
	if (scan_is_example_path(b->path)) {
		example = true;
		scan_buf_printf(&why, "%stest or example path", why.len ? "; " : "");
	}
	if ((pkg = vendor_pkg(c))) {
		example = true;
		scan_buf_printf(&why, "%svendor: package %s", why.len ? "; " : "", pkg);
	}
	if (example)
		f.confidence = SCAN_CONF_EXAMPLE;

	keep = slen < s->lim.max_secret ? slen : s->lim.max_secret;
	sec = strndup(secret, keep);
	f.rule_id = r->id;
	f.title = r->title;
	f.category = r->category;
	f.severity = r->severity;
	f.context_only = r->context_only;
	f.path = b->path;
	f.visibility = w && w->visibility ? w->visibility : NULL;
	f.layer = w ? w->layer : -1;
	f.layer_digest = w ? w->layer_digest : NULL;
	f.created_by = w ? w->created_by : NULL;
	f.view_path = w ? w->view_path : NULL;
	f.offset = ss;
	f.line = finding_line_of(&b->lines, ss);
	f.column = ss - finding_line_start(&b->lines, f.line) + 1;
	f.secret = sec;
	f.secret_len = slen;
	f.redacted = finding_redact(secret, slen);
	f.why = scan_buf_steal(&why);
	f.context = f.redacted ? finding_context(&b->lines, ss, se, f.redacted, false) : NULL;
	f.context_raw = finding_context(&b->lines, ss, se, NULL, true);
	f.fingerprint = finding_fingerprint(r->id, secret, slen, b->path);
	f.pubkey_sha256 = v.pubkey_sha256[0] ? v.pubkey_sha256 : NULL;
	f.cert_subject = v.cert_subject;
	f.cert_issuer = v.cert_issuer;
	f.cert_not_before = v.cert_not_before;
	f.cert_not_after = v.cert_not_after;
	if (!sec || !f.redacted || !f.why || !f.context || !f.context_raw || !f.fingerprint ||
	    b->oom || b->lines.oom) {
		c->rc = -ENOMEM;
	} else {
		if (!r->context_only) {
			b->nfound++;
			s->st.findings++;
		} else {
			b->ncontext++;
		}
		rc = c->cb ? c->cb(&f, c->opaque) : 0;
		if (rc < 0)
			c->rc = rc;
	}
	free(sec);
	free((char *)f.redacted);
	free((char *)f.why);
	free((char *)f.context);
	free((char *)f.context_raw);
	free((char *)f.fingerprint);
	scan_validation_clear(&v);
}

/* A match of rule ri (rc from pcre2_match): its secret, then on_match(). */
static void take_match(struct bufscan *b, uint32_t ri, int rc, size_t *ms, size_t *me)
{
	struct scan_scanner *s = b->c->s;
	const struct scan_rule *r = s->rules->rules[ri];
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
	size_t ss, se;

	*ms = ov[0];
	*me = ov[1];
	ss = *ms;
	se = *me;
	if (r->group && (int)r->group < rc && ov[2 * r->group] != PCRE2_UNSET) {
		ss = ov[2 * r->group];
		se = ov[2 * r->group + 1];
	} else if (r->group) {
		ss = se = 0; /* the secret group did not take part */
	}
	if (se > ss)
		on_match(b, ri, *ms, *me, ss, se);
}

static void run_rule(struct bufscan *b, uint32_t ri)
{
	struct scan_scanner *s = b->c->s;
	const struct scan_rule *r = s->rules->rules[ri];
	struct wlist *wl = &b->wins[ri];

	for (size_t i = 0; i < wl->n && !b->c->rc && !b->oom; i++) {
		size_t off = wl->w[i].s, end = wl->w[i].e;

		while (off < end && !b->c->rc) {
			int rc = pcre2_match(r->regex, b->d, end, off, 0, s->md, s->mctx);
			size_t ms, me;

			if (rc == PCRE2_ERROR_NOMATCH)
				break;
			if (rc < 0) {
				/* match/depth/heap/JIT-stack limits: give up on this window */
				s->st.regex_limits++;
				break;
			}
			take_match(b, ri, rc, &ms, &me);
			off = me > off ? me : off + 1;
			if (me <= ms && me >= end)
				break;
		}
	}
}

/*
 * The same search as run_rule, for a rule whose matches all start within
 * the candidate ranges of its anchor hits: in each window, the leftmost
 * match at or after off is the leftmost one that starts inside one of those
 * ranges, so the regex is tried range by range, with an offset limit at the
 * range's end, instead of at every position of the window. The matches,
 * and so the findings, are the ones run_rule finds.
 */
static void run_rule_anchored(struct bufscan *b, uint32_t ri)
{
	struct scan_scanner *s = b->c->s;
	const struct scan_rule *r = s->rules->rules[ri];
	struct wlist *wl = &b->wins[ri], *cl = &b->cands[ri];
	size_t ci = 0;

	norm_cands(b, ri);
	for (size_t i = 0; i < wl->n && !b->c->rc && !b->oom; i++) {
		size_t off = wl->w[i].s, end = wl->w[i].e;

		while (off < end && !b->c->rc) {
			size_t from, ms, me;
			int rc;

			while (ci < cl->n && cl->w[ci].e < off)
				ci++;
			if (ci == cl->n || cl->w[ci].s >= end)
				break;
			from = cl->w[ci].s > off ? cl->w[ci].s : off;
			pcre2_set_offset_limit(s->mctx_lim, cl->w[ci].e);
			rc = pcre2_match(r->regex_anch ? r->regex_anch : r->regex, b->d, end, from,
			                 0, s->md, s->mctx_lim);
			if (rc == PCRE2_ERROR_NOMATCH) {
				off = cl->w[ci].e + 1; /* no match starts in this range */
				continue;
			}
			if (rc < 0) {
				/* match/depth/heap/JIT-stack limits: give up on this window */
				s->st.regex_limits++;
				break;
			}
			take_match(b, ri, rc, &ms, &me);
			off = me > from ? me : from + 1;
			if (me <= ms && me >= end)
				break;
		}
	}
}

/* The regex pass over one buffer's raw bytes. */
static int scan_raw(struct scan_ctx *c, const char *path, const uint8_t *d, size_t len)
{
	const struct scan_rules *rs = c->s->rules;
	struct bufscan b = {
	    .c = c, .path = path, .d = d, .len = len, .lines = {.d = d, .len = len}};
	int rc = 0;

	b.active = calloc(rs->n + 1, sizeof(*b.active));
	b.wins = calloc(rs->n + 1, sizeof(*b.wins));
	b.cands = calloc(rs->n + 1, sizeof(*b.cands));
	b.cands_unsorted = calloc(rs->n + 1, sizeof(*b.cands_unsorted));
	b.leadrun = calloc(rs->n + 1, sizeof(*b.leadrun));
	if (!b.active || !b.wins || !b.cands || !b.cands_unsorted || !b.leadrun) {
		rc = -ENOMEM;
		goto out;
	}
	size_t nactive = 0;

	for (size_t i = 0; i < rs->n; i++)
		nactive += b.active[i] = rule_applies(c->s, rs->rules[i], path);
	if (!nactive)
		goto out; /* exempt by path: no pass over the bytes at all */
	scan_prefilter_run(rs->pf, d, len, on_hit, &b);
	for (size_t i = 0; i < rs->nalways; i++)
		if (b.active[rs->always[i]])
			add_window(&b, rs->always[i], 0, len);
	for (size_t i = 0; i < rs->n && !c->rc && !b.oom; i++)
		if (b.wins[i].n && rs->rules[i]->anchored)
			run_rule_anchored(&b, (uint32_t)i);
		else if (b.wins[i].n)
			run_rule(&b, (uint32_t)i);
	rc = b.oom ? -ENOMEM : c->rc;
out:
	if (b.wins)
		for (size_t i = 0; i < rs->n; i++)
			free(b.wins[i].w);
	if (b.cands)
		for (size_t i = 0; i < rs->n; i++)
			free(b.cands[i].w);
	free(b.wins);
	free(b.cands);
	free(b.cands_unsorted);
	free(b.leadrun);
	free(b.active);
	finding_lines_release(&b.lines);
	return rc;
}

int scan_buffer_at(struct scan_ctx *c, const char *path, const void *data, size_t len,
                   unsigned depth)
{
	struct scan_stats *st = &c->s->st;

	if (c->rc)
		return c->rc;
	st->files++;
	if (len > c->s->lim.max_file_size) {
		st->skipped_too_large++;
		return 0;
	}
	if (!c->s->no_nested && scan_nested_detect(data, len)) {
		if (depth >= c->s->lim.max_depth) {
			st->limit_depth++;
		} else {
			int rc = scan_nested(c, path, data, len, depth);

			if (rc)
				return rc < 0 ? rc : c->rc;
		}
	}
	st->bytes += len;
	return scan_raw(c, path, data, len);
}

int scan_buffer(struct scan_scanner *s, const struct scan_target *where, const void *data,
                size_t len, scan_finding_cb cb, void *opaque)
{
	struct scan_ctx c = {
	    .s = s,
	    .where = where,
	    .cb = cb,
	    .opaque = opaque,
	    .top_data = data,
	    .top_len = len,
	    .top_path = where && where->path ? where->path : "",
	};

	if (!data && len)
		return -EINVAL;
	return scan_buffer_at(&c, c.top_path, data ? data : "", len, 0);
}
