/*
 * flockfs: a passthrough FUSE filesystem whose flock(2) answers as chosen at mount time.
 *
 *   flockfs [-f] [-d] [-o flockmode=MODE] [-o watch_stdin[,cleanup=DIR]] [-o local_flock]
 *           [FUSE options] BACKING MOUNTPOINT
 *
 * MOUNTPOINT mirrors the directory BACKING. flock(2) on a file under MOUNTPOINT reaches this
 * process as FUSE_SETLK/FUSE_SETLKW with FUSE_LK_FLOCK (we implement the flock operation and
 * want FUSE_CAP_FLOCK_LOCKS; without it the kernel would take flock locks on the mount
 * locally and never ask), and MODE decides the answer:
 *
 *   passthrough     flock(2) on the backing file's descriptor: locks exclude each other as
 *                   on a local filesystem, including against flock(2) on BACKING's files; a
 *                   signal to a waiting caller (flock -w) interrupts the wait (EINTR).
 *   enolck          every flock(2) fails with ENOLCK (as on NFS without a lock manager).
 *   eopnotsupp      every flock(2) fails with EOPNOTSUPP.
 *   ebadf-readonly  flock(2) on a file opened read-only fails with EBADF (as Linux's NFS
 *                   emulation of flock through fcntl locks does); opened for writing, it
 *                   passes through.
 *   hang            LOCK_SH and LOCK_EX are never answered: the caller waits, from its first
 *                   signal on uninterruptibly (even SIGKILL waits), until the connection is
 *                   aborted. LOCK_UN passes through. No thread is held by a hung request,
 *                   so every other operation keeps answering.
 *
 * -o watch_stdin: when standard input reaches end of file (the process that started us and
 * holds the pipe's other end has died), detach the mount and exit; exiting closes
 * /dev/fuse, which aborts the connection. A last resort against mounts left behind.
 * -o cleanup=DIR: with watch_stdin, also remove DIR (the fixture's temporary directory
 * holding BACKING and MOUNTPOINT) then, without crossing into other filesystems.
 * -o local_flock: a control for tests: do not want FUSE_CAP_FLOCK_LOCKS. The kernel then
 * takes flock locks on the mount itself, never asks us, and MODE has no effect.
 *
 * The low-level API, modelled on libfuse's example/passthrough_ll.c: every inode the kernel
 * knows holds an O_PATH descriptor of its backing file, so that an unlinked file that is
 * still open keeps answering fstat(2) as on a local filesystem (the high-level API answers
 * ESTALE there). Names and attributes are not cached: changes made in BACKING show at once.
 *
 * Build: gcc -O2 -Wall flockfs.c $(pkg-config --cflags --libs fuse3) -o flockfs
 * (add -DFUSE_USE_VERSION=312 with libfuse >= 3.12 for a larger thread pool).
 */
#define _GNU_SOURCE
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif

#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

enum mode { PASSTHROUGH, ENOLCK_MODE, EOPNOTSUPP_MODE, EBADF_READONLY, HANG };

static const char *const mode_names[] = {
	[PASSTHROUGH] = "passthrough",
	[ENOLCK_MODE] = "enolck",
	[EOPNOTSUPP_MODE] = "eopnotsupp",
	[EBADF_READONLY] = "ebadf-readonly",
	[HANG] = "hang",
};

static enum mode mode = PASSTHROUGH;
static char mountpoint[PATH_MAX];
static const char *cleanup_dir;
static int local_flock;
/* Held by the stdin watcher while it cleans up: detaching the mount ends the session loop,
   and main must not return (and exit) under the watcher's feet. */
static pthread_mutex_t exiting = PTHREAD_MUTEX_INITIALIZER;

/* ---- inodes: the kernel's nodeid is a pointer to one of these ---- */

struct inode {
	struct inode *next, *prev; /* under inodes_lock */
	int fd;			   /* O_PATH */
	ino_t ino;
	dev_t dev;
	uint64_t nlookup; /* under inodes_lock */
};

static struct inode root = { .next = &root, .prev = &root, .fd = -1, .nlookup = 2 };
static pthread_mutex_t inodes_lock = PTHREAD_MUTEX_INITIALIZER;

static struct inode *inode_of(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &root : (struct inode *)(uintptr_t)ino;
}

static int fd_of(fuse_ino_t ino)
{
	return inode_of(ino)->fd;
}

/* The kernel keeps a lookup count per inode; it matches ours. While we hold the O_PATH
   descriptor the backing inode cannot be freed, so its number cannot be reused under us. */
