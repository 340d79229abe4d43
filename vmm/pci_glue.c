#include "vmm/pci_glue.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/vcursor.h"
#include "vmm/acpi_pci.h"
#include "vmm/dirty_log.h"
#include "vmm/ioport.h"
#include "vmm/layout.h"
#include "vmm/virtio/net.h"
#include "vmm/vm.h"

#define PAGE_SHIFT	12
#define TOKEN_STOP	(~0ULL)
#define TOKEN_TAP	0xff
#define TOKEN(idx, q)	((uint64_t)(idx) << 8 | (q))

/* ---- guest memory and dirty marking ---- */

static void glue_mark_dirty(void *opaque, uint64_t gpa, uint64_t len)
{
	struct pci_glue *g = opaque;
	struct vm *vm = g->vm;

	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct mem_region *r = &vm->mem.regions[i];
		uint64_t s, end;

		if (gpa >= r->gpa + r->size || gpa + len <= r->gpa)
			continue;
		s = gpa > r->gpa ? gpa : r->gpa;
		end = gpa + len < r->gpa + r->size ? gpa + len : r->gpa + r->size;
		for (uint64_t pg = (r->memfd_off + s - r->gpa) >> PAGE_SHIFT;
		     pg <= (r->memfd_off + end - 1 - r->gpa) >> PAGE_SHIFT; pg++)
			if (pg < vm->dma_dirty.nbits)
				bitmap_set_atomic(&vm->dma_dirty, pg);
	}
}

/* ---- I/O thread ---- */

static void *io_thread(void *arg)
{
	struct pci_glue *g = arg;
	struct epoll_event ev[16];

	pthread_setname_np(pthread_self(), "vmm-io");
	for (;;) {
		int n = epoll_wait(g->epfd, ev, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			vm_request_stop(g->vm, VM_STOP_ERROR, 0, "I/O thread: epoll_wait failed");
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint64_t t = ev[i].data.u64;
			struct vdev *v;
			unsigned q;

			if (t == TOKEN_STOP)
				return NULL;
			v = g->vdevs[t >> 8];
			q = t & 0xff;
			if (!v)
				continue;
			if (q == TOKEN_TAP) {
				/* Edge-triggered: drain until the tap is empty or the
				 * guest has no buffers (its RX kick resumes then). */
				pthread_mutex_lock(&v->dev->lock);
				while (virtio_net_rx(&v->vd) >= VIRTIO_NET_RX_BUDGET)
					;
				pthread_mutex_unlock(&v->dev->lock);
			} else {
				uint64_t cnt;

				if (read(v->qfd[q], &cnt, sizeof(cnt)) != sizeof(cnt))
					continue;
				pthread_mutex_lock(&v->dev->lock);
				virtio_pci_queue_notify(&v->vp, (uint16_t)q);
				pthread_mutex_unlock(&v->dev->lock);
			}
		}
	}
}

static void io_stop(struct pci_glue *g)
{
	uint64_t one = 1;

	if (!g->io_started)
		return;
	if (write(g->stop_fd, &one, sizeof(one)) != sizeof(one))
		pthread_cancel(g->io_thread);
	pthread_join(g->io_thread, NULL);
	g->io_started = false;
}

static int io_start(struct pci_glue *g, struct err *e)
{
	sigset_t all, old;
	int r;

	/* The I/O thread takes no signals (vCPU kicks are thread-directed). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&g->io_thread, NULL, io_thread, g);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return err_errno(e, r, "pthread_create (I/O thread)");
	g->io_started = true;
	return 0;
}

static int poll_add(struct pci_glue *g, int fd, uint64_t token, uint32_t events, struct err *e)
{
	struct epoll_event ev = { .events = events, .data.u64 = token };

	if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return err_errno(e, errno, "epoll_ctl");
	return 0;
}

/* ---- ioeventfds ---- */

static int ioeventfd(struct vm *vm, int fd, uint64_t addr, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr, .len = 2, .fd = fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io);
}

