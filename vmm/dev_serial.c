/* 8250/16550A UART at COM1 (0x3f8, IRQ 4).
 *
 * Input (--console SOCKET): a thread of its own accepts one connection at a
 * time on a Unix socket and feeds its bytes into a 256-byte receive FIFO
 * under dev->lock (the lock the vCPU handlers hold); RBR pops it, LSR.DR
 * and a receive-data interrupt (IER.RDI, IIR 0x04, above THRI) say it is
 * non-empty. The thread waits while the FIFO is full (no byte dropped).
 * Pending input is not part of the saved state (lost on migration).
 *
 * Transmission is instantaneous: THR is always empty, so LSR reads
 * THRE|TEMT and a THR-empty interrupt is pending whenever the guest enables
 * it (IER.THRI) until it reads IIR or writes THR again - the 8250 rules
 * Linux's driver relies on. The IRQ line is gated by MCR.OUT2 as on a PC. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/vcursor.h"
#include "lib/vmstate.h"
#include "vmm/device.h"
#include "vmm/ioport.h"
#include "vmm/vm.h"

#define COM1_BASE	0x3f8
#define COM1_IRQ	4

#define UART_RX		0	/* DLAB=0: RBR (read) / THR (write) */
#define UART_IER	1	/* DLAB=0 */
#define UART_IIR	2	/* read */
#define UART_FCR	2	/* write */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define IER_RDI		0x01
#define IER_THRI	0x02
#define IIR_NO_INT	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_FIFO	0xc0	/* FIFOs enabled (16550A) */
#define FCR_FIFO_EN	0x01
#define LCR_DLAB	0x80
#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

struct serial {
	int out_fd;
	bool own_fd;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thri_pending;	/* THR-empty interrupt latched */
	int irq_level;		/* last level sent to the irqchip */
	/* input (--console): FIFO guarded by dev->lock */
	uint8_t rx[256];
	unsigned rx_head, rx_len;
	int lfd, cfd;		/* listening / current console connection, -1 if none */
	volatile int stop;
	bool have_thread;
	pthread_t thread;
	struct device *dev;
};

static void serial_write_out(struct serial *s, uint8_t c)
{
	/* Console output is best effort: a closed stdout must not stop the VM. */
	while (write(s->out_fd, &c, 1) < 0 && errno == EINTR)
		;
}

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_FIFO_EN) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_len)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thri_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

static void serial_update_irq(struct device *dev)
{
	struct serial *s = dev->priv;
	int level = !(serial_iir(s) & IIR_NO_INT) && (s->mcr & MCR_OUT2);

	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(dev->vm, COM1_IRQ, level);
	}
}

