/* A fake VM implementing migrate/vmif.h for in-process migration tests.
 *
 * RAM is one malloc'd buffer exposed as two regions (low half at gpa 0, high
 * half at 4 GiB). A "guest" thread writes generation stamps into random
 * pages of a hot set and marks them in the fake's dirty bitmap AFTER the
 * write (write-then-mark, like a KVM write fault that is logged before the
 * write retires: a write racing with the sender's read is always reported
 * by a later sync). pause() parks the thread; set_throttle() stretches its
 * sleep. Device state is a counter plus an optional blob. */
#ifndef TEST_MIGRATE_FAKE_H
#define TEST_MIGRATE_FAKE_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/bitmap.h"
#include "lib/vmstate.h"
#include "migrate/vmif.h"

struct fake_vm {
	uint8_t *ram;
	uint64_t size, npages, hot_pages;
	struct bitmap dirty;
	pthread_t guest;
	int guest_on;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int paused, parked, stop, throttle, burst;
	uint64_t gen;
	uint32_t seed;
	int dirty_on, dirty_starts, dirty_stops, pauses, resumes, max_throttle;
	uint64_t counter, loaded_counter;
	size_t state_extra;		/* bytes of extra device state */
	int loaded;
	const char *cpu;		/* compat blob */
	int (*on_load)(struct fake_vm *f);	/* test hook in load_state */
	int hook_fd;
	int memfd;			/* RAM is a shared memfd mapping (fake_new_memfd), else -1 */
};

static inline void fake_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static inline uint32_t fake_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* fill: 0 = zero RAM, 1 = random bytes, 2 = half-compressible pattern */
static inline struct fake_vm *fake_new(uint64_t size, int fill)
{
	struct fake_vm *f = calloc(1, sizeof(*f));
	struct err e;

	f->size = size;
	f->npages = size / 4096;
	f->hot_pages = f->npages;
	f->ram = aligned_alloc(4096, size);
	f->seed = 0x12345678;
	f->cpu = "fakecpu-1";
	f->burst = 16;
	if (fill == 0)
		memset(f->ram, 0, size);
	for (uint64_t i = 0; fill && i < size / 4; i++) {
		uint32_t v = fake_rand(&f->seed);

		if (fill == 2 && i % 1024 >= 256)
			v = (uint32_t)(i & 0xff);	/* 3/4 of each page compresses */
		memcpy(f->ram + i * 4, &v, 4);
	}
	bitmap_init(&f->dirty, f->npages, &e);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->counter = 42;
	f->memfd = -1;
	return f;
}

/* Like the vmm: RAM is a shared mapping of a memfd, all holes at first
 * (reads as zero, no page allocated). */
static inline struct fake_vm *fake_new_memfd(uint64_t size)
{
	struct fake_vm *f = fake_new(4096, 0);
	struct err e;

	free(f->ram);
	bitmap_free(&f->dirty);
	f->size = size;
	f->npages = f->hot_pages = size / 4096;
	f->memfd = memfd_create("fake-ram", MFD_CLOEXEC);
	if (f->memfd < 0 || ftruncate(f->memfd, (off_t)size) < 0)
		abort();
	f->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	if (f->ram == MAP_FAILED)
		abort();
	bitmap_init(&f->dirty, f->npages, &e);
	return f;
}

static void *fake_guest_main(void *arg)
{
	struct fake_vm *f = arg;

	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		int thr;

		if (f->paused) {
			f->parked = 1;
			pthread_cond_broadcast(&f->cv);
			pthread_cond_wait(&f->cv, &f->mu);
			continue;
		}
		f->parked = 0;
		thr = f->throttle;
		pthread_mutex_unlock(&f->mu);
		for (int j = 0; j < f->burst; j++) {
			uint64_t pg = fake_rand(&f->seed) % f->hot_pages;
			uint64_t g = __atomic_add_fetch(&f->gen, 1, __ATOMIC_RELAXED);
			uint64_t off = (fake_rand(&f->seed) % 512) * 8;

			memcpy(f->ram + pg * 4096, &g, 8);
			memcpy(f->ram + pg * 4096 + off, &g, 8);
			bitmap_set_atomic(&f->dirty, pg);	/* after the write */
		}
		fake_sleep_us(1000L * 100 / (100 - thr));
		pthread_mutex_lock(&f->mu);
	}
	f->parked = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* burst pages per ~1 ms tick over the first hot_pages pages */
static inline void fake_start_guest(struct fake_vm *f, int burst, uint64_t hot_pages)
{
	f->burst = burst;
	f->hot_pages = hot_pages ? hot_pages : f->npages;
	f->guest_on = 1;
	pthread_create(&f->guest, NULL, fake_guest_main, f);
}

static inline void fake_free(struct fake_vm *f)
{
	if (f->guest_on) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->guest, NULL);
	}
	bitmap_free(&f->dirty);
	if (f->memfd >= 0) {
		munmap(f->ram, f->size);
		close(f->memfd);
	} else {
		free(f->ram);
	}
	free(f);
}

