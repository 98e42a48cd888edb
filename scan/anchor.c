/*
 * anchor: a small, conservative reader of PCRE2 patterns (see anchor.h).
 *
 * Why: most rules are "some prefix, a literal, the secret", and a regex run
 * over a whole 16 KiB window tries every position of it; for patterns whose
 * prefix is a long optional name ([A-Za-z0-9_.-]{0,40}) that costs tens of
 * steps per byte. When every match must hold a literal within a known
 * distance of its start, only the positions just before each occurrence of
 * that literal can start a match.
 *
 * The reader computes, for each part of the pattern, its shortest and
 * longest length, the complete set of strings it matches when that set is
 * small (folded to lowercase: anchors are found case-insensitively, so
 * case-sensitive parts may be treated as caseless, which only adds strings),
 * and a set of anchors that every match of the part holds. A sequence takes
 * the best anchors offered by one of its parts, pushed back by the longest
 * length of the parts before it; an alternation needs anchors in every
 * branch. Anything it does not know (verbs, \K, \G, recursion, extended
 * mode, conditionals, Unicode properties...) makes it give up, and the engine
 * then runs the regex over the whole window as before.
 */
#include "anchor.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAXSET   64 /* strings of a complete set */
#define MAXCLASS 16 /* a class with more (folded) bytes is "anything" */
#define MAXDEPTH 64 /* group nesting */
#define INF      UINT32_MAX

struct str {
	uint8_t len;
	char s[SCAN_ANCHOR_MAXLEN];
};

struct info {
	uint32_t minlen, maxlen;
	bool fin; /* set[] is every string the part can match (folded) */
	size_t nset;
	struct str set[MAXSET];
	bool anch; /* every match holds one of anchors[] */
	size_t nanch;
	struct scan_anchor anchors[SCAN_ANCHOR_MAX];
	int score[5];        /* of anchors[], see better() */
	bool run;            /* a byte class repeated any number of times, from 0 */
	uint8_t runbits[32]; /* that class */
};

struct parser {
	const char *p;
	size_t min_len;
	const char *const *kw; /* the rule's keywords, lowercase */
	const size_t *kwlen;
	size_t nkw;
	int depth;
	bool fail;
	uint8_t *lead; /* see anchor.h */
};

static uint32_t add_len(uint32_t a, uint32_t b)
{
	return a == INF || b == INF || a + b < a ? INF : a + b;
}

static uint32_t mul_len(uint32_t a, uint32_t m)
{
	if (!a || !m)
		return 0;
	if (a == INF || m == INF || a > INF / m)
		return INF;
	return a * m;
}

static char fold(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static struct info *info_new(void)
{
	return calloc(1, sizeof(struct info));
}

/* A part that matches exactly the empty string (assertions, flags). */
static void set_empty(struct info *in)
{
	memset(in, 0, sizeof(*in));
	in->fin = true;
	in->nset = 1;
}

static bool set_add(struct info *in, const struct str *s)
{
	for (size_t i = 0; i < in->nset; i++)
		if (in->set[i].len == s->len && !memcmp(in->set[i].s, s->s, s->len))
			return true;
	if (in->nset == MAXSET)
		return false;
	in->set[in->nset++] = *s;
	return true;
}

/* dst = a x b (every concatenation); false when too many or too long. */
static bool set_product(struct info *dst, const struct info *a, const struct info *b)
{
	static const struct info zero;
	struct info *t = info_new();
	bool ok = t != NULL;

	if (t)
		*t = zero;
	for (size_t i = 0; ok && i < a->nset; i++)
		for (size_t j = 0; ok && j < b->nset; j++) {
			struct str s;

			if (a->set[i].len + b->set[j].len > SCAN_ANCHOR_MAXLEN) {
				ok = false;
				break;
			}
			s.len = (uint8_t)(a->set[i].len + b->set[j].len);
			memcpy(s.s, a->set[i].s, a->set[i].len);
			memcpy(s.s + a->set[i].len, b->set[j].s, b->set[j].len);
			ok = set_add(t, &s);
		}
	if (ok) {
		memcpy(dst->set, t->set, t->nset * sizeof(t->set[0]));
		dst->nset = t->nset;
	}
	free(t);
	return ok;
}

static bool anchor_add(struct scan_anchor *v, size_t *n, const char *s, size_t len, uint32_t back)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i].len == len && !memcmp(v[i].s, s, len)) {
			if (back > v[i].back)
				v[i].back = back;
			return true;
		}
	if (*n == SCAN_ANCHOR_MAX || len > SCAN_ANCHOR_MAXLEN)
		return false;
	v[*n].len = (uint8_t)len;
	memcpy(v[*n].s, s, len);
	v[*n].back = back;
	(*n)++;
	return true;
}