static int do_lookup(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->attr_timeout = 0;
	e->entry_timeout = 0;
	int fd = openat(fd_of(parent), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1) {
		int err = errno;
		close(fd);
		return err;
	}
	struct inode *found = NULL;
	pthread_mutex_lock(&inodes_lock);
	for (struct inode *p = root.next; p != &root; p = p->next) {
		if (p->ino == e->attr.st_ino && p->dev == e->attr.st_dev) {
			found = p;
			found->nlookup++;
			break;
		}
	}
	if (!found) {
		found = calloc(1, sizeof *found);
		if (!found) {
			pthread_mutex_unlock(&inodes_lock);
			close(fd);
			return ENOMEM;
		}
		found->fd = fd;
		fd = -1;
		found->ino = e->attr.st_ino;
		found->dev = e->attr.st_dev;
		found->nlookup = 1;
		found->next = root.next;
		found->prev = &root;
		root.next->prev = found;
		root.next = found;
	}
	pthread_mutex_unlock(&inodes_lock);
	if (fd != -1)
		close(fd);
	e->ino = (uintptr_t)found;
	return 0;
}

static void forget_one(fuse_ino_t ino, uint64_t n)
{
	struct inode *inode = inode_of(ino);
	pthread_mutex_lock(&inodes_lock);
	inode->nlookup -= n;
	if (inode->nlookup == 0 && inode != &root) {
		inode->prev->next = inode->next;
		inode->next->prev = inode->prev;
		pthread_mutex_unlock(&inodes_lock);
		close(inode->fd);
		free(inode);
		return;
	}
	pthread_mutex_unlock(&inodes_lock);
}

static void reply_entry_or_err(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = do_lookup(parent, name, &e);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void reply_result(fuse_req_t req, int res)
{
	fuse_reply_err(req, res == -1 ? errno : 0);
}

/* /proc/self/fd/N: how to reach an O_PATH descriptor's file with path-only calls. */
static void proc_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* ---- open files: fi->fh points to one of these ---- */

struct handle {
	int fd;
	int flags; /* the open flags, for ebadf-readonly */
	DIR *dir;  /* directories; fd is then dirfd(dir) */
	off_t offset;
	struct dirent *entry;
};

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static struct handle *new_handle(int fd, int flags)
{
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->fd = fd;
	h->flags = flags;
	return h;
}

/* ---- operations ---- */

static void ff_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Ask the kernel to send flock(2) here instead of handling it locally. libfuse wants it
	   by default when a flock handler exists; we ask explicitly. -o local_flock (a control
	   for tests) declines it: the kernel then never asks us. */
	if (!(conn->capable & FUSE_CAP_FLOCK_LOCKS))
		fprintf(stderr, "flockfs: warning: the kernel does not offer FUSE_CAP_FLOCK_LOCKS: "
				"flock(2) will be handled locally\n");
	if (local_flock)
		conn->want &= ~FUSE_CAP_FLOCK_LOCKS;
	else
		conn->want |= FUSE_CAP_FLOCK_LOCKS;
	fprintf(stderr, "flockfs: flockmode=%s, FUSE_CAP_FLOCK_LOCKS %s\n", mode_names[mode],
		conn->want & FUSE_CAP_FLOCK_LOCKS ? "on" : "off");
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_entry_or_err(req, parent, name);
}

static void ff_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(ino, nlookup);
	fuse_reply_none(req);
}

static void ff_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	if (fstatat(fd_of(ino), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, 0);
}

static void ff_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	int ifd = fd_of(ino);
	char path[64];
	proc_path(path, sizeof path, ifd);

	if (valid & FUSE_SET_ATTR_MODE) {
		if ((fi ? fchmod(handle_of(fi)->fd, attr->st_mode) : chmod(path, attr->st_mode)) == -1)
			return (void)fuse_reply_err(req, errno);
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;
		if (fchownat(ifd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
			return (void)fuse_reply_err(req, errno);
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if ((fi ? ftruncate(handle_of(fi)->fd, attr->st_size)
			: truncate(path, attr->st_size)) == -1)
			return (void)fuse_reply_err(req, errno);
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if ((fi ? futimens(handle_of(fi)->fd, tv) : utimensat(AT_FDCWD, path, tv, 0)) == -1)
			return (void)fuse_reply_err(req, errno);
	}
	ff_getattr(req, ino, fi);
}

static void ff_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(fd_of(ino), "", buf, sizeof buf);
	if (n == -1)
		return (void)fuse_reply_err(req, errno);
	if (n == sizeof buf)
		return (void)fuse_reply_err(req, ENAMETOOLONG);
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void ff_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	if (mknodat(fd_of(parent), name, mode, rdev) == -1)
		return (void)fuse_reply_err(req, errno);
	reply_entry_or_err(req, parent, name);
}

