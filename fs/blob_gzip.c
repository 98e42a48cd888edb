/*
 * blob_gzip: the gzip backend of fs/blob, on zlib and (if built with it) ISA-L.
 *
 * A gzip blob is one or more members back to back (pigz --independent,
 * eStargz). The decoder inflates member after member; where the next bytes are
 * not a member header (trailing zeros, padding, garbage) the stream ends.
 *
 * With zlib alone (no ISA-L, or STRATA_BLOB_ZLIB), seek points follow zlib's
 * zran.c idea: during the stream pass, inflate runs
 * with Z_BLOCK so that it returns at every deflate block boundary, and about
 * every BLOB_SEEK_SPAN bytes of output the decoder records where the next
 * block starts in the stored bytes (to the bit) and the 32 KiB of output that
 * the block may refer back to. A raw inflate primed with those bits and that
 * dictionary resumes there. Member starts need neither.
 *
 * ISA-L's inflate is two to three times faster than zlib's, but it cannot stop
 * at block boundaries (no Z_BLOCK; intel/isa-l issue #254). It does not need
 * to: its streaming contract lets every call hand it a new output buffer, so
 * between two calls the whole decoder (bit buffer, the current block's
 * Huffman tables, a partial header, the last 32 KiB of output, pending
 * overflow bytes) lives in struct inflate_state, and a copy of that struct
 * resumes anywhere, mid-block included, given the stored bytes from where it
 * stopped reading. When built with it (HAVE_ISAL):
 *  - the stream pass inflates with ISA-L only, stopping the output every
 *    BLOB_SEEK_SPAN bytes to record such a snapshot (about 54 KiB: the tables
 *    and the window) as the seek point;
 *  - the decoders of blob_pread inflate with ISA-L only, from member starts
 *    (gzip wrapper), snapshots, and zlib's checkpoints (raw deflate, the window
 *    as its dictionary, the leftover bits loaded into its bit buffer).
 * A snapshot is ISA-L's private layout: an index that holds them names the
 * ISA-L version and struct size (gz_snapshot_id), and a build that differs, or
 * has no ISA-L, or runs with STRATA_BLOB_ZLIB, refuses it and streams again;
 * and as ISA-L trusts its tables, a snapshot read from a file has them checked
 * entry by entry before use (snapshot_tables_ok).
 */
#include "blob_impl.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if HAVE_ISAL
#include <isa-l.h> /* ISAL_VERSION */
#include <isa-l/igzip_lib.h>
#endif

#define GZIP_TRAILER 8

static int gz_corrupt(struct dec *d, struct err *err, const char *why)
{
	d->state = DEC_BROKEN;
	return err_set(err, -EIO, "gzip data corrupt at stored offset %llu: %s",
	               (unsigned long long)dec_stored_pos(d), why);
}

static int gz_truncated(struct dec *d, struct err *err)
{
	d->state = DEC_BROKEN;
	return err_set(err, -EIO,
	               "gzip data truncated at stored offset %llu: the blob ends inside a member",
	               (unsigned long long)dec_stored_pos(d));
}

#if HAVE_ISAL
static const char *isal_strerror(int r)
{
	switch (r) {
	case ISAL_INVALID_BLOCK:
		return "invalid block";
	case ISAL_INVALID_SYMBOL:
		return "invalid symbol";
	case ISAL_INVALID_LOOKBACK:
		return "invalid distance too far back";
	case ISAL_INVALID_WRAPPER:
		return "invalid gzip header";
	case ISAL_UNSUPPORTED_METHOD:
		return "unknown compression method";
	case ISAL_INCORRECT_CHECKSUM:
		return "incorrect data check";
	case ISAL_NEED_DICT:
		return "a dictionary is required";
	}
	return "inflate failed";
}

/* The bytes of struct inflate_state a snapshot keeps: all but the unused
 * tail of tmp_out_buffer. */
#define SNAP_FIXED offsetof(struct inflate_state, tmp_out_buffer)
/*
 * Snapshots are taken only in ISA-L's plain streaming state: the last 32 KiB
 * of output as history at the start of tmp_out_buffer, then at most the few
 * bytes of a literal run or match that overflowed the output (what a call
 * leaves when it filled an output buffer of 32 KiB or more). That keeps what
 * an imported snapshot may hold small enough to check in full
 * (gz_snapshot_check), so an imported one must be in this state too. When a
 * stop is not, the pass stops again every SNAP_RETRY bytes.
 */