/*
 * Which anchors are cheaper: those the prefilter already looks for (rule
 * keywords), then a short way back (each occurrence costs a regex attempt
 * at every position within `back` before it), then longer literals (rarer),
 * then a shorter way back still, then fewer of them.
 */
static void score(struct parser *ps, struct info *in)
{
	int kw = 0, minl = SCAN_ANCHOR_MAXLEN, back = 0;

	for (size_t i = 0; i < in->nanch; i++) {
		bool is_kw = false;

		for (size_t k = 0; k < ps->nkw && !is_kw; k++)
			is_kw = ps->kwlen[k] == in->anchors[i].len &&
			        !memcmp(ps->kw[k], in->anchors[i].s, in->anchors[i].len);
		kw += !is_kw;
		if (in->anchors[i].len < minl)
			minl = in->anchors[i].len;
		if ((int)in->anchors[i].back > back)
			back = (int)in->anchors[i].back;
	}
	in->score[0] = !kw;
	in->score[1] = back <= 256;
	in->score[2] = minl;
	in->score[3] = -back;
	in->score[4] = -(int)in->nanch;
}

static bool better(const struct info *a, const struct info *b)
{
	if (!b->anch)
		return true;
	for (int i = 0; i < 5; i++)
		if (a->score[i] != b->score[i])
			return a->score[i] > b->score[i];
	return false;
}

/*
 * An anchor for a literal found at most `back` bytes into the match: the
 * longest rule keyword inside it when there is one (the prefilter finds it
 * already), else the literal itself.
 */
static bool anchor_lit(struct parser *ps, struct info *c, const struct str *s, uint32_t back)
{
	size_t best = SIZE_MAX, at = 0;

	for (size_t k = 0; k < ps->nkw; k++) {
		const char *f = ps->kwlen[k] && ps->kwlen[k] <= s->len
		                    ? memmem(s->s, s->len, ps->kw[k], ps->kwlen[k])
		                    : NULL;

		if (f && (best == SIZE_MAX || ps->kwlen[k] > ps->kwlen[best])) {
			best = k;
			at = (size_t)(f - s->s);
		}
	}
	if (best != SIZE_MAX) {
		if (ps->kwlen[best] < ps->min_len || back == INF || back + at > INF / 2)
			return false;
		return anchor_add(c->anchors, &c->nanch, ps->kw[best], ps->kwlen[best],
		                  back + (uint32_t)at);
	}
	if (s->len < ps->min_len || back == INF)
		return false;
	for (size_t i = 0; i < s->len; i++)
		if ((unsigned char)s->s[i] >= 0x80)
			return false; /* case folding of other bytes depends on the locale */
	return anchor_add(c->anchors, &c->nanch, s->s, s->len, back);
}

/* Makes candidate c (a full set of anchors) the best one if it scores better. */
static void take_if_better(struct parser *ps, struct info *best, struct info *c)
{
	c->anch = true;
	score(ps, c);
	if (better(c, best)) {
		memcpy(best->anchors, c->anchors, c->nanch * sizeof(c->anchors[0]));
		best->nanch = c->nanch;
		memcpy(best->score, c->score, sizeof(c->score));
		best->anch = true;
	}
}

/* Offers the strings of a complete set, found at most `back` bytes in, as anchors. */
static void offer_set(struct parser *ps, struct info *best, const struct info *seg, uint32_t back)
{
	struct info *c;
	bool ok = back != INF && seg->nset > 0;

	if (!ok || !(c = info_new()))
		return;
	for (size_t i = 0; ok && i < seg->nset; i++)
		ok = anchor_lit(ps, c, &seg->set[i], back);
	if (ok)
		take_if_better(ps, best, c);
	free(c);
}

/* Offers a part's own anchors, the part starting at most `back` bytes in. */
static void offer_anchors(struct parser *ps, struct info *best, const struct info *part,
                          uint32_t back)
{
	struct info *c;
	bool ok = back != INF && part->anch;

	if (!ok || !(c = info_new()))
		return;
	for (size_t i = 0; ok && i < part->nanch; i++)
		ok = part->anchors[i].back <= INF / 2 - back &&
		     anchor_add(c->anchors, &c->nanch, part->anchors[i].s, part->anchors[i].len,
		                part->anchors[i].back + back);
	if (ok)
		take_if_better(ps, best, c);
	free(c);
}