static void ff_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (mkdirat(fd_of(parent), name, mode) == -1)
		return (void)fuse_reply_err(req, errno);
	reply_entry_or_err(req, parent, name);
}

static void ff_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	if (symlinkat(target, fd_of(parent), name) == -1)
		return (void)fuse_reply_err(req, errno);
	reply_entry_or_err(req, parent, name);
}

static void ff_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	char path[64];
	proc_path(path, sizeof path, fd_of(ino));
	if (linkat(AT_FDCWD, path, fd_of(parent), name, AT_SYMLINK_FOLLOW) == -1)
		return (void)fuse_reply_err(req, errno);
	reply_entry_or_err(req, parent, name);
}

static void ff_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_result(req, unlinkat(fd_of(parent), name, 0));
}

static void ff_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_result(req, unlinkat(fd_of(parent), name, AT_REMOVEDIR));
}

static void ff_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	reply_result(req, renameat2(fd_of(parent), name, fd_of(newparent), newname, flags));
}

static void ff_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd = openat(fd_of(ino), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return (void)fuse_reply_err(req, errno);
	struct handle *h = new_handle(fd, O_RDONLY | O_DIRECTORY);
	if (!h || !(h->dir = fdopendir(fd))) {
		int err = h ? errno : ENOMEM;
		close(fd);
		free(h);
		return (void)fuse_reply_err(req, err);
	}
	fi->fh = (uintptr_t)h;
	fuse_reply_open(req, fi);
}

static void ff_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi)
{
	(void)ino;
	struct handle *h = handle_of(fi);
	char *buf = calloc(1, size);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	size_t used = 0;
	int err = 0;
	if (offset != h->offset) {
		seekdir(h->dir, offset);
		h->entry = NULL;
		h->offset = offset;
	}
	for (;;) {
		if (!h->entry) {
			errno = 0;
			h->entry = readdir(h->dir);
			if (!h->entry) {
				err = errno;
				break;
			}
		}
		struct stat st = { .st_ino = h->entry->d_ino, .st_mode = DTTOIF(h->entry->d_type) };
		size_t n = fuse_add_direntry(req, buf + used, size - used, h->entry->d_name, &st,
					     h->entry->d_off);
		if (n > size - used)
			break;
		used += n;
		h->offset = h->entry->d_off;
		h->entry = NULL;
	}
	if (err && used == 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void ff_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct handle *h = handle_of(fi);
	closedir(h->dir);
	free(h);
	fuse_reply_err(req, 0);
}

static void ff_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	int fd = handle_of(fi)->fd;
	reply_result(req, datasync ? fdatasync(fd) : fsync(fd));
}

static void ff_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	int fd = openat(fd_of(parent), name, (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, mode);
	if (fd == -1)
		return (void)fuse_reply_err(req, errno);
	struct handle *h = new_handle(fd, fi->flags);
	struct fuse_entry_param e;
	int err = h ? do_lookup(parent, name, &e) : ENOMEM;
	if (err) {
		close(fd);
		free(h);
		return (void)fuse_reply_err(req, err);
	}
	fi->fh = (uintptr_t)h;
	fuse_reply_create(req, &e, fi);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char path[64];
	proc_path(path, sizeof path, fd_of(ino));
	int fd = open(path, (fi->flags | O_CLOEXEC) & ~O_NOFOLLOW);
	if (fd == -1)
		return (void)fuse_reply_err(req, errno);
	struct handle *h = new_handle(fd, fi->flags);
	if (!h) {
		close(fd);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	fi->fh = (uintptr_t)h;
	fuse_reply_open(req, fi);
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	(void)ino;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	ssize_t n = pread(handle_of(fi)->fd, buf, size, offset);
	if (n == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void ff_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t offset,
		     struct fuse_file_info *fi)
{
	(void)ino;
	ssize_t n = pwrite(handle_of(fi)->fd, buf, size, offset);
	if (n == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

static void ff_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* close(2) of a duplicate: what a close through the mount means for BACKING. */
	int fd = dup(handle_of(fi)->fd);
	reply_result(req, fd == -1 ? -1 : close(fd));
}

static void ff_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct handle *h = handle_of(fi);
	close(h->fd); /* also drops a passthrough flock, as the kernel expects */
	free(h);
	fuse_reply_err(req, 0);
}

static void ff_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	int fd = handle_of(fi)->fd;
	reply_result(req, datasync ? fdatasync(fd) : fsync(fd));
}

static void ff_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	if (fstatvfs(fd_of(ino), &st) == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static void ff_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)ino;
	reply_result(req, fallocate(handle_of(fi)->fd, mode, offset, length));
}

