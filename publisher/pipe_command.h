/* pipe_command.h: the build wrapper's command (pipe_command.c): started without a
 * shell with its stdout and stderr on pipes, the signals this program gets passed on
 * to it, and its end. */
#ifndef MOSQLITE_PIPE_COMMAND_H
#define MOSQLITE_PIPE_COMMAND_H

#include <sys/types.h>

/* Catch SIGINT, SIGTERM, SIGHUP and SIGQUIT (counted, and passed on to a running
 * command unless the terminal sent them to it already); ignore SIGPIPE. */
void command_catch_signals(void);

/* How many of those signals came so far. */
int command_signals(void);

/* Start cmd with its stdout and stderr on pipes (*out_fd, *err_fd); its stdin is
 * ours. Returns its pid, or -1 with errno set. */
pid_t command_start(char **cmd, int *out_fd, int *err_fd);

/* Send sig to the command: to its process group when it has one of its own (what it
 * started too, even after it has ended), else to the command alone while it runs.
 * Callable from any thread. 1 when something was there to get it. */
int command_stop(int sig);

/* 1 when the command has ended (*status: its wait status), without waiting. */
int command_ended(pid_t pid, int *status);

/* Wait for the command to end. */
void command_wait(pid_t pid, int *status);

#endif