#define SNAP_RETRY       (64u * 1024)
#define SNAP_MAX_PENDING (258u + 4u) /* a whole match, or four literals */

static uint32_t snap_u32(const unsigned char *snap, size_t off)
{
	uint32_t v;

	memcpy(&v, snap + off, sizeof(v));
	return v;
}

#define SNAP_FIELD(snap, f) snap_u32(snap, offsetof(struct inflate_state, f))

uint64_t gz_snapshot_id(void)
{
	return (uint64_t)ISAL_VERSION << 32 | sizeof(struct inflate_state);
}

/*
 * Whether the state's own bookkeeping is in range (at import; the tables are
 * checked when a snapshot is used, see snapshot_tables_ok). Snapshots are
 * taken with no overflow bytes pending, so none may be.
 */
int gz_snapshot_check(const unsigned char *snap, size_t len)
{
	uint32_t valid, processed, state;
	int32_t bits, type0_len;
	int16_t tmp_in;

	if (len < SNAP_FIXED || len > sizeof(struct inflate_state))
		return -EINVAL;
	valid = SNAP_FIELD(snap, tmp_out_valid);
	processed = SNAP_FIELD(snap, tmp_out_processed);
	state = SNAP_FIELD(snap, block_state);
	bits = (int32_t)SNAP_FIELD(snap, read_in_length);
	type0_len = (int32_t)SNAP_FIELD(snap, type0_block_len);
	memcpy(&tmp_in, snap + offsetof(struct inflate_state, tmp_in_size), sizeof(tmp_in));
	if (valid != len - SNAP_FIXED || processed != ISAL_DEF_HIST_SIZE || valid < processed ||
	    valid - processed > SNAP_MAX_PENDING)
		return -EINVAL;
	if (state != ISAL_BLOCK_NEW_HDR && state != ISAL_BLOCK_HDR && state != ISAL_BLOCK_TYPE0 &&
	    state != ISAL_BLOCK_CODED)
		return -EINVAL;
	if (bits < 0 || bits > 64 || tmp_in < 0 || tmp_in > ISAL_DEF_MAX_HDR_SIZE ||
	    SNAP_FIELD(snap, write_overflow_len) || SNAP_FIELD(snap, copy_overflow_length) ||
	    SNAP_FIELD(snap, bfinal) > 1 || SNAP_FIELD(snap, hist_bits) > 15 ||
	    (state == ISAL_BLOCK_TYPE0 && (type0_len < 0 || type0_len > 65535)))
		return -EINVAL;
	return 0;
}

/*
 * The current block's decoding tables, entry by entry: ISA-L's decoders trust
 * them (a hint indexes the long table unchecked; a length symbol sets how many
 * bytes a copy writes), so a snapshot read from a file is used only if every
 * entry is one that ISA-L's own table builder could have made. The layout is
 * ISA-L 2.30's (igzip_inflate.c, igzip_decode_block_stateless.asm); a build
 * of another version refuses the snapshots before they get here.
 */
#define LIT_SHORT_LEN(e)    ((e) >> 28)       /* code length; 0: no code */
#define LIT_SHORT_COUNT(e)  (((e) >> 26) & 3) /* symbols packed in the entry */
#define LIT_SHORT_SYMS(e)   ((e)&0x1ffffffu)  /* or, with the flag, a long index */
#define LIT_SHORT_FLAG      (1u << 25)        /* the code is longer: see the long table */
#define LIT_SHORT_MAXLEN(e) ((e) >> 26)       /* with the flag: longest code there */
#define LIT_MAX_SYM         512u /* 0-255 literals, 256 end, 257+ lengths (254 + length) */
#define DIST_SHORT_LEN(e)   ((e) >> 11)
#define DIST_SHORT_FLAG     (1u << 10)
#define DIST_SYM_OK(s)      (((s)&31u) < 30u && ((s) >> 5) <= 13u) /* symbol, extra bits */
/*
 * A distance entry without a code holds the code length of an invalid symbol
 * (30, 31), or 0. The asm decoder compares that value with the bits it holds
 * to tell "invalid symbol" from "out of input", and from its fast loop the
 * latter restores an output pointer it never saved in that call: any larger
 * value sent ISA-L writing through a stale pointer (fuzz_cache).
 */
#define DIST_NOCODE_MAX 15u

