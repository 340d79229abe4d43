/* Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit entry:
 * the protected-mode kernel goes to LAYOUT_KERNEL, the zero page (struct
 * boot_params, with the image's setup header copied in) to
 * LAYOUT_BOOT_PARAMS, and the boot vCPU starts in long mode at
 * code32_start + 0x200 with RSI = &boot_params, identity-mapped page tables
 * and a GDT with __BOOT_CS = 0x10 / __BOOT_DS = 0x18 (see layout.h). */
#include <stdlib.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/boot.h"
#include "vmm/e820.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"
#include "vmm/regs.h"
#include "vmm/vm.h"

/* Offsets in the image file == offsets in boot_params. */
#define BP_ACPI_RSDP_ADDR	0x070
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_EXT_CMD_LINE_PTR	0x0c8
#define BP_E820_ENTRIES		0x1e8
#define HDR_START		0x1f1
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200	/* 2-byte jump; byte 0x201 = header length - 2 */
#define HDR_MAGIC		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_CODE32_START	0x214
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_HEAP_END_PTR	0x224
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define BP_E820_TABLE		0x2d0
#define BP_E820_MAX		128
#define BP_SIZE			4096

#define LOADED_HIGH		0x01
#define CAN_USE_HEAP		0x80
#define XLF_KERNEL_64		0x01
#define MIN_VERSION		0x020c	/* xloadflags: 64-bit entry is known */

static uint32_t rd16(const uint8_t *p, size_t off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8;
}

static uint32_t rd32(const uint8_t *p, size_t off)
{
	return rd16(p, off) | rd16(p, off + 2) << 16;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	return rd32(p, off) | (uint64_t)rd32(p, off + 4) << 32;
}

