/* Freestanding self-checking guest (64-bit part).
 *
 * Stamps every 4 KiB page of a RAM range with (page index, generation) in its
 * first and last 8 bytes, and on each pass verifies the previous generation
 * before writing the next. A page that was lost, duplicated from another page,
 * restored stale or torn (first and last word disagree) is reported. Meant to
 * run under live migration, checkpointing and cloning of the VM around it.
 *
 * Multiboot command line options (unknown words are ignored, so the kernel
 * path QEMU prepends does no harm):
 *   mem=MiB     size of the range to stamp, starting after our own image
 *   passes=N    number of verify+write passes (0 = forever)
 *   hb=N        print HEARTBEAT every N passes (0 = never)
 *   corrupt=P   test hook: after pass P, overwrite one page's last word with
 *               a stale stamp, so pass P+1 must report VERIFY FAIL
 * Exit: one byte to port 0xf4 (isa-debug-exit): 0 success, 1 failure. */
#include <stdint.h>
#include <stddef.h>

#define COM1		0x3f8
#define UART_LSR	5
#define LSR_THRE	0x20
#define EXIT_PORT	0xf4
#define PAGE_SIZE	4096ULL
/* The boot code identity-maps exactly this much. */
#define MAPPED_LIMIT	(4ULL << 30)

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;	/* KiB below 1 MiB   (flags bit 0) */
	uint32_t mem_upper;	/* KiB above 1 MiB   (flags bit 0) */
	uint32_t boot_device;
	uint32_t cmdline;	/* physical address  (flags bit 2) */
};

extern char _image_end[];

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* ---- output: lines are formatted into a buffer, then sent in one go ---- */

struct line {
	char buf[160];
	size_t len;
};

static void put_str(struct line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 2)
		l->buf[l->len++] = *s++;
}

static void put_u64(struct line *l, uint64_t v)
{
	char tmp[21];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && l->len < sizeof(l->buf) - 2)
		l->buf[l->len++] = tmp[--n];
}

static void put_hex(struct line *l, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	put_str(l, "0x");
	for (i = 60; i >= 0; i -= 4)
		if (l->len < sizeof(l->buf) - 2)
			l->buf[l->len++] = digits[(v >> i) & 0xf];
}

static void line_send(struct line *l)
{
	size_t i;

	l->buf[l->len++] = '\n';
	for (i = 0; i < l->len; i++) {
		/* Bounded wait: a missing UART must not hang us forever. */
		for (int spin = 0; spin < 100000 && !(inb(COM1 + UART_LSR) & LSR_THRE); spin++)
			;
		outb(COM1, (uint8_t)l->buf[i]);
	}
	l->len = 0;
}

static void say(const char *s)
{
	struct line l = { .len = 0 };

	put_str(&l, s);
	line_send(&l);
}

static __attribute__((noreturn)) void finish(int fail)
{
	outb(EXIT_PORT, (uint8_t)(fail ? 1 : 0));
	for (;;)	/* no exit device: park */
		__asm__ volatile("cli; hlt");
}

/* ---- command line ---- */

static int word_is(const char *w, const char *key, const char **val)
{
	while (*key && *w == *key) {
		w++;
		key++;
	}
	if (*key || *w != '=')
		return 0;
	*val = w + 1;
	return 1;
}

static uint64_t parse_u64(const char *s)
{
	uint64_t v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	return v;
}

struct opts {
	uint64_t mem_mib, passes, hb, corrupt;
	int corrupt_set;
};

static void parse_cmdline(const char *s, struct opts *o)
{
	const char *v;

	while (s && *s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (word_is(s, "mem", &v))
			o->mem_mib = parse_u64(v);
		else if (word_is(s, "passes", &v))
			o->passes = parse_u64(v);
		else if (word_is(s, "hb", &v))
			o->hb = parse_u64(v);
		else if (word_is(s, "corrupt", &v)) {
			o->corrupt = parse_u64(v);
			o->corrupt_set = 1;
		}
		while (*s && *s != ' ')
			s++;
	}
}

/* ---- stamping ---- */

/* Page index in the high 32 bits, generation in the low 32 bits: a page copied
 * from the wrong place has the wrong index, a stale page the wrong generation. */
static inline uint64_t stamp(uint64_t page, uint64_t gen)
{
	return (page << 32) | (gen & 0xffffffffULL);
}

