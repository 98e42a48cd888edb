/*
 * blob_spill: the decompressed spill of fs/blob (see blob.h), and the pools
 * that bound it.
 *
 * A zstd frame cannot be resumed in its middle, so in a blob of one big frame
 * every read behind the cursors decompresses from the frame start: 11 ms for
 * a 4 KiB read in a 100 MiB layer. The spill keeps what such reads decompress:
 * a blob's spill file holds the prefix [0, done) of its stream, a read inside
 * it is one pread, and a read past it continues the spill's own decoder from
 * done, writing as it goes, up to a SPILL_STEP boundary past the read. So the
 * first far read of a layer costs what it did before plus the writes, and the
 * reads after it cost nothing but those that reach further.
 *
 * Why a prefix and not the spans that reads happen to touch: the decoder must
 * produce every byte before a read anyway, and keeping them all makes the file
 * a plain array with one number (done) to describe it, which readers check
 * without waiting for the grower. Why not re-encode the layer into zstd's
 * seekable format once, cached by digest: that costs a compression pass of the
 * whole layer (several times slower than decompressing it) before the first
 * read is answered, and a second copy in the cache for every such layer; the
 * spill costs only what reads reach, and nothing of it outlives the process,
 * so nobody else can tamper with it.
 *
 * The files are made with O_TMPFILE (mkstemp and unlink where the file system
 * lacks it): no name, gone with the process. A pool counts the bytes of all
 * its spills against its bound; when a spill needs room it closes the least
 * recently used other spill (the blob reads by decompressing again until its
 * spill regrows). A spill that cannot be made or written (no directory, full
 * disk) is dropped and never tried again for that blob; reads are unaffected.
 */
#include "blob_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MiB (1ull << 20)

/* The grower decompresses and writes this much at a time, and makes readers
 * wait for no more than that before they see their bytes. */
#define SPILL_PIECE (1u << 20)
/* A read that grows the spill grows it to the next multiple of this past its
 * end: the reads that follow it forward find their bytes already there. */
#define SPILL_STEP   (4u * 1024 * 1024)
#define SPILL_IN_CAP (128u * 1024)
/* The spills of a pool hold at most 1/SPILL_FREE_SHARE of what the file
 * system has for them (its free space plus what they hold already). */
#define SPILL_FREE_SHARE 2

struct blob_spill {
	char *dir;
	int dirfd;
	uint64_t max_bytes;
	pthread_mutex_t lock;
	struct spill *head; /* every spill of the pool, under lock */
	uint64_t total;     /* sum of their charged bytes, under lock */
	uint64_t clock;     /* atomic: LRU stamps */
};

int blob_spill_open(const char *dir, uint64_t max_bytes, struct blob_spill **ret_pool,
                    struct err *err)
{
	struct blob_spill *pool = calloc(1, sizeof(*pool));
	int r;

	if (!pool || !(pool->dir = strdup(dir))) {
		free(pool);
		return err_set(err, -ENOMEM, "blob spill: out of memory");
	}
	pool->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pool->dirfd < 0) {
		r = -errno;
		free(pool->dir);
		free(pool);
		return err_set(err, r, "blob spill: cannot open the directory %s: %s", dir,
		               strerror(-r));
	}
	r = pthread_mutex_init(&pool->lock, NULL);
	if (r) {
		close(pool->dirfd);
		free(pool->dir);
		free(pool);
		return err_set(err, -r, "blob spill: cannot create its mutex");
	}
	pool->max_bytes = max_bytes;
	*ret_pool = pool;
	return 0;
}

void blob_spill_free(struct blob_spill *pool)
{
	if (!pool)
		return;
	pthread_mutex_destroy(&pool->lock);
	close(pool->dirfd);
	free(pool->dir);
	free(pool);
}

