/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "mqlite passwd [-c] [-b] [-D] FILE USER [PASSWORD]": adds, updates or
 * deletes one user of a mosquitto_passwd-format file. The new line is
 * "$7$" PBKDF2-SHA512 with PASSWD_ITERATIONS rounds and a random salt.
 * Every other line of the file is kept byte for byte (mosquitto_passwd's
 * "$6$" users and comments included). The file is replaced atomically: a
 * temporary file beside it, written with mode 0600, fsync'd, renamed over
 * it, and the folder fsync'd, so a crash leaves the old file or the new
 * one, never half of one. Without -b the password is asked twice on the
 * terminal with echo off (or read as two lines from a non-terminal stdin).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "broker/passwd.h"
#include "mem.h"
#include "passwd_cli.h"

#define PW_MAX		1024

struct pwfile {
	char		*text;		/* the old file, or NULL */
	size_t		 len;
};

static void
usage(void)
{
	fprintf(stderr, "Usage: mqlite passwd [-c] FILE USER\n"
	    "       mqlite passwd [-c] -b FILE USER PASSWORD\n"
	    "       mqlite passwd -D FILE USER\n"
	    "  -c  start a new FILE (an existing one is replaced)\n"
	    "  -b  take the password from the command line\n"
	    "  -D  delete USER\n");
}

static bool
user_valid(const char *u)
{
	const unsigned char *p;

	if (*u == '\0' || strlen(u) > 65535)
		return false;
	for (p = (const unsigned char *)u; *p != '\0'; p++)
		if (*p == ':' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Reads one line from fp into buf without its newline; -1 at EOF. */
static int
read_line(FILE *fp, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, fp) == NULL)
		return -1;
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == len - 1)
		return -1;		/* longer than we take */
	buf[n] = '\0';
	return 0;
}

/* Asks for the password twice (no echo on a terminal). 0 or -1. */
static int
ask_password(char *pw, size_t len)
{
	struct termios old, quiet;
	char again[PW_MAX];
	bool tty = isatty(STDIN_FILENO);
	int rc = -1;

	if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	} else
		tty = false;
	fprintf(stderr, "Password: ");
	fflush(stderr);
	if (read_line(stdin, pw, len) == 0) {
		fprintf(stderr, "Reenter password: ");
		fflush(stderr);
		if (read_line(stdin, again, sizeof again) == 0)
			rc = strcmp(pw, again) == 0 ? 0 : -2;
	}
	if (!tty)
		fputc('\n', stderr);
	if (rc == -2)
		fprintf(stderr, "mqlite passwd: passwords do not match\n");
	else if (rc != 0)
		fprintf(stderr, "mqlite passwd: no password given\n");
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	explicit_bzero(again, sizeof again);
	return rc == 0 ? 0 : -1;
}

/* Reads FILE whole; a missing file is an empty one when may_miss. */
static int
load(const char *path, bool may_miss, struct pwfile *f)
{
	struct stat st;
	FILE *fp;

	f->text = NULL;
	f->len = 0;
	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && may_miss)
			return 0;
		fprintf(stderr, "mqlite passwd: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) != 0 || st.st_size > 64 * 1024 * 1024 ||
	    (f->text = gw_malloc((size_t)st.st_size + 1)) == NULL) {
		fprintf(stderr, "mqlite passwd: %s: cannot read\n", path);
		fclose(fp);
		return -1;
	}
	f->len = fread(f->text, 1, (size_t)st.st_size, fp);
	f->text[f->len] = '\0';
	fclose(fp);
	return 0;
}

/* Is line[0..len) USER's? */
static bool
line_is(const char *line, size_t len, const char *user)
{
	size_t ul = strlen(user);

	return len > ul && line[ul] == ':' && memcmp(line, user, ul) == 0;
}

/*
 * Writes the old lines to fp with USER's replaced by newline (or dropped
 * when newline is NULL); a new user goes at the end. Sets *found.
 */
