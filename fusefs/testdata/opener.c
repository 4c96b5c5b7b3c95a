/*
 * opener: a legacy program that locks by opening a file, for the signal
 * tests. It opens PATH for writing (blocking), reports on stdout, and, if
 * the open succeeded, holds the file until its stdin is closed.
 *
 *   opener PATH [catch] [alarm=SECONDS] [child=MILLISECONDS]
 *
 *   catch           handle SIGINT, SIGTERM and SIGUSR1 (without SA_RESTART)
 *   alarm=N         handle SIGALRM and call alarm(N) before the open
 *   child=MS        handle SIGCHLD and fork a child that exits after MS ms
 *
 * Output: "waiting\n" just before open(2), then "opened\n" or
 * "error NAME\n" (NAME as strerrorname_np gives it: EINTR, ...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void handler(int sig) { (void)sig; }

static void catch(int sig) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: opener PATH [catch] [alarm=N] [child=MS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "catch") == 0) {
			catch(SIGINT);
			catch(SIGTERM);
			catch(SIGUSR1);
		} else if (strncmp(argv[i], "alarm=", 6) == 0) {
			catch(SIGALRM);
			alarm(atoi(argv[i] + 6));
		} else if (strncmp(argv[i], "child=", 6) == 0) {
			catch(SIGCHLD);
			int ms = atoi(argv[i] + 6);
			if (fork() == 0) {
				struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
				nanosleep(&ts, NULL);
				_exit(0);
			}
		} else {
			fprintf(stderr, "opener: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	printf("waiting\n");
	int fd = open(argv[1], O_WRONLY | O_CREAT, 0666);
	if (fd < 0) {
		printf("error %s\n", strerrorname_np(errno));
		return 1;
	}
	printf("opened\n");
	char buf[64];
	while (read(0, buf, sizeof buf) > 0) {
	}
	close(fd);
	return 0;
}
