/* rusage.c - runs a command and reports what it cost: wall-clock time, CPU
 * time (user + system) and peak resident set size, from wait4()'s rusage.
 *
 * bench/run.sh times every reader through it.  CPU time is given beside the
 * wall clock because a shared machine's load stretches the wall clock of a
 * single-threaded reader more than its CPU time.
 *
 * Usage: smtpscope-rusage OUT COMMAND [ARG...]
 * Writes "wall_us cpu_us maxrss_kib" to OUT; exits with the command's status
 * (128 + signal if it was killed).  The command's stdout and stderr are its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long us_of(struct timeval tv)
{
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: smtpscope-rusage OUT COMMAND [ARG...]\n", stderr);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("smtpscope-rusage: fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("smtpscope-rusage: exec");
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) {
        perror("smtpscope-rusage: wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long wall =
        (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    fprintf(f, "%lld %lld %ld\n", wall, us_of(ru.ru_utime) + us_of(ru.ru_stime), ru.ru_maxrss);
    fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