static int fake_ram_regions(void *vm, struct mig_ram *r, int *n, struct err *e)
{
	struct fake_vm *f = vm;
	uint64_t lo = f->size / 2 / 4096 * 4096;

	if (*n < 2)
		return err_set(e, "fake: room for %d regions", *n);
	r[0] = (struct mig_ram){ .host = f->ram, .gpa = 0, .size = lo, .memfd = f->memfd };
	r[1] = (struct mig_ram){ .host = f->ram + lo, .gpa = 1ull << 32, .size = f->size - lo,
				 .memfd = f->memfd, .memfd_off = lo };
	*n = 2;
	return 0;
}

static int fake_dirty_start(void *vm, struct err *e)
{
	struct fake_vm *f = vm;

	(void)e;
	f->dirty_on = 1;
	f->dirty_starts++;
	return 0;
}

static int fake_dirty_sync(void *vm, struct bitmap *out, struct err *e)
{
	struct fake_vm *f = vm;

	return bitmap_harvest(out, &f->dirty, e);
}

static int fake_dirty_stop(void *vm, struct err *e)
{
	struct fake_vm *f = vm;

	(void)e;
	f->dirty_on = 0;
	f->dirty_stops++;
	return 0;
}

static int fake_pause(void *vm, struct err *e)
{
	struct fake_vm *f = vm;

	(void)e;
	pthread_mutex_lock(&f->mu);
	f->paused = 1;
	f->pauses++;
	while (f->guest_on && !f->parked)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_resume(void *vm, struct err *e)
{
	struct fake_vm *f = vm;

	(void)e;
	pthread_mutex_lock(&f->mu);
	f->paused = 0;
	f->resumes++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_save_state(void *vm, struct vmstate_writer *w, struct err *e)
{
	struct fake_vm *f = vm;

	if (vmstate_begin_section(w, "fake", 1, VMSTATE_SEC_REQUIRED, e) < 0 ||
	    vmstate_put_u64(w, f->counter, e) < 0)
		return -1;
	for (size_t i = 0; i < f->state_extra; i++)
		if (vmstate_put_u8(w, (uint8_t)(i * 7), e) < 0)
			return -1;
	return vmstate_end_section(w, e);
}

static int fake_load_state(void *vm, const uint8_t *buf, size_t len, struct err *e)
{
	struct fake_vm *f = vm;
	struct vmstate_reader r;
	const void *p;
	size_t plen;
	int ret = -1;

	if (f->on_load && f->on_load(f) < 0)
		return err_set(e, "fake: load hook failed");
	if (vmstate_parse(buf, len, &r, e) < 0)
		return -1;
	if (!vmstate_find(&r, "fake", &p, &plen, NULL) || plen < 8) {
		err_set(e, "fake: no state section");
		goto out;
	}
	memcpy(&f->loaded_counter, p, 8);
	for (size_t i = 8; i < plen; i++)
		if (((const uint8_t *)p)[i] != (uint8_t)((i - 8) * 7)) {
			err_set(e, "fake: extra state corrupt at %zu", i);
			goto out;
		}
	f->loaded = 1;
	ret = 0;
out:
	vmstate_reader_free(&r);
	return ret;
}

static int fake_set_throttle(void *vm, int pct, struct err *e)
{
	struct fake_vm *f = vm;

	(void)e;
	pthread_mutex_lock(&f->mu);
	f->throttle = pct;
	if (pct > f->max_throttle)
		f->max_throttle = pct;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int fake_announce(void *vm)
{
	(void)vm;
	return 0;
}

static int fake_compat_info(void *vm, uint8_t *buf, size_t cap, size_t *len, struct err *e)
{
	struct fake_vm *f = vm;
	size_t n = strlen(f->cpu);

	if (n > cap)
		return err_set(e, "fake: compat blob too big");
	memcpy(buf, f->cpu, n);
	*len = n;
	return 0;
}

static int fake_compat_check(void *vm, const uint8_t *buf, size_t len, struct err *e)
{
	struct fake_vm *f = vm;

	if (len != strlen(f->cpu) || memcmp(buf, f->cpu, len))
		return err_set(e, "CPU model %.*s not supported here (have %s)", (int)len,
			       (const char *)buf, f->cpu);
	return 0;
}

static const struct mig_vm_ops fake_ops = {
	.ram_regions = fake_ram_regions,
	.dirty_start = fake_dirty_start,
	.dirty_sync = fake_dirty_sync,
	.dirty_stop = fake_dirty_stop,
	.pause = fake_pause,
	.resume = fake_resume,
	.save_state = fake_save_state,
	.load_state = fake_load_state,
	.set_throttle = fake_set_throttle,
	.announce = fake_announce,
	.compat_info = fake_compat_info,
	.compat_check = fake_compat_check,
};

#endif
