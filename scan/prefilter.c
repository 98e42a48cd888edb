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
	for (size_t i = 0; i < pf->nkw; i++) {
		maxstates += pf->kws[i].len;
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

void scan_prefilter_run(const struct scan_prefilter *pf, const uint8_t *d, size_t len,
                        scan_pf_hit cb, void *opaque)
{
	const uint32_t *delta = pf->delta;
	const uint8_t *cls = pf->cls;
	uint32_t v = 0, nc = pf->ncls;

	if (!pf->built || !pf->nkw)
		return;
	for (size_t i = 0; i < len; i++) {
		v = delta[(v & 0x7fffffffu) + cls[d[i]]];
		if (__builtin_expect(!(v >> 31), 1))
			continue;
		for (uint32_t o = (v & 0x7fffffffu) / nc; o != UINT32_MAX; o = pf->out_link[o]) {
			for (uint32_t k = pf->out_start[o]; k < pf->out_start[o + 1]; k++)
				cb(pf->outs[k].rule, i + 1 - pf->outs[k].len, i + 1, opaque);
		}
	}
}
