#!/usr/bin/env bash
# util-linux's own flock(1) tests, rewritten to run against any flock-compatible
# command: /usr/bin/flock (the control) or `filelock` in Deno, Bun or Node.
#
#   bash tests/util-linux/run.sh --flock "/usr/bin/flock"
#   bash tests/util-linux/run.sh --name filelock -- node_modules/.bin/deno run -A src/cli/main.ts
#   bash tests/util-linux/run.sh --list
#
# The checks are those of the util-linux test suite (GPL-2.0-or-later), rewritten
# here, not copied; README.md in this directory names each original (repository,
# path, commit) and every place where this port differs from it.
#
# For each subtest it prints one line, `ok - <name>`, `not ok - <name>: <why>`
# (followed by `#   ` lines: the diff of expected and actual stdout and stderr)
# or `skip - <name>: <reason>`, then `# util-linux: N passed, N failed, N skipped`.
# It exits 0 when nothing failed.
#
# Options:
#   --flock "<command words>"  the command under test, split on blanks
#   -- <argv...>               the command under test, word for word
#   --name <name>              the name the command gives itself in its messages
#                              ("<name>: ..."), read as "flock: ..." (default flock)
#   --jobs <n>                 tests run at once (default 2); subtests of one test
#                              always run in order, as upstream runs them
#   --keep                     keep the temporary directory (its path is printed)
#   --list                     print the subtest names and exit

set -u

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# Each upstream test script (and each lock API of tests/ts/flock/flock) runs as
# one "test", in a fresh directory of its own and its own process group.
TESTS=(misc-flock flock-flock flock-fcntl flock-close flock-unlock flock-range-lock)
# A hung test is killed (with everything it started) after this many seconds.
TEST_LIMIT=${UTIL_LINUX_TEST_LIMIT:-60}
# How long to wait for the background lock holder to start its command. Upstream
# waits 1 s; util-linux PR #4639 raised it to 30 s for slow hosts (the loop ends
# as soon as the child appears, so no timing check changes). A runtime's start-up
# is such a slow host.
HOLDER_WAIT=30

# --- helpers used inside a test (the parts of tests/functions.sh these tests use)

# The subtests of this test, in the order they report; written first, so that a
# test killed half-way still reports the rest as not run.
plan() {
	PLAN=("$@")
	DONE=()
	printf '%s\n' "$@" >"$DIR/plan"
}

# ts_init_subtest: fresh stdout and stderr logs for subtest $1.
begin() {
	SUB=$1
	OUT=$DIR/$(printf '%s' "$1" | tr '/[]' '___').out
	ERR=${OUT%.out}.err
	: >"$OUT"
	: >"$ERR"
	WHY=()
}

# The test's own logs (upstream's TS_OUTPUT and TS_ERRLOG outside subtests).
main_logs() {
	MAIN_NAME=$1
	MAIN_OUT=$DIR/main.out
	MAIN_ERR=$DIR/main.err
	: >"$MAIN_OUT"
	: >"$MAIN_ERR"
	SUB=$MAIN_NAME
	OUT=$MAIN_OUT
	ERR=$MAIN_ERR
	WHY=()
}

# ts_log
log() {
	echo "$1" >>"$OUT"
}

# report <line> <name>: the subtest's result line, and its name as done.
report() {
	echo "$1" >>"$DIR/report"
	echo "$2" >>"$DIR/done"
}

# A log as compared: the command's own name in "<name>: " read as "flock: ".
normalized() {
	if [ "$PROGNAME" = flock ]; then
		cat "$1"
	else
		sed -e "s|^$PROGNAME: |flock: |" "$1"
	fi
}

