/* vmm: one process per VM.
 *
 *   vmm run --name NAME --kernel FILE [--initrd FILE] [--cmdline STR]
 *           --mem SIZE --cpus N [--serial stdio|PATH] [--control SOCKET]
 *   vmm run --restore DIR [--control SOCKET] [--serial ...] [device options]
 *   vmm run --incoming HOST:PORT --secret-file F [the source's options]
 *   vmm ctl SOCKET COMMAND ...        (vmm/control/README.md)
 *
 * Exit status (how the guest ended):
 *   0  guest success: wrote 0 to port 0xf4, or powered off
 *   1  guest-reported failure: wrote a non-zero byte to port 0xf4
 *   2  usage error (unknown option, bad value, unreadable kernel/initrd)
 *   3  internal error: KVM/VMM failure, or the VM could not be created
 *   4  guest reboot: i8042 reset, triple fault, KVM reset event */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/config.h"
#include "migrate/fault.h"
#include "vmm/control/client.h"
#include "vmm/ramhash.h"
#include "vmm/session.h"
#include "vmm/vm.h"

static const char usage_text[] =
	"usage: vmm run --name NAME --kernel FILE [--initrd FILE] [--cmdline STR]\n"
	"               --mem SIZE --cpus N [--serial stdio|PATH] [--control SOCKET]\n"
	"               [--disk PATH[,ro]]... [--net tap=IFNAME[,mac=MAC]]... [--rng]\n"
	"               [--balloon]\n"
	"       vmm run --restore DIR [--control SOCKET] [--serial stdio|PATH]\n"
	"       vmm run --incoming HOST:PORT --secret-file F [--mem/--cpus/device options\n"
	"               as on the source; --kernel is accepted and not loaded]\n"
	"       vmm ctl SOCKET status|pause|resume|quit|snapshot DIR ... (vmm ctl --help)\n"
	"  SIZE: number with K/M/G/T suffix (bare number = MiB)\n"
	"  --disk PATH[,ro]   virtio-blk on a raw image or block device (repeatable)\n"
	"  --net tap=IFNAME[,mac=MAC]  virtio-net on an existing or new tap (repeatable)\n"
	"  --rng              virtio-rng (entropy from the host's getrandom)\n"
	"  --balloon          virtio-balloon with free page reporting: freed guest RAM\n"
	"                     goes back to the host (experimental, off by default)\n"
	"  --console SOCKET   Unix socket whose bytes become the serial port's input\n"
	"  --secret-file F    cluster secret for live migration (mode 0600)\n"
	"  --incoming HOST:PORT  wait for one live migration, then run the guest\n"
	"  --debug-ram-hash[=DIR]  (tests) log a hash of guest RAM when a migration\n"
	"                     pauses the source and before the destination resumes\n"
	"                     (DIR: also per-page hashes in DIR/ram.WHEN.PID)\n"
	"  --mig-fault F      (tests, with --incoming) inject fault F: stall-switchover,\n"
	"                     lose-go (migrate/README.md)\n"
	"exit status: 0 guest success/poweroff, 1 guest-reported failure, 2 usage,\n"
	"             3 internal error, 4 guest reboot\n";

static void __attribute__((noreturn)) usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "vmm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see 'vmm --help')\n");
	exit(VMM_EXIT_USAGE);
}

static const char *restore_dir, *control_path;	/* --restore, --control */
static const char *incoming, *secret_file;	/* --incoming, --secret-file */