static uint8_t *range_base;
static uint64_t range_pages;

static inline volatile uint64_t *first_word(uint64_t p)
{
	return (volatile uint64_t *)(range_base + p * PAGE_SIZE);
}

static inline volatile uint64_t *last_word(uint64_t p)
{
	return (volatile uint64_t *)(range_base + p * PAGE_SIZE + PAGE_SIZE - 8);
}

static void write_gen(uint64_t gen)
{
	for (uint64_t p = 0; p < range_pages; p++) {
		uint64_t s = stamp(p, gen);

		*first_word(p) = s;
		*last_word(p) = s;
	}
}

static void report_fail(uint64_t page, uint64_t gen, uint64_t got)
{
	struct line l = { .len = 0 };

	put_str(&l, "VERIFY FAIL page=");
	put_u64(&l, page);
	put_str(&l, " expected=");
	put_u64(&l, gen);
	put_str(&l, " got=");
	if ((got >> 32) == page)
		put_u64(&l, got & 0xffffffffULL);
	else
		put_hex(&l, got);	/* wrong page index: show the raw stamp */
	line_send(&l);
}

/* Returns the number of bad pages; reports the first few. */
static uint64_t verify_gen(uint64_t gen)
{
	uint64_t want, a, b, bad = 0;

	for (uint64_t p = 0; p < range_pages; p++) {
		want = stamp(p, gen);
		a = *first_word(p);
		b = *last_word(p);
		if (a == want && b == want)
			continue;
		if (bad++ < 8)
			report_fail(p, gen, a != want ? a : b);
	}
	return bad;
}

void fs_main(uint32_t magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;
	struct opts o = { .mem_mib = 16, .passes = 1, .hb = 0, .corrupt = 0, .corrupt_set = 0 };
	struct line l = { .len = 0 };
	uint64_t start, end, ram_end, gen, bad;

	if (magic != 0x2BADB002) {
		say("FREESTANDING ERROR bad multiboot magic");
		finish(1);
	}
	if (mbi->flags & (1u << 2))
		parse_cmdline((const char *)(uintptr_t)mbi->cmdline, &o);

	start = ((uint64_t)(uintptr_t)_image_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	end = start + o.mem_mib * (1ULL << 20);
	ram_end = (mbi->flags & 1) ? (1ULL << 20) + (uint64_t)mbi->mem_upper * 1024 : 0;
	if (ram_end > MAPPED_LIMIT)
		ram_end = MAPPED_LIMIT;
	/* The multiboot info and command line usually sit in low memory or just
	 * past the image; we have already consumed them, so overwriting is fine. */
	if (end > ram_end) {
		put_str(&l, "FREESTANDING ERROR mem=");
		put_u64(&l, o.mem_mib);
		put_str(&l, " does not fit: RAM ends at ");
		put_hex(&l, ram_end);
		line_send(&l);
		finish(1);
	}
	range_base = (uint8_t *)(uintptr_t)start;
	range_pages = (end - start) / PAGE_SIZE;

	put_str(&l, "FREESTANDING UP mem=");
	put_u64(&l, o.mem_mib);
	put_str(&l, " passes=");
	put_u64(&l, o.passes);
	put_str(&l, " hb=");
	put_u64(&l, o.hb);
	put_str(&l, " base=");
	put_hex(&l, start);
	put_str(&l, " pages=");
	put_u64(&l, range_pages);
	line_send(&l);

	/* Pass 0 writes generation 0; pass P verifies P-1 and writes P. */
	write_gen(0);
	for (gen = 1; o.passes == 0 || gen <= o.passes; gen++) {
		bad = verify_gen(gen - 1);
		if (bad)
			finish(1);
		write_gen(gen);
		if (o.corrupt_set && gen == o.corrupt && range_pages) {
			/* Torn + stale: only the last word goes back one generation,
			 * as if a dirty page had been missed mid-copy. */
			*last_word(range_pages / 2) = stamp(range_pages / 2, gen - 1);
		}
		if (o.hb && gen % o.hb == 0) {
			put_str(&l, "HEARTBEAT gen=");
			put_u64(&l, gen);
			line_send(&l);
		}
	}
	gen = o.passes;
	bad = verify_gen(gen);
	if (bad)
		finish(1);
	put_str(&l, "VERIFY OK gen=");
	put_u64(&l, gen);
	line_send(&l);
	finish(0);
}