static bool lit_entry_ok(uint32_t e)
{
	uint32_t syms = LIT_SHORT_SYMS(e);

	switch (LIT_SHORT_COUNT(e)) {
	case 1:
		return syms <= LIT_MAX_SYM;
	case 2:
		return syms >> 8 <= LIT_MAX_SYM;
	case 3:
		return syms >> 16 <= LIT_MAX_SYM;
	}
	return false;
}

static bool snapshot_tables_ok(const struct inflate_state *st)
{
	const struct inflate_huff_code_large *lit = &st->lit_huff_code;
	const struct inflate_huff_code_small *dist = &st->dist_huff_code;
	const size_t nlong = sizeof(lit->long_code_lookup) / sizeof(lit->long_code_lookup[0]);
	const size_t ndlong = sizeof(dist->long_code_lookup) / sizeof(dist->long_code_lookup[0]);

	/* Between blocks the tables are not used: the next header remakes them. */
	if (st->block_state != ISAL_BLOCK_CODED)
		return true;
	for (size_t i = 0; i < 1u << ISAL_DECODE_LONG_BITS; i++) {
		uint32_t e = lit->short_code_lookup[i], maxlen, idx;

		if (LIT_SHORT_LEN(e) == 0)
			continue; /* no code: the decoder says "invalid symbol" */
		if (!(e & LIT_SHORT_FLAG)) {
			if (!lit_entry_ok(e))
				return false;
			continue;
		}
		maxlen = LIT_SHORT_MAXLEN(e);
		idx = LIT_SHORT_SYMS(e);
		if (maxlen <= ISAL_DECODE_LONG_BITS || maxlen > 21 ||
		    idx + (1u << (maxlen - ISAL_DECODE_LONG_BITS)) > nlong)
			return false;
		for (uint32_t k = 0; k < 1u << (maxlen - ISAL_DECODE_LONG_BITS); k++) {
			uint16_t le = lit->long_code_lookup[idx + k];
			if ((le >> 10) != 0 && ((le >> 10) > 21 || (le & 0x3ffu) > LIT_MAX_SYM))
				return false;
		}
	}
	for (size_t i = 0; i < 1u << ISAL_DECODE_SHORT_BITS; i++) {
		uint16_t e = dist->short_code_lookup[i];
		uint32_t maxlen = DIST_SHORT_LEN(e), idx = e & 0x1ffu;

		if (maxlen == 0) {
			if (e > DIST_NOCODE_MAX)
				return false;
			continue;
		}
		if (!(e & DIST_SHORT_FLAG)) {
			if (maxlen > 15 || !DIST_SYM_OK(idx))
				return false;
			continue;
		}
		if (maxlen <= ISAL_DECODE_SHORT_BITS || maxlen > 15 ||
		    idx + (1u << (maxlen - ISAL_DECODE_SHORT_BITS)) > ndlong)
			return false;
		for (uint32_t k = 0; k < 1u << (maxlen - ISAL_DECODE_SHORT_BITS); k++) {
			uint16_t de = dist->long_code_lookup[idx + k];
			if ((de >> 10) == 0 ? de > DIST_NOCODE_MAX
			                    : (de >> 10) > 15 || !DIST_SYM_OK(de & 0x1ffu))
				return false;
		}
	}
	return true;
}

/* Starts ISA-L on a member (p == NULL), at a snapshot or at a checkpoint. */
static int isal_start(struct dec *d, const struct blob_point *p, struct err *err)
{
	struct inflate_state *st = d->isal;

	if (!st) {
		/* zeroed: a snapshot copies table slots ISA-L never wrote */
		st = calloc(1, sizeof(*st));
		if (!st)
			return err_set(err, -ENOMEM, "gzip: out of memory for ISA-L inflate");
		d->isal = st;
	}
	if (p && p->kind == POINT_SNAPSHOT) {
		memcpy(st, p->data, p->len);
		if (!snapshot_tables_ok(st))
			return err_set(err, -EIO,
			               "gzip: the seek point at stored offset %llu holds decoding "
			               "tables ISA-L could not have made; the index is damaged",
			               (unsigned long long)p->in);
		/* Raw deflate from here: the member's CRC began before the
		 * snapshot, and the trailer is skipped as after a checkpoint. */
		st->crc_flag = ISAL_DEFLATE;
		d->raw_deflate = true;
		return 0;
	}
	isal_inflate_init(st);
	if (!p) {
		st->crc_flag = ISAL_GZIP;
		return 0;
	}
	st->crc_flag = ISAL_DEFLATE;
	if (isal_inflate_set_dict(st, p->data, BLOB_WINDOW) != COMP_OK)
		return err_set(err, -EIO, "gzip: cannot resume at checkpoint (stored offset %llu)",
		               (unsigned long long)p->in);
	/* read_in holds the next bits to decode, least significant first: the
	 * same bits, in the same order, that inflatePrime would take. */
	st->read_in = p->bitval;
	st->read_in_length = p->bits;
	d->raw_deflate = true;
	return 0;
}

