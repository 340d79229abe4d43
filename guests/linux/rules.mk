# Linux test guest: static test programs + busybox initramfs for Debian's kernel
# (cached by tests/lab/kernel.sh via `make deps`). See guests/linux/README.md.
LG_DIR    := guests/linux
LG_OUT    := $(BUILD)/guests/linux
LG_CC     ?= gcc
LG_CFLAGS := -Wall -Wextra -Werror -O2 -static -std=gnu11 -D_GNU_SOURCE
LG_PROGS  := $(LG_OUT)/dirtier $(LG_OUT)/echosrv $(LG_OUT)/diskcheck $(LG_OUT)/blkperf

$(LG_PROGS): $(LG_OUT)/%: $(LG_DIR)/%.c $(LG_DIR)/rules.mk
	@mkdir -p $(dir $@)
	$(LG_CC) $(LG_CFLAGS) -o $@ $< -lpthread

$(LG_OUT)/initramfs.cpio.gz: $(LG_PROGS) $(LG_DIR)/init $(LG_DIR)/mkinitramfs.sh tests/lab/modules.sh
	$(LG_DIR)/mkinitramfs.sh $@ $(LG_OUT)

GUEST_TARGETS += $(LG_PROGS) $(LG_OUT)/initramfs.cpio.gz
