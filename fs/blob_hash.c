/*
 * blob_hash: the two sha256 digests of a stream pass (the layer digest of the
 * stored bytes, the diff_id of the decompressed stream), computed on a thread
 * of their own. Hashing costs about as much as inflating with ISA-L; on its
 * own thread it overlaps decompression and indexing instead of adding to them.
 *
 * Blobs under HASH_THREAD_MIN are hashed in line, as before.
 *
 * The thread reads and hashes the stored bytes itself, in order, whenever it
 * has nothing else to do, and hashes the decompressed stream from a ring of
 * output buffers that the stream pass fills: the pass takes the next buffer
 * (waiting while every buffer is still queued), decompresses into it, hands
 * it to its caller and queues it. A buffer is written again only once hashed
 * and once the caller has moved on: the ring holds more than one.
 */
#include "blob_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_RING      4
#define HASH_STORED_IN (1u << 20)
/* Below this stored size a thread costs more than it saves (and most layers
 * of real images are small): hash in line instead. */
#define HASH_THREAD_MIN (4u << 20)

struct hasher {
	const struct blob *b;
	pthread_t thread;
	bool threaded; /* else everything is hashed in line, ring[0] reused */
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	EVP_MD_CTX *stored, *out;
	unsigned char *ring[HASH_RING];
	size_t len[HASH_RING];
	size_t cap;
	uint64_t queued, hashed; /* output buffers queued and hashed so far */
	bool ending;             /* no more output; finish the stored bytes */
	bool stop;               /* abandon the work (the pass failed) */
	uint64_t stored_done;
	unsigned char *in;
	int error; /* negative errno of the first failure */
	uint64_t error_at;
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
static void hash_stored_piece(struct hasher *h)
{
	const struct blob *b = h->b;
	uint64_t left = b->length - h->stored_done;
	size_t n = left < HASH_STORED_IN ? (size_t)left : HASH_STORED_IN;
	ssize_t r;

	do
		r = pread(b->fd, h->in, n, (off_t)(b->offset + h->stored_done));
	while (r < 0 && errno == EINTR);
	if (r <= 0 || !EVP_DigestUpdate(h->stored, h->in, (size_t)r)) {
		pthread_mutex_lock(&h->lock);
		h->error = r < 0 ? -errno : -EIO;
		h->error_at = h->stored_done;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	h->stored_done += (uint64_t)r;
}

static void *hasher_main(void *arg)
{
	struct hasher *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop && !h->error) {
		if (h->hashed < h->queued) {
			size_t i = h->hashed % HASH_RING;

			pthread_mutex_unlock(&h->lock);
			if (!EVP_DigestUpdate(h->out, h->ring[i], h->len[i])) {
				pthread_mutex_lock(&h->lock);
				h->error = -EIO;
				break;
			}
			pthread_mutex_lock(&h->lock);
			h->hashed++;
			pthread_cond_broadcast(&h->cond);
		} else if (h->stored_done < h->b->length) {
			pthread_mutex_unlock(&h->lock);
			hash_stored_piece(h);
			pthread_mutex_lock(&h->lock);
		} else if (h->ending) {
			break;
		} else {
			pthread_cond_wait(&h->cond, &h->lock);
		}
	}
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void hasher_free(struct hasher *h)
{
	if (!h)
		return;
	if (h->running) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	EVP_MD_CTX_free(h->stored);
	EVP_MD_CTX_free(h->out);
	for (int i = 0; i < HASH_RING; i++)
		free(h->ring[i]);
	free(h->in);
	free(h);
}

int hasher_start(const struct blob *b, size_t out_cap, struct hasher **ret_hasher, struct err *err)
{
	struct hasher *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return err_set(err, -ENOMEM, "blob: out of memory for hashing");
	h->b = b;
	h->cap = out_cap;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->stored = sha256_new();
	h->out = sha256_new();
	h->threaded = b->length >= HASH_THREAD_MIN;
	h->in = malloc(b->length < HASH_STORED_IN ? (size_t)b->length + 1 : HASH_STORED_IN);
	r = h->stored && h->out && h->in ? 0 : -ENOMEM;
	for (int i = 0; i < (h->threaded ? HASH_RING : 1) && out_cap && r == 0; i++)
		if (!(h->ring[i] = malloc(out_cap)))
			r = -ENOMEM;
	if (r == 0 && h->threaded) {
		r = -pthread_create(&h->thread, NULL, hasher_main, h);
		h->running = r == 0;
	}
	if (r < 0) {
		hasher_free(h);
		return err_set(err, r, "blob: cannot start hashing: %s", strerror(-r));
	}
	*ret_hasher = h;
	return 0;
}

unsigned char *hasher_buffer(struct hasher *h, size_t *ret_cap)
{
	unsigned char *buf;

	*ret_cap = h->cap;
	if (!h->threaded)
		return h->ring[0];
	pthread_mutex_lock(&h->lock);
	/* The thread always drains the ring unless it failed, and then the
	 * buffers are free for good: hasher_finish reports the failure. */
	while (h->queued - h->hashed >= HASH_RING && !h->error)
		pthread_cond_wait(&h->cond, &h->lock);
	buf = h->ring[h->queued % HASH_RING];
	pthread_mutex_unlock(&h->lock);
	return buf;
}

void hasher_queue(struct hasher *h, size_t len)
{
	if (!h->threaded) {
		if (!h->error && !EVP_DigestUpdate(h->out, h->ring[0], len))
			h->error = -EIO;
		return;
	}
	pthread_mutex_lock(&h->lock);
	h->len[h->queued % HASH_RING] = len;
	h->queued++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

int hasher_finish(struct hasher *h, unsigned char stored[32], unsigned char out[32],
                  struct err *err)
{
	if (h->threaded) {
		pthread_mutex_lock(&h->lock);
		h->ending = true;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
		h->running = false;
	} else {
		while (!h->error && h->stored_done < h->b->length)
			hash_stored_piece(h);
	}
	if (h->error)
		return err_set(err, h->error, "blob: hashing failed at stored offset %llu: %s",
		               (unsigned long long)h->error_at,
		               h->error == -EIO ? "read or sha256 failure" : strerror(-h->error));
	if (!EVP_DigestFinal_ex(h->stored, stored, NULL) ||
	    (out && !EVP_DigestFinal_ex(h->out, out, NULL)))
		return err_set(err, -EIO, "blob: sha256 final failed");
	return 0;
}
