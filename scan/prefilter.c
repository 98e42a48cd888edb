/*
 * prefilter: one pass over a buffer finds every rule keyword at once, so that
 * the (much slower) regexes run only in windows around keyword hits.
 *
 * An Aho-Corasick automaton, compiled to a full transition table (a DFA) over
 * byte classes: every byte that occurs in some keyword gets its own class
 * (upper- and lowercase letters share one, which makes the match
 * case-insensitive without lowering the input), every other byte is class 0.
 * Keyword sets are small (a few hundred short literals), so the table stays
 * small while the inner loop is one load per input byte.
 */
#include "prefilter.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pf_kw {
	uint8_t *s;
	uint32_t len;
	uint32_t rule;
};

struct pf_out {
	uint32_t rule;
	uint32_t len;
};

struct scan_prefilter {
	struct pf_kw *kws;
	size_t nkw, capkw;
	uint8_t cls[256];
	unsigned ncls;
	uint32_t *delta; /* nstates * ncls: target * ncls, bit 31: has outputs */
	size_t nstates;
	uint32_t *out_start; /* nstates + 1 offsets into outs */
	uint32_t *out_link;  /* next state with outputs on the failure chain */
	struct pf_out *outs;
	uint32_t maxlen; /* longest keyword */
	bool built;
};

