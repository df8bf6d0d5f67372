/**
 * What `filelock` says about its own usage: the help text, and the error a
 * mistake on the command line raises.
 *
 * @module
 */

/** The help text. */
export const USAGE = `Usage:
 filelock [options] <file>|<directory> <command> [<argument>...]
 filelock [options] <file>|<directory> -c <command>
 filelock [options] <file descriptor number>
 filelock --status <file>|<directory>
 filelock --probe [<file>|<directory>]

Runs a command while holding a lock on a file (created if missing) or a
directory, or locks a descriptor the shell opened. A drop-in flock(1) that
works with Deno, Bun and Node, and excludes flock(1) and every other flock(2)
user of the same file.

Options (those of flock(1)):
 -s, --shared                   get a shared lock
 -x, -e, --exclusive            get an exclusive lock (the default)
 -u, --unlock                   remove a lock (descriptor mode)
 -n, --nb, --nonblock[ing]      fail rather than wait
 -w, --wait, --timeout <secs>   wait at most this long (fractions allowed; 0: one try)
 -E, --conflict-exit-code <n>   exit code after a conflict or a timeout (0 to 255)
 -o, --close                    the command does not inherit the lock
 -c, --command <command>        run a single command string through the shell
 -F, --no-fork                  replace filelock with the command (keeps the lock)
 -v, --verbose                  say how long getting the lock took, what runs, who holds it
 -h, --help                     display this help
 -V, --version                  display the version

Options of filelock's own:
     --status                   print whether the lock is held and by whom, and
                                its filesystem; exit 0 when free, 1 when held
     --probe [<path>]           print which backend this runtime uses, and why, as
                                JSON; with a lock path, also its filesystem
     --backend <name>           auto (default), ffi, native or pidfile
     --remove                   remove the lock file on release (exclusive locks)

Long options may be abbreviated to any unique prefix (those of flock(1) first).

Like flock(1), it prints nothing but the command's output unless -v is given
or stderr is a terminal; then a line on stderr shows the wait and the holder.
SIGINT and SIGTERM are passed on to the command; the lock is released after
the command has exited. The command inherits the locked descriptor (as with
flock(1)), so that it keeps holding the lock if filelock itself is killed;
with -o it does not. (The pidfile and native backends cannot pass it on.)

Exit codes:
  the command's own code (128+N when it dies of signal N)
  1 (or -E)  the lock is held (-n) or the timeout passed (-w)
  64         bad usage
  65         the descriptor cannot be locked
  66         the lock file cannot be opened
  69         the command cannot be run, or the backend is not available
`;

/** A mistake on the command line: printed with a hint to --help, exit 64. */
export class UsageError extends Error {}