int blob_set_spill(struct blob *b, struct blob_spill *pool, struct err *err)
{
	pthread_rwlockattr_t attr;
	struct spill *sp;
	int r;

	if (b->comp == BLOB_RAW || b->spill)
		return 0;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return err_set(err, -ENOMEM, "blob spill: out of memory");
	if (pthread_mutex_init(&sp->grow, NULL)) {
		free(sp);
		return err_set(err, -ENOMEM, "blob spill: cannot create its mutex");
	}
	/* Readers of a busy spill never all let go at once: an eviction waiting
	 * under the pool's lock must go before new ones (no reader takes rw twice). */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	r = pthread_rwlock_init(&sp->rw, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (r) {
		pthread_mutex_destroy(&sp->grow);
		free(sp);
		return err_set(err, -r, "blob spill: cannot create its lock");
	}
	sp->pool = pool;
	sp->fd = -1;
	pthread_mutex_lock(&pool->lock);
	sp->next = pool->head;
	if (pool->head)
		pool->head->prev = sp;
	pool->head = sp;
	pthread_mutex_unlock(&pool->lock);
	b->spill = sp;
	return 0;
}

/* Empties sp and gives its bytes back to the pool. Under the pool's lock. */
static void evict_locked(struct spill *sp)
{
	pthread_rwlock_wrlock(&sp->rw);
	if (sp->fd >= 0)
		close(sp->fd); /* an unnamed file: closing it frees its blocks */
	__atomic_store_n(&sp->fd, -1, __ATOMIC_RELEASE);
	__atomic_store_n(&sp->done, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&sp->complete, false, __ATOMIC_RELEASE);
	sp->gen++;
	pthread_rwlock_unlock(&sp->rw);
	if (sp->charged)
		__atomic_add_fetch(&sp->drops, 1, __ATOMIC_RELAXED);
	sp->pool->total -= sp->charged;
	sp->charged = 0;
}

void spill_free(struct spill *sp)
{
	struct blob_spill *pool;

	if (!sp)
		return;
	pool = sp->pool;
	pthread_mutex_lock(&pool->lock);
	evict_locked(sp);
	if (sp->prev)
		sp->prev->next = sp->next;
	else
		pool->head = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	pthread_mutex_unlock(&pool->lock);
	dec_free(sp->dec);
	free(sp->buf);
	pthread_rwlock_destroy(&sp->rw);
	pthread_mutex_destroy(&sp->grow);
	free(sp);
}

void spill_stats(const struct spill *sp, struct blob_stats *st)
{
	st->spill_hits = __atomic_load_n(&sp->hits, __ATOMIC_RELAXED);
	st->spill_decompressed = __atomic_load_n(&sp->decompressed, __ATOMIC_RELAXED);
	st->spill_bytes = __atomic_load_n(&sp->done, __ATOMIC_RELAXED);
	st->spill_drops = __atomic_load_n(&sp->drops, __ATOMIC_RELAXED);
	st->pread_decompressed += st->spill_decompressed;
}

/* What the pool's spills may hold together now. Under the pool's lock. */
static uint64_t pool_allowed(struct blob_spill *pool)
{
	struct statvfs vfs;
	uint64_t room;

	if (fstatvfs(pool->dirfd, &vfs) < 0)
		return pool->max_bytes; /* no answer: only the bound */
	room = ((uint64_t)vfs.f_bavail * vfs.f_frsize + pool->total) / SPILL_FREE_SHARE;
	return room < pool->max_bytes ? room : pool->max_bytes;
}

/*
 * Counts n more bytes of sp against its pool, evicting the least recently
 * used other spills while they do not fit. Returns 0 and the eviction count
 * of sp at that moment in *ret_gen (the bytes are lost with sp's next
 * eviction), or -ENOSPC when sp alone fills the pool.
 */
static int reserve(struct spill *sp, uint64_t n, uint64_t *ret_gen)
{
	struct blob_spill *pool = sp->pool;
	int r = 0;

	pthread_mutex_lock(&pool->lock);
	while (pool->total + n > pool_allowed(pool)) {
		struct spill *victim = NULL;
		for (struct spill *s = pool->head; s; s = s->next)
			if (s != sp && s->charged &&
			    (!victim || __atomic_load_n(&s->stamp, __ATOMIC_RELAXED) <
			                    __atomic_load_n(&victim->stamp, __ATOMIC_RELAXED)))
				victim = s;
		if (!victim) {
			r = -ENOSPC;
			break;
		}
		evict_locked(victim);
	}
	if (r == 0) {
		pool->total += n;
		sp->charged += n;
		*ret_gen = sp->gen;
	}
	pthread_mutex_unlock(&pool->lock);
	return r;
}

/* Gives back n reserved bytes that were not written, unless evicted since. */
static void unreserve(struct spill *sp, uint64_t n, uint64_t gen)
{
	struct blob_spill *pool = sp->pool;

	pthread_mutex_lock(&pool->lock);
	if (sp->gen == gen) {
		pool->total -= n;
		sp->charged -= n;
	}
	pthread_mutex_unlock(&pool->lock);
}

/* After a failure to make or write the file: empty sp and never use it again. */
static void drop(struct spill *sp)
{
	pthread_mutex_lock(&sp->pool->lock);
	evict_locked(sp);
	pthread_mutex_unlock(&sp->pool->lock);
	__atomic_store_n(&sp->dead, true, __ATOMIC_RELEASE);
}

static void touch(struct spill *sp)
{
	__atomic_store_n(&sp->stamp, __atomic_add_fetch(&sp->pool->clock, 1, __ATOMIC_RELAXED),
	                 __ATOMIC_RELAXED);
}

/* A new unnamed file in the pool's directory, or -1. Under grow. */
static int make_file(struct spill *sp)
{
	char *path;
	int fd = openat(sp->pool->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd;
	/* a file system without O_TMPFILE: a named file, unlinked at once */
	if (asprintf(&path, "%s/.strata-spill-XXXXXX", sp->pool->dir) < 0)
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

/*
 * Reads [off, end) from the file if the spill holds it (end is cut at the
 * end of the stream when the spill holds that). Returns the count, or -1 when
 * the spill does not hold it.
 */
static ssize_t hit(struct spill *sp, void *buf, uint64_t off, uint64_t end)
{
	ssize_t n = -1;
	uint64_t done;

	pthread_rwlock_rdlock(&sp->rw);
	done = __atomic_load_n(&sp->done, __ATOMIC_ACQUIRE);
	if (end > done && __atomic_load_n(&sp->complete, __ATOMIC_ACQUIRE))
		end = done > off ? done : off;
	if (end == off && end > done)
		n = 0; /* past the end of the stream */
	else if (sp->fd >= 0 && end <= done)
		n = pread_full(sp->fd, buf, end - off, off);
	if (n >= 0 && n != (ssize_t)(end - off))
		n = -1; /* the file let us down: decompress instead */
	pthread_rwlock_unlock(&sp->rw);
	if (n >= 0) {
		__atomic_add_fetch(&sp->hits, 1, __ATOMIC_RELAXED);
		touch(sp);
	}
	return n;
}

/* Writes all of buf at off; 0 or -errno. */
static int write_full(int fd, const unsigned char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, buf, len, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		buf += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Decompresses into sp->buf up to SPILL_PIECE bytes, counting them. */
static ssize_t decode(struct spill *sp, size_t cap, struct err *err)
{
	ssize_t n = dec_read(sp->dec, sp->buf, cap, err);

	if (n > 0)
		__atomic_add_fetch(&sp->decompressed, (uint64_t)n, __ATOMIC_RELAXED);
	return n;
}

/* Puts the spill's decoder at done, from the nearest seek point. Under grow. */
static int decoder_at(struct spill *sp, struct blob *b, uint64_t done, struct err *err)
{
	int r;

	if (!sp->dec && !(sp->dec = dec_new(b, SPILL_IN_CAP)))
		return err_set(err, -ENOMEM, "blob spill: out of memory for a decoder");
	if (sp->dec->state != DEC_BROKEN && sp->dec->out_pos == done)
		return 0;
	r = dec_seek(sp->dec, done, err);
	while (r == 0 && sp->dec->out_pos < done) {
		uint64_t skip = done - sp->dec->out_pos;
		ssize_t n = decode(sp, skip < SPILL_PIECE ? skip : SPILL_PIECE, err);
		if (n < 0)
			r = (int)n;
		else if (n == 0) /* the stream ended before: it did not, at first */
			r = err_set(err, -EIO, "blob spill: the stream ends before offset %llu",
			            (unsigned long long)done);
	}
	return r;
}

/*
 * After a decompression error: the spill keeps what it holds but grows no
 * more, and the read goes the way it would without a spill, which fails, or
 * not, exactly as it would have (the spill decompresses ahead of the read, and
 * the damage may lie past it).
 */
static int stop(struct spill *sp, struct err *err)
{
	__atomic_store_n(&sp->dead, true, __ATOMIC_RELEASE);
	err_clear(err);
	return -EAGAIN;
}

/*
 * Grows the spill to a SPILL_STEP boundary past end, or to the end of the
 * stream. Under grow. Returns 0 when it stopped there, or earlier for want of
 * room or after an eviction; -EAGAIN when it cannot grow any more.
 */
static int grow(struct spill *sp, struct blob *b, uint64_t end, struct err *err)
{
	uint64_t target = end + (SPILL_STEP - end % SPILL_STEP), done, gen;
	ssize_t n;
	int r;

	if (!sp->buf && !(sp->buf = malloc(SPILL_PIECE)))
		return -EAGAIN; /* no memory for it: read as if there were no spill */
	while ((done = __atomic_load_n(&sp->done, __ATOMIC_ACQUIRE)) < target &&
	       !__atomic_load_n(&sp->complete, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&sp->fd, __ATOMIC_ACQUIRE) < 0) {
			int fd = make_file(sp);
			if (fd < 0) {
				drop(sp);
				return -EAGAIN;
			}
			pthread_rwlock_wrlock(&sp->rw);
			__atomic_store_n(&sp->fd, fd, __ATOMIC_RELEASE);
			pthread_rwlock_unlock(&sp->rw);
		}
		r = decoder_at(sp, b, done, err);
		if (r < 0)
			return stop(sp, err);
		if (reserve(sp, SPILL_PIECE, &gen) < 0)
			return 0;
		n = decode(sp, SPILL_PIECE, err);
		if (n < SPILL_PIECE)
			unreserve(sp, SPILL_PIECE - (n > 0 ? (uint64_t)n : 0), gen);
		if (n < 0)
			return stop(sp, err);
		touch(sp);
		pthread_rwlock_rdlock(&sp->rw);
		if (sp->gen != gen || sp->fd < 0) {
			/* evicted meanwhile (before the reservation, if only the file is
			 * gone): the decoder restarts at 0 next time */
			pthread_rwlock_unlock(&sp->rw);
			if (n > 0)
				unreserve(sp, (uint64_t)n, gen);
			return 0;
		}
		if (n == 0) {
			__atomic_store_n(&sp->complete, true, __ATOMIC_RELEASE);
			pthread_rwlock_unlock(&sp->rw);
			return 0;
		}
		r = write_full(sp->fd, sp->buf, (size_t)n, done);
		if (r == 0)
			__atomic_store_n(&sp->done, done + (uint64_t)n, __ATOMIC_RELEASE);
		pthread_rwlock_unlock(&sp->rw);
		if (r < 0) {
			/* a full disk must not fail the read: decompress as before */
			drop(sp);
			return -EAGAIN;
		}
	}
	return 0;
}

ssize_t spill_pread(struct blob *b, void *buf, size_t len, uint64_t off, bool *served,
                    struct err *err)
{
	struct spill *sp = b->spill;
	int64_t size = blob_size(b);
	uint64_t end = off + len, done;
	ssize_t n;
	int r;

	*served = false;
	if (size >= 0 && end > (uint64_t)size)
		end = off < (uint64_t)size ? (uint64_t)size : off;
	n = hit(sp, buf, off, end);
	if (n >= 0 || __atomic_load_n(&sp->dead, __ATOMIC_ACQUIRE)) {
		*served = n >= 0;
		return n;
	}
	/* Grow the spill only where the cursors would decompress more than the
	 * gap, or more than growing it costs. */
	done = __atomic_load_n(&sp->done, __ATOMIC_ACQUIRE);
	{
		uint64_t cost = pread_cost(b, off);
		if (cost <= BLOB_SPILL_GAP && end - done > cost)
			return 0;
	}
	pthread_mutex_lock(&sp->grow);
	n = hit(sp, buf, off, end); /* another reader may have grown it meanwhile */
	r = n >= 0 ? 0 : grow(sp, b, end, err);
	/* The buffer goes between reads (a MiB for each layer that ever spilled);
	 * the decoder stays while it sits at done, ready to go on. */
	free(sp->buf);
	sp->buf = NULL;
	if (__atomic_load_n(&sp->complete, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&sp->dead, __ATOMIC_ACQUIRE)) {
		dec_free(sp->dec);
		sp->dec = NULL;
	}
	pthread_mutex_unlock(&sp->grow);
	if (n >= 0) {
		*served = true;
		return n;
	}
	if (r < 0)
		return 0;
	n = hit(sp, buf, off, end);
	*served = n >= 0;
	return n;
}