void pci_glue_update_ioeventfds(struct vdev *v)
{
	struct vm *vm = v->glue->vm;
	bool on = virtio_pci_bar_addr(&v->vp) != 0;

	for (int q = 0; q < v->vd.nqueues; q++) {
		uint64_t a = on ? virtio_pci_notify_addr(&v->vp, (uint16_t)q) : 0;

		if (v->qfd[q] < 0 || a == v->qaddr[q])
			continue;
		if (v->qaddr[q])
			ioeventfd(vm, v->qfd[q], v->qaddr[q], false);
		v->qaddr[q] = 0;
		/* On failure the notify write simply exits to us (slow path). */
		if (a && ioeventfd(vm, v->qfd[q], a, true) == 0)
			v->qaddr[q] = a;
	}
}

int pci_glue_add(struct pci_glue *g, struct vdev *v, struct err *e)
{
	int idx = g->nvdevs;

	if (idx >= PCI_GLUE_MAX_DEVS)
		return err_set(e, "too many PCI devices (max %d)", PCI_GLUE_MAX_DEVS);
	if (pci_bus_add(&g->bus, &v->vp.pci, -1, e) < 0)
		return -1;
	v->gsi = acpi_pci_intx_gsi(v->vp.pci.slot, 0);
	pci_func_set_irq_line(&v->vp.pci, (uint8_t)v->gsi);
	g->by_slot[v->vp.pci.slot] = v;
	g->vdevs[idx] = v;
	v->slot_idx = idx;
	g->nvdevs++;
	for (int q = 0; q < v->vd.nqueues; q++) {
		v->qfd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (v->qfd[q] < 0) {
			err_errno(e, errno, "eventfd");
			goto fail;
		}
		if (poll_add(g, v->qfd[q], TOKEN(idx, q), EPOLLIN, e) < 0)
			goto fail;
	}
	if (v->kind == VDEV_NET && poll_add(g, v->fd, TOKEN(idx, TOKEN_TAP), EPOLLIN | EPOLLET, e) < 0)
		goto fail;
	return 0;
fail:
	pci_glue_remove(g, v);
	return -1;
}

void pci_glue_remove(struct pci_glue *g, struct vdev *v)
{
	io_stop(g);
	if (v->slot_idx < 0)
		return;
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (v->qaddr[q])
			ioeventfd(g->vm, v->qfd[q], v->qaddr[q], false);
		v->qaddr[q] = 0;
		if (v->qfd[q] >= 0)
			close(v->qfd[q]);
		v->qfd[q] = -1;
	}
	if (v->kind == VDEV_NET && v->fd >= 0)
		epoll_ctl(g->epfd, EPOLL_CTL_DEL, v->fd, NULL);
	if (v->vp.pci.slot > 0) {
		g->bus.slot[v->vp.pci.slot] = NULL;
		g->by_slot[v->vp.pci.slot] = NULL;
	}
	g->vdevs[v->slot_idx] = NULL;
	v->slot_idx = -1;
}

int pci_glue_assign_bars(struct pci_glue *g, struct err *e)
{
	return pci_bus_assign_bars(&g->bus, LAYOUT_PCI_MMIO_BASE, LAYOUT_PCI_MMIO_SIZE, e);
}

/* ---- exits ---- */

bool pci_glue_mmio(struct vm *vm, uint64_t gpa, bool is_write, void *data, uint32_t len)
{
	struct pci_glue *g = vm->pci;

	if (!g || gpa < LAYOUT_PCI_MMIO_BASE || gpa >= LAYOUT_PCI_MMIO_BASE + LAYOUT_PCI_MMIO_SIZE)
		return false;
	for (int i = 0; i < g->nvdevs; i++) {
		struct vdev *v = g->vdevs[i];
		uint64_t a;

		if (!v)
			continue;
		pthread_mutex_lock(&v->dev->lock);
		a = virtio_pci_bar_addr(&v->vp);
		if (a && gpa >= a && gpa - a + len <= VIRTIO_PCI_BAR_SIZE) {
			if (is_write)
				virtio_pci_bar_write(&v->vp, gpa - a, data, len);
			else
				virtio_pci_bar_read(&v->vp, gpa - a, data, len);
			pthread_mutex_unlock(&v->dev->lock);
			return true;
		}
		pthread_mutex_unlock(&v->dev->lock);
	}
	return false;
}

