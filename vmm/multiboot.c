/* Multiboot v1 loader (ELF32 or a.out-kludge images).
 * Entry state per the spec: 32-bit protected mode, flat 4 GiB segments,
 * paging off, IF=0, EAX=0x2BADB002, EBX=physical address of the info. */
#include <elf.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/boot.h"
#include "vmm/e820.h"
#include "vmm/layout.h"
#include "vmm/regs.h"
#include "vmm/vm.h"

#define MB_HEADER_MAGIC		0x1BADB002u
#define MB_BOOT_MAGIC		0x2BADB002u
#define MB_SEARCH		8192
#define MB_FLAG_PAGE_ALIGN	(1u << 0)
#define MB_FLAG_MEMINFO		(1u << 1)
#define MB_FLAG_VIDEO		(1u << 2)
#define MB_FLAG_AOUT_KLUDGE	(1u << 16)

#define MBI_MEM		(1u << 0)
#define MBI_CMDLINE	(1u << 2)
#define MBI_MMAP	(1u << 6)
#define MBI_LOADER_NAME	(1u << 9)

#define MBI_ADDR	LAYOUT_BOOT_PARAMS
#define MBI_MMAP_ADDR	(LAYOUT_BOOT_PARAMS + 0x100)
#define MBI_NAME_ADDR	(LAYOUT_BOOT_PARAMS + 0x400)

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
};

struct mb_mmap_ent {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/* Offset of a valid header in the first 8 KiB, or -1. */
static long find_header(const uint8_t *img, size_t len, struct mb_header *h)
{
	size_t lim = len < MB_SEARCH ? len : MB_SEARCH;

	for (size_t off = 0; off + 12 <= lim; off += 4) {
		memset(h, 0, sizeof(*h));
		memcpy(h, img + off, 12);
		if (h->magic != MB_HEADER_MAGIC || h->magic + h->flags + h->checksum != 0)
			continue;
		memcpy(h, img + off, off + sizeof(*h) <= len ? sizeof(*h) : 12);
		return (long)off;
	}
	return -1;
}

int multiboot_probe(const uint8_t *img, size_t len)
{
	struct mb_header h;

	return find_header(img, len, &h) >= 0;
}

/* Copy file bytes and zero the rest of [paddr, paddr+memsz). */
static int load_segment(struct vm *vm, uint64_t paddr, const uint8_t *src, uint64_t filesz,
			uint64_t memsz, struct err *e)
{
	uint8_t *dst;

	if (memsz < filesz)
		return err_set(e, "segment memsz < filesz");
	if (paddr < LAYOUT_BIOS_END)
		return err_set(e, "segment at 0x%llx is below 1 MiB", (unsigned long long)paddr);
	dst = mem_gpa_to_hva(&vm->mem, paddr, memsz);
	if (!dst)
		return err_set(e, "segment 0x%llx+0x%llx does not fit in guest RAM (--mem)",
			       (unsigned long long)paddr, (unsigned long long)memsz);
	memcpy(dst, src, filesz);
	memset(dst + filesz, 0, memsz - filesz);
	return 0;
}

static int load_aout(struct vm *vm, const uint8_t *img, size_t len, long hoff,
		     const struct mb_header *h, uint32_t *entry, struct err *e)
{
	/* header_addr corresponds to file offset hoff. */
	uint64_t file_start = (uint64_t)hoff - (h->header_addr - h->load_addr);
	uint64_t load_end = h->load_end_addr ? h->load_end_addr : h->load_addr + (len - file_start);
	uint64_t bss_end = h->bss_end_addr ? h->bss_end_addr : load_end;

	if (h->header_addr < h->load_addr || (uint64_t)hoff < h->header_addr - h->load_addr ||
	    load_end < h->load_addr || bss_end < load_end ||
	    file_start + (load_end - h->load_addr) > len)
		return err_set(e, "inconsistent a.out kludge addresses");
	*entry = h->entry_addr;
	return load_segment(vm, h->load_addr, img + file_start, load_end - h->load_addr,
			    bss_end - h->load_addr, e);
}

static int load_elf32(struct vm *vm, const uint8_t *img, size_t len, uint32_t *entry,
		      struct err *e)
{
	Elf32_Ehdr eh;
	bool entry_ok = false;

