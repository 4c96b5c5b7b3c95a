/* lk: takes an fcntl(2) or lockf(3) lock on a file as legacy programs do,
 * for the integration tests of locks through the mount.
 *
 *   lk ofd PATH      F_OFD_SETLKW write lock, print "locked", hold it until a line on stdin
 *   lk posix PATH    the same with F_SETLKW
 *   lk getlk PATH    F_GETLK for a write lock: print "unlocked", or "write PID" of the conflict
 *   lk pidfile PATH  a pidfile daemon: lockf(F_TLOCK), or "already running" and exit 1;
 *                    else write its pid, print "running", run until a line on stdin
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	char line[64];
	if (argc != 3) {
		fprintf(stderr, "usage: lk ofd|posix|getlk|pidfile PATH\n");
		return 2;
	}
	int fd = open(argv[2], O_RDWR | O_CREAT, 0666);
	if (fd < 0) {
		perror("open");
		return 2;
	}
	if (strcmp(argv[1], "pidfile") == 0) {
		if (lockf(fd, F_TLOCK, 0) < 0) {
			printf("already running\n");
			return 1;
		}
		ftruncate(fd, 0);
		int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
		if (write(fd, line, n) != n) {
			perror("write");
			return 2;
		}
		printf("running\n");
		fflush(stdout);
		fgets(line, sizeof line, stdin);
		return 0;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	int cmd = strcmp(argv[1], "ofd") == 0 ? F_OFD_SETLKW : strcmp(argv[1], "posix") == 0 ? F_SETLKW : F_GETLK;
	if (fcntl(fd, cmd, &fl) < 0) {
		perror("fcntl");
		return 1;
	}
	if (cmd == F_GETLK) {
		if (fl.l_type == F_UNLCK)
			printf("unlocked\n");
		else
			printf("%s %d\n", fl.l_type == F_WRLCK ? "write" : "read", (int)fl.l_pid);
		return 0;
	}
	printf("locked\n");
	fflush(stdout);
	fgets(line, sizeof line, stdin);
	return 0;
}