# ts_finalize_subtest: compares stdout with $1 and stderr with $2 (empty when
# not given: upstream requires an empty stderr unless an .err file is expected);
# $3 is a note for the report (upstream's ts_finalize_subtest argument).
finish() {
	local expected_out=$1 expected_err=${2-} note=${3-}
	local why=("${WHY[@]}") diffs
	printf '%s' "$expected_out" >"$OUT.expected"
	printf '%s' "$expected_err" >"$ERR.expected"
	normalized "$OUT" >"$OUT.actual"
	normalized "$ERR" >"$ERR.actual"
	diffs=$(
		diff -u --label "expected stdout" --label "actual stdout" "$OUT.expected" "$OUT.actual"
		diff -u --label "expected stderr" --label "actual stderr" "$ERR.expected" "$ERR.actual"
	)
	if [ -z "$diffs" ]; then
		report "ok - $SUB${note:+ # $note}" "$SUB"
	else
		cmp -s "$OUT.expected" "$OUT.actual" || why+=("stdout differs")
		if ! cmp -s "$ERR.expected" "$ERR.actual"; then
			if [ -z "$expected_err" ]; then why+=("stderr not empty"); else why+=("stderr differs"); fi
		fi
		[ -n "$note" ] && why+=("$note")
		why=$(printf '%s; ' "${why[@]}")
		report "not ok - $SUB: ${why%; }" "$SUB"
		printf '%s\n' "$diffs" | sed 's/^/#   /' >>"$DIR/report"
	fi
	DONE+=("$SUB")
	OUT=${MAIN_OUT:-/dev/null}
	ERR=${MAIN_ERR:-/dev/null}
	SUB=${MAIN_NAME:-}
	WHY=()
}

skip_rest() {
	local name
	for name in "${PLAN[@]}"; do
		[[ " ${DONE[*]} " == *" $name "* ]] || report "skip - $name: $1" "$name"
	done
	exit 0
}

# ts_die: logs $1 and ends the test; the subtests not run yet fail as not run.
die() {
	log "$1"
	local name
	for name in "${PLAN[@]}"; do
		[ "$name" = "$MAIN_NAME" ] && continue
		[[ " ${DONE[*]} " == *" $name "* ]] || report "not ok - $name: not run: the test died: $1" "$name"
	done
	OUT=$MAIN_OUT
	ERR=$MAIN_ERR
	SUB=$MAIN_NAME
	finish "$DIE_EXPECTED" "" "the test died: $1"
	exit 0
}

# Whether the command under test accepts the options of a feature newer than
# util-linux 2.38: skips the rest of the test when the probe is a usage error
# (exit 64, as util-linux and filelock answer unknown options). Any other
# failure lets the test run, and fail, as upstream's would.
need() {
	local feature=$1 rc
	shift
	(cd "$DIR" && "$FLOCK" "$@" >"$DIR/probe.out" 2>"$DIR/probe.err")
	rc=$?
	if [ "$rc" = 64 ]; then
		skip_rest "needs $feature (newer than util-linux 2.38); the command rejects it: exit 64, $(head -n 1 "$DIR/probe.err")"
	fi
}

# ts_check_prog: the test is skipped when a program it needs is missing.
need_prog() {
	command -v "$1" >/dev/null || skip_rest "missing in PATH: $1"
}

# upstream's do_lock: runs `flock <options> <lockfile> echo <message>`, logs
# "Success" when it exits with the expected code, else "Failed [rc=N]".
do_lock() {
	local options=$1 expected_rc=$2 message=$3 rc
	# shellcheck disable=SC2086 # options are split, as upstream splits them
	$FLOCK $options "$DIR/lockfile" echo "$message" >>"$OUT" 2>>"$ERR"
	rc=$?
	if [ "$rc" == "$expected_rc" ]; then
		log "Success"
	else
		log "Failed [rc=$rc]"
		WHY+=("exit code $rc, expected $expected_rc")
	fi
}

# Upstream's check that the background holder runs and has started its command
# (flock(1) runs the command once it holds the lock).
holder_started() {
	local pid=$1
	if [ "$pid" -le 0 ] || ! kill -s 0 "$pid" &>/dev/null; then
		die "unable to run flock"
	fi
	timeout "${HOLDER_WAIT}s" bash -c "while ! pgrep -P $pid >/dev/null; do sleep 0.1; done" ||
		die "timeout waiting for flock child"
}