int scan_prefilter_new(struct scan_prefilter **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void scan_prefilter_free(struct scan_prefilter *pf)
{
	if (!pf)
		return;
	for (size_t i = 0; i < pf->nkw; i++)
		free(pf->kws[i].s);
	free(pf->kws);
	free(pf->delta);
	free(pf->out_start);
	free(pf->out_link);
	free(pf->outs);
	free(pf);
}

int scan_prefilter_add(struct scan_prefilter *pf, const char *kw, size_t len, uint32_t rule)
{
	struct pf_kw *k;

	if (!len || len > 1024 || pf->built)
		return -EINVAL;
	for (size_t i = 0; i < pf->nkw; i++)
		if (pf->kws[i].rule == rule && pf->kws[i].len == len &&
		    !strncasecmp((char *)pf->kws[i].s, kw, len))
			return 0;
	if (pf->nkw == pf->capkw) {
		size_t cap = pf->capkw ? 2 * pf->capkw : 64;
		struct pf_kw *n = realloc(pf->kws, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		pf->kws = n;
		pf->capkw = cap;
	}
	k = &pf->kws[pf->nkw];
	k->s = malloc(len);
	if (!k->s)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		k->s[i] = (uint8_t)tolower((unsigned char)kw[i]);
	k->len = (uint32_t)len;
	k->rule = rule;
	pf->nkw++;
	return 0;
}

int scan_prefilter_build(struct scan_prefilter *pf)
{
	size_t maxstates = 1, nst = 1, head = 0, tail = 0;
	uint32_t *go = NULL, *fail = NULL, *queue = NULL, *ostart = NULL, *olink = NULL;
	uint32_t *term = NULL, *fill = NULL;
	struct pf_out *outs = NULL;
	unsigned nc = 1;

	if (pf->built)
		return -EINVAL;
	memset(pf->cls, 0, sizeof(pf->cls));
	pf->maxlen = 0;
	for (size_t i = 0; i < pf->nkw; i++) {
		maxstates += pf->kws[i].len;
		if (pf->kws[i].len > pf->maxlen)
			pf->maxlen = pf->kws[i].len;
		for (uint32_t j = 0; j < pf->kws[i].len; j++) {
			uint8_t c = pf->kws[i].s[j];

			if (pf->cls[c])
				continue;
			if (nc > 255)
				return -E2BIG;
			pf->cls[c] = (uint8_t)nc;
			pf->cls[toupper(c)] = (uint8_t)nc;
			nc++;
		}
	}
	pf->ncls = nc;
	go = malloc(maxstates * nc * sizeof(*go));
	fail = calloc(maxstates, sizeof(*fail));
	queue = malloc(maxstates * sizeof(*queue));
	ostart = calloc(maxstates + 1, sizeof(*ostart));
	olink = malloc(maxstates * sizeof(*olink));
	term = malloc((pf->nkw + 1) * sizeof(*term));
	fill = calloc(maxstates, sizeof(*fill));
	outs = malloc((pf->nkw + 1) * sizeof(*outs));
	if (!go || !fail || !queue || !ostart || !olink || !term || !fill || !outs)
		goto fail;
	memset(go, 0xff, maxstates * nc * sizeof(*go));

	/* The trie; UINT32_MAX marks a missing edge. term[i]: keyword i's state. */
	for (size_t i = 0; i < pf->nkw; i++) {
		uint32_t s = 0;

		for (uint32_t j = 0; j < pf->kws[i].len; j++) {
			uint32_t *t = &go[s * nc + pf->cls[pf->kws[i].s[j]]];

			if (*t == UINT32_MAX)
				*t = (uint32_t)nst++;
			s = *t;
		}
		term[i] = s;
		ostart[s + 1]++;
	}
	/* Each state's own outputs, contiguous: outs[ostart[s] .. ostart[s+1]). */
	for (size_t s = 0; s < nst; s++)
		ostart[s + 1] += ostart[s];
	for (size_t i = 0; i < pf->nkw; i++) {
		uint32_t s = term[i];

		outs[ostart[s] + fill[s]++] = (struct pf_out){pf->kws[i].rule, pf->kws[i].len};
	}

	/* Breadth-first: failure links become DFA edges; olink[s] is the nearest
	 * state on s's failure chain that has outputs, so a hit walks only those. */
	olink[0] = UINT32_MAX;
	queue[tail++] = 0;
	while (head < tail) {
		uint32_t s = queue[head++];

		for (unsigned c = 0; c < nc; c++) {
			uint32_t t = go[s * nc + c];

			if (t != UINT32_MAX) {
				uint32_t f = s ? go[fail[s] * nc + c] : 0;

				fail[t] = f;
				olink[t] = ostart[f + 1] > ostart[f] ? f : olink[f];
				queue[tail++] = t;
			} else {
				go[s * nc + c] = s ? go[fail[s] * nc + c] : 0;
			}
		}
	}
	/* Premultiply: an edge holds the target's row offset (state * nc), with
	 * bit 31 set when the target has outputs, so that the scan loop does one
	 * load per byte and tests one bit. */
	if ((uint64_t)nst * nc >= 1u << 31)
		goto fail;
	for (size_t i = 0; i < nst * nc; i++) {
		uint32_t t = go[i];
		bool out = ostart[t + 1] > ostart[t] || olink[t] != UINT32_MAX;

		go[i] = t * nc | (out ? 1u << 31 : 0);
	}
	free(fail);
	free(queue);
	free(term);
	free(fill);
	pf->delta = go;
	pf->nstates = nst;
	pf->out_start = ostart;
	pf->out_link = olink;
	pf->outs = outs;
	pf->built = true;
	return 0;
fail:
	free(go);
	free(fail);
	free(queue);
	free(ostart);
	free(olink);
	free(term);
	free(fill);
	free(outs);
	return -ENOMEM;
}

/* Reports the outputs of state v (which has some) for a keyword ending at end. */
static inline void emit(const struct scan_prefilter *pf, uint32_t v, size_t end, scan_pf_hit cb,
                        void *opaque)
{
	for (uint32_t o = (v & 0x7fffffffu) / pf->ncls; o != UINT32_MAX; o = pf->out_link[o])
		for (uint32_t k = pf->out_start[o]; k < pf->out_start[o + 1]; k++)
			cb(pf->outs[k].rule, end - pf->outs[k].len, end, opaque);
}

/* The automaton from the root over d[from, to), reporting hits that end
 * after `after` (the bytes before it only bring the state up to date). */
static void run_one(const struct scan_prefilter *pf, const uint8_t *d, size_t from, size_t to,
                    size_t after, scan_pf_hit cb, void *opaque)
{
	const uint32_t *delta = pf->delta;
	const uint8_t *cls = pf->cls;
	uint32_t v = 0;

	for (size_t i = from; i < to; i++) {
		v = delta[(v & 0x7fffffffu) + cls[d[i]]];
		if (__builtin_expect(!(v >> 31), 1))
			continue;
		if (i + 1 > after)
			emit(pf, v, i + 1, cb, opaque);
	}
}

/* Hits of one stream, held until the streams before it have reported theirs. */
struct held {
	struct {
		uint32_t rule;
		size_t s, e;
	} * v;
	size_t n, cap;
	bool oom;
};

static void hold(uint32_t rule, size_t s, size_t e, void *opaque)
{
	struct held *h = opaque;

	if (h->oom)
		return;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 256;
		void *n = realloc(h->v, cap * sizeof(*h->v));

		if (!n) {
			h->oom = true;
			return;
		}
		h->v = n;
		h->cap = cap;
	}
	h->v[h->n].rule = rule;
	h->v[h->n].s = s;
	h->v[h->n].e = e;
	h->n++;
}

/*
 * Why streams: the automaton's loop is one dependent table load per byte, so
 * it runs at the latency of a load, not at the machine's throughput. Eight
 * independent streams over eight consecutive blocks keep eight loads in
 * flight (four gave 1.0 GB/s on the bench rootfs layers, eight 1.1-1.4). Each stream but the very
 * first starts from the root maxlen - 1 bytes before its block, which is enough to see every
 * keyword that ends inside the block, and reports only those; the hits of streams 2-8 wait in
 * `held` so that the callback still sees every hit in end order, exactly as
 * a single pass would report them.
 */
#define PF_STREAMS  8
#define PF_BLOCK    (64u << 10) /* most bytes of one stream's block */
#define PF_MINBLOCK 1024u       /* fewer: one stream (the warm-up would cost too much) */

void scan_prefilter_run(const struct scan_prefilter *pf, const uint8_t *d, size_t len,
                        scan_pf_hit cb, void *opaque)
{
	const uint32_t *delta = pf->delta;
	const uint8_t *cls = pf->cls;
	struct held h[PF_STREAMS] = {{0}};
	size_t back, minblock;

	if (!pf->built || !pf->nkw)
		return;
	back = pf->maxlen - 1;
	minblock = 4 * back > PF_MINBLOCK ? 4 * back : PF_MINBLOCK;
	for (size_t pos = 0; pos < len;) {
		size_t st[PF_STREAMS], after[PF_STREAMS], n, blk, avail = len - pos;
		uint32_t v[PF_STREAMS] = {0};

		/* the streams end at pos + PF_STREAMS blk, or back more for the first */
		if (!pos)
			avail = avail > back ? avail - back : 0;
		blk = avail / PF_STREAMS;

		if (blk < minblock) {
			run_one(pf, d, pos > back ? pos - back : 0, len, pos, cb, opaque);
			break;
		}
		if (blk > PF_BLOCK)
			blk = PF_BLOCK;
		/* every stream reads n bytes: back to warm up on, then blk to report
		 * on; the first stream of the buffer has nothing to warm up on and
		 * reports on all n */
		n = back + blk;
		st[0] = pos ? pos - back : 0;
		after[0] = pos;
		for (int k = 1; k < PF_STREAMS; k++) {
			after[k] = st[k - 1] + n;
			st[k] = after[k] - back;
		}
		for (int k = 0; k < PF_STREAMS; k++) {
			h[k].n = 0;
			h[k].oom = false;
		}
		for (size_t i = 0; i < n; i++) {
			uint32_t any = 0;

#pragma GCC unroll 8
			for (int k = 0; k < PF_STREAMS; k++) {
				v[k] = delta[(v[k] & 0x7fffffffu) + cls[d[st[k] + i]]];
				any |= v[k];
			}
			if (__builtin_expect(!(any >> 31), 1))
				continue;
			if ((v[0] >> 31) && st[0] + i + 1 > after[0])
				emit(pf, v[0], st[0] + i + 1, cb, opaque);
			for (int k = 1; k < PF_STREAMS; k++)
				if ((v[k] >> 31) && st[k] + i + 1 > after[k])
					emit(pf, v[k], st[k] + i + 1, hold, &h[k]);
		}
		for (int k = 1; k < PF_STREAMS; k++) {
			if (h[k].oom) /* no memory to hold them: run the block again */
				run_one(pf, d, st[k], st[k] + n, after[k], cb, opaque);
			else
				for (size_t j = 0; j < h[k].n; j++)
					cb(h[k].v[j].rule, h[k].v[j].s, h[k].v[j].e, opaque);
		}
		pos = st[PF_STREAMS - 1] + n;
	}
	for (int k = 0; k < PF_STREAMS; k++)
		free(h[k].v);
}
