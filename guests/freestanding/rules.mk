# Freestanding self-checking guest: Multiboot v1 ELF32 that switches itself to
# long mode. 64-bit objects are linked as elf64 and converted to elf32-i386
# (Multiboot loaders such as QEMU's -kernel refuse ELF64 files).
FS_DIR    := guests/freestanding
FS_OUT    := $(BUILD)/guests/freestanding
FS_CFLAGS := -m64 -ffreestanding -nostdlib -fno-pic -fno-pie -fno-stack-protector \
             -mno-red-zone -mno-sse -mno-mmx -mno-80387 -mcmodel=small -O2 -Wall -Wextra -Werror \
             -fno-asynchronous-unwind-tables -fcf-protection=none
FS_OBJS   := $(FS_OUT)/boot.o $(FS_OUT)/main.o

$(FS_OUT)/%.o: $(FS_DIR)/%.S
	@mkdir -p $(dir $@)
	$(CC) $(FS_CFLAGS) -c $< -o $@

$(FS_OUT)/%.o: $(FS_DIR)/%.c $(wildcard $(FS_DIR)/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(FS_CFLAGS) -c $< -o $@

$(FS_OUT)/guest64.elf: $(FS_OBJS) $(FS_DIR)/guest.ld
	$(CC) $(FS_CFLAGS) -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,max-page-size=4096 \
	    -T $(FS_DIR)/guest.ld -o $@ $(FS_OBJS)

$(FS_OUT)/guest.elf: $(FS_OUT)/guest64.elf
	objcopy -I elf64-x86-64 -O elf32-i386 $< $@

GUEST_TARGETS += $(FS_OUT)/guest.elf
