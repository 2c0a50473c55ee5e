/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "mqlite passwd": manages a password file from the command line.
 */
#ifndef GW_PASSWD_CLI_H
#define GW_PASSWD_CLI_H

/*
 * Runs "mqlite passwd [-c] [-b] [-D] FILE USER [PASSWORD]" with argv[0]
 * being "passwd". Returns the process exit status (0 ok, 1 error, 2
 * usage), having printed any error to stderr.
 */
int	passwd_cli_main(int argc, char **argv);

#endif
