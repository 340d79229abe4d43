/* agentd — per-host VM daemon.
 *
 *   agentd --socket PATH --state-dir DIR [--listen ADDR:PORT]
 *          [--secret-file F] [--vmm PATH] [--host-name NAME]
 *
 * Under systemd (Type=notify): READY=1 once serving, STATUS= lines,
 * WATCHDOG=1 at half WatchdogSec, sockets from agentd.socket (a Unix stream
 * socket = local API, a TCP one = peer listener) override --socket/--listen.
 * Exit status: 0 after SIGTERM/SIGINT, 1 startup failure, 2 usage. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentd/agent.h"

static const char usage[] =
	"usage: agentd --socket PATH --state-dir DIR [--listen ADDR:PORT] [--secret-file F]\n"
	"              [--vmm PATH] [--host-name NAME]\n"
	"  --socket PATH      local API socket for vmctl (mode 0600; systemd may pass it)\n"
	"  --state-dir DIR    VM records (NAME.json), control sockets, serial logs\n"
	"  --listen ADDR:PORT peer listener for other agentds (needs --secret-file)\n"
	"  --secret-file F    cluster secret (mode 0600) for peer and migration auth\n"
	"  --vmm PATH         vmm binary (default: vmm next to agentd, else /usr/local/bin/vmm)\n"
	"  --host-name NAME   how this host is shown in vmctl list (default: hostname)\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "vmm", required_argument, NULL, 'v' },
		{ "host-name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct agentd_opts o = { 0 };
	static char vmm[PATH_MAX];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 's': o.socket_path = optarg; break;
		case 'd': o.state_dir = optarg; break;
		case 'l': o.listen = optarg; break;
		case 'k': o.secret_file = optarg; break;
		case 'v': o.vmm_path = optarg; break;
		case 'n': o.host_name = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		case ':':
			fprintf(stderr, "agentd: option '%s' needs an argument\n%s", argv[optind - 1], usage);
			return 2;
		default:
			fprintf(stderr, "agentd: unknown option '%s'\n%s", argv[optind - 1], usage);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "agentd: unexpected argument '%s'\n%s", argv[optind], usage);
		return 2;
	}
	if (!o.state_dir) {
		fprintf(stderr, "agentd: --state-dir is required\n%s", usage);
		return 2;
	}
	if (o.listen && !o.secret_file) {
		fprintf(stderr, "agentd: --listen needs --secret-file (peers must authenticate)\n");
		return 2;
	}
	if (!o.vmm_path) {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = 0;
			char *slash = strrchr(self, '/');
			if (slash) {
				*slash = 0;
				snprintf(vmm, sizeof(vmm), "%.*s/vmm", (int)(sizeof(vmm) - 5), self);
				if (access(vmm, X_OK) == 0)
					o.vmm_path = vmm;
			}
		}
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	return agentd_main(&o) ? 1 : 0;
}