# Upstream's time-check subtest: the holder slept 3 s, so the timeout subtest
# must have ended 3 to 5 whole seconds after the holder started.
time_check() {
	TIMEDIFF=$((END - START))
	if [ "$TIMEDIFF" -lt 3 ]; then
		log "general lock failed [$TIMEDIFF sec]"
		WHY+=("the timeout subtest ended $TIMEDIFF s after the holder started, expected 3 to 5 s")
	elif [ "$TIMEDIFF" -gt 5 ]; then
		log "wait too long [$TIMEDIFF sec]"
		WHY+=("the timeout subtest ended $TIMEDIFF s after the holder started, expected 3 to 5 s")
	else
		log "success"
	fi
}

# --- the tests

# tests/ts/misc/flock as of util-linux 2.38 (flock(2) only).
test_misc-flock() {
	local T=misc/flock pid
	plan "$T-non-block" "$T-no-fork" "$T-shared" "$T-exclusive" "$T-timeout" "$T-time-check" "$T"
	need_prog pgrep
	need_prog timeout
	main_logs "$T"
	DIE_EXPECTED=$'Locking\nUnlocking\nUnlocked\n'

	START=$(date '+%s')
	$FLOCK --shared "$DIR/lockfile" \
		bash -c 'echo "Locking"; sleep 3; echo "Unlocking"' \
		>"$MAIN_OUT" 2>&1 &
	pid=$!
	holder_started "$pid"

	begin "$T-non-block"
	do_lock "--nonblock --conflict-exit-code 123" 123 "You will never see this!"
	finish $'Success\n'

	begin "$T-no-fork"
	do_lock "--no-fork --nonblock --conflict-exit-code 123" 123 "You will never see this!"
	finish $'Success\n'

	begin "$T-shared"
	do_lock "--shared" 0 "Have shared lock"
	finish $'Have shared lock\nSuccess\n'

	# the non-block case again, with the default (--exclusive) spelled out
	begin "$T-exclusive"
	do_lock "--nonblock --exclusive --conflict-exit-code 123" 123 "You will never see this!"
	finish $'Success\n'

	begin "$T-timeout"
	do_lock "--timeout 5 --conflict-exit-code 5" 0 "After timeout."
	END=$(date '+%s')
	finish $'After timeout.\nSuccess\n'

	begin "$T-time-check"
	time_check
	finish $'success\n' "" "diff ${TIMEDIFF} sec"

	echo "Unlocked" >>"$MAIN_OUT"
	finish "$DIE_EXPECTED"
}