static void host_pio(struct device *dev, uint16_t port, bool is_write, uint32_t *data, int size)
{
	struct pci_glue *g = dev->priv;
	struct vdev *v = NULL;
	uint32_t a = g->bus.config_addr;

	/* Data port: serialize with the addressed function's device. */
	if (port >= PCI_CONFIG_DATA && (a & 0x80000000u) && ((a >> 16) & 0xff) == 0 &&
	    !((a >> 8) & 7))
		v = g->by_slot[(a >> 11) & 0x1f];
	if (v)
		pthread_mutex_lock(&v->dev->lock);
	if (!pci_bus_pio(&g->bus, port, is_write, data, size) && !is_write)
		*data = 0xffffffffu;
	if (v)
		pthread_mutex_unlock(&v->dev->lock);
}

/* ---- the "pci" device ---- */

static void host_exit(struct device *dev)
{
	struct pci_glue *g = dev->priv;

	if (!g)
		return;
	io_stop(g);
	if (g->epfd >= 0)
		close(g->epfd);
	if (g->stop_fd >= 0)
		close(g->stop_fd);
	bitmap_free(&g->vm->dma_dirty);
	g->vm->pci = NULL;
	free(g);
	dev->priv = NULL;
}

static int host_realize(struct device *dev, struct err *e)
{
	struct vm *vm = dev->vm;
	struct pci_glue *g = calloc(1, sizeof(*g));

	if (!g)
		return err_set(e, "out of memory");
	g->vm = vm;
	g->dev = dev;
	g->epfd = g->stop_fd = -1;
	dev->priv = g;
	pci_bus_init(&g->bus);
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct mem_region *r = &vm->mem.regions[i];

		if (gm_add_region(&g->gm, r->gpa, r->size, r->host) < 0) {
			err_set(e, "guest_mem: cannot add region %d", i);
			goto fail;
		}
	}
	g->gm.mark_dirty = glue_mark_dirty;
	g->gm.opaque = g;
	if (bitmap_init(&vm->dma_dirty, dirty_log_npages(vm), e) < 0)
		goto fail;
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	g->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (g->epfd < 0 || g->stop_fd < 0) {
		err_errno(e, errno, "epoll/eventfd");
		goto fail;
	}
	if (poll_add(g, g->stop_fd, TOKEN_STOP, EPOLLIN, e) < 0 || io_start(g, e) < 0)
		goto fail;
	if (ioport_register(&vm->pio, PCI_CONFIG_ADDR, 1, dev, e) < 0 ||
	    ioport_register(&vm->pio, PCI_CONFIG_ADDR + 2, 2, dev, e) < 0 ||
	    ioport_register(&vm->pio, PCI_CONFIG_DATA, 4, dev, e) < 0) {
		ioport_unregister_dev(&vm->pio, dev);
		goto fail;
	}
	vm->pci = g;
	return 0;
fail:
	host_exit(dev);
	return -1;
}

static void host_reset(struct device *dev)
{
	struct pci_glue *g = dev->priv;

	g->bus.config_addr = 0;
}

static int host_save(struct device *dev, struct vmstate_writer *w, struct err *e)
{
	struct pci_glue *g = dev->priv;

	return pci_bus_save(&g->bus, w, e);
}

static int host_load(struct device *dev, const void *payload, size_t len, uint16_t version,
		     struct err *e)
{
	struct pci_glue *g = dev->priv;
	struct vcursor c;

	if (version != 1)
		return err_set(e, "pci: unknown state version %u", version);
	vcursor_init(&c, payload, len);
	return pci_bus_load(&g->bus, &c, e);
}

const struct device_ops pci_host_ops = {
	.name = "pci",
	.realize = host_realize,
	.reset = host_reset,
	.pio = host_pio,
	.save = host_save,
	.load = host_load,
	.exit = host_exit,
};