	if (len < sizeof(eh))
		return err_set(e, "truncated ELF header");
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS32)
		return err_set(e, "not an ELF32 file (and no a.out kludge in the Multiboot header)");
	if (eh.e_phentsize != sizeof(Elf32_Phdr) || !eh.e_phnum ||
	    eh.e_phoff > len || (uint64_t)eh.e_phnum * sizeof(Elf32_Phdr) > len - eh.e_phoff)
		return err_set(e, "bad ELF program headers");
	*entry = eh.e_entry;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;

		memcpy(&ph, img + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
			return err_set(e, "ELF segment %d outside the file", i);
		if (load_segment(vm, ph.p_paddr, img + ph.p_offset, ph.p_filesz, ph.p_memsz, e) < 0)
			return err_prefix(e, "ELF segment %d", i);
		/* The entry is virtual; translate through its segment. */
		if (eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz) {
			*entry = eh.e_entry - ph.p_vaddr + ph.p_paddr;
			entry_ok = true;
		}
	}
	if (!entry_ok)
		return err_set(e, "ELF entry 0x%x is not inside a loaded segment", eh.e_entry);
	return 0;
}

static int write_info(struct vm *vm, struct err *e)
{
	struct e820_ent map[8];
	struct mb_mmap_ent mm[8];
	struct mb_info mbi;
	const char *cmd = vm->cfg.cmdline;
	static const char loader[] = "vmm";
	int n;

	memset(&mbi, 0, sizeof(mbi));
	mbi.flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER_NAME;
	mbi.mem_lower = (uint32_t)(LAYOUT_EBDA / 1024);
	/* mem_upper: contiguous KiB from 1 MiB up to the first hole. */
	mbi.mem_upper = (uint32_t)((mem_low_end(&vm->mem) - LAYOUT_BIOS_END) / 1024);
	mbi.cmdline = (uint32_t)LAYOUT_CMDLINE;
	n = e820_build(&vm->mem, map, 8);
	for (int i = 0; i < n; i++)
		mm[i] = (struct mb_mmap_ent){ 20, map[i].addr, map[i].size, map[i].type };
	mbi.mmap_addr = (uint32_t)MBI_MMAP_ADDR;
	mbi.mmap_length = (uint32_t)(n * (int)sizeof(mm[0]));
	mbi.boot_loader_name = (uint32_t)MBI_NAME_ADDR;
	if (mem_write(&vm->mem, LAYOUT_CMDLINE, cmd, strlen(cmd) + 1, "command line", e) < 0 ||
	    mem_write(&vm->mem, MBI_MMAP_ADDR, mm, mbi.mmap_length, "memory map", e) < 0 ||
	    mem_write(&vm->mem, MBI_NAME_ADDR, loader, sizeof(loader), "loader name", e) < 0 ||
	    mem_write(&vm->mem, MBI_ADDR, &mbi, sizeof(mbi), "multiboot info", e) < 0)
		return -1;
	return 0;
}

int multiboot_load(struct vm *vm, const uint8_t *img, size_t len, struct err *e)
{
	struct mb_header h;
	struct boot_entry b;
	uint32_t entry = 0;
	long hoff = find_header(img, len, &h);
	uint32_t unsupported = h.flags & 0xffffu & ~(MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO | MB_FLAG_VIDEO);

	if (hoff < 0)
		return err_set(e, "multiboot: no header");
	if (unsupported)
		return err_set(e, "multiboot: kernel requires unsupported features 0x%x", unsupported);
	if (vm->cfg.initrd)
		return err_set(e, "multiboot: --initrd (modules) is not supported");
	if ((h.flags & MB_FLAG_AOUT_KLUDGE ? load_aout(vm, img, len, hoff, &h, &entry, e)
					    : load_elf32(vm, img, len, &entry, e)) < 0)
		return err_prefix(e, "multiboot: %s", vm->cfg.kernel);
	if (write_info(vm, e) < 0 || regs_write_boot_tables(&vm->mem, BOOT_PM32, e) < 0)
		return err_prefix(e, "multiboot");
	b = (struct boot_entry){ .mode = BOOT_PM32, .rip = entry, .rax = MB_BOOT_MAGIC,
				 .rbx = MBI_ADDR };
	if (regs_setup_boot(&vm->vcpus[0], &b, e) < 0)
		return err_prefix(e, "multiboot: vcpu 0");
	return 0;
}