static int
write_lines(FILE *fp, const struct pwfile *f, const char *user,
    const char *newline, bool *found)
{
	const char *p, *nl, *end = f->text + f->len;
	size_t n;

	*found = false;
	for (p = f->text; p != NULL && p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (line_is(p, n, user)) {
			if (!*found && newline != NULL)
				fprintf(fp, "%s\n", newline);
			*found = true;
			continue;
		}
		if (fwrite(p, 1, n, fp) != n || fputc('\n', fp) == EOF)
			return -1;
	}
	if (!*found && newline != NULL)
		fprintf(fp, "%s\n", newline);
	return ferror(fp) ? -1 : 0;
}

/* Replaces path atomically with the edited lines. 0, -1 or 3 (no user). */
static int
save(const char *path, const struct pwfile *f, const char *user,
    const char *newline)
{
	char *tmp, *dircopy;
	FILE *fp;
	bool found;
	int fd, dfd, rc = -1;

	if ((tmp = gw_malloc(strlen(path) + 16)) == NULL)
		return -1;
	sprintf(tmp, "%s.tmpXXXXXX", path);
	if ((fd = mkstemp(tmp)) == -1) {
		fprintf(stderr, "mqlite passwd: cannot create a file beside "
		    "%s: %s\n", path, strerror(errno));
		gw_free(tmp);
		return -1;
	}
	if (fchmod(fd, 0600) != 0 || (fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		goto out;
	}
	if (write_lines(fp, f, user, newline, &found) != 0 ||
	    fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		fclose(fp);
		fprintf(stderr, "mqlite passwd: cannot write %s: %s\n", tmp,
		    strerror(errno));
		goto out;
	}
	fclose(fp);
	if (newline == NULL && !found) {
		fprintf(stderr, "mqlite passwd: user %s not in %s\n", user,
		    path);
		rc = 3;
		goto out;
	}
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "mqlite passwd: cannot replace %s: %s\n", path,
		    strerror(errno));
		goto out;
	}
	if ((dircopy = gw_strdup(path)) != NULL) {
		if ((dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY)) !=
		    -1) {
			(void)fsync(dfd);
			close(dfd);
		}
		gw_free(dircopy);
	}
	rc = 0;
out:
	if (rc != 0)
		unlink(tmp);
	gw_free(tmp);
	return rc;
}

int
passwd_cli_main(int argc, char **argv)
{
	bool create = false, batch = false, del = false;
	char pw[PW_MAX], line[PASSWD_LINE_MAX];
	const char *file, *user;
	struct pwfile f;
	int ch, rc;

	optind = 1;
	while ((ch = getopt(argc, argv, "+cbDh")) != -1) {
		switch (ch) {
		case 'c':
			create = true;
			break;
		case 'b':
			batch = true;
			break;
		case 'D':
			del = true;
			break;
		default:
			usage();
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != (batch ? 3 : 2) || (del && (create || batch))) {
		usage();
		return 2;
	}
	file = argv[0];
	user = argv[1];
	if (!user_valid(user)) {
		fprintf(stderr, "mqlite passwd: invalid user name (empty, or "
		    "contains ':' or a control character)\n");
		return 1;
	}
	if (batch) {
		if (strlen(argv[2]) >= sizeof pw || argv[2][0] == '\0' ||
		    strpbrk(argv[2], "\r\n") != NULL) {
			fprintf(stderr, "mqlite passwd: the password must be 1 "
			    "to %zu bytes without line breaks\n",
			    sizeof pw - 1);
			return 1;
		}
		snprintf(pw, sizeof pw, "%s", argv[2]);
	} else if (!del) {
		if (ask_password(pw, sizeof pw) != 0)
			return 1;
		if (pw[0] == '\0') {
			fprintf(stderr, "mqlite passwd: empty password\n");
			return 1;
		}
	}
	if (create) {
		f.text = NULL;
		f.len = 0;
	} else if (load(file, !del, &f) != 0)
		return 1;
	if (!del && passwd_make_line(user, pw, strlen(pw), PASSWD_ITERATIONS,
	    line, sizeof line) != 0) {
		fprintf(stderr, "mqlite passwd: cannot hash the password "
		    "(is libcrypto.so.3 installed?)\n");
		explicit_bzero(pw, sizeof pw);
		gw_free(f.text);
		return 1;
	}
	explicit_bzero(pw, sizeof pw);
	rc = save(file, &f, user, del ? NULL : line);
	gw_free(f.text);
	return rc == 0 ? 0 : 1;
}