/* ---- atoms ---------------------------------------------------------------- */

static void bits_set(uint8_t *bits, unsigned c)
{
	bits[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static void bits_range(uint8_t *bits, unsigned lo, unsigned hi)
{
	for (unsigned c = lo; c <= hi; c++)
		bits_set(bits, c);
}

/* \d \s \w \h \v and their complements, as PCRE2 defines them for bytes
 * without UTF and with its default (C locale) tables. 0 when not a class. */
static bool class_escape(char e, uint8_t *bits)
{
	uint8_t t[32] = {0};
	bool neg = e >= 'A' && e <= 'Z';

	switch (fold(e)) {
	case 'd':
		bits_range(t, '0', '9');
		break;
	case 's':
		bits_range(t, '\t', '\r'); /* \t \n \v \f \r */
		bits_set(t, ' ');
		break;
	case 'w':
		bits_range(t, '0', '9');
		bits_range(t, 'A', 'Z');
		bits_range(t, 'a', 'z');
		bits_set(t, '_');
		break;
	case 'h':
		bits_set(t, '\t');
		bits_set(t, ' ');
		bits_set(t, 0xa0);
		break;
	case 'v':
		bits_range(t, '\n', '\r');
		bits_set(t, 0x85);
		break;
	default:
		return false;
	}
	for (int i = 0; i < 32; i++)
		bits[i] |= neg ? (uint8_t)~t[i] : t[i];
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = fold(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A single-byte escape (after the backslash): the byte, or -1. */
static int byte_escape(struct parser *ps, bool in_class)
{
	char c = *ps->p;

	switch (c) {
	case 't':
		ps->p++;
		return '\t';
	case 'n':
		ps->p++;
		return '\n';
	case 'r':
		ps->p++;
		return '\r';
	case 'f':
		ps->p++;
		return '\f';
	case 'e':
		ps->p++;
		return 0x1b;
	case 'a':
		ps->p++;
		return 0x07;
	case 'b':
		if (!in_class)
			return -1;
		ps->p++;
		return 0x08;
	case 'x': {
		int v = 0, d, n = 0;

		ps->p++;
		if (*ps->p == '{') {
			ps->p++;
			while ((d = hexval(*ps->p)) >= 0 && n < 3) {
				v = v * 16 + d;
				ps->p++;
				n++;
			}
			if (*ps->p != '}' || !n || v > 0xff)
				return -1;
			ps->p++;
			return v;
		}
		while (n < 2 && (d = hexval(*ps->p)) >= 0) {
			v = v * 16 + d;
			ps->p++;
			n++;
		}
		return v;
	}
	default:
		if (!c || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || (unsigned char)c >= 0x80)
			return -1; /* a letter or digit escape this reader does not know */
		ps->p++;
		return (unsigned char)c;
	}
}

/* The folded bytes of a byte set: a complete set when few, else "anything". */
static void from_bits(struct info *in, const uint8_t *bits)
{
	uint8_t folded[32] = {0};
	unsigned n = 0;

	memset(in, 0, sizeof(*in));
	in->minlen = in->maxlen = 1;
	for (unsigned c = 0; c < 256; c++)
		if (bits[c >> 3] & (1u << (c & 7))) {
			unsigned f = (unsigned char)fold((char)c);

			if (!(folded[f >> 3] & (1u << (f & 7)))) {
				bits_set(folded, f);
				n++;
			}
		}
	if (!n || n > MAXCLASS)
		return; /* anything (an empty class never matches: no strings to offer) */
	in->fin = true;
	for (unsigned c = 0; c < 256; c++)
		if (folded[c >> 3] & (1u << (c & 7))) {
			in->set[in->nset].len = 1;
			in->set[in->nset].s[0] = (char)c;
			in->nset++;
		}
}

static void parse_class(struct parser *ps, struct info *in, uint8_t *bits)
{
	bool neg = false, first = true;

	ps->p++; /* [ */
	if (*ps->p == '^') {
		neg = true;
		ps->p++;
	}
	for (;;) {
		int lo, hi;
		char c = *ps->p;

		if (!c) {
			ps->fail = true;
			return;
		}
		if (c == ']' && !first)
			break;
		first = false;
		if (c == '[' && (ps->p[1] == ':' || ps->p[1] == '.' || ps->p[1] == '=')) {
			ps->fail = true; /* POSIX classes: not needed, not read */
			return;
		}
		if (c == '\\') {
			ps->p++;
			if (class_escape(*ps->p, bits)) {
				ps->p++;
				continue;
			}
			if ((lo = byte_escape(ps, true)) < 0) {
				ps->fail = true;
				return;
			}
		} else {
			lo = (unsigned char)c;
			ps->p++;
		}
		hi = lo;
		if (ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') {
			ps->p++;
			if (*ps->p == '\\') {
				ps->p++;
				hi = byte_escape(ps, true);
			} else if (*ps->p == '[') {
				hi = -1;
			} else {
				hi = (unsigned char)*ps->p++;
			}
			if (hi < lo) {
				ps->fail = true;
				return;
			}
		}
		bits_range(bits, (unsigned)lo, (unsigned)hi);
	}
	ps->p++; /* ] */
	if (neg)
		for (int i = 0; i < 32; i++)
			bits[i] = (uint8_t)~bits[i];
	from_bits(in, bits);
}

static void parse_alt(struct parser *ps, struct info *out, bool root);

/* "(?" flags: imsnUJ and '-' are harmless to this reader; x changes the syntax. */
static bool parse_flags(struct parser *ps, char *end)
{
	while (*ps->p && strchr("imsnUJ-", *ps->p))
		ps->p++;
	*end = *ps->p;
	if (*ps->p != ')' && *ps->p != ':')
		return false;
	ps->p++;
	return true;
}

static void parse_group(struct parser *ps, struct info *in)
{
	bool zero = false;
	char end;

	ps->p++; /* ( */
	if (*ps->p == '*') {
		ps->fail = true; /* verbs: (*COMMIT), (*SKIP)... */
		return;
	}
	if (*ps->p == '?') {
		const char *q = ps->p + 1;

		if (q[0] == ':' || q[0] == '>') {
			ps->p = q + 1;
		} else if (q[0] == '=' || q[0] == '!') {
			ps->p = q + 1;
			zero = true;
		} else if (q[0] == '<' && (q[1] == '=' || q[1] == '!')) {
			ps->p = q + 2;
			zero = true;
		} else if ((q[0] == 'P' && q[1] == '<') || (q[0] == '<' && q[1] != '=')) {
			const char *gt = strchr(q, '>');

			if (!gt) {
				ps->fail = true;
				return;
			}
			ps->p = gt + 1;
		} else if (q[0] == 'P' && q[1] == '=') {
			/* a back reference: any string, of any length */
			const char *cl = strchr(q, ')');

			if (!cl) {
				ps->fail = true;
				return;
			}
			ps->p = cl + 1;
			memset(in, 0, sizeof(*in));
			in->maxlen = INF;
			return;
		} else if (q[0] == '#') {
			const char *cl = strchr(q, ')');

			if (!cl) {
				ps->fail = true;
				return;
			}
			ps->p = cl + 1;
			set_empty(in);
			return;
		} else {
			ps->p = q;
			if (!parse_flags(ps, &end)) {
				ps->fail = true;
				return;
			}
			if (end == ')') {
				set_empty(in); /* (?i): a flag for the rest of the group */
				return;
			}
		}
	}
	if (++ps->depth > MAXDEPTH) {
		ps->fail = true;
		return;
	}
	parse_alt(ps, in, false);
	ps->depth--;
	if (ps->fail || *ps->p != ')') {
		ps->fail = true;
		return;
	}
	ps->p++;
	if (zero)
		set_empty(in); /* a lookaround consumes nothing */
}

/* {m}, {m,}, {m,n}: true with the bounds when the text is a quantifier. */
static bool read_braces(const char *p, uint32_t *m, uint32_t *n, const char **after)
{
	uint32_t a = 0, b;
	int digits = 0;

	if (*p++ != '{')
		return false;
	while (*p >= '0' && *p <= '9' && digits < 6) {
		a = a * 10 + (uint32_t)(*p++ - '0');
		digits++;
	}
	if (!digits)
		return false;
	b = a;
	if (*p == ',') {
		p++;
		if (*p == '}') {
			b = INF;
		} else {
			b = 0;
			digits = 0;
			while (*p >= '0' && *p <= '9' && digits < 6) {
				b = b * 10 + (uint32_t)(*p++ - '0');
				digits++;
			}
			if (!digits)
				return false;
		}
	}
	if (*p != '}')
		return false;
	*m = a;
	*n = b;
	*after = p + 1;
	return true;
}

/* X{m,n} over a part; *split set when the caller should see X X{m-1,n-1}. */
static void quantify(struct info *in, uint32_t m, uint32_t n)
{
	struct info *acc = NULL, *pw = NULL;
	bool fin = in->fin && n != INF && n <= 4;

	in->minlen = mul_len(in->minlen, m);
	in->maxlen = n == INF ? (in->maxlen ? INF : 0) : mul_len(in->maxlen, n);
	if (!m) {
		in->anch = false;
		in->nanch = 0;
	}
	if (!fin || !(acc = info_new()) || !(pw = info_new())) {
		free(acc);
		in->fin = false;
		return;
	}
	/* the union of X^k for k = m..n, when it stays small */
	set_empty(pw);
	acc->nset = 0;
	for (uint32_t k = 0; k <= n && fin; k++) {
		if (k >= m)
			for (size_t i = 0; i < pw->nset && fin; i++)
				fin = set_add(acc, &pw->set[i]);
		if (k < n)
			fin = fin && set_product(pw, pw, in);
	}
	if (fin) {
		memcpy(in->set, acc->set, acc->nset * sizeof(acc->set[0]));
		in->nset = acc->nset;
	}
	in->fin = fin;
	free(acc);
	free(pw);
}

/* One atom and its quantifier; it may come back as two parts (first, rest). */
static int parse_atom(struct parser *ps, struct info *a, struct info *rest)
{
	char c = *ps->p;
	uint32_t m = 1, n = 1;
	const char *after;
	uint8_t abits[32] = {0}; /* the bytes of a one-byte atom */
	bool byte_atom = true;

	switch (c) {
	case '(':
		byte_atom = false;
		parse_group(ps, a);
		break;
	case '[':
		parse_class(ps, a, abits);
		break;
	case '.':
		memset(abits, 0xff, sizeof(abits));
		ps->p++;
		from_bits(a, abits);
		break;
	case '^':
	case '$':
		ps->p++;
		set_empty(a);
		return 1; /* PCRE2 allows no quantifier here that matters */
	case '*':
	case '+':
	case '?':
		ps->fail = true;
		return 0;
	case '\\': {
		int b;

		ps->p++;
		c = *ps->p;
		if (c == 'b' || c == 'B' || c == 'A' || c == 'z' || c == 'Z') {
			ps->p++;
			set_empty(a);
			return 1;
		}
		if (class_escape(c, abits)) {
			ps->p++;
			from_bits(a, abits);
			break;
		}
		if ((b = byte_escape(ps, false)) < 0) {
			ps->fail = true; /* \K \G \Q \p \1 \R \N \X \C \k \g ... */
			return 0;
		}
		bits_set(abits, (unsigned)b);
		from_bits(a, abits);
		break;
	}
	default: {
		/* a quantifier with nothing before it; "{,n}" is a literal for
		 * PCRE2 10.42 and a quantifier from 10.43 on: give up on both */
		if (read_braces(ps->p, &m, &n, &after) || (c == '{' && ps->p[1] == ',')) {
			ps->fail = true;
			return 0;
		}
		bits_set(abits, (unsigned char)c);
		ps->p++;
		from_bits(a, abits);
		break;
	}
	}
	if (ps->fail)
		return 0;
	/* the quantifier, with its lazy or possessive mark, which do not change
	 * the strings that can match */
	c = *ps->p;
	if (c == '*' || c == '+' || c == '?') {
		m = c == '+' ? 1 : 0;
		n = c == '?' ? 1 : INF;
		ps->p++;
	} else if (c == '{' && ps->p[1] == ',') {
		ps->fail = true;
		return 0;
	} else if (read_braces(ps->p, &m, &n, &after)) {
		if (n < m) {
			ps->fail = true;
			return 0;
		}
		ps->p = after;
	} else {
		return 1;
	}
	if (*ps->p == '?' || *ps->p == '+')
		ps->p++;
	if (byte_atom && !m && n == INF) {
		a->run = true;
		memcpy(a->runbits, abits, sizeof(abits));
	}
	if (m >= 1 && a->fin && !(n <= 4 && n != INF)) {
		/* X{m,n} = X X{m-1,n-1}: the first X can join the literal before it */
		*rest = *a;
		quantify(rest, m - 1, n == INF ? INF : n - 1);
		return 2;
	}
	quantify(a, m, n);
	return 1;
}

/* ---- sequences and alternations --------------------------------------------- */

/* Ends the literal run being built: its strings are anchors at segoff. */
static void end_segment(struct parser *ps, struct info *best, struct info *seg, uint32_t segoff)
{
	if (seg->nset && !(seg->nset == 1 && seg->set[0].len == 0))
		offer_set(ps, best, seg, segoff);
	set_empty(seg);
}

/* One part of a sequence, at most `off` bytes from the start. */
static void seq_add(struct parser *ps, struct info *out, struct info *seg, uint32_t *segoff,
                    uint32_t *off, const struct info *x)
{
	if (x->fin && set_product(seg, seg, x)) {
		/* joins the literal run */
	} else {
		end_segment(ps, out, seg, *segoff);
		offer_anchors(ps, out, x, *off);
		if (x->fin) {
			memcpy(seg->set, x->set, x->nset * sizeof(x->set[0]));
			seg->nset = x->nset;
			*segoff = *off;
		} else {
			*segoff = add_len(*off, x->maxlen);
		}
	}
	if (out->fin && !(x->fin && set_product(out, out, x)))
		out->fin = false;
	out->minlen = add_len(out->minlen, x->minlen);
	out->maxlen = add_len(out->maxlen, x->maxlen);
	*off = add_len(*off, x->maxlen);
}

/*
 * root: the sequence starts where the match starts. Runs of a byte class at
 * its very start ([ \t]* after ^ or a lookbehind) have no bound, so they are
 * left out of the distance and handed to the engine as the lead class: it
 * walks back over such bytes from each anchor's range (anchor.h).
 */
static void parse_seq(struct parser *ps, struct info *out, bool root)
{
	struct info *seg = info_new(), *a = info_new(), *rest = info_new();
	uint32_t off = 0, segoff = 0;
	bool leading = root && ps->lead;

	if (!seg || !a || !rest) {
		ps->fail = true;
		goto done;
	}
	set_empty(out);
	set_empty(seg);
	while (!ps->fail && *ps->p && *ps->p != '|' && *ps->p != ')') {
		int k = parse_atom(ps, a, rest);

		if (k == 1 && leading && a->run) {
			for (int i = 0; i < 32; i++)
				ps->lead[i] |= a->runbits[i];
			continue;
		}
		if (k >= 1 && !(a->fin && a->maxlen == 0))
			leading = false; /* consumes bytes: no lead class after it */
		if (k >= 1)
			seq_add(ps, out, seg, &segoff, &off, a);
		if (k == 2)
			seq_add(ps, out, seg, &segoff, &off, rest);
	}
	end_segment(ps, out, seg, segoff);
done:
	free(seg);
	free(a);
	free(rest);
}

static void parse_alt(struct parser *ps, struct info *out, bool root)
{
	struct info *br = info_new();
	bool first = true;

	if (!br) {
		ps->fail = true;
		return;
	}
	for (;;) {
		parse_seq(ps, br, root);
		if (ps->fail)
			break;
		if (first) {
			*out = *br;
		} else {
			out->minlen = br->minlen < out->minlen ? br->minlen : out->minlen;
			out->maxlen = br->maxlen > out->maxlen ? br->maxlen : out->maxlen;
			for (size_t i = 0; out->fin && i < br->nset; i++)
				out->fin = br->fin && set_add(out, &br->set[i]);
			out->fin = out->fin && br->fin;
			for (size_t i = 0; out->anch && i < br->nanch; i++)
				out->anch = br->anch &&
				            anchor_add(out->anchors, &out->nanch, br->anchors[i].s,
				                       br->anchors[i].len, br->anchors[i].back);
			out->anch = out->anch && br->anch;
			if (!out->anch)
				out->nanch = 0;
		}
		first = false;
		if (*ps->p != '|')
			break;
		ps->p++;
	}
	free(br);
}

int scan_regex_anchors(const char *pattern, size_t min_len, const char *const *kw,
                       const size_t *kwlen, size_t nkw, struct scan_anchor *out, size_t *n,
                       uint8_t *lead)
{
	struct parser ps = {
	    .p = pattern, .min_len = min_len, .kw = kw, .kwlen = kwlen, .nkw = nkw, .lead = lead};
	struct info *in = info_new();
	int rc = -1;

	*n = 0;
	if (lead)
		memset(lead, 0, 32);
	if (!in)
		return -1;
	parse_alt(&ps, in, true);
	if (!ps.fail && !*ps.p && in->anch && in->nanch) {
		memcpy(out, in->anchors, in->nanch * sizeof(in->anchors[0]));
		*n = in->nanch;
		rc = 0;
	}
	free(in);
	return rc;
}