/*
 * Records a snapshot where the stream pass stopped ISA-L. Not near the end of
 * a member (ISA-L has decoded its last block): the next member start will do.
 */
static int isal_record_snapshot(struct dec *d, struct err *err)
{
	const struct inflate_state *st = d->isal;
	struct blob_point p = {.kind = POINT_SNAPSHOT};
	struct inflate_state copy;
	unsigned char *snap;
	size_t len;
	int r;

	if ((st->block_state != ISAL_BLOCK_NEW_HDR && st->block_state != ISAL_BLOCK_HDR &&
	     st->block_state != ISAL_BLOCK_TYPE0 && st->block_state != ISAL_BLOCK_CODED) ||
	    st->write_overflow_len || st->copy_overflow_length ||
	    st->tmp_out_processed != ISAL_DEF_HIST_SIZE ||
	    st->tmp_out_valid < st->tmp_out_processed ||
	    (uint32_t)(st->tmp_out_valid - st->tmp_out_processed) > SNAP_MAX_PENDING)
		return 0;
	len = SNAP_FIXED + (size_t)st->tmp_out_valid;
	snap = malloc(len);
	if (!snap)
		return err_set(err, -ENOMEM, "gzip: out of memory for a seek point");
	/* Pointers mean nothing in another process; zero keeps the cache
	 * file the same from run to run. */
	memcpy(&copy, st, offsetof(struct inflate_state, lit_huff_code));
	copy.next_in = copy.next_out = NULL;
	copy.avail_in = copy.avail_out = 0;
	memcpy(snap, &copy, offsetof(struct inflate_state, lit_huff_code));
	memcpy(snap + offsetof(struct inflate_state, lit_huff_code),
	       (const unsigned char *)st + offsetof(struct inflate_state, lit_huff_code),
	       len - offsetof(struct inflate_state, lit_huff_code));
	p.in = dec_stored_pos(d);
	p.out = d->out_pos;
	p.len = (uint32_t)len;
	p.data = snap;
	r = dec_add_point(d, &p, err);
	if (r < 0)
		free(snap);
	return r;
}

static ssize_t isal_body(struct dec *d, unsigned char *buf, size_t cap, struct err *err)
{
	struct inflate_state *st = d->isal;
	size_t avail = d->in_len - d->in_pos, produced, consumed;
	int r;

	if (avail > UINT32_MAX)
		avail = UINT32_MAX;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	st->next_in = d->in + d->in_pos;
	st->avail_in = avail;
	st->next_out = buf;
	st->avail_out = cap;
	r = isal_inflate(st);
	consumed = avail - st->avail_in;
	produced = cap - st->avail_out;
	d->in_pos += consumed;
	d->out_pos += produced;
	if (r < 0 || r == ISAL_NEED_DICT) {
		/* report where decoding stopped, not how far ISA-L read ahead */
		size_t ahead = st->read_in_length > 0 ? st->read_in_length / 8 : 0;
		d->in_pos -= ahead < d->in_pos ? ahead : d->in_pos;
		return gz_corrupt(d, err, isal_strerror(r));
	}
	if (produced) {
		int e = dec_check_limits(d, err);
		if (e < 0)
			return e;
	}
	if (st->block_state == ISAL_BLOCK_FINISH) {
		/* Whole bytes left in the bit buffer were read past the end of the
		 * member (or of the deflate data): give them back. */
		size_t back = st->read_in_length > 0 ? st->read_in_length / 8 : 0;

		if (back <= d->in_pos) {
			d->in_pos -= back;
		} else {
			d->in_off = dec_stored_pos(d) - back;
			d->in_len = d->in_pos = 0;
		}
		if (d->raw_deflate) {
			d->state = DEC_TRAILER;
			d->trailer_left = GZIP_TRAILER;
		} else {
			d->state = DEC_MEMBER_START;
		}
	} else if (!produced && !consumed) {
		return avail ? gz_corrupt(d, err, "inflate made no progress")
		             : gz_truncated(d, err);
	}
	return produced;
}
#endif