# tests/ts/flock/flock (master), one run of its loop over the lock APIs:
# $1 = flock (flock(2), the default) or fcntl (--fcntl, fcntl(2) OFD locks).
flock_api() {
	local api=$1 T=flock/flock prefix="" api_arg="" pid main
	if [ "$api" = fcntl ]; then
		prefix=fcntl-
		api_arg=--fcntl
	fi
	# Upstream runs both APIs in one test and compares their holders' output,
	# both appended to one log, at the end; here each API is a test of its own.
	main="$T[$api]"
	local names=("$T-${prefix}non-block" "$T-${prefix}no-fork" "$T-${prefix}shared"
		"$T-${prefix}exclusive" "$T-${prefix}fd")
	[ "$api" = fcntl ] && names+=("$T-fcntl-vs-flock")
	names+=("$T-${prefix}timeout" "$T-${prefix}time-check" "$main")
	plan "${names[@]}"
	need_prog pgrep
	need_prog timeout
	if [ "$api" = fcntl ]; then
		need "--fcntl" --fcntl --nonblock "$DIR/probe" true
	fi
	main_logs "$main"
	DIE_EXPECTED="API: $api(2)"$'\nLocking\nUnlocking\nUnlocked\n'

	START=$(date '+%s')
	# shellcheck disable=SC2086
	$FLOCK $api_arg --shared "$DIR/lockfile" \
		bash -c "echo 'API: $api(2)'; echo 'Locking'; sleep 3; echo 'Unlocking'" \
		>>"$MAIN_OUT" 2>&1 &
	pid=$!
	holder_started "$pid"

	begin "$T-${prefix}non-block"
	do_lock "${api_arg} --nonblock --conflict-exit-code 123" 123 "You will never see this!"
	finish $'Success\n'

	begin "$T-${prefix}no-fork"
	do_lock "${api_arg} --no-fork --nonblock --conflict-exit-code 123" 123 "You will never see this!"
	finish $'Success\n'

	begin "$T-${prefix}shared"
	do_lock "${api_arg} --shared" 0 "Have shared lock"
	finish $'Have shared lock\nSuccess\n'

	begin "$T-${prefix}exclusive"
	do_lock "${api_arg} --nonblock --exclusive --conflict-exit-code 123" 123 "You will never see this!"
	finish $'Success\n'

	# descriptor mode: `flock 4` locks the shell's descriptor 4, and must not
	# take "4" for a file name
	begin "$T-${prefix}fd"
	cd "$DIR" || die "failed to change directory to $DIR"
	rm 4 2>/dev/null
	exec 4<>"$DIR/lockfile" || log "Could not open lockfile"
	# shellcheck disable=SC2086
	$FLOCK $api_arg --nonblock --exclusive --conflict-exit-code 123 4 \
		>>"$OUT" 2>>"$ERR"
	rc=$?
	if [ "$rc" == "123" ]; then
		log "Success"
	else
		log "Failed [rc=$rc]"
		WHY+=("exit code $rc, expected 123")
	fi
	if [ -f 4 ]; then
		log "fd file should not exist"
		WHY+=("created a file named 4")
	fi
	finish $'Success\n'

	# fcntl(2) locks are independent of flock(2) locks: an exclusive flock(2)
	# lock is free while the fcntl(2) holder holds its shared lock
	if [ "$api" = fcntl ]; then
		begin "$T-fcntl-vs-flock"
		do_lock "--nonblock --exclusive" 0 "flock vs fcntl"
		finish $'flock vs fcntl\nSuccess\n'
	fi

	begin "$T-${prefix}timeout"
	do_lock "${api_arg} --timeout 5 --conflict-exit-code 5" 0 "After timeout."
	END=$(date '+%s')
	finish $'After timeout.\nSuccess\n'

	begin "$T-${prefix}time-check"
	time_check
	finish $'success\n' "" "diff ${TIMEDIFF} sec"

	echo "Unlocked" >>"$MAIN_OUT"
	finish "$DIE_EXPECTED"
}

test_flock-flock() {
	flock_api flock
}

test_flock-fcntl() {
	flock_api fcntl
}

# The text of an errno, as util-linux's test_strerror helper prints it.
strerror() {
	perl -MPOSIX -e "print strerror(POSIX::$1())" 2>/dev/null ||
		python3 -c "import errno, os; print(os.strerror(errno.$1), end='')"
}

# tests/ts/flock/close (master): --close keeps the locked descriptor from the
# command; without it the command inherits it (and its lock).
test_flock-close() {
	local T=flock/close
	plan "$T"
	need "--fd" --exclusive --fd 9 --command true 9<>"$DIR/probe"
	main_logs "$T"
	exec 10<>"$DIR/lock"

	# EBADF expected: the command must not inherit descriptor 10
	"$FLOCK" --exclusive --close --fd 10 --command \
		"$FLOCK --exclusive --nonblock --fd 10 true >>$OUT 2>>$ERR" >>"$OUT" 2>>"$ERR"
	log "exit code: $?"

	# this one succeeds
	"$FLOCK" --exclusive --fd 10 --command \
		"$FLOCK --exclusive --nonblock --fd 10 true >>$OUT 2>>$ERR" >>"$OUT" 2>>"$ERR"
	log "exit code: $?"

	sed -i -e "s@$(strerror EBADF)@EBADF@" "$OUT" "$ERR"
	finish $'exit code: 65\nexit code: 0\n' $'flock: 10: EBADF\n'
}