/* A blocking flock(2) in a worker thread, and the interrupt that ends it: the kernel sends
   FUSE_INTERRUPT when the waiting caller gets a signal; libfuse calls interrupt() from
   another thread, which signals the worker (SIGUSR1, whose handler does nothing and has no
   SA_RESTART) until flock(2) has returned. */
struct waiter {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int finished;
	int interrupted;
};

static void on_sigusr1(int sig)
{
	(void)sig;
}

static void interrupt(fuse_req_t req, void *data)
{
	(void)req;
	struct waiter *w = data;
	pthread_mutex_lock(&w->lock);
	w->interrupted = 1;
	/* Called at registration in the worker itself when the request was already
	   interrupted: the flag is enough then. */
	while (!w->finished && !pthread_equal(w->thread, pthread_self())) {
		pthread_kill(w->thread, SIGUSR1);
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 10 * 1000 * 1000;
		if (t.tv_nsec >= 1000 * 1000 * 1000) {
			t.tv_sec++;
			t.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&w->cond, &w->lock, &t);
	}
	pthread_mutex_unlock(&w->lock);
}

static int blocking_flock(fuse_req_t req, int fd, int op)
{
	struct waiter w = { .thread = pthread_self() };
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	fuse_req_interrupt_func(req, interrupt, &w);

	pthread_mutex_lock(&w.lock);
	int interrupted = w.interrupted;
	pthread_mutex_unlock(&w.lock);
	int res = interrupted ? (errno = EINTR, -1) : flock(fd, op);
	int err = res == -1 ? errno : 0;

	pthread_mutex_lock(&w.lock);
	w.finished = 1;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
	fuse_req_interrupt_func(req, NULL, NULL); /* waits for a running interrupt() */
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return err;
}

static void ff_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	(void)ino;
	struct handle *h = handle_of(fi);
	int unlock = (op & ~LOCK_NB) == LOCK_UN;
	switch (mode) {
	case ENOLCK_MODE:
		return (void)fuse_reply_err(req, ENOLCK);
	case EOPNOTSUPP_MODE:
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	case EBADF_READONLY:
		if ((h->flags & O_ACCMODE) == O_RDONLY)
			return (void)fuse_reply_err(req, EBADF);
		break;
	case HANG:
		if (!unlock) {
			/* Never answered: the request stays pending in the kernel until the
			   connection is aborted. No thread waits for it. */
			fprintf(stderr, "flockfs: hang: flock(%s) left unanswered\n",
				(op & ~LOCK_NB) == LOCK_EX ? "LOCK_EX" : "LOCK_SH");
			return;
		}
		break;
	case PASSTHROUGH:
		break;
	}
	if ((op & LOCK_NB) || unlock)
		reply_result(req, flock(h->fd, op));
	else
		fuse_reply_err(req, blocking_flock(req, h->fd, op));
}

static const struct fuse_lowlevel_ops ops = {
	.init = ff_init,
	.lookup = ff_lookup,
	.forget = ff_forget,
	.forget_multi = ff_forget_multi,
	.getattr = ff_getattr,
	.setattr = ff_setattr,
	.readlink = ff_readlink,
	.mknod = ff_mknod,
	.mkdir = ff_mkdir,
	.symlink = ff_symlink,
	.link = ff_link,
	.unlink = ff_unlink,
	.rmdir = ff_rmdir,
	.rename = ff_rename,
	.opendir = ff_opendir,
	.readdir = ff_readdir,
	.releasedir = ff_releasedir,
	.fsyncdir = ff_fsyncdir,
	.create = ff_create,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.flush = ff_flush,
	.release = ff_release,
	.fsync = ff_fsync,
	.statfs = ff_statfs,
	.fallocate = ff_fallocate,
	.flock = ff_flock,
};