const char *blob_gzip_engine(void)
{
#if HAVE_ISAL
#define STR_(x) #x
#define STR(x)  STR_(x)
	return getenv("STRATA_BLOB_ZLIB") ? "zlib"
	                                  : "ISA-L " STR(ISAL_MAJOR_VERSION) "." STR(
	                                        ISAL_MINOR_VERSION) "." STR(ISAL_PATCH_VERSION);
#undef STR
#undef STR_
#else
	return "zlib";
#endif
}

int gz_start(struct dec *d, const struct blob_point *p, struct err *err)
{
	int r;

	d->use_isal = false;
#if HAVE_ISAL
	d->isal_ok = !d->b->zlib_only;
	if (d->isal_ok && p->kind != POINT_START) {
		r = isal_start(d, p, err);
		if (r == 0) {
			d->use_isal = true;
			d->state = DEC_BODY;
		}
		return r;
	}
#endif
	if (!d->z_ready) {
		memset(&d->z, 0, sizeof(d->z));
		r = inflateInit2(&d->z, 15 + 16);
		if (r != Z_OK)
			return err_set(err, -ENOMEM, "gzip: cannot set up zlib inflate (%d)", r);
		d->z_ready = true;
	}
	if (p->kind == POINT_START) {
		d->state = DEC_MEMBER_START;
		return 0;
	}
	/* A checkpoint: raw deflate from a block boundary, mid-member. */
	r = inflateReset2(&d->z, -15);
	if (r == Z_OK && p->bits)
		r = inflatePrime(&d->z, p->bits, p->bitval);
	if (r == Z_OK)
		r = inflateSetDictionary(&d->z, p->data, BLOB_WINDOW);
	if (r != Z_OK)
		return err_set(err, -EIO, "gzip: cannot resume at checkpoint (stored offset %llu)",
		               (unsigned long long)p->in);
	d->raw_deflate = true;
	d->state = DEC_BODY;
	return 0;
}

static int gz_record_checkpoint(struct dec *d, struct err *err)
{
	struct blob_point p = {.kind = POINT_CHECKPOINT};
	unsigned char *win;
	uInt have = 0;
	unsigned char prev;
	int r;

	win = calloc(1, BLOB_WINDOW);
	if (!win)
		return err_set(err, -ENOMEM, "gzip: out of memory for a checkpoint window");
	/* Early in a member the window is short; the leading zeros are never
	 * referred to by valid deflate data, which cannot reach before its start. */
	if (inflateGetDictionary(&d->z, NULL, &have) != Z_OK || have > BLOB_WINDOW ||
	    inflateGetDictionary(&d->z, win + BLOB_WINDOW - have, &have) != Z_OK) {
		free(win);
		return err_set(err, -EIO, "gzip: cannot read the inflate window");
	}
	p.in = dec_stored_pos(d);
	p.out = d->out_pos;
	p.bits = d->z.data_type & 7;
	prev = d->in_pos ? d->in[d->in_pos - 1] : d->last_byte;
	p.bitval = p.bits ? (uint8_t)(prev >> (8 - p.bits)) : 0;
	p.data = win;
	p.len = BLOB_WINDOW;
	r = dec_add_point(d, &p, err);
	if (r < 0)
		free(win);
	return r;
}

static ssize_t gz_inflate(struct dec *d, unsigned char *buf, size_t cap, struct err *err)
{
	size_t avail = d->in_len - d->in_pos;
	size_t produced;
	int r;

	d->z.next_in = d->in + d->in_pos;
	d->z.avail_in = avail > UINT32_MAX ? UINT32_MAX : (uInt)avail;
	d->z.next_out = buf;
	d->z.avail_out = cap > UINT32_MAX ? UINT32_MAX : (uInt)cap;
	r = inflate(&d->z, d->record ? Z_BLOCK : Z_NO_FLUSH);
	produced = (cap > UINT32_MAX ? UINT32_MAX : cap) - d->z.avail_out;
	if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
		d->in_pos = d->z.next_in - d->in;
		return gz_corrupt(d, err, d->z.msg ? d->z.msg : "inflate failed");
	}
	/* Without input, zlib may still finish symbols from its bit buffer;
	 * only when it cannot move at all is the member cut short. */
	if (r == Z_BUF_ERROR && !produced && d->z.next_in == d->in + d->in_pos)
		return avail ? gz_corrupt(d, err, "inflate made no progress")
		             : gz_truncated(d, err);
	d->in_pos = d->z.next_in - d->in;
	d->out_pos += produced;
	if (produced) {
		int e = dec_check_limits(d, err);
		if (e < 0)
			return e;
	}
	if (r == Z_STREAM_END) {
		if (d->raw_deflate) {
			d->state = DEC_TRAILER;
			d->trailer_left = GZIP_TRAILER;
		} else {
			d->state = DEC_MEMBER_START;
		}
	} else if (d->record && (d->z.data_type & 128) && !(d->z.data_type & 64) &&
	           d->out_pos - d->last_point_out >= BLOB_SEEK_SPAN) {
		r = gz_record_checkpoint(d, err);
		if (r < 0)
			return r;
	}
	return produced;
}

