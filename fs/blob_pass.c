/*
 * blob_pass: the work of a stream pass split over threads: decompressing, and
 * the two sha256 digests (the layer digest of the stored bytes, the diff_id of
 * the decompressed stream). The caller of blob_stream_next only indexes what
 * it is handed (tar parsing, in fs/layer). Inflating with ISA-L and hashing
 * cost about the same and indexing a fraction of either; run one after the
 * other on the caller's thread, a cold mount took 1.8 times as long as
 * `igzip -dc`.
 *
 * A ring of PASS_RING output buffers is shared by three parties, each going
 * through it in order:
 *  - the decoding thread fills buffer i (counts `decoded`), recording seek
 *    points into the pass's decoder as it goes;
 *  - the hashing thread hashes it (counts `hashed`), and reads and hashes the
 *    stored bytes itself whenever it has nothing else to do;
 *  - the caller gets it from pass_next and keeps it until its next call
 *    (counts `released`).
 * Buffer i is filled again (as i + PASS_RING) only once hashed and released.
 * A decoding error is handed to the caller in order, after the buffers
 * decoded before it.
 *
 * Blobs under PASS_THREAD_MIN are done in line on the caller's thread, one
 * buffer at a time, as threads would cost more than they save there (most
 * layers of real images are small). Stored bytes that are the output (no
 * compression) are not handled here: the caller hands out its input buffer
 * and only the stored digest is taken (out_cap 0).
 */
#include "blob_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PASS_RING       8
#define PASS_STORED_IN  (1u << 20)
#define PASS_THREAD_MIN (4u << 20)

struct pass {
	const struct blob *b;
	struct dec *d; /* NULL: the caller produces the output (raw blobs) */
	bool threaded;
	bool hashing_started, decoding_started;
	pthread_t hashing, decoding;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	EVP_MD_CTX *stored, *out;
	unsigned char *ring[PASS_RING];
	size_t len[PASS_RING];
	uint64_t stored_at[PASS_RING]; /* stored offset the decoder had reached */
	size_t cap;
	uint64_t decoded, hashed, released;
	bool holding;     /* the caller holds buffer `released` */
	bool decode_done; /* the decoder reached the end, or failed */
	int decode_error; /* negative errno; its message in decode_err */
	struct err decode_err;
	bool ending; /* no more output will come: finish the stored bytes */
	bool stop;   /* abandon the work (the pass failed or is freed) */
	uint64_t stored_done;
	unsigned char *in;
	int hash_error; /* negative errno of the first hashing failure */
	uint64_t hash_error_at;
};