static void wr32(uint8_t *p, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

int bzimage_probe(const uint8_t *img, size_t len)
{
	return len >= 0x270 && !memcmp(img + HDR_MAGIC, "HdrS", 4) &&
	       rd16(img, HDR_BOOT_FLAG) == 0xaa55;
}

/* Validates the header; returns the setup size (offset of the PM kernel). */
int bzimage_check(const uint8_t *img, size_t len, size_t *setup_size, struct err *e)
{
	uint32_t version, sects;
	size_t hdr_end;

	if (!bzimage_probe(img, len))
		return err_set(e, "no Linux setup header");
	version = rd16(img, HDR_VERSION);
	if (version < MIN_VERSION)
		return err_set(e, "boot protocol %u.%02u too old (need 2.12 for 64-bit entry)",
			       version >> 8, version & 0xff);
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
		return err_set(e, "not a bzImage (zImage loads low)");
	if (!(rd16(img, HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return err_set(e, "kernel has no 64-bit entry point");
	hdr_end = 0x202 + img[HDR_JUMP + 1];
	if (hdr_end > 0x1000 || hdr_end < HDR_INIT_SIZE + 4)
		return err_set(e, "bad setup header length");
	sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	*setup_size = (size_t)(sects + 1) * 512;
	if (*setup_size >= len)
		return err_set(e, "truncated: setup (%zu bytes) covers the whole file", *setup_size);
	return 0;
}

static int load_initrd(struct vm *vm, uint8_t *bp, uint64_t kernel_end, struct err *e)
{
	uint64_t max = rd32(bp, HDR_INITRD_ADDR_MAX);	/* highest byte address */
	uint64_t top = mem_low_end(&vm->mem);
	uint64_t addr;
	uint8_t *data;
	size_t len;

	if (!vm->cfg.initrd)
		return 0;
	if (boot_read_file(vm->cfg.initrd, &data, &len, e) < 0)
		return err_prefix(e, "initrd");
	if (top > max + 1)
		top = max + 1;
	/* Highest page-aligned spot below both RAM end and initrd_addr_max,
	 * clear of the kernel's decompression area. */
	if (len > top || ((top - len) & ~0xfffULL) < kernel_end) {
		free(data);
		return err_set(e, "initrd (%zu bytes) does not fit below 0x%llx above the kernel "
			       "(0x%llx); raise --mem", len, (unsigned long long)top,
			       (unsigned long long)kernel_end);
	}
	addr = (top - len) & ~0xfffULL;
	memcpy(mem_gpa_to_hva(&vm->mem, addr, len), data, len);
	free(data);
	wr32(bp, HDR_RAMDISK_IMAGE, (uint32_t)addr);
	wr32(bp, HDR_RAMDISK_SIZE, (uint32_t)len);
	wr32(bp, BP_EXT_RAMDISK_IMAGE, 0);
	wr32(bp, BP_EXT_RAMDISK_SIZE, 0);
	return 0;
}

int bzimage_load(struct vm *vm, const uint8_t *img, size_t len, struct err *e)
{
	uint8_t bp[BP_SIZE];
	struct e820_ent map[BP_E820_MAX];
	const char *cmd = vm->cfg.cmdline;
	size_t setup, hdr_end, cmdlen = strlen(cmd);
	uint64_t kernel_size, pref, kernel_end, rsdp;
	struct boot_entry b;
	int n;

	if (bzimage_check(img, len, &setup, e) < 0)
		return err_prefix(e, "bzImage %s", vm->cfg.kernel);
	kernel_size = len - setup;

	memset(bp, 0, sizeof(bp));
	hdr_end = 0x202 + img[HDR_JUMP + 1];
	memcpy(bp + HDR_START, img + HDR_START, hdr_end - HDR_START);
	bp[HDR_TYPE_OF_LOADER] = 0xff;	/* undefined/unregistered loader */
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	bp[HDR_HEAP_END_PTR] = 0x00;
	bp[HDR_HEAP_END_PTR + 1] = 0xfe;	/* 0xfe00: unused by 64-bit entry */
	wr32(bp, HDR_CODE32_START, (uint32_t)LAYOUT_KERNEL);

	if (cmdlen > rd32(bp, HDR_CMDLINE_SIZE))
		return err_set(e, "bzImage: command line is %zu bytes, kernel accepts %u",
			       cmdlen, rd32(bp, HDR_CMDLINE_SIZE));
	if (mem_write(&vm->mem, LAYOUT_CMDLINE, cmd, cmdlen + 1, "command line", e) < 0)
		return err_prefix(e, "bzImage");
	wr32(bp, HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);

	if (mem_write(&vm->mem, LAYOUT_KERNEL, img + setup, kernel_size, "kernel", e) < 0)
		return err_prefix(e, "bzImage (raise --mem)");
	/* The kernel decompresses to pref_address (relocatable kernels run
	 * there) and needs init_size bytes from that point. */
	pref = rd64(img, HDR_PREF_ADDRESS);
	kernel_end = (pref > LAYOUT_KERNEL ? pref : LAYOUT_KERNEL) + rd32(img, HDR_INIT_SIZE);
	if (LAYOUT_KERNEL + kernel_size > kernel_end)
		kernel_end = LAYOUT_KERNEL + kernel_size;
	if (kernel_end > mem_low_end(&vm->mem))
		return err_set(e, "bzImage: kernel needs RAM up to 0x%llx; raise --mem",
			       (unsigned long long)kernel_end);
	if (load_initrd(vm, bp, kernel_end, e) < 0)
		return -1;

	n = e820_build(&vm->mem, map, BP_E820_MAX);
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		uint8_t *ent = bp + BP_E820_TABLE + (size_t)i * 20;

		memcpy(ent, &map[i].addr, 8);
		memcpy(ent + 8, &map[i].size, 8);
		memcpy(ent + 16, &map[i].type, 4);
	}
	if (acpi_write(&vm->mem, vm->ncpus, &rsdp, e) < 0)
		return err_prefix(e, "bzImage");
	memcpy(bp + BP_ACPI_RSDP_ADDR, &rsdp, 8);	/* boot protocol 2.14+ */
	if (mem_write(&vm->mem, LAYOUT_BOOT_PARAMS, bp, sizeof(bp), "boot_params", e) < 0 ||
	    regs_write_boot_tables(&vm->mem, BOOT_LM64, e) < 0 ||
	    mptable_write(&vm->mem, vm->ncpus, e) < 0)
		return err_prefix(e, "bzImage");

	b = (struct boot_entry){ .mode = BOOT_LM64, .rip = LAYOUT_KERNEL + 0x200,
				 .rsi = LAYOUT_BOOT_PARAMS };
	if (regs_setup_boot(&vm->vcpus[0], &b, e) < 0)
		return err_prefix(e, "bzImage: vcpu 0");
	return 0;
}