# tests/ts/flock/unlock (master): descriptor mode with --verbose, --unlock of a
# descriptor, and --wait 0 read as --nonblock.
test_flock-unlock() {
	local T=flock/unlock
	plan "$T"
	main_logs "$T"
	exec 10<>"$DIR/lock"
	{
		"$FLOCK" --exclusive --nonblock --verbose 10
		"$FLOCK" --unlock 10
		"$FLOCK" --exclusive --wait 0 --verbose "$DIR/lock" true
	} >>"$OUT" 2>>"$ERR"
	# upstream's normalisation of the time, for a command named "$PROGNAME" (its
	# pattern, "flock.*took", assumes the name contains "flock")
	sed -i -E "s@(${PROGNAME}.*took) [0-9]+\\.[0-9]+ (seconds\$)@\\1 <n> \\2@g" "$OUT" 2>>"$ERR"
	finish $'flock: getting lock took <n> seconds\nflock: getting lock took <n> seconds\nflock: executing true\n'
}

# Whether lslocks(8) finds an fcntl(2) OFD lock by its holder's PID, as the
# range-lock test needs (util-linux 2.38's lslocks shows such holders as -1):
# a perl process holds a read lock on bytes 1-2 of the directory, as the test's
# flock does (struct flock as on 64-bit Linux; 37 is F_OFD_SETLK).
lslocks_shows_ofd_locks() {
	local pid found=""
	command -v perl >/dev/null || return 1
	perl -e 'open(my $d, "<", $ARGV[0]) or exit 1;
		my $lock = pack("s s x4 q q i x4", 0, 0, 1, 2, 0);
		fcntl($d, 37, $lock) or exit 1;
		$| = 1; print "held\n"; sleep 10;' "$DIR" >"$DIR/ofd.out" 2>&1 &
	pid=$!
	for _ in $(seq 50); do
		grep -q held "$DIR/ofd.out" && break
		sleep 0.1
	done
	found=$(lslocks --noheadings --raw --pid "$pid" -o START 2>/dev/null)
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ "$found" = 1 ]
}

# tests/ts/flock/range-lock (master): --fcntl --start/--length lock a byte
# range, as lslocks(8) shows it.
test_flock-range-lock() {
	local T=flock/range-lock start end PID=""
	plan "$T"
	need_prog lslocks
	need "--fcntl --start --length" --fcntl --start 1 --length 2 --nonblock "$DIR/probe" true
	lslocks_shows_ofd_locks ||
		skip_rest "$(lslocks --version 2>&1 | head -n 1) does not show the PID of an OFD lock's holder (upstream runs this test with the lslocks(8) of the same tree)"
	main_logs "$T"
	local START=1 LENGTH=2
	local END=$((START + LENGTH - 1))
	cd "$DIR" || die "cannot change directory to $DIR"
	{
		coproc HOLDER { "$FLOCK" \
			--shared --fcntl --start "${START}" --length "${LENGTH}" --no-fork \
			. \
			-c cat & echo $!; wait; }
		if read -r -u "${HOLDER[0]}" PID; then
			start=$(lslocks --noheadings --raw --pid "${PID}" -o START)
			echo start: $START == "$start"
			end=$(lslocks --noheadings --raw --pid "${PID}" -o END)
			echo end: $END == "$end"
			if [[ $START != "$start" || $END != "$end" ]]; then
				echo pid: "$PID"
				lslocks
			fi
		else
			echo failed in read 1>&2
		fi
		# closing the coproc's stdin ends cat
		exec {HOLDER[1]}>&-
	} >>"$OUT" 2>>"$ERR"
	[ -n "${HOLDER_PID-}" ] && wait "$HOLDER_PID"
	finish $'start: 1 == 1\nend: 2 == 2\n'
}

# --- the harness

usage() {
	sed -n '/^# Options:/,/^$/p' "$SELF" | sed 's/^# \{0,1\}//' >&2
	exit 64
}

if [ "${1-}" = --run-test ]; then
	# One test, run by the harness below: $2 = test, $3 = its directory.
	DIR=$3
	trap 'echo $? >"$DIR/exit"' EXIT
	MAIN_NAME=""
	MAIN_OUT=""
	MAIN_ERR=""
	"test_$2"
	exit 0
fi