static EVP_MD_CTX *sha256_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c && !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* Hashes the next piece of the stored bytes; called without the lock. */
static void hash_stored_piece(struct pass *p)
{
	const struct blob *b = p->b;
	uint64_t left = b->length - p->stored_done;
	size_t n = left < PASS_STORED_IN ? (size_t)left : PASS_STORED_IN;
	ssize_t r;

	do
		r = pread(b->fd, p->in, n, (off_t)(b->offset + p->stored_done));
	while (r < 0 && errno == EINTR);
	if (r <= 0 || !EVP_DigestUpdate(p->stored, p->in, (size_t)r)) {
		pthread_mutex_lock(&p->lock);
		p->hash_error = r < 0 ? -errno : -EIO;
		p->hash_error_at = p->stored_done;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stored_done += (uint64_t)r;
}

static void *hashing_main(void *arg)
{
	struct pass *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && !p->hash_error) {
		if (p->hashed < p->decoded) {
			size_t i = p->hashed % PASS_RING;

			pthread_mutex_unlock(&p->lock);
			if (!EVP_DigestUpdate(p->out, p->ring[i], p->len[i])) {
				pthread_mutex_lock(&p->lock);
				p->hash_error = -EIO;
				break;
			}
			pthread_mutex_lock(&p->lock);
			p->hashed++;
			pthread_cond_broadcast(&p->cond);
		} else if (p->stored_done < p->b->length) {
			pthread_mutex_unlock(&p->lock);
			hash_stored_piece(p);
			pthread_mutex_lock(&p->lock);
		} else if (p->ending) {
			break;
		} else {
			pthread_cond_wait(&p->cond, &p->lock);
		}
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int hash_failure(const struct pass *p, struct err *err)
{
	return err_set(err, p->hash_error, "blob: hashing failed at stored offset %llu: %s",
	               (unsigned long long)p->hash_error_at,
	               p->hash_error == -EIO ? "read or sha256 failure" : strerror(-p->hash_error));
}

static bool slot_free(const struct pass *p)
{
	return p->decoded - p->hashed < PASS_RING && p->decoded - p->released < PASS_RING;
}

static void *decoding_main(void *arg)
{
	struct pass *p = arg;
	struct err err = {0};

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		size_t i = p->decoded % PASS_RING;
		ssize_t n;

		if (!slot_free(p)) {
			/* A hashing failure frees no more buffers: hand it on. */
			if (p->hash_error) {
				p->decode_error = hash_failure(p, &p->decode_err);
				break;
			}
			pthread_cond_wait(&p->cond, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		n = dec_read(p->d, p->ring[i], p->cap, &err);
		pthread_mutex_lock(&p->lock);
		if (n <= 0) {
			p->decode_error = (int)n;
			p->decode_err = err;
			break;
		}
		p->len[i] = (size_t)n;
		p->stored_at[i] = dec_stored_pos(p->d);
		p->decoded++;
		pthread_cond_broadcast(&p->cond);
	}
	p->decode_done = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Stops and joins whatever threads run; safe to call twice. */
static void pass_join(struct pass *p, bool abandon)
{
	pthread_mutex_lock(&p->lock);
	if (abandon)
		p->stop = true;
	p->ending = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (p->decoding_started)
		pthread_join(p->decoding, NULL);
	if (p->hashing_started)
		pthread_join(p->hashing, NULL);
	p->decoding_started = p->hashing_started = false;
}

void pass_free(struct pass *p)
{
	if (!p)
		return;
	pass_join(p, true);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	EVP_MD_CTX_free(p->stored);
	EVP_MD_CTX_free(p->out);
	for (int i = 0; i < PASS_RING; i++)
		free(p->ring[i]);
	free(p->in);
	free(p);
}

int pass_start(const struct blob *b, struct dec *d, size_t out_cap, struct pass **ret_pass,
               struct err *err)
{
	struct pass *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return err_set(err, -ENOMEM, "blob: out of memory for the stream pass");
	p->b = b;
	p->d = d;
	p->cap = out_cap;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->stored = sha256_new();
	p->out = sha256_new();
	p->threaded = b->length >= PASS_THREAD_MIN;
	p->in = malloc(b->length < PASS_STORED_IN ? (size_t)b->length + 1 : PASS_STORED_IN);
	r = p->stored && p->out && p->in ? 0 : -ENOMEM;
	for (int i = 0; i < (p->threaded ? PASS_RING : 1) && d && r == 0; i++)
		if (!(p->ring[i] = malloc(out_cap)))
			r = -ENOMEM;
	if (r == 0 && p->threaded) {
		r = -pthread_create(&p->hashing, NULL, hashing_main, p);
		p->hashing_started = r == 0;
	}
	if (r == 0 && p->threaded && d) {
		r = -pthread_create(&p->decoding, NULL, decoding_main, p);
		p->decoding_started = r == 0;
	}
	if (r < 0) {
		pass_free(p);
		return err_set(err, r, "blob: cannot start the stream pass: %s", strerror(-r));
	}
	*ret_pass = p;
	return 0;
}

ssize_t pass_next(struct pass *p, const void **ret_data, uint64_t *ret_stored_at, struct err *err)
{
	ssize_t n;

	if (!p->threaded) {
		n = dec_read(p->d, p->ring[0], p->cap, err);
		if (n > 0 && !p->hash_error && !EVP_DigestUpdate(p->out, p->ring[0], (size_t)n))
			p->hash_error = -EIO;
		if (n > 0) {
			*ret_data = p->ring[0];
			*ret_stored_at = dec_stored_pos(p->d);
		}
		return n;
	}
	pthread_mutex_lock(&p->lock);
	if (p->holding) {
		p->released++;
		p->holding = false;
		pthread_cond_broadcast(&p->cond);
	}
	while (p->released == p->decoded && !p->decode_done)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->released < p->decoded) {
		size_t i = p->released % PASS_RING;

		p->holding = true;
		*ret_data = p->ring[i];
		*ret_stored_at = p->stored_at[i];
		n = (ssize_t)p->len[i];
	} else {
		n = p->decode_error;
		if (n < 0 && err)
			*err = p->decode_err;
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

int pass_finish(struct pass *p, unsigned char stored[32], unsigned char out[32], struct err *err)
{
	if (p->threaded) {
		/* Both threads must be done with the whole output: the decoder
		 * stops only at the end (or a failure the caller was handed). */
		if (p->d && !__atomic_load_n(&p->decode_done, __ATOMIC_ACQUIRE))
			return err_set(err, -EINVAL, "blob: stream pass finished before its end");
		pass_join(p, false);
	} else {
		while (!p->hash_error && p->stored_done < p->b->length)
			hash_stored_piece(p);
	}
	if (p->hash_error)
		return hash_failure(p, err);
	if (!EVP_DigestFinal_ex(p->stored, stored, NULL) ||
	    (out && !EVP_DigestFinal_ex(p->out, out, NULL)))
		return err_set(err, -EIO, "blob: sha256 final failed");
	return 0;
}
