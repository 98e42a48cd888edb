/*
 * blob_zstd: the zstd backend of fs/blob, on libzstd's streaming API.
 *
 * A zstd blob is one or more frames, skippable frames included. Every frame
 * start is a seek point that needs no state, so a blob written as many frames
 * (zstd:chunked, pzstd) has cheap random access. A single
 * huge frame has no seek point but its start: blob_pread then relies on its
 * cursors to keep sequential reads linear, and on the spill (blob_spill.c)
 * for reads far from them.
 *
 * The window that a frame may demand is bounded by ZSTD_d_windowLogMax, so a
 * hostile frame header cannot make us allocate gigabytes.
 */
#include "blob_impl.h"

#include <errno.h>
#include <string.h>
#include <zstd_errors.h>

#define ZSTD_FRAME_MAGIC 0xFD2FB528u

static int zs_error(struct dec *d, struct err *err, const char *what, const char *why)
{
	d->state = DEC_BROKEN;
	return err_set(err, -EIO, "zstd data %s at stored offset %llu: %s", what,
	               (unsigned long long)dec_stored_pos(d), why);
}

int zs_start(struct dec *d, const struct blob_point *p, struct err *err)
{
	size_t r;

	(void)p;
	if (!d->zd) {
		d->zd = ZSTD_createDCtx();
		if (!d->zd)
			return err_set(err, -ENOMEM, "zstd: cannot create a decompression context");
		r = ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax,
		                           (int)d->b->lim.zstd_window_log_max);
		if (ZSTD_isError(r))
			return err_set(err, -EINVAL, "zstd: window log limit %u refused: %s",
			               d->b->lim.zstd_window_log_max, ZSTD_getErrorName(r));
	}
	ZSTD_DCtx_reset(d->zd, ZSTD_reset_session_only);
	d->state = DEC_MEMBER_START;
	return 0;
}

static bool zs_is_frame_start(const unsigned char *p)
{
	uint32_t magic =
	    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

	return magic == ZSTD_FRAME_MAGIC ||
	       (magic & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

static ssize_t zs_body(struct dec *d, unsigned char *buf, size_t cap, struct err *err)
{
	ssize_t n = dec_fill(d, 1, err);
	ZSTD_inBuffer in;
	ZSTD_outBuffer out = {buf, cap, 0};
	size_t r;
	int e;

	if (n < 0)
		return n;
	in = (ZSTD_inBuffer){d->in + d->in_pos, (size_t)n, 0};
	r = ZSTD_decompressStream(d->zd, &out, &in);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge) {
			d->state = DEC_BROKEN;
			return err_set(err, -EFBIG,
			               "zstd frame at stored offset %llu needs a window above "
			               "2^%u bytes, the limit",
			               (unsigned long long)dec_stored_pos(d),
			               d->b->lim.zstd_window_log_max);
		}
		return zs_error(d, err, "corrupt", ZSTD_getErrorName(r));
	}
	d->in_pos += in.pos;
	d->out_pos += out.pos;
	if (out.pos && (e = dec_check_limits(d, err)) < 0)
		return e;
	if (r == 0)
		d->state = DEC_MEMBER_START;
	else if (!in.pos && !out.pos)
		return zs_error(d, err, n ? "corrupt" : "truncated",
		                n ? "no progress" : "the blob ends inside a frame");
	return out.pos;
}

ssize_t zs_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err)
{
	size_t got = 0;
	ssize_t n;
	int r;

	while (got < cap) {
		switch (d->state) {
		case DEC_END:
			return got;
		case DEC_BROKEN:
		case DEC_TRAILER:
			return err_set(err, -EIO, "zstd: decoder used after an error");
		case DEC_MEMBER_START:
			n = dec_fill(d, 4, err);
			if (n < 0)
				return n;
			if (n < 4 || !zs_is_frame_start(d->in + d->in_pos)) {
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
			ZSTD_DCtx_reset(d->zd, ZSTD_reset_session_only);
			d->state = DEC_BODY;
			break;
		case DEC_BODY:
			n = zs_body(d, buf + got, cap - got, err);
			if (n < 0)
				return n;
			got += n;
			break;
		}
	}
	return got;
}

void zs_free(struct dec *d)
{
	ZSTD_freeDCtx(d->zd);
	d->zd = NULL;
}