COMMAND=()
PROGNAME=flock
JOBS=2
KEEP=""
LIST=""
while [ $# -gt 0 ]; do
	case $1 in
	--flock)
		[ $# -ge 2 ] || usage
		read -r -a COMMAND <<<"$2"
		shift 2
		;;
	--name)
		[ $# -ge 2 ] || usage
		PROGNAME=$2
		shift 2
		;;
	--jobs)
		[ $# -ge 2 ] || usage
		JOBS=$2
		shift 2
		;;
	--keep)
		KEEP=yes
		shift
		;;
	--list)
		LIST=yes
		shift
		;;
	--)
		shift
		COMMAND=("$@")
		break
		;;
	*) usage ;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/util-linux-flock.XXXXXX") || exit 70
PGIDS=()

cleanup() {
	local pgid
	# Each test ran in a process group of its own (timeout(1) makes one): end
	# whatever is left in them, then the directory.
	for pgid in "${PGIDS[@]}"; do
		kill -KILL -- "-$pgid" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "$KEEP" ]; then
		echo "# kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$LIST" ]; then
	# The plans, from runs that skip everything (a command that rejects all).
	printf '#!/bin/sh\nexit 64\n' >"$WORK/none"
	chmod +x "$WORK/none"
	for t in "${TESTS[@]}"; do
		mkdir "$WORK/$t"
		(
			DIR=$WORK/$t
			FLOCK=$WORK/none
			PROGNAME=flock
			plan() { printf '%s\n' "$@"; exit 0; }
			"test_$t"
		)
	done
	exit 0
fi

[ ${#COMMAND[@]} -gt 0 ] || usage

# The command as `flock`: a script that execs it, so that it keeps the
# caller's descriptors (descriptor mode) and its PID (upstream waits for the
# PID's child), and so that upstream's command lines run as written.
mkdir "$WORK/bin"
{
	echo '#!/usr/bin/env bash'
	printf 'exec'
	printf ' %q' "${COMMAND[@]}"
	printf ' "$@"\n'
} >"$WORK/bin/flock"
chmod +x "$WORK/bin/flock"
export FLOCK=$WORK/bin/flock PROGNAME
if [ "$PROGNAME" = flock ]; then
	echo "# flock: ${COMMAND[*]}"
else
	echo "# flock: ${COMMAND[*]} (its messages' \"$PROGNAME: \" read as \"flock: \")"
fi

started=$SECONDS
running=0
# (stderr aside: bash reports a killed test as "Killed"; the results say it)
{
	for t in "${TESTS[@]}"; do
		if [ "$running" -ge "$JOBS" ]; then
			wait -n
			running=$((running - 1))
		fi
		mkdir "$WORK/$t"
		: >"$WORK/$t/report"
		: >"$WORK/$t/done"
		# timeout(1) puts the test in a process group of its own and kills the
		# whole group if the test hangs.
		timeout -s KILL "$TEST_LIMIT" bash "$SELF" --run-test "$t" "$WORK/$t" \
			</dev/null >"$WORK/$t/log" 2>&1 &
		PGIDS+=($!)
		running=$((running + 1))
	done
	wait
} 2>/dev/null

for t in "${TESTS[@]}"; do
	dir=$WORK/$t
	cat "$dir/report"
	# a test that hung or broke leaves subtests without a line
	if [ -f "$dir/exit" ]; then
		why="the test ended early (exit $(cat "$dir/exit"))"
	else
		why="the test hung: killed after $TEST_LIMIT s"
	fi
	if [ -f "$dir/plan" ]; then
		while IFS= read -r name; do
			if ! grep -qxF -- "$name" "$dir/done"; then
				echo "not ok - $name: no result: $why"
				sed 's/^/#   /' "$dir/log"
			fi
		done <"$dir/plan"
	else
		echo "not ok - $t: no result: $why"
		sed 's/^/#   /' "$dir/log"
	fi
done >"$WORK/results"
cat "$WORK/results"
passed=$(grep -c '^ok - ' "$WORK/results")
failed=$(grep -c '^not ok - ' "$WORK/results")
skipped=$(grep -c '^skip - ' "$WORK/results")
echo "# time: $((SECONDS - started)) s"
echo "# util-linux: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