/* ---- the last resort when our parent dies ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void *watch_stdin(void *arg)
{
	(void)arg;
	char buf[256];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
		if (n > 0 || (n == -1 && errno == EINTR))
			continue;
		break;
	}
	pthread_mutex_lock(&exiting);
	fprintf(stderr, "flockfs: standard input closed: detaching %s and exiting\n", mountpoint);
	umount2(mountpoint, MNT_DETACH);
	/* FTW_MOUNT: never descend into another filesystem (our mount, had detaching failed). */
	if (cleanup_dir)
		nftw(cleanup_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	_exit(0);
}

/* ---- command line ---- */

struct options {
	char *flockmode;
	int watch_stdin;
	char *cleanup;
	int local_flock;
	char *backing;
	int nonopts;
};

static const struct fuse_opt option_spec[] = {
	{ "flockmode=%s", offsetof(struct options, flockmode), 0 },
	{ "watch_stdin", offsetof(struct options, watch_stdin), 1 },
	{ "cleanup=%s", offsetof(struct options, cleanup), 0 },
	{ "local_flock", offsetof(struct options, local_flock), 1 },
	FUSE_OPT_END,
};

static int option(void *data, const char *arg, int key, struct fuse_args *out)
{
	(void)out;
	struct options *o = data;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	switch (o->nonopts++) {
	case 0:
		o->backing = strdup(arg);
		return 0; /* ours; libfuse sees only the mountpoint */
	case 1:
		if (!realpath(arg, mountpoint)) {
			fprintf(stderr, "flockfs: %s: %s\n", arg, strerror(errno));
			return -1;
		}
		return 1;
	default:
		fprintf(stderr, "flockfs: unexpected argument %s\n", arg);
		return -1;
	}
}

static int usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-f] [-d] [-o flockmode=passthrough|enolck|eopnotsupp|ebadf-readonly|"
		"hang] [-o watch_stdin[,cleanup=DIR]] [-o local_flock] [FUSE options] BACKING "
		"MOUNTPOINT\n",
		argv0);
	return 2;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { 0 };
	struct fuse_cmdline_opts opts = { 0 };
	int ret = 1;

	if (fuse_opt_parse(&args, &o, option_spec, option) == -1)
		return usage(argv[0]);
	if (o.flockmode) {
		size_t i, n = sizeof mode_names / sizeof mode_names[0];
		for (i = 0; i < n && strcmp(o.flockmode, mode_names[i]) != 0; i++)
			;
		if (i == n) {
			fprintf(stderr, "flockfs: unknown flockmode %s\n", o.flockmode);
			return usage(argv[0]);
		}
		mode = (enum mode)i;
	}
	cleanup_dir = o.cleanup;
	local_flock = o.local_flock;
	if (fuse_opt_add_arg(&args, "-ofsname=flockfs,subtype=flockfs") == -1 ||
	    fuse_parse_cmdline(&args, &opts) != 0)
		return usage(argv[0]);
	if (opts.show_help || o.nonopts != 2 || !opts.mountpoint)
		return usage(argv[0]);

	root.fd = open(o.backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root.fd == -1) {
		fprintf(stderr, "flockfs: %s: %s\n", o.backing, strerror(errno));
		return 2;
	}
	umask(0); /* the kernel has applied the caller's umask already */

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigusr1; /* no SA_RESTART: it interrupts a blocking flock(2) */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_handlers;
	fuse_daemonize(opts.foreground);

	if (o.watch_stdin) {
		pthread_t watcher;
		if (pthread_create(&watcher, NULL, watch_stdin, NULL) == 0)
			pthread_detach(watcher);
		else
			fprintf(stderr, "flockfs: warning: cannot start the stdin watcher\n");
	}

	/* Multi-threaded: a passthrough flock that waits for a lock holds its worker. */
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
#if FUSE_USE_VERSION >= FUSE_MAKE_VERSION(3, 12)
		struct fuse_loop_config *config = fuse_loop_cfg_create();
		fuse_loop_cfg_set_max_threads(config, 256);
		ret = fuse_session_loop_mt(se, config);
		fuse_loop_cfg_destroy(config);
#else
		struct fuse_loop_config config = { .clone_fd = 0, .max_idle_threads = 10 };
		ret = fuse_session_loop_mt(se, &config);
#endif
	}
	/* After an abort libfuse leaves the mount alone; unmounting is then up to the fixture. */
	fuse_session_unmount(se);
out_handlers:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
out:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	pthread_mutex_lock(&exiting); /* the watcher, if cleaning up, ends the process */
	return ret ? 1 : 0;
}