static uint8_t serial_msr(const struct serial *s)
{
	if (s->mcr & MCR_LOOP)	/* loopback: outputs wired to inputs */
		return (uint8_t)(((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
				 ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
				 ((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
				 ((s->mcr & MCR_OUT2) ? MSR_DCD : 0));
	return MSR_DCD | MSR_DSR | MSR_CTS;
}

static void serial_pio(struct device *dev, uint16_t port, bool is_write, uint32_t *data, int size)
{
	struct serial *s = dev->priv;
	int reg = port - COM1_BASE;
	uint8_t v = (uint8_t)*data;
	bool dlab = s->lcr & LCR_DLAB;

	(void)size;	/* 8-bit registers; wider accesses use the low byte */
	if (is_write) {
		switch (reg) {
		case UART_RX:
			if (dlab) {
				s->dll = v;
			} else {
				if (!(s->mcr & MCR_LOOP))
					serial_write_out(s, v);
				s->thri_pending = true;	/* sent at once */
			}
			break;
		case UART_IER:
			if (dlab) {
				s->dlm = v;
			} else {
				/* Enabling THRI with THR empty raises it at once. */
				if (!(s->ier & IER_THRI) && (v & IER_THRI))
					s->thri_pending = true;
				s->ier = v & 0x0f;
			}
			break;
		case UART_FCR:
			s->fcr = v & (FCR_FIFO_EN | 0xc0);
			break;
		case UART_LCR:
			s->lcr = v;
			break;
		case UART_MCR:
			s->mcr = v & 0x1f;
			break;
		case UART_SCR:
			s->scr = v;
			break;
		default:	/* LSR, MSR: read-only */
			break;
		}
	} else {
		switch (reg) {
		case UART_RX:
			if (dlab) {
				*data = s->dll;
			} else if (s->rx_len) {
				*data = s->rx[s->rx_head];
				s->rx_head = (s->rx_head + 1) % sizeof(s->rx);
				s->rx_len--;
			} else {
				*data = 0;
			}
			break;
		case UART_IER:
			*data = dlab ? s->dlm : s->ier;
			break;
		case UART_IIR:
			*data = serial_iir(s);
			/* Reading IIR acknowledges a THR-empty interrupt. */
			if ((*data & 0x0f) == IIR_THRI)
				s->thri_pending = false;
			break;
		case UART_LCR:
			*data = s->lcr;
			break;
		case UART_MCR:
			*data = s->mcr;
			break;
		case UART_LSR:
			*data = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
			break;
		case UART_MSR:
			*data = serial_msr(s);
			break;
		case UART_SCR:
			*data = s->scr;
			break;
		}
	}
	serial_update_irq(dev);
}

/* Console input thread: one client at a time; its bytes go into the FIFO. */
static void *serial_console_thread(void *arg)
{
	struct serial *s = arg;
	struct device *dev = s->dev;
	uint8_t buf[64];

	pthread_setname_np(pthread_self(), "vmm-console");
	while (!s->stop) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;	/* shut down by serial_exit */
		}
		pthread_mutex_lock(&dev->lock);
		s->cfd = fd;
		pthread_mutex_unlock(&dev->lock);
		ssize_t n;
		while (!s->stop && (n = read(fd, buf, sizeof(buf))) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			for (ssize_t i = 0; i < n && !s->stop;) {
				pthread_mutex_lock(&dev->lock);
				while (i < n && s->rx_len < sizeof(s->rx)) {
					s->rx[(s->rx_head + s->rx_len) % sizeof(s->rx)] = buf[i++];
					s->rx_len++;
				}
				serial_update_irq(dev);
				pthread_mutex_unlock(&dev->lock);
				if (i < n)	/* FIFO full: let the guest drain it */
					poll(NULL, 0, 5);
			}
		}
		pthread_mutex_lock(&dev->lock);
		s->cfd = -1;
		pthread_mutex_unlock(&dev->lock);
		close(fd);
	}
	return NULL;
}

static int serial_console_start(struct serial *s, const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, "--console %s: path too long", path);
	strcpy(sa.sun_path, path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return err_errno(e, errno, "--console: socket");
	unlink(path);	/* a stale socket of an earlier vmm */
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(s->lfd, 4) < 0) {
		err_errno(e, errno, "--console %s", path);
		close(s->lfd);
		s->lfd = -1;
		return -1;
	}
	if (pthread_create(&s->thread, NULL, serial_console_thread, s) != 0) {
		close(s->lfd);
		s->lfd = -1;
		unlink(path);
		return err_set(e, "--console: cannot start its thread");
	}
	s->have_thread = true;
	return 0;
}

static int serial_realize(struct device *dev, struct err *e)
{
	const char *out = dev->vm->cfg.serial;
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return err_set(e, "out of memory");
	s->lfd = s->cfd = -1;
	s->dev = dev;
	if (!out || !strcmp(out, "stdio")) {
		s->out_fd = STDOUT_FILENO;
	} else {
		s->out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->out_fd < 0) {
			err_errno(e, errno, "--serial %s", out);
			free(s);
			return -1;
		}
		s->own_fd = true;
	}
	dev->priv = s;
	if (ioport_register(&dev->vm->pio, COM1_BASE, 8, dev, e) < 0) {
		if (s->own_fd)
			close(s->out_fd);
		free(s);
		dev->priv = NULL;
		return -1;
	}
	if (dev->vm->cfg.console && serial_console_start(s, dev->vm->cfg.console, e) < 0) {
		ioport_unregister_dev(&dev->vm->pio, dev);
		if (s->own_fd)
			close(s->out_fd);
		free(s);
		dev->priv = NULL;
		return -1;
	}
	return 0;
}

static void serial_reset(struct device *dev)
{
	struct serial *s = dev->priv;

	s->ier = s->lcr = s->mcr = s->scr = s->fcr = s->dlm = 0;
	s->dll = 12;	/* 9600 baud */
	s->thri_pending = false;
	if (s->irq_level) {
		s->irq_level = 0;
		vm_irq_line(dev->vm, COM1_IRQ, 0);
	}
}

/* State payload v1: ier lcr mcr scr fcr dll dlm thri_pending irq_level (u8 each). */
static int serial_save(struct device *dev, struct vmstate_writer *w, struct err *e)
{
	struct serial *s = dev->priv;
	uint8_t b[9] = { s->ier, s->lcr, s->mcr, s->scr, s->fcr, s->dll, s->dlm,
			 s->thri_pending, (uint8_t)s->irq_level };

	return vmstate_put(w, b, sizeof(b), e);
}

static int serial_load(struct device *dev, const void *payload, size_t len, uint16_t version,
		       struct err *e)
{
	struct serial *s = dev->priv;
	const uint8_t *b = payload;

	if (version != 1 || len != 9 || b[7] > 1 || b[8] > 1)
		return err_set(e, "bad state (version %u, %zu bytes)", version, len);
	s->ier = b[0] & 0x0f;
	s->lcr = b[1];
	s->mcr = b[2] & 0x1f;
	s->scr = b[3];
	s->fcr = b[4];
	s->dll = b[5];
	s->dlm = b[6];
	s->thri_pending = b[7];
	/* The irqchip state (restored first) already has the line level. */
	s->irq_level = b[8];
	return 0;
}

static void serial_exit(struct device *dev)
{
	struct serial *s = dev->priv;

	if (!s)
		return;
	if (s->have_thread) {
		/* shutdown() wakes the thread's accept()/read() */
		s->stop = 1;
		shutdown(s->lfd, SHUT_RDWR);
		pthread_mutex_lock(&dev->lock);
		if (s->cfd >= 0)
			shutdown(s->cfd, SHUT_RDWR);
		pthread_mutex_unlock(&dev->lock);
		pthread_join(s->thread, NULL);
		close(s->lfd);
		unlink(dev->vm->cfg.console);
	}
	if (s->own_fd)
		close(s->out_fd);
	free(s);
	dev->priv = NULL;
}

const struct device_ops serial_ops = {
	.name = "serial",
	.realize = serial_realize,
	.reset = serial_reset,
	.pio = serial_pio,
	.save = serial_save,
	.load = serial_load,
	.exit = serial_exit,
};
