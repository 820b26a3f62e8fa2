/*
 * Stand-in for an e2fsprogs binary (e2fsck, mke2fs, ...) while e2fsprogs' regression suite runs
 * against diskwright's WebAssembly tools. It does no work itself: it sends argv (argv[0] exactly as
 * invoked; the tool is its basename), the cwd, the whole environment, which of fds 0-2 are
 * terminals and stdin to the helper server (server.mjs) over a unix socket, writes the tool's
 * stdout and stderr chunks to its own fds 1 and 2 in the order the tool wrote them, and exits with
 * the tool's exit code. Killing it closes the socket, which aborts the run in the server.
 *
 * Built by run.mjs with `gcc -O2 -DDW_SOCKET='"<path>"'`; a C program because it runs once per
 * tool call (thousands per suite run) and a Node client would add ~40 ms of start-up to each.
 *
 * Wire format (host byte order; both ends are on this machine):
 *   request  "DWE1" u32 argc {u32 len, bytes}*  u32 envc {u32 len, bytes}*  u32 len, cwd
 *            u32 tty-bits  then stdin as {u32 len>0, bytes}* ended by u32 0
 *   reply    {u8 kind, u32 len, bytes}*: kind 1 stdout, 2 stderr, 3 exit (len 4: i32 code)
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef DW_SOCKET
#error "build with -DDW_SOCKET='\"/path/to/socket\"'"
#endif

/* Stdin is sent whole before the tool starts (the worker takes it as one buffer); an endless
 * stream would never end, so stop there — the tool then sees end of file. */
#define STDIN_LIMIT (64u << 20)

extern char **environ;

static void fail(const char *what) {
	dprintf(2, "diskwright e2fs wrapper: %s: %s\n", what, strerror(errno));
	exit(127);
}

static struct { char *data; size_t len, cap; } out;

static void put(const void *bytes, size_t len) {
	if (out.len + len > out.cap) {
		size_t cap = out.cap ? out.cap : 4096;
		while (cap < out.len + len) cap *= 2;
		out.data = realloc(out.data, cap);
		if (!out.data) fail("out of memory");
		out.cap = cap;
	}
	memcpy(out.data + out.len, bytes, len);
	out.len += len;
}

static void put_u32(uint32_t value) { put(&value, 4); }

static void put_str(const char *s) {
	size_t len = strlen(s);
	put_u32((uint32_t)len);
	put(s, len);
}

static void write_all(int fd, const char *bytes, size_t len) {
	while (len > 0) {
		ssize_t n = write(fd, bytes, len);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (fd == 1 || fd == 2) return; /* like a tool whose output went away */
			fail("write");
		}
		bytes += n;
		len -= (size_t)n;
	}
}

static void flush(int sock) {
	write_all(sock, out.data, out.len);
	out.len = 0;
}

static int read_full(int fd, void *buf, size_t len) {
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n == 0) return 0;
		if (n < 0) {
			if (errno == EINTR) continue;
			fail("read from server");
		}
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

int main(int argc, char **argv) {
	/* A tool whose stdout pipe closes gets EPIPE from write, not a signal in the middle of a frame. */
	signal(SIGPIPE, SIG_IGN);
	int sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sock < 0) fail("socket");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(DW_SOCKET) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; fail(DW_SOCKET); }
	strcpy(addr.sun_path, DW_SOCKET);
	if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect " DW_SOCKET);

	put("DWE1", 4);
	put_u32((uint32_t)argc);
	for (int i = 0; i < argc; i++) put_str(argv[i]);
	uint32_t envc = 0;
	for (char **e = environ; *e; e++) envc++;
	put_u32(envc);
	for (char **e = environ; *e; e++) put_str(*e);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof cwd)) fail("getcwd");
	put_str(cwd);
	uint32_t tty = 0;
	for (int fd = 0; fd < 3; fd++) if (isatty(fd)) tty |= 1u << fd;
	put_u32(tty);
	flush(sock);

	/* A terminal is never read (nothing would end it); a closed fd 0 reads as empty. */
	if (!(tty & 1)) {
		static char chunk[65536];
		size_t total = 0;
		while (total < STDIN_LIMIT) {
			ssize_t n = read(0, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR) continue;
			if (n <= 0) break;
			put_u32((uint32_t)n);
			put(chunk, (size_t)n);
			flush(sock);
			total += (size_t)n;
		}
	}
	put_u32(0);
	flush(sock);

	for (;;) {
		unsigned char kind;
		uint32_t len;
		if (!read_full(sock, &kind, 1) || !read_full(sock, &len, 4)) {
			dprintf(2, "diskwright e2fs wrapper: the server closed the connection before %s exited\n", argv[0]);
			return 127;
		}
		char *bytes = malloc(len ? len : 1);
		if (!bytes) fail("out of memory");
		if (len && !read_full(sock, bytes, len)) {
			dprintf(2, "diskwright e2fs wrapper: truncated reply for %s\n", argv[0]);
			return 127;
		}
		if (kind == 3) {
			int32_t code;
			memcpy(&code, bytes, 4);
			return code & 0xff;
		}
		write_all(kind == 1 ? 1 : 2, bytes, len);
		free(bytes);
	}
}