static void parse_run(int argc, char **argv, struct vm_config *c)
{
	enum { O_NAME = 1, O_KERNEL, O_INITRD, O_CMDLINE, O_MEM, O_CPUS, O_SERIAL, O_HELP,
	       O_RESTORE, O_CONTROL, O_DISK, O_NET, O_RNG, O_INCOMING, O_SECRET, O_CONSOLE,
	       O_RAMHASH, O_MIGFAULT, O_BALLOON, O_NO_BALLOON };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "serial", required_argument, NULL, O_SERIAL },
		{ "console", required_argument, NULL, O_CONSOLE },
		{ "help", no_argument, NULL, O_HELP },
		{ "restore", required_argument, NULL, O_RESTORE },
		{ "control", required_argument, NULL, O_CONTROL },
		{ "disk", required_argument, NULL, O_DISK },
		{ "net", required_argument, NULL, O_NET },
		{ "rng", no_argument, NULL, O_RNG },
		{ "balloon", no_argument, NULL, O_BALLOON },
		{ "no-balloon", no_argument, NULL, O_NO_BALLOON },
		{ "incoming", required_argument, NULL, O_INCOMING },
		{ "secret-file", required_argument, NULL, O_SECRET },
		{ "debug-ram-hash", optional_argument, NULL, O_RAMHASH },
		{ "mig-fault", required_argument, NULL, O_MIGFAULT },
		{ NULL, 0, NULL, 0 },
	};
	struct err e = { { 0 } };
	int o, mig_fault = 0;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_NAME: c->name = optarg; break;
		case O_KERNEL: c->kernel = optarg; break;
		case O_INITRD: c->initrd = optarg; break;
		case O_CMDLINE: c->cmdline = optarg; break;
		case O_SERIAL: c->serial = optarg; break;
		case O_CONSOLE: c->console = optarg; break;
		case O_RESTORE: restore_dir = optarg; break;
		case O_CONTROL: control_path = optarg; break;
		case O_DISK:
			if (c->ndisks == VM_MAX_DISKS)
				usage_error("--disk: at most %s disks", "8");
			if (config_parse_disk(optarg, &c->disks[c->ndisks], &e) < 0)
				usage_error("--disk: %s", e.msg);
			if (access(c->disks[c->ndisks].path,
				   c->disks[c->ndisks].readonly ? R_OK : R_OK | W_OK) < 0) {
				snprintf(e.msg, sizeof(e.msg), "%s: %s", c->disks[c->ndisks].path,
					 strerror(errno));
				usage_error("--disk %s", e.msg);
			}
			c->ndisks++;
			break;
		case O_NET:
			if (c->nnets == VM_MAX_NICS)
				usage_error("--net: at most %s NICs", "4");
			if (config_parse_net(optarg, &c->nets[c->nnets], &e) < 0)
				usage_error("--net: %s", e.msg);
			c->nnets++;
			break;
		case O_RNG: c->rng = true; break;
		case O_BALLOON: c->balloon = true; break;
		case O_NO_BALLOON: c->balloon = false; break;
		case O_INCOMING: incoming = optarg; break;
		case O_SECRET: secret_file = optarg; break;
		case O_RAMHASH: ramhash_enable(optarg); break;
		case O_MIGFAULT:
			if (mig_fault_set(optarg, &e) < 0)
				usage_error("--mig-fault: %s", e.msg);
			mig_fault = 1;
			break;
		case O_MEM:
			if (config_parse_size(optarg, &c->mem_size, &e) < 0)
				usage_error("--mem: %s", e.msg);
			break;
		case O_CPUS:
			if (config_parse_int(optarg, 1, VM_MAX_CPUS, &c->ncpus, &e) < 0)
				usage_error("--cpus: %s", e.msg);
			break;
		case O_HELP:
			fputs(usage_text, stdout);
			exit(0);
		case ':':
			usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (secret_file && access(secret_file, R_OK) < 0)
		usage_error("--secret-file: cannot read '%s'", secret_file);
	if (mig_fault && !incoming)
		usage_error("%s", "--mig-fault needs --incoming");
	if (incoming) {		/* RAM and state come from the source */
		if (restore_dir)
			usage_error("%s", "--incoming and --restore exclude each other");
		if (!secret_file)
			usage_error("%s", "--incoming needs --secret-file");
		if (!strchr(incoming, ':'))
			usage_error("--incoming: '%s' is not HOST:PORT", incoming);
		if (!c->kernel)
			c->kernel = "";
		if (config_check(c, &e) < 0)
			usage_error("%s", e.msg);
		c->kernel = NULL;
		return;
	}
	if (restore_dir) {	/* the snapshot decides name, mem, cpus; no kernel */
		if (c->kernel)
			usage_error("%s", "--restore and --kernel exclude each other");
		return;
	}
	if (config_check(c, &e) < 0)
		usage_error("%s", e.msg);
	if (access(c->kernel, R_OK) < 0)
		usage_error("--kernel: cannot read '%s'", c->kernel);
	if (c->initrd && access(c->initrd, R_OK) < 0)
		usage_error("--initrd: cannot read '%s'", c->initrd);
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	static struct vm vm;
	int status;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? VMM_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "ctl"))
		return vmm_ctl_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "run"))
		usage_error("unknown command '%s'", argv[1]);
	config_defaults(&cfg);
	parse_run(argc - 1, argv + 1, &cfg);

	status = vmm_session_main(&vm, &cfg, restore_dir, control_path, incoming, secret_file);
	if (status)
		return status;
	status = vm_exit_status(&vm);
	switch (vm.stop_reason) {
	case VM_STOP_SUCCESS:
		break;
	case VM_STOP_GUEST_FAIL:
		fprintf(stderr, "vmm: %s: guest reported failure (exit code %d)\n", cfg.name, vm.stop_code);
		break;
	case VM_STOP_POWEROFF:
		fprintf(stderr, "vmm: %s: guest powered off (%s)\n", cfg.name, vm.stop_err.msg);
		break;
	case VM_STOP_REBOOT:
		fprintf(stderr, "vmm: %s: guest reboot (%s)\n", cfg.name, vm.stop_err.msg);
		break;
	default:
		fprintf(stderr, "vmm: %s: %s\n", cfg.name, vm.stop_err.msg);
		break;
	}
	vm_destroy(&vm);
	return status;
}