ssize_t gz_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err)
{
	size_t got = 0;
	ssize_t n;
	int r;

	while (got < cap) {
		switch (d->state) {
		case DEC_END:
			return got;
		case DEC_BROKEN:
			return err_set(err, -EIO, "gzip: decoder used after an error");
		case DEC_MEMBER_START:
			n = dec_fill(d, 2, err);
			if (n < 0)
				return n;
			if (n < 2 || d->in[d->in_pos] != 0x1f || d->in[d->in_pos + 1] != 0x8b) {
				d->state = DEC_END;
				break;
			}
			if (d->record && d->out_pos > 0 &&
			    d->out_pos - d->last_point_out >= BLOB_FREE_POINT_SPAN) {
				struct blob_point p = {.kind = POINT_START,
				                       .in = dec_stored_pos(d),
				                       .out = d->out_pos};
				r = dec_add_point(d, &p, err);
				if (r < 0)
					return r;
			}
			d->raw_deflate = false;
			d->member_in = dec_stored_pos(d);
			d->member_out = d->out_pos;
			d->state = DEC_BODY;
#if HAVE_ISAL
			if (d->isal_ok) {
				r = isal_start(d, NULL, err);
				if (r < 0)
					return r;
				d->use_isal = true;
				break;
			}
#endif
			if (inflateReset2(&d->z, 15 + 16) != Z_OK)
				return gz_corrupt(d, err, "cannot reset inflate");
			break;
		case DEC_TRAILER:
			n = dec_fill(d, 1, err);
			if (n < 0)
				return n;
			if (n == 0)
				return gz_truncated(d, err);
			if ((size_t)n > d->trailer_left)
				n = d->trailer_left;
			d->in_pos += n;
			d->trailer_left -= n;
			if (!d->trailer_left)
				d->state = DEC_MEMBER_START;
			break;
		case DEC_BODY:
			n = dec_fill(d, 1, err);
			if (n < 0)
				return n;
#if HAVE_ISAL
			if (d->use_isal) {
				/* in the stream pass, stop where a checkpoint is due */
				size_t room = cap - got;
				uint64_t since = d->out_pos - d->last_point_out;
				if (d->record && since < BLOB_SEEK_SPAN &&
				    BLOB_SEEK_SPAN - since < room)
					room = BLOB_SEEK_SPAN - since;
				/* a snapshot is overdue (the last stop was not in
				 * the one state snapshots are taken in): stop again soon */
				else if (d->record && since >= BLOB_SEEK_SPAN && room > SNAP_RETRY)
					room = SNAP_RETRY;
				n = isal_body(d, buf + got, room, err);
				if (n < 0)
					return n;
				got += n;
				if (d->record && d->state == DEC_BODY &&
				    d->out_pos - d->last_point_out >= BLOB_SEEK_SPAN) {
					r = isal_record_snapshot(d, err);
					if (r < 0)
						return r;
				}
				break;
			}
#endif
			n = gz_inflate(d, buf + got, cap - got, err);
			if (n < 0)
				return n;
			got += n;
			break;
		}
	}
	return got;
}

void gz_free(struct dec *d)
{
	free(d->isal);
	d->isal = NULL;
	if (d->z_ready)
		inflateEnd(&d->z);
	d->z_ready = false;
}

#if !HAVE_ISAL
uint64_t gz_snapshot_id(void)
{
	return 0;
}

int gz_snapshot_check(const unsigned char *data, size_t len)
{
	(void)data;
	(void)len;
	return -EOPNOTSUPP;
}
#endif
